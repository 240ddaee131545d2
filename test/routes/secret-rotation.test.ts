// Rotating JWT_SECRET (README "Rotating JWT_SECRET"): what was signed or sealed under the old
// secret keeps working while JWT_SECRET_PREVIOUS lists it, and stops when it is removed; nothing
// new is ever signed or sealed with it. The Worker runs with the tests' JWT_SECRET (the old one)
// through `call`, and with the rotated settings through `callWith`.
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app";
import { getConfig } from "../../src/config";
import { runHousekeeping } from "../../src/jobs/housekeeping";
import { openingKeys, signingKey, verifyingKeys } from "../../src/lib/derived-keys";
import { createLogger } from "../../src/lib/logger";
import { csrfTokenForSession, isSessionCsrfToken } from "../../src/lib/session-cookies";
import { feedsPolledUnderPreviousSecret } from "../../src/services/calendar-feed";
import { lockoutBucketName } from "../../src/services/rate-limits";
import { resealTwoFactorSecrets } from "../../src/services/two-factor";
import { unsubscribeToken, verifyUnsubscribeToken } from "../../src/services/unsubscribe";
import { type CallOptions, call, cookieHeader, expectError, freshIp, setCookies } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { codeAt, fromBase32, steadyStep } from "../helpers/totp";
import { bearerUser, GOOD_PASSWORD, registerWeb, uniqueName } from "../helpers/users";

useEmulators();

type Env = typeof env;
const OLD = env.JWT_SECRET!;
const NEW = "rotated-secret-0123456789abcdef0123456789abcdef";
const OTHER = "someone-elses-secret-0123456789abcdef0123456789";
/** After the rotation: the new secret signs, the old one is still accepted. */
const rotated = { ...env, JWT_SECRET: NEW, JWT_SECRET_PREVIOUS: OLD } as Env;
/** The rotation finished: the old secret removed. */
const dropped = { ...env, JWT_SECRET: NEW, JWT_SECRET_PREVIOUS: "" } as Env;
/** The old secret alone (as before the rotation): anything signed under NEW must fail here. */
const before = { ...env, JWT_SECRET: OLD, JWT_SECRET_PREVIOUS: "" } as Env;

async function callWith(bindings: Env, path: string, opts: CallOptions = {}): Promise<Response> {
  const headers = new Headers(opts.headers);
  if (opts.json !== undefined) headers.set("Content-Type", "application/json");
  if (opts.cookies) headers.set("Cookie", cookieHeader(opts.cookies));
  if (opts.bearer) headers.set("Authorization", `Bearer ${opts.bearer}`);
  headers.set("CF-Connecting-IP", opts.ip ?? freshIp());
  const ctx = createExecutionContext();
  const res = await createApp().fetch(
    new Request(`https://api.test${path}`, {
      method: opts.method ?? (opts.json !== undefined ? "POST" : "GET"),
      headers,
      body: opts.json !== undefined ? JSON.stringify(opts.json) : undefined,
      redirect: "manual",
    }),
    bindings,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

const feedKeyId = async (userId: string) =>
  (await env.DB.prepare("SELECT key_id FROM calendar_feeds WHERE user_id = ?").bind(userId).first<{ key_id: string | null }>())!.key_id;
/** A key id as lib/derived-keys.ts makes it, computed here on its own. */
const kid = async (secret: string) => {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`plant-community/key-id\u0000${secret}`)));
  return [...digest.slice(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("");
};

const me = (bindings: Env, access: string) => callWith(bindings, "/api/v1/auth/user/", { bearer: access });

describe("configuration", () => {
  it("JWT_SECRET_PREVIOUS is a comma-separated list of secrets of 32 characters or more; the current one is not listed twice", () => {
    const previous = (bindings: Partial<Env>) => getConfig({ ...env, ...bindings } as Env).JWT_SECRET_PREVIOUS;
    expect(previous({ JWT_SECRET: NEW, JWT_SECRET_PREVIOUS: ` ${OLD} , ${OTHER},${NEW},${OLD}` })).toEqual([OLD, OTHER]);
    expect(previous({ JWT_SECRET_PREVIOUS: `${NEW},${OLD}` })).toEqual([NEW]);
    expect(getConfig({ ...env, JWT_SECRET_PREVIOUS: "" } as Env).JWT_SECRET_PREVIOUS).toEqual([]);
    expect(() => getConfig({ ...env, JWT_SECRET_PREVIOUS: `${OLD},too-short` } as Env)).toThrow(/JWT_SECRET_PREVIOUS/);
  });

  it("a previous secret's keys can only verify and decrypt: WebCrypto refuses to sign or seal with them", async () => {
    const config = getConfig(rotated);
    const [current, previous] = await verifyingKeys(config, "unsubscribe/v1");
    expect(previous!.usages).toEqual(["verify"]);
    expect(current!.usages).toEqual(["verify"]);
    await expect(crypto.subtle.sign("HMAC", previous!, new Uint8Array(1))).rejects.toThrow();
    expect((await signingKey(config, "unsubscribe/v1")).usages).toEqual(["sign"]);
    const [, opening] = await openingKeys(config, "two-factor-secret");
    expect(opening!.current).toBe(false);
    await expect(crypto.subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, opening!.key, new Uint8Array(1))).rejects.toThrow();
  });
});

