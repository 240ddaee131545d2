// Security review (helper-115): signing in and staying signed in, read as an attacker holding the
// source. Only the attacks no other file makes: a credential made for one purpose presented for
// another, Firebase ID tokens an attacker can mint without Google's key, a cross-site form trying
// to sign a browser in (login CSRF), a bearer header and another account's cookies together, and
// mailed links asked for through a hostile Host header.
import { env, exports } from "cloudflare:workers";
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { createFirebaseEmulator } from "../../emulators/firebase";
import { getConfig } from "../../src/config";
import { accessCookieName, csrfTokenForSession } from "../../src/lib/session-cookies";
import { unsubscribeToken } from "../../src/services/unsubscribe";
import { call, expectError, freshIp, setCookies } from "../helpers/http";
import { mailTo, tokenIn } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, GOOD_PASSWORD, registerWeb, tokenLogin, uniqueName } from "../helpers/users";
import { codeAt, fromBase32, steadyStep } from "../helpers/totp";
import { openSocket } from "../helpers/ws";

const firebase = createFirebaseEmulator({ projectId: env.FIREBASE_PROJECT_ID, keyId: "firebase-attacker-review-key" });
const emulators = useEmulators({ overrides: { "firebase.emulator.test": (req) => firebase.handle(req) } });

const FIREBASE_EXCHANGE = "/api/v1/auth/firebase-token-exchange/";
const exchange = (firebase_token: string) => call(FIREBASE_EXCHANGE, { json: { firebase_token }, ip: freshIp() });

async function userCount(): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM users").first<{ n: number }>())!.n;
}

describe("a credential made for one purpose opens nothing else", () => {
  /** Every other credential the service hands a signed-in user, each a string an attacker may hold. */
  async function otherCredentials(u: Awaited<ReturnType<typeof bearerUser>>): Promise<[string, string][]> {
    const feed = await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: u.access });
    expect(feed.status, await feed.clone().text()).toBe(201);
    const feedToken = /calendar-feed\/([^/]+)\/plant-community\.ics$/.exec(((await feed.json()) as { url: string }).url)![1]!;
    const ticket = await call("/api/v1/auth/ws-ticket/", { method: "POST", bearer: u.access });
    const sid = decodeJwt(u.access).sid as string;
    return [
      ["an unsubscribe token", await unsubscribeToken(env, u.userId, "all", Date.now(), u.email)],
      ["a calendar-feed token", decodeURIComponent(feedToken)],
      ["a WebSocket ticket", ((await ticket.json()) as { ticket: string }).ticket],
      ["the session's CSRF token", await csrfTokenForSession(getConfig(env), sid)],
    ];
  }

  it("none of them is an access token (bearer or cookie) or a refresh token", async () => {
    const u = await bearerUser();
    for (const [name, credential] of await otherCredentials(u)) {
      const asBearer = await call("/api/v1/auth/user/", { bearer: credential });
      expect(asBearer.status, `${name} as a bearer`).toBe(401);
      const asCookie = await call("/api/v1/auth/user/", { cookies: { [accessCookieName(getConfig(env))]: credential } });
      expect(asCookie.status, `${name} as the access cookie`).toBe(401);
      await expectError(await call("/api/v1/auth/token/refresh/", { json: { refresh: credential } }), 401, "TOKEN_INVALID");
    }
    // The genuine pair still works: nothing above ended the session.
    expect((await call("/api/v1/auth/user/", { bearer: u.access })).status).toBe(200);
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: u.refresh } })).status).toBe(200);
  });

  it("an access or refresh token is not a WebSocket ticket, an unsubscribe token or a calendar-feed URL", async () => {
    const u = await bearerUser();
    const preferences = async () => (await call("/api/v1/notifications/preferences/", { bearer: u.access })).json();
    const before = await preferences();
    for (const [name, token] of [
      ["access", u.access],
      ["refresh", u.refresh],
    ] as const) {
      const socket = await openSocket(`/ws/?ticket=${encodeURIComponent(token)}`);
      expect(await socket.closed, `${name} as a ticket`).toEqual({ code: 4401, reason: "authentication required" });
      await expectError(
        await call(`/api/v1/notifications/unsubscribe/?token=${encodeURIComponent(token)}`, { method: "POST" }),
        400,
        "INVALID_TOKEN",
      );
      const feed = await call(`/api/v1/reminders/calendar-feed/${encodeURIComponent(token)}/plant-community.ics`);
      expect([400, 404], `${name} as a calendar-feed token`).toContain(feed.status);
    }
    // The unsubscribe attempts changed nothing.
    expect(await preferences()).toEqual(before);
  });
});

