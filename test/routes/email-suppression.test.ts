/**
 * A suppressed address (the email provider reported a hard bounce or a spam complaint, API.md
 * §5b): what its user is told on each path they asked for mail themselves, how its own user lifts
 * a bounce (asking for the confirmation link again, rate-limited; a new bounce suppresses it again),
 * that a complaint only staff lift (and the admin routes that do, attacked by non-staff callers and
 * malformed addresses). The password reset answer stays the same whatever the address.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../src/config";
import { requestEmailChange, resendVerificationEmail, sendVerificationEmail } from "../../src/services/accounts";
import { findSuppression, isSuppressed } from "../../src/services/email-events";
import { verifyToken } from "../../src/services/tokens";
import { findUserById } from "../../src/services/users";
import { postEmailEvent, sentMail, suppress, WEBHOOK_SECRET } from "../helpers/email-webhook";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { mailTo, tokenIn } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { envRacingFirstBatch, envRacingStatement } from "../helpers/racing-env";
import { eventually } from "../helpers/wait";
import { bearerUser, GOOD_PASSWORD, tokenLogin, uniqueName } from "../helpers/users";

const emulators = useEmulators();
const VERIFY = "/api/v1/auth/email/verify/";

/** Registers an account on an address already suppressed for `reason`: the 201's message, and a bearer session. */
async function registerSuppressed(reason: "bounce" | "complaint") {
  const username = uniqueName("bounced");
  const email = `${username}@example.com`;
  await suppress(email, reason);
  const res = await call("/api/v1/auth/register/", { json: { username, email, password: GOOD_PASSWORD } });
  const body = await json<{ message: string; user: { id: string } }>(res, 201);
  const { access } = await tokenLogin(username);
  return { username, email, access, userId: body.user.id, message: body.message };
}

const mailsTo = (address: string, subject: RegExp) =>
  emulators.email.outbox.filter((m) => m.to.some((to) => to.toLowerCase() === address) && subject.test(m.subject));
const CONFIRM = /Confirm your email address/;

async function withRole(role: string) {
  const username = uniqueName(role);
  const res = await call("/api/v1/auth/register/", { json: { username, email: `${username}@example.com`, password: GOOD_PASSWORD } });
  const { user } = await json<{ user: { id: string } }>(res, 201);
  await env.DB.prepare("UPDATE users SET role = ? WHERE id = ?").bind(role, user.id).run();
  return (await tokenLogin(username)).access;
}

