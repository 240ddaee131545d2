/**
 * Optional two-factor sign-in with an authenticator app (TOTP, RFC 6238: SHA-1, 6 digits, 30 s).
 *
 * - Setup (the password asked again) makes a pending secret; the first right code turns it on,
 *   answers 10 single-use recovery codes once, and ends every session (the caller continues in
 *   a new one): whoever was signed in before must now pass the second step too.
 * - A right password on such an account starts no session: it answers 401 TWO_FACTOR_REQUIRED
 *   with a `two_factor_token` — signed, 5 minutes, bound to the account and its password hash,
 *   spent by the sign-in it completes. `verify` with that token and a code (or a recovery code)
 *   answers what login/ or token/ would have. The password attempt stays counted against the
 *   account's lockout until the second step succeeds, and every wrong code counts in the same
 *   bucket: knowing the password buys no more guesses than not knowing it. And fewer over time:
 *   every lock a wrong code sets lasts twice the one before (up to 24 h), and every 10th wrong code
 *   locks however slowly they come, until a right code (rate-limits.ts beginCodeAttempt); the
 *   owner is told at each, and to change the password. Wrong passwords' locks never grow.
 * - A TOTP code is accepted once: the last accepted time step is kept, and only later steps pass
 *   (±1 step of clock skew). A recovery code is removed as it is used, in the same write.
 * - The secret is stored encrypted (AES-GCM, a key derived from JWT_SECRET, the account's id as
 *   associated data); recovery codes as HMACs. Neither is answered again after setup or exported.
 *   Both still work under a secret of JWT_SECRET_PREVIOUS; a secret opened under one is sealed
 *   again under JWT_SECRET when next used, and housekeeping does the rest (`resealTwoFactorSecrets`).
 *   One no listed secret opens (dropped too early) answers 503 TWO_FACTOR_UNAVAILABLE and is
 *   logged for the operator (`openSecret`): not a wrong code, and not counted toward the lockout.
 * - A password reset does not turn it off (a reset link is one factor: the inbox); disabling asks
 *   for the password and a code. A completed reset lifts a lock wrong codes set once until a right
 *   code, and the next wrong code locks again (accounts.ts, RateLimiter.liftLockForReset). Without the
 *   app and the codes, the owner turns it off through a two-factor reset: the password and the
 *   mailbox to start, then a 72-hour wait the owner can cancel (two-factor-reset.ts).
 * - An outdated password hash is upgraded as at any sign-in, but only once the code is right: the
 *   password step makes the new hash and keeps it beside the secret, bound to the hash it replaces
 *   (`keepRehash`); `verify` writes it in the batch that starts the session.
 */
import { and, eq, isNotNull, isNull, sql } from "drizzle-orm";
import { errors as joseErrors, SignJWT } from "jose";
import type { Config } from "../config";
import { changes, database, runBatch, type Statement } from "../db/client";
import { revokedTokens, twoFactor, users } from "../db/schema";
import type { Bindings } from "../env";
import { acceptedSecrets, keyId, openingKeys, sealingKey, signingKey, verifiedByAny, verifyingKeys } from "../lib/derived-keys";
import { AppError } from "../lib/errors";
import { jwtVerifyWithAny } from "../lib/jwt-keys";
import { base64Decode, base64Encode, hexDecode, sha256Hex, toHex } from "../lib/hash";
import { uuidv7 } from "../lib/ids";
import type { Logger } from "../lib/logger";
import type { SessionDevice } from "../lib/session-device";
import type { TokenClaims } from "../lib/token-claims";
import { base32Encode, matchingStep, otpauthUrl, TOTP_SECRET_BYTES } from "../lib/totp";
import { countedAttempt, proveAccountOwner } from "./account-proof";
import { hashPassword, needsRehash } from "./passwords";
import { tellSecurityEvent } from "./security-notices";
import { endEverySession, sessionStillLive } from "./sessions";
import { guardedTokenPair, type TokenPair } from "./tokens";
import { findUserById, type UserRow } from "./users";

export const TWO_FACTOR_ISSUER = "Plant Community";
/** How long the step between the password and the code may take. */
export const TWO_FACTOR_TOKEN_TTL_S = 300;
export const RECOVERY_CODE_COUNT = 10;

/** Which sign-in started the challenge, and so what its completion answers (cookies or a bearer pair). */
export type SignInVia = "login" | "token";

/** The second factor a caller offers: an authenticator code or a recovery code. */
export interface SecondFactor {
  code?: string | undefined;
  recoveryCode?: string | undefined;
}

