// Caching and security headers (security issue item 9), end to end through the Worker:
// - every auth endpoint answer (tokens, session cookies, CSRF tokens) is `no-store` +
//   `Pragma: no-cache` (RFC 6749 §5.1), success and failure alike;
// - every answer to an authenticated request is `private, no-store` unless the route chose
//   its own Cache-Control; anonymous public reads keep theirs;
// - the static pages (/, /identify/) are served through the Worker with a CSP, framing
//   forbidden, nosniff and a Referrer-Policy.
import { describe, expect, it } from "vitest";
import { call, expectError, setCookies } from "../helpers/http";
import { bearerUser, GOOD_PASSWORD, registerWeb, uniqueName } from "../helpers/users";
import { openSocket } from "../helpers/ws";

function expectTokenResponseHeaders(res: Response, what: string) {
  expect(res.headers.get("Cache-Control") ?? "(none)", what).toMatch(/(^|,\s*)no-store(\s*,|$)/);
  expect(res.headers.get("Pragma"), what).toBe("no-cache");
}

describe("auth endpoints are never cached", () => {
  it("register, login, token, refresh, csrf, ws-ticket and password change answer no-store + Pragma", async () => {
    const csrf = await call("/api/v1/auth/csrf/");
    expect(csrf.status).toBe(200);
    expectTokenResponseHeaders(csrf, "csrf");

    const username = uniqueName("cache");
    const register = await call("/api/v1/auth/register/", {
      json: { username, email: `${username}@example.com`, password: GOOD_PASSWORD },
    });
    expect(register.status, await register.clone().text()).toBe(201);
    expect(setCookies(register).access_token).toBeDefined();
    expectTokenResponseHeaders(register, "register");

    const login = await call("/api/v1/auth/login/", { json: { username, password: GOOD_PASSWORD } });
    expect(login.status).toBe(200);
    expectTokenResponseHeaders(login, "login");

    const token = await call("/api/v1/auth/token/", { json: { username, password: GOOD_PASSWORD } });
    expect(token.status).toBe(200);
    expectTokenResponseHeaders(token, "token");
    const pair = (await token.json()) as { access: string; refresh: string };

    const refresh = await call("/api/v1/auth/token/refresh/", { json: { refresh: pair.refresh } });
    expect(refresh.status).toBe(200);
    expectTokenResponseHeaders(refresh, "token/refresh");
    const rotated = (await refresh.json()) as { access: string };

    const ticket = await call("/api/v1/auth/ws-ticket/", { method: "POST", bearer: rotated.access });
    expect(ticket.status).toBe(200);
    expectTokenResponseHeaders(ticket, "ws-ticket");

    const change = await call("/api/v1/auth/password/change/", {
      bearer: rotated.access,
      json: { old_password: GOOD_PASSWORD, new_password: "Another-Fine-Fern-77" },
    });
    expect(change.status, await change.clone().text()).toBe(200);
    expectTokenResponseHeaders(change, "password/change");
  });

  it("failures of the auth endpoints are not cached either", async () => {
    const wrong = await call("/api/v1/auth/login/", { json: { username: uniqueName("nobody"), password: "Not-The-Password-1" } });
    await expectError(wrong.clone(), 401, "INVALID_CREDENTIALS");
    expectTokenResponseHeaders(wrong, "failed login");
  });

  it("the OAuth callback keeps no-store and adds Pragma", async () => {
    const res = await call("/api/v1/auth/oauth/google/callback/?code=abc&state=forged");
    expect(res.status).toBe(302);
    expectTokenResponseHeaders(res, "oauth callback");
  });
});