describe("a bounced address", () => {
  it("sign-up says no link was sent and why; asking again lifts the bounce and sends it; a new bounce suppresses again", async () => {
    const u = await registerSuppressed("bounce");
    expect(u.message).toMatch(/bounced before.*no confirmation link.*POST \/api\/v1\/auth\/email\/verify\//);
    expect(mailsTo(u.email, CONFIRM)).toHaveLength(0);

    expect((await call(VERIFY, { method: "POST", bearer: u.access })).status).toBe(202);
    expect(await isSuppressed(env, u.email)).toBe(false);
    const mail = await mailTo(emulators.email, u.email, CONFIRM);
    const confirmed = await call("/api/v1/auth/email/confirm/", { json: { token: tokenIn(mail.text, "Confirmation token") } });
    expect(await json(confirmed, 200)).toMatchObject({ email: u.email });

    // It bounces again: the provider's webhook suppresses it again.
    const id = await sentMail(u.email);
    expect((await postEmailEvent(await emulators.email.webhook(id, "email.bounced", WEBHOOK_SECRET))).status).toBe(200);
    expect(await findSuppression(env, u.email)).toMatchObject({ reason: "bounce" });

    // A complaint about an earlier mail arrives late: it outranks the bounce, which the user may
    // lift, and asking again no longer lifts anything; a later bounce leaves the complaint.
    expect((await postEmailEvent(await emulators.email.webhook(id, "email.complained", WEBHOOK_SECRET))).status).toBe(200);
    expect(await findSuppression(env, u.email)).toMatchObject({ reason: "complaint" });
    await expectError(await call(VERIFY, { method: "POST", bearer: u.access }), 409, "EMAIL_SUPPRESSED");
    expect((await postEmailEvent(await emulators.email.webhook(id, "email.bounced", WEBHOOK_SECRET))).status).toBe(200);
    expect(await findSuppression(env, u.email)).toMatchObject({ reason: "complaint" });
  });

  it("a verified address that bounced since is tried again on request; one with nothing to lift is 409 INVALID_STATE", async () => {
    const u = await registerSuppressed("bounce");
    await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(u.userId).run();
    expect((await call(VERIFY, { method: "POST", bearer: u.access })).status).toBe(202);
    expect(await isSuppressed(env, u.email)).toBe(false);
    const mail = await mailTo(emulators.email, u.email, CONFIRM);
    // Neither a welcome nor "until you confirm" to an address confirmed long ago.
    expect(mail.text).toContain("Here is the new link you asked for");
    expect(mail.text).not.toContain("Until you confirm");
    await expectError(await call(VERIFY, { method: "POST", bearer: u.access }), 409, "INVALID_STATE");
  });

  it("lifting is rate-limited as the resend is: past the limit the suppression stays", async () => {
    const u = await registerSuppressed("bounce");
    for (let i = 0; i < 3; i++) {
      await suppress(u.email, "bounce");
      expect((await call(VERIFY, { method: "POST", bearer: u.access })).status).toBe(202);
    }
    await suppress(u.email, "bounce");
    await expectError(await call(VERIFY, { method: "POST", bearer: u.access }), 429, "RATE_LIMITED");
    expect(await isSuppressed(env, u.email)).toBe(true);
  });
});

describe("a complained address", () => {
  it("sign-up says so; asking again is 409 EMAIL_SUPPRESSED, nothing sent and nothing lifted", async () => {
    const u = await registerSuppressed("complaint");
    expect(u.message).toMatch(/reported as spam.*support/);
    const refused = await expectError(await call(VERIFY, { method: "POST", bearer: u.access }), 409, "EMAIL_SUPPRESSED");
    expect(refused.message).toMatch(/spam.*another address.*support/);
    expect(await findSuppression(env, u.email)).toMatchObject({ reason: "complaint" });
    expect(mailsTo(u.email, CONFIRM)).toHaveLength(0);
    const links = await env.DB.prepare("SELECT count(*) AS n FROM email_change_tokens WHERE user_id = ?")
      .bind(u.userId)
      .first<{ n: number }>();
    expect(links?.n).toBe(0);
  });
});

describe("an email change to a suppressed address", () => {
  it("to a complained one: 409 EMAIL_SUPPRESSED, nothing pending; to a bounced one: lifted and the link sent", async () => {
    const u = await registerSuppressed("bounce");
    const complained = `${uniqueName("spam")}@example.com`;
    await suppress(complained, "complaint");
    const change = (email: string) =>
      call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, json: { email, current_password: GOOD_PASSWORD } });
    await expectError(await change(complained), 409, "EMAIL_SUPPRESSED");
    const me = await json<{ pending_email: string | null }>(await call("/api/v1/auth/user/", { bearer: u.access }), 200);
    expect(me.pending_email).toBeNull();
    expect(await isSuppressed(env, complained)).toBe(true);

    const bounced = `${uniqueName("typo")}@example.com`;
    await suppress(bounced, "bounce");
    expect(await json(await change(bounced), 200)).toMatchObject({ pending_email: bounced });
    expect(await isSuppressed(env, bounced)).toBe(false);
    await mailTo(emulators.email, bounced, /Confirm your new Plant Community email address/);
  });
});

describe("a password reset for a suppressed address", () => {
  it("answers as for any address, sends nothing and lifts nothing", async () => {
    const u = await registerSuppressed("bounce");
    const stranger = `${uniqueName("nobody")}@example.com`;
    const answer = async (email: string) => json(await call("/api/v1/auth/password/reset/", { json: { email } }), 200);
    // An older link, which the reset's write replaces: its going shows the reset ran.
    const older = `older-${crypto.randomUUID()}`;
    await env.DB.prepare("INSERT INTO password_reset_tokens (token_hash, user_id, expires_at) VALUES (?, ?, unixepoch() + 600)")
      .bind(older, u.userId)
      .run();
    expect(await answer(u.email)).toEqual(await answer(stranger));
    // The reset ran (after the response): its link was made (the older one is gone with its
    // write), and not mailed — and, never mailed, taken back: no link is left at all.
    const rows = "SELECT count(*) AS n FROM password_reset_tokens WHERE user_id = ?";
    await eventually(async () => (await env.DB.prepare(rows).bind(u.userId).first<{ n: number }>())!.n === 0);
    expect(mailsTo(u.email, /Reset your/)).toHaveLength(0);
    expect(await isSuppressed(env, u.email)).toBe(true);
  });
});

