/**
 * Community identification (API.md §5c, issue 11): an owner shares a request; other people
 * propose species and vote; the community confirms a species by consensus.
 *
 * Consensus. On a request, every counting account's *identifying votes* are its supports — a
 * proposal it made and has not withdrawn, an upvote it gave (one per account and result) — and its
 * disagreements (a downvote). A species (one result per species per request) is **community confirmed** when at
 * least 2 accounts support it and its supports are more than 2/3 of all identifying votes on the
 * request. Hidden proposals, and the votes of accounts with trust level `new` or deactivated, are
 * shown but never counted; nor are the request owner's own votes (owners may vote on their
 * results), since "community confirmed" is other people's agreement, shown beside the owner's
 * accepted answer — counting them let an owner and one friend confirm whatever the owner chose.
 *
 * It is recomputed by `consensusStatements`, which every change that can move it (vote, proposal,
 * hide, unhide) runs in the same D1 batch as the change: one transaction, so concurrent votes
 * behave as votes one after the other and the stored state always equals a recount. In the same
 * batch the counters are recounted from the rows, never incremented: the species' `confirmed_count`
 * and each identifier's `identifications_helped` (requests of others whose consensus they
 * supported with a vote that counts: by the rule above, a `new` or deactivated account helped none).
 */
import { and, desc, eq, isNull, type SQL, sql } from "drizzle-orm";
import { changes, database, inList, rowIf, runBatch, sqlNow, tableRows } from "../db/client";
import { type Page, type PageRequest, selectPage } from "../db/pagination";
import { identificationRequests, identificationResults, notifications, proposalReports, species, users } from "../db/schema";
import type { AuthenticatedUser, Bindings } from "../env";
import { AppError } from "../lib/errors";
import { uuidv7 } from "../lib/ids";
import { DAY_MS, HOUR_MS } from "../lib/durations";
import type { Logger } from "../lib/logger";
import { withdrawStatements } from "./notification-delivery";
import { announceNotifications, announceWithdrawals, insertNotifications, type Notification, underHourlyCap } from "./notifications";
import { requestImagesBody } from "./queued-requests";
import { refuseIfDeactivated } from "./sessions";
import { lookupSpeciesOrUnavailable, type SpeciesRow } from "./species";
import { ABOVE_NEW_SQL, accountActive, BASIC_TRUST } from "./users";

const q = identificationRequests;
const r = identificationResults;

/** Moderators of proposals (as of forum posts). */
export const COMMUNITY_MODERATOR_ROLES = ["moderator", "admin"] as const;
export const MAX_COMMENT = 2000;
/** SQL over the account `u`: its votes count in a consensus (not `new`, active). */
const COUNTED_ACCOUNT = sql.raw(`${ABOVE_NEW_SQL} AND u.is_active = 1`);
/**
 * One proposer's proposals notify a request's owner at most this many times an hour: past it the
 * proposals still count and show, but proposing species after species (each quoting a comment)
 * cannot flood the owner's notifications and inbox (as with forum mentions).
 */
export const MAX_PROPOSAL_NOTICES_PER_HOUR_FROM_ONE_PROPOSER = 5;
/**
 * A proposer hears "X agrees" at most this many times an hour, from all voters together: past it
 * the votes still count and show, but many accounts upvoting one person's proposals cannot flood
 * their notifications (a cap per voter would not stop many voters).
 */
export const MAX_AGREEMENT_NOTICES_PER_HOUR = 10;
/**
 * How far back the five-minute sweep looks for accounts whose age made their votes start counting
 * (`recountAgedAccounts`) when it has no stored position (the first run, or KV lost it): up to
 * this long a gap loses nothing even then; a recount finding nothing new tells nobody.
 */
export const AGED_ACCOUNTS_LOOKBACK_MS = HOUR_MS;
/**
 * At most this many accounts a run (recounted in one batch; each request whose consensus that
 * gains is told in a batch of its own), oldest crossing first: a burst of accounts made together
 * (a bot farm a week old) cannot exhaust one run's D1 queries (1 000 per invocation) and subrequests; the next runs take the rest from where this one stopped
 * (`AGED_ACCOUNTS_CURSOR_KEY`), however long the burst takes to work through.
 */
export const MAX_AGED_ACCOUNTS_PER_RUN = 50;
/**
 * KV key of the aged-accounts pass's position: `date_joined` and `id` of the last account a run
 * recounted, written once the run's recounts are done. The next run goes on after it; a run that
 * died before writing it recounts the same accounts again (a recount is idempotent and each
 * consensus is told once), so nothing is lost or told twice. Without it (the first run, or KV lost
 * it), a run starts `AGED_ACCOUNTS_LOOKBACK_MS` back.
 */
export const AGED_ACCOUNTS_CURSOR_KEY = "housekeeping:community_aged_accounts:cursor";

// ---- Consensus -------------------------------------------------------------------------------

/** The counted identifying votes on request `rid`: (user, result, pro) rows. */
function countedVotes(rid: SQL | string) {
  return sql`WITH sup AS (
      SELECT res.proposed_by AS user_id, res.id AS result_id FROM identification_results res
       WHERE res.request_id = ${rid} AND res.is_hidden = 0 AND res.proposed_by IS NOT NULL AND res.withdrawn_at IS NULL
      UNION
      SELECT v.user_id, v.result_id FROM votes v JOIN identification_results res ON res.id = v.result_id
       WHERE res.request_id = ${rid} AND res.is_hidden = 0 AND v.vote_type = 'upvote'),
    idv AS (
      SELECT user_id, result_id, 1 AS pro FROM sup
      UNION ALL
      SELECT v.user_id, v.result_id, 0 FROM votes v JOIN identification_results res ON res.id = v.result_id
       WHERE res.request_id = ${rid} AND res.is_hidden = 0 AND v.vote_type = 'downvote'
        AND NOT EXISTS (SELECT 1 FROM sup WHERE sup.user_id = v.user_id AND sup.result_id = v.result_id)),
    counted AS (
      SELECT idv.* FROM idv JOIN users u ON u.id = idv.user_id
       WHERE ${COUNTED_ACCOUNT}
         AND u.id IS NOT (SELECT oq.user_id FROM identification_requests oq WHERE oq.id = ${rid}))`;
}

