/**
 * Two-factor recovery for an owner who lost both the authenticator and the recovery codes, as
 * GitHub's and Google's account recovery do it: two factors to start, a wait the owner can stop.
 *
 * - Start needs both the password and the mailbox. At the second sign-in step (the password
 *   checked, a code pending), "lost my device" sends the challenge token: a single-use link (256
 *   random bits, only its SHA-256 stored, valid an hour) goes to the account's confirmed address.
 *   The answer is the same whether a mail went or not (an unconfirmed address, the per-account or
 *   per-inbox limit). Nothing starts until the link is POSTed: a GET only describes it (mail
 *   scanners follow GETs). Only the newest link is valid; a password change or reset, or an email
 *   change, kills it (accounts.ts forgetEmailedLinks).
 * - Following it starts a 72-hour wait, and tells the owner at once: a security notice (in-app, on
 *   every signed-in session's socket, and by email). Its email, the one mail a start sends, carries
 *   a one-click cancel link whose token is stored nowhere, only hashed (two-factor-reset-cancel.ts).
 *   72 hours: long enough for an owner who reads mail or opens the app every day or two to notice
 *   (a weekend included) and cancel; short enough that someone who really lost their phone is back
 *   in within days, not weeks.
 * - Cancel always wins: from that link, or from any signed-in session (`openTwoFactorResets`,
 *   `cancelTwoFactorReset`). A completed password reset cancels every open reset too: the reset
 *   replaced the password that started it, and an owner who reacts to the notice by resetting
 *   their password must not leave a stranger's reset running; someone who holds only the mailbox,
 *   and resets the password to get the second factor, restarts the whole 72 hours with every reset
 *   and the owner told each time.
 * - Completion: the first password sign-in past the wait with the right password
 *   (`completeDueTwoFactorReset`). In one batch, only while the reset is still neither cancelled
 *   nor completed, the password still the one checked and two-factor sign-in still the one that
 *   was on when the wait began: mark it completed, turn two-factor sign-in off (its recovery codes
 *   with it) and end every session; the sign-in then starts its own. A cancel that landed first
 *   leaves nothing to complete (a conditional write, not a read and then a write). A right code at
 *   the second step, or a password change, neither completes nor cancels it.
 */
import { and, desc, eq, isNotNull, isNull, type SQL, sql } from "drizzle-orm";
import type { Config } from "../config";
import { changes, database, runBatch, type Statement } from "../db/client";
import { twoFactor, twoFactorResets, users } from "../db/schema";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import { randomToken, sha256Hex } from "../lib/hash";
import { uuidv7 } from "../lib/ids";
import { HOUR_MS } from "../lib/durations";
import type { Logger } from "../lib/logger";
import { formatWhen } from "./email-templates";
import { deliverOrTakeBack } from "./mailer";
import { mailBucketName, withinRateLimit } from "./rate-limits";
import { tellSecurityEvent } from "./security-notices";
import { endEverySession, sessionsEndedIf } from "./sessions";
import { liveChallenge } from "./two-factor";
import { twoFactorResetCancelToken } from "./two-factor-reset-cancel";
import type { UserRow } from "./users";

/** How long the emailed start link stays valid. */
export const TWO_FACTOR_RESET_LINK_TTL_S = 3600;
/** The wait between following the link and the reset completing (see above for why 72 hours). */
export const TWO_FACTOR_RESET_WAIT_MS = 72 * HOUR_MS;
/** Start links asked for per account and hour (the inbox's own limit applies too). */
export const TWO_FACTOR_RESET_REQUEST_RATE = { limit: 3, windowMs: HOUR_MS };

const nowS = (now: number) => Math.floor(now / 1000);

/** Open: started, neither cancelled nor completed. */
const open = () => and(isNotNull(twoFactorResets.startedAt), isNull(twoFactorResets.cancelledAt), isNull(twoFactorResets.completedAt));

/** "9 December 2026, 18:04 (UTC)". */
const utc = (iso: string) => formatWhen(iso, "UTC");

/** A start link not yet followed nor expired, by its hash. */
const liveLink = (linkHash: string, now: number) =>
  and(eq(twoFactorResets.linkHash, linkHash), isNull(twoFactorResets.startedAt), sql`${twoFactorResets.linkExpiresAt} > ${nowS(now)}`);

