/**
 * Account mail the email provider did not take (down, refusing with 429, unreachable): what the
 * user is told on each path, and that nothing half-done stays behind. A signed-in user's own
 * request (the confirmation link again, an email change) answers 503 saying so, with the
 * provider's Retry-After (or a few minutes when it named none), and gives back what it spent, so
 * asking again works; the provider refusing the message itself is 503 too, saying so, without
 * Retry-After;
 * sign-up creates the account and says no link went out; the password and two-factor resets keep
 * their single answer and take back the link that never went out.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { getConfig } from "../../src/config";
import { createLogger } from "../../src/lib/logger";
import { requestEmailChange, sendVerificationEmail } from "../../src/services/accounts";
import { isSuppressed } from "../../src/services/email-events";
import { verifyToken } from "../../src/services/tokens";
import { findUserById } from "../../src/services/users";
import { suppress } from "../helpers/email-webhook";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { mailTo } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { envAroundBatches, envRacingFirstBatch, envRacingStatement } from "../helpers/racing-env";
import { bearerUser, GOOD_PASSWORD, tokenLogin, uniqueName } from "../helpers/users";
import { eventually } from "../helpers/wait";

const emulators = useEmulators();
const VERIFY = "/api/v1/auth/email/verify/";

const count = async (query: string, ...values: unknown[]) =>
  (await env.DB.prepare(query)
    .bind(...values)
    .first<{ n: number }>())!.n;

/** The provider refuses every message (a 4xx other than 429), naming its own reasons. */
function providerRefuses() {
  emulators.overrides["email.emulator.test"] = async () =>
    Response.json({ statusCode: 422, name: "validation_error", message: "Invalid `to` field." }, { status: 422 });
}

/**
 * A refusal's answer: 503 SERVICE_UNAVAILABLE (the code clients switch on) saying the message was
 * not accepted and what to do, with no Retry-After (retrying will not help) and nothing of what
 * the provider said.
 */
async function expectRefusalAnswer(res: Response, what: string) {
  const body = await expectError(res, 503, "SERVICE_UNAVAILABLE");
  expect(res.headers.get("Retry-After")).toBeNull();
  expect(body.message).toContain(`We could not send ${what}: our email service did not accept the message`);
  expect(body.message).toMatch(/asking again will not help\. Check that the address is right, or contact support/);
  expect(body.message).not.toMatch(/not answering|try again|Invalid|validation_error/);
}

const askForEmail = (access: string, email: string) =>
  call("/api/v1/auth/user/", { method: "PATCH", bearer: access, json: { email, current_password: GOOD_PASSWORD } });

describe("the confirmation link asked for again, the provider down", () => {
  it("answers 503 saying nothing was sent, keeps no unsent link, and the failed asks do not count", async () => {
    const u = await bearerUser();
    const links = () => count("SELECT count(*) AS n FROM email_change_tokens WHERE user_id = ?", u.userId);
    const before = await links();
    emulators.email.setMode({ failure: "500" });
    // More failed asks than the limits allow (3 an hour per account and per inbox): none counted.
    for (let i = 0; i < 3; i++) {
      const body = await expectError(await call(VERIFY, { method: "POST", bearer: u.access }), 503, "SERVICE_UNAVAILABLE");
      expect(body.message).toMatch(/could not send a new confirmation link.*not answering.*try again in a few minutes/);
    }
    // The provider named no wait: the answer still says, for programs, when to try again.
    const res = await call(VERIFY, { method: "POST", bearer: u.access });
    await expectError(res, 503, "SERVICE_UNAVAILABLE");
    expect(res.headers.get("Retry-After")).toBe("300");
    expect(await links()).toBe(before);
    emulators.email.setMode({ failure: "none" });
    for (let i = 0; i < 3; i++) expect((await call(VERIFY, { method: "POST", bearer: u.access })).status, `ask ${i + 1}`).toBe(202);
    expect(await links()).toBe(before + 3);
  });

  it("keeps the counts when the provider refuses the message (a 4xx other than 429): asking again would be refused again", async () => {
    // A refusal is the provider's answer to this message, not an outage: giving the counts back
    // would let an address the provider refuses call it without limit.
    const u = await bearerUser();
    providerRefuses();
    for (let i = 0; i < 3; i++) await expectError(await call(VERIFY, { method: "POST", bearer: u.access }), 503, "SERVICE_UNAVAILABLE");
    await expectError(await call(VERIFY, { method: "POST", bearer: u.access }), 429, "RATE_LIMITED");
  });

  it("says the provider did not accept the link, not that it is down, and invites no retry", async () => {
    const u = await bearerUser();
    const links = () => count("SELECT count(*) AS n FROM email_change_tokens WHERE user_id = ?", u.userId);
    const before = await links();
    providerRefuses();
    await expectRefusalAnswer(await call(VERIFY, { method: "POST", bearer: u.access }), `a new confirmation link to ${u.email}`);
    expect(await links()).toBe(before);
  });

  it("passes on the provider's Retry-After", async () => {
    const u = await bearerUser();
    emulators.email.setMode({ failure: "429", retryAfterSeconds: 30 });
    const res = await call(VERIFY, { method: "POST", bearer: u.access });
    const body = await expectError(res, 503, "SERVICE_UNAVAILABLE");
    expect(res.headers.get("Retry-After")).toBe("30");
    expect(body.message).toContain("try again in 30 seconds");
  });
});

