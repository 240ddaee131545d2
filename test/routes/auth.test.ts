import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { makePng } from "../helpers/images";
import { call, expectError, freshIp, setCookies } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { eventually } from "../helpers/wait";
import { bearerUser, GOOD_PASSWORD, registerWeb, tokenLogin, uniqueName } from "../helpers/users";

const ISS = "plant-community";
const AUD = "plant-community-api";
const SECRET = new TextEncoder().encode(env.JWT_SECRET!);
const emulators = useEmulators();
const SESSION_ENDED = "This session has ended. Please sign in again.";

describe("register → login → user → refresh → reuse → logout (web, cookies)", () => {
  it("runs the whole cookie session lifecycle", async () => {
    const username = uniqueName("webber");
    const reg = await call("/api/v1/auth/register/", {
      json: { username, email: `${username}@example.com`, password: GOOD_PASSWORD, password_confirm: GOOD_PASSWORD },
    });
    expect(reg.status).toBe(201);
    const regBody = (await reg.json()) as { message: string; user: { id: string; username: string; email: string; trust_level: string } };
    expect(regBody.user).toMatchObject({ username, email: `${username}@example.com`, trust_level: "new" });

    const cookies = setCookies(reg);
    expect(cookies.access_token!.attributes).toMatchObject({ httponly: true, path: "/", samesite: "Lax" });
    expect(cookies.refresh_token!.attributes).toMatchObject({ httponly: true, path: "/api/v1/auth/" });
    expect(cookies.csrftoken!.attributes.httponly).toBeUndefined();

    // The default collection exists.
    const collection = await env.DB.prepare("SELECT name, is_default FROM collections WHERE user_id = ?")
      .bind(regBody.user.id)
      .first<{ name: string; is_default: number }>();
    expect(collection).toEqual({ name: "My Plants", is_default: 1 });

    // Login sets fresh cookies.
    const ip = freshIp();
    const login = await call("/api/v1/auth/login/", { json: { username, password: GOOD_PASSWORD }, ip });
    expect(login.status).toBe(200);
    const session = setCookies(login);
    // The CSRF token belongs to the session: sign-in sets a new one.
    const csrf = session.csrftoken!.value;
    expect(csrf).not.toBe(cookies.csrftoken!.value);
    const jar = { access_token: session.access_token!.value, refresh_token: session.refresh_token!.value, csrftoken: csrf };

    const me = await call("/api/v1/auth/user/", { cookies: jar });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ id: regBody.user.id, username, is_staff: false });

    // Refresh by cookie needs CSRF.
    await expectError(await call("/api/v1/auth/token/refresh/", { method: "POST", cookies: jar }), 403, "CSRF_FAILED");
    const refreshed = await call("/api/v1/auth/token/refresh/", {
      method: "POST",
      cookies: jar,
      headers: { "X-CSRFToken": csrf },
    });
    expect(refreshed.status).toBe(200);
    const rotated = setCookies(refreshed);
    expect(rotated.refresh_token!.value).not.toBe(jar.refresh_token);

    // Reusing the old refresh token after the reuse window is theft: 401, and the whole family is revoked.
    await ageRotations(regBody.user.id, 90);
    const reuse = await call("/api/v1/auth/token/refresh/", { json: { refresh: jar.refresh_token } });
    expect((await expectError(reuse, 401, "TOKEN_REUSED")).message).toBe("Refresh token has already been used. Please sign in again.");
    // The session's newest token was never used: it is told the session ended, not that it was used.
    const afterTheft = await call("/api/v1/auth/token/refresh/", { json: { refresh: rotated.refresh_token!.value } });
    expect((await expectError(afterTheft, 401, "TOKEN_REUSED")).message).toBe(SESSION_ENDED);

    // The revoked family's access token stops working at once, not when it expires.
    await expectError(
      await call("/api/v1/auth/user/", { cookies: { ...jar, access_token: rotated.access_token!.value } }),
      401,
      "TOKEN_INVALID",
    );

    // Logout (cookie-authenticated → CSRF required) revokes and clears.
    const again = setCookies(await call("/api/v1/auth/login/", { json: { username, password: GOOD_PASSWORD }, ip }));
    const jar2 = { access_token: again.access_token!.value, refresh_token: again.refresh_token!.value, csrftoken: again.csrftoken!.value };
    await expectError(await call("/api/v1/auth/logout/", { method: "POST", cookies: jar2 }), 403, "CSRF_FAILED");
    const logout = await call("/api/v1/auth/logout/", { method: "POST", cookies: jar2, headers: { "X-CSRFToken": jar2.csrftoken } });
    expect(logout.status).toBe(200);
    const cleared = setCookies(logout);
    expect(cleared.access_token!.attributes["max-age"]).toBe("0");
    const afterLogout = await call("/api/v1/auth/user/", { cookies: jar2 });
    await expectError(afterLogout, 401, "TOKEN_INVALID");
    expect(afterLogout.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    // The signed-out session's refresh token, never used, is refused as the session's end.
    const lateRefresh = await call("/api/v1/auth/token/refresh/", { json: { refresh: jar2.refresh_token } });
    expect((await expectError(lateRefresh, 401, "TOKEN_REUSED")).message).toBe(SESSION_ENDED);
  });

  it.each(["/api/v1/auth/csrf/", "/api/csrf/"])("%s issues a readable csrftoken cookie", async (path) => {
    const res = await call(path);
    const body = (await res.json()) as { csrfToken: string };
    expect(setCookies(res).csrftoken!.value).toBe(body.csrfToken);
  });

  it.each(["/api/v1/auth/csrf/", "/api/csrf/"])("%s says whether the caller is signed in, answering 200 either way", async (path) => {
    const anonymous = await call(path);
    expect(anonymous.status).toBe(200);
    expect(((await anonymous.json()) as { signed_in: boolean }).signed_in).toBe(false);

    const u = await registerWeb();
    const byCookie = await call(path, { cookies: { access_token: u.cookies.access_token! } });
    expect(byCookie.status).toBe(200);
    expect(((await byCookie.json()) as { signed_in: boolean }).signed_in).toBe(true);

    const { access } = await tokenLogin(u.username);
    const byBearer = await call(path, { headers: { Authorization: `Bearer ${access}` } });
    expect(((await byBearer.json()) as { signed_in: boolean }).signed_in).toBe(true);

    // A session that ended is not signed in, and still a 200 (auth/user/ would answer 401).
    const logout = await call("/api/v1/auth/logout/", { method: "POST", json: {}, cookies: u.cookies, headers: { "X-CSRFToken": u.csrf } });
    expect(logout.status).toBe(200);
    const ended = await call(path, { cookies: { access_token: u.cookies.access_token! } });
    expect(ended.status).toBe(200);
    expect(((await ended.json()) as { signed_in: boolean }).signed_in).toBe(false);
  });

  it("the web client's /api/csrf/ token lets its cookie-authenticated write through", async () => {
    const u = await registerWeb();
    const csrf = await call("/api/csrf/", { cookies: { access_token: u.cookies.access_token! } });
    const token = ((await csrf.json()) as { csrfToken: string }).csrfToken;
    const cookies = { ...u.cookies, csrftoken: setCookies(csrf).csrftoken!.value };
    const write = await call("/api/v1/auth/user/", {
      method: "PATCH",
      json: { first_name: "Ivy" },
      cookies,
      headers: { "X-CSRFToken": token },
    });
    expect(write.status, await write.clone().text()).toBe(200);
    const refused = await call("/api/v1/auth/user/", { method: "PATCH", json: { first_name: "Ivy" }, cookies });
    expect(refused.status).toBe(403);
  });
});

