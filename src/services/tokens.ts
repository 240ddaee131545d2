/**
 * JWT access and refresh tokens (jose, HS256 with JWT_SECRET).
 *
 * Signed with JWT_SECRET alone; verified with it or, during a rotation, with a secret of
 * JWT_SECRET_PREVIOUS (lib/derived-keys.ts), so a rotation signs nobody out: the next refresh
 * hands out a pair under the current secret.
 *
 * Verification pins the algorithm (no `none`, no switching to an asymmetric alg with the
 * secret as a "public key"), and checks `iss`, `aud`, `exp` and our `type` claim, so a refresh
 * token can never be used as an access token or the other way round.
 *
 * Refresh tokens rotate: each use revokes the presented token and issues a new one in the same
 * family. Presenting an already-revoked refresh token means it was stolen (or replayed), so the
 * whole family is revoked and the user must sign in again.
 */
import { errors as joseErrors, SignJWT } from "jose";
import { and, eq, gt, inArray, isNull, lt, type SQL, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import type { Config } from "../config";
import { changes, database, runBatch, type Statement } from "../db/client";
import {
  emailChangeTokens,
  oauthStates,
  passwordResetTokens,
  twoFactorResets,
  refreshTokens,
  revokedSessions,
  revokedTokens,
  users,
  wsTickets,
} from "../db/schema";
import type { Bindings } from "../env";
import { rawSigningKey, rawVerifyingKeys } from "../lib/derived-keys";
import { AppError } from "../lib/errors";
import { jwtVerifyWithAny } from "../lib/jwt-keys";
import { uuidv7, uuidv7Timestamp } from "../lib/ids";
import { type SessionDevice, UNKNOWN_CLIENT } from "../lib/session-device";
import type { TokenClaims, TokenType } from "../lib/token-claims";

export type { TokenClaims, TokenType } from "../lib/token-claims";

const ALGORITHM = "HS256";

/**
 * Two tabs (or a retrying phone) may refresh with the same token at once. Inside this window a
 * second use of a just-rotated token gets the very pair the first use received instead of being
 * treated as theft; after it, reuse revokes the family. Only the latest rotation is forgiven: once
 * the replacement has itself been used, the old token is theft even inside the window.
 *
 * 60 s: a phone whose answer was lost often retries only after its network is back (30 s offline
 * is common), and 20 s signed those users out. It is the ceiling hosted servers allow for the same
 * grace (Cognito's RetryGracePeriodSeconds, Okta's grace period: at most 60 s), and RFC 9700
 * §4.14.2's point is kept: a token rotated away and then used by a second party still ends the
 * session, at most 60 s later than without a window. A thief inside it gets nothing new either:
 * the same pair, in a family the owner still holds, whose next rotation by either party makes the
 * other's token theft.
 */
export const REFRESH_REUSE_WINDOW_S = 60;

/** What a refresh answers once its session is over, whichever way it ended: sign in again. */
const SESSION_ENDED = "This session has ended. Please sign in again.";
const SESSION_EXPIRED = "This session has expired. Please sign in again.";

/** revoked_sessions rows outlive the longest access token a deployment may configure (1 day). */
const MAX_ACCESS_TTL_S = 86_400;

export interface TokenPair {
  access: string;
  refresh: string;
  accessExpiresIn: number;
  refreshExpiresIn: number;
  accessJti: string;
  refreshJti: string;
  familyId: string;
}

async function sign(
  config: Config,
  claims: { sub: string; type: TokenType; fam?: string; sid?: string },
  ttlS: number,
  now: number,
  jti = uuidv7(),
) {
  const token = await new SignJWT({
    type: claims.type,
    ...(claims.fam ? { fam: claims.fam } : {}),
    ...(claims.sid ? { sid: claims.sid } : {}),
  })
    .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
    .setSubject(claims.sub)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlS)
    .setIssuer(config.JWT_ISSUER)
    .setAudience(config.JWT_AUDIENCE)
    .sign(await rawSigningKey(config));
  return { token, jti };
}

/**
 * Verifies signature (under the current secret or a previous one), algorithm, issuer, audience,
 * expiry and type; throws AppError 401.
 */