describe("sessions through a rotation", () => {
  it("an access token from before works while the old secret is listed, not after; a refresh hands out a pair under the new one", async () => {
    const user = await bearerUser();
    expect((await me(rotated, user.access)).status).toBe(200);
    await expectError(await me(dropped, user.access), 401, "TOKEN_INVALID");

    const refreshed = await callWith(rotated, "/api/v1/auth/token/refresh/", { json: { refresh: user.refresh } });
    expect(refreshed.status, await refreshed.clone().text()).toBe(200);
    const pair = (await refreshed.json()) as { access: string; refresh: string };
    // Signed under the new secret alone: valid once the old one is removed, refused by the old one.
    expect((await me(dropped, pair.access)).status).toBe(200);
    await expectError(await me(before, pair.access), 401, "TOKEN_INVALID");
    expect((await callWith(dropped, "/api/v1/auth/token/refresh/", { json: { refresh: pair.refresh } })).status).toBe(200);
  });

  it("a refresh token from before is refused once the old secret is removed", async () => {
    const user = await bearerUser();
    await expectError(await callWith(dropped, "/api/v1/auth/token/refresh/", { json: { refresh: user.refresh } }), 401, "TOKEN_INVALID");
  });

  it("a token signed with any other secret is refused, whatever is listed", async () => {
    const user = await bearerUser();
    const config = getConfig(rotated);
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ type: "access" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(user.userId)
      .setJti(crypto.randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .setIssuer(config.JWT_ISSUER)
      .setAudience(config.JWT_AUDIENCE)
      .sign(new TextEncoder().encode(OTHER));
    await expectError(await me(rotated, forged), 401, "TOKEN_INVALID");
    await expectError(await me({ ...env, JWT_SECRET_PREVIOUS: NEW } as Env, forged), 401, "TOKEN_INVALID");
  });

  it("a cookie session from before keeps writing with its CSRF token; auth/csrf/ hands it one under the new secret", async () => {
    const web = await registerWeb();
    const write = (bindings: Env, csrf: string) =>
      callWith(bindings, "/api/v1/plant-identification/collections/", {
        cookies: { ...web.cookies, csrftoken: csrf },
        headers: { "X-CSRFToken": csrf },
        json: { name: uniqueName("c") },
      });
    const res = await write(rotated, web.csrf);
    expect(res.status, await res.clone().text()).toBe(201);

    const renewed = setCookies(await callWith(rotated, "/api/v1/auth/csrf/", { cookies: web.cookies }));
    const fresh = renewed.csrftoken!.value;
    expect(fresh).not.toBe(web.csrf);
    expect((await write(rotated, fresh)).status).toBe(201);
  });

  it("a session's CSRF token is made under the new secret only and checked under both while the old is listed", async () => {
    const sessionId = crypto.randomUUID();
    const old = await csrfTokenForSession(getConfig(before), sessionId);
    expect(await isSessionCsrfToken(getConfig(rotated), sessionId, old)).toBe(true);
    expect(await isSessionCsrfToken(getConfig(dropped), sessionId, old)).toBe(false);
    const made = await csrfTokenForSession(getConfig(rotated), sessionId);
    expect(made).toBe(await csrfTokenForSession(getConfig(dropped), sessionId));
    expect(await isSessionCsrfToken(getConfig(before), sessionId, made)).toBe(false);
    const foreign = await csrfTokenForSession(getConfig({ ...env, JWT_SECRET: OTHER } as Env), sessionId);
    expect(await isSessionCsrfToken(getConfig(rotated), sessionId, foreign)).toBe(false);
    // Only the canonical text of the MAC: a twin spelling of the same bytes is refused.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const twin = made.slice(0, -1) + alphabet[alphabet.indexOf(made.at(-1)!) ^ 1];
    expect(await isSessionCsrfToken(getConfig(rotated), sessionId, twin)).toBe(false);
  });
});

describe("links already sent", () => {
  const UNSUBSCRIBE = "/api/v1/notifications/unsubscribe/";

  it("an emailed unsubscribe link works while the old secret is listed, and not after; new links are signed under the new one", async () => {
    const user = await bearerUser();
    const mailed = await unsubscribeToken(env, user.userId, "forum_mention");
    await expectError(await callWith(dropped, `${UNSUBSCRIBE}?token=${mailed}`, { method: "POST" }), 400, "INVALID_TOKEN");
    const res = await callWith(rotated, `${UNSUBSCRIBE}?token=${mailed}`, { method: "POST" });
    expect(res.status, await res.clone().text()).toBe(200);

    const fresh = await unsubscribeToken(rotated, user.userId, "forum_reply");
    expect(await verifyUnsubscribeToken(dropped, fresh)).toEqual({ userId: user.userId, scope: "forum_reply" });
    await expect(verifyUnsubscribeToken(before, fresh)).rejects.toThrow(/altered/);
    const foreign = await unsubscribeToken({ ...env, JWT_SECRET: OTHER } as Env, user.userId, "forum_reply");
    await expect(verifyUnsubscribeToken(rotated, foreign)).rejects.toThrow(/altered/);
  });

  it("a subscribed calendar URL works while the old secret is listed, and not after; a new URL is signed under the new one", async () => {
    const user = await bearerUser();
    const issued = await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: user.access });
    expect(issued.status, await issued.clone().text()).toBe(201);
    const path = new URL(((await issued.json()) as { url: string }).url).pathname;
    expect((await callWith(rotated, path)).status).toBe(200);
    await expectError(await callWith(dropped, path), 404, "NOT_FOUND");
    // Housekeeping counts it among the subscriptions that need the old secret.
    expect(await feedKeyId(user.userId)).toBe(await kid(OLD));
    const polledUnderOld = await feedsPolledUnderPreviousSecret(rotated);
    expect(polledUnderOld).toBeGreaterThanOrEqual(1);

    const reissued = await callWith(rotated, "/api/v1/reminders/calendar-feed/", { method: "POST", bearer: user.access });
    const newPath = new URL(((await reissued.json()) as { url: string }).url).pathname;
    expect((await callWith(dropped, newPath)).status).toBe(200);
    await expectError(await callWith(before, newPath), 404, "NOT_FOUND");
    expect(await feedKeyId(user.userId)).toBe(await kid(NEW));
    expect(await feedsPolledUnderPreviousSecret(rotated)).toBe(polledUnderOld - 1);
  });

  it("a URL issued before key ids were recorded gets its key id when next fetched", async () => {
    const user = await bearerUser();
    const issued = await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: user.access });
    const path = new URL(((await issued.json()) as { url: string }).url).pathname;
    await env.DB.prepare("UPDATE calendar_feeds SET key_id = NULL, last_fetched_at = ? WHERE user_id = ?")
      .bind(new Date().toISOString(), user.userId)
      .run();
    const polled = await feedsPolledUnderPreviousSecret(env);
    expect(polled).toBeGreaterThanOrEqual(1);
    expect((await call(path)).status).toBe(200);
    expect(await feedKeyId(user.userId)).toBe(await kid(OLD));
    expect(await feedsPolledUnderPreviousSecret(env)).toBe(polled - 1);
  });
});