type TwoFactorRow = typeof twoFactor.$inferSelect;

// ---- Storage --------------------------------------------------------------------------------

const SECRET_PURPOSE = "two-factor-secret";
const RECOVERY_PURPOSE = "two-factor-recovery";
const encoder = new TextEncoder();

/**
 * `v2.<key id>.<iv>.<ciphertext>`, base64, sealed under the current JWT_SECRET whose key id it
 * names (the rows still sealed under a previous secret are found by it); the account id is the
 * associated data (a row copied to another account does not decrypt). `v1.<iv>.<ciphertext>`
 * rows, from before key ids, are opened by trying each accepted secret.
 */
async function encryptSecret(config: Config, userId: string, secret: Uint8Array): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const { id, key } = await sealingKey(config, SECRET_PURPOSE);
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(userId) }, key, secret);
  return `v2.${id}.${base64Encode(iv)}.${base64Encode(new Uint8Array(sealed))}`;
}

/** The prefix of a secret sealed under the current JWT_SECRET. */
async function currentSealPrefix(config: Config): Promise<string> {
  return `v2.${await keyId(config.JWT_SECRET)}.`;
}

/**
 * Opens a stored secret under the current JWT_SECRET or a previous one. `stale`: it was not sealed
 * under the current one (or not in the current format), so it should be sealed again. Throws when
 * no accepted secret opens it (sealed under a secret no longer listed).
 */
async function decryptSecret(config: Config, userId: string, stored: string): Promise<{ secret: Uint8Array; stale: boolean }> {
  const parts = stored.split(".");
  const [version] = parts;
  const [kid, iv, sealed] =
    version === "v2" && parts.length === 4 ? parts.slice(1) : version === "v1" && parts.length === 3 ? [null, ...parts.slice(1)] : [];
  if (!iv || !sealed) throw new Error("two-factor secret in an unknown format");
  for (const candidate of await openingKeys(config, SECRET_PURPOSE)) {
    if (kid !== null && candidate.id !== kid) continue;
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: base64Decode(iv), additionalData: encoder.encode(userId) },
        candidate.key,
        base64Decode(sealed),
      );
      return { secret: new Uint8Array(plain), stale: kid === null || !candidate.current };
    } catch {
      // Another accepted secret may have sealed it (a v1 row names none).
    }
  }
  throw new Error("two-factor secret sealed under a secret that is neither JWT_SECRET nor in JWT_SECRET_PREVIOUS");
}

/**
 * `decryptSecret` for a sign-in or a setup: a secret no accepted JWT_SECRET opens is the operator's
 * misconfiguration (a secret dropped from JWT_SECRET_PREVIOUS too early), not the caller's input,
 * so it answers 503 TWO_FACTOR_UNAVAILABLE and logs what to do, before any attempt is counted.
 */
async function openSecret(
  config: Config,
  userId: string,
  stored: string,
  logger?: Logger,
): Promise<{ secret: Uint8Array; stale: boolean }> {
  try {
    return await decryptSecret(config, userId, stored);
  } catch (err) {
    logger?.error("two-factor secret no accepted JWT_SECRET opens", {
      user_id: userId,
      error: String(err),
      advice:
        "List the JWT_SECRET it was sealed under in JWT_SECRET_PREVIOUS again (housekeeping then seals it under JWT_SECRET), or delete this two_factor row (its owner sets it up anew).",
    });
    throw new AppError(
      "TWO_FACTOR_UNAVAILABLE",
      503,
      "Codes from your authenticator app cannot be checked right now because of a problem on our side. Use a recovery code, or try again later.",
    );
  }
}

/** Recovery codes as typed: any case, spaces and dashes ignored. */
function normaliseRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** A recovery code as stored: `<key id>.<HMAC, hex>` under the current JWT_SECRET. */
async function recoveryCodeHash(config: Config, code: string): Promise<string> {
  const key = await signingKey(config, RECOVERY_PURPOSE);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(normaliseRecoveryCode(code))));
  return `${await keyId(config.JWT_SECRET)}.${toHex(mac)}`;
}

/**
 * Which of the stored recovery codes `code` is, checked under the current JWT_SECRET or a previous
 * one (each compared in constant time); null when none. Stored codes are `<key id>.<hex>`, or a
 * bare hex HMAC from before key ids (tried under each accepted secret).
 */