/** Pretends the user's refresh rotations happened `seconds` ago (past the reuse window). */
async function ageRotations(userId: string, seconds: number) {
  await env.DB.prepare("UPDATE refresh_tokens SET revoked_at = revoked_at - ? WHERE user_id = ? AND revoked_at IS NOT NULL")
    .bind(seconds, userId)
    .run();
}

describe("mobile tokens", () => {
  it("token/ returns a bearer pair, which works without CSRF", async () => {
    const { username, userId } = await registerWeb();
    const pair = await tokenLogin(username);
    expect(pair.token_type).toBe("Bearer");
    expect(pair.expires_in).toBe(900);
    const me = await call("/api/v1/auth/user", { bearer: pair.access });
    expect(((await me.json()) as { id: string }).id).toBe(userId);
    const ticket = await call("/api/v1/auth/ws-ticket/", { method: "POST", bearer: pair.access });
    expect(ticket.status).toBe(200);
    expect(await ticket.json()).toMatchObject({ expires_in: 60 });

    const refreshed = await call("/api/v1/auth/token/refresh/", { json: { refresh: pair.refresh } });
    expect(refreshed.status).toBe(200);
    const next = (await refreshed.json()) as { access: string; refresh: string };
    expect(next.refresh).not.toBe(pair.refresh);
    expect((await call("/api/v1/auth/user", { bearer: next.access })).status).toBe(200);
  });

  it("refresh without a token is 400", async () => {
    await expectError(await call("/api/v1/auth/token/refresh/", { method: "POST" }), 400, "VALIDATION_ERROR");
  });

  it("an expired refresh token (a phone offline past its 7 days) says to sign in again, not to refresh", async () => {
    const u = await bearerUser();
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ type: "refresh", fam: crypto.randomUUID() })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(u.userId)
      .setJti(crypto.randomUUID())
      .setIssuedAt(now - 8 * 86_400)
      .setExpirationTime(now - 86_400)
      .setIssuer(ISS)
      .setAudience(AUD)
      .sign(SECRET);
    const res = await call("/api/v1/auth/token/refresh/", { json: { refresh: expired } });
    expect((await expectError(res, 401, "TOKEN_EXPIRED")).message).toBe("This session has expired. Please sign in again.");
    // An expired access token is still the one to refresh.
    const access = await new SignJWT({ type: "access", sid: crypto.randomUUID() })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(u.userId)
      .setJti(crypto.randomUUID())
      .setIssuedAt(now - 1000)
      .setExpirationTime(now - 100)
      .setIssuer(ISS)
      .setAudience(AUD)
      .sign(SECRET);
    expect((await expectError(await call("/api/v1/auth/user/", { bearer: access }), 401, "TOKEN_EXPIRED")).message).toBe(
      "Token has expired.",
    );
  });

  it("a cookie-authenticated unsafe request without CSRF is 403", async () => {
    const s = await registerWeb();
    await expectError(await call("/api/v1/auth/ws-ticket/", { method: "POST", cookies: s.cookies }), 403, "CSRF_FAILED");
    const ok = await call("/api/v1/auth/ws-ticket/", { method: "POST", cookies: s.cookies, headers: { "X-CSRFToken": s.csrf } });
    expect(ok.status).toBe(200);
  });
});