describe("an email change, the provider down", () => {
  it("answers 503, leaves nothing pending, and gives back what it counted", async () => {
    const u = await bearerUser();
    const target = `${uniqueName("moving")}@example.com`;
    emulators.email.setMode({ failure: "500" });
    // As many as the per-account limit (5 an hour), more than the new inbox's (3): none counts.
    for (let i = 0; i < 5; i++) {
      const body = await expectError(await askForEmail(u.access, target), 503, "SERVICE_UNAVAILABLE");
      expect(body.message).toContain(`could not send the confirmation link to ${target}`);
    }
    expect((await findUserById(env, u.userId))?.pendingEmail).toBeNull();
    expect(await count("SELECT count(*) AS n FROM email_change_tokens WHERE new_email = ?", target)).toBe(0);
    const profile = await json<{ pending_email: string | null }>(await call("/api/v1/auth/user/", { bearer: u.access }), 200);
    expect(profile.pending_email).toBeNull();

    emulators.email.setMode({ failure: "none" });
    expect(await json<{ pending_email: string | null }>(await askForEmail(u.access, target), 200)).toMatchObject({
      pending_email: target,
    });
    await mailTo(emulators.email, target, /Confirm your new/);
  });

  it("says the provider did not accept the link, not that it is down, and leaves nothing pending", async () => {
    const u = await bearerUser();
    const target = `${uniqueName("refused")}@example.com`;
    providerRefuses();
    await expectRefusalAnswer(await askForEmail(u.access, target), `the confirmation link to ${target}`);
    expect((await findUserById(env, u.userId))?.pendingEmail).toBeNull();
    expect(await count("SELECT count(*) AS n FROM email_change_tokens WHERE new_email = ?", target)).toBe(0);
  });

  it("keeps the per-account count when the notice to the current address went out: failed links buy no unlimited notices", async () => {
    // The provider fails the link to one address (answering 500 for it only) and takes the notice
    // to the account's current address: that inbox got mail, so the request stays counted, or
    // asking again and again would send it notices without limit.
    const u = await bearerUser();
    const failing = `${uniqueName("failing")}@example.com`;
    emulators.overrides["email.emulator.test"] = async (request) => {
      const { to } = (await request.clone().json()) as { to: string };
      if (to === failing)
        return Response.json({ statusCode: 500, name: "application_error", message: "An unexpected error occurred." }, { status: 500 });
      return emulators.email.handle(request);
    };
    const notices = () => emulators.email.outbox.filter((m) => m.to.includes(u.email) && /change of your/.test(m.subject)).length;
    const limit = getConfig(env).EMAIL_CHANGE_RATE_LIMIT.limit;
    for (let i = 0; i < limit; i++) await expectError(await askForEmail(u.access, failing), 503, "SERVICE_UNAVAILABLE");
    expect(notices()).toBe(limit);
    await expectError(await askForEmail(u.access, failing), 429, "RATE_LIMITED");
    expect(notices()).toBe(limit);
  });

  it("answers 503, not 500, when taking the unsent link back fails too (D1 refusing the delete), and logs it", async () => {
    const u = await bearerUser();
    const target = `${uniqueName("untaken")}@example.com`;
    const config = getConfig(env);
    emulators.email.setMode({ failure: "500" });
    const failingTakeBack = envAroundBatches(async (_n, statements) => {
      if (statements.some((q) => /^delete from "email_change_tokens" where "email_change_tokens"\."token_hash"/i.test(q)))
        throw new Error("D1_ERROR: the delete was refused");
    });
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const outcome = await requestEmailChange(
        failingTakeBack.env,
        config,
        (await findUserById(env, u.userId))!,
        { newEmail: target, currentPassword: GOOD_PASSWORD, session: await verifyToken(config, u.access, "access") },
        createLogger(),
      ).catch((err: unknown) => err);
      expect(outcome).toMatchObject({ status: 503, code: "SERVICE_UNAVAILABLE" });
      expect((outcome as Error).message).toContain(`could not send the confirmation link to ${target}`);
      const lines = logged.mock.calls.map(([line]) => JSON.parse(String(line)) as { msg: string; error?: string });
      expect(lines).toContainEqual(
        expect.objectContaining({ msg: "an unsent link was not taken back", error: expect.stringContaining("the delete was refused") }),
      );
    } finally {
      logged.mockRestore();
    }
  });

  it("lifts a bounce on the new address only when the link is sent: a session ended meanwhile leaves it", async () => {
    const u = await bearerUser();
    const target = `${uniqueName("bounced")}@example.com`;
    await suppress(target, "bounce");
    const config = getConfig(env);
    const claims = await verifyToken(config, u.access, "access");
    const row = (await findUserById(env, u.userId))!;
    const calls = emulators.email.calls;
    // Every session ends (sign-out everywhere) between the checks and the change's write.
    const racing = envRacingFirstBatch(() =>
      env.DB.prepare("UPDATE users SET tokens_valid_after = ? WHERE id = ?")
        .bind(Date.now() + 60_000, u.userId)
        .run(),
    );
    const outcome = await requestEmailChange(racing.env, config, row, {
      newEmail: target,
      currentPassword: GOOD_PASSWORD,
      session: claims,
    }).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(outcome).toMatchObject({ status: 401, code: "TOKEN_INVALID" });
    expect(await isSuppressed(env, target)).toBe(true);
    expect(emulators.email.calls).toBe(calls);
  });
});