async function matchingRecoveryCode(config: Config, stored: string[], code: string): Promise<string | null> {
  const verifying = await verifyingKeys(config, RECOVERY_PURPOSE);
  const keys = await Promise.all(acceptedSecrets(config).map(async (secret, i) => ({ id: await keyId(secret), key: verifying[i]! })));
  const typed = encoder.encode(normaliseRecoveryCode(code));
  for (const entry of stored) {
    const dot = entry.indexOf(".");
    const kid = dot === -1 ? null : entry.slice(0, dot);
    const mac = hexDecode(entry.slice(dot + 1));
    if (!mac) continue;
    const candidates = keys.filter((k) => kid === null || k.id === kid).map((k) => k.key);
    if (await verifiedByAny(candidates, mac, typed)) return entry;
  }
  return null;
}

/** Ten fresh codes (50 bits each, `xxxxx-xxxxx`) and their HMACs as stored. */
async function newRecoveryCodes(config: Config): Promise<{ codes: string[]; stored: string }> {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const text = base32Encode(crypto.getRandomValues(new Uint8Array(7)))
      .slice(0, 10)
      .toLowerCase();
    return `${text.slice(0, 5)}-${text.slice(5)}`;
  });
  const hashes = await Promise.all(codes.map((code) => recoveryCodeHash(config, code)));
  return { codes, stored: JSON.stringify(hashes) };
}

async function twoFactorRow(env: Bindings, userId: string): Promise<TwoFactorRow | null> {
  return (await database(env).select().from(twoFactor).where(eq(twoFactor.userId, userId)).get()) ?? null;
}

export interface TwoFactorStatus {
  enabled: boolean;
  enabledAt: string | null;
  recoveryCodesLeft: number;
}

/** Whether it is on, since when, and how many recovery codes are unused (never the secret or the codes). */
export async function twoFactorStatus(env: Bindings, userId: string): Promise<TwoFactorStatus> {
  const row = await database(env)
    .select({ enabledAt: twoFactor.enabledAt, left: sql<number>`json_array_length(${twoFactor.recoveryCodes})` })
    .from(twoFactor)
    .where(eq(twoFactor.userId, userId))
    .get();
  const enabledAt = row?.enabledAt ?? null;
  return { enabled: enabledAt !== null, enabledAt, recoveryCodesLeft: enabledAt === null ? 0 : Number(row?.left ?? 0) };
}

/** Whether it is on: asked at every password sign-in, so one primary-key read of one column. */
export async function twoFactorEnabled(env: Bindings, userId: string): Promise<boolean> {
  const row = await database(env).select({ enabledAt: twoFactor.enabledAt }).from(twoFactor).where(eq(twoFactor.userId, userId)).get();
  return (row?.enabledAt ?? null) !== null;
}

// ---- Codes ----------------------------------------------------------------------------------

/**
 * Accepts an authenticator code once: the step it matched is recorded only if later than the last
 * one accepted. A secret opened under a previous JWT_SECRET is sealed again under the current one
 * in the same write (which holds only while the row still has the sealed text that was read).
 */
async function spendTotp(
  env: Bindings,
  config: Config,
  row: TwoFactorRow,
  opened: { secret: Uint8Array; stale: boolean },
  code: string,
  now: number,
): Promise<boolean> {
  const { secret, stale } = opened;
  const step = await matchingStep(secret, code.replace(/\s/g, ""), now, row.lastStep);
  if (step === null) return false;
  const spent = await database(env)
    .update(twoFactor)
    .set({ lastStep: step, ...(stale ? { secret: await encryptSecret(config, row.userId, secret) } : {}) })
    .where(
      and(
        eq(twoFactor.userId, row.userId),
        eq(twoFactor.secret, row.secret),
        sql`(${twoFactor.lastStep} IS NULL OR ${twoFactor.lastStep} < ${step})`,
      ),
    );
  return changes(spent) > 0;
}

/**
 * Removes a recovery code in the write that checks it is still there: of two uses at once, one
 * wins. Returns the codes left, or null. The codes left stay as they were stored: only their HMACs
 * are kept, so ones made under a previous JWT_SECRET cannot be hashed again under the current one
 * (they match while that secret is in JWT_SECRET_PREVIOUS; README, rotation).
 */