describe("forged and misused tokens are refused", () => {
  async function forge(claims: Record<string, unknown>, opts: { key?: Uint8Array; exp?: number; alg?: string } = {}) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ type: "access", ...claims })
      .setProtectedHeader({ alg: opts.alg ?? "HS256" })
      .setSubject(String(claims.sub))
      .setJti(crypto.randomUUID())
      .setIssuedAt(now - 10)
      .setExpirationTime(opts.exp ?? now + 600)
      .setIssuer((claims.iss as string) ?? ISS)
      .setAudience((claims.aud as string) ?? AUD)
      .sign(opts.key ?? SECRET);
  }

  type Forgery = (u: Awaited<ReturnType<typeof bearerUser>>, now: number) => Promise<string> | string;
  const b64 = (o: unknown) => btoa(JSON.stringify(o)).replaceAll("=", "").replaceAll("+", "-").replaceAll("/", "_");
  const forgeries: [string, Forgery][] = [
    [
      "none",
      (u, now) =>
        `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: u.userId, jti: "x", iat: now, exp: now + 600, iss: ISS, aud: AUD, type: "access" })}.`,
    ],
    ["wrongKey", (u) => forge({ sub: u.userId }, { key: new TextEncoder().encode("another-secret-another-secret-another-secret") })],
    ["wrongAud", (u) => forge({ sub: u.userId, aud: "someone-else" })],
    ["wrongIss", (u) => forge({ sub: u.userId, iss: "https://evil.example" })],
    ["refreshAsAccess", (u) => u.refresh],
    ["expired", (u, now) => forge({ sub: u.userId }, { exp: now - 5 })],
    ["hs512", (u) => forge({ sub: u.userId }, { alg: "HS512" })],
    ["garbage", () => "not-a-jwt"],
  ];

  it.each(forgeries)("rejects a forged or misused access token: %s", async (name, make) => {
    const u = await bearerUser();
    const token = await make(u, Math.floor(Date.now() / 1000));
    const res = await call("/api/v1/auth/user/", { bearer: token });
    expect(res.status, name).toBe(401);
    expect(res.headers.get("WWW-Authenticate"), name).toMatch(/^Bearer/);
    const body = (await res.json()) as { code: string };
    expect(["TOKEN_INVALID", "TOKEN_EXPIRED"], name).toContain(body.code);
    // The genuine token still works.
    expect((await call("/api/v1/auth/user/", { bearer: u.access })).status).toBe(200);
  });

  it("an access token used as a refresh token is refused too", async () => {
    const u = await bearerUser();
    await expectError(await call("/api/v1/auth/token/refresh/", { json: { refresh: u.access } }), 401, "TOKEN_INVALID");
    // The genuine token still works.
    expect((await call("/api/v1/auth/user/", { bearer: u.access })).status).toBe(200);
  });

  it("no credentials → 401 AUTHENTICATION_REQUIRED with WWW-Authenticate", async () => {
    const res = await call("/api/v1/auth/user/");
    await expectError(res, 401, "AUTHENTICATION_REQUIRED");
    expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
  });

  it("an Authorization header in another form is told the form it must have, not that no credentials came", async () => {
    const u = await bearerUser();
    for (const header of [u.access, `Token ${u.access}`, "Basic YW5uOnB3", "Bearer"]) {
      const res = await call("/api/v1/auth/user/", { headers: { Authorization: header } });
      const body = await expectError(res, 401, "AUTHENTICATION_REQUIRED");
      expect(body.message, header).toBe(
        'The Authorization header must be "Bearer <access token>", with the access token from auth/token/.',
      );
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    }
    // Anonymous reads are not refused for it.
    expect((await call("/api/v1/forum/categories/", { headers: { Authorization: u.access } })).status).toBe(200);
  });
});