describe("Firebase ID tokens an attacker can mint without Google's key", () => {
  async function publishedJwk(): Promise<Record<string, unknown>> {
    const res = await firebase.handle(new Request("https://firebase.emulator.test/jwks"));
    return ((await res.json()) as { keys: Record<string, unknown>[] }).keys[0]!;
  }

  function claimsFor(email: string) {
    const now = Math.floor(Date.now() / 1000);
    return {
      iss: `https://securetoken.google.com/${env.FIREBASE_PROJECT_ID}`,
      aud: env.FIREBASE_PROJECT_ID,
      sub: `uid-${email}`,
      iat: now - 5,
      exp: now + 3600,
      auth_time: now - 5,
      email,
      email_verified: true,
    };
  }

  it("HS256 signed with the published public key (algorithm confusion) is refused and creates nothing", async () => {
    const jwk = await publishedJwk();
    const before = await userCount();
    const claims = claimsFor(`${uniqueName("confused")}@example.com`);
    // Every form a "public key as HMAC secret" takes: the JWK's JSON, its modulus.
    for (const secret of [JSON.stringify(jwk), String(jwk.n)]) {
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256", kid: String(jwk.kid), typ: "JWT" })
        .sign(new TextEncoder().encode(secret));
      await expectError(await exchange(token), 401, "FIREBASE_TOKEN_INVALID");
    }
    expect(await userCount()).toBe(before);
  });

  it("a key Google never published, under a kid of its own or carried in the header (jwk, jku), is refused; unknown kids fetch the key set at most once", async () => {
    const attacker = await generateKeyPair("RS256");
    const attackerJwk = await exportJWK(attacker.publicKey);
    const claims = claimsFor(`${uniqueName("rogue")}@example.com`);
    // The real key set is loaded first, so what follows measures only the attacker's tokens.
    const warm = await exchange(await firebase.issueIdToken({ email: `${uniqueName("warm")}@example.com`, email_verified: true }));
    expect(warm.status, await warm.clone().text()).toBe(200);
    firebase.reset();
    const before = await userCount();
    const headers = [
      { alg: "RS256", kid: "never-published-1" },
      { alg: "RS256", kid: "never-published-2" },
      { alg: "RS256", kid: "never-published-3", jwk: attackerJwk },
      { alg: "RS256", kid: "firebase-attacker-review-key", jwk: attackerJwk },
      { alg: "RS256", kid: "never-published-4", jku: "https://evil.example/jwks" },
    ];
    for (const header of headers) {
      const token = await new SignJWT(claims).setProtectedHeader({ ...header, typ: "JWT" }).sign(attacker.privateKey);
      await expectError(await exchange(token), 401, "FIREBASE_TOKEN_INVALID");
    }
    expect(await userCount()).toBe(before);
    // jose's cooldown: a flood of made-up kids cannot turn the exchange into a fetcher of Google's keys.
    expect(firebase.jwksFetches).toBeLessThanOrEqual(1);
  });

  it('email_verified as the string "true" or the number 1 is no statement of verification: it links nothing', async () => {
    const victim = await bearerUser();
    for (const email_verified of ["true", 1]) {
      const token = await firebase.issueIdToken(
        { uid: `squatter-${uniqueName("uid")}`, email: victim.email },
        { claims: { email_verified } },
      );
      await expectError(await exchange(token), 403, "EMAIL_NOT_VERIFIED");
    }
    const links = await env.DB.prepare("SELECT COUNT(*) AS n FROM oauth_accounts WHERE user_id = ?")
      .bind(victim.userId)
      .first<{ n: number }>();
    expect(links!.n).toBe(0);
    expect((await call("/api/v1/auth/user/", { bearer: victim.access })).status).toBe(200);
  });
});