/** The confirmed result of request `rid` by the §5c rule, or NULL. */
function consensusOf(rid: SQL | string) {
  return sql`(${countedVotes(rid)}
    SELECT result_id FROM counted WHERE pro = 1 GROUP BY result_id
    HAVING count(DISTINCT user_id) >= 2 AND 3 * count(*) > 2 * (SELECT count(*) FROM counted)
    ORDER BY count(*) DESC, result_id LIMIT 1)`;
}

/**
 * Statements that recompute the consensus of the requests `ids` selects (a parenthesised list or
 * subquery of request ids) and every counter it feeds, in a fixed number of statements however
 * many requests there are. The first statement reads (id, before), the second stores the
 * consensus, the last reads (id, after): callers compare the two to tell people when it is gained
 * or changes.
 */
function recountStatements(ids: SQL): SQL[] {
  // Correlated: each updated request's own id.
  const rid = sql`identification_requests.id`;
  return [
    sql`SELECT id, community_result_id AS before FROM identification_requests WHERE id IN ${ids}`,
    sql`UPDATE identification_requests SET
          community_confirmed_at = CASE WHEN community_result_id IS ${consensusOf(rid)} THEN community_confirmed_at
                                        WHEN ${consensusOf(rid)} IS NULL THEN NULL ELSE ${sqlNow} END,
          community_result_id = ${consensusOf(rid)}
        WHERE id IN ${ids}`,
    ...counterStatements(ids),
    sql`SELECT id, community_result_id AS after FROM identification_requests WHERE id IN ${ids}`,
  ];
}

/**
 * Statements that recount the counters the consensus of the requests `ids` selects feeds: the
 * species' `confirmed_count` of their results and `identifications_helped` of everyone who
 * supported anything there.
 */
function counterStatements(ids: SQL): SQL[] {
  return [
    // Species of these requests' results: how many requests the community confirmed as them.
    sql`UPDATE species SET confirmed_count = (
          SELECT count(*) FROM identification_requests cq JOIN identification_results cr ON cr.id = cq.community_result_id
           WHERE cr.species_id = species.id)
        WHERE id IN (SELECT species_id FROM identification_results WHERE request_id IN ${ids} AND species_id IS NOT NULL)`,
    // Everyone who supported anything here: on how many other people's requests their support became the consensus.
    // Only a support the consensus counts (countedVotes: not `new`, active) helped: an upvote from a
    // new account on a result others had confirmed already carried nothing, and must not earn the stat.
    sql`UPDATE users SET identifications_helped = CASE WHEN EXISTS (
          SELECT 1 FROM users u WHERE u.id = users.id AND ${COUNTED_ACCOUNT}) THEN (
          SELECT count(DISTINCT cq.id) FROM identification_requests cq
           WHERE cq.community_result_id IS NOT NULL AND cq.user_id IS NOT users.id
             AND cq.community_result_id IN (
               SELECT result_id FROM votes WHERE user_id = users.id AND vote_type = 'upvote'
               UNION SELECT id FROM identification_results WHERE proposed_by = users.id AND is_hidden = 0 AND withdrawn_at IS NULL)) ELSE 0 END
        WHERE id IN (
          SELECT proposed_by FROM identification_results WHERE request_id IN ${ids} AND proposed_by IS NOT NULL
          UNION SELECT v.user_id FROM votes v JOIN identification_results res ON res.id = v.result_id WHERE res.request_id IN ${ids})`,
  ];
}

/**
 * For the batch that deletes request `rid`, before the delete: its consensus is dropped and the
 * counters it fed are recounted without it (its results and votes still there to name who and
 * what), so a confirmed request deleted leaves no count behind. Sharing, gathering a consensus
 * and deleting, again and again, would otherwise raise them without end. Only a consensus feeds
 * the counters, so a request without one (never shared, or no agreement) recounts nothing: its
 * `community_confirmed_at`, set exactly while there is a consensus, is left for the recount to
 * ask, on a row the batch's delete then removes.
 */
export function requestRemovalStatements(rid: string): SQL[] {
  return removalStatements(sql`(${rid})`);
}

/**
 * `requestRemovalStatements` for every request of `userId`'s (the account is being deleted): only
 * while `when` holds (a self-contained condition), so a deletion refused in its batch removes nothing.
 */
export function ownerRemovalStatements(userId: string, when: SQL = sql`1`): SQL[] {
  return removalStatements(sql`(SELECT id FROM identification_requests WHERE user_id = ${userId} AND ${when})`);
}

function removalStatements(ids: SQL): SQL[] {
  const hadConsensus = sql`(SELECT id FROM identification_requests WHERE id IN ${ids} AND community_confirmed_at IS NOT NULL)`;
  return [sql`UPDATE identification_requests SET community_result_id = NULL WHERE id IN ${ids}`, ...counterStatements(hadConsensus)];
}

/** `recountStatements` for request `rid`: what every vote, proposal and moderation runs in its batch. */
export function consensusStatements(rid: string): SQL[] {
  return recountStatements(sql`(${rid})`);
}

type Rows<T> = { results: T[] };

/** Reads (before, after) from the results of a batch that ended with consensusStatements. */
export function consensusChange(results: unknown[]): { before: string | null; after: string | null } {
  const n = results.length;
  const before = (results[n - 5] as Rows<{ before: string | null }>).results[0]?.before ?? null;
  const after = (results[n - 1] as Rows<{ after: string | null }>).results[0]?.after ?? null;
  return { before, after };
}