describe("registration rules", () => {
  it.each<[string, (username: string) => string, RegExp]>([
    ["too short", () => "short-Pw1!", /too short/],
    ["entirely numeric", () => "123456789012345", /entirely numeric/],
    ["too common", () => "password123456", /too common/],
    ["too similar to the username", (username) => `${username}-x`, /too similar/],
  ])("enforces the password policy with field errors: %s", async (_label, password, message) => {
    const username = uniqueName("policy");
    const res = await call("/api/v1/auth/register/", {
      json: { username, email: `${username}@example.com`, password: password(username) },
    });
    const body = await expectError(res, 400, "VALIDATION_ERROR");
    expect(body.errors?.password?.join(" ")).toMatch(message);
  });

  it("a password confirmation that differs is a field error", async () => {
    const username = uniqueName("policy");
    const mismatch = await call("/api/v1/auth/register/", {
      json: { username, email: `${username}@example.com`, password: GOOD_PASSWORD, password_confirm: "different" },
    });
    expect((await expectError(mismatch, 400, "VALIDATION_ERROR")).errors?.password_confirm).toBeDefined();
  });

  it("a body refused for another field also names what is wrong with the password, so a form shows it all at once", async () => {
    const res = await call("/api/v1/auth/register/", {
      json: { username: "x", email: "not-an-email", password: "123", password_confirm: "1234" },
    });
    const errors = (await expectError(res, 400, "VALIDATION_ERROR")).errors;
    expect(errors?.username).toBeDefined();
    expect(errors?.email).toBeDefined();
    expect(errors?.password).toEqual([
      "This password is too short. It must contain at least 12 characters.",
      "This password is entirely numeric.",
    ]);
    expect(errors?.password_confirm).toEqual(["Passwords do not match."]);
    // A good password is not complained about for the others' sake.
    const good = await call("/api/v1/auth/register/", { json: { username: "x", email: "ok@example.com", password: GOOD_PASSWORD } });
    expect((await expectError(good, 400, "VALIDATION_ERROR")).errors).toEqual({ username: ["Username must be at least 3 characters."] });
  });

  it("sign-in bodies take fields they do not know, and a misspelt one leaves the real field named as required", async () => {
    const u = await bearerUser();
    // Extra fields some clients send (docs/api.md, "Unknown fields in sign-in bodies").
    const extras = await call("/api/v1/auth/token/", {
      json: { username: u.username, password: GOOD_PASSWORD, device_name: "Pixel", remember_me: true },
    });
    expect(extras.status).toBe(200);
    const misspelt = await call("/api/v1/auth/token/", { json: { username: u.username, passwrod: GOOD_PASSWORD } });
    expect((await expectError(misspelt, 400, "VALIDATION_ERROR")).errors).toEqual({ password: ["This field is required."] });
    const username = uniqueName("typo");
    const register = await call("/api/v1/auth/register/", {
      json: { username, email: `${username}@example.com`, pasword: GOOD_PASSWORD },
    });
    expect((await expectError(register, 400, "VALIDATION_ERROR")).errors).toEqual({ password: ["This field is required."] });
    const reset = await call("/api/v1/auth/password/reset/confirm/", { json: { token: "a-token-nobody-has", new_pasword: GOOD_PASSWORD } });
    expect((await expectError(reset, 400, "VALIDATION_ERROR")).errors).toEqual({ new_password: ["This field is required."] });
  });

  it("usernames and emails are unique case-insensitively", async () => {
    const s = await registerWeb();
    const res = await call("/api/v1/auth/register/", {
      json: { username: s.username.toUpperCase(), email: s.email.toUpperCase(), password: GOOD_PASSWORD },
    });
    const body = await expectError(res, 400, "VALIDATION_ERROR");
    expect(body.errors?.username).toBeDefined();
    expect(body.errors?.email).toBeDefined();
  });

  it("rejects bad usernames and emails", async () => {
    const res = await call("/api/v1/auth/register/", { json: { username: "a b", email: "nope", password: GOOD_PASSWORD } });
    const body = await expectError(res, 400, "VALIDATION_ERROR");
    expect(Object.keys(body.errors ?? {})).toEqual(expect.arrayContaining(["username", "email"]));
  });

  it("usernames are ASCII: look-alike, fullwidth, invisible and bidi letters cannot pass for another account, and the error says so", async () => {
    const register = (username: string) =>
      call("/api/v1/auth/register/", {
        json: { username, email: `${uniqueName("script")}@example.com`, password: GOOD_PASSWORD },
        ip: freshIp(),
      });
    // Cyrillic а, fullwidth letters, a zero-width space, a right-to-left override, a combining mark, an accented letter.
    for (const username of ["\u0430nna", "\uff41nna", "an\u200bna", "\u202eanna", "anna\u0301", "Müller", "ｍｕｌｌｅｒ"]) {
      const body = await expectError(await register(username), 400, "VALIDATION_ERROR");
      expect(body.errors?.username, JSON.stringify(username)).toEqual([
        "Enter a valid username. It may contain only letters A–Z and a–z (no accents or other scripts), digits and @/./+/-/_ characters.",
      ]);
    }
  });

  it("an empty or blank username is told its length alone; a short one with a bad character is told both", async () => {
    const register = (username: string) =>
      call("/api/v1/auth/register/", {
        json: { username, email: `${uniqueName("blank")}@example.com`, password: GOOD_PASSWORD },
        ip: freshIp(),
      });
    for (const username of ["", "   "]) {
      const body = await expectError(await register(username), 400, "VALIDATION_ERROR");
      expect(body.errors?.username, JSON.stringify(username)).toEqual(["Username must be at least 3 characters."]);
    }
    const both = await expectError(await register("a!"), 400, "VALIDATION_ERROR");
    expect(both.errors?.username).toHaveLength(2);
  });

  it("malformed JSON is a 400 envelope, an oversized body a 413", async () => {
    const malformed = await call("/api/v1/auth/register/", {
      body: '{"username": "x",',
      headers: { "Content-Type": "application/json" },
    });
    await expectError(malformed, 400, "MALFORMED_REQUEST");
    const huge = await call("/api/v1/auth/register/", {
      body: JSON.stringify({ username: "x".repeat(1_100_000) }),
      headers: { "Content-Type": "application/json" },
    });
    await expectError(huge, 413, "PAYLOAD_TOO_LARGE");
  });

  it("register is limited to 3 per hour per IP", async () => {
    const ip = freshIp();
    for (let i = 0; i < 3; i++) {
      const name = uniqueName("reglimit");
      const res = await call("/api/v1/auth/register/", {
        json: { username: name, email: `${name}@example.com`, password: GOOD_PASSWORD },
        ip,
      });
      expect(res.status).toBe(201);
    }
    const name = uniqueName("reglimit");
    const res = await call("/api/v1/auth/register/", {
      json: { username: name, email: `${name}@example.com`, password: GOOD_PASSWORD },
      ip,
    });
    const refused = await expectError(res, 429, "RATE_LIMITED");
    expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(3500);
    // People read the wait in minutes; programs read Retry-After.
    expect(refused.message).toMatch(/^Too many requests\. Please try again in (59|60) minutes\.$/);
  });
});

