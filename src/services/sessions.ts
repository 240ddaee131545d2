/**
 * Ending sessions everywhere they live. A session is one refresh-token family; its access tokens
 * carry its id (`sid`), and so do the WebSockets it opened (in the user's UserHub). Ending a
 * session revokes its refresh tokens, refuses its access tokens at once (revoked_sessions) and
 * closes its sockets with 4401 — so a signed-out tab stops receiving private events within the
 * round trip of one RPC, not when a 15-minute access token runs out.
 */
import type { SessionScope } from "../../durable-objects/user-hub-protocol";
import { and, desc, eq, gt, isNull, lte, notExists, type SQL, sql } from "drizzle-orm";
import type { Config } from "../config";
import { batchRows, bindingOf, database, runBatch, type Statement } from "../db/client";
import {
  calendarFeeds,
  emailChangeTokens,
  pushSubscriptions,
  refreshTokens,
  revokedSessions,
  revokedTokens,
  users,
  wsTickets,
} from "../db/schema";
import type { AuthenticatedUser, Bindings } from "../env";
import { AppError } from "../lib/errors";
import { uuidv7Timestamp } from "../lib/ids";
import { UNKNOWN_CLIENT } from "../lib/session-device";
import type { Logger } from "../lib/logger";
import { userHub } from "./progress";
import { issuedAtMs, issuedBefore, revokeAllForUserStatements, revokeFamilyStatements, type TokenClaims, verifyToken } from "./tokens";

/**
 * Closes the user's sockets in `scope`. A hub that cannot be reached is logged, not thrown: the
 * tokens are already refused, and a socket can do nothing but listen.
 */
export async function closeSessionSockets(env: Bindings, userId: string, scope: SessionScope, logger?: Logger): Promise<number> {
  try {
    return await userHub(env, userId).closeSessions(scope);
  } catch (err) {
    logger?.warn("closing session sockets failed", { user_id: userId, error: String(err) });
    return 0;
  }
}

/**
 * Sign-out of one session, or a family revoked for refresh-token reuse (`stolen`). The push
 * devices the session subscribed go with it: a signed-out browser must not keep showing the
 * account's notifications. So does the email change it asked for (emailChangeEndsWith). A stolen
 * session also loses the calendar URL it issued; a normal sign-out keeps it (the URL lives in a
 * calendar app, not in the browser that asked for it).
 */
export async function endSession(
  env: Bindings,
  config: Config,
  userId: string,
  familyId: string,
  options: { stolen?: boolean; logger?: Logger } = {},
): Promise<void> {
  const db = database(env);
  await runBatch(db, [
    ...revokeFamilyStatements(env, config, familyId),
    db.delete(pushSubscriptions).where(and(eq(pushSubscriptions.userId, userId), eq(pushSubscriptions.sessionId, familyId))),
    ...emailChangeEndsWith(env, userId, familyId),
    ...(options.stolen
      ? [db.delete(calendarFeeds).where(and(eq(calendarFeeds.userId, userId), eq(calendarFeeds.sessionId, familyId)))]
      : []),
  ]);
  await closeSessionSockets(env, userId, { sessionId: familyId }, options.logger);
}

/**
 * The email change the session `sessionId` asked for is cancelled with it: its link could no
 * longer move the account (confirmEmailChange), so the profile must not go on showing it as
 * waiting — the owner who ended an intruder's session would still read "an email change is
 * waiting for" the intruder's address. `pending_email` is cleared only while it still names that
 * change: a newer change, asked from another session, replaced this one's links, so nothing of
 * this session's is found and the newer change stays. Links without a session (verification
 * links, and change links from before migration 0055) are left as they are.
 */