async function spendRecoveryCode(env: Bindings, config: Config, userId: string, code: string): Promise<number | null> {
  const db = database(env);
  const current = await db
    .select({ codes: twoFactor.recoveryCodes })
    .from(twoFactor)
    .where(and(eq(twoFactor.userId, userId), isNotNull(twoFactor.enabledAt)))
    .get();
  if (!current) return null;
  const entry = await matchingRecoveryCode(config, JSON.parse(current.codes) as string[], code);
  if (entry === null) return null;
  const row = await db.get<{ remaining: number }>(sql`
    UPDATE two_factor
       SET recovery_codes = (SELECT json_group_array(value) FROM json_each(two_factor.recovery_codes) WHERE value <> ${entry})
     WHERE user_id = ${userId} AND enabled_at IS NOT NULL
       AND EXISTS (SELECT 1 FROM json_each(two_factor.recovery_codes) WHERE value = ${entry})
    RETURNING json_array_length(recovery_codes) AS remaining`);
  return row ? Number(row.remaining) : null;
}

const wrongCode = (status: 400 | 401, factor: SecondFactor) => {
  const field = factor.recoveryCode !== undefined && factor.code === undefined ? "recovery_code" : "code";
  const message =
    field === "code"
      ? "The code is wrong or was used already: enter the current code from your app."
      : "That recovery code is wrong or used.";
  return new AppError("INVALID_TWO_FACTOR_CODE", status, message, status === 400 ? { [field]: [message] } : undefined);
};

/**
 * Checks the second factor of an account that has it on, counted as a sign-in attempt on the
 * account's lockout bucket (429 ACCOUNT_LOCKED while locked; a wrong code counts as a failure, and
 * the one that locks the account tells its owner). Returns how it was proven.
 */
async function proveSecondFactor(
  env: Bindings,
  config: Config,
  user: UserRow,
  row: TwoFactorRow,
  factor: SecondFactor,
  status: 400 | 401,
  logger?: Logger,
  now = Date.now(),
  name: string | null = null,
): Promise<{ by: "code" | "recovery_code"; recoveryCodesLeft: number | null }> {
  // Opened before the attempt is reserved: a secret the server cannot open is not a wrong code.
  const opened = factor.code !== undefined ? await openSecret(config, user.id, row.secret, logger) : null;
  // A pass forgives the password step of this sign-in with it (and the name it was typed under).
  const proven = await countedAttempt(
    env,
    config,
    user,
    async (): Promise<{ by: "code" | "recovery_code"; recoveryCodesLeft: number | null } | null> => {
      if (factor.code !== undefined && opened)
        return (await spendTotp(env, config, row, opened, factor.code, now)) ? { by: "code", recoveryCodesLeft: null } : null;
      if (factor.recoveryCode === undefined) return null;
      const left = await spendRecoveryCode(env, config, user.id, factor.recoveryCode);
      return left === null ? null : { by: "recovery_code", recoveryCodesLeft: left };
    },
    logger,
    name,
    "code",
  );
  if (!proven) throw wrongCode(status, factor);
  if (proven.by === "recovery_code") {
    await tellSecurityEvent(env, user, "recovery_code_used", String(proven.recoveryCodesLeft), logger);
  }
  return proven;
}

// ---- Finishing a rotation of JWT_SECRET -----------------------------------------------------

/** Rows looked at per page, and pages per housekeeping run (a run stays short; the next goes on). */
const RESEAL_PAGE = 50;
const RESEAL_PAGES_PER_RUN = 10;

export interface TwoFactorRotation {
  /** Secrets sealed again under JWT_SECRET by this run. */
  resealed: number;
  /** Secrets no accepted secret opens (sealed under one no longer listed): their owners cannot use a code. */
  unreadable: number;
  /** Secrets still not sealed under JWT_SECRET after this run (the unreadable ones included). */
  secretsLeft: number;
  /**
   * Accounts with recovery codes made under a previous secret (or before key ids were stored):
   * they match only while that secret is in JWT_SECRET_PREVIOUS, and cannot be hashed again (only
   * their HMACs are kept); their owners keep signing in with the app's codes.
   */
  recoveryCodeSetsLeft: number;
}

/**
 * Housekeeping: seals two-factor secrets still sealed under a previous JWT_SECRET (or in the format
 * from before key ids) again under the current one, in pages, each write holding only while the
 * row still has the text that was read. Once `secretsLeft` is 0 no authenticator code needs
 * JWT_SECRET_PREVIOUS any more.
 */
