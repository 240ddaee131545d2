// Two-factor recovery without the authenticator or the recovery codes (services/two-factor-reset.ts),
// attacked end to end: both factors to start, a 72-hour wait nobody can shorten, a cancel that wins.
import { env } from "cloudflare:workers";
import { getConfig } from "../../src/config";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/lib/hash";
import { cancelTwoFactorReset, completeDueTwoFactorReset, requestTwoFactorReset } from "../../src/services/two-factor-reset";
import { purgeExpiredTokens } from "../../src/services/tokens";
import { securityNoticeAction } from "../../src/services/two-factor-reset-cancel";
import { findUserById } from "../../src/services/users";
import { suppress } from "../helpers/email-webhook";
import { call, expectError } from "../helpers/http";
import { tokenIn } from "../helpers/mail";
import { recordingLogger } from "../helpers/logger";
import { useEmulators } from "../helpers/outbound";
import { envRacingFirstBatch } from "../helpers/racing-env";
import { codeAt, fromBase32, steadyStep } from "../helpers/totp";
import { bearerUser, GOOD_PASSWORD } from "../helpers/users";
import { eventually } from "../helpers/wait";

const emulators = useEmulators();

/** A user with two-factor sign-in on and (unless `confirmed` is false) a confirmed address. */
async function twoFactorUser(confirmed = true) {
  const user = await bearerUser();
  if (confirmed) await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(user.userId).run();
  const setup = await call("/api/v1/auth/2fa/setup/", { bearer: user.access, json: { current_password: GOOD_PASSWORD } });
  const { secret } = (await setup.json()) as { secret: string };
  const key = fromBase32(secret);
  const step = await steadyStep();
  const enabled = await call("/api/v1/auth/2fa/enable/", { bearer: user.access, json: { code: await codeAt(key, step - 1) } });
  expect(enabled.status, await enabled.clone().text()).toBe(200);
  const body = (await enabled.json()) as { access: string; refresh: string; recovery_codes: string[] };
  return { ...user, access: body.access, refresh: body.refresh, key, step };
}
type TwoFactorUser = Awaited<ReturnType<typeof twoFactorUser>>;

/** The password step: its two_factor_token. */
async function passwordStep(username: string, password = GOOD_PASSWORD): Promise<string> {
  const res = await call("/api/v1/auth/token/", { json: { username, password } });
  const body = (await expectError(res, 401, "TWO_FACTOR_REQUIRED")) as unknown as { two_factor_token: string };
  return body.two_factor_token;
}

const mailsTo = (email: string, subject: RegExp) => emulators.email.outbox.filter((m) => m.to.includes(email) && subject.test(m.subject));
const START_SUBJECT = /Turn off two-factor/;
/** The `two_factor_reset_started` notice's email, which carries the cancel link. */
const CANCEL_SUBJECT = /Someone asked to turn off two-factor/;

/** "Lost my device" with the sign-in's token: the start link's token, read from the owner's mailbox. */
async function askForLink(user: TwoFactorUser): Promise<string> {
  const before = mailsTo(user.email, START_SUBJECT).length;
  const res = await call("/api/v1/auth/2fa/reset/", { json: { two_factor_token: await passwordStep(user.username) } });
  expect(res.status, await res.clone().text()).toBe(202);
  const mail = await eventually(() => mailsTo(user.email, START_SUBJECT)[before]);
  return tokenIn(mail.text, "Two-factor reset token");
}

const start = (token: string) => call("/api/v1/auth/2fa/reset/start/", { json: { token } });

/** Asks for the link and follows it: the cancel link's token, from the mailbox. */
async function startReset(user: TwoFactorUser): Promise<string> {
  const link = await askForLink(user);
  const before = mailsTo(user.email, CANCEL_SUBJECT).length;
  const res = await start(link);
  expect(res.status, await res.clone().text()).toBe(200);
  const mail = await eventually(() => mailsTo(user.email, CANCEL_SUBJECT)[before]);
  return tokenIn(mail.text, "Cancel token");
}