describe("login limits and lockout", () => {
  it("unknown username and wrong password are indistinguishable", async () => {
    const s = await registerWeb();
    const wrong = await call("/api/v1/auth/login/", { json: { username: s.username, password: "Wrong-Password-123" } });
    const unknown = await call("/api/v1/auth/login/", { json: { username: uniqueName("ghost"), password: "Wrong-Password-123" } });
    const a = (await wrong.json()) as Record<string, unknown>;
    const b = (await unknown.json()) as Record<string, unknown>;
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect({ ...a, request_id: undefined }).toEqual({ ...b, request_id: undefined });
    expect(a.code).toBe("INVALID_CREDENTIALS");
  });

  it("allows 5 logins per 15 minutes per IP, the 6th is 429 with Retry-After", async () => {
    const s = await registerWeb();
    const ip = freshIp();
    for (let i = 0; i < 5; i++) {
      const res = await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD }, ip });
      expect(res.status, `attempt ${i + 1}`).toBe(200);
    }
    const sixth = await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD }, ip });
    await expectError(sixth, 429, "RATE_LIMITED");
    const retry = Number(sixth.headers.get("Retry-After"));
    expect(retry).toBeGreaterThan(800);
    expect(retry).toBeLessThanOrEqual(900);
    // Another address is unaffected (no shared anonymous bucket).
    expect((await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD } })).status).toBe(200);
  });

  it("locks an account after exactly 10 failures, even for the right password, and mails the owner once", async () => {
    const s = await registerWeb();
    for (let i = 0; i < 9; i++) {
      const res = await call("/api/v1/auth/login/", { json: { username: s.username, password: `Wrong-Password-${i}` } });
      expect(res.status, `failure ${i + 1}`).toBe(401);
    }
    // The 9th failure did not lock: the right password still works… and resets the counter,
    // so count ten fresh failures.
    expect((await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD } })).status).toBe(200);
    for (let i = 0; i < 10; i++) {
      const res = await call("/api/v1/auth/login/", { json: { email: s.email, password: `Wrong-Password-${i}` } });
      expect(res.status, `failure ${i + 1}`).toBe(401);
    }
    const locked = await call("/api/v1/auth/login/", { json: { email: s.email, password: GOOD_PASSWORD } });
    const lockedBody = await expectError(locked, 429, "ACCOUNT_LOCKED");
    expect(Number(locked.headers.get("Retry-After"))).toBeGreaterThan(3500);
    expect(lockedBody.message).toMatch(/Please try again in (59|60) minutes\.$/);
    // Mobile sign-in is locked too.
    await expectError(await call("/api/v1/auth/token/", { json: { email: s.email, password: GOOD_PASSWORD } }), 429, "ACCOUNT_LOCKED");
    // By the username the account is locked as well, but says so only as a wrong password would:
    // a 429 here would tell anyone that this email address is this username's.
    await expectError(
      await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD } }),
      401,
      "INVALID_CREDENTIALS",
    );
    const lockNotice = (m: { to: string[]; subject: string }) => m.to.includes(s.email) && /locked/i.test(m.subject);
    const mail = await eventually(() => emulators.email.outbox.find(lockNotice));
    expect(mail.subject).toMatch(/locked/i);
    // More attempts while locked send no second mail.
    await call("/api/v1/auth/login/", { json: { username: s.username, password: "Wrong-Password-x" } });
    await new Promise((r) => setTimeout(r, 100));
    expect(emulators.email.outbox.filter(lockNotice)).toHaveLength(1);
  });

  it("locks unknown usernames too, answering exactly like a real account", async () => {
    const ghost = uniqueName("ghost");
    for (let i = 0; i < 10; i++) {
      expect((await call("/api/v1/auth/login/", { json: { username: ghost, password: "Wrong-Password-123" } })).status).toBe(401);
    }
    await expectError(
      await call("/api/v1/auth/login/", { json: { username: ghost, password: "Wrong-Password-123" } }),
      429,
      "ACCOUNT_LOCKED",
    );
  });

  it("refresh with a token that does not verify is limited to 10 per hour per IP; a session's own refreshes are not", async () => {
    const u = await bearerUser();
    const ip = freshIp();
    for (let i = 0; i < 10; i++) {
      await expectError(await call("/api/v1/auth/token/refresh/", { json: { refresh: `guess-${i}` }, ip }), 401, "TOKEN_INVALID");
    }
    await expectError(await call("/api/v1/auth/token/refresh/", { json: { refresh: "guess-11" }, ip }), 429, "RATE_LIMITED");
    // A session's refresh spends that session's budget (REFRESH_SESSION_RATE_LIMIT), not the address's.
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: u.refresh }, ip })).status).toBe(200);
  });
});