const invalidLink = () => new AppError("INVALID_TOKEN", 400, "This two-factor reset link is invalid, expired or used.");

/**
 * "Lost my device": mails a start link to the account's confirmed address. The challenge token is
 * checked now (a wrong one is 401 TWO_FACTOR_TOKEN_INVALID, as at `2fa/verify/`, and leaves the
 * token usable); the mail, which must not show in the answer or its timing, is `mail`, for the
 * caller to run after answering.
 */
export async function requestTwoFactorReset(
  env: Bindings,
  config: Config,
  challengeToken: string,
  logger?: Logger,
): Promise<{ mail: () => Promise<void> }> {
  const { user } = await liveChallenge(env, config, challengeToken);
  return { mail: () => mailStartLink(env, config, user, logger) };
}

async function mailStartLink(env: Bindings, config: Config, user: UserRow, logger?: Logger): Promise<void> {
  try {
    if (!user.emailVerified) {
      logger?.info("two-factor reset link not sent: the address is not confirmed", { user_id: user.id });
      return;
    }
    if (
      !(await withinRateLimit(env, `two-factor-reset:user:${user.id}`, TWO_FACTOR_RESET_REQUEST_RATE)) ||
      !(await withinRateLimit(env, mailBucketName(user.email), config.ACCOUNT_MAIL_RATE_LIMIT))
    ) {
      logger?.warn("two-factor reset link not sent: asked too often", { user_id: user.id });
      return;
    }
    const token = randomToken(32);
    const linkHash = await sha256Hex(token);
    const now = Date.now();
    const db = database(env);
    // Only the newest link is valid; written only while the address is still the account's.
    const [, inserted] = await runBatch(db, [
      db.delete(twoFactorResets).where(and(eq(twoFactorResets.userId, user.id), isNull(twoFactorResets.startedAt))),
      db.insert(twoFactorResets).select(
        db
          .select({
            id: sql<string>`${uuidv7(now)}`.as("id"),
            userId: users.id,
            linkHash: sql<string>`${linkHash}`.as("link_hash"),
            linkExpiresAt: sql<number>`${nowS(now) + TWO_FACTOR_RESET_LINK_TTL_S}`.as("link_expires_at"),
            startedAt: sql<null>`NULL`.as("started_at"),
            completesAfter: sql<null>`NULL`.as("completes_after"),
            cancelHash: sql<null>`NULL`.as("cancel_hash"),
            cancelledAt: sql<null>`NULL`.as("cancelled_at"),
            completedAt: sql<null>`NULL`.as("completed_at"),
            createdAt: sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`.as("created_at"),
          })
          .from(users)
          .where(
            and(
              eq(users.id, user.id),
              sql`lower(${users.email}) = lower(${user.email})`,
              eq(users.emailVerified, true),
              eq(users.isActive, true),
            ),
          ),
      ),
    ]);
    if (changes(inserted) === 0) return;
    const link = `${config.FRONTEND_URL}/two-factor-reset?token=${encodeURIComponent(token)}`;
    const mail = await deliverOrTakeBack(
      env,
      {
        to: user.email,
        subject: "Turn off two-factor sign-in on your Plant Community account?",
        text:
          `Hello ${user.username},\n\nSomeone who knows your password said they lost their authenticator app and recovery codes. ` +
          `If that was you, open this link (valid for ${TWO_FACTOR_RESET_LINK_TTL_S / 60} minutes, once) and confirm:\n${link}\n\n` +
          `Two-factor reset token: ${token}\n\n` +
          "Confirming starts a 72-hour wait; we tell you again then, and you can cancel until it ends. After it, signing in with " +
          "your password turns two-factor sign-in off.\n\n" +
          "If this was not you, someone has your password: ignore this email and change your password now.\n",
      },
      // Not sent: the link that never went out is taken back (a provider failure is logged below).
      () => db.delete(twoFactorResets).where(and(eq(twoFactorResets.linkHash, linkHash), isNull(twoFactorResets.startedAt))),
      logger,
    );
    // The answer is the same for every address; only the log can say this one was not mailed.
    if (!mail.sent) logger?.warn("two-factor reset mail not sent: address suppressed", { user_id: user.id });
  } catch (err) {
    logger?.error("two-factor reset email failed", { user_id: user.id, error: String(err) });
  }
}

/** What a start link would do, for a GET (a mail scanner's): changes nothing. */
export async function describeTwoFactorResetLink(
  env: Bindings,
  token: string,
  now = Date.now(),
): Promise<{ valid: boolean; linkExpiresAt: string | null }> {
  const row = await database(env)
    .select({ expiresAt: twoFactorResets.linkExpiresAt })
    .from(twoFactorResets)
    .where(liveLink(await sha256Hex(token), now))
    .get();
  return { valid: Boolean(row), linkExpiresAt: row ? new Date(row.expiresAt * 1000).toISOString() : null };
}

export interface OpenTwoFactorReset {
  id: string;
  startedAt: string;
  completesAfter: string;
}

/**
 * Follows a start link (POST): starts the 72-hour wait, once, and tells the owner (a security
 * notice, whose email carries the cancel link). The link is spent in the write that starts it; one
 * expired, spent or unknown is 400 INVALID_TOKEN; a valid one while another reset is open is 409.
 */
export async function startTwoFactorReset(
  env: Bindings,
  config: Config,
  token: string,
  logger?: Logger,
  now = Date.now(),
): Promise<OpenTwoFactorReset> {
  const db = database(env);
  const linkHash = await sha256Hex(token);
  const cancelToken = await twoFactorResetCancelToken(config, linkHash);
  const startedAt = new Date(now).toISOString();
  const completesAfter = new Date(now + TWO_FACTOR_RESET_WAIT_MS).toISOString();
  const started = await db
    .update(twoFactorResets)
    .set({ startedAt, completesAfter, cancelHash: await sha256Hex(cancelToken) })
    .where(
      and(
        liveLink(linkHash, now),
        // Written out: drizzle names an UPDATE's own columns unqualified, which inside these
        // subqueries would name the subquery's table.
        sql`EXISTS (SELECT 1 FROM two_factor f WHERE f.user_id = two_factor_resets.user_id AND f.enabled_at IS NOT NULL)`,
        sql`NOT EXISTS (SELECT 1 FROM two_factor_resets o WHERE o.user_id = two_factor_resets.user_id AND o.started_at IS NOT NULL AND o.cancelled_at IS NULL AND o.completed_at IS NULL)`,
      ),
    )
    .returning({ id: twoFactorResets.id, userId: twoFactorResets.userId });
  const row = started[0];
  if (!row) {
    const link = await db.select({ userId: twoFactorResets.userId }).from(twoFactorResets).where(liveLink(linkHash, now)).get();
    const running = link ? (await openTwoFactorResets(env, link.userId))[0] : undefined;
    if (running) {
      throw new AppError(
        "INVALID_STATE",
        409,
        `A two-factor reset is already under way on this account: it completes after ${utc(running.completesAfter)}.`,
      );
    }
    throw invalidLink();
  }
  // One mail: the notice's email carries the cancel link, derived again when it is sent.
  await tellSecurityEvent(env, { id: row.userId }, "two_factor_reset_started", completesAfter, logger, { reset_id: row.id });
  return { id: row.id, startedAt, completesAfter };
}

/** The account's open resets (at most one), for every signed-in session to see. */
export async function openTwoFactorResets(env: Bindings, userId: string): Promise<OpenTwoFactorReset[]> {
  const rows = await database(env)
    .select({ id: twoFactorResets.id, startedAt: twoFactorResets.startedAt, completesAfter: twoFactorResets.completesAfter })
    .from(twoFactorResets)
    .where(and(eq(twoFactorResets.userId, userId), open()))
    .orderBy(desc(twoFactorResets.startedAt));
  return rows.map((r) => ({ id: r.id, startedAt: r.startedAt!, completesAfter: r.completesAfter! }));
}

async function cancelled(env: Bindings, userId: string, logger?: Logger): Promise<void> {
  const user = await database(env).select({ id: users.id }).from(users).where(eq(users.id, userId)).get();
  if (user) await tellSecurityEvent(env, user, "two_factor_reset_cancelled", "", logger);
}

/** The one-click cancel link (POST): single use, and only while the reset is open. */
export async function cancelTwoFactorResetByLink(env: Bindings, token: string, logger?: Logger): Promise<void> {
  const [row] = await database(env)
    .update(twoFactorResets)
    .set({ cancelledAt: new Date().toISOString() })
    .where(and(eq(twoFactorResets.cancelHash, await sha256Hex(token)), open()))
    .returning({ userId: twoFactorResets.userId });
  if (!row) throw new AppError("INVALID_TOKEN", 400, "This cancel link is invalid or used, or the reset is over already.");
  await cancelled(env, row.userId, logger);
}

/** Cancels one of the signed-in user's open resets; 404 when it is not one (anyone's, or over). */
export async function cancelTwoFactorReset(env: Bindings, userId: string, id: string, logger?: Logger): Promise<void> {
  const done = await database(env)
    .update(twoFactorResets)
    .set({ cancelledAt: new Date().toISOString() })
    .where(and(eq(twoFactorResets.id, id), eq(twoFactorResets.userId, userId), open()));
  if (changes(done) === 0) throw new AppError("NOT_FOUND", 404, "No open two-factor reset with this id.");
  await cancelled(env, userId, logger);
}

/** A password change or reset, or an email change (accounts.ts): the start links not yet followed die while `onlyIf` holds. */
export function forgetTwoFactorResetLinks(env: Bindings, userId: string, onlyIf: SQL | undefined): Statement {
  return database(env)
    .delete(twoFactorResets)
    .where(and(eq(twoFactorResets.userId, userId), isNull(twoFactorResets.startedAt), onlyIf));
}

/** A completed password reset (accounts.ts): every open reset is cancelled while `onlyIf` holds. */
export function cancelOpenTwoFactorResets(env: Bindings, userId: string, onlyIf: SQL): Statement {
  return database(env)
    .update(twoFactorResets)
    .set({ cancelledAt: new Date().toISOString() })
    .where(and(eq(twoFactorResets.userId, userId), open(), onlyIf));
}

/**
 * At a password sign-in (the password just checked against `passwordHash`) on an account with
 * two-factor sign-in on: completes a reset whose wait is over. One batch, every write conditioned
 * on the first: the reset is marked completed only while it is still open and due, the password
 * still `passwordHash`, the account active and two-factor sign-in the one that was on when the
 * wait began; only then is two-factor sign-in turned off (the recovery codes are in its row) and
 * every session ended. Whether it completed; the caller then starts the sign-in's own session.
 */
export async function completeDueTwoFactorReset(
  env: Bindings,
  user: UserRow,
  passwordHash: string,
  logger?: Logger,
  now = Date.now(),
): Promise<boolean> {
  const db = database(env);
  const at = new Date(now).toISOString();
  const due = and(eq(twoFactorResets.userId, user.id), open(), sql`${twoFactorResets.completesAfter} <= ${at}`);
  // One primary read on every second step that has nothing due, and nothing written.
  const candidate = await db.select({ id: twoFactorResets.id }).from(twoFactorResets).where(due).get();
  if (!candidate) return false;
  const claim = db
    .update(twoFactorResets)
    .set({ completedAt: at })
    .where(
      and(
        eq(twoFactorResets.id, candidate.id),
        due,
        sql`EXISTS (SELECT 1 FROM users u WHERE u.id = ${user.id} AND u.password_hash = ${passwordHash} AND u.is_active = 1)`,
        sql`EXISTS (SELECT 1 FROM two_factor f WHERE f.user_id = ${user.id} AND f.enabled_at IS NOT NULL AND f.enabled_at <= two_factor_resets.started_at)`,
      ),
    );
  const claimed = sql`EXISTS (SELECT 1 FROM two_factor_resets c WHERE c.id = ${candidate.id} AND c.completed_at = ${at})`;
  const results = await endEverySession(env, user.id, {
    first: [claim],
    onlyIf: claimed,
    also: [db.delete(twoFactor).where(and(eq(twoFactor.userId, user.id), claimed))],
    logger,
  });
  if (!sessionsEndedIf(results)) return false;
  await tellSecurityEvent(env, user, "two_factor_reset_completed", "", logger);
  return true;
}