export async function resealTwoFactorSecrets(env: Bindings, config: Config, logger?: Logger): Promise<TwoFactorRotation> {
  const db = database(env);
  const prefix = await currentSealPrefix(config);
  const notCurrent = sql`substr(${twoFactor.secret}, 1, ${prefix.length}) <> ${prefix}`;
  let resealed = 0;
  const unreadable: string[] = [];
  // From a random account id on, then from the start up to it: rows no accepted secret opens stay
  // behind, and must not take every run's pages from the rows after them.
  const start = crypto.randomUUID();
  let cursor = start;
  let wrapped = false;
  for (let page = 0; page < RESEAL_PAGES_PER_RUN; page++) {
    const rows = await db
      .select({ userId: twoFactor.userId, secret: twoFactor.secret })
      .from(twoFactor)
      .where(and(notCurrent, sql`${twoFactor.userId} > ${cursor}`, wrapped ? sql`${twoFactor.userId} <= ${start}` : undefined))
      .orderBy(twoFactor.userId)
      .limit(RESEAL_PAGE);
    const writes: Statement[] = [];
    for (const row of rows) {
      let secret: Uint8Array;
      try {
        ({ secret } = await decryptSecret(config, row.userId, row.secret));
      } catch {
        unreadable.push(row.userId);
        continue;
      }
      const sealed = await encryptSecret(config, row.userId, secret);
      writes.push(
        db
          .update(twoFactor)
          .set({ secret: sealed })
          .where(and(eq(twoFactor.userId, row.userId), eq(twoFactor.secret, row.secret))),
      );
    }
    if (writes.length > 0) {
      const results = await runBatch(db, writes);
      resealed += results.reduce((n: number, result) => n + changes(result), 0);
    }
    if (rows.length === RESEAL_PAGE) cursor = rows[rows.length - 1]!.userId;
    else if (!wrapped) [wrapped, cursor] = [true, ""];
    else break;
  }
  if (unreadable.length > 0) {
    logger?.warn("two-factor secrets no accepted JWT_SECRET opens", {
      count: unreadable.length,
      user_ids: unreadable.slice(0, 20),
      advice:
        "Sealed under a secret no longer set: list it in JWT_SECRET_PREVIOUS again, or delete these two_factor rows (their owners set it up anew).",
    });
  }
  const currentKid = prefix.slice(3, -1);
  const left = await db
    .select({
      secrets: sql<number>`coalesce(sum(${notCurrent}), 0)`,
      recovery: sql<number>`coalesce(sum(${twoFactor.enabledAt} IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(${twoFactor.recoveryCodes}) WHERE substr(value, 1, ${currentKid.length + 1}) <> ${`${currentKid}.`})), 0)`,
    })
    .from(twoFactor)
    .get();
  return {
    resealed,
    unreadable: unreadable.length,
    secretsLeft: Number(left?.secrets ?? 0),
    recoveryCodeSetsLeft: Number(left?.recovery ?? 0),
  };
}

// ---- Setting up, turning on and off ---------------------------------------------------------

const notWithoutPassword = () =>
  new AppError(
    "INVALID_STATE",
    409,
    "Your account signs in through Google, GitHub or Firebase only, whose own two-step verification applies: set a password first (Forgot password) to add a code here.",
  );

/**
 * A new pending secret (replacing a pending one): not active until `enableTwoFactor` sees a code
 * from it. The owner proves it is them first (the password again): a stolen session must not put
 * its own authenticator between the owner and their account.
 */
export async function beginTwoFactorSetup(
  env: Bindings,
  config: Config,
  user: UserRow,
  proof: { currentPassword: string | undefined; sessionStartedAt?: number | undefined },
  logger?: Logger,
): Promise<{ secret: string; otpauthUrl: string }> {
  if (!user.passwordHash) throw notWithoutPassword();
  await proveAccountOwner(env, config, user, proof, "set up two-factor sign-in", logger);
  const secret = crypto.getRandomValues(new Uint8Array(TOTP_SECRET_BYTES));
  const sealed = await encryptSecret(config, user.id, secret);
  const written = await database(env)
    .insert(twoFactor)
    .values({ userId: user.id, secret: sealed })
    .onConflictDoUpdate({
      target: twoFactor.userId,
      set: { secret: sealed, lastStep: null, recoveryCodes: "[]", createdAt: sql`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` },
      setWhere: isNull(twoFactor.enabledAt),
    });
  if (changes(written) === 0) throw new AppError("INVALID_STATE", 409, "Two-factor sign-in is on already: turn it off first.");
  const text = base32Encode(secret);
  return { secret: text, otpauthUrl: otpauthUrl(TWO_FACTOR_ISSUER, user.username, text) };
}

/**
 * Turns the pending secret on with a code from it. Answers the recovery codes (once: only their
 * HMACs are kept) and a new session for the caller: every session before it ends, so nobody stays
 * signed in without having passed the second step.
 */