describe("password change", () => {
  it("checks the old password, applies the policy and signs out other sessions", async () => {
    const u = await bearerUser();
    const other = await tokenLogin(u.username);
    const wrongOld = await call("/api/v1/auth/password/change/", {
      bearer: u.access,
      json: { old_password: "nope-nope-nope", new_password: "Another-Fine-Fern-77" },
    });
    expect((await expectError(wrongOld, 400, "VALIDATION_ERROR")).errors?.old_password).toBeDefined();
    const weak = await call("/api/v1/auth/password/change/", {
      bearer: u.access,
      json: { old_password: GOOD_PASSWORD, new_password: "password1234" },
    });
    expect((await expectError(weak, 400, "VALIDATION_ERROR")).errors?.new_password).toBeDefined();

    const ok = await call("/api/v1/auth/password/change/", {
      bearer: u.access,
      json: { old_password: GOOD_PASSWORD, new_password: "Another-Fine-Fern-77" },
    });
    expect(ok.status).toBe(200);
    const fresh = (await ok.json()) as { access: string };
    expect((await call("/api/v1/auth/user/", { bearer: fresh.access })).status).toBe(200);
    expect((await call("/api/v1/auth/user/", { bearer: other.access })).status).toBe(401);
    // The other device learns why its refresh fails: its session ended, so it signs in again.
    const otherRefresh = await call("/api/v1/auth/token/refresh/", { json: { refresh: other.refresh } });
    expect((await expectError(otherRefresh, 401, "TOKEN_INVALID")).message).toBe(SESSION_ENDED);
    expect((await call("/api/v1/auth/token/", { json: { username: u.username, password: "Another-Fine-Fern-77" } })).status).toBe(200);
  });
});