/**
 * When a request gains (or moves to) a consensus: its owner hears `community_consensus`, and so
 * does everyone whose support it was ("your identification was confirmed") while the request is
 * shared by an active account. A recount after its owner took it out of the community, or was
 * deactivated (a moderator's decision, an account's votes starting or stopping to count), is the
 * owner's news alone.
 */
export async function tellConsensus(
  env: Bindings,
  requestId: string,
  change: { before: string | null; after: string | null },
  logger?: Logger,
): Promise<Notification[]> {
  if (!change.after || change.after === change.before) return [];
  const db = database(env);
  const resultId = change.after;
  const createdAt = new Date().toISOString();
  const key = (who: SQL) => sql`'community_consensus:' || ${requestId} || ':' || ${resultId} || ':' || ${who}`;
  const [owner, supporters] = (await runBatch(db, [
    insertNotifications(
      db,
      "community_consensus",
      {
        userId: sql`${q.userId}`,
        title: sql`'The community identified your plant: ' || ${r.scientificName}`,
        body: sql`'At least two people agree, and more than two thirds of the votes support it.'`,
        data: sql`json_object('request_id', ${q.id}, 'result_id', ${r.id}, 'scientific_name', ${r.scientificName})`,
        dedupeKey: key(sql`${q.userId}`),
        createdAt,
      },
      sql`FROM ${q} JOIN ${r} ON ${r.id} = ${resultId} WHERE ${q.id} = ${requestId} AND ${q.userId} IS NOT NULL`,
    ),
    insertNotifications(
      db,
      "community_consensus",
      {
        userId: sql`s.user_id`,
        title: sql`'Your identification was confirmed: ' || ${r.scientificName}`,
        body: sql`'The community reached consensus on a plant you helped identify.'`,
        data: sql`json_object('request_id', ${r.requestId}, 'result_id', ${r.id}, 'scientific_name', ${r.scientificName})`,
        dedupeKey: key(sql`s.user_id`),
        createdAt,
      },
      sql`FROM (SELECT proposed_by AS user_id FROM identification_results WHERE id = ${resultId} AND proposed_by IS NOT NULL AND withdrawn_at IS NULL
                UNION SELECT user_id FROM votes WHERE result_id = ${resultId} AND vote_type = 'upvote') s
          JOIN ${r} ON ${r.id} = ${resultId} JOIN ${q} ON ${q.id} = ${r.requestId}
          WHERE s.user_id IS NOT ${q.userId} AND ${q.isSharedWithCommunity} = 1 AND ${accountActive(q.userId)}`,
    ),
  ])) as [Notification[], Notification[]];
  await announceNotifications(env, [...owner, ...supporters], logger);
  return [...owner, ...supporters];
}

/**
 * When an account is deactivated (or reactivated) its proposals and votes stop (or start again)
 * counting. These statements, run in the same batch right after the change, recompute the
 * consensus and the counters it feeds of every request of someone else it proposed for or voted
 * on — a fixed number of statements however many — so nothing it alone carried stays confirmed
 * and a failed change leaves both as they were. Hand their results to `tellRecount`. With `when` (a
 * self-contained condition), they recount nothing unless it holds.
 */
export function accountRecountStatements(userId: string, when: SQL = sql`1`): SQL[] {
  return accountsRecountStatements([userId], when);
}

/** `accountRecountStatements` for several accounts at once: still a fixed number of statements. */
function accountsRecountStatements(userIds: readonly string[], when: SQL = sql`1`): SQL[] {
  return recountStatements(sql`(
    SELECT res.request_id FROM identification_results res WHERE ${inList(sql`res.proposed_by`, userIds)} AND ${when}
    UNION
    SELECT res.request_id FROM votes v JOIN identification_results res ON res.id = v.result_id WHERE ${inList(sql`v.user_id`, userIds)} AND ${when})`);
}

/**
 * After `accountRecountStatements` (their results, in order): consensus gained again is announced
 * as any other (each is told once per result); lost consensus is silent, as when a vote is withdrawn.
 */
export async function tellRecount(env: Bindings, results: unknown[], logger?: Logger): Promise<void> {
  const before = new Map((results[0] as Rows<{ id: string; before: string | null }>).results.map((row) => [row.id, row.before]));
  const after = (results[results.length - 1] as Rows<{ id: string; after: string | null }>).results;
  for (const row of after) await tellConsensus(env, row.id, { before: before.get(row.id) ?? null, after: row.after }, logger);
}

/**
 * Recounts every request these accounts proposed for or voted on, after something changed whether
 * their votes count other than by a vote (forum posts deleted: a trust level lost; an account's
 * age). One batch, a fixed number of statements however many accounts (one transaction: a failure
 * recounts none of them); consensus gained is announced as usual, a batch per request gaining it.
 */
export async function recountAccounts(env: Bindings, userIds: string[], logger?: Logger): Promise<void> {
  const ids = [...new Set(userIds)];
  if (ids.length === 0) return;
  const results = await runBatch(database(env), accountsRecountStatements(ids));
  await tellRecount(env, results, logger);
}

/** Where the aged-accounts pass stopped: the last account it recounted, in its order. */
export interface AgedAccountsCursor {
  joined: string;
  id: string;
}

/**
 * SQL: the accounts whose age made them `basic` (so their community votes started counting) at a
 * time in (`from`, `to`] — still `new` as stored, with the posts the level needs, active — and,
 * given `after`, only those after it in the order (`date_joined`, `id`): at most
 * MAX_AGED_ACCOUNTS_PER_RUN, as `id, date_joined`. Seeks `users_new_by_age_idx` (migrations/0057).
 */
