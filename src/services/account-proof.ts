/**
 * The signed-in caller proves it is the account's owner (its password, under the sign-in lockout,
 * or a recent session for an account without one) before a change that could take the account or
 * cannot be undone; and the lockout's notice. Apart from accounts.ts so that the account rules and
 * two-factor sign-in (which both need it) do not import each other.
 */
import { and, eq, isNull, lt, or } from "drizzle-orm";
import type { Config } from "../config";
import { changes, database } from "../db/client";
import { users } from "../db/schema";
import type { Bindings } from "../env";
import { humanDuration } from "../lib/durations";
import { AppError } from "../lib/errors";
import type { Logger } from "../lib/logger";
import { verifyPassword } from "./passwords";
import { beginCodeAttempt, beginLoginAttempt, CODE_LOCK_MAX_S, type LoginAttempt, loginAttemptSucceeded } from "./rate-limits";
import { tellSecurityEvent } from "./security-notices";
import type { UserRow } from "./users";

const nowS = () => Math.floor(Date.now() / 1000);

/**
 * A signed-in caller's password, asked for again before a change that could take the account
 * (a new password, a new email address). It counts against the same lockout as signing in, on
 * the account's own bucket, so a stolen session cannot guess it without limit: the attempts
 * lock the account, and its owner is told, as failed sign-ins do.
 */
export async function checkCurrentPassword(
  env: Bindings,
  config: Config,
  user: UserRow,
  password: string,
  logger?: Logger,
): Promise<boolean> {
  const hash = user.passwordHash;
  if (!hash) return false;
  return (await countedAttempt(env, config, user, async () => (await verifyPassword(password, hash)) || null, logger)) !== null;
}

/**
 * Runs `check` (a password or, with `kind` "code", a second factor asked of the account's holder)
 * as a sign-in attempt on the account's own lockout bucket: reserved before it runs, so
 * concurrent guesses get no more than the threshold; a failure (null) counts, and the one that
 * locks the account tells its owner; a pass is forgiven — with `name`, the name a sign-in's
 * password step was typed under too. Wrong codes make the locks they set grow, and a proven code
 * forgets that growth (rate-limits.ts beginCodeAttempt).
 */
export async function countedAttempt<T>(
  env: Bindings,
  config: Config,
  user: UserRow,
  check: () => Promise<T | null>,
  logger?: Logger,
  name: string | null = null,
  kind: "password" | "code" = "password",
): Promise<T | null> {
  const accountKey = `user:${user.id}`;
  const attempt: LoginAttempt & { lockedUntil?: number | null } =
    kind === "code" ? await beginCodeAttempt(env, config, accountKey) : await beginLoginAttempt(env, config, accountKey);
  const result = await check();
  if (result === null) {
    if (attempt.justLocked) await notifyLockout(env, config, user, logger, attempt.lockedUntil ?? null);
    return null;
  }
  await loginAttemptSucceeded(
    env,
    accountKey,
    name ? { justLocked: attempt.justLocked, name: { key: name, justLocked: false } } : attempt,
    kind === "code",
  );
  return result;
}

/**
 * Tells the owner their account was locked. `codeLockUntil` (when wrong second-factor codes set
 * the lock) says until when: whoever entered them had the password (or a session), so the notice
 * says to change it — the one thing that stops them.
 */
export async function notifyLockout(
  env: Bindings,
  config: Config,
  user: UserRow,
  logger?: Logger,
  codeLockUntil: number | null = null,
): Promise<void> {
  try {
    // One email per lockout period, however many attempts keep arriving.
    const now = nowS();
    const claimed = await database(env)
      .update(users)
      .set({ lockoutNotifiedAt: now })
      .where(and(eq(users.id, user.id), or(isNull(users.lockoutNotifiedAt), lt(users.lockoutNotifiedAt, now - config.LOCKOUT_DURATION_S))));
    if (changes(claimed) === 0) return;
    const detail =
      codeLockUntil === null
        ? `We saw ${config.LOCKOUT_THRESHOLD} failed sign-in attempts on your account and locked it ` +
          `for ${Math.round(config.LOCKOUT_DURATION_S / 60)} minutes. If this was not you, consider resetting your password.`
        : `Wrong two-factor codes were entered for your account, by someone who got past your password (or is signed in as ` +
          `you), so we locked it for ${humanDuration((codeLockUntil - Date.now()) / 1000)}; while wrong codes go on, each lock lasts ` +
          `twice as long as the one before, up to ${humanDuration(CODE_LOCK_MAX_S)}. If this was not you, someone knows your ` +
          `password: change it now (signed in, or with "Forgot password"), which also signs out every session.`;
    await tellSecurityEvent(env, user, "account_locked", detail, logger);
  } catch (err) {
    logger?.warn("lockout email failed", { user_id: user.id, error: String(err) });
  }
}

/** How recent a passwordless account's sign-in must be for it to change its email address. */
export const RECENT_SIGN_IN_MS = 10 * 60_000;

/**
 * The signed-in caller proves it is the account's owner before a change that hands the account to
 * someone else or cannot be undone (moving it to another inbox, deleting it). A bare access token
 * (stolen by XSS, left on a shared device) must not be enough: an account with a password proves
 * it with the password (the lockout counts wrong ones). An account that signs in only through a
 * provider has no password to ask for, so it proves it by a session begun within RECENT_SIGN_IN_MS
 * (a stolen token from an older session, kept alive by refreshing, is not).
 * `action` completes the sentences of the refusals ("… to <action>").
 */
export async function proveAccountOwner(
  env: Bindings,
  config: Config,
  user: UserRow,
  proof: { currentPassword: string | undefined; sessionStartedAt?: number | undefined },
  action: string,
  logger?: Logger,
  now = Date.now(),
): Promise<void> {
  if (!user.passwordHash) {
    const started = proof.sessionStartedAt;
    if (started === undefined || !Number.isFinite(started) || now - started > RECENT_SIGN_IN_MS) {
      throw new AppError(
        "FORBIDDEN",
        403,
        `Sign in again (with the provider you use) to ${action}: you can do it within ${RECENT_SIGN_IN_MS / 60_000} minutes of signing in.`,
      );
    }
  } else if (!(proof.currentPassword && (await checkCurrentPassword(env, config, user, proof.currentPassword, logger)))) {
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", {
      current_password: [proof.currentPassword ? "Your password was entered incorrectly." : `Enter your current password to ${action}.`],
    });
  }
}
