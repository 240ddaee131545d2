/**
 * Account rules (API.md §1): sign-in with lockout and rehash, password change and reset, email
 * change, profile and avatar, WebSocket tickets, deactivation. No HTTP here: routes parse and
 * shape, this module decides.
 *
 * The rules that protect an account from takeover live together here:
 * - an email address claims an account only once proven: a change applies when the new address
 *   confirms the emailed link (until then registration, OAuth linking and reset ignore it);
 * - a password reset link is single-use, only the newest one is valid, and every one dies when
 *   the password or the email changes, a reset succeeds or a verified provider takes over;
 * - a successful reset proves the address, so on an account whose address was never proven it
 *   also removes every other way in (linked providers), and it ends every session.
 */
import { and, eq, gt, isNotNull, isNull, ne, type SQL, sql } from "drizzle-orm";
import { type Config, getConfig } from "../config";
import { changes, type Database, database, rowIf, runBatch, type Statement } from "../db/client";
import { blogPosts, emailChangeTokens, forumPosts, forumTopics, oauthAccounts, passwordResetTokens, users, wsTickets } from "../db/schema";
import type { Bindings } from "../env";
import { HOUR_MS } from "../lib/durations";
import { AppError } from "../lib/errors";
import { randomToken, sha256Hex } from "../lib/hash";
import { isUuid } from "../lib/ids";
import { purgeBlogReadsStatement } from "./blog-cache";
import { purgeStatement } from "./public-cache";
import { photoRef, releasePhotoRefs, withStoredPhotos } from "./photos";
import { AVATAR_RULES, validateImageUpload } from "../lib/images";
import { createLogger, type Logger } from "../lib/logger";
import type { SessionDevice } from "../lib/session-device";
import type { TokenClaims } from "../lib/token-claims";
import { accountRecountStatements, tellRecount } from "./community";
import { liftSuppression, type SuppressionReason, suppressionOf } from "./email-events";
import { deliverEmail, deliverOrTakeBack, type MailResult, mailMayGoLater, mailNotSent } from "./mailer";
import { EmailError } from "../providers/email";
import { tellSecurityEvent } from "./security-notices";
import { burnPasswordCheck, hashPassword, needsRehash, passwordPolicyErrors, verifyPassword } from "./passwords";
import {
  beginLoginAttempt,
  enforceRateLimit,
  type LoginAttempt,
  liftCodeLockForReset,
  liftLockout,
  loginAttemptSucceeded,
  mailBucketName,
  type Refund,
  spendRateLimit,
  withinRateLimit,
} from "./rate-limits";
import { checkCurrentPassword, notifyLockout, proveAccountOwner } from "./account-proof";
import { endEverySession, refuseIfDeactivated, sessionNotEnded, sessionStillLive, sessionsEndedIf } from "./sessions";
import { guardedTokenPair, type TokenPair } from "./tokens";
import { keepRehash, proveSecondFactorIfOn, type SecondFactor, type SignInVia, twoFactorEnabled, twoFactorRequired } from "./two-factor";
import { cancelOpenTwoFactorResets, completeDueTwoFactorReset, forgetTwoFactorResetLinks } from "./two-factor-reset";
import {
  accountActive,
  findUserByEmail,
  findUserById,
  findUserByLogin,
  keepsAnAdmin,
  lastAdmin,
  linksNotVouchingForAddress,
  uniquenessErrors,
  type UserRow,
} from "./users";

/** How long an email-change link stays valid. */
export const EMAIL_CHANGE_TTL_S = 24 * 3600;
/** How long a WebSocket ticket stays valid (API.md §1). */
export const WS_TICKET_TTL_S = 60;

const nowS = () => Math.floor(Date.now() / 1000);

/** What is wrong with a new `password` (the policy) and its `confirm`, by field; empty when nothing. */
export function passwordFieldErrors(
  password: string,
  confirm: string | undefined,
  user: { username?: string; email?: string },
  field: string,
): Record<string, string[]> {
  const fieldErrors: Record<string, string[]> = {};
  const problems = passwordPolicyErrors(password, user);
  if (problems.length > 0) fieldErrors[field] = problems;
  if (confirm !== undefined && confirm !== password) fieldErrors[`${field}_confirm`] = ["Passwords do not match."];
  return fieldErrors;
}

/** Throws 400 with field errors when `password` breaks the policy or does not match `confirm`. */
export function assertPasswordPolicy(
  password: string,
  confirm: string | undefined,
  user: { username?: string; email?: string },
  field: string,
): void {
  const fieldErrors = passwordFieldErrors(password, confirm, user, field);
  if (Object.keys(fieldErrors).length > 0) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", fieldErrors);
}

const invalidCredentials = () => new AppError("INVALID_CREDENTIALS", 401, "Invalid username or password.");

/**
 * The sign-in check for /login and /token: per-address limit, account lockout — one bucket per
 * account whatever name or email is typed, and one per unknown name, so lockout answers the
 * same for names that exist and names that don't — and constant work whether the user exists.
 * `defer` runs the lockout email after the response. Starts the session: the user and its pair.
 */