export async function enableTwoFactor(
  env: Bindings,
  config: Config,
  user: UserRow,
  code: string,
  device: SessionDevice | null,
  /** The access token that asked: it is turned on only while that session is live. */
  session: Pick<TokenClaims, "jti" | "iat" | "sid">,
  logger?: Logger,
  now = Date.now(),
): Promise<{ recoveryCodes: string[]; pair: TokenPair }> {
  const row = await twoFactorRow(env, user.id);
  if (!row) throw new AppError("INVALID_STATE", 409, "Set up two-factor sign-in first (POST auth/2fa/setup/).");
  if (row.enabledAt !== null) throw new AppError("INVALID_STATE", 409, "Two-factor sign-in is on already.");
  // Counted on the account's lockout as every other code is: a stolen access token must not guess
  // the code of a pending setup without limit (to turn it on with a secret the owner may never
  // have scanned, keep the recovery codes and trade the token for a fresh session).
  const { secret, stale } = await openSecret(config, user.id, row.secret, logger);
  const step = await countedAttempt(
    env,
    config,
    user,
    () => matchingStep(secret, code.replace(/\s/g, ""), now, row.lastStep),
    logger,
    null,
    "code",
  );
  if (step === null) throw wrongCode(400, { code });
  const { codes, stored } = await newRecoveryCodes(config);
  // Only while the session that asked is live and the password it was set up under is still the
  // account's: every session ending meanwhile (a password change or reset, a provider taking over
  // an account a stranger set up on its owner's address) must not find the stranger's
  // authenticator turned on after it, nor the stranger handed a new session.
  const db = database(env);
  const passwordStill = eq(users.passwordHash, user.passwordHash ?? "");
  const ended = () => new AppError("TOKEN_INVALID", 401, "Your session ended or your password changed meanwhile. Sign in again.");
  const [turnedOn] = await runBatch(db, [
    db
      .update(twoFactor)
      // A setup begun before a rotation is sealed again under the current JWT_SECRET.
      .set({
        enabledAt: new Date(now).toISOString(),
        lastStep: step,
        recoveryCodes: stored,
        ...(stale ? { secret: await encryptSecret(config, user.id, secret) } : {}),
      })
      .where(
        and(
          eq(twoFactor.userId, user.id),
          eq(twoFactor.secret, row.secret),
          isNull(twoFactor.enabledAt),
          sessionStillLive(user.id, session),
          sql`EXISTS (SELECT 1 FROM ${users} WHERE ${users.id} = ${user.id} AND ${passwordStill})`,
        ),
      ),
  ]);
  if (changes(turnedOn) === 0) {
    const again = await twoFactorRow(env, user.id);
    if (again?.secret === row.secret && again.enabledAt === null) throw ended();
    throw new AppError("INVALID_STATE", 409, "The setup changed meanwhile: start it again.");
  }
  await endEverySession(env, user.id, { logger });
  await tellSecurityEvent(env, user, "two_factor_enabled", "", logger);
  // The caller's new session, only under the password it was turned on under.
  const { pair, record } = await guardedTokenPair(env, config, user.id, passwordStill, device);
  const [started] = await runBatch(db, [record]);
  if (changes(started) === 0) throw ended();
  return { recoveryCodes: codes, pair };
}

async function enabledRow(env: Bindings, userId: string): Promise<TwoFactorRow> {
  const row = await twoFactorRow(env, userId);
  if (!row || row.enabledAt === null) throw new AppError("INVALID_STATE", 409, "Two-factor sign-in is not on.");
  return row;
}

/**
 * A change that hands the account to whoever holds another inbox (its email address), or that
 * destroys it (account deletion), asks an account with two-factor sign-in on for the second factor
 * too, as turning it off does: from a new inbox a password reset ends every session and a
 * two-factor reset turns the second factor off with every notice going there, and a deletion cannot
 * be undone, so the password and a stolen session must not be enough. Nothing is asked of an
 * account without it; no factor at all is a 400 naming `code`, not a wrong code.
 */
export async function proveSecondFactorIfOn(
  env: Bindings,
  config: Config,
  user: UserRow,
  factor: SecondFactor,
  action: string,
  logger?: Logger,
): Promise<void> {
  const row = await twoFactorRow(env, user.id);
  if (!row || row.enabledAt === null) return;
  if (factor.code === undefined && factor.recoveryCode === undefined) {
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", {
      code: [`Two-factor sign-in is on: enter the code from your authenticator app (or a recovery code) to ${action}.`],
    });
  }
  await proveSecondFactor(env, config, user, row, factor, 400, logger);
}