describe("login CSRF: a cross-site form cannot sign a browser in", () => {
  // A form can send text/plain (whose body may well be JSON) or urlencoded without a preflight,
  // and a Lax cookie set in the answer to a cross-site top-level POST is stored. So every route
  // that starts a session from a body must refuse those types before it signs anyone in.
  it("login/, register/, token/ and the Firebase exchange answer 415 to a form's content types and set no cookie", async () => {
    const victimOfCsrf = await registerWeb();
    const firebaseToken = await firebase.issueIdToken({ email: `${uniqueName("formfb")}@example.com`, email_verified: true });
    const name = uniqueName("formreg");
    const bodies: [string, unknown][] = [
      ["/api/v1/auth/login/", { username: victimOfCsrf.username, password: GOOD_PASSWORD }],
      ["/api/v1/auth/token/", { username: victimOfCsrf.username, password: GOOD_PASSWORD }],
      ["/api/v1/auth/register/", { username: name, email: `${name}@example.com`, password: GOOD_PASSWORD }],
      [FIREBASE_EXCHANGE, { firebase_token: firebaseToken }],
    ];
    const before = await userCount();
    for (const [path, body] of bodies) {
      for (const [type, text] of [
        ["text/plain", JSON.stringify(body)],
        ["application/x-www-form-urlencoded", new URLSearchParams(body as Record<string, string>).toString()],
        ["multipart/form-data; boundary=x", `--x\r\nContent-Disposition: form-data; name="j"\r\n\r\n${JSON.stringify(body)}\r\n--x--\r\n`],
      ] as const) {
        const res = await call(path, { method: "POST", body: text, headers: { "Content-Type": type, Origin: "https://evil.example" } });
        expect(res.status, `${path} as ${type}: ${await res.clone().text()}`).toBe(415);
        expect(
          res.headers.getSetCookie().filter((c) => /access_token|refresh_token/.test(c)),
          `${path} as ${type}`,
        ).toEqual([]);
      }
    }
    expect(await userCount()).toBe(before);
  });
});

describe("a bearer header and another account's cookies on one request", () => {
  it("the bearer decides who is asking; a write ends nothing of the cookies' account", async () => {
    const bearer = await bearerUser();
    const browser = await registerWeb();
    const both = { bearer: bearer.access, cookies: browser.cookies };
    const me = await call("/api/v1/auth/user/", both);
    expect(((await me.json()) as { id: string }).id).toBe(bearer.userId);
    // logout/ reads the refresh cookie too: another account's is not this caller's to end.
    expect((await call("/api/v1/auth/logout/", { method: "POST", ...both })).status).toBe(200);
    expect((await call("/api/v1/auth/user/", { bearer: bearer.access })).status).toBe(401);
    expect((await call("/api/v1/auth/user/", { cookies: browser.cookies })).status).toBe(200);
    const refreshed = await call("/api/v1/auth/token/refresh/", {
      method: "POST",
      cookies: browser.cookies,
      headers: { "X-CSRFToken": browser.csrf },
    });
    expect(refreshed.status, await refreshed.clone().text()).toBe(200);
  });

  it("a bearer that does not verify is refused; it never falls back to the cookie", async () => {
    const browser = await registerWeb();
    await expectError(await call("/api/v1/auth/user/", { bearer: "not-a-token", cookies: browser.cookies }), 401, "TOKEN_INVALID");
    // Nor for a write, where the cookie would need the CSRF header the bearer does not.
    const write = await call("/api/v1/auth/logout-all/", { method: "POST", bearer: "not-a-token", cookies: browser.cookies });
    expect(write.status).toBe(401);
    expect((await call("/api/v1/auth/user/", { cookies: browser.cookies })).status).toBe(200);
  });
});

describe("mailed links ignore a hostile Host header", () => {
  function fromEvilHost(path: string, json: unknown) {
    return exports.default.fetch(
      new Request(`https://evil.example${path}`, {
        method: "POST",
        headers: {
          Host: "evil.example",
          "X-Forwarded-Host": "evil.example",
          "X-Forwarded-Proto": "http",
          Origin: "https://evil.example",
          "Content-Type": "application/json",
          "CF-Connecting-IP": freshIp(),
        },
        body: JSON.stringify(json),
      }),
    );
  }

  it("a password reset and a registration's confirmation link point at FRONTEND_URL, never at the asking host", async () => {
    const frontend = getConfig(env).FRONTEND_URL;
    const u = await registerWeb();
    expect((await fromEvilHost("/api/v1/auth/password/reset/", { email: u.email })).status).toBe(200);
    const reset = await mailTo(emulators.email, u.email, /reset/i);
    expect(reset.text).toContain(`${frontend}/reset-password?token=`);
    expect(`${reset.text}${reset.html ?? ""}`).not.toContain("evil.example");

    const name = uniqueName("evilhost");
    const reg = await fromEvilHost("/api/v1/auth/register/", { username: name, email: `${name}@example.com`, password: GOOD_PASSWORD });
    expect(reg.status, await reg.clone().text()).toBe(201);
    const confirm = await mailTo(emulators.email, `${name}@example.com`, /confirm/i);
    expect(confirm.text).toContain(`${frontend}/confirm-email?token=`);
    expect(`${confirm.text}${confirm.html ?? ""}`).not.toContain("evil.example");
    // And the session the registration started is an ordinary one on this host's cookies.
    expect(setCookies(reg).refresh_token?.attributes.path).toBe("/api/v1/auth/");
  });
});