export async function verifyToken(config: Config, token: string, expected: TokenType): Promise<TokenClaims> {
  try {
    const { payload } = await jwtVerifyWithAny(token, await rawVerifyingKeys(config), {
      algorithms: [ALGORITHM],
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      requiredClaims: ["sub", "jti", "iat", "exp"],
    });
    if (payload.type !== expected) throw new AppError("TOKEN_INVALID", 401, "Token has the wrong type.");
    return payload as TokenClaims;
  } catch (err) {
    if (err instanceof AppError) throw err;
    // An expired access token is refreshed; an expired refresh token cannot be: its session is
    // over, and a client that only read the code would try to refresh it again.
    if (err instanceof joseErrors.JWTExpired) {
      throw new AppError("TOKEN_EXPIRED", 401, expected === "refresh" ? SESSION_EXPIRED : "Token has expired.");
    }
    throw new AppError("TOKEN_INVALID", 401, "Token is invalid.");
  }
}

const nowS = () => Math.floor(Date.now() / 1000);

/**
 * Signs an access + refresh pair in `familyId` (nothing is stored yet). HS256 is deterministic,
 * so the same jtis and `now` give byte-identical tokens (the refresh reuse window relies on it).
 */
async function signPair(
  config: Config,
  userId: string,
  familyId: string,
  now: number,
  jtis?: { access: string; refresh: string },
): Promise<TokenPair> {
  const access = await sign(config, { sub: userId, type: "access", sid: familyId }, config.JWT_ACCESS_TTL_S, now, jtis?.access);
  const refresh = await sign(config, { sub: userId, type: "refresh", fam: familyId }, config.JWT_REFRESH_TTL_S, now, jtis?.refresh);
  return {
    access: access.token,
    refresh: refresh.token,
    accessExpiresIn: config.JWT_ACCESS_TTL_S,
    refreshExpiresIn: config.JWT_REFRESH_TTL_S,
    accessJti: access.jti,
    refreshJti: refresh.jti,
    familyId,
  };
}

/**
 * A new session's pair, signed now, and the statement that records its refresh token only while
 * `guard` (a condition on the `users` row) holds — for a sign-in whose own conditional write must
 * start the session in the same atomic batch. Signed before the batch, so a password change or
 * sign-out everywhere landing after it finds the family and refuses tokens issued before it.
 * `device`: what its owner will recognise the session by (auth/sessions/); null: unknown.
 */