describe("sign-up, the provider down", () => {
  it("creates the account, says no link was sent and how to ask, and keeps no unsent link", async () => {
    emulators.email.setMode({ failure: "500" });
    const username = uniqueName("unmailed");
    const res = await call("/api/v1/auth/register/", { json: { username, email: `${username}@example.com`, password: GOOD_PASSWORD } });
    const body = await json<{ message: string; user: { id: string } }>(res, 201);
    expect(body.message).not.toMatch(/We sent/);
    expect(body.message).toMatch(/could not send you a confirmation link.*POST \/api\/v1\/auth\/email\/verify\//);
    expect(await count("SELECT count(*) AS n FROM email_change_tokens WHERE user_id = ?", body.user.id)).toBe(0);
    // Asking again once the provider is back sends it.
    emulators.email.setMode({ failure: "none" });
    const { access } = await tokenLogin(username);
    expect((await call(VERIFY, { method: "POST", bearer: access })).status).toBe(202);
    await mailTo(emulators.email, `${username}@example.com`, /Confirm your email address/);
  });

  it("still says no link was sent when taking the unsent link back fails too (D1 refusing the delete)", async () => {
    const username = uniqueName("unmailed-d1");
    const created = await json<{ user: { id: string } }>(
      await call("/api/v1/auth/register/", { json: { username, email: `${username}@example.com`, password: GOOD_PASSWORD } }),
      201,
    );
    const row = (await findUserById(env, created.user.id))!;
    emulators.email.setMode({ failure: "500" });
    const failingDelete = envRacingStatement(/^delete from "email_change_tokens"/i, async () => {
      throw new Error("D1_ERROR: the delete was refused");
    });
    expect(await sendVerificationEmail(failingDelete.env, getConfig(env), row)).toBe("not sent");
    expect(failingDelete.fired()).toBe(true);
    emulators.email.setMode({ failure: "none" });
  });
});

describe("a password reset, the provider down", () => {
  it("answers as ever and keeps no link that never went out", async () => {
    const u = await bearerUser();
    const calls = emulators.email.calls;
    emulators.email.setMode({ failure: "500" });
    expect((await call("/api/v1/auth/password/reset/", { json: { email: u.email } })).status).toBe(200);
    await eventually(() => emulators.email.calls > calls);
    await eventually(async () => (await count("SELECT count(*) AS n FROM password_reset_tokens WHERE user_id = ?", u.userId)) === 0);
  });
});
