/*
 * The JSON API as the pages (/identify/, /editor/) call it: one copy of the request, the CSRF
 * double-submit header, the error sentences and the element builder. Loaded (deferred) before
 * /shared/session.js and each page's own app.js, which use it through `window.PlantApi`.
 */
(() => {
  const API = "/api/v1";

  /** A new element with an optional class and text (never HTML). */
  function h(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) return decodeURIComponent(rest.join("="));
    }
    return "";
  }

  /**
   * The CSRF cookie (`__Host-csrftoken` when served over HTTPS, `csrftoken` in local
   * development), fetched from csrf/ when the browser has none yet; "" when it cannot be had.
   */
  function csrfCookie() {
    return cookie("__Host-csrftoken") || cookie("csrftoken");
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

  /**
   * fetch() for the JSON API (`path` below /api/v1). Never throws: a network failure comes back
   * as status 0. Unsafe methods carry the CSRF double-submit header (API.md §1). `options.json`
   * is sent as JSON, `options.form` (FormData) as it is: the browser sets the multipart boundary.
   */
  async function request(path, options = {}) {
    const method = options.method || "GET";
    const headers = { Accept: "application/json" };
    let body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.form) {
      body = options.form;
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
    if ((res.headers.get("Content-Type") || "").includes("json")) data = await res.json().catch(() => null);
    return { ok: res.ok, status: res.status, data, headers: res.headers };
  }

  /** A sentence for a failed call: the envelope's message, else one by status, else `fallback`. */
  function errorText(result, fallback) {
    const data = result.data;
    if (data && typeof data.message === "string" && data.message) return withRetryAfter(data.message, result);
    if (data && typeof data.error === "string" && data.error) return withRetryAfter(data.error, result);
    if (result.status === 0) return "Could not reach the server. Check your connection and try again.";
    if (result.status === 413) return "That file is too large.";
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

  window.PlantApi = Object.freeze({ API, h, cookie, csrfToken, request, errorText });
})();