describe("profile", () => {
  it("updates profile fields with validation and email uniqueness", async () => {
    const u = await bearerUser();
    const other = await registerWeb();
    const ok = await call("/api/v1/auth/user/", {
      method: "PATCH",
      bearer: u.access,
      json: { bio: "Ferns and moss.", location: "Oslo", website: "https://moss.example" },
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ bio: "Ferns and moss.", location: "Oslo", website: "https://moss.example" });
    const long = await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, json: { bio: "x".repeat(501) } });
    expect((await expectError(long, 400, "VALIDATION_ERROR")).errors?.bio).toBeDefined();
    const taken = await call("/api/v1/auth/user/", {
      method: "PATCH",
      bearer: u.access,
      json: { email: other.email.toUpperCase(), current_password: GOOD_PASSWORD },
    });
    expect((await expectError(taken, 400, "VALIDATION_ERROR")).errors?.email).toBeDefined();
    const unknownField = await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, json: { role: "admin" } });
    await expectError(unknownField, 400, "VALIDATION_ERROR");
  });

  it("uploads an avatar to R2 and refuses a fake image", async () => {
    const u = await bearerUser();
    const png = await makePng(64, 64, { seed: u.username });
    const form = new FormData();
    form.append("avatar", new File([png], "me.png", { type: "image/png" }));
    const res = await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, body: form });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { avatar_url: string };
    expect(body.avatar_url).toMatch(/^\/api\/v1\/media\/avatars\/[0-9a-f]{64}\.png$/);
    // Avatars live in the photo store with every other photo (images/<ref>); the URL keeps its avatars/ path.
    const key = body.avatar_url.replace("/api/v1/media/avatars/", "images/");
    expect(await env.IMAGES.head(key)).not.toBeNull();
    const served = await call(body.avatar_url);
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("image/png");
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(png);

    const fake = new FormData();
    fake.append("avatar", new File([new TextEncoder().encode("hello, not an image")], "me.jpg", { type: "image/jpeg" }));
    const bad = await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, body: fake });
    const err = await expectError(bad, 400, "INVALID_IMAGE");
    expect(err.message).toMatch(/Invalid file type/);
  });
});