/** Turns it off: the password (or a recent sign-in) and a code or recovery code. */
export async function disableTwoFactor(
  env: Bindings,
  config: Config,
  user: UserRow,
  input: SecondFactor & { currentPassword: string | undefined; sessionStartedAt?: number | undefined },
  logger?: Logger,
): Promise<void> {
  const row = await enabledRow(env, user.id);
  await proveAccountOwner(env, config, user, input, "turn off two-factor sign-in", logger);
  await proveSecondFactor(env, config, user, row, input, 400, logger);
  await database(env).delete(twoFactor).where(eq(twoFactor.userId, user.id));
  await tellSecurityEvent(env, user, "two_factor_disabled", "", logger);
}

/** Ten new recovery codes in place of the old ones, for a code from the app. */
export async function replaceRecoveryCodes(
  env: Bindings,
  config: Config,
  user: UserRow,
  factor: SecondFactor,
  logger?: Logger,
): Promise<string[]> {
  const row = await enabledRow(env, user.id);
  await proveSecondFactor(env, config, user, row, factor, 400, logger);
  const { codes, stored } = await newRecoveryCodes(config);
  const replaced = await database(env)
    .update(twoFactor)
    .set({ recoveryCodes: stored })
    .where(and(eq(twoFactor.userId, user.id), isNotNull(twoFactor.enabledAt)));
  if (changes(replaced) === 0) throw new AppError("INVALID_STATE", 409, "Two-factor sign-in is not on.");
  await tellSecurityEvent(env, user, "recovery_codes_replaced", "", logger);
  return codes;
}

// ---- Signing in -----------------------------------------------------------------------------

const CHALLENGE_PURPOSE = "two-factor-challenge";

/** Binds a challenge to the password hash it was issued under: a password change or reset since spends it. */
async function passwordFingerprint(passwordHash: string | null): Promise<string> {
  return (await sha256Hex(`two-factor\u0000${passwordHash ?? ""}`)).slice(0, 32);
}

/**
 * A right password on an account with the second factor on, whose stored hash is outdated: the
 * hash in today's parameters is made now, while the password is at hand, and kept server-side
 * beside the second factor (never in the token the client holds), bound to the hash it replaces.
 * Nothing changes until `completeTwoFactorSignIn` has the second factor proven.
 */
export async function keepRehash(env: Bindings, user: UserRow, password: string): Promise<void> {
  if (!user.passwordHash || !needsRehash(user.passwordHash)) return;
  await database(env)
    .update(twoFactor)
    .set({ rehash: await hashPassword(password), rehashOf: await passwordFingerprint(user.passwordHash) })
    .where(and(eq(twoFactor.userId, user.id), isNotNull(twoFactor.enabledAt)));
}

/**
 * The 401 TWO_FACTOR_REQUIRED a right password answers on an account with the second factor on,
 * carrying the token `verify` completes. `name` is the lockout name the password was typed under.
 */