export async function signInWithPassword(
  env: Bindings,
  config: Config,
  input: { identifier: string; password: string; clientKey: string; device?: SessionDevice; via?: SignInVia },
  defer: (work: Promise<unknown>) => void,
  logger?: Logger,
): Promise<{ user: UserRow; pair: TokenPair }> {
  await enforceRateLimit(env, `login:ip:${input.clientKey}`, config.LOGIN_RATE_LIMIT);
  const user = await findUserByLogin(env, input.identifier);
  const nameKey = `name:${input.identifier.toLowerCase()}`;
  const accountKey = user ? `user:${user.id}` : nameKey;
  const attempt = await reserveSignIn(env, config, accountKey, user ? nameKey : null, input.password);

  const ok = user?.passwordHash ? await verifyPassword(input.password, user.passwordHash) : await burnPasswordCheck(input.password);
  if (!ok || !user?.isActive) {
    if (attempt.justLocked && user) defer(notifyLockout(env, config, user, logger));
    throw invalidCredentials();
  }
  // A two-factor reset whose 72-hour wait is over completes at this sign-in (two-factor-reset.ts),
  // which then goes on as one without the second factor.
  if ((await twoFactorEnabled(env, user.id)) && !(await completeDueTwoFactorReset(env, user, user.passwordHash!, logger))) {
    // No session yet, and the attempt stays counted until the second step succeeds: a wrong code
    // after a right password must not find the account's failures forgotten.
    if (attempt.justLocked) defer(notifyLockout(env, config, user, logger));
    // An outdated hash is upgraded only once the second factor is proven; the new one is made
    // now, while the password is at hand, and kept server-side for that step.
    await keepRehash(env, user, input.password);
    throw await twoFactorRequired(config, user, input.via ?? "token", attempt.name?.key ?? null);
  }
  await loginAttemptSucceeded(env, accountKey, attempt);
  const lastLogin = new Date().toISOString();
  const db = database(env);
  // A stored hash with weaker parameters than today's is replaced while the password is at hand.
  const rehashed = needsRehash(user.passwordHash!) ? { passwordHash: await hashPassword(input.password) } : {};
  // Only while the hash just checked is still the account's, and the account still active: a
  // password change, reset or deactivation that landed while the password was being checked
  // wins, rather than this sign-in starting a session that outlives it (or writing the old
  // password's new hash back over the new password). The session starts in the same batch,
  // under the same condition, with tokens signed before it: a change landing after the batch
  // finds the session and ends it, so there is no moment between the check and the session.
  const still = and(eq(users.passwordHash, user.passwordHash!), eq(users.isActive, true));
  const { pair, record } = await guardedTokenPair(env, config, user.id, still, input.device ?? null);
  // The session is recorded first: the rehash after it changes the hash the guard names.
  const [started, signedIn] = await runBatch(db, [
    record,
    db
      .update(users)
      .set({ lastLogin, ...rehashed })
      .where(and(eq(users.id, user.id), still)),
  ]);
  if (changes(started) === 0 || changes(signedIn) === 0) throw invalidCredentials();
  return { user: { ...user, lastLogin, ...rehashed }, pair };
}

/**
 * Reserves a sign-in attempt. The account's bucket decides whether the password is checked at
 * all; for an account, the name typed (its username or email, any case) counts the same attempts
 * in that bucket and decides only what a refusal says. An account locked through another name
 * answers like a wrong password, after the same work: were it 429 ACCOUNT_LOCKED, anyone could
 * lock an account by an email address and then try usernames until one answered "locked", and
 * so learn whose address it is (an unknown name's lock gives nothing like it). The name that
 * locked it still answers 429, as does a name tried ten times more, exactly like an unknown one.
 * One Durable Object call counts both.
 */
async function reserveSignIn(
  env: Bindings,
  config: Config,
  accountKey: string,
  nameKey: string | null,
  password: string,
): Promise<LoginAttempt> {
  if (nameKey === null) return beginLoginAttempt(env, config, accountKey);
  const attempt = await beginLoginAttempt(env, config, accountKey, nameKey);
  if (attempt) return attempt;
  await burnPasswordCheck(password);
  throw invalidCredentials();
}

/**
 * Statements that kill every outstanding password-reset link and email-change request (`onlyIf`:
 * only while it holds; the reset links go last, so a condition on one of them holds throughout).
 */
function forgetEmailedLinks(env: Bindings, userId: string, onlyIf?: SQL): Statement[] {
  const db = database(env);
  return [
    db.delete(emailChangeTokens).where(and(eq(emailChangeTokens.userId, userId), onlyIf)),
    db
      .update(users)
      .set({ pendingEmail: null })
      .where(and(eq(users.id, userId), onlyIf)),
    forgetTwoFactorResetLinks(env, userId, onlyIf),
    db.delete(passwordResetTokens).where(and(eq(passwordResetTokens.userId, userId), onlyIf)),
  ];
}

/** SQL: the account's password is still the one `hash` stands for (no change, reset or removal since it was read). */
function passwordStill(userId: string, hash: string): SQL {
  return sql`EXISTS (SELECT 1 FROM ${users} pu WHERE pu.id = ${userId} AND pu.password_hash = ${hash})`;
}

/**
 * Changes the password after checking the old one. Every session ends (tokens and sockets, the
 * caller's included: a thief's socket opened with a token of the caller's own session must not
 * outlive the change) and every emailed link dies; the caller continues in a new session with
 * the returned pair, and reconnects its sockets with it.
 */
export async function changePassword(
  env: Bindings,
  config: Config,
  user: UserRow,
  input: { oldPassword: string; newPassword: string; device?: SessionDevice },
  logger?: Logger,
): Promise<TokenPair> {
  if (!(await checkCurrentPassword(env, config, user, input.oldPassword, logger))) {
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { old_password: ["Your old password was entered incorrectly."] });
  }
  assertPasswordPolicy(input.newPassword, undefined, user, "new_password");
  const db = database(env);
  const newHash = await hashPassword(input.newPassword);
  // Only while the password just checked is still the account's: a reset, another change or a
  // provider taking over an account a stranger set up on its owner's address (which removes the
  // stranger's password and ends their sessions) that lands meanwhile must not find a password
  // the caller chose set after it, nor a session started under it.
  const checked = passwordStill(user.id, user.passwordHash!);
  const ended = () => new AppError("TOKEN_INVALID", 401, "Your password changed or your session ended meanwhile. Sign in again.");
  const results = await endEverySession(env, user.id, {
    onlyIf: checked,
    also: [
      ...forgetEmailedLinks(env, user.id, checked),
      db
        .update(users)
        .set({ passwordHash: newHash, updatedAt: new Date().toISOString() })
        .where(and(eq(users.id, user.id), checked)),
    ],
    logger,
  });
  if (changes(results.at(-1)) === 0) throw ended();
  await tellSecurityEvent(env, user, "password_changed", "", logger);
  // The caller's new session, only under the password it set.
  const { pair, record } = await guardedTokenPair(env, config, user.id, eq(users.passwordHash, newHash), input.device ?? null);
  const [started] = await runBatch(db, [record]);
  if (changes(started) === 0) throw ended();
  return pair;
}