export function agedAccountsBetween(from: number, to: number, after?: AgedAccountsCursor): SQL {
  const joined = (t: number) => new Date(t - BASIC_TRUST.days * DAY_MS).toISOString();
  const rest = after ? sql`AND date_joined >= ${after.joined} AND (date_joined > ${after.joined} OR id > ${after.id})` : sql``;
  return sql`SELECT id, date_joined FROM users
    WHERE trust_level = 'new' AND post_count >= ${BASIC_TRUST.posts} AND date_joined > ${joined(from)} AND date_joined <= ${joined(to)}
      AND is_active = 1 ${rest}
    ORDER BY date_joined, id LIMIT ${MAX_AGED_ACCOUNTS_PER_RUN}`;
}

/** The stored cursor, if it is one this run can go on from (not past `now`'s crossing time). */
async function agedAccountsCursor(env: Bindings, now: number): Promise<AgedAccountsCursor | null> {
  const stored = await env.CACHE.get<Partial<AgedAccountsCursor>>(AGED_ACCOUNTS_CURSOR_KEY, "json").catch(() => null);
  if (typeof stored?.joined !== "string" || typeof stored.id !== "string") return null;
  // A cursor ahead of this run's clock (a clock set back) would skip accounts: start from the look-back.
  if (Date.parse(stored.joined) + BASIC_TRUST.days * DAY_MS > now) return null;
  return { joined: stored.joined, id: stored.id };
}

/**
 * The housekeeping's share of "the stored consensus always equals a recount": a vote cast by an
 * account 6 days old starts counting at day 7 with no vote, proposal or moderation to recount it.
 * Every run recounts the identifications of up to MAX_AGED_ACCOUNTS_PER_RUN accounts that crossed
 * the age threshold after the stored cursor (without one, within `AGED_ACCOUNTS_LOOKBACK_MS`
 * before `now`), then stores the last one as the cursor; a consensus gained is told as after a
 * vote, each person once (the notices' dedupe keys), however many runs recount it. Answers how
 * many accounts.
 */
export async function recountAgedAccounts(env: Bindings, now: number, logger?: Logger): Promise<number> {
  const cursor = await agedAccountsCursor(env, now);
  // Behind the look-back only as far as a stored cursor says nobody recounted them yet.
  const from = cursor
    ? Math.min(now - AGED_ACCOUNTS_LOOKBACK_MS, Date.parse(cursor.joined) + BASIC_TRUST.days * DAY_MS - 1)
    : now - AGED_ACCOUNTS_LOOKBACK_MS;
  const rows = await database(env).all<{ id: string; date_joined: string }>(agedAccountsBetween(from, now, cursor ?? undefined));
  await recountAccounts(
    env,
    rows.map((row) => row.id),
    logger,
  );
  const last = rows[rows.length - 1];
  if (last)
    await env.CACHE.put(AGED_ACCOUNTS_CURSOR_KEY, JSON.stringify({ joined: last.date_joined, id: last.id } satisfies AgedAccountsCursor));
  return rows.length;
}

// ---- Sharing and the feed ------------------------------------------------------------------

/** Requests that can be shared: finished, with candidates to discuss. */
const SHAREABLE = ["identified", "needs_help"] as const;

export async function setShared(env: Bindings, userId: string, requestId: string, shared: boolean) {
  const db = database(env);
  const row = await db.select().from(q).where(eq(q.id, requestId)).get();
  if (!row || row.userId !== userId) throw new AppError("NOT_FOUND", 404, "Identification request not found.");
  if (shared && !(SHAREABLE as readonly string[]).includes(row.status))
    throw new AppError("CONFLICT", 409, "Only a finished request (identified or needs help) can be shared.");
  const updated = await db
    .update(q)
    .set({ isSharedWithCommunity: shared, sharedAt: shared ? (row.sharedAt ?? new Date().toISOString()) : null })
    .where(eq(q.id, requestId))
    .returning()
    .get();
  // Deleted by its owner since the read.
  if (!updated) throw new AppError("NOT_FOUND", 404, "Identification request not found.");
  return { request_id: requestId, shared: updated.isSharedWithCommunity, shared_at: updated.sharedAt };
}

export interface FeedFilter {
  /** One request only (the detail view). */
  requestId?: string;
  status?: "needs_id" | "confirmed";
  family?: string;
  near?: { lat: number; lon: number; km: number };
}

/** Shared requests' coordinates are shown and filtered only to 0.1° (about 11 km): nobody's garden is pinpointed. */
export const COORDINATE_DECIMALS = 1;

export interface FeedItem {
  request_id: string;
  owner: { username: string } | null;
  shared_at: string | null;
  status: "needs_id" | "confirmed";
  images: { url: string }[];
  location: string;
  /** The language its owner asked in: the engines' candidates carry their names in it. */
  language: string;
  latitude: number | null;
  longitude: number | null;
  community_result_id: string | null;
  accepted_result_id: string | null;
  candidates: Candidate[];
}

/** A result as the community sees it. `id` and `result_id` are the same: the result's id. */
export interface Candidate {
  id: string;
  result_id: string;
  scientific_name: string;
  plant_name: string;
  family: string;
  identification_source: string;
  confidence_score: number;
  upvotes: number;
  downvotes: number;
  proposed_by: string | null;
  withdrawn_at: string | null;
  community_confirmed: boolean;
}

const CANDIDATES = 3;

/**
 * The community feed: shared requests of active accounts, newest shared first. Private requests
 * never appear.
 */