describe("two-factor sign-in is not a password plus a stolen session away from being lost", () => {
  // A session left open (a shared computer) and the password (phished) are all it took: the
  // email change asked for the password alone, and from the new inbox a password reset ends the
  // owner's sessions and a two-factor reset turns the second factor off in 72 hours, every notice
  // of which goes to that inbox. Turning it off directly has always asked for a code; moving the
  // account to another inbox must too, and so must deleting it, which cannot be undone.
  async function twoFactorAccount() {
    const user = await bearerUser();
    const setup = await call("/api/v1/auth/2fa/setup/", { bearer: user.access, json: { current_password: GOOD_PASSWORD } });
    expect(setup.status, await setup.clone().text()).toBe(200);
    const key = fromBase32(((await setup.json()) as { secret: string }).secret);
    const step = await steadyStep();
    const enabled = await call("/api/v1/auth/2fa/enable/", { bearer: user.access, json: { code: await codeAt(key, step - 1) } });
    expect(enabled.status, await enabled.clone().text()).toBe(200);
    const body = (await enabled.json()) as { access: string; recovery_codes: string[] };
    return { ...user, access: body.access, key, step, recovery: body.recovery_codes };
  }

  /** PATCH auth/user/ with a new email, the password and `extra` (a code, a recovery code). */
  const askToMove = (access: string, email: string, extra: Record<string, string> = {}) =>
    call("/api/v1/auth/user/", { method: "PATCH", bearer: access, json: { email, current_password: GOOD_PASSWORD, ...extra } });

  const pendingEmail = async (userId: string) =>
    (await env.DB.prepare("SELECT pending_email FROM users WHERE id = ?").bind(userId).first<{ pending_email: string | null }>())!
      .pending_email;

  it("the password alone does not move an account with two-factor sign-in to another inbox; a wrong code neither", async () => {
    const owner = await twoFactorAccount();
    const thief = `${uniqueName("thief")}@example.com`;
    const alone = await askToMove(owner.access, thief);
    expect((await expectError(alone, 400, "VALIDATION_ERROR")).errors?.code).toBeDefined();
    const wrong = await askToMove(owner.access, thief, { code: await codeAt(owner.key, owner.step - 5) });
    await expectError(wrong, 400, "INVALID_TWO_FACTOR_CODE");
    expect(await pendingEmail(owner.userId)).toBeNull();
    expect(emulators.email.outbox.some((m) => m.to.includes(thief))).toBe(false);
  });

  it("with the password and a right code (or a recovery code) the owner moves it as before", async () => {
    const owner = await twoFactorAccount();
    const step = await steadyStep();
    const next = `${uniqueName("moved")}@example.com`;
    const withCode = await askToMove(owner.access, next, { code: await codeAt(owner.key, step) });
    expect(withCode.status, await withCode.clone().text()).toBe(200);
    expect(await pendingEmail(owner.userId)).toBe(next);
    const other = `${uniqueName("moved")}@example.com`;
    const withRecovery = await askToMove(owner.access, other, { recovery_code: owner.recovery[0]! });
    expect(withRecovery.status, await withRecovery.clone().text()).toBe(200);
    expect(await pendingEmail(owner.userId)).toBe(other);
  });

  /** POST auth/user/delete/ with the password and `extra` (a code, a recovery code). */
  const askToDelete = (access: string, extra: Record<string, string> = {}) =>
    call("/api/v1/auth/user/delete/", { bearer: access, json: { current_password: GOOD_PASSWORD, ...extra } });

  const deletedAt = async (userId: string) =>
    (await env.DB.prepare("SELECT deleted_at FROM users WHERE id = ?").bind(userId).first<{ deleted_at: string | null }>())!.deleted_at;

  it("the password alone does not delete an account with two-factor sign-in; a wrong code neither; with a code it goes", async () => {
    const owner = await twoFactorAccount();
    const alone = await askToDelete(owner.access);
    expect((await expectError(alone, 400, "VALIDATION_ERROR")).errors?.code).toBeDefined();
    await expectError(await askToDelete(owner.access, { code: await codeAt(owner.key, owner.step - 5) }), 400, "INVALID_TWO_FACTOR_CODE");
    await expectError(await askToDelete(owner.access, { recovery_code: "not-one-of-them" }), 400, "INVALID_TWO_FACTOR_CODE");
    expect(await deletedAt(owner.userId)).toBeNull();
    const withRecovery = await askToDelete(owner.access, { recovery_code: owner.recovery[0]! });
    expect(withRecovery.status, await withRecovery.clone().text()).toBe(200);
    expect(await deletedAt(owner.userId)).not.toBeNull();
  });

  it("an account without two-factor sign-in is deleted with the password alone, as before", async () => {
    const u = await bearerUser();
    const res = await askToDelete(u.access);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await deletedAt(u.userId)).not.toBeNull();
  });

  it("an account without two-factor sign-in changes its email with the password alone, as before", async () => {
    const u = await bearerUser();
    const next = `${uniqueName("plain")}@example.com`;
    const res = await askToMove(u.access, next);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await pendingEmail(u.userId)).toBe(next);
  });
});