/**
 * Emails a reset link to the account that owns `address` now (a pending email change claims
 * nothing). Only the newest link is valid: issuing one deletes the others. Errors are logged,
 * never shown, so the answer cannot reveal whether an account exists.
 */
export async function requestPasswordReset(env: Bindings, config: Config, address: string, logger?: Logger): Promise<void> {
  try {
    const user = await findUserByEmail(env, address);
    if (!user?.isActive) return;
    // Counted per inbox, whoever asks: the answer is the same either way, and the newest link
    // (if any) stays valid, because a refused request rotates nothing.
    if (!(await withinRateLimit(env, mailBucketName(user.email), config.ACCOUNT_MAIL_RATE_LIMIT))) {
      logger?.warn("password reset mail not sent: too many to this address", { user_id: user.id });
      return;
    }
    const token = randomToken(32);
    const tokenHash = await sha256Hex(token);
    // Inserted only while the address is still the account's: an email change confirmed since
    // the lookup must not leave a live link in the old inbox.
    const db = database(env);
    const [, inserted] = await runBatch(db, [
      db.delete(passwordResetTokens).where(eq(passwordResetTokens.userId, user.id)),
      db.insert(passwordResetTokens).select(
        db
          .select({
            tokenHash: sql<string>`${tokenHash}`.as("token_hash"),
            userId: users.id,
            expiresAt: sql<number>`${nowS() + config.PASSWORD_RESET_TTL_S}`.as("expires_at"),
            usedAt: sql<null>`NULL`.as("used_at"),
            createdAt: sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`.as("created_at"),
          })
          .from(users)
          .where(and(eq(users.id, user.id), sql`lower(${users.email}) = lower(${user.email})`, eq(users.isActive, true))),
      ),
    ]);
    if (changes(inserted) === 0) return;
    const link = `${config.FRONTEND_URL}/reset-password?token=${encodeURIComponent(token)}`;
    // Suppressed: nothing is sent and the answer stays the same (anyone may type the address);
    // the account's owner lifts a bounce by asking for a confirmation link, support a complaint.
    // Not sent, either way: the link that never went out is taken back (a provider failure is logged below).
    const takeBack = () => db.delete(passwordResetTokens).where(eq(passwordResetTokens.tokenHash, tokenHash));
    const mail = await deliverOrTakeBack(
      env,
      {
        to: user.email,
        subject: "Reset your Plant Community password",
        text:
          `Hello ${user.username},\n\nUse this link to choose a new password (valid for ` +
          `${Math.round(config.PASSWORD_RESET_TTL_S / 60)} minutes, once):\n${link}\n\nReset token: ${token}\n\n` +
          `If you did not ask for this, ignore this email.\n`,
      },
      takeBack,
      logger,
    );
    if (!mail.sent) logger?.warn("password reset mail not sent: address suppressed", { user_id: user.id });
  } catch (err) {
    logger?.error("password reset email failed", { error: String(err) });
  }
}

/**
 * Sets a new password with an emailed reset token. The token is consumed and the password set in
 * one atomic batch (a second use, even a concurrent one, changes nothing). The reset proves the
 * address: every session ends, every other link dies, and on an account whose address was never
 * proven every linked provider is removed — whoever set the account up before cannot keep a way in;
 * on one whose address was confirmed from outside, every provider linked with another address.
 */
export async function confirmPasswordReset(
  env: Bindings,
  input: { token: string; newPassword: string; confirm: string | undefined },
  logger?: Logger,
): Promise<void> {
  const tokenHash = await sha256Hex(input.token);
  const now = nowS();
  const invalid = () => new AppError("INVALID_TOKEN", 400, "The password reset link is invalid or has expired.");
  const db = database(env);
  const live = and(
    eq(passwordResetTokens.tokenHash, tokenHash),
    isNull(passwordResetTokens.usedAt),
    gt(passwordResetTokens.expiresAt, now),
  );
  const pending = await db.select({ userId: passwordResetTokens.userId }).from(passwordResetTokens).where(live).get();
  if (!pending) throw invalid();
  const user = await findUserById(env, pending.userId);
  if (!user) throw invalid();
  assertPasswordPolicy(input.newPassword, input.confirm, user, "new_password");
  const newHash = await hashPassword(input.newPassword);
  // The token is claimed, and the reset applied, in one batch, each write only while the token is
  // still live: of two concurrent uses exactly one lands, and whatever killed the link meanwhile (a
  // password or email change, a provider taking the account over) wins over a reset that checked it
  // before — the password another inbox's link chose must not land after the address moved on.
  const stillLive = sql`EXISTS (SELECT 1 FROM ${passwordResetTokens} rt WHERE rt.token_hash = ${tokenHash} AND rt.used_at IS NULL AND rt.expires_at > ${now})`;
  const justClaimed = sql`EXISTS (SELECT 1 FROM ${passwordResetTokens} rt WHERE rt.token_hash = ${tokenHash} AND rt.used_at = ${now})`;
  const results = await endEverySession(env, user.id, {
    onlyIf: stillLive,
    also: [
      // On an account whose address was confirmed from outside, the sign-ins linked with another
      // address (or unverified) may be whoever held it before: they go too (oauth.ts claimOf).
      // Read before the update below marks the password proven.
      db
        .delete(oauthAccounts)
        .where(
          and(
            user.emailVerified
              ? and(
                  linksNotVouchingForAddress(user.id),
                  sql`EXISTS (SELECT 1 FROM users u WHERE u.id = ${user.id} AND u.password_proven = 0)`,
                )
              : eq(oauthAccounts.userId, user.id),
            stillLive,
          ),
        ),
      db
        .update(users)
        .set({ passwordHash: newHash, emailVerified: true, passwordProven: true, updatedAt: new Date().toISOString() })
        .where(and(eq(users.id, user.id), stillLive)),
      db.update(passwordResetTokens).set({ usedAt: now }).where(live),
      // The reset replaced the password that started any two-factor reset under way: it is
      // cancelled (two-factor-reset.ts says why this keeps the owner safest).
      cancelOpenTwoFactorResets(env, user.id, justClaimed),
      ...forgetEmailedLinks(env, user.id, justClaimed),
    ],
    logger,
  });
  if (!sessionsEndedIf(results)) throw invalid();
  // Someone may have locked the account on purpose, guessing: the owner who just proved their
  // inbox signs in with the new password at once, not after the lock runs out. With two-factor
  // sign-in on, the bucket counts wrong codes too, whose guesser had the password the reset just
  // replaced; but the inbox is one factor — were a reset to forget the wrong codes, whoever holds
  // it could reset, guess until locked, reset again, and so guess without limit. So the lock is
  // lifted once until a right code, the next wrong code locks again, and its growth is kept.
  const lifting = (await twoFactorEnabled(env, user.id))
    ? liftCodeLockForReset(env, getConfig(env), `user:${user.id}`)
    : liftLockout(env, `user:${user.id}`);
  await lifting.catch((err: unknown) => logger?.warn("lifting the lockout failed", { user_id: user.id, error: String(err) }));
  await tellSecurityEvent(env, user, "password_reset", "", logger);
}

/**
 * Asks for an email change: nothing changes yet. The new address gets a single-use link (the
 * newest request replaces older ones); the current address is told, so an intruder's attempt is
 * seen. The new address must be free now and again when the link comes back. A link the email
 * provider does not take is 503 (`mailNotSent`): nothing stays pending and the counts come back
 * (the per-account one only when the notice to the current address did not go out either).
 */
export async function requestEmailChange(
  env: Bindings,
  config: Config,
  user: UserRow,
  input: {
    newEmail: string;
    currentPassword: string | undefined;
    /** Asked for too when the account has two-factor sign-in on (proveSecondFactorIfOn). */
    secondFactor?: SecondFactor;
    sessionStartedAt?: number;
    /** The access token that asked: the change is written only while it is live (sessionStillLive). */
    session: Pick<TokenClaims, "jti" | "iat" | "sid">;
  },
  logger?: Logger,
  now = Date.now(),
): Promise<void> {
  const { newEmail } = input;
  if (newEmail.toLowerCase() === user.email.toLowerCase()) {
    // Asking for the address you already have cancels a pending change.
    const db = database(env);
    await runBatch(db, [
      db.delete(emailChangeTokens).where(eq(emailChangeTokens.userId, user.id)),
      db.update(users).set({ pendingEmail: null }).where(eq(users.id, user.id)),
    ]);
    return;
  }
  await proveAccountOwner(env, config, user, input, "change your email address", logger, now);
  await proveSecondFactorIfOn(env, config, user, input.secondFactor ?? {}, "change your email address", logger);
  // Each request mails two inboxes: bounded per account (counted before "that address is taken",
  // so the answer cannot be used to test addresses without limit), and per new inbox whoever asks.
  // Both counts are given back only when the link could not be sent (below): a refusal keeps them.
  const log = logger ?? createLogger();
  const perAccount = await spendRateLimit(env, `email-change:user:${user.id}`, config.EMAIL_CHANGE_RATE_LIMIT, log);
  const taken = await uniquenessErrors(env, null, newEmail, user.id);
  if (taken.email) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", taken);
  const perInbox = await spendRateLimit(env, mailBucketName(newEmail), config.ACCOUNT_MAIL_RATE_LIMIT, log);
  const suppression = await refuseComplainedAddress(env, newEmail);
  // The link names the session that asked (after the last "."): it moves the account only while
  // that session has not ended (confirmEmailChange), so the owner ending a session they do not
  // recognise ends what it asked for too.
  const token = input.session.sid ? `${randomToken(32)}.${input.session.sid}` : randomToken(32);
  const tokenHash = await sha256Hex(token);
  const db = database(env);
  // Only while the session that asked (and proved the password) is live: every session ending
  // meanwhile — a password change, sign-out everywhere, a provider taking over an account a
  // stranger set up on its owner's address — must not find this change written after it.
  const live = sessionStillLive(user.id, input.session);
  const [, inserted] = await runBatch(db, [
    db.delete(emailChangeTokens).where(and(eq(emailChangeTokens.userId, user.id), live)),
    db.insert(emailChangeTokens).select(
      rowIf(
        emailChangeTokens,
        {
          tokenHash,
          userId: user.id,
          newEmail,
          expiresAt: nowS() + EMAIL_CHANGE_TTL_S,
          // So that the session's end finds the change and cancels it (sessions.ts endSession).
          sessionId: input.session.sid ?? null,
        },
        live,
      ),
    ),
    db
      .update(users)
      .set({ pendingEmail: newEmail, updatedAt: new Date().toISOString() })
      .where(and(eq(users.id, user.id), live)),
  ]);
  if (changes(inserted) === 0)
    throw new AppError("TOKEN_INVALID", 401, "Your session has ended. Sign in again to change your email address.");
  // A bounce is lifted only now that the link is written and about to be sent.
  if (suppression === "bounce") await liftBounce(env, newEmail, user.id, logger);
  const link = `${config.FRONTEND_URL}/confirm-email?token=${encodeURIComponent(token)}`;
  const hours = Math.round(EMAIL_CHANGE_TTL_S / 3600);
  // The link never reaching the new address takes back the change it would confirm (unless a
  // newer request to the same address holds it now).
  const takeBack = () =>
    runBatch(db, [
      db.delete(emailChangeTokens).where(eq(emailChangeTokens.tokenHash, tokenHash)),
      db
        .update(users)
        .set({ pendingEmail: null })
        .where(
          and(
            eq(users.id, user.id),
            eq(users.pendingEmail, newEmail),
            sql`NOT EXISTS (SELECT 1 FROM ${emailChangeTokens} t WHERE t.user_id = ${user.id} AND t.new_email = ${newEmail})`,
          ),
        ),
    ]);
  const results = await Promise.allSettled([
    deliverOrTakeBack(
      env,
      {
        to: newEmail,
        subject: "Confirm your new Plant Community email address",
        text:
          `Hello ${user.username},\n\nConfirm that this is your new address for Plant Community (the link is valid for ${hours} hours, ` +
          `once; open it where you are signed in to Plant Community):\n` +
          `${link}\n\nConfirmation token: ${token}\n\nUntil you confirm, your account keeps its current address. ` +
          `If you did not ask for this, ignore this email.\n`,
      },
      takeBack,
      logger,
    ),
    deliverEmail(env, {
      to: user.email,
      subject: "A change of your Plant Community email address was requested",
      text:
        `Hello ${user.username},\n\nSomeone signed in to your account asked to change its email address to ${newEmail}. ` +
        `Nothing changes unless that address confirms.\nIf this was not you, change your password now:\n${config.FRONTEND_URL}/forgot-password\n`,
    }),
  ]);
  for (const result of results) {
    if (result.status === "rejected") logger?.error("email change mail failed", { user_id: user.id, error: String(result.reason) });
  }
  const [sentLink, notice] = results;
  // The address was suppressed between the check above and the send (its provider's report
  // landing meanwhile): nothing went to it, and nothing is given back (asking again will not help).
  if (sentLink.status === "fulfilled" && !sentLink.value.sent) throw await suppressedJustNow(env, newEmail);
  if (sentLink.status === "rejected") {
    // When the provider may take it later, the new inbox's count is given back, so the user can
    // simply ask again; the per-account count bounds the notices to the current address too, and
    // comes back only when no notice went there either, or asking again and again would send that
    // inbox notices without limit.
    const noticeWent = notice.status === "fulfilled" && notice.value.sent;
    if (mailMayGoLater(sentLink.reason)) await giveBack(perInbox, ...(noticeWent ? [] : [perAccount]));
    throw mailNotSent(sentLink.reason, `the confirmation link to ${newEmail}`);
  }
}

/**
 * The answer when mail a user asked for found `address` suppressed at the moment of sending — a
 * bounce or complaint reported after the request's own check (409 EMAIL_SUPPRESSED): the complaint's
 * usual answer, or for a bounce that the address just refused mail.
 */
async function suppressedJustNow(env: Bindings, address: string): Promise<AppError> {
  if ((await suppressionOf(env, address)) === "complaint") return complainedAddress(address);
  return new AppError(
    "EMAIL_SUPPRESSED",
    409,
    `We could not send mail to ${address}: it was just reported as undeliverable. Check the address, or ask again later.`,
  );
}

const complainedAddress = (address: string) =>
  new AppError(
    "EMAIL_SUPPRESSED",
    409,
    `We send no email to ${address}: mail we sent there was reported as spam. Use another address, or ask support to lift the block.`,
  );

/** Gives back every count in `refunds` (each never throws: a refused refund is logged and stays spent). */
async function giveBack(...refunds: Refund[]): Promise<void> {
  await Promise.all(refunds.map((refund) => refund()));
}

/**
 * Before mail a signed-in user asked for themselves (their address's confirmation link again, the
 * link to a new address), to `address`, and before anything is written: a complaint is not lifted
 * (someone there marked our mail as spam; only support lifts it): 409 EMAIL_SUPPRESSED, saying
 * what to do. A bounce answers "bounce", for the caller to lift (`liftBounce`) just before it sends.
 */
async function refuseComplainedAddress(env: Bindings, address: string): Promise<SuppressionReason | null> {
  const reason = await suppressionOf(env, address);
  if (reason === "complaint") throw complainedAddress(address);
  return reason;
}

/**
 * Lifts a bounce suppression of `address`, just before sending it mail its user asked for — as
 * email providers reactivate a bounced address (a mailbox recreated, a typo fixed at the
 * provider); the caller has rate-limited the asking, and a new bounce suppresses it again. Only
 * once the mail is about to go: a request that fails before that leaves the bounce as it was.
 */
async function liftBounce(env: Bindings, address: string, userId: string, logger?: Logger): Promise<void> {
  if (await liftSuppression(env, address, "bounce")) logger?.info("bounced address reopened on its user's request", { user_id: userId });
}

/**
 * What `sendVerificationEmail` did: sent, nothing to send, nothing sent for this suppression,
 * nothing sent because the inbox had its hour's account mail ("inbox limit"), or nothing sent
 * because the email provider did not take it ("not sent": logged; ask again later).
 */
export type VerificationMail = "sent" | "already verified" | "not sent" | "inbox limit" | SuppressionReason;

/**
 * Emails a link that proves the account's current address (new accounts get one at sign-up; a
 * signed-in user may ask again, `resendVerificationEmail`). It is an email-change link to the
 * address already in use, so `POST auth/email/confirm/` confirms it; older verification links stay
 * valid until they expire. Nothing goes to a suppressed address: the result says why.
 */
export async function sendVerificationEmail(env: Bindings, config: Config, user: UserRow, logger?: Logger): Promise<VerificationMail> {
  if (user.emailVerified) return "already verified";
  const suppressed = await suppressionOf(env, user.email);
  if (suppressed) return suppressed;
  // Sign-ups from many addresses naming one inbox (its +tags, Gmail's dots) must not fill it with
  // links: ACCOUNT_MAIL_RATE_LIMIT of them per inbox, in a count of their own, so they never use
  // up what its holder's own reset or email change needs.
  if (!(await withinRateLimit(env, `welcome-${mailBucketName(user.email)}`, config.ACCOUNT_MAIL_RATE_LIMIT))) return "inbox limit";
  try {
    // Suppressed between the check above and the send (a report landing meanwhile): say why.
    if (!(await mailVerificationLink(env, config, user, "welcome", logger))) return (await suppressionOf(env, user.email)) ?? "not sent";
  } catch (err) {
    if (!(err instanceof EmailError)) throw err;
    return "not sent";
  }
  return "sent";
}

/**
 * The link again, on its signed-in user's request: 3 an hour per account, and counted per inbox
 * with every other account mail to it (an account squatting someone's address must not add a
 * stream of its own). A bounced address is tried again (lifted just before the link goes,
 * `liftBounce`) — a verified one too, whose mailbox was recreated: the link proves it afresh; a
 * complained one is refused (409 EMAIL_SUPPRESSED). A verified address with nothing to lift: 409
 * INVALID_STATE. A link the email provider does not take is 503 (`mailNotSent`), and the counts
 * it spent come back.
 */
export async function resendVerificationEmail(env: Bindings, config: Config, user: UserRow, logger?: Logger): Promise<void> {
  if (user.emailVerified && !(await suppressionOf(env, user.email)))
    throw new AppError("INVALID_STATE", 409, "Your email address is already confirmed.");
  const log = logger ?? createLogger();
  const perAccount = await spendRateLimit(env, `verify-email:user:${user.id}`, { limit: 3, windowMs: HOUR_MS }, log);
  const perInbox = await spendRateLimit(env, mailBucketName(user.email), config.ACCOUNT_MAIL_RATE_LIMIT, log);
  const suppression = await refuseComplainedAddress(env, user.email);
  let sent: boolean;
  try {
    sent = await mailVerificationLink(env, config, user, "again", logger, suppression === "bounce");
  } catch (err) {
    const answer = mailNotSent(err, `a new confirmation link to ${user.email}`);
    // Not sent for now: the counts it spent come back, so asking again a moment later is not refused.
    if (mailMayGoLater(err)) await giveBack(perAccount, perInbox);
    throw answer;
  }
  if (!sent) throw await suppressedJustNow(env, user.email);
}

/**
 * The confirmation link: the welcome after sign-up, or a new link its user asked for (`liftBounced`:
 * the address's bounce is lifted just before it is sent). Whether it went: false when the address
 * was suppressed by the time of sending. What the provider throws, this throws, logged. Either way
 * a link that never went out is taken back.
 */
async function mailVerificationLink(
  env: Bindings,
  config: Config,
  user: UserRow,
  occasion: "welcome" | "again",
  logger?: Logger,
  liftBounced = false,
): Promise<boolean> {
  const token = randomToken(32);
  const tokenHash = await sha256Hex(token);
  const db = database(env);
  await db.insert(emailChangeTokens).values({ tokenHash, userId: user.id, newEmail: user.email, expiresAt: nowS() + EMAIL_CHANGE_TTL_S });
  const link = `${config.FRONTEND_URL}/confirm-email?token=${encodeURIComponent(token)}`;
  if (liftBounced) await liftBounce(env, user.email, user.id, logger);
  let mail: MailResult;
  try {
    mail = await deliverOrTakeBack(
      env,
      {
        to: user.email,
        subject: "Confirm your email address for Plant Community",
        text:
          `Hello ${user.username},\n\n${occasion === "welcome" ? "Welcome to Plant Community! Confirm" : "Here is the new link you asked for: confirm"} ` +
          `that this address is yours (the link is valid for ` +
          `${Math.round(EMAIL_CHANGE_TTL_S / 3600)} hours, once; open it where you are signed in to Plant Community):\n${link}\n\n` +
          `Confirmation token: ${token}\n\n` +
          (user.emailVerified ? "" : "Until you confirm, we send this address only account and security mail. ") +
          `If you did not ${occasion === "welcome" ? "sign up" : "ask for this"}, ignore this email.\n`,
      },
      () => db.delete(emailChangeTokens).where(eq(emailChangeTokens.tokenHash, tokenHash)),
      logger,
    );
  } catch (err) {
    logger?.warn("verification email failed", { user_id: user.id, error: String(err) });
    throw err;
  }
  if (!mail.sent) logger?.warn("verification email not sent: address suppressed meanwhile", { user_id: user.id });
  return mail.sent;
}

/**
 * Applies an email change when its link comes back. The address is proven by this, so it is
 * marked verified; outstanding reset links (sent to the old address) die with the old address.
 *
 * What the click proves about the password depends on who clicks (migrations/0043). Anyone may
 * register, or move their account to, an address that is not theirs and wait for its holder to
 * click a link they never asked for. So the password counts as the address holder's only when the
 * link comes back from inside the account (`signedInAs` is its id: the clicker holds both the
 * inbox and a session); a new address confirmed from outside leaves it unproven, and a sign-up
 * address confirmed from outside leaves it as it was. The same goes for the account's other
 * ways in (its linked sign-ins and sessions, oauth.ts claimOf), so a passwordless account
 * records it too.
 */
export async function confirmEmailChange(env: Bindings, token: string, signedInAs?: string): Promise<UserRow> {
  const tokenHash = await sha256Hex(token);
  const now = nowS();
  const invalid = () => new AppError("INVALID_TOKEN", 400, "The email confirmation link is invalid or has expired.");
  const db = database(env);
  const live = and(eq(emailChangeTokens.tokenHash, tokenHash), isNull(emailChangeTokens.usedAt), gt(emailChangeTokens.expiresAt, now));
  const pending = await db
    .select({ user_id: emailChangeTokens.userId, new_email: emailChangeTokens.newEmail })
    .from(emailChangeTokens)
    .where(live)
    .get();
  if (!pending) {
    const confirmed = await confirmedBefore(env, tokenHash, now);
    if (confirmed) return confirmed;
    throw invalid();
  }
  const taken = await uniquenessErrors(env, null, pending.new_email, pending.user_id);
  if (taken.email) {
    throw new AppError("EMAIL_TAKEN", 409, "Another account confirmed this email address first.", taken);
  }
  const current = await findUserById(env, pending.user_id);
  if (!current) throw invalid();
  const fromInside = signedInAs === pending.user_id;
  const askedBy = askingSession(token);
  const askerLive = askedBy ? sessionNotEnded(pending.user_id, askedBy, now) : undefined;
  // The link is claimed, and applied, in one batch: each write only while the link is still live
  // (the claim last), so a concurrent second use finds it used, and whatever deleted it meanwhile
  // — every session ending, a provider taking over an account a stranger set up on its owner's
  // address — wins over a click authorised before it.
  const stillLive = sql`EXISTS (SELECT 1 FROM ${emailChangeTokens} ct WHERE ct.token_hash = ${tokenHash} AND ct.used_at IS NULL AND ct.expires_at > ${now})`;
  if (current.email.toLowerCase() === pending.new_email.toLowerCase()) {
    // A verification link (sendVerificationEmail): the address the account already uses is proven;
    // nothing else changes (a pending email change and reset links stay as they are).
    const proven = { emailVerified: true, ...(fromInside ? { passwordProven: true } : {}) };
    // And only while the account is still at that address.
    const stillAt = sql`EXISTS (SELECT 1 FROM ${users} cu WHERE cu.id = ${current.id} AND lower(cu.email) = lower(${pending.new_email}))`;
    const [, claimed] = await runBatch(db, [
      db
        .update(users)
        .set({ ...proven, updatedAt: new Date().toISOString() })
        .where(and(eq(users.id, current.id), stillAt, stillLive)),
      db.update(emailChangeTokens).set({ usedAt: now }).where(and(live, stillAt)),
    ]);
    if (changes(claimed) === 0) throw invalid();
    return { ...current, ...proven };
  }
  // An address change lands only while the session that asked for it has not ended.
  const applies = askerLive ? sql`${stillLive} AND ${askerLive}` : stillLive;
  let claimed: unknown;
  try {
    // The claim is the last statement.
    claimed = (
      await runBatch(db, [
        db
          .update(users)
          .set({
            email: pending.new_email,
            emailVerified: true,
            passwordProven: fromInside,
            pendingEmail: null,
            updatedAt: new Date().toISOString(),
          })
          .where(and(eq(users.id, pending.user_id), applies)),
        db.delete(passwordResetTokens).where(and(eq(passwordResetTokens.userId, pending.user_id), applies)),
        forgetTwoFactorResetLinks(env, pending.user_id, applies),
        db
          .delete(emailChangeTokens)
          .where(and(eq(emailChangeTokens.userId, pending.user_id), ne(emailChangeTokens.tokenHash, tokenHash), applies)),
        db.update(emailChangeTokens).set({ usedAt: now }).where(and(live, askerLive)),
      ])
    ).at(-1);
  } catch (err) {
    // Lost a race with another account confirming (or registering) the same address.
    if (err instanceof Error && /UNIQUE/i.test(err.message)) {
      throw new AppError("EMAIL_TAKEN", 409, "Another account confirmed this email address first.", {
        email: ["A user with that email already exists."],
      });
    }
    throw err;
  }
  if (changes(claimed) === 0) throw invalid();
  const user = await findUserById(env, pending.user_id);
  if (!user) throw invalid();
  return user;
}

/**
 * The account a link already confirmed, while that confirmation still stands (the account is at
 * the link's address, verified) and the link has not expired; else null. Its second use is a
 * retry — an answer lost on the way back, or the owner's click after a mail scanner's visit already
 * sent the link — and answers as the first did, changing nothing: the address it names is all it
 * tells, and the link's holder has it already.
 */
async function confirmedBefore(env: Bindings, tokenHash: string, now: number): Promise<UserRow | null> {
  const used = await database(env)
    .select({ userId: emailChangeTokens.userId, newEmail: emailChangeTokens.newEmail })
    .from(emailChangeTokens)
    .where(and(eq(emailChangeTokens.tokenHash, tokenHash), isNotNull(emailChangeTokens.usedAt), gt(emailChangeTokens.expiresAt, now)))
    .get();
  const user = used ? await findUserById(env, used.userId) : null;
  return user?.emailVerified && used && user.email.toLowerCase() === used.newEmail.toLowerCase() ? user : null;
}

/** The session an email-change link names (requestEmailChange), or null: a verification link, or one from before links named it. */
function askingSession(token: string): string | null {
  const id = token.slice(token.lastIndexOf(".") + 1);
  return token.includes(".") && isUuid(id) ? id : null;
}

/** Profile fields a user may edit (the email goes through `requestEmailChange`). */
export interface ProfileChanges {
  first_name?: string;
  last_name?: string;
  bio?: string;
  location?: string;
  website?: string;
  gardening_experience?: string;
  profile_visibility?: string;
}

export async function updateProfile(env: Bindings, userId: string, profile: ProfileChanges): Promise<void> {
  const set = {
    firstName: profile.first_name,
    lastName: profile.last_name,
    bio: profile.bio,
    location: profile.location,
    website: profile.website,
    gardeningExperience: profile.gardening_experience,
    profileVisibility: profile.profile_visibility,
  };
  // drizzle leaves undefined fields out of the SET list; nothing given, nothing written.
  if (Object.values(set).every((value) => value === undefined)) return;
  const db = database(env);
  // Only while the account is active: its name stays beside its forum posts after a deactivation,
  // and a change sent just before one must not land after it.
  const update = db
    .update(users)
    .set({ ...set, updatedAt: new Date().toISOString() })
    .where(and(eq(users.id, userId), eq(users.isActive, true)));
  // The name (shown only while the profile is public: users.ts `byline`) is a published author's
  // byline in the blog's cached public reads (an hour at the edge) and a poster's in the forum's:
  // a changed, removed or now hidden real name must not stay there. Only writers' and posters' names purge.
  const byline = profile.first_name !== undefined || profile.last_name !== undefined || profile.profile_visibility !== undefined;
  const [updated] = await runBatch(db, [
    update,
    ...(byline
      ? [
          purgeBlogReadsStatement(
            sql`EXISTS (SELECT 1 FROM ${blogPosts} WHERE ${blogPosts.authorId} = ${userId} AND ${blogPosts.status} = 'published')`,
          ),
          purgeForumBylines(db, userId),
        ]
      : []),
  ]);
  if (changes(updated) === 0) await refuseIfDeactivated(env, userId);
}

/**
 * Purges the forum's cached reads (users.ts `byline`: the name and avatar beside each topic and
 * post) when the user has posted there, sent with a write that changes their byline.
 */
function purgeForumBylines(db: Database, userId: string) {
  return purgeStatement(
    db,
    "forum",
    sql`(EXISTS (SELECT 1 FROM ${forumTopics} WHERE ${forumTopics.authorId} = ${userId}) OR EXISTS (SELECT 1 FROM ${forumPosts} WHERE ${forumPosts.authorId} = ${userId}))`,
  );
}

/** Validates and stores an avatar in the photo store, points the profile at it, and releases the one it replaces. */
export async function updateAvatar(env: Bindings, userId: string, file: unknown): Promise<void> {
  if (!(file instanceof File)) {
    throw new AppError("VALIDATION_ERROR", 400, "No avatar file provided.", { avatar: ["No file was submitted."] });
  }
  const result = await validateImageUpload(
    { bytes: new Uint8Array(await file.arrayBuffer()), declaredType: file.type, filename: file.name },
    AVATAR_RULES,
  );
  if (!result.ok) {
    const tooLarge = result.code === "FILE_TOO_LARGE";
    throw new AppError(tooLarge ? "FILE_TOO_LARGE" : "INVALID_IMAGE", tooLarge ? 413 : 400, result.message, { avatar: [result.message] });
  }
  // Each avatar is a new photo kept while it is the avatar, the one before released: spent like
  // other uploads (a file refused above costs nothing), and charged to the storage allowance.
  await enforceRateLimit(env, `avatar:user:${userId}`, getConfig(env).AVATAR_RATE_LIMIT);
  const ref = photoRef(result.image);
  const before = await database(env).select({ avatarKey: users.avatarKey }).from(users).where(eq(users.id, userId)).get();
  // Only while the account is active (its avatar stays beside its forum posts after a
  // deactivation); refused, the photo stored for it is released again. The forum's cached pages
  // show a poster's avatar beside their posts: they purge with it, or they would show the old one,
  // whose photo is released just below, for their whole TTL (blog bylines show no avatar).
  await withStoredPhotos(env, userId, [result.image], async () => {
    const db = database(env);
    const [updated] = await runBatch(db, [
      db
        .update(users)
        .set({ avatarKey: ref, updatedAt: new Date().toISOString() })
        .where(and(eq(users.id, userId), eq(users.isActive, true))),
      purgeForumBylines(db, userId),
    ]);
    if (changes(updated) === 0) await refuseIfDeactivated(env, userId);
  });
  // The avatar it replaces is released (kept while anything else still shows it).
  if (before?.avatarKey && before.avatarKey !== ref) await releasePhotoRefs(env, [before.avatarKey]);
}

/** A single-use ticket for opening a WebSocket from a browser, tied to the session that asked. */
export async function issueWsTicket(env: Bindings, userId: string, sessionId: string | undefined): Promise<string> {
  const ticket = randomToken(32);
  await database(env)
    .insert(wsTickets)
    .values({ ticketHash: await sha256Hex(ticket), userId, sessionId: sessionId ?? null, expiresAt: nowS() + WS_TICKET_TTL_S });
  return ticket;
}

/**
 * Consumes a ticket (the first upgrade with it wins; a replay finds it used). The session that
 * issued it must still be live and the account active.
 */
export async function consumeWsTicket(env: Bindings, ticket: string): Promise<{ userId: string; sessionId: string | null } | null> {
  const now = nowS();
  const row = await database(env)
    .update(wsTickets)
    .set({ usedAt: now })
    .where(
      and(
        eq(wsTickets.ticketHash, await sha256Hex(ticket)),
        isNull(wsTickets.usedAt),
        gt(wsTickets.expiresAt, now),
        // SQL for the two correlated checks: the owner is active, the issuing session not ended.
        accountActive(wsTickets.userId),
        sql`(${wsTickets.sessionId} IS NULL OR NOT EXISTS (SELECT 1 FROM revoked_sessions s WHERE s.family_id = ${wsTickets.sessionId}))`,
      ),
    )
    .returning({ userId: wsTickets.userId, sessionId: wsTickets.sessionId })
    .get();
  return row ?? null;
}

/**
 * Deactivates (or reactivates) an account; deactivation ends every session and socket at once.
 * Either way its votes and proposals change whether they count, so the consensus of the requests
 * it took part in is recounted in the same batch: the change and the recount land together or not
 * at all.
 */
export async function setAccountActive(env: Bindings, userId: string, active: boolean, logger?: Logger): Promise<UserRow> {
  const user = await findUserById(env, userId);
  if (!user) throw new AppError("NOT_FOUND", 404, "No such user.");
  // A deleted account is an anonymised row kept for what others built on; nobody can sign in as it.
  if (active && user.deletedAt)
    throw new AppError("INVALID_STATE", 409, "This account was deleted by its owner; it cannot be reactivated.");
  const db = database(env);
  // A deactivation leaves an active administrator, checked in its batch: two admins deactivating
  // each other at once leave one.
  const onlyIf = active ? undefined : keepsAnAdmin(userId);
  const update = db
    .update(users)
    .set({ isActive: active, updatedAt: new Date().toISOString() })
    .where(and(eq(users.id, userId), onlyIf));
  const recount = accountRecountStatements(userId, onlyIf);
  const results = active
    ? await runBatch(db, [update, ...recount])
    : await endEverySession(env, userId, { also: [update, ...recount], onlyIf, logger });
  if (onlyIf && !sessionsEndedIf(results)) throw lastAdmin();
  await tellRecount(env, results.slice(-recount.length), logger);
  return (await findUserById(env, userId))!;
}