export async function communityFeed(env: Bindings, filter: FeedFilter, page: PageRequest): Promise<Page<FeedItem>> {
  const db = database(env);
  const lat = sql`round(${q.latitude}, ${COORDINATE_DECIMALS})`;
  const lon = sql`round(${q.longitude}, ${COORDINATE_DECIMALS})`;
  const where = and(
    eq(q.isSharedWithCommunity, true),
    // A deactivated account's shared requests leave the feed (and its photos and places with them).
    accountActive(q.userId),
    filter.requestId ? eq(q.id, filter.requestId) : undefined,
    filter.status === "confirmed" ? sql`${q.communityResultId} IS NOT NULL` : undefined,
    filter.status === "needs_id" ? isNull(q.communityResultId) : undefined,
    filter.family
      ? sql`EXISTS (SELECT 1 FROM identification_results fr WHERE fr.request_id = ${q.id} AND fr.is_hidden = 0 AND lower(fr.family) = lower(${filter.family}))`
      : undefined,
    filter.near ? nearWhere(lat, lon, filter.near) : undefined,
  );
  const rows = await selectPage(
    db,
    {
      rows: db
        .select({ request: q, username: users.username })
        .from(q)
        .leftJoin(users, eq(users.id, q.userId))
        .where(where)
        .orderBy(desc(q.sharedAt), desc(q.id))
        .$dynamic(),
      count: db.select({ n: sql<number>`count(*)` }).from(q).where(where).$dynamic(),
    },
    page,
  );
  const ids = rows.rows.map((row) => row.request.id);
  const results = ids.length
    ? await db
        .select()
        .from(r)
        .where(and(inList(r.requestId, ids), eq(r.isHidden, false)))
        .all()
    : [];
  const round = (v: number | null) => (v === null ? null : Math.round(v * 10 ** COORDINATE_DECIMALS) / 10 ** COORDINATE_DECIMALS);
  return {
    count: rows.count,
    rows: rows.rows.map(({ request, username }) => {
      const mine = results.filter((res) => res.requestId === request.id);
      return {
        request_id: request.id,
        owner: username ? { username } : null,
        shared_at: request.sharedAt,
        status: request.communityResultId ? "confirmed" : "needs_id",
        images: requestImagesBody(request),
        location: request.location,
        language: request.language,
        latitude: round(request.latitude),
        longitude: round(request.longitude),
        community_result_id: request.communityResultId,
        accepted_result_id: mine.find((res) => res.isAccepted)?.id ?? null,
        candidates: leading(mine, request.communityResultId).slice(0, CANDIDATES),
      };
    }),
  };
}

/** One shared request as the community sees it, with every visible candidate. */
export async function communityRequest(
  env: Bindings,
  requestId: string,
): Promise<FeedItem & { candidates: (Candidate & { comment: string })[] }> {
  const page = await communityFeed(env, { requestId }, { page: 1, pageSize: 1 });
  const item = page.rows[0];
  if (!item) throw new AppError("NOT_FOUND", 404, "Identification request not found.");
  const results = await database(env)
    .select()
    .from(r)
    .where(and(eq(r.requestId, requestId), eq(r.isHidden, false)))
    .all();
  const comments = new Map(results.map((res) => [res.id, res.comment]));
  return {
    ...item,
    candidates: leading(results, item.community_result_id).map((c) => ({ ...c, comment: comments.get(c.result_id) ?? "" })),
  };
}

/** Candidates by support: the confirmed one first, then net votes, then the engines' confidence. */
export function leading(results: (typeof r.$inferSelect)[], confirmed: string | null): Candidate[] {
  return [...results]
    .sort(
      (a, b) =>
        Number(b.id === confirmed) - Number(a.id === confirmed) ||
        b.upvotes - b.downvotes - (a.upvotes - a.downvotes) ||
        b.confidenceScore - a.confidenceScore,
    )
    .map((res) => ({
      id: res.id,
      result_id: res.id,
      scientific_name: res.scientificName,
      plant_name: res.plantName,
      family: res.family,
      identification_source: res.identificationSource,
      confidence_score: res.confidenceScore,
      upvotes: res.upvotes,
      downvotes: res.downvotes,
      proposed_by: res.proposedBy,
      withdrawn_at: res.withdrawnAt,
      community_confirmed: res.id === confirmed,
    }));
}

/** Within `km` of a point (equirectangular distance: exact enough below a few hundred km). */
function nearWhere(lat: SQL, lon: SQL, near: { lat: number; lon: number; km: number }): SQL {
  const kmPerDegree = 111.32;
  const cos = Math.cos((near.lat * Math.PI) / 180);
  const dLat = near.km / kmPerDegree;
  // A box first (cheap), then the distance itself.
  return sql`${lat} BETWEEN ${near.lat - dLat} AND ${near.lat + dLat}
    AND ((${lat} - ${near.lat}) * ${kmPerDegree}) * ((${lat} - ${near.lat}) * ${kmPerDegree})
      + ((${lon} - ${near.lon}) * ${kmPerDegree * cos}) * ((${lon} - ${near.lon}) * ${kmPerDegree * cos}) <= ${near.km * near.km}`;
}

// ---- Proposals -------------------------------------------------------------------------------

export interface ProposalInput {
  species_id?: string;
  scientific_name?: string;
  comment?: string;
}

/**
 * A shared request someone else may identify, or 404 (private requests, and a deactivated
 * account's, do not exist for others).
 */
async function sharedRequestFor(env: Bindings, userId: string, requestId: string) {
  const row = await database(env)
    .select()
    .from(q)
    .where(and(eq(q.id, requestId), accountActive(q.userId)))
    .get();
  if (!row || (!row.isSharedWithCommunity && row.userId !== userId))
    throw new AppError("NOT_FOUND", 404, "Identification request not found.");
  if (row.userId === userId)
    throw new AppError("FORBIDDEN", 403, "You cannot propose a species for your own request; accept or vote on its results instead.");
  if (!row.isSharedWithCommunity) throw new AppError("NOT_FOUND", 404, "Identification request not found.");
  return row;
}

async function speciesFor(env: Bindings, userId: string, input: ProposalInput, logger?: Logger): Promise<SpeciesRow> {
  if (input.species_id) {
    const row = await database(env).select().from(species).where(eq(species.id, input.species_id)).get();
    if (!row) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { species_id: ["No species with this id in the catalogue."] });
    return row;
  }
  const name = input.scientific_name?.trim() ?? "";
  const found = await lookupSpeciesOrUnavailable(env, name, logger, `user:${userId}`);
  if (found.found === "none")
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", {
      scientific_name: ["Not a species we know; check the spelling or search the catalogue (search/plants/?q=)."],
    });
  return found.row;
}