// ---- Two-factor sign-in -----------------------------------------------------------------------

/** A user who turned two-factor sign-in on under the old secret; step `step - 1` is spent. */
async function twoFactorUser() {
  const user = await bearerUser();
  const setup = await call("/api/v1/auth/2fa/setup/", { bearer: user.access, json: { current_password: GOOD_PASSWORD } });
  expect(setup.status, await setup.clone().text()).toBe(200);
  const key = fromBase32(((await setup.json()) as { secret: string }).secret);
  const step = await steadyStep(10);
  const enabled = await call("/api/v1/auth/2fa/enable/", { bearer: user.access, json: { code: await codeAt(key, step - 1) } });
  expect(enabled.status, await enabled.clone().text()).toBe(200);
  return { ...user, key, step, recovery: ((await enabled.json()) as { recovery_codes: string[] }).recovery_codes };
}

/** Password then `factor` under `bindings`: the response of auth/2fa/verify/. */
async function signIn(bindings: Env, username: string, factor: { code?: string; recovery_code?: string }): Promise<Response> {
  const res = await callWith(bindings, "/api/v1/auth/token/", { json: { username, password: GOOD_PASSWORD } });
  const body = (await expectError(res, 401, "TWO_FACTOR_REQUIRED")) as unknown as { two_factor_token: string };
  return callWith(bindings, "/api/v1/auth/2fa/verify/", { json: { two_factor_token: body.two_factor_token, ...factor } });
}