const resetRow = (userId: string) =>
  env.DB.prepare("SELECT * FROM two_factor_resets WHERE user_id = ? ORDER BY created_at DESC").bind(userId).first<{
    id: string;
    link_hash: string;
    started_at: string | null;
    completes_after: string | null;
    cancel_hash: string | null;
    cancelled_at: string | null;
    completed_at: string | null;
  }>();
/** 72 hours pass (the database's clock is the only one the rule reads). */
const waitIsOver = (userId: string) =>
  env.DB.prepare(
    "UPDATE two_factor_resets SET completes_after = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 second') WHERE user_id = ? AND started_at IS NOT NULL",
  )
    .bind(userId)
    .run();
const twoFactorOn = async (userId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM two_factor WHERE user_id = ? AND enabled_at IS NOT NULL")
    .bind(userId)
    .first<{ n: number }>())!.n === 1;
const signInWithPassword = (username: string, password = GOOD_PASSWORD) => call("/api/v1/auth/token/", { json: { username, password } });
const securityEvents = async (userId: string) =>
  (
    await env.DB.prepare("SELECT data FROM notifications WHERE user_id = ? AND type = 'security'").bind(userId).all<{ data: string }>()
  ).results.map((r) => (JSON.parse(r.data) as { event: string }).event);

/** Every email and push delivery of the user's notifications has been sent or skipped. */
const deliveriesDone = (userId: string) =>
  eventually(
    async () =>
      (await env.DB.prepare(
        "SELECT count(*) AS n FROM notification_deliveries WHERE user_id = ? AND status IN ('queued', 'sending', 'held')",
      )
        .bind(userId)
        .first<{ n: number }>())!.n === 0,
  );

/** A password reset by whoever holds the inbox. */
async function resetPassword(email: string, password: string): Promise<void> {
  const sent = emulators.email.outbox.length;
  expect((await call("/api/v1/auth/password/reset/", { json: { email } })).status).toBe(200);
  const mail = await eventually(() => emulators.email.outbox.slice(sent).find((m) => m.to.includes(email) && /Reset/.test(m.subject)));
  const res = await call("/api/v1/auth/password/reset/confirm/", {
    json: { token: tokenIn(mail.text, "Reset token"), new_password: password },
  });
  expect(res.status).toBe(200);
}

