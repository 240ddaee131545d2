// Two-factor sign-in with an authenticator app (services/two-factor.ts), attacked end to end
// through the Worker: codes are computed from the secret by the tests' own TOTP (helpers/totp.ts).
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createFirebaseEmulator } from "../../emulators/firebase";
import { getConfig } from "../../src/config";
import { hotp } from "../../src/lib/totp";
import { hashPassword, needsRehash, verifyPassword } from "../../src/services/passwords";
import { twoFactorRequired } from "../../src/services/two-factor";
import { findUserById } from "../../src/services/users";
import { call, expectError, setCookies } from "../helpers/http";
import { tokenIn } from "../helpers/mail";
import { createOAuthEmulators, googleIdentity, oauthSignIn } from "../helpers/oauth";
import { useEmulators } from "../helpers/outbound";
import { codeAt, fromBase32, steadyStep, stepNow } from "../helpers/totp";
import { bearerUser, GOOD_PASSWORD } from "../helpers/users";
import { eventually } from "../helpers/wait";

const oauth = createOAuthEmulators();
const firebase = createFirebaseEmulator({ projectId: env.FIREBASE_PROJECT_ID, keyId: "firebase-two-factor-key" });
const emulators = useEmulators({ overrides: { ...oauth.hosts, "firebase.emulator.test": (req) => firebase.handle(req) } });

type Pair = { access: string; refresh: string };

async function setUp(access: string, password: string | null = GOOD_PASSWORD) {
  return call("/api/v1/auth/2fa/setup/", { bearer: access, json: password === null ? {} : { current_password: password } });
}

/** A user with two-factor sign-in on: its secret, recovery codes and the pair enabling answered. Step `step - 1` is spent. */
async function twoFactorUser() {
  const user = await bearerUser();
  const res = await setUp(user.access);
  expect(res.status, await res.clone().text()).toBe(200);
  const { secret, otpauth_url } = (await res.json()) as { secret: string; otpauth_url: string };
  const key = fromBase32(secret);
  const step = await steadyStep();
  const enabled = await call("/api/v1/auth/2fa/enable/", { bearer: user.access, json: { code: await codeAt(key, step - 1) } });
  expect(enabled.status, await enabled.clone().text()).toBe(200);
  const body = (await enabled.json()) as Pair & { recovery_codes: string[] };
  return {
    ...user,
    oldAccess: user.access,
    access: body.access,
    refresh: body.refresh,
    secret,
    otpauth_url,
    key,
    step,
    recovery: body.recovery_codes,
  };
}

/** The password step: 401 TWO_FACTOR_REQUIRED, and its token. */
async function passwordStep(username: string, via: "login" | "token" = "token", password = GOOD_PASSWORD): Promise<string> {
  const res = await call(`/api/v1/auth/${via}/`, { json: { username, password } });
  const body = (await expectError(res, 401, "TWO_FACTOR_REQUIRED")) as unknown as { two_factor_token: string; expires_in: number };
  expect(body.expires_in).toBe(300);
  return body.two_factor_token;
}

const verify = (json: Record<string, unknown>) => call("/api/v1/auth/2fa/verify/", { json });
const status = async (access: string) =>
  (await (await call("/api/v1/auth/2fa/", { bearer: access })).json()) as {
    enabled: boolean;
    enabled_at: string | null;
    recovery_codes_left: number;
    reset: unknown;
  };
const liveSessions = async (userId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM refresh_tokens WHERE user_id = ? AND revoked_at IS NULL")
    .bind(userId)
    .first<{ n: number }>())!.n;

/** A password reset by whoever holds the inbox: asks for the link, reads it from the outbox, sets `password`. */
async function resetPassword(email: string, password: string): Promise<Response> {
  const sent = emulators.email.outbox.length;
  expect((await call("/api/v1/auth/password/reset/", { json: { email } })).status).toBe(200);
  const mail = await eventually(() => emulators.email.outbox.slice(sent).find((m) => m.to.includes(email) && /Reset/.test(m.subject)));
  return call("/api/v1/auth/password/reset/confirm/", { json: { token: tokenIn(mail.text, "Reset token"), new_password: password } });
}