/**
 * Proposes a species for someone else's shared request: a `community` result by the caller,
 * counted as the proposer's support; consensus is recomputed in the same batch. The same species
 * on a request is one result: proposing one that is already there is a 409 naming it (vote on it).
 * A proposal a moderator hid is hidden for what its proposer wrote, not for its species: a new
 * proposal of that species takes the hidden result over (the new proposer and comment, shown and
 * counted again), so hiding an abusive proposal never keeps the right answer off the request.
 */
/**
 * SQL: `sharedRequestFor`'s rule, again inside a write: request `requestId` is still shared by an
 * active owner other than `userId` (not taken out of the community or deleted meanwhile), and
 * `userId`'s own account is still active.
 */
function stillOpenTo(requestId: string, userId: string): SQL {
  return sql`EXISTS (SELECT 1 FROM identification_requests sq WHERE sq.id = ${requestId}
      AND sq.is_shared_with_community = 1 AND sq.user_id IS NOT ${userId} AND ${accountActive(sql`sq.user_id`)})
    AND ${accountActive(sql`${userId}`)}`;
}

export async function propose(env: Bindings, user: AuthenticatedUser, requestId: string, input: ProposalInput, logger?: Logger) {
  const request = await sharedRequestFor(env, user.id, requestId);
  const sp = await speciesFor(env, user.id, input, logger);
  const db = database(env);
  const existing = await db
    .select({ id: r.id, isHidden: r.isHidden, proposedBy: r.proposedBy, withdrawnAt: r.withdrawnAt })
    .from(r)
    .where(and(eq(r.requestId, request.id), sql`lower(${r.scientificName}) = lower(${sp.scientificName})`))
    .get();
  // Proposing again what you withdrew takes it back: your support counts again.
  if (existing && !existing.isHidden && existing.proposedBy === user.id && existing.withdrawnAt !== null)
    return restoreProposal(env, user.id, request.id, existing.id, input, logger);
  if (existing && !existing.isHidden)
    throw new AppError("CONFLICT", 409, `${sp.scientificName} is already a candidate for this request; vote on it instead.`, {
      result_id: [existing.id],
    });
  // Its own proposer may not undo the moderator's decision by proposing it again.
  if (existing?.proposedBy === user.id)
    throw new AppError("FORBIDDEN", 403, `A moderator hid your proposal of ${sp.scientificName} for this request.`);
  const id = existing?.id ?? uuidv7();
  const now = new Date().toISOString();
  const rank = sql`(SELECT coalesce(max(rank), 0) + 1 FROM identification_results WHERE request_id = ${request.id})`;
  // sharedRequestFor's rule, again inside the write: a request its owner took out of the community
  // (or deleted) while the species was being looked up takes no proposal; nor does the request,
  // once the proposer's own account was deactivated (or deleted) meanwhile.
  const stillShared = stillOpenTo(request.id, user.id);
  const write = existing
    ? // Only while still hidden: a racing proposal that took it over first wins, and this one is a 409.
      sql`UPDATE identification_results SET is_hidden = 0, proposed_by = ${user.id}, comment = ${input.comment ?? ""}, created_at = ${now}, withdrawn_at = NULL
          WHERE id = ${id} AND is_hidden = 1 AND proposed_by IS NOT ${user.id} AND ${stillShared}`
    : sql`INSERT INTO identification_results (id, request_id, species_id, scientific_name, plant_name, common_names, family, genus,
          confidence_score, identification_source, rank, proposed_by, comment, details, created_at)
        SELECT ${id}, ${request.id}, ${sp.id}, ${sp.scientificName}, ${sp.commonNames[0] ?? ""}, ${JSON.stringify(sp.commonNames)},
          ${sp.family}, ${sp.genus}, 0, 'community', ${rank}, ${user.id}, ${input.comment ?? ""}, '{}', ${now}
        WHERE ${stillShared}
        ON CONFLICT DO NOTHING`;
  // The reports were about the hidden proposer's words (and resolved by hiding them): the new
  // proposal starts without them, so the same people may report it if it needs it.
  const reportsGone = existing
    ? [
        // Right after the takeover: changes() is its own, so a lost race deletes nothing.
        sql`DELETE FROM proposal_reports WHERE result_id = ${id} AND changes() = 1`,
      ]
    : [];
  const results = await runBatch(db, [write, ...reportsGone, ...consensusStatements(request.id)]);
  const created = await db
    .select()
    .from(r)
    .where(and(eq(r.id, id), eq(r.proposedBy, user.id), eq(r.createdAt, now), eq(r.isHidden, false)))
    .get();
  if (!created) {
    await refuseIfDeactivated(env, user.id);
    await sharedRequestFor(env, user.id, request.id); // 404 when it was unshared or deleted meanwhile
    throw new AppError("CONFLICT", 409, `${sp.scientificName} was just proposed for this request; vote on it instead.`);
  }
  // A proposal that confirms the request at once (taking over a hidden one that kept its votes)
  // tells its owner that, the bigger news, and not also that someone suggests it.
  const consensusTold = await tellConsensus(env, request.id, consensusChange(results), logger);
  const told = await insertNotifications(
    db,
    "community_proposal",
    {
      userId: sql`${q.userId}`,
      title: sql`${`${user.username} suggests ${sp.scientificName}`}`,
      body: sql`${(input.comment ?? "").slice(0, 300)}`,
      data: sql`json_object('request_id', ${q.id}, 'result_id', ${id}, 'scientific_name', ${sp.scientificName}, 'author_id', ${user.id})`,
      // Per proposer: a takeover of a hidden proposal is news to the owner too.
      dedupeKey: sql`${existing ? `community_proposal:${id}:${user.id}` : `community_proposal:${id}`}`,
      createdAt: now,
    },
    // At most MAX_PROPOSAL_NOTICES_PER_HOUR_FROM_ONE_PROPOSER from this proposer to this owner in
    // the past hour (withdrawn ones included: their data keeps `author_id`).
    sql`FROM ${q} WHERE ${q.id} = ${request.id} AND ${q.userId} IS NOT NULL
         AND ${notAmong(sql`${q.userId}`, consensusTold)}
         AND ${underHourlyCap(sql`${q.userId}`, "community_proposal", user.id, now, MAX_PROPOSAL_NOTICES_PER_HOUR_FROM_ONE_PROPOSER)}`,
  );
  await announceNotifications(env, told, logger);
  return created;
}

