/*
 * The identification page (plain browser JavaScript, no build step).
 *
 * CSP-clean on purpose: this file is the only script, no inline handlers, and every piece of
 * server data reaches the page through textContent or element properties — never innerHTML —
 * because names, descriptions and error messages come from outside providers.
 *
 * Two ways to identify:
 *   - signed in: POST requests/ (202) → live progress on the request's WebSocket → results;
 *     when the socket cannot be used, poll the request every 2 s instead;
 *   - anonymous: POST identify/ and render its answer directly.
 */

(() => {
  const API = "/api/v1";
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
    authError: $("auth-error"),
    authSubmit: $("auth-submit"),
    signedIn: $("signed-in"),
    signedInName: $("signed-in-name"),
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
  };

  const state = {
    /** null = anonymous, undefined = not known yet. */
    user: undefined,
    authMode: "login",
    file: null,
    previewUrl: null,
    busy: false,
    /** Incremented per identification; callbacks of an older run do nothing. */
    run: 0,
    socket: null,
    timers: [],
    percent: 0,
  };

  // ------------------------------------------------------------------------------------------
  // Small helpers

  function h(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function getCookie(name) {
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) return decodeURIComponent(rest.join("="));
    }
    return "";
  }

  /** own-property lookup: server strings such as "constructor" must not reach the prototype. */
  function lookup(table, key) {
    return Object.hasOwn(table, key) ? table[key] : undefined;
  }

  function percent(value) {
    const n = Number(value);
    if (!Number.isFinite(n)) return 0;
    return Math.max(0, Math.min(100, Math.round(n * 100)));
  }

  /**
   * fetch() for the JSON API. Never throws: network failures come back as status 0. Unsafe
   * methods carry the CSRF double-submit header (API.md §1).
   */
  async function api(path, options = {}) {
    const method = options.method || "GET";
    const headers = { Accept: "application/json" };
    let body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.form) {
      body = options.form; // the browser sets the multipart boundary
    }
    if (method !== "GET" && method !== "HEAD") {
      const token = await csrfToken();
      if (token) headers["X-CSRFToken"] = token;
    }
    let res;
    try {
      res = await fetch(API + path, { method, headers, body, credentials: "same-origin", cache: "no-store" });
    } catch {
      return { ok: false, status: 0, data: null, headers: new Headers() };
    }
    let data = null;
    if ((res.headers.get("Content-Type") || "").includes("json")) {
      try {
        data = await res.json();
      } catch {
        data = null;
      }
    }
    return { ok: res.ok, status: res.status, data, headers: res.headers };
  }

  /**
   * The CSRF cookie (`__Host-csrftoken` when served over HTTPS, `csrftoken` in local
   * development), fetched from csrf/ when the browser has none yet.
   */
  function csrfCookie() {
    return getCookie("__Host-csrftoken") || getCookie("csrftoken");
  }
  async function csrfToken() {
    const existing = csrfCookie();
    if (existing) return existing;
    try {
      const res = await fetch(`${API}/auth/csrf/`, { credentials: "same-origin", cache: "no-store" });
      const data = await res.json();
      return csrfCookie() || (data && typeof data.csrfToken === "string" ? data.csrfToken : "");
    } catch {
      return "";
    }
  }

  /** A sentence for a failed API call: the envelope's message, else something by status. */
  function errorText(result, fallback) {
    const data = result.data;
    if (data && typeof data.message === "string" && data.message) return withRetryAfter(data.message, result);
    if (data && typeof data.error === "string" && data.error) return withRetryAfter(data.error, result);
    if (result.status === 0) return "Could not reach the server. Check your connection and try again.";
    if (result.status === 413) return "That photo is too large. Please choose one under 10 MB.";
    if (result.status === 429) return withRetryAfter("Too many attempts. Please wait a moment.", result);
    if (result.status >= 500) return "Something went wrong on our side. Please try again in a minute.";
    return fallback;
  }

  function withRetryAfter(message, result) {
    const retry = Number(result.headers?.get("Retry-After"));
    if (result.status === 429 && Number.isFinite(retry) && retry > 0 && !/\btry again in\b/i.test(message)) {
      const wait = retry >= 120 ? `${Math.ceil(retry / 60)} minutes` : `${retry} seconds`;
      return `${message} Try again in ${wait}.`;
    }
    return message;
  }

  // ------------------------------------------------------------------------------------------
  // Session

  /*
   * The refresh cookie is HttpOnly, so the page cannot see whether it has one. It remembers
   * instead that this browser signed in, and only then tries a refresh: anonymous visitors must
   * not spend the per-address refresh limit on every page load.
   */
  const SESSION_HINT = "plant-community.signed-in";

  function rememberSession(signedIn) {
    try {
      if (signedIn) localStorage.setItem(SESSION_HINT, "1");
      else localStorage.removeItem(SESSION_HINT);
    } catch {
      // Storage disabled: refreshes are simply not attempted.
    }
  }

  function mayHaveSession() {
    try {
      return localStorage.getItem(SESSION_HINT) === "1";
    } catch {
      return false;
    }
  }

  /** An expired access cookie is renewed once with the refresh cookie (rotation, API.md §1). */
  async function refreshSession() {
    if (!mayHaveSession()) return false;
    const res = await api("/auth/token/refresh/", { method: "POST", json: {} });
    if (!res.ok && res.status !== 429) rememberSession(false);
    return res.ok;
  }

  async function loadSession() {
    let res = await api("/auth/user/");
    if (res.status === 401 && (await refreshSession())) res = await api("/auth/user/");
    setUser(res.ok && res.data ? res.data : null);
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
    el.accountHint.hidden = signedIn;
    document.querySelector(".tabs").hidden = signedIn;
    el.modeHint.textContent = signedIn
      ? "Your identification is saved to your history; progress appears live below."
      : "You are not signed in: the photo is identified right away and nothing is saved. The plant part is only used for saved identifications.";
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
    clearAuthErrors();
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
      if (res.ok && res.data?.user) {
        el.authPassword.value = "";
        setUser(res.data.user);
      } else {
        showAuthErrors(res);
      }
    } finally {
      el.authSubmit.disabled = false;
      el.authSubmit.removeAttribute("aria-busy");
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
    stopLive();
    const run = ++state.run;
    state.busy = true;
    updateIdentifyButton();
    el.identifyForm.setAttribute("aria-busy", "true");
    el.identifyError.textContent = "";
    el.resultsPanel.hidden = true;
    resetProgress();
    try {
      if (state.user) await identifyLive(run);
      else await identifyNow(run);
    } finally {
      if (run === state.run) {
        state.busy = false;
        el.identifyForm.removeAttribute("aria-busy");
        updateIdentifyButton();
      }
    }
  }

  function failRun(message) {
    el.identifyError.textContent = message;
    addStep("failed", "Stopped", message, "error");
    finishSteps("failed");
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
    if (!res.ok || !data || data.success !== true) {
      failRun(errorText(res, "The photo could not be identified. Please try again."));
      return;
    }
    addStep("completed", "Done", `${data.suggestions.length} suggestion${data.suggestions.length === 1 ? "" : "s"}`, "done");
    setPercent(100);
    finishSteps("done");
    renderResults({
      summary: typeof data.summary === "string" ? data.summary : "",
      disease: data.disease_detection,
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
      })),
    });
  }

  /** Signed in: upload → 202 → WebSocket progress (polling as the fallback) → results. */
  async function identifyLive(run) {
    addStep("uploading", "Uploading your photo");
    setPercent(5);
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
            const info = lookup(STAGES, stage) || { label: stage.replace(/_/g, " "), pct: null };
            const warn = stage === "rate_limited" || stage === "retry_scheduled";
            addStep(stage, info.label, stageDetail(stage, message.data), warn ? "warn" : "current", "server");
            if (info.pct !== null) setPercent(info.pct);
            if (message.status) lastStatus = message.status;
            break;
          }
          case "error":
            errorMessage = typeof message.message === "string" ? message.message : "Identification failed.";
            addStep("error", "Problem", errorMessage, "error", "server");
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
    if (status === "failed") {
      failRun(errorMessage || "Identification failed. Please try again.");
      return;
    }
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
    renderResults({
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

  // ------------------------------------------------------------------------------------------
  // Results

  function renderResults(view) {
    el.resultsSummary.textContent = view.summary || "";
    renderHealth(view.disease);
    el.resultsList.replaceChildren(...view.cards.map(renderCard));
    if (view.cards.length === 0) {
      el.resultsList.append(h("li", "cards__empty", "No suggestions were found. Try a clearer photo of one leaf or flower."));
    }
    el.resultsPanel.hidden = false;
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

    const images = (Array.isArray(card.images) ? card.images : [])
      .map((img) => (img && (img.url_small || img.url)) || "")
      .filter((url) => /^https?:\/\//i.test(url))
      .slice(0, MAX_SIMILAR_IMAGES);
    if (images.length > 0) {
      const gallery = h("ul", "gallery");
      gallery.setAttribute("aria-label", "Similar photos");
      images.forEach((url, i) => {
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
        gallery.append(cell);
      });
      item.append(gallery);
    }
    return item;
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
  el.signinLink.addEventListener("click", () => {
    setAuthMode("login");
    el.authUsername.focus({ preventScroll: true });
  });
  el.identifyForm.addEventListener("submit", onIdentifySubmit);

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