function emailChangeEndsWith(env: Bindings, userId: string, sessionId: string): Statement[] {
  const db = database(env);
  return [
    db
      .update(users)
      .set({ pendingEmail: null })
      .where(
        and(
          eq(users.id, userId),
          sql`EXISTS (SELECT 1 FROM ${emailChangeTokens} ec WHERE ec.user_id = ${userId} AND ec.session_id = ${sessionId}
            AND ec.used_at IS NULL AND ec.new_email = ${users.pendingEmail})`,
        ),
      ),
    db.delete(emailChangeTokens).where(and(eq(emailChangeTokens.userId, userId), eq(emailChangeTokens.sessionId, sessionId))),
  ];
}

/**
 * Every session of the user ends (sign-out everywhere, password change or reset, takeover by a
 * verified provider, deactivation): tokens, sockets, unspent socket tickets, pending email
 * changes, and the standing channels a session could have set up to keep reading the account —
 * Web Push subscriptions (notification text, to any endpoint) and the calendar feed's URL.
 * `also` are writes that must happen in the same atomic batch; the batch's results are returned
 * (the `also` statements' last). With `onlyIf` (a self-contained SQL condition — an EXISTS over
 * the account's row, say — that the batch's own writes before `also` do not change), nothing of
 * this lands unless it holds when the batch runs: for a change decided on an earlier read, which a
 * write landing meanwhile must be able to refuse; `also` conditions its own statements. `first`
 * run before everything (before `onlyIf` is read), for a condition the batch's own writes would
 * change — a session still live, say: a `first` write that lands only while it holds leaves a mark
 * that `onlyIf` then reads; their results are not returned.
 */
export async function endEverySession(
  env: Bindings,
  userId: string,
  options: { also?: (Statement | SQL)[]; onlyIf?: SQL; first?: (Statement | SQL)[]; logger?: Logger } = {},
): Promise<unknown[]> {
  const db = database(env);
  const { onlyIf } = options;
  const first = options.first ?? [];
  const all = await runBatch(db, [
    ...first,
    // Whether `onlyIf` held, read at the start of the batch (sessionsEndedIf reads it).
    ...(onlyIf ? [sql`SELECT 1 AS held WHERE ${onlyIf}`] : []),
    ...revokeAllForUserStatements(env, userId, onlyIf),
    // Whatever was handed out under those sessions goes with them: unspent socket tickets and
    // pending email changes (an intruder's change must not survive the owner signing out).
    db.delete(wsTickets).where(and(eq(wsTickets.userId, userId), onlyIf)),
    db.delete(emailChangeTokens).where(and(eq(emailChangeTokens.userId, userId), onlyIf)),
    db
      .update(users)
      .set({ pendingEmail: null })
      .where(and(eq(users.id, userId), onlyIf)),
    // An intruder's device or URL must not keep receiving the account's notifications and
    // calendar after the owner has signed everyone out; the owner's own devices subscribe again
    // when they sign in.
    db.delete(pushSubscriptions).where(and(eq(pushSubscriptions.userId, userId), onlyIf)),
    db.delete(calendarFeeds).where(and(eq(calendarFeeds.userId, userId), onlyIf)),
    ...(options.also ?? []),
  ]);
  const results = all.slice(first.length);
  if (!onlyIf || sessionsEndedIf(results)) await closeSessionSockets(env, userId, {}, options.logger);
  return results;
}

/** Of endEverySession's results with `onlyIf`: whether the condition held, so that the sessions ended. */
export function sessionsEndedIf(results: unknown[]): boolean {
  return batchRows(results[0]).length > 0;
}

/**
 * Whether a socket's session is still live — the account active, the session not ended, nor
 * every session since its credential was issued — read
 * from the primary database, never a replica or the request's D1 session. The upgrade checked
 * its credential before the hub accepted the socket; a sign-out landing in between closes the
 * hub's sockets before this one joins, so the socket asks again once it has joined. The session
 * is ended in D1 before its sockets are closed, so one of the two always catches it.
 */