/**
 * Its proposer withdraws a community proposal: it stays a candidate with the votes others gave it
 * (they backed the species, not the proposer), and its proposer's support stops counting, in the
 * same batch as the consensus it may move. Nobody is told of a withdrawal, and what was told of the
 * proposal stays; a consensus it brings about (support for another species now over 2/3) is told
 * as any other. Withdrawing again changes nothing. Proposing the species again takes it back.
 */
export async function withdrawProposal(env: Bindings, userId: string, resultId: string, logger?: Logger) {
  const db = database(env);
  const row = await db
    .select({ result: r, shared: q.isSharedWithCommunity, ownerActive: accountActive(q.userId) })
    .from(r)
    .innerJoin(q, eq(q.id, r.requestId))
    .where(eq(r.id, resultId))
    .get();
  if (row?.result.identificationSource !== "community") throw new AppError("NOT_FOUND", 404, "Proposal not found.");
  if (row.result.proposedBy !== userId) {
    // Someone else's: refused where it is shown to the caller, absent where it is not.
    if (row.result.isHidden || !row.shared || !row.ownerActive) throw new AppError("NOT_FOUND", 404, "Proposal not found.");
    throw new AppError("FORBIDDEN", 403, "Only its proposer can withdraw a proposal; downvote it to disagree.");
  }
  const now = new Date().toISOString();
  const results = await runBatch(db, [
    db
      .update(r)
      .set({ withdrawnAt: now })
      .where(and(eq(r.id, resultId), eq(r.proposedBy, userId), isNull(r.withdrawnAt), accountActive(sql`${userId}`))),
    ...consensusStatements(row.result.requestId),
  ]);
  if (changes(results[0]) === 0) await refuseIfDeactivated(env, userId);
  const change = consensusChange(results);
  await tellConsensus(env, row.result.requestId, change, logger);
  // Withdrawn already (again, or by a racing request): the time it was.
  const stored = await db.select({ withdrawnAt: r.withdrawnAt }).from(r).where(eq(r.id, resultId)).get();
  if (!stored) throw new AppError("NOT_FOUND", 404, "Proposal not found.");
  return { result_id: resultId, withdrawn_at: stored.withdrawnAt, community_result_id: change.after };
}

/**
 * A proposer proposing again the species they withdrew: the same result counts as their support
 * again (its comment replaced when they send one), while the request is still shared by an active
 * owner and their own account is active, in the same batch as the consensus.
 */
async function restoreProposal(env: Bindings, userId: string, requestId: string, resultId: string, input: ProposalInput, logger?: Logger) {
  const db = database(env);
  const results = await runBatch(db, [
    sql`UPDATE identification_results SET withdrawn_at = NULL, comment = ${input.comment ?? sql`comment`}
        WHERE id = ${resultId} AND proposed_by = ${userId} AND withdrawn_at IS NOT NULL AND is_hidden = 0 AND ${stillOpenTo(requestId, userId)}`,
    ...consensusStatements(requestId),
  ]);
  if (changes(results[0]) === 0) {
    await refuseIfDeactivated(env, userId);
    await sharedRequestFor(env, userId, requestId); // 404 when it was unshared or deleted meanwhile
  }
  const restored = await db
    .select()
    .from(r)
    .where(and(eq(r.id, resultId), eq(r.proposedBy, userId), isNull(r.withdrawnAt), eq(r.isHidden, false)))
    .get();
  if (!restored) throw new AppError("CONFLICT", 409, "This proposal just changed; load the request again.");
  await tellConsensus(env, requestId, consensusChange(results), logger);
  return restored;
}

/**
 * SQL: notification `n` is a "suggests" notice proposal `resultId` (an expression for one id)
 * raised: dedupe keys `community_proposal:<result>` and `…:<result>:<proposer>`, a range on the
 * unique index.
 */
export function proposalNoticesOf(resultId: SQL): SQL {
  return sql`n.dedupe_key >= 'community_proposal:' || ${resultId} AND n.dedupe_key < 'community_proposal:' || ${resultId} || ';'`;
}

/**
 * SQL: `userColumn` is none of the users `told` reached — for a smaller notice of the same act
 * (a suggestion, an agreement) that the bigger news (a consensus) already told them of.
 */
function notAmong(userColumn: SQL, told: readonly Notification[]): SQL {
  return sql`${userColumn} NOT IN (SELECT value FROM json_each(${JSON.stringify(told.map((n) => n.userId))}))`;
}

/** The dedupe key of the agreement notice voter `voterId` raised on proposal `resultId`. */
export function agreementKey(resultId: SQL, voterId: SQL): SQL {
  return sql`'community_agreement:' || ${resultId} || ':' || ${voterId}`;
}

/**
 * The proposer hears when someone else agrees with their proposal (once per voter), while the
 * request is shared: once its owner takes it out of the community, what they do with it (their
 * own votes, the only ones it still takes) is theirs alone. `consensusTold`: who this vote's consensus
 * notices reached (`tellConsensus`); a proposer among them has heard of this vote already, by the
 * bigger news ("your identification was confirmed"), and is not told twice.
 */
