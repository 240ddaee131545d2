/**
 * JWT access and refresh tokens (jose, HS256 with JWT_SECRET).
 *
 * Verification pins the algorithm (no `none`, no switching to an asymmetric alg with the
 * secret as a "public key"), and checks `iss`, `aud`, `exp` and our `type` claim, so a refresh
 * token can never be used as an access token or the other way round.
 *
 * Refresh tokens rotate: each use revokes the presented token and issues a new one in the same
 * family. Presenting an already-revoked refresh token means it was stolen (or replayed), so the
 * whole family is revoked and the user must sign in again.
 */
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from "jose";
import type { Config } from "../config";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import { uuidv7, uuidv7Timestamp } from "../lib/ids";

export type TokenType = "access" | "refresh";
const ALGORITHM = "HS256";

export interface TokenClaims extends JWTPayload {
  sub: string;
  jti: string;
  iat: number;
  exp: number;
  type: TokenType;
  /** Refresh tokens only: the rotation family. */
  fam?: string;
}

export interface TokenPair {
  access: string;
  refresh: string;
  accessExpiresIn: number;
  refreshExpiresIn: number;
  accessJti: string;
  refreshJti: string;
  familyId: string;
}

const keyCache = new Map<string, Uint8Array>();
function signingKey(config: Config): Uint8Array {
  let key = keyCache.get(config.JWT_SECRET);
  if (!key) {
    key = new TextEncoder().encode(config.JWT_SECRET);
    keyCache.set(config.JWT_SECRET, key);
  }
  return key;
}

async function sign(config: Config, claims: { sub: string; type: TokenType; fam?: string }, ttlS: number, now: number) {
  const jti = uuidv7();
  const token = await new SignJWT({ type: claims.type, ...(claims.fam ? { fam: claims.fam } : {}) })
    .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
    .setSubject(claims.sub)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlS)
    .setIssuer(config.JWT_ISSUER)
    .setAudience(config.JWT_AUDIENCE)
    .sign(signingKey(config));
  return { token, jti };
}

/** Verifies signature, algorithm, issuer, audience, expiry and type; throws AppError 401. */
export async function verifyToken(config: Config, token: string, expected: TokenType): Promise<TokenClaims> {
  try {
    const { payload } = await jwtVerify(token, signingKey(config), {
      algorithms: [ALGORITHM],
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      requiredClaims: ["sub", "jti", "iat", "exp"],
    });
    if (payload.type !== expected) throw new AppError("TOKEN_INVALID", 401, "Token has the wrong type.");
    return payload as TokenClaims;
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (err instanceof joseErrors.JWTExpired) throw new AppError("TOKEN_EXPIRED", 401, "Token has expired.");
    throw new AppError("TOKEN_INVALID", 401, "Token is invalid.");
  }
}

const nowS = () => Math.floor(Date.now() / 1000);