describe("the TOTP computation", () => {
  it("matches RFC 6238's SHA-1 vector (secret 12345678901234567890, T=59 → 94287082), in the service and in the tests' own", async () => {
    const secret = new TextEncoder().encode("12345678901234567890");
    expect(await hotp(secret, Math.floor(59 / 30), 8)).toBe("94287082");
    expect(await codeAt(secret, Math.floor(59 / 30), 8)).toBe("94287082");
    expect(await hotp(secret, 1)).toBe("287082");
    // Another of the RFC's vectors, T=1111111109 → 07081804, a code with a leading zero.
    expect(await hotp(secret, Math.floor(1111111109 / 30), 8)).toBe("07081804");
    expect(await codeAt(secret, Math.floor(1111111109 / 30), 8)).toBe("07081804");
  });
});

describe("setting up and turning on", () => {
  it("needs the password again: none, a wrong one, or no session are refused; an account without a password cannot", async () => {
    const user = await bearerUser();
    await expectError(await setUp(user.access, null), 400, "VALIDATION_ERROR");
    await expectError(await setUp(user.access, "Not-The-Password-1"), 400, "VALIDATION_ERROR");
    await expectError(await call("/api/v1/auth/2fa/setup/", { json: { current_password: GOOD_PASSWORD } }), 401, "AUTHENTICATION_REQUIRED");
    expect(await status(user.access)).toEqual({ enabled: false, enabled_at: null, recovery_codes_left: 0, reset: null });
    const passwordless = await bearerUser();
    await env.DB.prepare("UPDATE users SET password_hash = NULL WHERE id = ?").bind(passwordless.userId).run();
    await expectError(await setUp(passwordless.access, null), 409, "INVALID_STATE");
  });

  it("a pending secret is not active, a wrong code does not turn it on, and the secret is stored encrypted", async () => {
    const user = await bearerUser();
    const { secret, otpauth_url } = (await (await setUp(user.access)).json()) as { secret: string; otpauth_url: string };
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauth_url).toBe(
      `otpauth://totp/Plant%20Community:${user.username}?secret=${secret}&issuer=Plant%20Community&algorithm=SHA1&digits=6&period=30`,
    );
    // Pending: signing in still needs the password only.
    expect((await call("/api/v1/auth/token/", { json: { username: user.username, password: GOOD_PASSWORD } })).status).toBe(200);
    const step = await steadyStep();
    const right = await codeAt(fromBase32(secret), step);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, "0");
    await expectError(
      await call("/api/v1/auth/2fa/enable/", { bearer: user.access, json: { code: wrong } }),
      400,
      "INVALID_TWO_FACTOR_CODE",
    );
    expect((await status(user.access)).enabled).toBe(false);
    const stored = await env.DB.prepare("SELECT secret FROM two_factor WHERE user_id = ?").bind(user.userId).first<{ secret: string }>();
    // `v2.<key id of the JWT_SECRET that sealed it>.<iv>.<ciphertext>` (secret-rotation.test.ts).
    expect(stored!.secret).toMatch(/^v2\.[0-9a-f]{8}\.[A-Za-z0-9+/]+=*\.[A-Za-z0-9+/]+=*$/);
    expect(stored!.secret).not.toContain(secret);
    const raw = fromBase32(secret);
    const hex = Array.from(raw, (b) => b.toString(16).padStart(2, "0")).join("");
    expect(stored!.secret.toLowerCase()).not.toContain(hex);
  });

  it("wrong codes to turn it on count toward the lockout: a stolen access token cannot guess its way through a pending setup", async () => {
    const user = await bearerUser();
    const { secret } = (await (await setUp(user.access)).json()) as { secret: string };
    const step = await steadyStep();
    const right = await codeAt(fromBase32(secret), step);
    const wrong = String((Number(right) + 500_000) % 1_000_000).padStart(6, "0");
    for (let i = 0; i < 10; i++) {
      await expectError(
        await call("/api/v1/auth/2fa/enable/", { bearer: user.access, json: { code: wrong } }),
        400,
        "INVALID_TWO_FACTOR_CODE",
      );
    }
    // Locked: even the right code is refused now, and it stays off.
    await expectError(await call("/api/v1/auth/2fa/enable/", { bearer: user.access, json: { code: right } }), 429, "ACCOUNT_LOCKED");
    expect((await status(user.access)).enabled).toBe(false);
  });

  it("the right code turns it on: 10 recovery codes once, every other session ends, the caller goes on in a new one, the owner is told", async () => {
    const user = await twoFactorUser();
    expect(user.recovery.length).toBe(10);
    expect(new Set(user.recovery).size).toBe(10);
    await expectError(await call("/api/v1/auth/user/", { bearer: user.oldAccess }), 401, "TOKEN_INVALID");
    expect((await call("/api/v1/auth/user/", { bearer: user.access })).status).toBe(200);
    const now = await status(user.access);
    expect(now).toMatchObject({ enabled: true, recovery_codes_left: 10 });
    expect(Date.parse(now.enabled_at!)).toBeGreaterThan(Date.now() - 60_000);
    // Turning it on again, or setting up over it, is refused.
    await expectError(await setUp(user.access), 409, "INVALID_STATE");
    const events = await env.DB.prepare("SELECT data FROM notifications WHERE user_id = ? AND type = 'security'").bind(user.userId).all<{
      data: string;
    }>();
    expect(events.results.map((r) => JSON.parse(r.data).event)).toContain("two_factor_enabled");
  });

  it("the secret and the recovery codes are never answered again: not by the status, the profile or the export", async () => {
    const user = await twoFactorUser();
    const texts = [
      await (await call("/api/v1/auth/2fa/", { bearer: user.access })).text(),
      await (await call("/api/v1/auth/user/", { bearer: user.access })).text(),
      await (await call("/api/v1/auth/user/export/", { bearer: user.access })).text(),
    ];
    for (const text of texts) {
      expect(text).not.toContain(user.secret);
      for (const code of user.recovery) expect(text).not.toContain(code);
    }
    const exported = JSON.parse(texts[2]!) as { two_factor: unknown };
    expect(exported.two_factor).toEqual({ enabled: true, enabled_at: expect.any(String) });
  });
});