describe("an email change dies with the session that asked for it", () => {
  // The owner who sees "someone asked to change your email address" and ends the session they do
  // not recognise (or whose stolen refresh token was caught being reused) must not find the
  // account moved when the intruder then follows the link mailed to the intruder's own inbox.
  async function intruderAsksToMove() {
    const owner = await bearerUser();
    const intruder = await tokenLogin(owner.username);
    const to = `${uniqueName("intruder")}@example.com`;
    return { owner, intruder, to, token: await askedToMove(intruder.access, to) };
  }
  /** The session of `access` asks to move its account to `to`: the confirmation token mailed there. */
  async function askedToMove(access: string, to: string): Promise<string> {
    const asked = await call("/api/v1/auth/user/", {
      method: "PATCH",
      bearer: access,
      json: { email: to, current_password: GOOD_PASSWORD },
    });
    expect(asked.status, await asked.clone().text()).toBe(200);
    return tokenIn((await mailTo(emulators.email, to, /Confirm your new/)).text, "Confirmation token");
  }
  const emailOf = async (userId: string) =>
    (await env.DB.prepare("SELECT email FROM users WHERE id = ?").bind(userId).first<{ email: string }>())!.email;

  it("ended by the owner from the sessions list: the link moves nothing", async () => {
    const { owner, intruder, token } = await intruderAsksToMove();
    const sid = decodeJwt(intruder.access).sid as string;
    expect((await call(`/api/v1/auth/sessions/${sid}/`, { method: "DELETE", bearer: owner.access })).status).toBe(204);
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token } }), 400, "INVALID_TOKEN");
    expect(await emailOf(owner.userId)).toBe(owner.email);
  });

  it("signed out, or its refresh token caught being reused: the link moves nothing", async () => {
    const signedOut = await intruderAsksToMove();
    expect((await call("/api/v1/auth/logout/", { method: "POST", bearer: signedOut.intruder.access })).status).toBe(200);
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token: signedOut.token } }), 400, "INVALID_TOKEN");
    expect(await emailOf(signedOut.owner.userId)).toBe(signedOut.owner.email);

    const stolen = await intruderAsksToMove();
    await env.DB.prepare("UPDATE refresh_tokens SET revoked_at = revoked_at - 90 WHERE user_id = ?").bind(stolen.owner.userId).run();
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: stolen.intruder.refresh } })).status).toBe(200);
    await env.DB.prepare("UPDATE refresh_tokens SET revoked_at = revoked_at - 90 WHERE user_id = ? AND revoked_at IS NOT NULL")
      .bind(stolen.owner.userId)
      .run();
    await expectError(await call("/api/v1/auth/token/refresh/", { json: { refresh: stolen.intruder.refresh } }), 401, "TOKEN_REUSED");
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token: stolen.token } }), 400, "INVALID_TOKEN");
    expect(await emailOf(stolen.owner.userId)).toBe(stolen.owner.email);
  });

  it("while the session that asked is live, the link moves the account, from anywhere", async () => {
    const { owner, to, token } = await intruderAsksToMove();
    const confirmed = await call("/api/v1/auth/email/confirm/", { json: { token } });
    expect(confirmed.status, await confirmed.clone().text()).toBe(200);
    expect(await emailOf(owner.userId)).toBe(to);
  });
  // The owner reads the profile after ending the intruder's session: a change that can no longer
  // land must not still show as waiting for the intruder's address.
  async function pendingShown(access: string): Promise<string | null> {
    const res = await call("/api/v1/auth/user/", { bearer: access });
    expect(res.status, await res.clone().text()).toBe(200);
    return ((await res.json()) as { pending_email: string | null }).pending_email;
  }
  const linksOf = async (userId: string) =>
    (await env.DB.prepare("SELECT count(*) AS n FROM email_change_tokens WHERE user_id = ?").bind(userId).first<{ n: number }>())!.n;

  it("ended from the sessions list: the profile shows no change waiting, and its link is gone", async () => {
    const { owner, intruder, to, token } = await intruderAsksToMove();
    expect(await pendingShown(owner.access)).toBe(to);
    const sid = decodeJwt(intruder.access).sid as string;
    expect((await call(`/api/v1/auth/sessions/${sid}/`, { method: "DELETE", bearer: owner.access })).status).toBe(204);
    expect(await pendingShown(owner.access)).toBeNull();
    expect(await linksOf(owner.userId)).toBe(0);
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token } }), 400, "INVALID_TOKEN");
    expect(await emailOf(owner.userId)).toBe(owner.email);
  });

  it("signed out: the profile shows no change waiting", async () => {
    const { owner, intruder, token } = await intruderAsksToMove();
    expect((await call("/api/v1/auth/logout/", { method: "POST", bearer: intruder.access })).status).toBe(200);
    expect(await pendingShown(owner.access)).toBeNull();
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token } }), 400, "INVALID_TOKEN");
  });

  it("its refresh token caught being reused: the profile shows no change waiting", async () => {
    const { owner, intruder, token } = await intruderAsksToMove();
    await env.DB.prepare("UPDATE refresh_tokens SET revoked_at = revoked_at - 90 WHERE user_id = ?").bind(owner.userId).run();
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: intruder.refresh } })).status).toBe(200);
    await env.DB.prepare("UPDATE refresh_tokens SET revoked_at = revoked_at - 90 WHERE user_id = ? AND revoked_at IS NOT NULL")
      .bind(owner.userId)
      .run();
    await expectError(await call("/api/v1/auth/token/refresh/", { json: { refresh: intruder.refresh } }), 401, "TOKEN_REUSED");
    expect(await pendingShown(owner.access)).toBeNull();
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token } }), 400, "INVALID_TOKEN");
  });

  it("a newer change asked from another session outlives the first session's end, and ends with its own", async () => {
    const { owner, intruder } = await intruderAsksToMove();
    // The owner asks for their own change from their own session: it replaces the intruder's.
    const mine = `${uniqueName("owner-new")}@example.com`;
    await askedToMove(owner.access, mine);
    const sid = decodeJwt(intruder.access).sid as string;
    expect((await call(`/api/v1/auth/sessions/${sid}/`, { method: "DELETE", bearer: owner.access })).status).toBe(204);
    expect(await pendingShown(owner.access)).toBe(mine);
    expect(await linksOf(owner.userId)).toBe(1);

    // Ending the owner's own session (from another of theirs) ends the change it asked for.
    const other = await tokenLogin(owner.username);
    const ownSid = decodeJwt(owner.access).sid as string;
    expect((await call(`/api/v1/auth/sessions/${ownSid}/`, { method: "DELETE", bearer: other.access })).status).toBe(204);
    expect(await pendingShown(other.access)).toBeNull();
    expect(await linksOf(owner.userId)).toBe(0);
  });

  it("the owner's own sign-out cancels the change that session asked for (sign in again to ask anew)", async () => {
    const owner = await bearerUser();
    const token = await askedToMove(owner.access, `${uniqueName("owner-move")}@example.com`);
    expect((await call("/api/v1/auth/logout/", { method: "POST", bearer: owner.access })).status).toBe(200);
    const again = await tokenLogin(owner.username);
    expect(await pendingShown(again.access)).toBeNull();
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token } }), 400, "INVALID_TOKEN");
    expect(await emailOf(owner.userId)).toBe(owner.email);
  });

  it("a change link recorded without its session (from before migration 0055) stays shown until it expires, as before", async () => {
    const { owner, intruder, to } = await intruderAsksToMove();
    await env.DB.prepare("UPDATE email_change_tokens SET session_id = NULL WHERE user_id = ?").bind(owner.userId).run();
    expect((await call("/api/v1/auth/logout/", { method: "POST", bearer: intruder.access })).status).toBe(200);
    expect(await pendingShown(owner.access)).toBe(to);
  });
});