export async function guardedTokenPair(
  env: Bindings,
  config: Config,
  userId: string,
  guard: SQL | undefined,
  device: SessionDevice | null,
): Promise<{ pair: TokenPair; record: Statement }> {
  const now = nowS();
  const pair = await signPair(config, userId, uuidv7(), now);
  const db = database(env);
  const record = db.insert(refreshTokens).select(
    db
      .select({
        jti: sql<string>`${pair.refreshJti}`.as("jti"),
        userId: users.id,
        familyId: sql<string>`${pair.familyId}`.as("family_id"),
        expiresAt: sql<number>`${now + config.JWT_REFRESH_TTL_S}`.as("expires_at"),
        revokedAt: sql<null>`NULL`.as("revoked_at"),
        replacedBy: sql<null>`NULL`.as("replaced_by"),
        replacedAccessJti: sql<null>`NULL`.as("replaced_access_jti"),
        createdAt: sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`.as("created_at"),
        client: sql<string | null>`${device?.client ?? null}`.as("client"),
        country: sql<string | null>`${device?.country ?? null}`.as("country"),
      })
      .from(users)
      .where(and(eq(users.id, userId), guard)),
  );
  return { pair, record };
}

/**
 * Issues an access + refresh pair and records the refresh token (new family unless given).
 * `device`: what its owner will recognise the session by (auth/sessions/); null: unknown.
 */
export async function issueTokenPair(
  env: Bindings,
  config: Config,
  userId: string,
  device: SessionDevice | null,
  familyId = uuidv7(),
): Promise<TokenPair> {
  const now = nowS();
  const pair = await signPair(config, userId, familyId, now);
  await database(env)
    .insert(refreshTokens)
    .values({
      jti: pair.refreshJti,
      userId,
      familyId,
      expiresAt: now + config.JWT_REFRESH_TTL_S,
      client: device?.client ?? null,
      country: device?.country ?? null,
    });
  return pair;
}

/** A new (or, inside the reuse window, the same) pair and whose it is. */
export type RotationOutcome = TokenPair & { userId: string };

/**
 * Rotates a refresh token. The new row is inserted only if the old one was still live, in the
 * same atomic batch that revokes it, so two concurrent refreshes with one token cannot both win:
 * the loser either falls inside the reuse window (and gets the winner's pair) or is treated as
 * reuse, which revokes the family. `onFamilyRevoked` lets the caller end that session's sockets;
 * `stolen` is true only when a token that was rotated away came back (theft), not for a session's
 * last token after it ended (a sign-out, say) or when the account refuses it.
 *
 * `device`: the refreshing client. It labels only a session that has no label yet (one begun
 * before sessions were labelled, migration 0045), and only with a label it can tell: a known label
 * is never replaced, so whoever holds a token can never relabel the owner's session.
 *
 * `overLimit`: the session has spent its refresh budget. Nothing new is issued (that error is
 * thrown), but a token that ends a live session still ends it: a thief who keeps the budget spent
 * by rotating must not keep the owner's return with a rotated-away token from being seen as theft.
 * A retry inside the reuse window still gets the pair it missed: that issues nothing new.
 */
export async function rotateRefreshToken(
  env: Bindings,
  config: Config,
  token: string,
  device: SessionDevice | null,
  onFamilyRevoked?: (userId: string, familyId: string, stolen: boolean) => Promise<void>,
  overLimit?: AppError,
): Promise<RotationOutcome> {
  const claims = await verifyToken(config, token, "refresh");
  const db = database(env);
  const next = alias(refreshTokens, "next");
  const row = await db
    .select({
      userId: refreshTokens.userId,
      familyId: refreshTokens.familyId,
      revokedAt: refreshTokens.revokedAt,
      replacedBy: refreshTokens.replacedBy,
      replacedAccessJti: refreshTokens.replacedAccessJti,
      isActive: users.isActive,
      tokensValidAfter: users.tokensValidAfter,
      nextRevokedAt: next.revokedAt,
      revokedFamily: revokedSessions.familyId,
      client: refreshTokens.client,
      country: refreshTokens.country,
    })
    .from(refreshTokens)
    .innerJoin(users, eq(users.id, refreshTokens.userId))
    .leftJoin(next, eq(next.jti, refreshTokens.replacedBy))
    .leftJoin(revokedSessions, eq(revokedSessions.familyId, refreshTokens.familyId))
    .where(eq(refreshTokens.jti, claims.jti))
    .get();
  if (!row || row.userId !== claims.sub) throw new AppError("TOKEN_INVALID", 401, "Token is invalid.");
  const familyRevoked = row.revokedFamily !== null;
  const revokeAndRefuse = async (error: AppError, stolen = false): Promise<never> => {
    await revokeFamily(env, config, row.familyId);
    await onFamilyRevoked?.(row.userId, row.familyId, stolen);
    throw error;
  };
  // A token rotated away was used; a session's last token (never replaced) was not — its session
  // ended (signed out, ended from auth/sessions/, or for theft) and the message says only that.
  const reused = (rotated: boolean) =>
    new AppError("TOKEN_REUSED", 401, rotated ? "Refresh token has already been used. Please sign in again." : SESSION_ENDED);
  // Over the budget (`overLimit`), only what ends a live session goes on: it is thrown where a
  // pair would be handed out and for a session already ended, and nowhere else.
  if (familyRevoked && overLimit) throw overLimit;
  // Ended elsewhere (a password change or reset, sign-out everywhere, deactivation, or this
  // session signed out from another device): the app must sign in again, and the message says so.
  if (!row.isActive || issuedBefore(claims, row.tokensValidAfter)) {
    return revokeAndRefuse(new AppError("TOKEN_INVALID", 401, SESSION_ENDED));
  }
  if (row.revokedAt !== null) {
    // Rotated moments ago, and its replacement is still the live one: a concurrent tab, not a thief.
    const withinWindow = nowS() - row.revokedAt <= REFRESH_REUSE_WINDOW_S;
    if (withinWindow && row.replacedBy && row.replacedAccessJti && row.nextRevokedAt === null && !familyRevoked) {
      // Not refused over the budget: this mints nothing, it repeats an answer that was lost. A 429
      // here would send the phone back after Retry-After, outside the window, and sign it out.
      const pair = await signPair(config, row.userId, row.familyId, row.revokedAt, {
        access: row.replacedAccessJti,
        refresh: row.replacedBy,
      });
      return { ...pair, userId: row.userId };
    }
    // Theft when a token that was rotated away comes back; a signed-out session's last token
    // (never replaced) is only late.
    return revokeAndRefuse(reused(row.replacedBy !== null), row.replacedBy !== null);
  }
  if (familyRevoked) return revokeAndRefuse(new AppError("TOKEN_INVALID", 401, SESSION_ENDED));
  if (overLimit) throw overLimit;

  const now = nowS();
  const pair = await signPair(config, row.userId, row.familyId, now);
  const label = row.client === null ? unlabelledSessionDevice(device) : { client: row.client, country: row.country };
  const [inserted] = await runBatch(db, [
    // SQL because the insert is conditional: only while the presented token is still live and
    // its family not ended, decided inside the same transaction as the revocation below. The
    // session's client and country go on with it: the live token is the one auth/sessions/ reads.
    db.insert(refreshTokens).select(
      sql`SELECT ${pair.refreshJti}, ${row.userId}, ${row.familyId}, ${now + config.JWT_REFRESH_TTL_S}, NULL, NULL, NULL,
                 strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ${label.client}, ${label.country}
          WHERE EXISTS (SELECT 1 FROM refresh_tokens WHERE jti = ${claims.jti} AND revoked_at IS NULL)
            AND NOT EXISTS (SELECT 1 FROM revoked_sessions WHERE family_id = ${row.familyId})`,
    ),
    db
      .update(refreshTokens)
      .set({ revokedAt: now, replacedBy: pair.refreshJti, replacedAccessJti: pair.accessJti })
      .where(and(eq(refreshTokens.jti, claims.jti), isNull(refreshTokens.revokedAt))),
  ]);
  if (changes(inserted) === 0) {
    // Lost a race with a concurrent refresh of the same token: the winner's pair is in the row now.
    return rotateRefreshToken(env, config, token, device, onFamilyRevoked, overLimit);
  }
  return { ...pair, userId: row.userId };
}

/**
 * What a session with no label (begun before migration 0045) takes from the refresh that finds it
 * so: the refreshing client and its country, together, as a sign-in would have recorded them. A
 * refresh that sends no User-Agent gives no label, so the session stays unlabelled for a later one.
 * The label is the client that holds the session's token — the owner's, or a thief's who used it
 * first (whose next refresh by the owner is then taken for theft and ends the session anyway) —
 * and the country is Cloudflare's, not the caller's to choose.
 */
function unlabelledSessionDevice(device: SessionDevice | null): { client: string | null; country: string | null } {
  if (!device || device.client === UNKNOWN_CLIENT) return { client: null, country: null };
  return device;
}

/**
 * Ends one session: its refresh tokens are revoked and the family is remembered until its last
 * access token would have expired, so those access tokens are refused at once too.
 */
export async function revokeFamily(env: Bindings, config: Config, familyId: string): Promise<void> {
  await runBatch(database(env), revokeFamilyStatements(env, config, familyId));
}

export function revokeFamilyStatements(env: Bindings, config: Config, familyId: string): Statement[] {
  const db = database(env);
  const now = nowS();
  return [
    db
      .update(refreshTokens)
      .set({ revokedAt: now })
      .where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt))),
    db
      .insert(revokedSessions)
      .values({ familyId, expiresAt: now + config.JWT_ACCESS_TTL_S })
      .onConflictDoNothing(),
  ];
}

/**
 * Sign-out everywhere: every refresh token revoked, every access token issued so far refused —
 * by time (tokens_valid_after) and by session (every family in revoked_sessions, which also
 * stops a refresh racing this batch from minting a pair in a family that just ended). With
 * `onlyIf` (a self-contained condition), only while it holds.
 */
export function revokeAllForUserStatements(env: Bindings, userId: string, onlyIf?: SQL): Statement[] {
  const db = database(env);
  const now = nowS();
  return [
    db
      .insert(revokedSessions)
      .select(
        db
          .selectDistinct({ familyId: refreshTokens.familyId, expiresAt: sql<number>`${now + MAX_ACCESS_TTL_S}`.as("expires_at") })
          .from(refreshTokens)
          .where(and(eq(refreshTokens.userId, userId), gt(refreshTokens.expiresAt, now), onlyIf)),
      )
      .onConflictDoNothing(),
    db
      .update(refreshTokens)
      .set({ revokedAt: now })
      .where(and(eq(refreshTokens.userId, userId), isNull(refreshTokens.revokedAt), onlyIf)),
    db
      .update(users)
      .set({ tokensValidAfter: Date.now() })
      .where(and(eq(users.id, userId), onlyIf)),
  ];
}

/**
 * Was the token issued before `validAfterMs` (a sign-out-everywhere)? `iat` has one-second
 * resolution, so a token from the same second as a password change would survive it; the jti
 * is a UUID v7 whose first 48 bits are its issue time in milliseconds, which closes that gap.
 */
export function issuedBefore(claims: Pick<TokenClaims, "jti" | "iat">, validAfterMs: number): boolean {
  return issuedAtMs(claims) < validAfterMs;
}

/** When a token was issued, in ms: its UUIDv7 jti's stamp, else its `iat`. */
export function issuedAtMs(claims: Pick<TokenClaims, "jti" | "iat">): number {
  const stamped = uuidv7Timestamp(claims.jti);
  return Number.isNaN(stamped) ? claims.iat * 1000 : stamped;
}

/** Remembers a revoked access-token jti until the token would expire anyway. */
export async function revokeAccessToken(env: Bindings, jti: string, exp: number): Promise<void> {
  await database(env).insert(revokedTokens).values({ jti, expiresAt: exp }).onConflictDoNothing();
}

/** A user's `pending_email` that no unused, unexpired email-change link names any more (migration 0056 cleared the older ones). */
const pendingEmailWithoutLiveLink = (now: number) =>
  sql`${users.pendingEmail} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${emailChangeTokens} WHERE ${emailChangeTokens.userId} = ${users.id} AND ${emailChangeTokens.newEmail} = ${users.pendingEmail} AND ${emailChangeTokens.usedAt} IS NULL AND ${emailChangeTokens.expiresAt} >= ${now})`;

/** Cron: forget revocations, tokens and tickets that have expired. */
export async function purgeExpiredTokens(env: Bindings): Promise<void> {
  const db = database(env);
  const now = nowS();
  await runBatch(db, [
    db.delete(revokedTokens).where(lt(revokedTokens.expiresAt, now)),
    db.delete(revokedSessions).where(lt(revokedSessions.expiresAt, now)),
    // An email change whose link ran out unconfirmed is no longer waiting: the profile stops
    // showing it (unless a live link still names that address), before its link is forgotten.
    db
      .update(users)
      .set({ pendingEmail: null })
      .where(
        and(
          inArray(
            users.id,
            db.select({ id: emailChangeTokens.userId }).from(emailChangeTokens).where(lt(emailChangeTokens.expiresAt, now)),
          ),
          pendingEmailWithoutLiveLink(now),
        ),
      ),
    db.delete(emailChangeTokens).where(lt(emailChangeTokens.expiresAt, now)),
    db.delete(refreshTokens).where(lt(refreshTokens.expiresAt, now)),
    db.delete(passwordResetTokens).where(lt(passwordResetTokens.expiresAt, now)),
    // Two-factor reset links never followed (a followed one is the reset's record, kept).
    db.delete(twoFactorResets).where(and(isNull(twoFactorResets.startedAt), lt(twoFactorResets.linkExpiresAt, now))),
    db.delete(wsTickets).where(lt(wsTickets.expiresAt, now)),
    db.delete(oauthStates).where(lt(oauthStates.expiresAt, now)),
  ]);
}