export async function twoFactorRequired(
  config: Config,
  user: UserRow,
  via: SignInVia,
  name: string | null,
  now = Date.now(),
): Promise<AppError> {
  const iat = Math.floor(now / 1000);
  const token = await new SignJWT({
    type: "two_factor",
    via,
    pwd: await passwordFingerprint(user.passwordHash),
    ...(name ? { nk: name } : {}),
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(user.id)
    .setJti(uuidv7(now))
    .setIssuedAt(iat)
    .setExpirationTime(iat + TWO_FACTOR_TOKEN_TTL_S)
    .setIssuer(config.JWT_ISSUER)
    .setAudience(config.JWT_AUDIENCE)
    .sign(await signingKey(config, CHALLENGE_PURPOSE));
  return new AppError(
    "TWO_FACTOR_REQUIRED",
    401,
    "Enter the code from your authenticator app (or a recovery code) to finish signing in.",
    undefined,
    undefined,
    { two_factor_token: token, expires_in: TWO_FACTOR_TOKEN_TTL_S },
  );
}

const tokenInvalid = () =>
  new AppError("TWO_FACTOR_TOKEN_INVALID", 401, "This sign-in has expired or was used already: sign in with your password again.");

interface ChallengeClaims {
  sub: string;
  jti: string;
  exp: number;
  via: SignInVia;
  pwd: string;
  nk?: string;
}

async function readChallenge(config: Config, token: string): Promise<ChallengeClaims> {
  try {
    const { payload } = await jwtVerifyWithAny(token, await verifyingKeys(config, CHALLENGE_PURPOSE), {
      algorithms: ["HS256"],
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      requiredClaims: ["sub", "jti", "iat", "exp"],
    });
    if (payload.type !== "two_factor" || (payload.via !== "login" && payload.via !== "token") || typeof payload.pwd !== "string") {
      throw tokenInvalid();
    }
    return payload as unknown as ChallengeClaims;
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (err instanceof joseErrors.JOSEError) throw tokenInvalid();
    throw err;
  }
}

/**
 * A challenge token (the password step passed) that is still good for the second step: signed by
 * us, unexpired, unspent, for an active account whose password is still the one it was issued
 * under and whose second factor is still on. TWO_FACTOR_TOKEN_INVALID otherwise.
 */
export async function liveChallenge(
  env: Bindings,
  config: Config,
  token: string,
): Promise<{ claims: ChallengeClaims; user: UserRow & { passwordHash: string }; row: TwoFactorRow }> {
  const claims = await readChallenge(config, token);
  const user = await findUserById(env, claims.sub);
  if (!user?.isActive || !user.passwordHash || (await passwordFingerprint(user.passwordHash)) !== claims.pwd) throw tokenInvalid();
  const spentAlready = await database(env)
    .select({ jti: revokedTokens.jti })
    .from(revokedTokens)
    .where(eq(revokedTokens.jti, claims.jti))
    .get();
  if (spentAlready) throw tokenInvalid();
  const row = await twoFactorRow(env, user.id);
  if (!row || row.enabledAt === null) throw tokenInvalid();
  return { claims, user: { ...user, passwordHash: user.passwordHash }, row };
}

/**
 * The second step of a sign-in: the challenge token and a code (or recovery code). Starts the
 * session login/ or token/ would have started — only while the account is active, its password
 * the one the challenge was issued under, the second factor still on, and the token unspent,
 * checked in the same batch that records the session and spends the token. An outdated password
 * hash is replaced in that batch, under the same condition, by the one its password step kept
 * (`keepRehash`) for the hash the challenge was issued under: a wrong code writes nothing.
 */
export async function completeTwoFactorSignIn(
  env: Bindings,
  config: Config,
  input: SecondFactor & { token: string; device: SessionDevice | null },
  logger?: Logger,
  now = Date.now(),
): Promise<{ user: UserRow; pair: TokenPair; via: SignInVia }> {
  const { claims, user, row } = await liveChallenge(env, config, input.token);
  const db = database(env);
  await proveSecondFactor(env, config, user, row, input, 401, logger, now, claims.nk ?? null);

  const still = and(
    eq(users.passwordHash, user.passwordHash),
    eq(users.isActive, true),
    sql`EXISTS (SELECT 1 FROM ${twoFactor} WHERE ${twoFactor.userId} = ${user.id} AND ${twoFactor.enabledAt} IS NOT NULL)`,
    sql`NOT EXISTS (SELECT 1 FROM ${revokedTokens} WHERE ${revokedTokens.jti} = ${claims.jti})`,
  );
  const { pair, record } = await guardedTokenPair(env, config, user.id, still, input.device);
  const lastLogin = new Date().toISOString();
  // Only a new hash made from a password checked against the hash the account has now (the one
  // the challenge names): one kept for an earlier password must never write that password back.
  const rehashed = needsRehash(user.passwordHash) && row.rehash !== null && row.rehashOf === claims.pwd ? { passwordHash: row.rehash } : {};
  // The session first, then the last sign-in and the new hash (their guard says the token is
  // unspent, and the hash is still the one checked: the rehash changes the hash the guard names),
  // then the token is spent and the kept hash forgotten.
  const [started] = await runBatch(db, [
    record,
    db
      .update(users)
      .set({ lastLogin, ...rehashed })
      .where(and(eq(users.id, user.id), still)),
    db.insert(revokedTokens).values({ jti: claims.jti, expiresAt: claims.exp }).onConflictDoNothing(),
    ...(rehashed.passwordHash
      ? [
          db
            .update(twoFactor)
            .set({ rehash: null, rehashOf: null })
            .where(and(eq(twoFactor.userId, user.id), eq(twoFactor.rehashOf, claims.pwd))),
        ]
      : []),
  ]);
  if (changes(started) === 0) throw tokenInvalid();
  return { user: { ...user, lastLogin, ...rehashed }, pair, via: claims.via };
}
