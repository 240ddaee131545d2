/**
 * Idempotency-Key (IETF httpapi draft "The Idempotency-Key HTTP Header Field"; API.md §5d;
 * issue 13 item 1). The rules, per signed-in user and key:
 *
 * - the first request claims the key (one conditional upsert, so of two concurrent requests
 *   exactly one wins) and runs; a successful answer (below 400) is stored for 24 h;
 * - a retry with the same fingerprint (method, path, query and payload) gets that answer again,
 *   without running anything;
 * - another fingerprint under the same key is refused (422) for as long as the key lives;
 * - a retry while the first is still running is refused (409) — until the claim's lock runs out
 *   (`LOCK_MS`), after which a retry takes the key over, so an isolate that died mid-request
 *   cannot block its key for a day;
 * - a 4xx or 5xx answer, or a thrown error, releases the key: nothing was changed (bad input
 *   loses nothing and changes nothing), so the retry runs afresh — after a 429's Retry-After, a
 *   refreshed token or a provider's recovery — instead of replaying a failure;
 * - an account holds at most `MAX_LIVE_KEYS_PER_USER` keys within their 24 h (migration 0037's
 *   trigger, inside the claim): a new key beyond that is refused until the oldest expires, so
 *   nobody can make D1 keep an unbounded number of stored answers by sending each cheap POST
 *   with a fresh key. Retries of keys already held are unaffected.
 *
 * Rows live in D1 (migrations/0023), so the rules hold across isolates and data centres.
 */
import { and, eq, gt, lte, sql } from "drizzle-orm";
import { changes, database } from "../db/client";
import { errorMatches } from "../lib/errors";
import { idempotencyKeys } from "../db/schema";
import type { Bindings } from "../env";
import { uuidv7 } from "../lib/ids";
import { DAY_MS } from "../lib/durations";

/** How long an answer is replayed. */
export const IDEMPOTENCY_TTL_MS = DAY_MS;
/** How long a running request holds its key before a retry may take it over (longer than any request runs). */
export const LOCK_MS = 2 * 60 * 1000;
/** Live keys (within their 24 h) one account may hold; migration 0037's trigger names the same number. */
export const MAX_LIVE_KEYS_PER_USER = 1000;
/** Answers larger than this are not stored (the key is released; no POST here answers that much). */
export const MAX_STORED_BODY_BYTES = 512 * 1024;

export interface StoredAnswer {
  status: number;
  headers: [string, string][];
  body: string;
}

export type KeyClaim =
  | { kind: "claimed"; claim: string }
  | { kind: "replay"; answer: StoredAnswer }
  | { kind: "reused" }
  | { kind: "running"; lockedUntil: string }
  /** The account holds MAX_LIVE_KEYS_PER_USER keys already; the oldest expires at `freeAt`. */
  | { kind: "full"; freeAt: string };

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Claims `key` for this request, or says why not. A key whose answer expired, or whose running
 * claim's lock ran out with the same fingerprint, is taken over in the same statement.
 */
export async function claimIdempotencyKey(
  env: Pick<Bindings, "DB">,
  userId: string,
  key: string,
  fingerprint: string,
  now = Date.now(),
): Promise<KeyClaim> {
  const db = database(env);
  // Two rounds at most: a row released between the upsert and the read is claimed again.
  for (let round = 0; round < 2; round++) {
    const claim = uuidv7();
    const nowIso = iso(now);
    const claimed = db
      .insert(idempotencyKeys)
      .values({
        userId,
        key,
        fingerprint,
        claim,
        state: "running",
        lockedUntil: iso(now + LOCK_MS),
        createdAt: nowIso,
        expiresAt: iso(now + IDEMPOTENCY_TTL_MS),
      })
      .onConflictDoUpdate({
        target: [idempotencyKeys.userId, idempotencyKeys.key],
        set: {
          fingerprint: sql`excluded.fingerprint`,
          claim: sql`excluded.claim`,
          state: "running",
          lockedUntil: sql`excluded.locked_until`,
          status: null,
          headers: null,
          body: null,
          createdAt: sql`excluded.created_at`,
          expiresAt: sql`excluded.expires_at`,
        },
        setWhere: sql`${idempotencyKeys.expiresAt} <= ${nowIso} OR (${idempotencyKeys.state} = 'running' AND ${idempotencyKeys.lockedUntil} <= ${nowIso} AND ${idempotencyKeys.fingerprint} = excluded.fingerprint)`,
      })
      .returning({ claim: idempotencyKeys.claim });
    let taken: { claim: string } | undefined;
    try {
      taken = await claimed.get();
    } catch (err) {
      if (!errorMatches(err, /PER_USER_CAP idempotency_keys\b/)) throw err;
      return { kind: "full", freeAt: await oldestLiveKeyExpiry(env, userId, nowIso) };
    }
    if (taken?.claim === claim) return { kind: "claimed", claim };
    const row = await db
      .select()
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)))
      .get();
    if (!row) continue;
    if (row.fingerprint !== fingerprint) return { kind: "reused" };
    if (row.state === "running") return { kind: "running", lockedUntil: row.lockedUntil };
    return { kind: "replay", answer: { status: row.status ?? 200, headers: row.headers ?? [], body: row.body ?? "" } };
  }
  // Released twice in a row by other requests: as good as running.
  return { kind: "running", lockedUntil: iso(now + 1000) };
}

/** When the account's oldest live key expires (its slot is free again then). */
async function oldestLiveKeyExpiry(env: Pick<Bindings, "DB">, userId: string, nowIso: string): Promise<string> {
  const row = await database(env)
    .select({ at: sql<string | null>`min(${idempotencyKeys.expiresAt})` })
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.userId, userId), gt(idempotencyKeys.expiresAt, nowIso)))
    .get();
  return row?.at ?? nowIso;
}

/** Stores the answer of the request that holds `claim`; false when it no longer holds the key. */
export async function completeIdempotencyKey(
  env: Pick<Bindings, "DB">,
  userId: string,
  key: string,
  claim: string,
  answer: StoredAnswer,
): Promise<boolean> {
  const result = await database(env)
    .update(idempotencyKeys)
    .set({ state: "done", status: answer.status, headers: answer.headers, body: answer.body })
    .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key), eq(idempotencyKeys.claim, claim)))
    .run();
  return changes(result) === 1;
}

/** Lets the key go (the request failed, or its answer cannot be stored): a retry runs afresh. */
export async function releaseIdempotencyKey(env: Pick<Bindings, "DB">, userId: string, key: string, claim: string): Promise<void> {
  await database(env)
    .delete(idempotencyKeys)
    .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key), eq(idempotencyKeys.claim, claim)))
    .run();
}

/** Housekeeping: drops expired keys, at most `limit` a run. Returns how many. */
export async function purgeExpiredIdempotencyKeys(env: Pick<Bindings, "DB">, now = Date.now(), limit = 5000): Promise<number> {
  const db = database(env);
  const expired = db
    .select({ rowid: sql`rowid` })
    .from(idempotencyKeys)
    .where(lte(idempotencyKeys.expiresAt, iso(now)))
    .limit(limit);
  const result = await db.delete(idempotencyKeys).where(sql`rowid IN ${expired}`).run();
  return changes(result);
}