const storedSecret = async (userId: string) =>
  (await env.DB.prepare("SELECT secret FROM two_factor WHERE user_id = ?").bind(userId).first<{ secret: string }>())!.secret;
describe("two-factor sign-in through a rotation", () => {
  it("signs in with a code (the secret is sealed again under the new one) and with a recovery code; after, without the old secret, with a code", async () => {
    const user = await twoFactorUser();
    expect(await storedSecret(user.userId)).toMatch(new RegExp(`^v2\\.${await kid(OLD)}\\.`));

    const withCode = await signIn(rotated, user.username, { code: await codeAt(user.key, user.step) });
    expect(withCode.status, await withCode.clone().text()).toBe(200);
    expect(await storedSecret(user.userId)).toMatch(new RegExp(`^v2\\.${await kid(NEW)}\\.`));

    const withRecovery = await signIn(rotated, user.username, { recovery_code: user.recovery[0] });
    expect(withRecovery.status, await withRecovery.clone().text()).toBe(200);

    // The old secret removed: the code still works (its secret was sealed again); recovery codes
    // made under the old secret no longer match (only their HMACs are kept: README).
    const after = await signIn(dropped, user.username, { code: await codeAt(user.key, user.step + 1) });
    expect(after.status, await after.clone().text()).toBe(200);
    await expectError(await signIn(dropped, user.username, { recovery_code: user.recovery[1] }), 401, "INVALID_TWO_FACTOR_CODE");
  });

  it("recovery codes made after the rotation work once the old secret is removed", async () => {
    const user = await twoFactorUser();
    const replaced = await callWith(rotated, "/api/v1/auth/2fa/recovery-codes/", {
      bearer: (
        await ((await signIn(rotated, user.username, { code: await codeAt(user.key, user.step) })).json() as Promise<{ access: string }>)
      ).access,
      json: { code: await codeAt(user.key, user.step + 1) },
    });
    expect(replaced.status, await replaced.clone().text()).toBe(200);
    const codes = ((await replaced.json()) as { recovery_codes: string[] }).recovery_codes;
    const res = await signIn(dropped, user.username, { recovery_code: codes[0] });
    expect(res.status, await res.clone().text()).toBe(200);
  });

  it("without the old secret listed, an account whose secret was not sealed again cannot finish signing in", async () => {
    const user = await twoFactorUser();
    // Its secret opens under no listed secret: an operator's error, answered 503 with its own code
    // and logged with what to do, rather than as a wrong code that would count towards the owner's
    // lockout, or as an unexplained 500.
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const res = await signIn(dropped, user.username, { code: await codeAt(user.key, user.step) });
      await expectError(res, 503, "TWO_FACTOR_UNAVAILABLE");
      const line = logged.mock.calls.map((args) => String(args[0])).find((text) => text.includes("no accepted JWT_SECRET opens"));
      expect(line).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ user_id: user.userId, advice: expect.stringMatching(/JWT_SECRET_PREVIOUS/) });
      // Not counted as a wrong code on the owner's lockout.
      const lockout = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(lockoutBucketName(`user:${user.userId}`)));
      const stored = await runInDurableObject(lockout, (_instance, state) => state.storage.get<{ codes?: unknown }>("state"));
      expect(stored?.codes).toBeUndefined();
    } finally {
      logged.mockRestore();
    }
    expect(await storedSecret(user.userId)).toMatch(new RegExp(`^v2\\.${await kid(OLD)}\\.`));
  });

  it("the OpenAPI document lists the 503 on every route that opens the secret", async () => {
    const doc = (await (await call("/api/openapi.json")).json()) as {
      paths: Record<string, { post?: { responses: Record<string, { content: { "application/json": { example: { code: string } } } }> } }>;
    };
    for (const path of [
      "/api/v1/auth/2fa/verify/",
      "/api/v1/auth/2fa/enable/",
      "/api/v1/auth/2fa/disable/",
      "/api/v1/auth/2fa/recovery-codes/",
    ]) {
      const key = Object.keys(doc.paths).find((p) => p.replace(/\/?$/, "/") === path);
      expect(key, path).toBeDefined();
      expect(doc.paths[key!]!.post!.responses["503"]?.content["application/json"].example.code, path).toBe("TWO_FACTOR_UNAVAILABLE");
    }
  });

  it("a challenge from before the rotation (password typed a moment before it) is still completed; one from after is under the new secret only", async () => {
    const user = await twoFactorUser();
    const res = await call("/api/v1/auth/token/", { json: { username: user.username, password: GOOD_PASSWORD } });
    const { two_factor_token } = (await expectError(res, 401, "TWO_FACTOR_REQUIRED")) as unknown as { two_factor_token: string };
    const done = await callWith(rotated, "/api/v1/auth/2fa/verify/", {
      json: { two_factor_token, code: await codeAt(user.key, user.step) },
    });
    expect(done.status, await done.clone().text()).toBe(200);
    // One issued after the rotation is signed under the new secret alone: the old one refuses it.
    const later = await callWith(rotated, "/api/v1/auth/token/", { json: { username: user.username, password: GOOD_PASSWORD } });
    const fresh = ((await expectError(later, 401, "TWO_FACTOR_REQUIRED")) as unknown as { two_factor_token: string }).two_factor_token;
    await expectError(
      await callWith(before, "/api/v1/auth/2fa/verify/", {
        json: { two_factor_token: fresh, code: await codeAt(user.key, user.step + 1) },
      }),
      401,
      "TWO_FACTOR_TOKEN_INVALID",
    );
  });
});