export async function socketSessionLive(
  env: Bindings,
  userId: string,
  sessionId: string | null,
  /** When the socket's credential was issued (ms), for "every session ended" (tokens_valid_after); null: unknown. */
  issuedAtMs: number | null,
): Promise<boolean> {
  const row = await database({ DB: bindingOf(env.DB) })
    .select({ id: users.id })
    .from(users)
    .where(
      and(
        eq(users.id, userId),
        eq(users.isActive, true),
        sql`NOT EXISTS (SELECT 1 FROM ${revokedSessions} WHERE ${revokedSessions.familyId} = ${sessionId ?? ""})`,
        issuedAtMs === null ? undefined : lte(users.tokensValidAfter, issuedAtMs),
      ),
    )
    .get();
  return row !== undefined;
}

/**
 * Resolves an access token to a live user: one D1 read covering revocation (of the token and of
 * its session) and deactivation. Throws 401 TOKEN_INVALID otherwise.
 */
export async function authenticateAccessToken(
  env: Bindings,
  config: Config,
  token: string,
): Promise<{ user: AuthenticatedUser; claims: TokenClaims }> {
  const claims = await verifyToken(config, token, "access");
  // One read covers deactivation, the token's own revocation and its session's.
  const row = await database(env)
    .select({
      id: users.id,
      username: users.username,
      role: users.role,
      isActive: users.isActive,
      tokensValidAfter: users.tokensValidAfter,
      revoked: sql<number | null>`(SELECT 1 FROM ${revokedTokens} WHERE ${revokedTokens.jti} = ${claims.jti})`,
      sessionRevoked: sql<number | null>`(SELECT 1 FROM ${revokedSessions} WHERE ${revokedSessions.familyId} = ${claims.sid ?? ""})`,
    })
    .from(users)
    .where(eq(users.id, claims.sub))
    .get();
  if (!row?.isActive || row.revoked || row.sessionRevoked || issuedBefore(claims, row.tokensValidAfter)) {
    throw new AppError("TOKEN_INVALID", 401, "Token is invalid or has been revoked.");
  }
  return { user: { id: row.id, username: row.username, role: row.role }, claims };
}

/**
 * SQL: the access token `claims` (of `userId`) is still live — the account active, no sign-out
 * everywhere since it was issued, neither it nor its session ended: what authenticateAccessToken
 * checked, again inside a batch. A write a session asked for is conditioned on it, so a request
 * authorised before every session ended (a password change, a provider taking the account over)
 * does not land after it.
 */
export function sessionStillLive(userId: string, claims: Pick<TokenClaims, "jti" | "iat" | "sid">): SQL {
  return sql`EXISTS (SELECT 1 FROM ${users} su WHERE su.id = ${userId} AND su.is_active = 1 AND su.tokens_valid_after <= ${issuedAtMs(claims)})
    AND NOT EXISTS (SELECT 1 FROM ${revokedTokens} WHERE ${revokedTokens.jti} = ${claims.jti})
    AND ${sessionNotRevoked(claims.sid ?? "")}`;
}

/** SQL: the session (refresh family) `sessionId` was not ended by a sign-out or from the sessions list. */
const sessionNotRevoked = (sessionId: string): SQL =>
  sql`NOT EXISTS (SELECT 1 FROM ${revokedSessions} WHERE ${revokedSessions.familyId} = ${sessionId})`;

/**
 * SQL: the session `sessionId` (a refresh family) of `userId` has not ended — a refresh token of
 * it unrevoked and unexpired at `nowS`, and the session not in revoked_sessions: for what a session
 * asked for that must die with it (an email change's link, followed later from anywhere).
 */
export function sessionNotEnded(userId: string, sessionId: string, nowS: number): SQL {
  return sql`EXISTS (SELECT 1 FROM ${refreshTokens} lr WHERE lr.family_id = ${sessionId} AND lr.user_id = ${userId}
      AND lr.revoked_at IS NULL AND lr.expires_at > ${nowS})
    AND ${sessionNotRevoked(sessionId)}`;
}

/** The refusal of a write whose session ended while it was on its way (sessionStillLive). */
export const sessionEnded = () => new AppError("TOKEN_INVALID", 401, "Your session has ended. Sign in again.");