describe("password reset", () => {
  function tokenFrom(text: string | null): string {
    const match = /Reset token: (\S+)/.exec(text ?? "");
    if (!match) throw new Error("no token in the mail");
    return match[1]!;
  }

  it("mails a single-use token that sets a new password and signs out every session", async () => {
    const u = await bearerUser();
    const res = await call("/api/v1/auth/password/reset/", { json: { email: u.email.toUpperCase() } });
    expect(res.status).toBe(200);
    const mail = await eventually(() => emulators.email.outbox.find((m) => m.to.includes(u.email) && /Reset/.test(m.subject)));
    expect(mail.text).toContain("http://localhost:5173/reset-password?token=");
    const token = tokenFrom(mail.text);

    const weak = await call("/api/v1/auth/password/reset/confirm/", { json: { token, new_password: "password12345" } });
    expect((await expectError(weak, 400, "VALIDATION_ERROR")).errors?.new_password).toBeDefined();

    const ok = await call("/api/v1/auth/password/reset/confirm/", { json: { token, new_password: "Brand-New-Bramble-9" } });
    expect(ok.status).toBe(200);
    expect((await call("/api/v1/auth/user/", { bearer: u.access })).status).toBe(401);
    expect((await call("/api/v1/auth/token/", { json: { username: u.username, password: "Brand-New-Bramble-9" } })).status).toBe(200);
    expect((await call("/api/v1/auth/token/", { json: { username: u.username, password: GOOD_PASSWORD } })).status).toBe(401);

    // Single use.
    const again = await call("/api/v1/auth/password/reset/confirm/", { json: { token, new_password: "Another-New-Bramble-9" } });
    await expectError(again, 400, "INVALID_TOKEN");
  });

  it("answers the same for an unknown address and sends nothing", async () => {
    const known = await registerWeb();
    const a = await call("/api/v1/auth/password/reset/", { json: { email: known.email } });
    const b = await call("/api/v1/auth/password/reset/", { json: { email: "nobody-here@example.com" } });
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(await a.json()).toEqual(await b.json());
    await eventually(() => emulators.email.outbox.find((m) => m.to.includes(known.email) && /Reset/.test(m.subject)));
    expect(emulators.email.outbox.some((m) => m.to.includes("nobody-here@example.com"))).toBe(false);
  });

  it("refuses a made-up or expired token", async () => {
    const bogus = await call("/api/v1/auth/password/reset/confirm/", {
      json: { token: "x".repeat(43), new_password: "Brand-New-Bramble-9" },
    });
    await expectError(bogus, 400, "INVALID_TOKEN");
    const u = await registerWeb();
    await call("/api/v1/auth/password/reset/", { json: { email: u.email } });
    const mail = await eventually(() => emulators.email.outbox.find((m) => m.to.includes(u.email) && /Reset/.test(m.subject)));
    await env.DB.prepare("UPDATE password_reset_tokens SET expires_at = 0 WHERE user_id = ?").bind(u.userId).run();
    const expired = await call("/api/v1/auth/password/reset/confirm/", {
      json: { token: tokenFrom(mail.text), new_password: "Brand-New-Bramble-9" },
    });
    await expectError(expired, 400, "INVALID_TOKEN");
  });

  it("a failing email provider loses nothing and still answers 200", async () => {
    emulators.email.setMode({ failure: "500" });
    const u = await registerWeb();
    const res = await call("/api/v1/auth/password/reset/", { json: { email: u.email } });
    expect(res.status).toBe(200);
    // The mail was attempted (and failed) after the response; no mail was recorded.
    await eventually(() => emulators.email.calls > 0);
    expect(emulators.email.outbox).toHaveLength(0);
  });
});