describe("finishing the rotation: housekeeping", () => {
  /** A two-factor row sealed by the tests' own AES-GCM (HKDF from `secret`), in the format from before key ids when `v1`. */
  async function sealedRow(secret: string, format: "v1" | "v2"): Promise<{ userId: string; key: Uint8Array }> {
    const userId = `rotation-${crypto.randomUUID()}`;
    const name = uniqueName("rot");
    await env.DB.prepare("INSERT INTO users (id, username, email) VALUES (?, ?, ?)").bind(userId, name, `${name}@example.com`).run();
    const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), "HKDF", false, ["deriveKey"]);
    const aes = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode("plant-community/two-factor-secret") },
      base,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt"],
    );
    const key = crypto.getRandomValues(new Uint8Array(20));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(userId) }, aes, key),
    );
    const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
    const text = format === "v1" ? `v1.${b64(iv)}.${b64(sealed)}` : `v2.${await kid(secret)}.${b64(iv)}.${b64(sealed)}`;
    await env.DB.prepare("INSERT INTO two_factor (user_id, secret, enabled_at, recovery_codes) VALUES (?, ?, ?, '[]')")
      .bind(userId, text, new Date().toISOString())
      .run();
    return { userId, key };
  }

  it("seals every secret under a previous key (and from before key ids) again, over several pages; an unreadable one is counted and left", async () => {
    const rows = [
      ...(await Promise.all(Array.from({ length: 60 }, () => sealedRow(OLD, "v2")))),
      await sealedRow(OLD, "v1"),
      await sealedRow(NEW, "v1"),
    ];
    const lost = await sealedRow(OTHER, "v2");
    const report = await resealTwoFactorSecrets(rotated, getConfig(rotated));
    expect(report.resealed).toBeGreaterThanOrEqual(rows.length);
    expect(report.unreadable).toBeGreaterThanOrEqual(1);
    const newKid = await kid(NEW);
    for (const row of rows) expect(await storedSecret(row.userId)).toMatch(new RegExp(`^v2\\.${newKid}\\.`));
    expect(await storedSecret(lost.userId)).toMatch(new RegExp(`^v2\\.${await kid(OTHER)}\\.`));
    // Only the unreadable ones are left; a second run has nothing to do.
    expect(report.secretsLeft).toBe(report.unreadable);
    const again = await resealTwoFactorSecrets(rotated, getConfig(rotated));
    expect(again.resealed).toBe(0);
  });

  it("without JWT_SECRET_PREVIOUS the scheduled run re-seals hourly only (it reads the whole table)", async () => {
    const row = await sealedRow(OLD, "v1");
    const quiet = createLogger({}, "error");
    const at = (minute: number) => Date.UTC(2026, 0, 1, 10, minute);
    await runHousekeeping(env, quiet, at(17));
    expect(await storedSecret(row.userId)).toMatch(/^v1\./);
    await runHousekeeping(env, quiet, at(2));
    expect(await storedSecret(row.userId)).toMatch(new RegExp(`^v2\\.${await kid(OLD)}\\.`));
  });

  it("after the scheduled run, an account set up before the rotation signs in with a code without the old secret", async () => {
    const user = await twoFactorUser();
    const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
    const logger = { ...createLogger({}, "error"), info: (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, fields }) };
    await runHousekeeping(rotated, logger);
    expect(await storedSecret(user.userId)).toMatch(new RegExp(`^v2\\.${await kid(NEW)}\\.`));
    // The run tells the operator what still needs the old secret.
    const told = lines.find((line) => line.msg === "JWT_SECRET_PREVIOUS is set")?.fields;
    expect(told).toMatchObject({ previous_secrets: 1, two_factor_secrets_left: expect.any(Number) });
    expect(told!.two_factor_recovery_code_sets_left).toBeGreaterThanOrEqual(1);
    expect(told!.calendar_feeds_polled_under_previous_secret).toEqual(expect.any(Number));
    expect(told!.advice).toMatch(/calendar-feed URLs/);
    lines.length = 0;
    await runHousekeeping(dropped, logger);
    expect(lines.some((line) => line.msg === "JWT_SECRET_PREVIOUS is set")).toBe(false);
    const res = await signIn(dropped, user.username, { code: await codeAt(user.key, user.step) });
    expect(res.status, await res.clone().text()).toBe(200);
    // Its recovery codes were made under the old secret: reported, as they cannot be hashed again.
    expect((await resealTwoFactorSecrets(rotated, getConfig(rotated))).recoveryCodeSetsLeft).toBeGreaterThanOrEqual(1);
  });
});
