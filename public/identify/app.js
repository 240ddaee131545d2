/*
 * The identification page (plain browser JavaScript, no build step).
 *
 * CSP-clean on purpose: only script files (this one, and /shared/api.js and /shared/session.js:
 * the API calls and the session check it shares with the editor page), no inline handlers, and
 * every piece of server data reaches the page through textContent or element properties — never
 * innerHTML — because names, descriptions and error messages come from outside providers.
 *
 * Two ways to identify:
 *   - signed in: POST requests/ (202) → live progress on the request's WebSocket → results;
 *     when the socket cannot be used, poll the request every 2 s instead;
 *   - anonymous: POST identify/ and render its answer directly.
 */

(() => {
  const ALLOWED_TYPES = ["image/jpeg", "image/png", "image/webp"];
  const MAX_BYTES = 10 * 1024 * 1024;
  const FINAL_STATUSES = ["identified", "needs_help", "failed"];
  const POLL_INTERVAL_MS = 2000;
  /** With the socket open but silent this long, ask the server directly (a missed message). */
  const STALL_CHECK_MS = 15000;
  const PING_INTERVAL_MS = 25000;
  const MAX_SIMILAR_IMAGES = 4;

  /** Human labels and progress-bar positions for the server's stages (API.md §3). */
  const STAGES = {
    queued: { label: "Waiting in the queue", pct: 12 },
    processing_start: { label: "Started working on your photo", pct: 20 },
    plant_id_start: { label: "Asking Plant.id", pct: 30 },
    plant_id_done: { label: "Plant.id answered", pct: 50 },
    plantnet_start: { label: "Asking Pl@ntNet", pct: 30 },
    plantnet_done: { label: "Pl@ntNet answered", pct: 50 },
    merge_done: { label: "Combined both answers", pct: 70 },
    enrich_start: { label: "Looking up species details", pct: 76 },
    enrich_done: { label: "Added species details", pct: 86 },
    enrich_skipped: { label: "Species details not needed", pct: 86 },
    care_start: { label: "Writing care instructions", pct: 90 },
    care_done: { label: "Care instructions ready", pct: 95 },
    rate_limited: { label: "A provider is busy — waiting our turn", pct: null },
    retry_scheduled: { label: "Trying again shortly", pct: null },
  };

  const STATUS_TEXT = {
    pending: "Waiting in the queue",
    processing: "Identifying…",
    identified: "Identified",
    needs_help: "Not sure — the community can help",
    failed: "Identification failed",
  };

  const SOURCE_NAMES = { plant_id: "Plant.id", plantnet: "Pl@ntNet", community: "Community", expert: "Expert", user_manual: "You" };
  const IDENTIFICATION_SOURCES = {
    ai_combined: ["plant_id", "plantnet"],
    ai_plant_id: ["plant_id"],
    ai_plantnet: ["plantnet"],
    community: ["community"],
    expert: ["expert"],
    user_manual: ["user_manual"],
  };

  const PROVIDER_NAMES = { plant_id: "Plant.id", plantnet: "Pl@ntNet" };
  const FAILURE_TEXT = {
    timeout: "did not answer in time",
    rate_limited: "is busy (rate limited)",
    server: "had an error",
    malformed: "sent an answer we could not read",
    network: "could not be reached",
    auth: "refused our key",
    bad_request: "refused the photo",
    circuit_open: "is paused after repeated failures",
  };
  const CARE_FIELDS = [
    ["overview", "Overview"],
    ["difficulty_level", "Difficulty"],
    ["light", "Light"],
    ["water", "Water"],
    ["soil", "Soil"],
    ["temperature", "Temperature"],
    ["humidity", "Humidity"],
    ["fertilizer", "Fertilizer"],
    ["pruning", "Pruning"],
    ["repotting", "Repotting"],
    ["propagation", "Propagation"],
    ["common_issues", "Common issues"],
    ["toxicity", "Toxicity"],
    ["hardiness", "Hardiness"],
    ["plant_type", "Plant type"],
  ];
  /** Care fields whose values are the API's English codes ("very_easy"), whatever the guide's language. */
  const CARE_CODE_FIELDS = new Set(["difficulty_level", "plant_type"]);

  const CLOSE_REASONS = {
    4401: "your session has expired",
    4403: "this identification belongs to another account",
    4404: "the server does not know this identification",
  };

  const $ = (id) => document.getElementById(id);

  const el = {
    sessionStatus: $("session-status"),
    signoutButton: $("signout-button"),
    signinLink: $("signin-link"),
    accountHint: $("account-hint"),
    tabLogin: $("tab-login"),
    tabRegister: $("tab-register"),
    authForm: $("auth-form"),
    authUsername: $("auth-username"),
    authUsernameExtra: $("auth-username-extra"),
    authEmailField: $("auth-email-field"),
    authEmail: $("auth-email"),
    authPassword: $("auth-password"),
    authPasswordHint: $("auth-password-hint"),
    authCodeField: $("auth-code-field"),
    authCode: $("auth-code"),
    authError: $("auth-error"),
    authSubmit: $("auth-submit"),
    signedIn: $("signed-in"),
    signedInName: $("signed-in-name"),
    signedInNote: $("signed-in-note"),
    verifyRow: $("verify-row"),
    resendVerification: $("resend-verification"),
    verifyStatus: $("verify-status"),
    identifyForm: $("identify-form"),
    dropzone: $("dropzone"),
    dropzoneEmpty: $("dropzone-empty"),
    photoInput: $("photo-input"),
    preview: $("preview"),
    previewImg: $("preview-img"),
    previewFallback: $("preview-fallback"),
    previewName: $("preview-name"),
    organSelect: $("organ-select"),
    modeHint: $("mode-hint"),
    identifyError: $("identify-error"),
    identifyButton: $("identify-button"),
    progressPanel: $("progress-panel"),
    progressBar: $("progress-bar"),
    progressFill: $("progress-fill"),
    progressValue: $("progress-value"),
    progressList: $("progress-list"),
    resultsPanel: $("results-panel"),
    resultsTitle: $("results-title"),
    resultsSummary: $("results-summary"),
    health: $("health"),
    resultsList: $("results-list"),
    retryButton: $("retry-button"),
    outage: $("outage"),
    outageTitle: $("outage-title"),
    outageText: $("outage-text"),
    care: $("care"),
    careTitle: $("care-title"),
    careSource: $("care-source"),
    careList: $("care-list"),
    historyPanel: $("history-panel"),
    historyList: $("history-list"),
    historyEmpty: $("history-empty"),
    historyError: $("history-error"),
    historyRefresh: $("history-refresh"),
  };

  const state = {
    /** null = anonymous, undefined = not known yet. */
    user: undefined,
    authMode: "login",
    /** A two-factor sign-in waiting for its code: the challenge's token, or null. */
    twoFactorToken: null,
    file: null,
    previewUrl: null,
    busy: false,
    /** Incremented per identification; callbacks of an older run do nothing. */
    run: 0,
    socket: null,
    timers: [],
    percent: 0,
    /** The signed-in user's collections (for "Save to"), loaded on first use. */
    collections: null,
    /** A failed saved request the "Try again" button queues again. */
    retryRequestId: null,
    /** The providers are down and the request waits for them: one row, updated in place. */
    waiting: null,
  };

  // ------------------------------------------------------------------------------------------
  // Small helpers

  const { h, request: api, csrfToken, errorText } = window.PlantApi;

  /** own-property lookup: server strings such as "constructor" must not reach the prototype. */
  function lookup(table, key) {
    return Object.hasOwn(table, key) ? table[key] : undefined;
  }

  function percent(value) {
    const n = Number(value);
    if (!Number.isFinite(n)) return 0;
    return Math.max(0, Math.min(100, Math.round(n * 100)));
  }

  // ------------------------------------------------------------------------------------------
  // Session

  /*
   * Whether the visitor is signed in, and renewing an expired access cookie, are shared with the
   * editor page: /shared/session.js (window.PlantSession), loaded before this file.
   */
  const session = window.PlantSession;
  const rememberSession = (signedIn) => session.remember(signedIn);
  const refreshSession = () => session.refresh(api);

  async function loadSession() {
    setUser(await session.currentUser(api));
  }

  function setUser(user) {
    state.user = user;
    rememberSession(!!user);
    const signedIn = !!user;
    document.body.dataset.session = signedIn ? "signed-in" : "anonymous";
    el.sessionStatus.dataset.state = signedIn ? "signed-in" : "anonymous";
    el.sessionStatus.textContent = signedIn ? `Signed in as ${user.username}` : "Not signed in";
    el.signoutButton.hidden = !signedIn;
    el.signinLink.hidden = signedIn;
    el.authForm.hidden = signedIn;
    el.signedIn.hidden = !signedIn;
    el.signedInName.textContent = signedIn ? user.username : "";
    el.signedInNote.hidden = true;
    // The address is confirmed by the mailed link; until then the page offers to send it again.
    el.verifyRow.hidden = !(signedIn && user.email_verified === false);
    el.verifyStatus.textContent = "";
    el.accountHint.hidden = signedIn;
    document.querySelector(".tabs").hidden = signedIn;
    el.modeHint.textContent = signedIn
      ? "Your identification is saved to your history; progress appears live below."
      : "You are not signed in: the photo is identified right away and nothing is saved. The plant part is only used for saved identifications.";
    state.collections = null;
    el.historyPanel.hidden = !signedIn;
    if (signedIn) void loadHistory();
    else {
      el.historyList.replaceChildren();
      setRetry(null);
    }
    updateIdentifyButton();
  }

  function setAuthMode(mode) {
    state.authMode = mode;
    const register = mode === "register";
    el.authForm.dataset.mode = mode;
    el.tabLogin.setAttribute("aria-selected", String(!register));
    el.tabRegister.setAttribute("aria-selected", String(register));
    el.tabLogin.tabIndex = register ? -1 : 0;
    el.tabRegister.tabIndex = register ? 0 : -1;
    el.authForm.setAttribute("aria-labelledby", register ? "tab-register" : "tab-login");
    el.authEmailField.hidden = !register;
    el.authEmail.required = register;
    el.authUsernameExtra.hidden = register;
    el.authPasswordHint.hidden = !register;
    el.authPassword.autocomplete = register ? "new-password" : "current-password";
    el.authSubmit.textContent = register ? "Create account" : "Sign in";
    askForCode(null);
    clearAuthErrors();
  }

  /** Shows (a challenge's token) or hides (null) the second step of a two-factor sign-in. */
  function askForCode(token) {
    state.twoFactorToken = token;
    el.authCodeField.hidden = token === null;
    el.authCode.value = "";
    el.authUsername.disabled = token !== null;
    el.authPassword.disabled = token !== null;
    if (token !== null) el.authCode.focus();
  }

  async function onSecondFactor() {
    const typed = el.authCode.value;
    if (!typed.trim()) {
      showAuthErrors({
        status: 400,
        data: { errors: { code: ["Enter the code from your authenticator app, or a recovery code."] } },
        headers: new Headers(),
      });
      return;
    }
    const res = await window.PlantSession.verifySecondFactor(api, state.twoFactorToken, typed);
    if (res.ok && res.data?.user) {
      askForCode(null);
      setUser(res.data.user);
    } else if (window.PlantSession.challengeEnded(res)) {
      askForCode(null);
      el.authError.textContent = "That sign-in took too long. Enter your password again.";
    } else {
      showAuthErrors(res);
    }
  }

  function clearAuthErrors() {
    el.authError.textContent = "";
    for (const node of el.authForm.querySelectorAll(".field__error")) node.textContent = "";
    for (const input of el.authForm.querySelectorAll("input")) input.removeAttribute("aria-invalid");
  }

  /** Field errors of the envelope go under their inputs; the rest into the form's alert. */
  function showAuthErrors(result) {
    const fieldErrors = result.data?.errors || {};
    const unplaced = [];
    for (const [field, messages] of Object.entries(fieldErrors)) {
      const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
      const key = field === "password_confirm" ? "password" : field;
      const slot = el.authForm.querySelector(`.field__error[data-field="${CSS.escape(key)}"]`);
      if (slot && !slot.closest("[hidden]")) {
        slot.textContent = text;
        const input = el.authForm.querySelector(`[name="${CSS.escape(key)}"]`);
        if (input) input.setAttribute("aria-invalid", "true");
      } else {
        unplaced.push(text);
      }
    }
    const placed = Object.keys(fieldErrors).length > unplaced.length;
    const general = errorText(result, "That did not work. Please try again.");
    el.authError.textContent =
      unplaced.length > 0 ? `${general} ${unplaced.join(" ")}` : placed ? "Please correct the highlighted fields." : general;
    const firstInvalid = el.authForm.querySelector("[aria-invalid='true']");
    if (firstInvalid) firstInvalid.focus();
  }

  async function onAuthSubmit(event) {
    event.preventDefault();
    clearAuthErrors();
    if (state.twoFactorToken !== null) {
      el.authSubmit.disabled = true;
      try {
        await onSecondFactor();
      } finally {
        el.authSubmit.disabled = false;
      }
      return;
    }
    const register = state.authMode === "register";
    const username = el.authUsername.value.trim();
    const email = el.authEmail.value.trim();
    const password = el.authPassword.value;
    const missing = [];
    if (!username) missing.push(["username", register ? "Choose a username." : "Enter your username or email."]);
    if (register && !email) missing.push(["email", "Enter your email address."]);
    if (!password) missing.push(["password", "Enter your password."]);
    if (missing.length > 0) {
      showAuthErrors({ status: 400, data: { errors: Object.fromEntries(missing.map(([f, m]) => [f, [m]])) }, headers: new Headers() });
      return;
    }

    el.authSubmit.disabled = true;
    el.authSubmit.setAttribute("aria-busy", "true");
    try {
      await csrfToken();
      const res = register
        ? await api("/auth/register/", { method: "POST", json: { username, email, password } })
        : await api("/auth/login/", { method: "POST", json: { username, password } });
      const challenge = register ? null : window.PlantSession.twoFactorChallenge(res);
      if (res.ok && res.data?.user) {
        el.authPassword.value = "";
        setUser(res.data.user);
        // A new account's address is not confirmed yet: say that a link was mailed (the API's words).
        if (register && res.data.message) {
          el.signedInNote.textContent = res.data.message;
          el.signedInNote.hidden = false;
        }
      } else if (challenge) {
        el.authPassword.value = "";
        askForCode(challenge);
      } else {
        showAuthErrors(res);
      }
    } finally {
      el.authSubmit.disabled = false;
      el.authSubmit.removeAttribute("aria-busy");
    }
  }

  /** POST email/verify/: the confirmation link mailed again (the API says where, or why not). */
  async function onResendVerification() {
    el.resendVerification.disabled = true;
    el.verifyStatus.textContent = "Sending…";
    try {
      const res = await api("/auth/email/verify/", { method: "POST" });
      if (res.ok) {
        el.verifyStatus.textContent = res.data?.message || "We sent a new confirmation link.";
      } else if (res.status === 409 && res.data?.code === "INVALID_STATE") {
        el.verifyRow.hidden = true;
        el.verifyStatus.textContent = "Your email address is already confirmed.";
      } else {
        el.verifyStatus.textContent = errorText(res, "Could not send the link. Please try again.");
      }
    } finally {
      el.resendVerification.disabled = false;
    }
  }

  async function onSignOut() {
    el.signoutButton.disabled = true;
    try {
      let res = await api("/auth/logout/", { method: "POST", json: {} });
      if (res.status === 401 && (await refreshSession())) res = await api("/auth/logout/", { method: "POST", json: {} });
      if (!res.ok && res.status !== 401) {
        el.sessionStatus.textContent = errorText(res, "Could not sign out. Please try again.");
        return;
      }
      cancelRun("you signed out");
      setUser(null);
      setAuthMode("login");
    } finally {
      el.signoutButton.disabled = false;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Photo choice

  function chooseFile(file) {
    el.identifyError.textContent = "";
    if (!file) return;
    if (file.type && !ALLOWED_TYPES.includes(file.type)) {
      el.identifyError.textContent = `That file is ${file.type}. Please choose a JPEG, PNG or WebP photo.`;
      return;
    }
    if (file.size > MAX_BYTES) {
      el.identifyError.textContent = `That photo is ${(file.size / (1024 * 1024)).toFixed(1)} MB. Please choose one under 10 MB.`;
      return;
    }
    state.file = file;
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = URL.createObjectURL(file);
    el.previewImg.hidden = false;
    el.previewFallback.hidden = true;
    el.previewImg.src = state.previewUrl;
    el.previewName.textContent = `${file.name} · ${formatSize(file.size)}`;
    el.preview.hidden = false;
    el.dropzoneEmpty.hidden = true;
    el.dropzone.classList.add("has-file");
    updateIdentifyButton();
  }

  function formatSize(bytes) {
    if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
    return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  }

  function updateIdentifyButton() {
    el.identifyButton.disabled = !state.file || state.busy || state.user === undefined;
    el.identifyButton.textContent = state.busy ? "Identifying…" : "Identify plant";
  }

  // ------------------------------------------------------------------------------------------
  // Progress

  function resetProgress() {
    el.progressList.replaceChildren();
    state.percent = 0;
    setPercent(0);
    el.progressPanel.hidden = false;
    el.progressPanel.dataset.state = "running";
  }

  function setPercent(value) {
    state.percent = Math.max(state.percent, Math.min(100, value));
    const pct = Math.round(state.percent);
    el.progressFill.style.width = `${pct}%`;
    el.progressBar.setAttribute("aria-valuenow", String(pct));
    el.progressValue.textContent = `${pct}%`;
  }

  /** Adds a step; the previous "current" step is marked done. kind: current | done | warn | error. */
  function addStep(stage, label, detail, kind = "current", source = "client") {
    for (const node of el.progressList.querySelectorAll(".step--current")) {
      node.classList.remove("step--current");
      node.classList.add("step--done");
    }
    const item = h("li", `step step--${kind}`);
    item.dataset.stage = stage;
    item.dataset.source = source;
    item.append(h("span", "step__icon"));
    const text = h("span", "step__text");
    text.append(h("span", "step__label", label));
    if (detail) text.append(h("span", "step__detail", detail));
    item.append(text);
    const time = h("time", "step__time", new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }));
    time.dateTime = new Date().toISOString();
    // Shown for the eye, kept out of the live region's announcement: a clock reading with every
    // step says nothing about the plant.
    time.setAttribute("aria-hidden", "true");
    item.append(time);
    el.progressList.append(item);
    return item;
  }

  function finishSteps(kind) {
    for (const node of el.progressList.querySelectorAll(".step--current")) {
      node.classList.remove("step--current");
      node.classList.add("step--done");
    }
    el.progressPanel.dataset.state = kind;
  }

  /** A short detail line from a progress message's `data` (all fields optional). */
  function stageDetail(stage, data) {
    if (!data || typeof data !== "object") return "";
    const parts = [];
    if (stage === "processing_start" && Number(data.attempt) > 1) parts.push(`attempt ${data.attempt}`);
    if (stage === "plant_id_done" || stage === "plantnet_done") {
      if (data.ok === false) parts.push(`no answer (${String(data.error || "error").replace(/_/g, " ")})`);
      else if (typeof data.suggestions === "number") parts.push(`${data.suggestions} suggestion${data.suggestions === 1 ? "" : "s"}`);
      if (data.cached === true) parts.push("from cache");
    }
    if (stage === "merge_done" && typeof data.suggestions === "number") {
      parts.push(`${data.suggestions} suggestion${data.suggestions === 1 ? "" : "s"}`);
    }
    if (stage === "enrich_skipped" && typeof data.reason === "string") parts.push(data.reason);
    if (stage === "enrich_start" && typeof data.source === "string")
      parts.push(`from ${data.source === "trefle" ? "Trefle" : data.source}`);
    if (stage === "rate_limited" && Number(data.retry_after) > 0) parts.push(`retrying in ${data.retry_after} s`);
    if (stage === "retry_scheduled") {
      if (Number(data.delay_seconds) > 0) parts.push(`in ${data.delay_seconds} s`);
      if (data.attempt && data.max_attempts) parts.push(`attempt ${data.attempt} of ${data.max_attempts}`);
    }
    if (typeof data.message === "string") parts.push(data.message);
    return parts.join(" · ");
  }

  // ------------------------------------------------------------------------------------------
  // Identification

  async function onIdentifySubmit(event) {
    event.preventDefault();
    if (!state.file || state.busy) return;
    await runIdentification((run) => (state.user ? identifyLive(run) : identifyNow(run)));
  }

  /** One identification at a time: resets the page, runs `work(run)`, and frees the form after. */
  async function runIdentification(work) {
    stopLive();
    const run = ++state.run;
    state.busy = true;
    updateIdentifyButton();
    el.identifyForm.setAttribute("aria-busy", "true");
    el.identifyError.textContent = "";
    setRetry(null);
    hideOutage();
    state.waiting = null;
    el.resultsPanel.hidden = true;
    resetProgress();
    try {
      await work(run);
    } finally {
      if (run === state.run) {
        state.busy = false;
        el.identifyForm.removeAttribute("aria-busy");
        updateIdentifyButton();
        if (state.user) void loadHistory();
      }
    }
  }

  /** "Try again" on a failed saved request: queue it again and follow it like a new one. */
  async function retryRequest(requestId) {
    if (!state.user || state.busy || !requestId) return;
    await runIdentification(async (run) => {
      addStep("retrying", "Queuing your photo again");
      setPercent(5);
      const path = `/plant-identification/requests/${encodeURIComponent(requestId)}/retry/`;
      let res = await api(path, { method: "POST", json: {} });
      if (res.status === 401 && (await refreshSession())) res = await api(path, { method: "POST", json: {} });
      if (run !== state.run) return;
      if (res.status !== 202 || !res.data || !res.data.request_id) {
        failRun(errorText(res, "The identification could not be queued again. Please try later."));
        return;
      }
      addStep("requeued", "Queued again", "", "done");
      setPercent(10);
      await followRequest(run, res.data);
    });
  }

  /**
   * The one place a failed identification is explained: the alert under the form. The progress
   * list only marks where it stopped (the message is not repeated there). A saved request that
   * failed can be queued again with "Try again".
   */
  function failRun(message, retryRequestId = null) {
    el.identifyError.textContent = message;
    addStep("failed", "Stopped", "", "error");
    finishSteps("failed");
    setRetry(retryRequestId);
  }

  function setRetry(requestId) {
    state.retryRequestId = state.user && requestId ? requestId : null;
    el.retryButton.hidden = !state.retryRequestId;
  }

  // ------------------------------------------------------------------------------------------
  // Outage: the providers are down

  /** Says at once that the providers are down and what happens next; one notice, not rows. */
  function showOutage(kind) {
    el.outage.hidden = false;
    el.outage.dataset.state = kind;
    if (kind === "anonymous") {
      el.outageTitle.textContent = "Plant.id and Pl@ntNet are not answering right now";
      el.outageText.textContent =
        "Nothing was saved. Try again in a few minutes — or sign in: a signed-in identification waits for them and tells you here when it completes.";
    } else if (kind === "waiting") {
      el.outageTitle.textContent = "Plant.id and Pl@ntNet are not answering right now";
      el.outageText.textContent =
        "Your photo is saved. We keep trying and identify it as soon as they are back; this page tells you when it completes, and it stays in your history. You can leave this page.";
    } else if (kind === "done") {
      el.outageTitle.textContent = "Your identification is complete";
      el.outageText.textContent = "The identification services answered again; the results are below.";
    }
  }

  function hideOutage() {
    el.outage.hidden = true;
    delete el.outage.dataset.state;
  }

  /** Enters the waiting state: the notice, and one row whose detail says when the next try is. */
  function startWaiting(detail) {
    if (!state.waiting) {
      showOutage("waiting");
      const row = addStep("waiting", "Waiting for the identification services", detail || "", "warn", "client");
      state.waiting = { row, since: Date.now() };
    } else if (detail) {
      updateWaiting(detail);
    }
  }

  function updateWaiting(detail) {
    if (!state.waiting) return;
    const row = state.waiting.row;
    let node = row.querySelector(".step__detail");
    if (!node) {
      node = h("span", "step__detail");
      row.querySelector(".step__text").append(node);
    }
    // The list is a polite live region: writing the same words again makes a screen reader say them again.
    if (node.textContent !== detail) node.textContent = detail;
  }

  /** A provider answered again: the waiting row is done and ordinary progress resumes. */
  function stopWaiting() {
    if (!state.waiting) return;
    const row = state.waiting.row;
    row.classList.remove("step--warn");
    row.classList.add("step--done");
    updateWaiting("they are back");
    state.waiting = null;
  }

  /** Anonymous: the synchronous endpoint answers with everything at once (API.md §2.1). */
  async function identifyNow(run) {
    addStep("asking", "Asking Plant.id and Pl@ntNet", "both at the same time");
    setPercent(35);
    const form = new FormData();
    form.append("image", state.file, state.file.name || "photo");
    const res = await api("/plant-identification/identify/", { method: "POST", form });
    if (run !== state.run) return;
    const data = res.data;
    if (res.status === 503 && data && data.code === "PROVIDERS_UNAVAILABLE") {
      // Both providers down: the notice says so and what to do; no second message.
      showOutage("anonymous");
      addStep("failed", "Stopped", "", "error");
      finishSteps("failed");
      return;
    }
    if (!res.ok || !data || data.success !== true) {
      failRun(errorText(res, "The photo could not be identified. Please try again."));
      return;
    }
    addProviderRows(data.providers);
    addStep("completed", "Done", `${data.suggestions.length} suggestion${data.suggestions.length === 1 ? "" : "s"}`, "done");
    setPercent(100);
    finishSteps("done");
    renderResults({
      summary: typeof data.summary === "string" ? data.summary : "",
      disease: data.disease_detection,
      care: data.care_instructions,
      cards: (data.suggestions || []).map((s) => ({
        name: s.plant_name,
        scientific: s.scientific_name,
        family: s.family,
        commonNames: s.common_names,
        confidence: s.probability,
        sources: s.sources,
        images: s.similar_images,
        description: s.description,
        rank: s.rank,
        primary: s.rank === 1,
        url: s.url,
        gbifId: s.gbif_id,
      })),
    });
  }

  /** One row per provider of a synchronous answer: answered, failed, still pending or not asked. */
  function addProviderRows(providers) {
    if (!providers || typeof providers !== "object") return;
    for (const key of ["plant_id", "plantnet"]) {
      const p = providers[key];
      if (!p || typeof p !== "object") continue;
      const name = PROVIDER_NAMES[key];
      if (p.status === "answered") addStep(`provider_${key}`, `${name} answered`, "", "done");
      else if (p.status === "failed") addStep(`provider_${key}`, `${name} failed`, providerFailure(p.error), "error");
      else if (p.status === "pending")
        addStep(`provider_${key}`, `${name} is slow`, "answered without it; the same photo again in a minute gets both", "warn");
      else if (p.status === "skipped")
        addStep(`provider_${key}`, `${name} not asked`, typeof p.reason === "string" ? p.reason : "", "warn");
    }
  }

  function providerFailure(kind) {
    return lookup(FAILURE_TEXT, String(kind || "")) || "had an error";
  }

  /** Signed in: upload → 202 → WebSocket progress (polling as the fallback) → results. */
  async function identifyLive(run) {
    addStep("uploading", "Uploading your photo");
    setPercent(5);
    // Asked alongside the upload: when both circuits are open the page says so at once.
    void api("/plant-identification/identify/health/").then((health) => {
      if (run === state.run && state.busy && health.ok && health.data?.status === "unavailable")
        startWaiting("both are paused after repeated failures");
    });
    const form = new FormData();
    form.append("image_1", state.file, state.file.name || "photo");
    form.append("organs", el.organSelect.value || "auto");
    let res = await api("/plant-identification/requests/", { method: "POST", form });
    if (res.status === 401 && (await refreshSession())) res = await api("/plant-identification/requests/", { method: "POST", form });
    if (run !== state.run) return;
    if (res.status === 401) {
      setUser(null);
      failRun("Your session has expired. Please sign in again, or identify without an account.");
      return;
    }
    if (res.status !== 202 || !res.data || !res.data.request_id) {
      const fieldErrors = res.data?.errors || {};
      const details = Object.values(fieldErrors)
        .flat()
        .filter((m) => typeof m === "string");
      const base = errorText(res, "The photo could not be uploaded. Please try again.");
      failRun(details.length > 0 && !details.includes(base) ? `${base} ${details.join(" ")}` : base);
      return;
    }
    const request = res.data;
    addStep("uploaded", "Photo uploaded", "saved to your history", "done");
    setPercent(10);
    await followRequest(run, request);
  }

  /**
   * Resolves when the request reaches a final status, by WebSocket when possible and by polling
   * otherwise; then shows the results.
   */
  function followRequest(run, request) {
    return new Promise((resolve) => {
      const requestId = request.request_id;
      let finished = false;
      let polling = false;
      let stallTimer = null;
      let lastStatus = request.status;
      let errorMessage = "";
      /** Providers asked, and those that failed, in the current attempt. */
      let asked = new Set();
      let failed = new Set();

      /**
       * Provider stages, retries and waits. A failed provider is a red row, never a tick; when
       * every provider asked has failed (or a retry is scheduled) the page enters the waiting
       * state: one notice and one row updated in place, instead of a row per stage per attempt.
       * Returns true when the message needs no row of its own.
       */
      const onProviderProgress = (stage, data) => {
        const d = data && typeof data === "object" ? data : {};
        if (stage === "processing_start") {
          asked = new Set();
          failed = new Set();
          if (state.waiting) {
            updateWaiting(Number(d.attempt) > 1 ? `trying again now (attempt ${d.attempt})` : "trying again now");
            return true;
          }
          return false;
        }
        if (stage === "plant_id_start" || stage === "plantnet_start") {
          asked.add(stage.replace(/_start$/, ""));
          return !!state.waiting;
        }
        if (stage === "plant_id_done" || stage === "plantnet_done") {
          const key = stage.replace(/_done$/, "");
          const name = PROVIDER_NAMES[key];
          asked.add(key);
          if (d.ok === false) {
            failed.add(key);
            if (!state.waiting) addStep(stage, `${name} failed`, providerFailure(d.error), "error", "server");
            if (failed.size >= asked.size) startWaiting("");
            return true;
          }
          stopWaiting();
          addStep(stage, `${name} answered`, stageDetail(stage, d), "done", "server");
          setPercent(50);
          return true;
        }
        if (stage === "merge_done" && state.waiting) return true;
        if (stage === "rate_limited" || stage === "retry_scheduled") {
          const parts = [];
          const delay = Number(stage === "rate_limited" ? d.retry_after : d.delay_seconds);
          if (delay > 0) parts.push(`next try in ${formatWait(delay)}`);
          if (d.attempt && d.max_attempts && d.reason !== "circuit_open") parts.push(`attempt ${d.attempt} of ${d.max_attempts}`);
          startWaiting(parts.join(" · "));
          updateWaiting(parts.join(" · "));
          return true;
        }
        return false;
      };

      const done = async (status) => {
        if (finished || run !== state.run) return;
        finished = true;
        stopLive();
        await showRequestResults(run, requestId, status, errorMessage);
        resolve();
      };

      const armStallCheck = () => {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(async () => {
          if (finished || polling || run !== state.run) return;
          const res = await api(`/plant-identification/requests/${encodeURIComponent(requestId)}/`);
          if (res.ok && res.data && FINAL_STATUSES.includes(res.data.status)) {
            errorMessage = errorMessage || res.data.error_message || "";
            void done(res.data.status);
          } else {
            armStallCheck();
          }
        }, STALL_CHECK_MS);
        state.timers.push(stallTimer);
      };

      const startPolling = (reason) => {
        if (polling || finished || run !== state.run) return;
        polling = true;
        clearTimeout(stallTimer);
        addStep("polling", "Checking for updates every 2 seconds", reason, "warn");
        const tick = async () => {
          if (finished || run !== state.run) return;
          let res = await api(`/plant-identification/requests/${encodeURIComponent(requestId)}/`);
          if (res.status === 401 && (await refreshSession()))
            res = await api(`/plant-identification/requests/${encodeURIComponent(requestId)}/`);
          if (finished || run !== state.run) return;
          if (res.ok && res.data) {
            const status = res.data.status;
            if (status !== lastStatus) {
              lastStatus = status;
              addStep(
                `status_${status}`,
                lookup(STATUS_TEXT, status) || String(status),
                "",
                FINAL_STATUSES.includes(status) ? "done" : "current",
              );
              if (status === "processing") setPercent(40);
            }
            if (FINAL_STATUSES.includes(status)) {
              errorMessage = res.data.error_message || errorMessage;
              void done(status);
              return;
            }
          } else if (res.status === 401 || res.status === 404) {
            finished = true;
            stopLive();
            failRun(res.status === 401 ? "Your session has expired. Please sign in again." : "This identification no longer exists.");
            resolve();
            return;
          }
          // Network hiccups and 5xx: keep trying.
          const timer = setTimeout(tick, POLL_INTERVAL_MS);
          state.timers.push(timer);
        };
        void tick();
      };

      const wsUrl = typeof request.ws_url === "string" && request.ws_url.startsWith("/ws/") ? request.ws_url : null;
      if (!wsUrl || typeof WebSocket === "undefined") {
        startPolling("live updates are not available");
        return;
      }

      let socket;
      try {
        socket = new WebSocket(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${wsUrl}`);
      } catch {
        startPolling("live updates are not available");
        return;
      }
      state.socket = socket;
      let opened = false;
      // Also covers a handshake that never completes.
      armStallCheck();

      socket.addEventListener("open", () => {
        opened = true;
        armStallCheck();
        const ping = setInterval(() => {
          if (socket.readyState === WebSocket.OPEN) socket.send("ping");
        }, PING_INTERVAL_MS);
        state.timers.push(ping);
      });

      socket.addEventListener("message", (event) => {
        if (finished || run !== state.run || typeof event.data !== "string" || event.data === "pong") return;
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!message || typeof message !== "object") return;
        if (message.request_id && message.request_id !== requestId) return;
        armStallCheck();
        switch (message.type) {
          case "init":
            addStep("connected", "Connected for live updates", "", "done", "server");
            break;
          case "progress": {
            const stage = String(message.stage || "");
            if (message.status) lastStatus = message.status;
            if (onProviderProgress(stage, message.data)) break;
            const info = lookup(STAGES, stage) || { label: stage.replace(/_/g, " "), pct: null };
            addStep(stage, info.label, stageDetail(stage, message.data), "current", "server");
            if (info.pct !== null) setPercent(info.pct);
            break;
          }
          case "error":
            // Shown once, by failRun when `completed` (failed) follows.
            errorMessage = typeof message.message === "string" ? message.message : "Identification failed.";
            break;
          case "completed":
            void done(String(message.status || "identified"));
            break;
          default:
            break;
        }
      });

      socket.addEventListener("close", (event) => {
        if (finished || run !== state.run) return;
        const reason = lookup(CLOSE_REASONS, event.code);
        if (event.code === 4403 || event.code === 4404) {
          finished = true;
          stopLive();
          failRun(`Live updates refused: ${reason}.`);
          resolve();
          return;
        }
        startPolling(
          reason ? `live updates closed: ${reason}` : opened ? "the live connection closed" : "could not open a live connection",
        );
      });
    });
  }

  async function showRequestResults(run, requestId, status, errorMessage) {
    const outage = !el.outage.hidden;
    if (state.waiting) {
      state.waiting.row.classList.remove("step--warn");
      state.waiting.row.classList.add(status === "failed" ? "step--error" : "step--done");
      state.waiting = null;
    }
    if (status === "failed") {
      // The failure's own message (with "Try again") replaces the notice: one message, not two.
      hideOutage();
      failRun(errorMessage || "Identification failed. Please try again.", requestId);
      tellCompleted("Identification failed");
      return;
    }
    if (outage) showOutage("done");
    addStep("fetching", "Fetching the results");
    const res = await api(`/plant-identification/requests/${encodeURIComponent(requestId)}/results/`);
    if (run !== state.run) return;
    if (!res.ok || !res.data) {
      failRun(errorText(res, "The results could not be loaded. Please reload the page."));
      return;
    }
    const results = Array.isArray(res.data.results) ? res.data.results : [];
    addStep(
      "completed",
      lookup(STATUS_TEXT, status) || "Finished",
      `${results.length} suggestion${results.length === 1 ? "" : "s"}`,
      "done",
    );
    setPercent(100);
    finishSteps(status === "needs_help" ? "warn" : "done");
    const top = results[0];
    tellCompleted(top ? `Identified: ${top.plant_name || top.scientific_name}` : "Identification finished");
    renderResults({
      care: res.data.care_instructions,
      summary: top
        ? `${top.plant_name && top.plant_name !== top.scientific_name ? `${top.plant_name} (${top.scientific_name})` : top.scientific_name} — ${percent(top.confidence_score)}% confidence.` +
          (status === "needs_help" ? " We are not sure; the community can help confirm it." : "")
        : "No suggestions were found. Try a clearer photo of one leaf or flower.",
      disease: res.data.disease_detection,
      cards: results.map((r) => ({
        name: r.plant_name,
        scientific: r.scientific_name,
        family: r.family,
        commonNames: r.common_names,
        confidence: r.confidence_score,
        sources:
          Array.isArray(r.sources) && r.sources.length > 0 ? r.sources : lookup(IDENTIFICATION_SOURCES, r.identification_source) || [],
        images: r.similar_images,
        description: r.description,
        rank: r.rank,
        primary: !!r.is_primary,
        resultId: r.id,
        gbifId: r.gbif_id,
      })),
    });
  }

  /** Stops following the current identification (its callbacks see a newer run and do nothing). */
  function cancelRun(reason) {
    const wasRunning = state.busy;
    state.run += 1;
    stopLive();
    state.busy = false;
    el.identifyForm.removeAttribute("aria-busy");
    updateIdentifyButton();
    if (wasRunning) {
      addStep("cancelled", "Stopped following this identification", reason, "warn");
      finishSteps("warn");
    }
  }

  function stopLive() {
    for (const timer of state.timers) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    state.timers = [];
    if (state.socket) {
      const socket = state.socket;
      state.socket = null;
      if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) socket.close(1000, "done");
    }
  }

  function formatWait(seconds) {
    const s = Math.round(Number(seconds));
    if (s >= 120) return `${Math.ceil(s / 60)} minutes`;
    return `${s} second${s === 1 ? "" : "s"}`;
  }

  /**
   * Tells someone who looked away that the identification finished: the tab's title says so
   * until the page is looked at again.
   */
  const PAGE_TITLE = document.title;
  function tellCompleted(text) {
    if (document.visibilityState === "visible") return;
    document.title = `${text} · Plant Community`;
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") document.title = PAGE_TITLE;
  });

  // ------------------------------------------------------------------------------------------
  // Results

  function renderResults(view) {
    el.resultsSummary.textContent = view.summary || "";
    renderHealth(view.disease);
    el.resultsList.replaceChildren(...view.cards.map(renderCard));
    const top = view.cards[0];
    renderCare(view.care, top ? capitalise(top.name && top.name !== top.scientific ? top.name : top.scientific) : "");
    if (view.cards.length === 0) {
      el.resultsList.append(h("li", "cards__empty", "No suggestions were found. Try a clearer photo of one leaf or flower."));
    }
    el.resultsPanel.hidden = false;
    foldLongDescriptions();
    el.resultsTitle.focus({ preventScroll: true });
    el.resultsPanel.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function renderHealth(disease) {
    el.health.replaceChildren();
    el.health.className = "health";
    if (!disease || typeof disease !== "object") {
      el.health.hidden = true;
      return;
    }
    el.health.hidden = false;
    if (disease.is_healthy) {
      el.health.classList.add("health--ok");
      el.health.append(h("span", "health__icon"), h("div", "health__body"));
      el.health.lastChild.append(
        h("strong", "health__title", "Looks healthy"),
        h("p", "health__text", "We found no sign of disease or pests in this photo."),
      );
      return;
    }
    el.health.classList.add("health--problem");
    const body = h("div", "health__body");
    const title = h("strong", "health__title", `Possible problem: ${disease.disease_name || "unknown"}`);
    body.append(title);
    if (disease.probability !== null && disease.probability !== undefined) {
      body.append(h("p", "health__meta", `${percent(disease.probability)}% likely`));
    }
    if (disease.description) body.append(h("p", "health__text", disease.description));
    if (disease.treatment) {
      const treatment = h("p", "health__text");
      treatment.append(h("strong", "", "Treatment: "), document.createTextNode(disease.treatment));
      body.append(treatment);
    }
    el.health.append(h("span", "health__icon"), body);
  }

  function renderCard(card, index) {
    const item = h("li", `card${card.primary ? " card--primary" : ""}`);
    item.dataset.rank = String(card.rank || index + 1);

    const head = h("div", "card__head");
    const titles = h("div", "card__titles");
    const name = card.name && card.name !== card.scientific ? card.name : card.scientific;
    titles.append(h("h3", "card__name", capitalise(name || "Unknown plant")));
    if (card.scientific) titles.append(h("p", "card__scientific", card.scientific));
    head.append(titles);
    if (index === 0) head.append(h("span", "card__badge", "Best match"));
    item.append(head);

    const facts = h("dl", "card__facts");
    if (card.family) addFact(facts, "Family", card.family);
    const others = (Array.isArray(card.commonNames) ? card.commonNames : []).filter((n) => n && n !== card.name).slice(0, 3);
    if (others.length > 0) addFact(facts, "Also called", others.join(", "));
    if (facts.childElementCount > 0) item.append(facts);

    const pct = percent(card.confidence);
    const confidence = h("div", "confidence");
    const label = h("div", "confidence__label");
    label.append(h("span", "", "Confidence"), h("span", "confidence__value", `${pct}%`));
    const meter = h("div", `confidence__track ${pct >= 50 ? "is-high" : pct >= 20 ? "is-mid" : "is-low"}`);
    meter.setAttribute("role", "meter");
    meter.setAttribute("aria-label", `Confidence for ${card.scientific || name}`);
    meter.setAttribute("aria-valuemin", "0");
    meter.setAttribute("aria-valuemax", "100");
    meter.setAttribute("aria-valuenow", String(pct));
    meter.setAttribute("aria-valuetext", `${pct}%`);
    const fill = h("div", "confidence__fill");
    fill.style.width = `${pct}%`;
    meter.append(fill);
    confidence.append(label, meter);
    item.append(confidence);

    const sources = (Array.isArray(card.sources) ? card.sources : []).filter((s) => typeof s === "string");
    if (sources.length > 0) {
      const list = h("ul", "badges");
      list.setAttribute("aria-label", "Identified by");
      for (const source of sources)
        list.append(h("li", `badge badge--${source.replace(/[^a-z_]/g, "")}`, lookup(SOURCE_NAMES, source) || source));
      item.append(list);
    }

    if (card.description) {
      const description = h("p", "card__description", card.description);
      item.append(description);
    }

    const link = speciesLink(card);
    if (link) {
      const links = h("p", "card__links");
      const a = h("a", "card__link", link.label);
      a.href = link.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.setAttribute("aria-label", `${link.label}: ${card.scientific || name} (opens in a new tab)`);
      links.append(a);
      item.append(links);
    }

    if (state.user && card.resultId) item.append(saveControl(card));

    const images = (Array.isArray(card.images) ? card.images : [])
      .filter((img) => img && /^https?:\/\//i.test(img.url_small || img.url || ""))
      .slice(0, MAX_SIMILAR_IMAGES);
    if (images.length > 0) {
      const gallery = h("ul", "gallery gallery--credited");
      gallery.setAttribute("aria-label", "Similar photos");
      images.forEach((image, i) => {
        const url = image.url_small || image.url;
        const cell = h("li", "gallery__item");
        const img = document.createElement("img");
        img.className = "gallery__img";
        img.loading = "lazy";
        img.decoding = "async";
        img.referrerPolicy = "no-referrer";
        img.alt = `Similar photo ${i + 1} of ${card.scientific || name}`;
        img.width = 160;
        img.height = 160;
        // Outside hosts may be unreachable: the cell keeps its size and shows a leaf instead.
        img.addEventListener("error", () => cell.classList.add("is-broken"), { once: true });
        img.src = url;
        cell.append(img);
        const credit = imageCredit(image);
        if (credit) cell.append(h("small", "gallery__credit", credit));
        gallery.append(cell);
      });
      item.append(gallery);
    }
    return item;
  }

  /**
   * Descriptions longer than three lines start folded, with a "Show more" button that unfolds
   * them (and tells screen readers so). Measured after layout, so it depends on the card's width.
   */
  function foldLongDescriptions() {
    el.resultsList.querySelectorAll(".card__description").forEach((description, i) => {
      description.classList.add("is-folded");
      if (description.scrollHeight <= description.clientHeight + 1) {
        description.classList.remove("is-folded");
        return;
      }
      description.id = `description-${state.run}-${i}`;
      const more = h("button", "link-button card__more", "Show more");
      more.type = "button";
      more.setAttribute("aria-expanded", "false");
      more.setAttribute("aria-controls", description.id);
      more.addEventListener("click", () => {
        const open = description.classList.toggle("is-folded") === false;
        more.setAttribute("aria-expanded", String(open));
        more.textContent = open ? "Show less" : "Show more";
      });
      description.after(more);
    });
  }

  /** Who took a similar photo and under which licence, as the provider credits it. */
  function imageCredit(image) {
    const citation = typeof image.citation === "string" ? image.citation.trim() : "";
    const license = typeof image.license === "string" ? image.license.trim() : "";
    if (citation && license && !citation.toLowerCase().includes(license.toLowerCase())) return `© ${citation} · ${license}`;
    if (citation) return `© ${citation}`;
    if (license) return `Licence: ${license}`;
    return "";
  }

  /** Where to read about a species: the provider's page, else GBIF, else a Wikipedia search. */
  function speciesLink(card) {
    if (typeof card.url === "string" && /^https:\/\//i.test(card.url)) {
      let host = "";
      try {
        host = new URL(card.url).hostname.replace(/^www\./, "");
      } catch {
        host = "";
      }
      return { href: card.url, label: /wikipedia\.org$/.test(host) ? "Read on Wikipedia" : "About this species" };
    }
    const gbif = Number(card.gbifId);
    if (Number.isInteger(gbif) && gbif > 0) return { href: `https://www.gbif.org/species/${gbif}`, label: "About this species on GBIF" };
    if (card.scientific) {
      return {
        href: `https://en.wikipedia.org/w/index.php?search=${encodeURIComponent(card.scientific)}`,
        label: "Look it up on Wikipedia",
      };
    }
    return null;
  }

  // ------------------------------------------------------------------------------------------
  // Care instructions

  function careText(value) {
    if (value === null || value === undefined) return "";
    // Enum values such as "very_easy" read as words; prose is kept as written.
    if (typeof value === "string") return /^[a-z_]+$/.test(value) ? value.replace(/_/g, " ") : value;
    if (Array.isArray(value)) return value.filter((v) => typeof v === "string" && v).join("; ");
    if (typeof value === "object") {
      return Object.values(value)
        .filter((v) => typeof v === "string" && v)
        .join(" — ");
    }
    return String(value);
  }

  /** The guide's language as a `lang` value (a language tag such as "fr"), or "" when it has none. */
  function careLanguage(value) {
    return typeof value === "string" && /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(value) ? value : "";
  }

  /** The care instructions the server wrote (AI guide) or derived (catalogue rules). */
  function renderCare(care, name) {
    el.careList.replaceChildren();
    if (!care || typeof care !== "object") {
      el.care.hidden = true;
      return;
    }
    // The guide's prose is in its own language (a French guide reads with a French voice); the
    // labels, the title and the English codes stay in the page's language.
    const language = careLanguage(care.language);
    for (const [key, label] of CARE_FIELDS) {
      const text = careText(care[key]);
      if (!text) continue;
      const row = h("div", "care__item");
      row.dataset.field = key;
      const value = h("dd", "", capitalise(text));
      if (language && !CARE_CODE_FIELDS.has(key)) value.lang = language;
      row.append(h("dt", "", label), value);
      el.careList.append(row);
    }
    if (el.careList.childElementCount === 0) {
      el.care.hidden = true;
      return;
    }
    el.careTitle.textContent = name ? `How to care for ${name}` : "How to care for it";
    el.careSource.textContent =
      care.source === "openai"
        ? "A care guide written for this species. Check it against your own conditions."
        : "General advice from our species catalogue.";
    el.care.hidden = false;
  }

  // ------------------------------------------------------------------------------------------
  // Saving to a collection

  async function loadCollections() {
    if (state.collections) return state.collections;
    const res = await api("/plant-identification/collections/?page_size=100");
    if (!res.ok || !res.data || !Array.isArray(res.data.results)) return null;
    // The default collection ("My Plants") first.
    state.collections = [...res.data.results].sort((a, b) => Number(b.is_default) - Number(a.is_default));
    return state.collections;
  }

  /** "Save to [collection] [Save]" for a saved result; idempotent on the server. */
  function saveControl(card) {
    const box = h("div", "save");
    const id = `save-${card.resultId}`;
    const label = h("label", "", "Save to");
    label.htmlFor = id;
    const select = document.createElement("select");
    select.id = id;
    select.disabled = true;
    select.append(new Option("Loading…", ""));
    const button = h("button", "button button--ghost save__button", "Save");
    button.type = "button";
    button.disabled = true;
    const status = h("span", "save__status");
    status.setAttribute("role", "status");
    box.append(label, select, button, status);
    void loadCollections().then((collections) => {
      select.replaceChildren();
      if (!collections || collections.length === 0) {
        select.append(new Option("My Plants", ""));
      } else {
        for (const c of collections) select.append(new Option(c.name, c.id));
      }
      select.disabled = false;
      button.disabled = false;
    });
    button.addEventListener("click", async () => {
      button.disabled = true;
      status.classList.remove("is-error");
      status.textContent = "Saving…";
      const body = select.value ? { collection_id: select.value } : {};
      const path = `/plant-identification/results/${encodeURIComponent(card.resultId)}/add_to_collection/`;
      let res = await api(path, { method: "POST", json: body });
      if (res.status === 401 && (await refreshSession())) res = await api(path, { method: "POST", json: body });
      button.disabled = false;
      const where = select.selectedOptions[0]?.textContent || "your plants";
      if (res.status === 201) {
        status.textContent = `Saved to ${where}.`;
        state.collections = null; // plant counts changed
      } else if (res.ok) {
        status.textContent = `Already in ${where}.`;
      } else {
        status.classList.add("is-error");
        status.textContent = errorText(res, "Could not save. Please try again.");
      }
    });
    return box;
  }

  // ------------------------------------------------------------------------------------------
  // History

  async function loadHistory() {
    if (!state.user) return;
    let res = await api("/plant-identification/history/?page_size=10");
    if (res.status === 401 && (await refreshSession())) res = await api("/plant-identification/history/?page_size=10");
    if (!state.user) return;
    if (!res.ok || !res.data || !Array.isArray(res.data.results)) {
      el.historyError.textContent = errorText(res, "Your history could not be loaded.");
      return;
    }
    el.historyError.textContent = "";
    const items = res.data.results;
    el.historyEmpty.hidden = items.length > 0;
    el.historyList.replaceChildren(...items.map(historyItem));
  }

  function historyItem(entry) {
    const item = h("li", "history__item");
    item.dataset.id = String(entry.id);
    item.dataset.status = String(entry.status);
    const text = h("div", "history__text");
    const name =
      entry.plant_name && entry.plant_name !== entry.scientific_name ? entry.plant_name : entry.scientific_name || "Not identified yet";
    text.append(h("span", "history__name", capitalise(name)));
    const meta = [lookup(STATUS_TEXT, entry.status) || String(entry.status)];
    if (typeof entry.confidence === "number") meta.push(`${percent(entry.confidence)}%`);
    const when = new Date(entry.created_at);
    if (!Number.isNaN(when.getTime())) meta.push(when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }));
    text.append(h("span", "history__meta", meta.join(" · ")));
    item.append(text);
    if (entry.status === "identified" || entry.status === "needs_help") {
      const view = h("button", "button button--ghost history__view", "View");
      view.type = "button";
      view.addEventListener("click", () => viewRequest(entry.id, entry.status));
      item.append(view);
    }
    if (entry.status === "failed" || entry.status === "needs_help") {
      const retry = h("button", "button button--ghost history__retry", "Try again");
      retry.type = "button";
      retry.disabled = state.busy;
      retry.addEventListener("click", () => void retryRequest(entry.id));
      item.append(retry);
    }
    return item;
  }

  /** Shows the results of an earlier identification from the history. */
  async function viewRequest(requestId, status) {
    if (state.busy) return;
    await runIdentification(async (run) => {
      addStep("history", "Opening an earlier identification");
      await showRequestResults(run, requestId, status, "");
    });
  }

  function addFact(list, term, value) {
    const row = h("div", "card__fact");
    row.append(h("dt", "", term), h("dd", "", value));
    list.append(row);
  }

  function capitalise(text) {
    return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
  }

  // ------------------------------------------------------------------------------------------
  // Wiring

  el.tabLogin.addEventListener("click", () => setAuthMode("login"));
  el.tabRegister.addEventListener("click", () => setAuthMode("register"));
  for (const tab of [el.tabLogin, el.tabRegister]) {
    tab.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
      const next = state.authMode === "login" ? "register" : "login";
      setAuthMode(next);
      (next === "login" ? el.tabLogin : el.tabRegister).focus();
    });
  }
  el.authForm.addEventListener("submit", onAuthSubmit);
  el.signoutButton.addEventListener("click", onSignOut);
  el.resendVerification.addEventListener("click", onResendVerification);
  el.signinLink.addEventListener("click", () => {
    setAuthMode("login");
    el.authUsername.focus({ preventScroll: true });
  });
  el.identifyForm.addEventListener("submit", onIdentifySubmit);
  el.retryButton.addEventListener("click", () => void retryRequest(state.retryRequestId));
  el.historyRefresh.addEventListener("click", () => void loadHistory());

  el.photoInput.addEventListener("change", () => {
    chooseFile(el.photoInput.files?.[0]);
  });
  el.previewImg.addEventListener("error", () => {
    // Not decodable by the browser; the server will say precisely what is wrong with it.
    if (!state.file) return;
    el.previewImg.hidden = true;
    el.previewFallback.hidden = false;
  });

  let dragDepth = 0;
  el.dropzone.addEventListener("dragenter", (event) => {
    event.preventDefault();
    dragDepth += 1;
    el.dropzone.classList.add("is-dragging");
  });
  el.dropzone.addEventListener("dragover", (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
  });
  el.dropzone.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) el.dropzone.classList.remove("is-dragging");
  });
  el.dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dragDepth = 0;
    el.dropzone.classList.remove("is-dragging");
    const file = event.dataTransfer?.files?.[0];
    if (file) chooseFile(file);
  });
  // A photo dropped next to the drop zone must not navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  window.addEventListener("pagehide", stopLive);

  setAuthMode("login");
  void loadSession();
})();
