/*
 * The session check shared by the pages (/identify/, /editor/): one copy of how a page learns
 * whether its visitor is signed in, and of when it may renew an expired access cookie. Loaded
 * (deferred) before each page's own app.js, which calls it through `window.PlantSession` with its
 * own `api(path, options)` (never throws; resolves to `{ok, status, data}`).
 *
 * The refresh cookie is HttpOnly, so a page cannot see whether it has one. The pages remember
 * instead that this browser signed in (one hint for the whole origin: signing in on one page
 * counts for the other), and only then try a refresh: anonymous visitors must not spend the
 * per-address refresh limit on every page load.
 */
(() => {
  const SESSION_HINT = "plant-community.signed-in";

  /** Records whether this browser is signed in (call it whenever the page's user changes). */
  function remember(signedIn) {
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

  /**
   * An expired access cookie is renewed once with the refresh cookie (rotation, API.md §1), only
   * in a browser that signed in. A refusal other than a 429 means the session is over: forgotten.
   */
  async function refresh(api) {
    if (!mayHaveSession()) return false;
    const res = await api("/auth/token/refresh/", { method: "POST", json: {} });
    if (!res.ok && res.status !== 429) remember(false);
    return res.ok;
  }

  /*
   * The signed-in user's profile, or null. Whether anyone is signed in is asked of csrf/, which
   * answers every visitor 200 with `signed_in`: asking auth/user/ would answer an anonymous
   * visitor 401, which the browser logs as an error in the console before the visitor has done
   * anything. The profile is read only for a live session — or one a refresh has just renewed.
   */
  async function currentUser(api) {
    const probe = await api("/auth/csrf/");
    const live = probe.ok && probe.data && probe.data.signed_in === true;
    if (!live && !(await refresh(api))) return null;
    let res = await api("/auth/user/");
    if (res.status === 401 && (await refresh(api))) res = await api("/auth/user/");
    return res.ok && res.data ? res.data : null;
  }

  /**
   * Two-factor sign-in (API.md "Two-factor sign-in"): a password sign-in of such an account is
   * answered 401 TWO_FACTOR_REQUIRED with a `two_factor_token`; this returns that token, or null.
   */
  function twoFactorChallenge(res) {
    return res.status === 401 && res.data && res.data.code === "TWO_FACTOR_REQUIRED" ? res.data.two_factor_token || null : null;
  }

  /**
   * The second step: the challenge's token with what the visitor typed — six digits (spaces
   * ignored) are the authenticator app's code, anything else one of their recovery codes. Answers
   * as login/ would have (the session cookies and `{message, user}`).
   */
  function verifySecondFactor(api, token, typed) {
    const entry = typed.trim();
    const digits = entry.replace(/\s/g, "");
    const factor = /^\d{6}$/.test(digits) ? { code: digits } : { recovery_code: entry };
    return api("/auth/2fa/verify/", { method: "POST", json: { two_factor_token: token, ...factor } });
  }

  /** The second step's token ran out or was spent: the sign-in starts again from the password. */
  function challengeEnded(res) {
    return res.status === 401 && res.data && res.data.code === "TWO_FACTOR_TOKEN_INVALID";
  }

  window.PlantSession = Object.freeze({ remember, refresh, currentUser, twoFactorChallenge, verifySecondFactor, challengeEnded });
})();