export async function tellAgreement(
  env: Bindings,
  voterId: string,
  resultId: string,
  logger?: Logger,
  consensusTold: readonly Notification[] = [],
): Promise<void> {
  const db = database(env);
  const createdAt = new Date().toISOString();
  const told = await insertNotifications(
    db,
    "community_agreement",
    {
      userId: sql`${r.proposedBy}`,
      title: sql`(SELECT username FROM users WHERE id = ${voterId}) || ' agrees: ' || ${r.scientificName}`,
      body: sql`''`,
      data: sql`json_object('request_id', ${r.requestId}, 'result_id', ${r.id})`,
      dedupeKey: agreementKey(sql`${r.id}`, sql`${voterId}`),
      createdAt,
    },
    sql`FROM ${r} WHERE ${r.id} = ${resultId} AND ${r.proposedBy} IS NOT NULL AND ${r.proposedBy} <> ${voterId} AND ${r.withdrawnAt} IS NULL
         AND ${notAmong(sql`${r.proposedBy}`, consensusTold)}
         AND ${underHourlyCap(sql`${r.proposedBy}`, "community_agreement", null, createdAt, MAX_AGREEMENT_NOTICES_PER_HOUR)}
         AND EXISTS (SELECT 1 FROM ${q} WHERE ${q.id} = ${r.requestId} AND ${q.isSharedWithCommunity} = 1)`,
  );
  await announceNotifications(env, told, logger);
}

// ---- Moderation ------------------------------------------------------------------------------

export async function reportProposal(env: Bindings, userId: string, resultId: string, reason: string) {
  const db = database(env);
  const row = await db
    .select({ result: r, shared: q.isSharedWithCommunity, ownerId: q.userId })
    .from(r)
    .innerJoin(q, eq(q.id, r.requestId))
    // A deactivated owner's requests are withdrawn: as absent for everyone.
    .where(and(eq(r.id, resultId), accountActive(q.userId)))
    .get();
  if (!row || row.result.isHidden || (!row.shared && row.ownerId !== userId)) throw new AppError("NOT_FOUND", 404, "Result not found.");
  if (row.result.identificationSource !== "community")
    throw new AppError("VALIDATION_ERROR", 400, "Only community proposals can be reported.", { result_id: ["Not a proposal."] });
  if (row.result.proposedBy === userId) throw new AppError("VALIDATION_ERROR", 400, "You cannot report your own proposal.");
  const inserted = await db
    .insert(proposalReports)
    .select(rowIf(proposalReports, { resultId, userId, reason }, accountActive(sql`${userId}`)))
    .onConflictDoNothing()
    .returning()
    .get();
  if (!inserted) {
    await refuseIfDeactivated(env, userId); // deactivated (or deleted) meanwhile: nothing written
    throw new AppError("ALREADY_REPORTED", 409, "You already reported this proposal.");
  }
  return { result_id: resultId, reported: true as const };
}

/** Open reports, oldest first, one row per proposal with how many reported it. */
export async function reportedProposals(env: Bindings, page: PageRequest) {
  const db = database(env);
  const pr = proposalReports;
  const open = isNull(pr.resolvedAt);
  return selectPage(
    db,
    {
      rows: db
        .select({
          result_id: r.id,
          request_id: r.requestId,
          scientific_name: r.scientificName,
          comment: r.comment,
          proposed_by: r.proposedBy,
          is_hidden: r.isHidden,
          reports: sql<number>`count(*)`.as("reports"),
          reasons: sql<string>`json_group_array(${pr.reason})`.as("reasons"),
          first_reported_at: sql<string>`min(${pr.createdAt})`.as("first_reported_at"),
        })
        .from(pr)
        .innerJoin(r, eq(r.id, pr.resultId))
        .where(open)
        .groupBy(r.id)
        .orderBy(sql`min(${pr.createdAt})`)
        .$dynamic(),
      count: db
        .select({ n: sql<number>`count(DISTINCT ${pr.resultId})` })
        .from(pr)
        .where(open)
        .$dynamic(),
    },
    page,
  );
}

/**
 * A moderator hides a proposal (it stops counting and is not shown to others) or shows it again;
 * either way its open reports are resolved and consensus is recomputed in the same batch, which
 * writes only while the moderator's account is active (a deactivation committed meanwhile: 401).
 */
export async function moderateProposal(env: Bindings, moderatorId: string, resultId: string, hidden: boolean, logger?: Logger) {
  const db = database(env);
  const row = await db.select().from(r).where(eq(r.id, resultId)).get();
  if (row?.identificationSource !== "community") throw new AppError("NOT_FOUND", 404, "Proposal not found.");
  const active = accountActive(sql`${moderatorId}`);
  // Hidden for what its proposer wrote: the "suggests" notifications that quote it are withdrawn
  // too (each proposer's, by their dedupe keys `community_proposal:<result>[:<proposer>]`).
  const raised = sql`(SELECT id FROM notifications n WHERE ${proposalNoticesOf(sql`${resultId}`)} AND ${active})`;
  const withdraw = hidden ? withdrawStatements(db, raised) : [];
  const results = await runBatch(db, [
    ...withdraw,
    db
      .update(r)
      .set({ isHidden: hidden })
      .where(and(eq(r.id, resultId), active)),
    db
      .update(proposalReports)
      .set({ resolvedAt: new Date().toISOString() })
      .where(and(eq(proposalReports.resultId, resultId), isNull(proposalReports.resolvedAt), active)),
    ...consensusStatements(row.requestId),
  ]);
  if (changes(results[withdraw.length]) === 0) await refuseIfDeactivated(env, moderatorId);
  if (hidden) await announceWithdrawals(env, tableRows(notifications, results[0]), logger);
  const change = consensusChange(results);
  await tellConsensus(env, row.requestId, change, logger);
  return { result_id: resultId, is_hidden: hidden, community_result_id: change.after };
}