/** Signs a new access + refresh pair in `familyId` (nothing is stored yet). */
async function signPair(config: Config, userId: string, familyId: string, now: number): Promise<TokenPair> {
  const access = await sign(config, { sub: userId, type: "access" }, config.JWT_ACCESS_TTL_S, now);
  const refresh = await sign(config, { sub: userId, type: "refresh", fam: familyId }, config.JWT_REFRESH_TTL_S, now);
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

/** Issues an access + refresh pair and records the refresh token (new family unless given). */
export async function issueTokenPair(env: Bindings, config: Config, userId: string, familyId = uuidv7()): Promise<TokenPair> {
  const now = nowS();
  const pair = await signPair(config, userId, familyId, now);
  await env.DB.prepare("INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at) VALUES (?, ?, ?, ?)")
    .bind(pair.refreshJti, userId, familyId, now + config.JWT_REFRESH_TTL_S)
    .run();
  return pair;
}

/**
 * Rotates a refresh token. The new row is inserted only if the old one was still live, in the
 * same atomic batch that revokes it, so two concurrent refreshes with one token cannot both win:
 * the loser is treated as reuse and revokes the family.
 */
export async function rotateRefreshToken(env: Bindings, config: Config, token: string): Promise<TokenPair & { userId: string }> {
  const claims = await verifyToken(config, token, "refresh");
  const row = await env.DB.prepare(
    `SELECT r.user_id, r.family_id, r.revoked_at, u.is_active, u.tokens_valid_after
       FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.jti = ?`,
  )
    .bind(claims.jti)
    .first<{ user_id: string; family_id: string; revoked_at: number | null; is_active: number; tokens_valid_after: number }>();
  if (!row || row.user_id !== claims.sub) throw new AppError("TOKEN_INVALID", 401, "Token is invalid.");
  if (row.revoked_at !== null) {
    await revokeFamily(env, row.family_id);
    throw new AppError("TOKEN_REUSED", 401, "Refresh token has already been used. Please sign in again.");
  }
  if (!row.is_active || issuedBefore(claims, row.tokens_valid_after)) {
    await revokeFamily(env, row.family_id);
    throw new AppError("TOKEN_INVALID", 401, "Token is invalid.");
  }

  const now = nowS();
  const pair = await signPair(config, row.user_id, row.family_id, now);
  const [inserted] = await env.DB.batch([
    env.DB.prepare(
      `INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at)
       SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM refresh_tokens WHERE jti = ? AND revoked_at IS NULL)`,
    ).bind(pair.refreshJti, row.user_id, row.family_id, now + config.JWT_REFRESH_TTL_S, claims.jti),
    env.DB.prepare("UPDATE refresh_tokens SET revoked_at = ?, replaced_by = ? WHERE jti = ? AND revoked_at IS NULL").bind(
      now,
      pair.refreshJti,
      claims.jti,
    ),
  ]);
  if (!inserted || (inserted.meta.changes ?? 0) === 0) {
    await revokeFamily(env, row.family_id);
    throw new AppError("TOKEN_REUSED", 401, "Refresh token has already been used. Please sign in again.");
  }
  return { ...pair, userId: row.user_id };
}

export async function revokeFamily(env: Bindings, familyId: string): Promise<void> {
  await env.DB.prepare("UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL")
    .bind(nowS(), familyId)
    .run();
}

/** Sign-out everywhere: every refresh token revoked, every access token issued so far refused. */
export function revokeAllForUserStatements(env: Bindings, userId: string): D1PreparedStatement[] {
  return [
    env.DB.prepare("UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL").bind(nowS(), userId),
    env.DB.prepare("UPDATE users SET tokens_valid_after = ? WHERE id = ?").bind(Date.now(), userId),
  ];
}

/**
 * Was the token issued before `validAfterMs` (a sign-out-everywhere)? `iat` has one-second
 * resolution, so a token from the same second as a password change would survive it; the jti
 * is a UUID v7 whose first 48 bits are its issue time in milliseconds, which closes that gap.
 */
export function issuedBefore(claims: Pick<TokenClaims, "jti" | "iat">, validAfterMs: number): boolean {
  const issuedMs = uuidv7Timestamp(claims.jti);
  return (Number.isNaN(issuedMs) ? claims.iat * 1000 : issuedMs) < validAfterMs;
}

/** Remembers a revoked access-token jti until the token would expire anyway. */
export async function revokeAccessToken(env: Bindings, jti: string, exp: number): Promise<void> {
  await env.DB.prepare("INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING").bind(jti, exp).run();
}

/** Cron: forget revocations and refresh rows whose tokens have expired. */
export async function purgeExpiredTokens(env: Bindings): Promise<void> {
  const now = nowS();
  await env.DB.batch([
    env.DB.prepare("DELETE FROM revoked_tokens WHERE expires_at < ?").bind(now),
    env.DB.prepare("DELETE FROM refresh_tokens WHERE expires_at < ?").bind(now),
    env.DB.prepare("DELETE FROM password_reset_tokens WHERE expires_at < ?").bind(now),
    env.DB.prepare("DELETE FROM ws_tickets WHERE expires_at < ?").bind(now),
    env.DB.prepare("DELETE FROM oauth_states WHERE expires_at < ?").bind(now),
  ]);
}