/**
 * For a write held inside its statement to the writer's account being active (users.ts
 * `accountActive`) that wrote nothing: 401, as the token is now, when the account was deactivated
 * (or deleted) while the write was on its way; else nothing, and the caller says what else refused it.
 */
export async function refuseIfDeactivated(env: Bindings, userId: string): Promise<void> {
  const row = await database(env).select({ active: users.isActive }).from(users).where(eq(users.id, userId)).get();
  if (!row?.active) throw sessionEnded();
}

/** A live session of the user, as "Where you're signed in" shows it. */
export interface SessionSummary {
  /** The session's id (the refresh family's, the access token's `sid`): it names the session, it authorises nothing. */
  id: string;
  client: string;
  country: string | null;
  created_at: string;
  /** When it last refreshed its tokens (or signed in): an access token's every use would cost a write. */
  last_used_at: string;
}

/**
 * The user's live sessions (as rows for sessionSummaries), most recently used first — a query, so
 * the account export can read it in its own batch. A live session has exactly one live refresh
 * token — unrevoked, unexpired, its family not ended — and that token carries the session's
 * device and, as its created_at, the session's last refresh. Ended sessions never appear: their
 * tokens are all revoked in the batch that ends them.
 */
export function liveSessionsQuery(env: Bindings, userId: string, onlyId?: string) {
  const db = database(env);
  return db
    .select({
      familyId: refreshTokens.familyId,
      client: refreshTokens.client,
      country: refreshTokens.country,
      lastUsedAt: refreshTokens.createdAt,
    })
    .from(refreshTokens)
    .where(
      and(
        eq(refreshTokens.userId, userId),
        onlyId === undefined ? undefined : eq(refreshTokens.familyId, onlyId),
        isNull(refreshTokens.revokedAt),
        gt(refreshTokens.expiresAt, Math.floor(Date.now() / 1000)),
        notExists(db.select({ one: sql`1` }).from(revokedSessions).where(eq(revokedSessions.familyId, refreshTokens.familyId))),
      ),
    )
    .orderBy(desc(refreshTokens.createdAt), desc(refreshTokens.familyId));
}

type LiveSessionRow = Awaited<ReturnType<ReturnType<typeof liveSessionsQuery>["all"]>>[number];

/** Rows of liveSessionsQuery as sessions, one per family. */
export function sessionSummaries(rows: LiveSessionRow[]): SessionSummary[] {
  const seen = new Set<string>();
  return rows.flatMap((row) => {
    if (seen.has(row.familyId)) return [];
    seen.add(row.familyId);
    // The family id is a UUIDv7 minted at sign-in: its stamp is when the session began.
    const started = uuidv7Timestamp(row.familyId);
    return [
      {
        id: row.familyId,
        client: row.client ?? UNKNOWN_CLIENT,
        country: row.country,
        created_at: Number.isNaN(started) ? row.lastUsedAt : new Date(started).toISOString(),
        last_used_at: row.lastUsedAt,
      },
    ];
  });
}

/** The user's live sessions, most recently used first (`onlyId`: that one, if it is theirs and live). */
export async function listSessions(env: Bindings, userId: string, onlyId?: string): Promise<SessionSummary[]> {
  return sessionSummaries(await liveSessionsQuery(env, userId, onlyId).all());
}

/**
 * The owner ends one of their sessions (a lost phone) exactly as its own sign-out would: tokens,
 * push devices, sockets. Anyone else's session, an ended one and an unknown id are all the same
 * 404, so the answer tells nothing about sessions that are not the caller's.
 */
export async function endOwnSession(env: Bindings, config: Config, userId: string, sessionId: string, logger?: Logger): Promise<void> {
  const [session] = await listSessions(env, userId, sessionId);
  if (!session) throw new AppError("NOT_FOUND", 404, "No such session.");
  await endSession(env, config, userId, session.id, { logger });
}