describe("starting a two-factor reset needs the password and the mailbox", () => {
  it("the whole way: a link by mail, a GET that changes nothing, a POST that starts the wait, notices, completion after it", async () => {
    const user = await twoFactorUser();
    const link = await askForLink(user);
    // A mail scanner's GET: described, nothing started.
    const seen = await call(`/api/v1/auth/2fa/reset/start/?token=${encodeURIComponent(link)}`);
    expect(((await seen.json()) as { valid: boolean }).valid).toBe(true);
    expect((await resetRow(user.userId))!.started_at).toBeNull();

    const res = await start(link);
    const body = (await res.json()) as { reset: { id: string; started_at: string; completes_after: string } };
    expect(Date.parse(body.reset.completes_after) - Date.parse(body.reset.started_at)).toBe(72 * 3_600_000);
    // Every signed-in session sees it, and the owner is told (in-app and by email with a cancel link).
    const listed = await call("/api/v1/auth/2fa/resets/", { bearer: user.access });
    expect(((await listed.json()) as { id: string }[]).map((r) => r.id)).toEqual([body.reset.id]);
    expect(await securityEvents(user.userId)).toContain("two_factor_reset_started");
    await eventually(() => mailsTo(user.email, CANCEL_SUBJECT)[0]);

    await waitIsOver(user.userId);
    const signedIn = await signInWithPassword(user.username);
    expect(signedIn.status, await signedIn.clone().text()).toBe(200);
    expect(await twoFactorOn(user.userId)).toBe(false);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM two_factor WHERE user_id = ?").bind(user.userId).first("n")).toBe(0);
    // Every session before it ended; the new one works.
    await expectError(await call("/api/v1/auth/user/", { bearer: user.access }), 401, "TOKEN_INVALID");
    const { access } = (await signedIn.json()) as { access: string };
    expect((await call("/api/v1/auth/user/", { bearer: access })).status).toBe(200);
    expect((await resetRow(user.userId))!.completed_at).not.toBeNull();
    expect(await securityEvents(user.userId)).toContain("two_factor_reset_completed");
  });

  it("the password alone starts nothing: the answer carries no link, and no token but the mailed one starts the wait", async () => {
    const user = await twoFactorUser();
    const res = await call("/api/v1/auth/2fa/reset/", { json: { two_factor_token: await passwordStep(user.username) } });
    const text = await res.text();
    await eventually(() => mailsTo(user.email, START_SUBJECT)[0]);
    const link = tokenIn(mailsTo(user.email, START_SUBJECT)[0]!.text, "Two-factor reset token");
    expect(text).not.toContain(link);
    await expectError(await start("not-the-mailed-token-0000"), 400, "INVALID_TOKEN");
    expect((await resetRow(user.userId))!.started_at).toBeNull();
  });

  it("an unconfirmed address gets no mail, and the answer is the same", async () => {
    const confirmed = await twoFactorUser();
    const unconfirmed = await twoFactorUser(false);
    const answers = [];
    for (const user of [confirmed, unconfirmed]) {
      const res = await call("/api/v1/auth/2fa/reset/", { json: { two_factor_token: await passwordStep(user.username) } });
      answers.push({ status: res.status, body: await res.text() });
    }
    expect(answers[1]).toEqual(answers[0]);
    await eventually(() => mailsTo(confirmed.email, START_SUBJECT)[0]);
    expect(mailsTo(unconfirmed.email, START_SUBJECT)).toEqual([]);
    expect(await resetRow(unconfirmed.userId)).toBeNull();
  });

  it("the mailbox alone cannot ask: no sign-in token, a forged one, or one from before the password changed, mails nothing", async () => {
    const user = await twoFactorUser();
    const stale = await passwordStep(user.username);
    await resetPassword(user.email, "Brand-New-Bramble-9");
    await expectError(await call("/api/v1/auth/2fa/reset/", { json: { two_factor_token: stale } }), 401, "TWO_FACTOR_TOKEN_INVALID");
    const forged = `${stale.slice(0, stale.lastIndexOf(".") + 1)}${"A".repeat(43)}`;
    await expectError(await call("/api/v1/auth/2fa/reset/", { json: { two_factor_token: forged } }), 401, "TWO_FACTOR_TOKEN_INVALID");
    await expectError(await call("/api/v1/auth/2fa/reset/", { json: {} }), 400, "VALIDATION_ERROR");
    expect(mailsTo(user.email, START_SUBJECT)).toEqual([]);
  });

  it("asked for per account at most 3 times an hour: the 4th answers the same and mails nothing", async () => {
    const user = await twoFactorUser();
    for (let i = 0; i < 4; i++) {
      const res = await call("/api/v1/auth/2fa/reset/", { json: { two_factor_token: await passwordStep(user.username) } });
      expect(res.status).toBe(202);
    }
    await eventually(() => mailsTo(user.email, START_SUBJECT)[2]);
    await new Promise((r) => setTimeout(r, 200));
    expect(mailsTo(user.email, START_SUBJECT)).toHaveLength(3);
  });
});

describe("the email provider down", () => {
  it("the answer stays the same, and the start link that never went out is taken back", async () => {
    const user = await twoFactorUser();
    const token = await passwordStep(user.username);
    const calls = emulators.email.calls;
    emulators.email.setMode({ failure: "500" });
    const res = await call("/api/v1/auth/2fa/reset/", { json: { two_factor_token: token } });
    expect(res.status, await res.clone().text()).toBe(202);
    await eventually(() => emulators.email.calls > calls);
    const links = () =>
      env.DB.prepare("SELECT count(*) AS n FROM two_factor_resets WHERE user_id = ?").bind(user.userId).first<{ n: number }>();
    await eventually(async () => (await links())!.n === 0);
  });
});