describe("staff lift a suppression", () => {
  const PATH = "/api/v1/admin/email-suppressions/";

  it("admins read and lift any, a complaint too; the address is matched without case", async () => {
    const admin = await withRole("admin");
    const address = `${uniqueName("support")}@example.com`;
    await suppress(address, "complaint");
    const url = `${PATH}${encodeURIComponent(address.toUpperCase())}/`;
    expect(await json(await call(url, { bearer: admin }), 200)).toMatchObject({ address, reason: "complaint" });
    expect(await json(await call(url, { method: "DELETE", bearer: admin }), 200)).toMatchObject({ address, reason: "complaint" });
    expect(await isSuppressed(env, address)).toBe(false);
    await expectError(await call(url, { method: "DELETE", bearer: admin }), 404, "NOT_FOUND");
    await expectError(await call(url, { bearer: admin }), 404, "NOT_FOUND");
  });

  it("refuses everyone else, and malformed addresses, with nothing lifted", async () => {
    const address = `${uniqueName("guarded")}@example.com`;
    await suppress(address, "complaint");
    const url = `${PATH}${encodeURIComponent(address)}/`;
    await expectError(await call(url, { method: "DELETE" }), 401, "AUTHENTICATION_REQUIRED");
    for (const role of ["user", "author", "moderator", "editor"]) {
      const access = await withRole(role);
      await expectError(await call(url, { method: "DELETE", bearer: access }), 403, "FORBIDDEN");
      await expectError(await call(url, { bearer: access }), 403, "FORBIDDEN");
    }
    const admin = await withRole("admin");
    for (const bad of ["not-an-address", "x' OR 1=1 --@example.com", `${"a".repeat(250)}@example.com`, "%25"]) {
      await expectError(await call(`${PATH}${encodeURIComponent(bad)}/`, { method: "DELETE", bearer: admin }), 400, "VALIDATION_ERROR");
    }
    expect(await isSuppressed(env, address)).toBe(true);
  });
});

describe("an address suppressed between the request's check and the send (the provider's report landing meanwhile)", () => {
  const tokensOf = async (userId: string) =>
    (await env.DB.prepare("SELECT count(*) AS n FROM email_change_tokens WHERE user_id = ?").bind(userId).first<{ n: number }>())!.n;

  it("an email change answers 409 EMAIL_SUPPRESSED and leaves nothing pending, not a 200 for a link never sent", async () => {
    const u = await bearerUser();
    const target = `${uniqueName("complained-meanwhile")}@example.com`;
    const config = getConfig(env);
    const racing = envRacingFirstBatch(() => suppress(target, "complaint"));
    const outcome = await requestEmailChange(racing.env, config, (await findUserById(env, u.userId))!, {
      newEmail: target,
      currentPassword: GOOD_PASSWORD,
      session: await verifyToken(config, u.access, "access"),
    }).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(outcome).toMatchObject({ status: 409, code: "EMAIL_SUPPRESSED", message: expect.stringContaining("reported as spam") });
    expect(await tokensOf(u.userId)).toBe(0);
    expect((await findUserById(env, u.userId))!.pendingEmail).toBeNull();
    expect(mailsTo(target, /Confirm your new/)).toHaveLength(0);
  });

  it("the link asked for again answers 409 EMAIL_SUPPRESSED and keeps no unsent link; at sign-up it says why", async () => {
    const username = uniqueName("bounced-meanwhile");
    const email = `${username}@example.com`;
    const created = await json<{ user: { id: string } }>(
      await call("/api/v1/auth/register/", { json: { username, email, password: GOOD_PASSWORD } }),
      201,
    );
    const row = (await findUserById(env, created.user.id))!;
    const before = await tokensOf(row.id);
    const config = getConfig(env);
    // Just before the link is written, after the request's own check.
    const again = envRacingStatement(/^insert into "email_change_tokens"/i, () => suppress(email, "bounce"));
    const outcome = await resendVerificationEmail(again.env, config, row).catch((err: unknown) => err);
    expect(again.fired()).toBe(true);
    expect(outcome).toMatchObject({
      status: 409,
      code: "EMAIL_SUPPRESSED",
      message: expect.stringContaining("just reported as undeliverable"),
    });
    expect(await tokensOf(row.id)).toBe(before);
    expect(mailsTo(email, CONFIRM)).toHaveLength(1); // the welcome only

    // The same at sign-up: the registration is told the address's suppression, not "we sent you a link".
    await env.DB.prepare("DELETE FROM email_suppressions WHERE address = ?").bind(email).run();
    const welcome = envRacingStatement(/^insert into "email_change_tokens"/i, () => suppress(email, "complaint"));
    expect(await sendVerificationEmail(welcome.env, config, row)).toBe("complaint");
    expect(await tokensOf(row.id)).toBe(before);
    expect(mailsTo(email, CONFIRM)).toHaveLength(1);
  });
});