describe("answers to authenticated requests are private", () => {
  it("bearer and cookie reads get private, no-store", async () => {
    const u = await bearerUser();
    const byBearer = await call("/api/v1/plant-identification/collections/", { bearer: u.access });
    expect(byBearer.status).toBe(200);
    expect(byBearer.headers.get("Cache-Control")).toBe("private, no-store");

    const byCookie = await call("/api/v1/notifications/", { cookies: u.cookies });
    expect(byCookie.status).toBe(200);
    expect(byCookie.headers.get("Cache-Control")).toBe("private, no-store");
  });

  it("error answers to authenticated requests too", async () => {
    const u = await bearerUser();
    const missing = await call(`/api/v1/plant-identification/collections/${crypto.randomUUID()}/`, { bearer: u.access });
    await expectError(missing.clone(), 404, "NOT_FOUND");
    expect(missing.headers.get("Cache-Control")).toBe("private, no-store");

    const noRoute = await call("/api/v1/nothing-here/", { bearer: u.access });
    await expectError(noRoute.clone(), 404, "NOT_FOUND");
    expect(noRoute.headers.get("Cache-Control")).toBe("private, no-store");

    // Credentials that do not check out still identify a private exchange.
    const revoked = await call("/api/v1/plant-identification/collections/", { bearer: "not-a-token" });
    await expectError(revoked.clone(), 401, "TOKEN_INVALID");
    expect(revoked.headers.get("Cache-Control")).toBe("private, no-store");
  });

  it("a route's own Cache-Control wins, and anonymous reads keep theirs", async () => {
    const u = await bearerUser();
    const species = await call("/api/v1/plant-identification/species/", { bearer: u.access });
    expect(species.status).toBe(200);
    expect(species.headers.get("Cache-Control")).toBe("public, max-age=60");

    const anonymous = await call("/api/v1/plant-identification/species/");
    expect(anonymous.headers.get("Cache-Control")).toBe("public, max-age=60");
    const anonymousMissing = await call("/api/v1/nothing-here/");
    expect(anonymousMissing.status).toBe(404);
    expect(anonymousMissing.headers.get("Cache-Control")).toBeNull();
  });

  it("leaves the WebSocket upgrade alone", async () => {
    const u = await registerWeb();
    const cookie = Object.entries(u.cookies)
      .map(([k, v]) => `${k}=${v}`)
      .join("; ");
    const socket = await openSocket("/ws/", { cookie });
    socket.ws.close(1000, "done");
  });
});

describe("static pages go through the Worker with security headers", () => {
  for (const path of ["/", "/identify/"]) {
    it(`${path} has a CSP, refuses framing and sniffing, and sets a Referrer-Policy`, async () => {
      const res = await call(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("Content-Type")).toMatch(/text\/html/);
      const html = await res.text();
      expect(html).toContain("Plant Community");
      const csp = res.headers.get("Content-Security-Policy") ?? "";
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toMatch(/script-src 'self'(;|$)/);
      expect(csp).not.toContain("unsafe-inline");
      expect(csp).not.toContain("unsafe-eval");
      expect(res.headers.get("X-Frame-Options")).toBe("DENY");
      expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
      expect(res.headers.get("Referrer-Policy")).toBe("strict-origin-when-cross-origin");
      // No inline script the CSP would block: every script comes from our origin.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
      expect(html).not.toMatch(/\son[a-z]+=/i);
    });
  }

  it("the page's own files are served with nosniff", async () => {
    const script = await call("/identify/app.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("Content-Type")).toMatch(/javascript/);
    expect(script.headers.get("X-Content-Type-Options")).toBe("nosniff");
    const style = await call("/identify/style.css");
    expect(style.status).toBe(200);
    expect(style.headers.get("X-Content-Type-Options")).toBe("nosniff");
  });

  it("an unknown page is still the JSON 404, and the docs keep their own CSP", async () => {
    await expectError(await call("/no-such-page.html"), 404, "NOT_FOUND");
    const docs = await call("/api/docs");
    expect(docs.status).toBe(200);
    expect(docs.headers.get("Content-Security-Policy")).toContain("script-src 'self'");
    expect(docs.headers.get("Content-Security-Policy")).toContain("frame-ancestors 'none'");
  });
});