describe("the address suppressed between the request's checks and the send (the provider's report landing meanwhile)", () => {
  it("mails nothing, keeps no unsent start link, and the request ends as any other does", async () => {
    const user = await twoFactorUser();
    const config = getConfig(env);
    // After the checks (a confirmed address, the rates), just before the link is written.
    const racing = envRacingFirstBatch(() => suppress(user.email, "bounce"));
    const { logger, warnings } = recordingLogger();
    const { mail } = await requestTwoFactorReset(racing.env, config, await passwordStep(user.username), logger);
    // The route answers its one 202 before this runs: nothing here may throw into it.
    await expect(mail()).resolves.toBeUndefined();
    expect(racing.fired()).toBe(true);
    expect(await resetRow(user.userId)).toBeNull();
    expect(mailsTo(user.email, START_SUBJECT)).toEqual([]);
    // The one answer is the same for every address, so the operator's log is where this shows.
    expect(warnings).toEqual([{ msg: "two-factor reset mail not sent: address suppressed", fields: { user_id: user.userId } }]);
  });
});

describe("the wait cannot be shortened", () => {
  it("a sign-in before it ends still asks for the code; a replayed link, another link or a wrong token move nothing", async () => {
    const user = await twoFactorUser();
    const link = await askForLink(user);
    expect((await start(link)).status).toBe(200);
    const started = (await resetRow(user.userId))!;
    await expectError(await signInWithPassword(user.username), 401, "TWO_FACTOR_REQUIRED");
    await expectError(await start(link), 400, "INVALID_TOKEN");
    await expectError(await start(await askForLink(user)), 409, "INVALID_STATE");
    await expectError(await start("a-wrong-token-of-some-length"), 400, "INVALID_TOKEN");
    const after = await env.DB.prepare("SELECT completes_after FROM two_factor_resets WHERE id = ?")
      .bind(started.id)
      .first("completes_after");
    expect(after).toBe(started.completes_after);
    expect(await twoFactorOn(user.userId)).toBe(true);
  });

  it("a link not yet followed dies when the address changes: the old inbox can no longer start a reset", async () => {
    const user = await twoFactorUser();
    const link = await askForLink(user);
    const moved = `moved-${user.email}`;
    // With two-factor sign-in on, moving the account to another inbox asks for a code too.
    const patch = await call("/api/v1/auth/user/", {
      method: "PATCH",
      bearer: user.access,
      json: { email: moved, current_password: GOOD_PASSWORD, code: await codeAt(user.key, await steadyStep()) },
    });
    expect(patch.status, await patch.clone().text()).toBe(200);
    const confirmation = await eventually(() => mailsTo(moved, /Confirm your new/)[0]);
    const confirmed = await call("/api/v1/auth/email/confirm/", { json: { token: tokenIn(confirmation.text, "Confirmation token") } });
    expect(confirmed.status, await confirmed.clone().text()).toBe(200);
    await expectError(await start(link), 400, "INVALID_TOKEN");
  });

  it("a link past its hour starts nothing", async () => {
    const user = await twoFactorUser();
    const link = await askForLink(user);
    await env.DB.prepare("UPDATE two_factor_resets SET link_expires_at = unixepoch() - 1 WHERE user_id = ?").bind(user.userId).run();
    await expectError(await start(link), 400, "INVALID_TOKEN");
  });

  it("housekeeping forgets start links never followed once expired, and keeps a started reset", async () => {
    const idle = await twoFactorUser();
    await askForLink(idle);
    const started = await twoFactorUser();
    await startReset(started);
    await env.DB.prepare("UPDATE two_factor_resets SET link_expires_at = unixepoch() - 1 WHERE user_id IN (?, ?)")
      .bind(idle.userId, started.userId)
      .run();
    await purgeExpiredTokens(env);
    expect(await resetRow(idle.userId)).toBeNull();
    expect((await resetRow(started.userId))!.started_at).not.toBeNull();
  });

  it("a right code at the second step neither completes nor cancels it", async () => {
    const user = await twoFactorUser();
    await startReset(user);
    const res = await call("/api/v1/auth/2fa/verify/", {
      json: { two_factor_token: await passwordStep(user.username), code: await codeAt(user.key, user.step) },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const row = (await resetRow(user.userId))!;
    expect([row.cancelled_at, row.completed_at]).toEqual([null, null]);
    expect(await twoFactorOn(user.userId)).toBe(true);
  });

  it("a password change past the wait neither completes nor cancels it: the next password sign-in does", async () => {
    const user = await twoFactorUser();
    await startReset(user);
    await waitIsOver(user.userId);
    const changed = await call("/api/v1/auth/password/change/", {
      bearer: user.access,
      json: { old_password: GOOD_PASSWORD, new_password: "Brand-New-Bramble-9" },
    });
    expect(changed.status, await changed.clone().text()).toBe(200);
    const row = (await resetRow(user.userId))!;
    expect([row.cancelled_at, row.completed_at]).toEqual([null, null]);
    expect(await twoFactorOn(user.userId)).toBe(true);
    expect((await signInWithPassword(user.username, "Brand-New-Bramble-9")).status).toBe(200);
    expect(await twoFactorOn(user.userId)).toBe(false);
  });

  it("a start mails the owner once: the notice's email carries the cancel link, and no stored notice holds its token", async () => {
    const user = await twoFactorUser();
    const link = await askForLink(user);
    // The notices before it (two-factor sign-in turned on) have been mailed.
    await deliveriesDone(user.userId);
    const before = emulators.email.outbox.length;
    expect((await start(link)).status).toBe(200);
    const mail = await eventually(() => mailsTo(user.email, CANCEL_SUBJECT)[0]);
    // Every delivery of the start's notice has run too: the owner got that one mail.
    await deliveriesDone(user.userId);
    expect(emulators.email.outbox.slice(before).filter((m) => m.to.includes(user.email))).toHaveLength(1);
    const cancel = tokenIn(mail.text, "Cancel token");
    expect(mail.text).toContain(`/two-factor-reset/cancel?token=${encodeURIComponent(cancel)}`);
    // The notice itself: in the app's list, with the reset's id and no token.
    const stored = await env.DB.prepare("SELECT * FROM notifications WHERE user_id = ?").bind(user.userId).all();
    const listed = await (await call("/api/v1/notifications/", { bearer: user.access })).text();
    const [open] = (await (await call("/api/v1/auth/2fa/resets/", { bearer: user.access })).json()) as { id: string }[];
    expect(listed).toContain("two_factor_reset_started");
    expect(listed).toContain(open!.id);
    for (const text of [JSON.stringify(stored.results), listed]) expect(text).not.toContain(cancel);
    expect((await call("/api/v1/auth/2fa/reset/cancel/", { json: { token: cancel } })).status).toBe(200);
  });

  it("tokens are stored only as hashes", async () => {
    const user = await twoFactorUser();
    const link = await askForLink(user);
    expect((await start(link)).status).toBe(200);
    const cancel = tokenIn((await eventually(() => mailsTo(user.email, CANCEL_SUBJECT)[0])).text, "Cancel token");
    const row = (await resetRow(user.userId))!;
    expect(row.link_hash).toBe(await sha256Hex(link));
    expect(row.cancel_hash).toBe(await sha256Hex(cancel));
    expect(JSON.stringify(row)).not.toContain(link);
    expect(JSON.stringify(row)).not.toContain(cancel);
  });
});

describe("cancel always wins", () => {
  it("the mailed cancel link (once): the reset never completes", async () => {
    const user = await twoFactorUser();
    const cancel = await startReset(user);
    expect((await call("/api/v1/auth/2fa/reset/cancel/", { json: { token: cancel } })).status).toBe(200);
    await expectError(await call("/api/v1/auth/2fa/reset/cancel/", { json: { token: cancel } }), 400, "INVALID_TOKEN");
    await waitIsOver(user.userId);
    await expectError(await signInWithPassword(user.username), 401, "TWO_FACTOR_REQUIRED");
    expect(await twoFactorOn(user.userId)).toBe(true);
    expect(await securityEvents(user.userId)).toContain("two_factor_reset_cancelled");
  });

  it("any signed-in session; not another account's", async () => {
    const user = await twoFactorUser();
    await startReset(user);
    const [open] = (await (await call("/api/v1/auth/2fa/resets/", { bearer: user.access })).json()) as { id: string }[];
    const stranger = await bearerUser();
    await expectError(await call(`/api/v1/auth/2fa/resets/${open!.id}/cancel/`, { bearer: stranger.access, json: {} }), 404, "NOT_FOUND");
    expect((await call(`/api/v1/auth/2fa/resets/${open!.id}/cancel/`, { bearer: user.access, json: {} })).status).toBe(200);
    expect(await (await call("/api/v1/auth/2fa/resets/", { bearer: user.access })).json()).toEqual([]);
    await waitIsOver(user.userId);
    await expectError(await signInWithPassword(user.username), 401, "TWO_FACTOR_REQUIRED");
  });

  it("the two-factor status every session reads shows the reset under way, until it is cancelled; nobody else's", async () => {
    const user = await twoFactorUser();
    const status = async (access: string) => (await (await call("/api/v1/auth/2fa/", { bearer: access })).json()) as { reset: unknown };
    expect((await status(user.access)).reset).toBeNull();
    await startReset(user);
    const [open] = (await (await call("/api/v1/auth/2fa/resets/", { bearer: user.access })).json()) as {
      id: string;
      started_at: string;
      completes_after: string;
    }[];
    expect((await status(user.access)).reset).toEqual(open);
    const stranger = await bearerUser();
    expect((await status(stranger.access)).reset).toBeNull();
    expect((await call(`/api/v1/auth/2fa/resets/${open!.id}/cancel/`, { bearer: user.access, json: {} })).status).toBe(200);
    expect((await status(user.access)).reset).toBeNull();
  });

  it("a cancel landing just before the completion's batch: the completion loses and writes nothing", async () => {
    const user = await twoFactorUser();
    await startReset(user);
    await waitIsOver(user.userId);
    const { id } = (await resetRow(user.userId))!;
    const racing = envRacingFirstBatch(() => cancelTwoFactorReset(env, user.userId, id));
    const row = (await findUserById(env, user.userId))!;
    expect(await completeDueTwoFactorReset(racing.env, row, row.passwordHash!)).toBe(false);
    expect(racing.fired()).toBe(true);
    expect(await twoFactorOn(user.userId)).toBe(true);
    expect((await call("/api/v1/auth/user/", { bearer: user.access })).status).toBe(200);
    expect((await resetRow(user.userId))!.completed_at).toBeNull();
  });

  it("the mailbox alone cannot complete it: a password reset cancels every reset under way", async () => {
    const user = await twoFactorUser();
    await startReset(user);
    // Whoever holds the inbox resets the password to have both factors at the end of the wait.
    await resetPassword(user.email, "Brand-New-Bramble-9");
    await waitIsOver(user.userId);
    await expectError(await signInWithPassword(user.username, "Brand-New-Bramble-9"), 401, "TWO_FACTOR_REQUIRED");
    expect(await twoFactorOn(user.userId)).toBe(true);
    expect((await resetRow(user.userId))!.cancelled_at).not.toBeNull();
  });

  it("a reset begun before two-factor sign-in was turned on again does not complete on the new one", async () => {
    const user = await twoFactorUser();
    await startReset(user);
    await env.DB.prepare("UPDATE two_factor SET enabled_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 second') WHERE user_id = ?")
      .bind(user.userId)
      .run();
    await waitIsOver(user.userId);
    await expectError(await signInWithPassword(user.username), 401, "TWO_FACTOR_REQUIRED");
    expect(await twoFactorOn(user.userId)).toBe(true);
  });
});

describe("someone holding only the mailbox, or only the password", () => {
  it("the mailed cancel token only cancels its own reset: refused as a start link or any other emailed token, and useless on the next reset", async () => {
    const user = await twoFactorUser();
    const cancel = await startReset(user);
    const first = (await resetRow(user.userId))!;
    await expectError(await start(cancel), 400, "INVALID_TOKEN");
    await expectError(
      await call("/api/v1/auth/password/reset/confirm/", { json: { token: cancel, new_password: "Brand-New-Bramble-9" } }),
      400,
      "INVALID_TOKEN",
    );
    expect((await call("/api/v1/auth/email/confirm/", { json: { token: cancel } })).status).toBe(400);
    expect(await env.DB.prepare("SELECT completes_after FROM two_factor_resets WHERE id = ?").bind(first.id).first("completes_after")).toBe(
      first.completes_after,
    );
    expect((await signInWithPassword(user.username, "Brand-New-Bramble-9")).status).toBe(401);

    expect((await call("/api/v1/auth/2fa/reset/cancel/", { json: { token: cancel } })).status).toBe(200);
    const next = await startReset(user);
    expect(next).not.toBe(cancel);
    await expectError(await call("/api/v1/auth/2fa/reset/cancel/", { json: { token: cancel } }), 400, "INVALID_TOKEN");
    expect((await resetRow(user.userId))!.cancelled_at).toBeNull();
  });

  it("a notice's email carries a cancel link only for its owner's reset", async () => {
    const owner = await twoFactorUser();
    await startReset(owner);
    const { id } = (await resetRow(owner.userId))!;
    const other = await bearerUser();
    const data = { event: "two_factor_reset_started", detail: "", reset_id: id };
    expect(await securityNoticeAction(env, getConfig(env), { userId: other.userId, data })).toBeUndefined();
    expect((await securityNoticeAction(env, getConfig(env), { userId: owner.userId, data }))?.token.label).toBe("Cancel token");
  });

  it("the password alone learns nothing of a reset under way: the sign-in answers alike, and its status needs a session", async () => {
    const user = await twoFactorUser();
    const calm = await twoFactorUser();
    await startReset(user);
    const shape = async (username: string) => {
      const {
        request_id: _,
        two_factor_token: token,
        ...rest
      } = (await (await signInWithPassword(username)).json()) as Record<string, unknown>;
      return { ...rest, token: typeof token };
    };
    expect(await shape(user.username)).toEqual(await shape(calm.username));
    await expectError(await call("/api/v1/auth/2fa/"), 401, "AUTHENTICATION_REQUIRED");
  });
});

describe("no account-existence leak", () => {
  /** An error answer without its request id. */
  const answer = async (res: Response) => {
    const { request_id: _, ...rest } = (await res.json()) as Record<string, unknown>;
    return { status: res.status, ...rest };
  };

  it("an unknown, used or expired start link answer alike, and so do an unknown and a used cancel link", async () => {
    const user = await twoFactorUser();
    const other = await twoFactorUser();
    const expired = await askForLink(other);
    await env.DB.prepare("UPDATE two_factor_resets SET link_expires_at = unixepoch() - 1 WHERE user_id = ?").bind(other.userId).run();
    const link = await askForLink(user);
    expect((await start(link)).status).toBe(200);
    const starts = await Promise.all([start(link), start(expired), start("an-unknown-token-of-length")].map(async (r) => answer(await r)));
    expect(starts[1]).toEqual(starts[0]);
    expect(starts[2]).toEqual(starts[0]);

    const cancel = tokenIn((await eventually(() => mailsTo(user.email, CANCEL_SUBJECT)[0])).text, "Cancel token");
    expect((await call("/api/v1/auth/2fa/reset/cancel/", { json: { token: cancel } })).status).toBe(200);
    const used = await answer(await call("/api/v1/auth/2fa/reset/cancel/", { json: { token: cancel } }));
    const unknown = await answer(await call("/api/v1/auth/2fa/reset/cancel/", { json: { token: "an-unknown-token-of-length" } }));
    expect(used).toEqual(unknown);
    expect(used.status).toBe(400);
  });
});