describe("signing in", () => {
  it("a right password starts no session and hands out no tokens, on token/ and login/ alike", async () => {
    const user = await twoFactorUser();
    const before = await liveSessions(user.userId);
    for (const via of ["token", "login"] as const) {
      const res = await call(`/api/v1/auth/${via}/`, { json: { username: user.username, password: GOOD_PASSWORD } });
      const text = await res.clone().text();
      await expectError(res, 401, "TWO_FACTOR_REQUIRED");
      expect(text).not.toMatch(/"access"|"refresh"/);
      expect(setCookies(res).access_token).toBeUndefined();
      expect(setCookies(res).refresh_token).toBeUndefined();
    }
    expect(await liveSessions(user.userId)).toBe(before);
    // The challenge token is no credential.
    const token = await passwordStep(user.username);
    await expectError(await call("/api/v1/auth/user/", { bearer: token }), 401, "TOKEN_INVALID");
    // A wrong password still answers as a wrong password.
    await expectError(
      await call("/api/v1/auth/token/", { json: { username: user.username, password: "Wrong-Password-77" } }),
      401,
      "INVALID_CREDENTIALS",
    );
  });

  it("the code completes it as the sign-in that started it: a bearer pair for token/, cookies and the profile for login/", async () => {
    const user = await twoFactorUser();
    const bearer = await verify({ two_factor_token: await passwordStep(user.username, "token"), code: await codeAt(user.key, user.step) });
    expect(bearer.status, await bearer.clone().text()).toBe(200);
    const pair = (await bearer.json()) as Pair & { token_type: string };
    expect(pair.token_type).toBe("Bearer");
    expect((await call("/api/v1/auth/user/", { bearer: pair.access })).status).toBe(200);

    const web = await verify({ two_factor_token: await passwordStep(user.username, "login"), code: await codeAt(user.key, user.step + 1) });
    expect(web.status, await web.clone().text()).toBe(200);
    expect(((await web.json()) as { user: { id: string } }).user.id).toBe(user.userId);
    const cookies = setCookies(web);
    expect(cookies.access_token?.value).toBeTruthy();
    const me = await call("/api/v1/auth/user/", {
      cookies: { access_token: cookies.access_token!.value, refresh_token: cookies.refresh_token!.value },
    });
    expect(me.status).toBe(200);
  });

  it("a code is accepted once: the same code again, even with a fresh token, is refused", async () => {
    const user = await twoFactorUser();
    const code = await codeAt(user.key, user.step);
    expect((await verify({ two_factor_token: await passwordStep(user.username), code })).status).toBe(200);
    await expectError(await verify({ two_factor_token: await passwordStep(user.username), code }), 401, "INVALID_TWO_FACTOR_CODE");
    // So is the code enabling spent, and an older step's.
    await expectError(
      await verify({ two_factor_token: await passwordStep(user.username), code: await codeAt(user.key, user.step - 1) }),
      401,
      "INVALID_TWO_FACTOR_CODE",
    );
    // Two steps from the Worker's clock is beyond the skew allowed, either way.
    const token = await passwordStep(user.username);
    const now = await steadyStep();
    await expectError(await verify({ two_factor_token: token, code: await codeAt(user.key, now + 2) }), 401, "INVALID_TWO_FACTOR_CODE");
    await expectError(await verify({ two_factor_token: token, code: await codeAt(user.key, now - 2) }), 401, "INVALID_TWO_FACTOR_CODE");
    // One step ahead (a phone's clock a little fast) is accepted.
    expect((await verify({ two_factor_token: token, code: await codeAt(user.key, now + 1) })).status).toBe(200);
  });

  it("a two_factor_token is refused reused, expired, forged, as an access token, or with another account's code", async () => {
    const user = await twoFactorUser();
    const other = await twoFactorUser();
    const token = await passwordStep(user.username);
    expect((await verify({ two_factor_token: token, code: await codeAt(user.key, user.step) })).status).toBe(200);
    // Reused: refused before the code is looked at (a recovery code is not spent on it).
    await expectError(await verify({ two_factor_token: token, recovery_code: user.recovery[0] }), 401, "TWO_FACTOR_TOKEN_INVALID");
    expect((await status(user.access)).recovery_codes_left).toBe(10);

    const config = getConfig(env);
    const row = (await findUserById(env, user.userId))!;
    const expired = (await twoFactorRequired(config, row, "token", null, Date.now() - 301_000)).extra!.two_factor_token as string;
    await expectError(await verify({ two_factor_token: expired, recovery_code: user.recovery[0] }), 401, "TWO_FACTOR_TOKEN_INVALID");

    // Forged: the same claims signed with the session key (JWT_SECRET itself), and a payload altered.
    const [head, payload, sig] = (await passwordStep(user.username)).split(".");
    const claims = JSON.parse(atob(payload!.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
    const withSessionKey = await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .sign(new TextEncoder().encode(config.JWT_SECRET));
    await expectError(await verify({ two_factor_token: withSessionKey, recovery_code: user.recovery[0] }), 401, "TWO_FACTOR_TOKEN_INVALID");
    const asOther = btoa(JSON.stringify({ ...claims, sub: other.userId }))
      .replace(/=+$/, "")
      .replace(/\+/g, "-")
      .replace(/\//g, "_");
    await expectError(
      await verify({ two_factor_token: `${head}.${asOther}.${sig}`, recovery_code: other.recovery[0] }),
      401,
      "TWO_FACTOR_TOKEN_INVALID",
    );
    await expectError(await verify({ two_factor_token: user.access, recovery_code: user.recovery[0] }), 401, "TWO_FACTOR_TOKEN_INVALID");

    // Another account's code or recovery code does not complete this account's sign-in.
    const mine = await passwordStep(user.username);
    await expectError(
      await verify({ two_factor_token: mine, code: await codeAt(other.key, other.step + 1) }),
      401,
      "INVALID_TWO_FACTOR_CODE",
    );
    await expectError(await verify({ two_factor_token: mine, recovery_code: other.recovery[1] }), 401, "INVALID_TWO_FACTOR_CODE");
    expect((await status(other.access)).recovery_codes_left).toBe(10);
  });

  it("one token starts one session, even sent twice at once with two right factors", async () => {
    const user = await twoFactorUser();
    const token = await passwordStep(user.username);
    const before = await liveSessions(user.userId);
    const answers = await Promise.all([
      verify({ two_factor_token: token, code: await codeAt(user.key, user.step) }),
      verify({ two_factor_token: token, recovery_code: user.recovery[0] }),
    ]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 401]);
    await expectError(answers.find((r) => r.status === 401)!, 401, "TWO_FACTOR_TOKEN_INVALID");
    expect(await liveSessions(user.userId)).toBe(before + 1);
  });

  it("wrong codes lock the account like wrong passwords, and a right password in between forgives none of them", async () => {
    const user = await twoFactorUser();
    const right = await codeAt(user.key, user.step);
    const wrong = String((Number(right) + 500_000) % 1_000_000).padStart(6, "0");
    let token = await passwordStep(user.username); // 1
    for (let i = 0; i < 5; i++) await expectError(await verify({ two_factor_token: token, code: wrong }), 401, "INVALID_TWO_FACTOR_CODE"); // 6
    token = await passwordStep(user.username); // 7
    for (let i = 0; i < 3; i++) await expectError(await verify({ two_factor_token: token, code: wrong }), 401, "INVALID_TWO_FACTOR_CODE"); // 10
    // Locked: the right code is refused now, as the password is.
    await expectError(await verify({ two_factor_token: token, code: right }), 429, "ACCOUNT_LOCKED");
    const events = await eventually(async () => {
      const rows = await env.DB.prepare("SELECT data FROM notifications WHERE user_id = ? AND type = 'security'").bind(user.userId).all<{
        data: string;
      }>();
      const names = rows.results.map((r) => JSON.parse(r.data).event as string);
      return names.includes("account_locked") ? names : undefined;
    });
    expect(events).toContain("account_locked");
  });

  it("a recovery code works once, typed any way, and the owner is told how many are left", async () => {
    const user = await twoFactorUser();
    const code = user.recovery[3]!;
    const typed = ` ${code.toUpperCase().replace("-", " ")} `;
    expect((await verify({ two_factor_token: await passwordStep(user.username), recovery_code: typed })).status).toBe(200);
    await expectError(
      await verify({ two_factor_token: await passwordStep(user.username), recovery_code: code }),
      401,
      "INVALID_TWO_FACTOR_CODE",
    );
    expect((await status(user.access)).recovery_codes_left).toBe(9);
    const rows = await env.DB.prepare("SELECT data FROM notifications WHERE user_id = ? AND type = 'security'").bind(user.userId).all<{
      data: string;
    }>();
    expect(rows.results.map((r) => JSON.parse(r.data))).toContainEqual({ event: "recovery_code_used", detail: "9" });
  });

  it("a password reset keeps two-factor sign-in on, and spends the challenges issued before it", async () => {
    const user = await twoFactorUser();
    const before = await passwordStep(user.username);
    expect((await resetPassword(user.email, "Brand-New-Bramble-9")).status).toBe(200);
    await expectError(await verify({ two_factor_token: before, code: await codeAt(user.key, user.step) }), 401, "TWO_FACTOR_TOKEN_INVALID");
    const after = await passwordStep(user.username, "token", "Brand-New-Bramble-9");
    expect((await verify({ two_factor_token: after, code: await codeAt(user.key, user.step) })).status).toBe(200);
  });
  /** Locks `user` by wrong codes (10 failures: the password step and 9 codes); answers a wrong code. */
  async function lockByWrongCodes(user: { username: string; key: Uint8Array; step: number }): Promise<string> {
    const right = await codeAt(user.key, user.step);
    const wrong = String((Number(right) + 500_000) % 1_000_000).padStart(6, "0");
    const token = await passwordStep(user.username); // 1
    for (let i = 0; i < 9; i++) await expectError(await verify({ two_factor_token: token, code: wrong }), 401, "INVALID_TWO_FACTOR_CODE"); // 10
    await expectError(await verify({ two_factor_token: token, code: wrong }), 429, "ACCOUNT_LOCKED");
    return wrong;
  }

  it("a password reset lifts a lock set by wrong codes: the owner signs in at once with the new password and a right code", async () => {
    const user = await twoFactorUser();
    await lockByWrongCodes(user);
    // The owner proves the inbox; whoever guessed had the old password, which no longer works.
    expect((await resetPassword(user.email, "Brand-New-Bramble-9")).status).toBe(200);
    const token = await passwordStep(user.username, "token", "Brand-New-Bramble-9");
    const res = await verify({ two_factor_token: token, code: await codeAt(user.key, user.step) });
    expect(res.status, await res.clone().text()).toBe(200);
  });

  it("the inbox alone buys one guess, not a round: after a reset the next wrong code locks again, and another reset lifts nothing", async () => {
    const user = await twoFactorUser();
    const wrong = await lockByWrongCodes(user);
    // Whoever holds the inbox resets the password...
    expect((await resetPassword(user.email, "Brand-New-Bramble-9")).status).toBe(200);
    const token = await passwordStep(user.username, "token", "Brand-New-Bramble-9");
    // ...gets one wrong code, which locks the account again: even the right code is refused.
    await expectError(await verify({ two_factor_token: token, code: wrong }), 401, "INVALID_TWO_FACTOR_CODE");
    await expectError(await verify({ two_factor_token: token, code: await codeAt(user.key, user.step) }), 429, "ACCOUNT_LOCKED");
    // A second reset does not lift it: no challenge token, no more codes to try until it runs out.
    expect((await resetPassword(user.email, "Other-New-Bramble-7")).status).toBe(200);
    const again = await call("/api/v1/auth/token/", { json: { username: user.username, password: "Other-New-Bramble-7" } });
    expect(again.status).not.toBe(200);
    expect(((await again.json()) as { code: string }).code).not.toBe("TWO_FACTOR_REQUIRED");
  });
});

describe("repeated lockouts (fake time)", () => {
  afterEach(() => vi.useRealTimers());

  /** Freezes the clock (the Worker's and its Durable Objects' too) 5 s into the next TOTP step; `advance` moves it on. */
  function fakeClock() {
    let t = (Math.floor(Date.now() / 30_000) + 1) * 30_000 + 5_000;
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(t);
    return {
      advance(ms: number) {
        t += ms;
        vi.setSystemTime(t);
      },
    };
  }
  /** A code the app shows at no step the Worker accepts now (this step and one either side). */
  async function wrongCodeNow(key: Uint8Array): Promise<string> {
    const s = stepNow();
    const near = await Promise.all([s - 1, s, s + 1].map((step) => codeAt(key, step)));
    let n = (Number(near[1]) + 500_000) % 1_000_000;
    while (near.includes(String(n).padStart(6, "0"))) n = (n + 1) % 1_000_000;
    return String(n).padStart(6, "0");
  }
  const lockNotices = async (userId: string) =>
    (
      await env.DB.prepare("SELECT data FROM notifications WHERE user_id = ? AND type = 'security' ORDER BY created_at").bind(userId).all<{
        data: string;
      }>()
    ).results
      .map((r) => JSON.parse(r.data) as { event: string; detail: string })
      .filter((d) => d.event === "account_locked")
      .map((d) => d.detail);

  /** The password, then wrong codes until refused: the lock's Retry-After, in seconds. */
  async function guessCodesUntilLocked(user: { username: string; key: Uint8Array }): Promise<number> {
    const token = await passwordStep(user.username); // 1
    const wrong = await wrongCodeNow(user.key);
    for (let i = 0; i < 9; i++) await expectError(await verify({ two_factor_token: token, code: wrong }), 401, "INVALID_TWO_FACTOR_CODE"); // 10
    const refused = await verify({ two_factor_token: token, code: await codeAt(user.key, stepNow()) });
    const retryAfter = Number(refused.headers.get("Retry-After"));
    await expectError(refused, 429, "ACCOUNT_LOCKED");
    return retryAfter;
  }

  it("an attacker holding the password and guessing codes lock after lock: each lock lasts twice the one before, and the owner is told to change the password", async () => {
    const clock = fakeClock();
    const user = await twoFactorUser();
    const locks: number[] = [];
    for (let period = 0; period < 4; period++) {
      locks.push(await guessCodesUntilLocked(user));
      // Just before the lock runs out, the right password is still refused (as a wrong one: that
      // name did not lock it), so there is no token to try another code with.
      clock.advance(locks.at(-1)! * 1000 - 2_000);
      await expectError(
        await call("/api/v1/auth/token/", { json: { username: user.username, password: GOOD_PASSWORD } }),
        401,
        "INVALID_CREDENTIALS",
      );
      clock.advance(3_000);
    }
    expect(locks).toEqual([3600, 7200, 14400, 28800]);
    const notices = await lockNotices(user.userId);
    expect(notices).toHaveLength(4);
    expect(notices.map((d) => /locked it for ([^;]+);/.exec(d)?.[1])).toEqual(["60 minutes", "2 hours", "4 hours", "8 hours"]);
    for (const detail of notices) expect(detail).toMatch(/someone knows your password: change it now/);
  });

  it("a stranger's wrong passwords lock it for an hour each time, however often, on an account whose codes were guessed before too", async () => {
    const clock = fakeClock();
    const user = await twoFactorUser();
    clock.advance((await guessCodesUntilLocked(user)) * 1000 + 1_000); // the codes' next lock would last 2 h
    for (let period = 0; period < 3; period++) {
      for (let i = 0; i < 10; i++) {
        await expectError(
          await call("/api/v1/auth/token/", { json: { username: user.username, password: `Wrong-Password-${i}` } }),
          401,
          "INVALID_CREDENTIALS",
        );
      }
      const refused = await call("/api/v1/auth/token/", { json: { username: user.username, password: GOOD_PASSWORD } });
      expect(refused.headers.get("Retry-After")).toBe("3600");
      await expectError(refused, 429, "ACCOUNT_LOCKED");
      clock.advance(3_601_000);
    }
    const notices = await lockNotices(user.userId);
    expect(notices.slice(1)).toEqual(
      Array(3).fill(expect.stringMatching(/^We saw 10 failed sign-in attempts on your account and locked it for 60 minutes/)),
    );
    // The codes' growth is still there for the next wrong codes.
    expect(await guessCodesUntilLocked(user)).toBe(7200);
  });

  it("the owner signing in (password and right code) starts the growth again from an hour", async () => {
    const clock = fakeClock();
    const user = await twoFactorUser();
    for (const expected of [3600, 7200]) {
      expect(await guessCodesUntilLocked(user)).toBe(expected);
      clock.advance(expected * 1000 + 1_000);
    }
    const owner = await verify({ two_factor_token: await passwordStep(user.username), code: await codeAt(user.key, stepNow()) });
    expect(owner.status, await owner.clone().text()).toBe(200);
    clock.advance(30_000);
    expect(await guessCodesUntilLocked(user)).toBe(3600);
  });
});

describe("an outdated password hash", () => {
  const storedHash = async (userId: string) =>
    (await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?").bind(userId).first<{ password_hash: string }>())!.password_hash;

  it("is upgraded once the code is right, never on a wrong code, and the password goes on working through the new hash", async () => {
    const user = await twoFactorUser();
    const legacy = await hashPassword(GOOD_PASSWORD, 1_000);
    await env.DB.prepare("UPDATE users SET password_hash = ? WHERE id = ?").bind(legacy, user.userId).run();
    const right = await codeAt(user.key, user.step);
    const wrong = String((Number(right) + 500_000) % 1_000_000).padStart(6, "0");

    // The password and a wrong code (or none at all): the old hash stays, and the token carries no hash.
    const token = await passwordStep(user.username);
    expect(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))).not.toMatch(/pbkdf2|\$/);
    await expectError(await verify({ two_factor_token: token, code: wrong }), 401, "INVALID_TWO_FACTOR_CODE");
    await expectError(await verify({ two_factor_token: token, recovery_code: "aaaaa-bbbbb" }), 401, "INVALID_TWO_FACTOR_CODE");
    expect(await storedHash(user.userId)).toBe(legacy);
    await passwordStep(user.username);
    expect(await storedHash(user.userId)).toBe(legacy);

    // The right code: upgraded in the sign-in it completes.
    expect((await verify({ two_factor_token: token, code: right })).status).toBe(200);
    const upgraded = await storedHash(user.userId);
    expect(upgraded).not.toBe(legacy);
    expect(needsRehash(upgraded)).toBe(false);
    expect(await verifyPassword(GOOD_PASSWORD, upgraded)).toBe(true);
    // The copy kept for it is gone.
    expect(await env.DB.prepare("SELECT rehash, rehash_of FROM two_factor WHERE user_id = ?").bind(user.userId).first()).toEqual({
      rehash: null,
      rehash_of: null,
    });

    // The same password signs in through the new hash, and nothing rewrites it.
    const again = await verify({ two_factor_token: await passwordStep(user.username), code: await codeAt(user.key, user.step + 1) });
    expect(again.status, await again.clone().text()).toBe(200);
    expect(await storedHash(user.userId)).toBe(upgraded);
  });

  it("a hash kept for one password is never written over another: it is bound to the hash it replaces", async () => {
    const user = await twoFactorUser();
    await env.DB.prepare("UPDATE users SET password_hash = ? WHERE id = ?")
      .bind(await hashPassword(GOOD_PASSWORD, 1_000), user.userId)
      .run();
    await passwordStep(user.username); // keeps a new hash of GOOD_PASSWORD
    // The password is then changed to another outdated hash (as an import would leave it), with no
    // password step since: the challenge is issued for it directly.
    const other = await hashPassword("Another-Old-Secret-4", 1_000);
    await env.DB.prepare("UPDATE users SET password_hash = ? WHERE id = ?").bind(other, user.userId).run();
    const row = (await findUserById(env, user.userId))!;
    const token = (await twoFactorRequired(getConfig(env), row, "token", null)).extra!.two_factor_token as string;
    expect((await verify({ two_factor_token: token, code: await codeAt(user.key, user.step) })).status).toBe(200);
    expect(await storedHash(user.userId)).toBe(other);
    expect(await verifyPassword(GOOD_PASSWORD, await storedHash(user.userId))).toBe(false);
  });
});

describe("provider sign-ins", () => {
  it("a Google account vouching only for the address is not linked to an account with two-factor sign-in (the inbox is one factor)", async () => {
    const user = await twoFactorUser();
    await env.DB.prepare("UPDATE users SET email_verified = 1, password_proven = 1 WHERE id = ?").bind(user.userId).run();
    oauth.google.setNextUser(googleIdentity({ email: user.email }));
    const { location, access } = await oauthSignIn("google", oauth.google);
    expect(location.searchParams.get("error")).toBe("two_factor_required");
    expect(access).toBeUndefined();
    expect(await env.DB.prepare("SELECT 1 FROM oauth_accounts WHERE user_id = ?").bind(user.userId).first()).toBeNull();
  });

  it("nor a Firebase sign-in: 403, no tokens, no link", async () => {
    const user = await twoFactorUser();
    await env.DB.prepare("UPDATE users SET email_verified = 1, password_proven = 1 WHERE id = ?").bind(user.userId).run();
    const token = await firebase.issueIdToken({ uid: `uid-${user.email}`, email: user.email, email_verified: true });
    const res = await call("/api/v1/auth/firebase-token-exchange/", { json: { firebase_token: token } });
    const text = await res.clone().text();
    await expectError(res, 403, "FORBIDDEN");
    expect(text).not.toContain("access_token");
    expect(await env.DB.prepare("SELECT 1 FROM oauth_accounts WHERE user_id = ?").bind(user.userId).first()).toBeNull();
  });
});

describe("turning off and new recovery codes", () => {
  it("turning off needs the password and a code; then the password alone signs in", async () => {
    const user = await twoFactorUser();
    const code = await codeAt(user.key, user.step);
    const disable = (json: Record<string, unknown>) => call("/api/v1/auth/2fa/disable/", { bearer: user.access, json });
    await expectError(await disable({ code }), 400, "VALIDATION_ERROR");
    await expectError(await disable({ current_password: "Not-The-Password-1", code }), 400, "VALIDATION_ERROR");
    await expectError(await disable({ current_password: GOOD_PASSWORD }), 400, "VALIDATION_ERROR");
    await expectError(
      await disable({ current_password: GOOD_PASSWORD, code: await codeAt(user.key, user.step - 1) }),
      400,
      "INVALID_TWO_FACTOR_CODE",
    );
    expect((await status(user.access)).enabled).toBe(true);
    expect((await disable({ current_password: GOOD_PASSWORD, code })).status).toBe(200);
    expect(await status(user.access)).toEqual({ enabled: false, enabled_at: null, recovery_codes_left: 0, reset: null });
    expect((await call("/api/v1/auth/token/", { json: { username: user.username, password: GOOD_PASSWORD } })).status).toBe(200);
    expect(await env.DB.prepare("SELECT 1 FROM two_factor WHERE user_id = ?").bind(user.userId).first()).toBeNull();
  });

  it("new recovery codes need a code, and the old ones stop working", async () => {
    const user = await twoFactorUser();
    const replace = (json: Record<string, unknown>) => call("/api/v1/auth/2fa/recovery-codes/", { bearer: user.access, json });
    await expectError(await replace({ code: await codeAt(user.key, user.step - 1) }), 400, "INVALID_TWO_FACTOR_CODE");
    const res = await replace({ code: await codeAt(user.key, user.step) });
    expect(res.status).toBe(200);
    const { recovery_codes } = (await res.json()) as { recovery_codes: string[] };
    expect(recovery_codes.length).toBe(10);
    expect(recovery_codes.some((c) => user.recovery.includes(c))).toBe(false);
    await expectError(
      await verify({ two_factor_token: await passwordStep(user.username), recovery_code: user.recovery[0] }),
      401,
      "INVALID_TWO_FACTOR_CODE",
    );
    expect((await verify({ two_factor_token: await passwordStep(user.username), recovery_code: recovery_codes[0] })).status).toBe(200);
  });

  it("deleting the account deletes its two-factor row", async () => {
    const user = await twoFactorUser();
    const res = await call("/api/v1/auth/user/delete/", {
      bearer: user.access,
      json: { current_password: GOOD_PASSWORD, recovery_code: user.recovery[0]! },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await env.DB.prepare("SELECT 1 FROM two_factor WHERE user_id = ?").bind(user.userId).first()).toBeNull();
  });
});
