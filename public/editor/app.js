/*
 * The blog editor (/editor/): sign in, list posts by status, write and reorder typed content
 * blocks, upload images, save (every save is a revision), preview the saved post as readers
 * see it, submit, publish, unpublish, schedule, compare revisions and restore one.
 * Talks only to the JSON API (/api/v1/…) with the session cookies and the CSRF header; all HTML
 * shown in the preview is the server's sanitised output.
 */
(() => {
  const WRITER_ROLES = ["author", "editor", "admin"];
  const PUBLISHER_ROLES = ["editor", "admin"];
  const BLOCK_LABELS = {
    heading: "Heading",
    paragraph: "Paragraph",
    quote: "Quote",
    code: "Code",
    image: "Image",
    plant_spotlight: "Plant spotlight",
    call_to_action: "Call to action",
    care_tip: "Care tip",
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    sessionStatus: $("session-status"),
    signout: $("signout-button"),
    signinPanel: $("signin-panel"),
    signinForm: $("signin-form"),
    signinError: $("signin-error"),
    noAccess: $("no-access"),
    noAccessUsername: $("no-access-username"),
    workspace: $("workspace"),
    tabs: $("status-tabs"),
    items: $("post-items"),
    empty: $("post-list-empty"),
    listStatus: $("post-list-status"),
    newPost: $("new-post"),
    title: $("editor-title"),
    status: $("post-status"),
    form: $("post-form"),
    postTitle: $("post-title"),
    slug: $("post-slug"),
    introduction: $("post-introduction"),
    categories: $("post-categories"),
    tags: $("post-tags"),
    featuredFile: $("post-featured-file"),
    featuredRef: $("post-featured-ref"),
    featuredThumb: $("post-featured-thumb"),
    featuredAlt: $("post-featured-alt"),
    blocks: $("blocks"),
    addType: $("add-block-type"),
    addBlock: $("add-block"),
    error: $("editor-error"),
    message: $("editor-message"),
    save: $("save-post"),
    submit: $("submit-post"),
    publish: $("publish-post"),
    unpublish: $("unpublish-post"),
    del: $("delete-post"),
    schedule: $("schedule"),
    scheduleAt: $("schedule-at"),
    schedulePost: $("schedule-post"),
    unschedule: $("unschedule-post"),
    previewSection: $("preview-section"),
    preview: $("preview"),
    revisionsSection: $("revisions-section"),
    revisions: $("revisions"),
    compare: $("compare-revisions"),
    diff: $("diff"),
  };

  const state = { user: null, status: "draft", post: null, categories: [] };

  // ------------------------------------------------------------------------------------------
  // HTTP

  const { h, request, errorText } = window.PlantApi;

  /**
   * The JSON API (/shared/api.js; never throws), renewing an expired access cookie once while
   * someone is signed in (/shared/session.js).
   */
  async function api(path, options = {}) {
    const res = await request(path, options);
    if (res.status === 401 && !options.retried && state.user && (await session.refresh(request))) {
      return api(path, { ...options, retried: true });
    }
    return res;
  }

  // ------------------------------------------------------------------------------------------
  // Session

  /*
   * Whether the visitor is signed in — and renewing an expired access cookie when this browser
   * signed in — is the check the identify page makes too: /shared/session.js (window.PlantSession),
   * loaded before this file.
   */
  const session = window.PlantSession;

  async function loadSession() {
    setUser(await session.currentUser(api));
  }

  function setUser(user) {
    state.user = user;
    session.remember(!!user);
    document.body.dataset.session = user ? "signed-in" : "anonymous";
    el.sessionStatus.dataset.state = user ? "signed-in" : "anonymous";
    el.sessionStatus.textContent = user ? `Signed in as ${user.username} (${user.role})` : "Not signed in";
    el.signout.hidden = !user;
    el.signinPanel.hidden = !!user;
    const writer = !!user && WRITER_ROLES.includes(user.role);
    el.noAccess.hidden = !user || writer;
    el.noAccessUsername.textContent = user ? user.username : "";
    el.workspace.hidden = !writer;
    if (writer) {
      void loadCategories();
      void loadPosts();
      newPost();
    }
  }

  /** A two-factor sign-in waiting for its code: the challenge's token, or null. */
  let twoFactorToken = null;

  function askForCode(token) {
    twoFactorToken = token;
    $("signin-code-field").hidden = token === null;
    $("signin-code").value = "";
    $("signin-username").disabled = token !== null;
    $("signin-password").disabled = token !== null;
    if (token !== null) $("signin-code").focus();
  }

  async function onSecondFactor() {
    const typed = $("signin-code").value;
    if (!typed.trim()) {
      el.signinError.textContent = "Enter the code from your authenticator app, or a recovery code.";
      return;
    }
    const res = await window.PlantSession.verifySecondFactor(api, twoFactorToken, typed);
    if (res.ok && res.data?.user) {
      askForCode(null);
      setUser(res.data.user);
    } else if (window.PlantSession.challengeEnded(res)) {
      askForCode(null);
      el.signinError.textContent = "That sign-in took too long. Enter your password again.";
    } else {
      el.signinError.textContent = errorText(res, "Could not sign in.");
    }
  }

  async function onSignIn(event) {
    event.preventDefault();
    el.signinError.textContent = "";
    if (twoFactorToken !== null) return onSecondFactor();
    const username = $("signin-username").value.trim();
    const password = $("signin-password").value;
    if (!username || !password) {
      el.signinError.textContent = "Enter your username and password.";
      return;
    }
    const res = await api("/auth/login/", { method: "POST", json: { username, password } });
    const challenge = window.PlantSession.twoFactorChallenge(res);
    if (res.ok && res.data?.user) {
      $("signin-password").value = "";
      setUser(res.data.user);
    } else if (challenge) {
      $("signin-password").value = "";
      askForCode(challenge);
    } else {
      el.signinError.textContent = errorText(res, "Could not sign in.");
    }
  }

  async function onSignOut() {
    await api("/auth/logout/", { method: "POST", json: {} });
    setUser(null);
  }

  const isPublisher = () => !!state.user && PUBLISHER_ROLES.includes(state.user.role);

  // ------------------------------------------------------------------------------------------
  // Post list

  async function loadCategories() {
    const res = await api("/blog/categories/");
    const list = res.ok ? res.data.results : [];
    state.categories = list;
    renderCategories(state.post ? categorySlugs(state.post) : []);
  }

  function renderCategories(selected) {
    el.categories.replaceChildren(
      ...state.categories.map((c) => {
        const label = h("label", "check");
        const box = h("input");
        box.type = "checkbox";
        box.value = c.slug;
        box.checked = selected.includes(c.slug);
        label.append(box, ` ${c.name}`);
        return label;
      }),
    );
  }

  async function loadPosts() {
    const status = state.status;
    const res = await api(`/blog/posts/?status=${encodeURIComponent(status)}&page_size=100`);
    // A slower answer for a tab no longer selected must not replace the current list.
    if (status !== state.status) return;
    const posts = res.ok ? res.data.results || [] : [];
    announceList(status, res.ok ? (typeof res.data.count === "number" ? res.data.count : posts.length) : null);
    el.items.dataset.status = status;
    el.items.replaceChildren(
      ...posts.map((p) => {
        const li = h("li", "post-list__item");
        const open = h("button", "post-list__open", p.title || "(untitled)");
        open.type = "button";
        open.dataset.id = p.id;
        open.addEventListener("click", () => void openPost(p.id));
        const meta = h("span", "muted", p.author ? `by ${p.author.username}` : "");
        li.append(open, meta);
        return li;
      }),
    );
    // A list that could not be loaded says so to the eye too, not "No posts here yet." (the status
    // region says it to a screen reader).
    el.empty.textContent = res.ok ? "No posts here yet." : listFailure(status);
    el.empty.hidden = posts.length > 0;
  }

  function listFailure(status) {
    return `The ${(LIST_NAMES[status] || ["post", "posts"])[1]} could not be loaded.`;
  }

  const LIST_NAMES = {
    draft: ["draft", "drafts"],
    review: ["post in review", "posts in review"],
    scheduled: ["scheduled post", "scheduled posts"],
    published: ["published post", "published posts"],
    unpublished: ["unpublished post", "unpublished posts"],
  };

  /**
   * Says what the list now holds ("12 drafts", "No posts in review") in a status region, not
   * the list itself: a live list would be read out whole at every tab switch and refresh. The
   * text is only replaced when it changes, so a refresh that changes nothing says nothing.
   */
  function announceList(status, count) {
    const [one, many] = LIST_NAMES[status] || ["post", "posts"];
    const text = count === null ? listFailure(status) : count === 0 ? `No ${many}` : `${count} ${count === 1 ? one : many}`;
    if (el.listStatus.textContent !== text) el.listStatus.textContent = text;
  }

  /** The selected tab is the only one in the Tab order; the arrow keys move between them (ARIA's tabs pattern). */
  function selectTab(status) {
    state.status = status;
    for (const tab of el.tabs.querySelectorAll("[role=tab]")) {
      const selected = tab.dataset.status === status;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    void loadPosts();
  }

  function onTabKey(event) {
    const tabs = [...el.tabs.querySelectorAll("[role=tab]")];
    const at = tabs.indexOf(event.target.closest("[role=tab]"));
    const to = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (at < 0 || to === undefined) return;
    event.preventDefault();
    const next = tabs[(to + tabs.length) % tabs.length];
    selectTab(next.dataset.status);
    next.focus();
  }

  // ------------------------------------------------------------------------------------------
  // Blocks

  function field(block, name, label, kind = "input", attrs = {}) {
    const wrap = h("div", "field");
    const id = `${block.dataset.key}-${name}`;
    const lab = h("label", "", label);
    lab.htmlFor = id;
    let input;
    if (kind === "select") {
      input = h("select");
      for (const option of attrs.options) {
        const o = h("option", "", option);
        o.value = option;
        input.append(o);
      }
    } else {
      input = h(kind);
      if (kind === "textarea") input.rows = attrs.rows || 4;
      else input.type = attrs.type || "text";
    }
    input.id = id;
    input.dataset.name = name;
    const error = h("p", "field__error");
    error.id = `${id}-error`;
    error.dataset.blockField = name;
    input.setAttribute("aria-describedby", error.id);
    wrap.append(lab, input, error);
    return wrap;
  }

  let blockKeys = 0;
  function blockNode(type, value, id) {
    const li = h("li", "block");
    li.dataset.type = type;
    li.dataset.key = `block-${++blockKeys}`;
    if (id) li.dataset.id = id;
    const head = h("div", "block__head");
    head.append(h("strong", "block__type", BLOCK_LABELS[type] || type));
    for (const [action, text] of [
      ["up", "Move up"],
      ["down", "Move down"],
      ["remove", "Delete block"],
    ]) {
      const b = h("button", "button button--ghost button--small", text);
      b.type = "button";
      b.dataset.action = action;
      head.append(b);
    }
    li.append(head);
    const body = h("div", "block__body");
    li.append(body);
    const v = value || {};
    const set = (name, val) => {
      const input = body.querySelector(`[data-name="${name}"]`);
      if (input && val !== undefined && val !== null) input.value = String(val);
    };
    switch (type) {
      case "heading":
        body.append(field(li, "value", "Heading text"));
        set("value", typeof value === "string" ? value : "");
        break;
      case "paragraph":
        body.append(field(li, "value", "Paragraph (HTML)", "textarea"));
        set("value", typeof value === "string" ? value : "");
        break;
      case "quote":
        body.append(field(li, "quote_text", "Quote (HTML)", "textarea", { rows: 2 }), field(li, "attribution", "Attribution"));
        set("quote_text", v.quote_text);
        set("attribution", v.attribution);
        break;
      case "code":
        body.append(field(li, "code", "Code", "textarea", { rows: 5 }), field(li, "language", "Language"));
        set("code", v.code);
        set("language", v.language);
        break;
      case "image": {
        const upload = field(li, "file", "Image file", "input", { type: "file" });
        upload.querySelector("input").accept = "image/jpeg,image/png,image/webp";
        const ref = h("input");
        ref.type = "hidden";
        ref.dataset.name = "image";
        const thumb = h("img", "thumb");
        thumb.alt = "";
        thumb.hidden = true;
        body.append(upload, ref, thumb, field(li, "alt", "Alt text (required)"), field(li, "caption", "Caption"));
        const existing = v.image || v.id;
        if (existing) {
          ref.value = existing;
          thumb.src = v.url || `/media/images/${existing}`;
          thumb.hidden = false;
        }
        set("alt", v.alt);
        set("caption", v.caption);
        upload.querySelector("input").addEventListener("change", (e) => void uploadInto(e.target, ref, thumb));
        break;
      }
      case "plant_spotlight": {
        const search = field(li, "species_search", "Find a species");
        const pick = h("select");
        pick.dataset.name = "species_id";
        pick.setAttribute("aria-label", "Species");
        if (v.species_id) {
          const o = h("option", "", v.scientific_name || v.species_id);
          o.value = v.species_id;
          pick.append(o);
        }
        search.querySelector("input").addEventListener("input", (e) => void findSpecies(e.target.value, pick));
        body.append(search, pick, field(li, "description", "Description (HTML)", "textarea", { rows: 3 }));
        body.append(field(li, "care_difficulty", "Care difficulty", "select", { options: ["easy", "moderate", "difficult"] }));
        set("description", v.description);
        set("care_difficulty", v.care_difficulty || "moderate");
        break;
      }
      case "call_to_action":
        body.append(
          field(li, "cta_title", "Title"),
          field(li, "cta_description", "Description (HTML)", "textarea", { rows: 2 }),
          field(li, "button_text", "Button text"),
          field(li, "button_url", "Button link (https://…, mailto: or /path)"),
          field(li, "button_style", "Button style", "select", { options: ["primary", "secondary", "outline"] }),
        );
        for (const name of ["cta_title", "cta_description", "button_text", "button_url", "button_style"]) set(name, v[name]);
        break;
      case "care_tip":
        body.append(field(li, "title", "Tip title"), field(li, "text", "Tip (HTML)", "textarea", { rows: 3 }));
        set("title", v.title);
        set("text", v.text);
        break;
    }
    return li;
  }

  let speciesTimer = 0;
  function findSpecies(q, pick) {
    clearTimeout(speciesTimer);
    if (q.trim().length < 2) return;
    speciesTimer = setTimeout(async () => {
      const res = await api(`/plant-identification/search/plants/?q=${encodeURIComponent(q.trim())}&limit=8`);
      const list = res.ok ? res.data.results || [] : [];
      pick.replaceChildren(
        ...list.map((s) => {
          const o = h("option", "", `${s.scientific_name}${s.common_names?.[0] ? ` (${s.common_names[0]})` : ""}`);
          o.value = s.id;
          return o;
        }),
      );
    }, 250);
  }

  async function uploadInto(input, ref, thumb) {
    const file = input.files?.[0];
    if (!file) return;
    const form = new FormData();
    form.append("image", file);
    setMessage("Uploading the image…");
    const res = await api("/blog/images/", { method: "POST", form });
    if (res.ok) {
      ref.value = res.data.id;
      thumb.src = res.data.url;
      thumb.hidden = false;
      setMessage("Image uploaded.");
    } else {
      el.error.textContent = errorText(res, "The image could not be uploaded.");
      setMessage("");
    }
  }

  function blockValue(li) {
    const get = (name) => {
      const input = li.querySelector(`[data-name="${name}"]`);
      return input ? input.value : "";
    };
    const type = li.dataset.type;
    switch (type) {
      case "heading":
      case "paragraph":
        return get("value");
      case "quote":
        return { quote_text: get("quote_text"), attribution: get("attribution") };
      case "code":
        return { code: get("code"), language: get("language") };
      case "image":
        return { image: get("image"), alt: get("alt"), caption: get("caption") };
      case "plant_spotlight":
        return { species_id: get("species_id"), description: get("description"), care_difficulty: get("care_difficulty") };
      case "call_to_action":
        return {
          cta_title: get("cta_title"),
          cta_description: get("cta_description"),
          button_text: get("button_text"),
          button_url: get("button_url"),
          button_style: get("button_style"),
        };
      case "care_tip":
        return { title: get("title"), text: get("text") };
      default:
        return null;
    }
  }

  function onBlockAction(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const li = button.closest(".block");
    if (button.dataset.action === "remove") li.remove();
    if (button.dataset.action === "up" && li.previousElementSibling) li.previousElementSibling.before(li);
    if (button.dataset.action === "down" && li.nextElementSibling) li.nextElementSibling.after(li);
    button.focus();
  }

  // ------------------------------------------------------------------------------------------
  // The post

  const categorySlugs = (post) => (post.categories || []).map((c) => (typeof c === "string" ? c : c.slug));

  function newPost() {
    state.post = null;
    el.form.reset();
    el.featuredRef.value = "";
    el.featuredThumb.hidden = true;
    el.blocks.replaceChildren(blockNode("paragraph", ""));
    renderCategories([]);
    el.title.textContent = "New post";
    showStatus();
    clearErrors();
    setMessage("");
    el.previewSection.hidden = true;
    el.revisionsSection.hidden = true;
  }

  async function openPost(id) {
    const res = await api(`/blog/posts/${id}/`);
    if (!res.ok) {
      el.error.textContent = errorText(res, "Could not open that post.");
      return;
    }
    fillForm(res.data);
    setMessage("");
    await Promise.all([renderPreview(), loadRevisions()]);
  }

  function fillForm(post) {
    state.post = post;
    clearErrors();
    el.title.textContent = post.title || "Untitled";
    el.postTitle.value = post.title || "";
    el.slug.value = post.slug || "";
    el.introduction.value = post.introduction || "";
    el.tags.value = (post.tags || []).join(", ");
    const featured = post.featured_image;
    const ref = featured && typeof featured === "object" ? featured.id || "" : featured || "";
    el.featuredRef.value = ref;
    el.featuredThumb.hidden = !ref;
    if (ref) el.featuredThumb.src = featured?.url || `/media/images/${ref}`;
    el.featuredAlt.value = post.featured_image_alt || featured?.alt || "";
    renderCategories(categorySlugs(post));
    el.blocks.replaceChildren(...(post.content_blocks || []).map((b) => blockNode(b.type, b.value, b.id)));
    showStatus();
  }

  function showStatus() {
    const post = state.post;
    const status = post ? post.status : "new";
    el.status.dataset.status = status;
    el.status.textContent = post ? (post.scheduled_at ? `${status}, scheduled` : status) : "not saved";
    const mine = post && state.user && post.author && post.author.id === state.user.id;
    el.submit.hidden = !post || !(mine || isPublisher()) || !["draft", "unpublished"].includes(status);
    el.publish.hidden = !post || !isPublisher() || status === "published";
    el.unpublish.hidden = !post || !isPublisher() || status !== "published";
    el.del.hidden = !post || (status === "published" && !isPublisher());
    el.schedule.hidden = !post || !isPublisher() || status === "published";
    el.unschedule.hidden = !post?.scheduled_at;
  }

  /**
   * The blocks a save sends: all but a paragraph or heading left empty (a new post starts with one
   * empty paragraph; readers would get it as an empty block). Field errors index into this list.
   */
  function sentBlocks() {
    return [...el.blocks.children].filter((li) => {
      const type = li.dataset.type;
      return !((type === "paragraph" || type === "heading") && !String(blockValue(li)).trim());
    });
  }

  function payload() {
    const tags = el.tags.value
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean);
    const categories = [...el.categories.querySelectorAll("input:checked")].map((b) => b.value);
    const body = {
      title: el.postTitle.value.trim(),
      introduction: el.introduction.value,
      categories,
      tags,
      content_blocks: sentBlocks().map((li) => ({
        type: li.dataset.type,
        value: blockValue(li),
        ...(li.dataset.id ? { id: li.dataset.id } : {}),
      })),
      featured_image: el.featuredRef.value || null,
      featured_image_alt: el.featuredAlt.value.trim(),
    };
    if (el.slug.value.trim()) body.slug = el.slug.value.trim();
    return body;
  }

  function clearErrors() {
    el.error.textContent = "";
    for (const p of el.form.querySelectorAll(".field__error")) p.textContent = "";
    for (const node of el.form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  /**
   * Field errors under their inputs: `content_blocks.3.value.alt` goes under block 4's alt. The
   * control a message describes (its aria-describedby) is marked invalid, and the first of them
   * in the form takes the focus, so a keyboard or screen reader user lands on what to fix.
   */
  function showErrors(result, fallback) {
    const errors = result.data?.errors || {};
    const unplaced = [];
    for (const [key, messages] of Object.entries(errors)) {
      const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
      const blockMatch = /^content_blocks\.(\d+)(?:\.value)?(?:\.(\w+))?/.exec(key);
      let slot = null;
      if (blockMatch) {
        const li = sentBlocks()[Number(blockMatch[1])];
        if (li) {
          const name = blockMatch[2] || "value";
          slot = li.querySelector(`[data-block-field="${name}"]`) || li.querySelector(".field__error");
        }
      } else {
        slot = el.form.querySelector(`.field__error[data-field="${CSS.escape(key)}"]`);
      }
      if (slot) {
        slot.textContent = `${slot.textContent} ${text}`.trim();
        markInvalid(slot);
      } else unplaced.push(`${key}: ${text}`);
    }
    el.error.textContent = [errorText(result, fallback), ...unplaced].join(" ");
    const first = el.form.querySelector("input[aria-invalid='true'], textarea[aria-invalid='true'], select[aria-invalid='true']");
    if (first) first.focus();
  }

  /** Marks the control(s) whose description is this error message (a fieldset's first control for a group). */
  function markInvalid(slot) {
    if (!slot.id) return;
    for (const owner of el.form.querySelectorAll(`[aria-describedby~="${CSS.escape(slot.id)}"]`)) {
      const control = owner.matches("input, textarea, select") ? owner : owner.querySelector("input, textarea, select");
      if (control) control.setAttribute("aria-invalid", "true");
    }
  }

  function setMessage(text) {
    el.message.textContent = text;
  }

  async function onSave(event) {
    event.preventDefault();
    clearErrors();
    const body = payload();
    el.save.disabled = true;
    try {
      const res = state.post
        ? await api(`/blog/posts/${state.post.id}/`, { method: "PATCH", json: body })
        : await api("/blog/posts/", { method: "POST", json: body });
      if (!res.ok) {
        showErrors(res, "The post could not be saved.");
        return;
      }
      fillForm(res.data);
      setMessage(`Saved (revision ${res.data.revision ?? "?"}).`);
      await Promise.all([renderPreview(), loadRevisions(), loadPosts()]);
    } finally {
      el.save.disabled = false;
    }
  }

  async function transition(action, json) {
    if (!state.post) return;
    clearErrors();
    const res = await api(`/blog/posts/${state.post.id}/${action}/`, { method: "POST", json: json || {} });
    if (!res.ok) {
      showErrors(res, "That did not work.");
      return;
    }
    const fresh = await api(`/blog/posts/${state.post.id}/`);
    if (fresh.ok) fillForm(fresh.data);
    const done = {
      submit: "Submitted for review.",
      publish: "Published.",
      unpublish: "Unpublished.",
      schedule: json?.publish_at ? "Scheduled." : "Schedule cancelled.",
    };
    setMessage(done[action] || "Done.");
    await Promise.all([loadPosts(), renderPreview()]);
  }

  async function onDelete() {
    if (!state.post || !confirm(`Delete "${state.post.title}"? This cannot be undone.`)) return;
    const res = await api(`/blog/posts/${state.post.id}/`, { method: "DELETE" });
    if (!res.ok) {
      showErrors(res, "The post could not be deleted.");
      return;
    }
    newPost();
    setMessage("Deleted.");
    await loadPosts();
  }

  function onSchedule() {
    const local = el.scheduleAt.value;
    if (!local) {
      el.error.textContent = "Choose a date and time first.";
      return;
    }
    void transition("schedule", { publish_at: new Date(local).toISOString(), revision: state.post?.revision });
  }

  // ------------------------------------------------------------------------------------------
  // Preview: the saved post as readers see it (server-sanitised HTML only)

  function html(className, markup) {
    const node = h("div", className);
    node.innerHTML = markup || ""; // sanitised by the server (src/lib/sanitise.ts)
    return node;
  }

  function renderBlock(block) {
    const v = block.value || {};
    switch (block.type) {
      case "heading":
        return h("h2", "reader__heading", block.value);
      case "paragraph":
        return html("reader__paragraph", block.value);
      case "quote": {
        const q = h("blockquote", "reader__quote");
        q.append(html("", v.quote_text));
        if (v.attribution) q.append(h("footer", "", `— ${v.attribution}`));
        return q;
      }
      case "code": {
        const pre = h("pre", "reader__code");
        pre.append(h("code", "", v.code));
        if (v.language) pre.dataset.language = v.language;
        return pre;
      }
      case "image": {
        const figure = h("figure", "reader__image");
        const img = h("img");
        const ref = v.image || v.id;
        img.src = v.url || `/media/images/${ref}`;
        img.alt = v.alt || "";
        if (v.width) img.width = v.width;
        if (v.height) img.height = v.height;
        figure.append(img);
        if (v.caption) figure.append(h("figcaption", "", v.caption));
        return figure;
      }
      case "plant_spotlight": {
        const box = h("aside", "reader__spotlight");
        box.append(h("h3", "", v.plant_name || v.scientific_name), h("p", "reader__scientific", v.scientific_name));
        box.append(html("", v.description), h("p", "muted", `Care: ${v.care_difficulty}`));
        return box;
      }
      case "call_to_action": {
        const box = h("aside", "reader__cta");
        box.append(h("h3", "", v.cta_title), html("", v.cta_description));
        const a = h("a", `button button--${v.button_style === "primary" ? "primary" : "ghost"}`, v.button_text);
        a.href = v.button_url;
        a.rel = "noopener";
        box.append(a);
        return box;
      }
      case "care_tip": {
        const box = h("aside", "reader__tip");
        box.append(h("h3", "", v.title), html("", v.text));
        return box;
      }
      default:
        return h("p", "muted", `(${block.type})`);
    }
  }

  async function renderPreview() {
    if (!state.post) return;
    const post = state.post;
    const article = [h("h1", "reader__title", post.title)];
    const meta = [
      post.reading_time ? `${post.reading_time} min read` : "",
      post.author ? `by ${post.author.display_name || post.author.username}` : "",
    ].filter(Boolean);
    article.push(h("p", "muted reader__meta", meta.join(" · ")));
    if (post.introduction) article.push(html("reader__intro", post.introduction));
    for (const block of post.rendered_blocks || post.content_blocks || []) article.push(renderBlock(block));
    el.preview.replaceChildren(...article);
    el.previewSection.hidden = false;
  }

  // ------------------------------------------------------------------------------------------
  // Revisions

  async function loadRevisions() {
    if (!state.post) return;
    const res = await api(`/blog/posts/${state.post.id}/revisions/`);
    const list = res.ok ? res.data.results : [];
    el.revisions.replaceChildren(
      ...list.map((r) => {
        const li = h("li", "revision");
        const label = h("label");
        const box = h("input");
        box.type = "checkbox";
        box.value = r.number;
        box.addEventListener("change", updateCompare);
        const when = new Date(r.created_at).toLocaleString();
        label.append(box, ` #${r.number} · ${when}${r.author ? ` · ${r.author.username}` : ""}${r.is_current ? " (current)" : ""}`);
        li.append(label);
        if (!r.is_current) {
          const restore = h("button", "button button--ghost button--small", "Restore");
          restore.type = "button";
          restore.dataset.revision = r.number;
          restore.addEventListener("click", () => void restoreRevision(r.number));
          li.append(restore);
        }
        return li;
      }),
    );
    el.revisionsSection.hidden = false;
    el.diff.replaceChildren();
    updateCompare();
  }

  function selectedRevisions() {
    return [...el.revisions.querySelectorAll("input:checked")].map((b) => Number(b.value)).sort((a, b) => a - b);
  }

  function updateCompare() {
    el.compare.disabled = selectedRevisions().length !== 2;
  }

  function describe(value) {
    if (value === null || value === undefined) return "(empty)";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  async function compareRevisions() {
    const [from, to] = selectedRevisions();
    const res = await api(`/blog/posts/${state.post.id}/revisions/diff/?from=${from}&to=${to}`);
    if (!res.ok) {
      el.diff.replaceChildren(h("p", "form__error", errorText(res, "Could not compare these revisions.")));
      return;
    }
    const d = res.data;
    const rows = [h("h3", "", `Revision ${from} → ${to}`)];
    const list = h("ul", "diff__list");
    for (const change of d.fields || d.changes || []) {
      const li = h("li", "diff__field");
      li.append(h("strong", "", change.field), " ", h("del", "", describe(change.from)), " ", h("ins", "", describe(change.to)));
      list.append(li);
    }
    const blocks = d.blocks || {};
    for (const kind of ["added", "removed", "changed", "moved"]) {
      for (const b of blocks[kind] || []) {
        const li = h("li", `diff__block diff__block--${kind}`);
        li.append(h("strong", "", `Block ${kind}`), ` ${b.type || b.after?.type || (b.before?.type) || ""}`);
        list.append(li);
      }
    }
    if (!list.children.length) list.append(h("li", "muted", "No differences."));
    rows.push(list);
    el.diff.replaceChildren(...rows);
  }

  async function restoreRevision(number) {
    const res = await api(`/blog/posts/${state.post.id}/revisions/${number}/restore/`, { method: "POST", json: {} });
    if (!res.ok) {
      showErrors(res, "That revision could not be restored.");
      return;
    }
    const fresh = await api(`/blog/posts/${state.post.id}/`);
    if (fresh.ok) fillForm(fresh.data);
    setMessage(`Revision ${number} restored as a new revision.`);
    await Promise.all([renderPreview(), loadRevisions()]);
  }

  // ------------------------------------------------------------------------------------------
  // Wiring

  el.signinForm.addEventListener("submit", (e) => void onSignIn(e));
  el.signout.addEventListener("click", () => void onSignOut());
  el.tabs.addEventListener("click", (e) => {
    const tab = e.target.closest("[role=tab]");
    if (tab) selectTab(tab.dataset.status);
  });
  el.tabs.addEventListener("keydown", onTabKey);
  el.newPost.addEventListener("click", newPost);
  el.addBlock.addEventListener("click", () => {
    const node = blockNode(el.addType.value, null);
    el.blocks.append(node);
    const first = node.querySelector("input, textarea, select");
    if (first) first.focus();
  });
  el.blocks.addEventListener("click", onBlockAction);
  el.form.addEventListener("submit", (e) => void onSave(e));
  el.submit.addEventListener("click", () => void transition("submit"));
  // The revision on screen is the one being approved: a save since then is a 409, not a surprise.
  el.publish.addEventListener("click", () => void transition("publish", { revision: state.post?.revision }));
  el.unpublish.addEventListener("click", () => void transition("unpublish"));
  el.del.addEventListener("click", () => void onDelete());
  el.schedulePost.addEventListener("click", onSchedule);
  el.unschedule.addEventListener("click", () => void transition("schedule", { publish_at: null }));
  el.featuredFile.addEventListener("change", (e) => void uploadInto(e.target, el.featuredRef, el.featuredThumb));
  el.compare.addEventListener("click", () => void compareRevisions());

  void loadSession();
})();
