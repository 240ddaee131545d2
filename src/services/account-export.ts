/**
 * The account export (docs/api.md "Exporting your data"): everything the service holds about one
 * user, as one JSON document they download (`GET auth/user/export/`). Each part is shown with the
 * body its own route answers, so its field names are the API's, and photos are the URLs the API
 * gives for them (the owner may fetch them). Notifications are the exception: every one the
 * service made for the user — not only the in-app list's — each with the channels it went by.
 *
 * Two things are never in it:
 * - secrets: the password hash, refresh and access tokens and their jtis, session ids, reset,
 *   email-change and WebSocket tickets, the calendar feed's signed URL and the feed id it signs,
 *   push endpoints (only their host: which push service) and their keys, Idempotency-Keys and their stored answers, OAuth state, the
 *   email provider's message ids and the notifications' and deliveries' dedupe keys. Every
 *   read below names its columns (or reads a table with none of these), so a secret column added
 *   later stays out.
 * - anyone else's private data: another user's plants, notes and unshared requests, and other
 *   people's votes (only counts, as the API shows them), other people's reports and which
 *   moderator handled the user's own, and who caused a notification (its `author_id`). Every
 *   read is scoped to the user: their rows, or rows joined to their own (results of their
 *   requests, reactions on their posts).
 *
 * The parts with a small cap (docs/api.md Limits: collections, care cards, reminders) and the
 * one-row ones are read whole, in one `db.batch` with the first page of each part that grows
 * without a cap and of the plants: one round trip for most accounts. Those parts (requests,
 * diagnoses, events, RSVPs, the forum's topics, posts, reactions and follows, blog posts,
 * revisions, images and comments, reports, proposals, votes, notifications) and each collection's
 * plants (up to 5 000) go on a page at a time as the document is written (exportAccountStream), so
 * the Worker never holds one of them whole.
 * The file is then no one snapshot (D1 has no long read transaction): a write during the download
 * may or may not be in it, but each list's order is one no write changes on a row (when it was
 * made, then a unique key) and each page starts after the last row written, so a row that stays
 * is in it exactly once.
 */
import { twoFactorStatus } from "./two-factor";
import { and, asc, count, desc, eq, getTableColumns, inArray, isNull, ne, or, type SQL, sql } from "drizzle-orm";
import type { BatchItem, BatchResponse } from "drizzle-orm/batch";
import { alias, type SQLiteColumn, type SQLiteTable } from "drizzle-orm/sqlite-core";
import { getConfig } from "../config";
import { type Database, database } from "../db/client";
import { ascending, descending, type KeysetOrder, keysetAfter, keysetOrderBy, keysetPages, type OrderKey } from "../db/keyset";
import {
  blogCommentReports,
  blogComments,
  blogImages,
  blogPosts,
  blogRevisions,
  calendarEvents,
  calendarFeeds,
  calendarRsvps,
  careReminders,
  collections,
  DELIVERY_STATUSES,
  diseaseRequests,
  diseaseResults,
  emailSuppressions,
  forumAttachments,
  forumPosts,
  forumReactions,
  forumReports,
  forumSubscriptions,
  forumTopics,
  identificationRequests,
  identificationResults,
  notificationDeliveries,
  notificationPreferences,
  notifications,
  oauthAccounts,
  proposalReports,
  pushSubscriptions,
  savedCareInstructions,
  userPlants,
  users,
  votes,
} from "../db/schema";
import type { AuthenticatedUser, Bindings } from "../env";
import { AppError } from "../lib/errors";
import { apiFields } from "../lib/fields";
import { mediaUrl } from "./blog-blocks";
import { commentBody, selectComments } from "./blog-comments";
import { detailBody, groupTaxonomy, isWriter, revisionBody, selectPostDetails, selectTaxonomy } from "./blog-posts";
import { eventBody, selectEvents } from "./calendar";
import { collectionBody, type PlantRow, plantBody, selectCollections, selectPlants } from "./collections";
import { diseaseRequestBody, diseaseResultBody } from "./diseases";
import {
  type Attachment,
  attachmentBody,
  postBody,
  type ReactionCounts,
  type ReactionType,
  reportReceipt,
  selectPosts,
  selectTopics,
  topicBody,
} from "./forum";
import { identificationRequestBody, identificationResultBody, shownToOwner } from "./identification-requests";
import { notWithdrawn } from "./notification-delivery";
import { NEWEST_FIRST } from "./notifications";
import { preferencesOf } from "./notification-preferences";
import { enforceRateLimit } from "./rate-limits";
import { reminderBody, selectReminders } from "./reminders";
import { savedCareBody } from "./saved-care";
import { liveSessionsQuery, sessionSummaries } from "./sessions";
import { accountActive, userProfile } from "./users";

/**
 * Every table that holds data about or by a user, by its SQL name, and where the export shows it
 * or why it does not. test/routes/account-export-inventory.test.ts fails when a table linked to
 * `users` (by a foreign key, or through a table that is) is in neither list: a new one must be
 * exported or excluded here, with its reason.
 */
export const EXPORTED_TABLES = {
  users: "`account`: the profile as auth/user/ shows it (never the password hash)",
  oauth_accounts: "`sign_in_methods`: provider, its email and when linked",
  two_factor: "`two_factor`: on or off and since when (never the secret or the recovery codes)",
  notification_preferences: "`notification_preferences`",
  email_suppressions: "`email_suppressions`: the account's addresses no email goes to, and why (no user column: by address)",
  collections: "`collections`",
  user_plants: "`collections[].plants`",
  identification_requests: "`identification_requests`",
  identification_results: "`identification_requests[].results`; `community.proposals` (the user's own proposals)",
  votes: "`identification_requests[].my_votes`, `community.votes` (the user's own votes only)",
  disease_requests: "`disease_requests`",
  disease_results: "`disease_requests[].results`",
  saved_care_instructions: "`saved_care_instructions`",
  care_reminders: "`reminders`",
  calendar_events: "`calendar.events` the user organises",
  calendar_rsvps: "`calendar.rsvps`",
  calendar_feeds: "`calendar.feed`: its dates (never the URL or the id it signs)",
  forum_topics: "`forum.topics`",
  forum_posts: "`forum.posts`",
  forum_reactions: "`forum.reactions` (the user's); counts on the user's posts",
  forum_attachments: "`forum.posts[].attachments`",
  forum_subscriptions: "`forum.subscriptions`",
  forum_reports: "`reports.forum_posts` (never who handled them)",
  blog_posts: "`blog.posts` the user wrote",
  blog_post_categories: "`blog.posts[].categories`",
  blog_post_tags: "`blog.posts[].tags`",
  blog_revisions: "`blog.revisions` the user saved",
  blog_images: "`blog.images` the user uploaded",
  blog_comments: "`blog_comments`",
  blog_comment_reports: "`reports.blog_comments`",
  proposal_reports: "`reports.proposals`",
  push_subscriptions: "`push_devices`: the push service's host, dates and user agent (never the endpoint or keys)",
  refresh_tokens: "`sessions`: as auth/sessions/ lists them (never the token hashes or session ids)",
  notifications: "`notifications`",
  notification_deliveries: "`notifications[].channels`",
} as const;

export const NOT_EXPORTED_TABLES = {
  user_photo_bytes:
    "the stored size of each photo the account keeps, for its storage allowance; the photos themselves are in the export with their rows",
  password_reset_tokens: "secret: an emailed reset link's hash, valid for an hour",
  email_change_tokens:
    "secret: an emailed confirmation link's hash and the session that asked for it; the address it would change to is `account.pending_email`",
  ws_tickets: "secret: a one-use WebSocket ticket, valid for seconds",
  oauth_states: "secret: an OAuth sign-in's state, valid for minutes; no user column",
  revoked_tokens: "secret: ids of ended access tokens, kept until they expire; no user column",
  revoked_sessions: "secret: ids of ended sessions, kept until their access tokens expire; no user column",
  idempotency_keys:
    "the client's retry keys and stored copies of answers already given (kept 24 h); what they hold is in the export where the service still holds it",
  push_sends: "which device ids a push delivery reached, for its retries: the push channel's `sent_at` is in `notifications[].channels`",
  blog_post_views: "readers' daily view counts of a post: about its readers, not its writer, and counted for the editors",
  two_factor_resets:
    "secret: the hashes of a two-factor reset's emailed start and cancel links; an open reset is listed at `auth/2fa/resets/`, and its start, cancel and completion are security notices in `notifications`",
  retired_usernames: "a hash of a deleted account's name, kept so nobody takes it; by design it names no account",
} as const;

export const EXPORT_FORMAT: "plant-community-export" = "plant-community-export";
export const EXPORT_VERSION: 1 = 1;

/** The ways a notification reaches its user: the in-app list, email, Web Push. */
export const NOTIFICATION_CHANNELS = ["in_app", "email", "push"] as const;
/** A channel's state in the export: a delivery's status (migrations/0020); the in-app list's is `sent`. */
export { DELIVERY_STATUSES };

type Channel = (typeof NOTIFICATION_CHANNELS)[number];
type ChannelState = { channel: Channel; status: (typeof DELIVERY_STATUSES)[number]; sent_at: string | null };

/**
 * A notification's `data` without other people's ids: the notices one user's act caused another
 * (a mention, a comment reply, a community proposal) carry that user's id as `author_id`, for the
 * per-sender caps (services/notifications.ts `underHourlyCap`). The rest are links to what the
 * notification is about.
 */
const OTHER_PEOPLE_KEYS = new Set(["author_id"]);
function ownData(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).filter(([key]) => !OTHER_PEOPLE_KEYS.has(key)));
}

/**
 * A proposal on a request no longer on show (taken out of the community, or its owner's account
 * deactivated), as its proposer wrote it. Its votes, rank and whether it was accepted are what the
 * request's owner (and nobody else, since) did with it on a request that is theirs alone again:
 * the proposer, who can no longer see the request, is not told them.
 */
function proposalAsWritten(row: typeof identificationResults.$inferSelect) {
  return apiFields(
    row,
    "id requestId speciesId scientificName plantName commonNames family genus identificationSource proposedBy withdrawnAt comment createdAt",
  );
}

/** A push endpoint's host (`fcm.googleapis.com`): which service reaches the device, and nothing that reaches it. */
function pushService(endpoint: string): string | null {
  return URL.canParse(endpoint) ? new URL(endpoint).host : null;
}

/** Groups rows by a key, keeping their order. */
function groupBy<T>(rows: readonly T[], key: (row: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const group = out.get(key(row));
    if (group) group.push(row);
    else out.set(key(row), [row]);
  }
  return out;
}

/** How many rows one read of a paged part takes: the notifications and every other part that grows without a cap. */
export const EXPORT_PAGE = 500;

/** A list of the document written a page at a time, each page read once the one before is written. */
class Streamed<Body> {
  constructor(readonly pages: AsyncGenerator<Body[], void, undefined>) {}
}

type Queries = readonly [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]];

/** One page's reads, run in one batch (the rows, then what they need), and the page they make: the rows in keyset order and their bodies. */
interface PageRead<Row, Body> {
  queries: Queries;
  page: (results: readonly unknown[]) => { rows: Row[]; bodies: Body[] };
}

function pageRead<Q extends Queries, Row, Body>(
  queries: Q,
  page: (results: BatchResponse<Q>) => { rows: Row[]; bodies: Body[] },
): PageRead<Row, Body> {
  // The results are the batch's answers to `queries`, in their order: the one place they lose their types.
  return { queries, page: (results) => page(results as BatchResponse<Q>) };
}

/** A page of one query whose rows are the page's bodies. */
function rowsRead<Row, Body>(query: BatchItem<"sqlite"> & PromiseLike<Row[]>, body: (row: Row) => Body): PageRead<Row, Body> {
  // The batch answers the query with the rows it reads (its PromiseLike type).
  return { queries: [query], page: ([rows]) => ({ rows: rows as Row[], bodies: (rows as Row[]).map(body) }) };
}

/** A part of the export read in keyset pages: its order, and the reads of the page after a position (none: the first page). */
interface PagedPart<Row, Body> {
  order: KeysetOrder<Row>;
  read: (after: SQL | undefined) => PageRead<Row, Body>;
}

/** A paged part whose first page is read in the account's batch: that page's queries, and the list once their results are in. */
interface Opening<Body> {
  queries: Queries;
  list: (results: readonly unknown[]) => Streamed<Body>;
}

function opening<Row, Body>(db: Database, pageSize: number, part: PagedPart<Row, Body>): Opening<Body> {
  const first = part.read(undefined);
  const next = async (after: SQL | undefined) => {
    const read = part.read(after);
    return read.page(await db.batch(read.queries));
  };
  return { queries: first.queries, list: (results) => new Streamed(keysetPages(part.order, pageSize, next, first.page(results))) };
}

/** The lists of several openings, from the results of their queries run one after the other (in the openings' order). */
function openedLists<T extends Record<string, Opening<unknown>>>(
  openings: T,
  results: readonly unknown[],
): { [K in keyof T]: T[K] extends Opening<infer Body> ? Streamed<Body> : never } {
  let at = 0;
  const lists = Object.entries(openings).map(([key, o]) => {
    const list = o.list(results.slice(at, at + o.queries.length));
    at += o.queries.length;
    return [key, list] as const;
  });
  return Object.fromEntries(lists) as never;
}

/** The user's forum posts, oldest first: `created_at`, then `id` (forum_posts_author_created_idx holds them so). */
export const OLDEST_POST_FIRST: KeysetOrder<{ id: string; created_at: string }> = ascending(
  [forumPosts.createdAt, "created_at"],
  [forumPosts.id, "id"],
);

/** One page of the user's forum posts, after `after` (none: from the first), as the forum reads them. */
export function ownPostsPage(env: Bindings, userId: string, after: SQL | undefined, pageSize: number) {
  return selectPosts(env)
    .where(and(eq(forumPosts.authorId, userId), after))
    .orderBy(...keysetOrderBy(OLDEST_POST_FIRST))
    .limit(pageSize);
}

/** A collection's plants, newest first (`created_at`, then `id`): an order no edit changes on a plant. */
const NEWEST_PLANT_FIRST: KeysetOrder<PlantRow> = descending([userPlants.createdAt, "createdAt"], [userPlants.id, "id"]);

/**
 * Each collection's plants as a Streamed list, from the first page of all of them: the user's
 * plants in the document's order (their collection's place in `collectionIds`, then newest first),
 * read in the batch that read the collections. When that page is short it holds every plant; else
 * the collections before its last plant's are whole in it, that one goes on after its last plant,
 * and the ones after it are read from their start, each a page at a time within its collection.
 */
function collectionPlants(db: Database, userId: string, pageSize: number, collectionIds: readonly string[], firstPage: PlantRow[]) {
  const head = groupBy(firstPage, (p) => p.collectionId);
  // The place of the collection the first page ends in (none when it holds every plant).
  const lastAt = firstPage.length < pageSize ? collectionIds.length : collectionIds.indexOf(firstPage.at(-1)!.collectionId);
  const read = (collectionId: string) => async (after: SQL | undefined) => {
    const rows = await selectPlants(db, and(eq(userPlants.userId, userId), eq(userPlants.collectionId, collectionId), after))
      .orderBy(...keysetOrderBy(NEWEST_PLANT_FIRST))
      .limit(pageSize);
    return { rows, bodies: rows.map(plantBody) };
  };
  async function* pages(collectionId: string, at: number): AsyncGenerator<ReturnType<typeof plantBody>[], void, undefined> {
    const rows = head.get(collectionId) ?? [];
    if (rows.length > 0) yield rows.map(plantBody);
    if (at < lastAt) return;
    const page = read(collectionId);
    const lastRead = rows.at(-1);
    yield* keysetPages(NEWEST_PLANT_FIRST, pageSize, page, lastRead && (await page(keysetAfter(NEWEST_PLANT_FIRST, lastRead))));
  }
  return new Map(collectionIds.map((id, at) => [id, new Streamed(pages(id, at))]));
}

/**
 * Everything `viewer`'s account holds, as the export document. Its parts that grow without a cap
 * are lists read `pageSize` rows at a time as exportAccountStream writes them: their first pages
 * in one batch with the rest of the account, the next ones as the document is written. Spends the
 * user's ACCOUNT_EXPORT_RATE_LIMIT first (429 past it): the export is the heaviest read there is.
 */
export async function exportAccount(env: Bindings, viewer: AuthenticatedUser, now = new Date(), pageSize = EXPORT_PAGE) {
  const userId = viewer.id;
  await enforceRateLimit(env, `account-export:user:${userId}`, getConfig(env).ACCOUNT_EXPORT_RATE_LIMIT);
  const db = database(env);
  // Whether it is on and since when: never the secret or the recovery codes.
  const twoFactor = await twoFactorStatus(env, userId);
  const q = identificationRequests;
  const r = identificationResults;
  const dq = diseaseRequests;
  const dr = diseaseResults;
  const fp = forumPosts;
  const fr = forumReactions;
  // The blog posts the user wrote, as blog/posts/{id}/ shows them to the user: drafts only while
  // they still write for the blog. A writer taken off it keeps their published posts, not a view of
  // the drafts the editors go on working on (the API answers those 404 to them).
  const ownPost = and(eq(blogPosts.authorId, userId), isWriter(viewer) ? undefined : eq(blogPosts.status, "published"));
  const voteColumns = {
    id: votes.id,
    resultId: votes.resultId,
    requestId: r.requestId,
    voteType: votes.voteType,
    createdAt: votes.createdAt,
  };
  const voteBody = (v: { resultId: string; requestId: string; voteType: string; createdAt: string }) =>
    apiFields(v, "resultId requestId voteType createdAt");
  const oldestVoteFirst = [asc(votes.createdAt), asc(votes.id)] as const;
  /** The ids of one page of a part's rows, for the reads of what those rows need. */
  const idsOnPage = (table: SQLiteTable, id: SQLiteColumn, where: SQL | undefined, order: readonly OrderKey[]) =>
    db
      .select({ id })
      .from(table)
      .where(where)
      .orderBy(...keysetOrderBy(order))
      .limit(pageSize);

  // The parts that grow without a cap, each in an order no write changes on a row (when it was
  // made, then a unique key): a keyset page then neither repeats nor skips a row that stays.
  const requests: PagedPart<typeof q.$inferSelect, unknown> = {
    order: descending([q.createdAt, "createdAt"], [q.id, "id"]),
    read: (after) => {
      const where = and(eq(q.userId, userId), after);
      const onPage = idsOnPage(q, q.id, where, requests.order);
      return pageRead(
        [
          db
            .select()
            .from(q)
            .where(where)
            .orderBy(...keysetOrderBy(requests.order))
            .limit(pageSize),
          // Every result of the page's requests (community proposals on them included), as their owner sees them.
          db
            .select(getTableColumns(r))
            .from(r)
            .where(and(inArray(r.requestId, onPage), shownToOwner))
            .orderBy(desc(r.confidenceScore), asc(r.rank)),
          // The user's own votes on them.
          db
            .select(voteColumns)
            .from(votes)
            .innerJoin(r, eq(r.id, votes.resultId))
            .where(and(eq(votes.userId, userId), inArray(r.requestId, onPage)))
            .orderBy(...oldestVoteFirst),
        ] as const,
        ([rows, results, myVotes]) => {
          const resultsByRequest = groupBy(results, (x) => x.requestId);
          const votesByRequest = groupBy(myVotes, (v) => v.requestId);
          return {
            rows,
            bodies: rows.map((row) => ({
              ...identificationRequestBody(row),
              results: (resultsByRequest.get(row.id) ?? []).map(identificationResultBody),
              my_votes: (votesByRequest.get(row.id) ?? []).map(voteBody),
            })),
          };
        },
      );
    },
  };
  const diagnoses: PagedPart<typeof dq.$inferSelect, unknown> = {
    order: descending([dq.createdAt, "createdAt"], [dq.id, "id"]),
    read: (after) => {
      const where = and(eq(dq.userId, userId), after);
      return pageRead(
        [
          db
            .select()
            .from(dq)
            .where(where)
            .orderBy(...keysetOrderBy(diagnoses.order))
            .limit(pageSize),
          db
            .select(getTableColumns(dr))
            .from(dr)
            .where(inArray(dr.requestId, idsOnPage(dq, dq.id, where, diagnoses.order)))
            .orderBy(desc(dr.probability), asc(dr.rank)),
        ] as const,
        ([rows, results]) => {
          const resultsByRequest = groupBy(results, (x) => x.requestId);
          return {
            rows,
            bodies: rows.map((row) => ({
              ...diseaseRequestBody(row),
              results: (resultsByRequest.get(row.id) ?? []).map(diseaseResultBody),
            })),
          };
        },
      );
    },
  };
  const rsvps: PagedPart<{ eventId: string; createdAt: string }, unknown> = {
    order: ascending([calendarRsvps.createdAt, "createdAt"], [calendarRsvps.eventId, "eventId"]),
    read: (after) =>
      rowsRead(
        db
          .select({
            eventId: calendarRsvps.eventId,
            status: calendarRsvps.status,
            createdAt: calendarRsvps.createdAt,
            updatedAt: calendarRsvps.updatedAt,
          })
          .from(calendarRsvps)
          .where(and(eq(calendarRsvps.userId, userId), after))
          .orderBy(...keysetOrderBy(rsvps.order))
          .limit(pageSize),
        (x) => apiFields(x, "eventId status createdAt updatedAt"),
      ),
  };
  const topics: PagedPart<{ id: string; created_at: string }, unknown> = {
    order: ascending([forumTopics.createdAt, "created_at"], [forumTopics.id, "id"]),
    read: (after) =>
      rowsRead(
        selectTopics(env)
          .where(and(eq(forumTopics.authorId, userId), after))
          .orderBy(...keysetOrderBy(topics.order))
          .limit(pageSize),
        topicBody,
      ),
  };
  const posts: PagedPart<{ id: string; created_at: string }, unknown> = {
    order: OLDEST_POST_FIRST,
    read: (after) => {
      const where = and(eq(fp.authorId, userId), after);
      const onPage = inArray(fp.id, idsOnPage(fp, fp.id, where, posts.order));
      // The page's live posts: their reactions and photos are shown, as the forum shows them.
      const livePostOnPage = and(onPage, eq(fp.isDeleted, false));
      return pageRead(
        [
          ownPostsPage(env, userId, after, pageSize),
          // Reactions on the user's posts, counted per type as the forum shows them (whose they are stays out).
          db
            .select({ postId: fr.postId, type: fr.type, n: count(), mine: sql<number>`max(${fr.userId} = ${userId})` })
            .from(fr)
            .innerJoin(fp, eq(fp.id, fr.postId))
            .where(livePostOnPage)
            .groupBy(fr.postId, fr.type),
          db
            .select({
              postId: forumAttachments.postId,
              image: forumAttachments.image,
              width: forumAttachments.width,
              height: forumAttachments.height,
            })
            .from(forumAttachments)
            .innerJoin(fp, eq(fp.id, forumAttachments.postId))
            .where(livePostOnPage)
            .orderBy(asc(forumAttachments.postId), asc(forumAttachments.position)),
          // Which of the page's posts are their topic's marked solution.
          db
            .select({ postId: forumTopics.solutionPostId })
            .from(forumTopics)
            .innerJoin(fp, eq(fp.id, forumTopics.solutionPostId))
            .where(onPage),
        ] as const,
        ([rows, reactionTallies, attachmentRows, solutionRows]) => {
          const tallies = new Map<string, ReactionCounts>();
          const mine = new Map<string, ReactionType[]>();
          for (const t of reactionTallies) {
            const counts = tallies.get(t.postId) ?? { like: 0, love: 0, helpful: 0, thanks: 0 };
            counts[t.type] = t.n;
            tallies.set(t.postId, counts);
            if (t.mine) mine.set(t.postId, [...(mine.get(t.postId) ?? []), t.type]);
          }
          const attachments = new Map<string, Attachment[]>();
          for (const a of attachmentRows) {
            const body = attachmentBody(a);
            if (body) attachments.set(a.postId, [...(attachments.get(a.postId) ?? []), body]);
          }
          const solutions = new Set(solutionRows.map((s) => s.postId));
          return {
            rows,
            bodies: rows.map((p) =>
              postBody(p, solutions.has(p.id) ? p.id : null, tallies.get(p.id), mine.get(p.id), attachments.get(p.id)),
            ),
          };
        },
      );
    },
  };
  const reactions: PagedPart<{ postId: string; type: string; createdAt: string }, unknown> = {
    order: ascending([fr.createdAt, "createdAt"], [fr.postId, "postId"], [fr.type, "type"]),
    read: (after) =>
      rowsRead(
        db
          .select({ postId: fr.postId, type: fr.type, createdAt: fr.createdAt })
          .from(fr)
          .where(and(eq(fr.userId, userId), after))
          .orderBy(...keysetOrderBy(reactions.order))
          .limit(pageSize),
        (x) => apiFields(x, "postId type createdAt"),
      ),
  };
  const subscriptions: PagedPart<{ topicId: string; createdAt: string }, unknown> = {
    order: ascending([forumSubscriptions.createdAt, "createdAt"], [forumSubscriptions.topicId, "topicId"]),
    read: (after) =>
      rowsRead(
        db
          .select({ topicId: forumSubscriptions.topicId, createdAt: forumSubscriptions.createdAt })
          .from(forumSubscriptions)
          .where(and(eq(forumSubscriptions.userId, userId), after))
          .orderBy(...keysetOrderBy(subscriptions.order))
          .limit(pageSize),
        (x) => apiFields(x, "topicId createdAt"),
      ),
  };
  const revisions: PagedPart<{ postId: string; number: number; createdAt: string }, unknown> = {
    order: ascending([blogRevisions.createdAt, "createdAt"], [blogRevisions.postId, "postId"], [blogRevisions.number, "number"]),
    // The revisions the user saved, on any post: which, its number and when (the post's own text is in `posts`).
    read: (after) =>
      rowsRead(
        db
          .select({
            postId: blogRevisions.postId,
            number: blogRevisions.number,
            createdAt: blogRevisions.createdAt,
            authorId: blogRevisions.authorId,
            username: users.username,
            current: blogPosts.revision,
          })
          .from(blogRevisions)
          .innerJoin(blogPosts, eq(blogPosts.id, blogRevisions.postId))
          .innerJoin(users, eq(users.id, blogRevisions.authorId))
          .where(and(eq(blogRevisions.authorId, userId), after))
          .orderBy(...keysetOrderBy(revisions.order))
          .limit(pageSize),
        (x) => ({ post_id: x.postId, ...revisionBody(x, x.current) }),
      ),
  };
  const images: PagedPart<{ ref: string; createdAt: string }, unknown> = {
    order: ascending([blogImages.createdAt, "createdAt"], [blogImages.ref, "ref"]),
    read: (after) =>
      rowsRead(
        db
          .select({ ref: blogImages.ref, createdAt: blogImages.createdAt })
          .from(blogImages)
          .where(and(eq(blogImages.uploadedBy, userId), after))
          .orderBy(...keysetOrderBy(images.order))
          .limit(pageSize),
        (x) => ({ id: x.ref, url: mediaUrl(x.ref), created_at: x.createdAt }),
      ),
  };
  const comments: PagedPart<{ id: string; createdAt: string }, unknown> = {
    order: ascending([blogComments.createdAt, "createdAt"], [blogComments.id, "id"]),
    read: (after) =>
      rowsRead(
        selectComments(env)
          .where(and(eq(blogComments.userId, userId), after))
          .orderBy(...keysetOrderBy(comments.order))
          .limit(pageSize),
        commentBody,
      ),
  };
  // Reports the user filed: what, why, and where it stands. Never who dealt with it, nor anyone else's reports.
  const forumReportList: PagedPart<{ id: string; created_at: string }, unknown> = {
    order: ascending([forumReports.createdAt, "created_at"], [forumReports.id, "id"]),
    read: (after) =>
      rowsRead(
        db
          .select({
            id: forumReports.id,
            post_id: forumReports.postId,
            reason: forumReports.reason,
            status: forumReports.status,
            created_at: forumReports.createdAt,
            resolved_at: forumReports.resolvedAt,
          })
          .from(forumReports)
          .where(and(eq(forumReports.reporterId, userId), after))
          .orderBy(...keysetOrderBy(forumReportList.order))
          .limit(pageSize),
        (x) => ({ ...reportReceipt(x), reason: x.reason, resolved_at: x.resolved_at }),
      ),
  };
  const commentReportList: PagedPart<{ id: string; createdAt: string }, unknown> = {
    order: ascending([blogCommentReports.createdAt, "createdAt"], [blogCommentReports.id, "id"]),
    read: (after) =>
      rowsRead(
        db
          .select({
            id: blogCommentReports.id,
            commentId: blogCommentReports.commentId,
            reason: blogCommentReports.reason,
            status: blogCommentReports.status,
            createdAt: blogCommentReports.createdAt,
          })
          .from(blogCommentReports)
          .where(and(eq(blogCommentReports.reporterId, userId), after))
          .orderBy(...keysetOrderBy(commentReportList.order))
          .limit(pageSize),
        (x) => apiFields(x, "id commentId reason status createdAt"),
      ),
  };
  const proposalReportList: PagedPart<{ resultId: string; createdAt: string }, unknown> = {
    order: ascending([proposalReports.createdAt, "createdAt"], [proposalReports.resultId, "resultId"]),
    read: (after) =>
      rowsRead(
        db
          .select({
            resultId: proposalReports.resultId,
            reason: proposalReports.reason,
            createdAt: proposalReports.createdAt,
            resolvedAt: proposalReports.resolvedAt,
          })
          .from(proposalReports)
          .where(and(eq(proposalReports.userId, userId), after))
          .orderBy(...keysetOrderBy(proposalReportList.order))
          .limit(pageSize),
        // A proposal's reports are closed together when a moderator hides or shows it again.
        (x) => ({
          result_id: x.resultId,
          reason: x.reason,
          status: x.resolvedAt === null ? ("open" as const) : ("resolved" as const),
          created_at: x.createdAt,
          resolved_at: x.resolvedAt,
        }),
      ),
  };
  // On other people's requests (or a request whose owner is gone).
  const notOwnRequest = or(isNull(q.userId), ne(q.userId, userId));
  const proposals: PagedPart<{ id: string; createdAt: string }, unknown> = {
    order: ascending([r.createdAt, "createdAt"], [r.id, "id"]),
    // Species the user proposed on other people's requests: their own words, and the request's id only.
    // Whether the request is on show now: once it is not, what became of the proposal is its owner's.
    read: (after) =>
      rowsRead(
        db
          .select({ ...getTableColumns(r), onShow: sql<number>`(${q.isSharedWithCommunity} = 1 AND ${accountActive(q.userId)})` })
          .from(r)
          .innerJoin(q, eq(q.id, r.requestId))
          .where(and(eq(r.proposedBy, userId), notOwnRequest, after))
          .orderBy(...keysetOrderBy(proposals.order))
          .limit(pageSize),
        ({ onShow, ...row }) => (onShow ? identificationResultBody(row) : proposalAsWritten(row)),
      ),
  };
  // The user's own votes on other people's results: other people's votes are in the results' counts.
  const communityVotes: PagedPart<{ id: string; createdAt: string }, unknown> = {
    order: ascending([votes.createdAt, "createdAt"], [votes.id, "id"]),
    read: (after) =>
      rowsRead(
        db
          .select(voteColumns)
          .from(votes)
          .innerJoin(r, eq(r.id, votes.resultId))
          .innerJoin(q, eq(q.id, r.requestId))
          .where(and(eq(votes.userId, userId), notOwnRequest, after))
          .orderBy(...keysetOrderBy(communityVotes.order))
          .limit(pageSize),
        voteBody,
      ),
  };
  // Events the user organises, and blog posts they wrote, in the order they were made: when an event
  // starts and when a post was last changed move with edits, which a keyset page could skip or repeat.
  const events: PagedPart<{ id: string; createdAt: string }, unknown> = {
    order: ascending([calendarEvents.createdAt, "createdAt"], [calendarEvents.id, "id"]),
    read: (after) =>
      rowsRead(
        selectEvents(db, viewer, and(eq(calendarEvents.organizerId, userId), after))
          .orderBy(...keysetOrderBy(events.order))
          .limit(pageSize),
        eventBody,
      ),
  };
  // Blog posts the user wrote (drafts included while a writer), as the editor shows them, with their categories and tags.
  const blogPostList: PagedPart<{ id: string; createdAt: string }, unknown> = {
    order: ascending([blogPosts.createdAt, "createdAt"], [blogPosts.id, "id"]),
    read: (after) => {
      const where = and(ownPost, after);
      const onPage = idsOnPage(blogPosts, blogPosts.id, where, blogPostList.order);
      return pageRead(
        [
          selectPostDetails(env)
            .where(where)
            .orderBy(...keysetOrderBy(blogPostList.order))
            .limit(pageSize),
          ...selectTaxonomy(db, (postId) => inArray(postId, onPage)),
        ] as const,
        ([rows, categoryRows, tagRows]) => {
          const taxonomy = groupTaxonomy(categoryRows, tagRows);
          return { rows, bodies: rows.map((row) => detailBody(row, taxonomy)) };
        },
      );
    },
  };
  const collectionOrder = [desc(collections.isDefault), asc(collections.createdAt), asc(collections.id)] as const;
  const openings = {
    requests: opening(db, pageSize, requests),
    diagnoses: opening(db, pageSize, diagnoses),
    events: opening(db, pageSize, events),
    rsvps: opening(db, pageSize, rsvps),
    topics: opening(db, pageSize, topics),
    posts: opening(db, pageSize, posts),
    reactions: opening(db, pageSize, reactions),
    subscriptions: opening(db, pageSize, subscriptions),
    blogPosts: opening(db, pageSize, blogPostList),
    revisions: opening(db, pageSize, revisions),
    images: opening(db, pageSize, images),
    comments: opening(db, pageSize, comments),
    forumReports: opening(db, pageSize, forumReportList),
    commentReports: opening(db, pageSize, commentReportList),
    proposalReports: opening(db, pageSize, proposalReportList),
    proposals: opening(db, pageSize, proposals),
    votes: opening(db, pageSize, communityVotes),
  };

  const [
    [user],
    links,
    [preferences],
    suppressionRows,
    collectionRows,
    plantRows,
    careCards,
    reminderRows,
    [feed],
    deviceRows,
    sessionRows,
    ...firstPages
  ] = await db.batch([
    db.select().from(users).where(eq(users.id, userId)),
    // The provider's account id and email, never its tokens (none are stored) or OAuth state.
    db
      .select({
        provider: oauthAccounts.provider,
        email: oauthAccounts.email,
        emailVerified: oauthAccounts.emailVerified,
        linkedAt: oauthAccounts.createdAt,
      })
      .from(oauthAccounts)
      .where(eq(oauthAccounts.userId, userId))
      .orderBy(asc(oauthAccounts.createdAt)),
    db.select().from(notificationPreferences).where(eq(notificationPreferences.userId, userId)),
    // The user's addresses (the account's, and one it is changing to) that no email goes to, as
    // the webhook stored them (services/email-events.ts bareAddress). Never the provider's event id.
    db
      .select({ address: emailSuppressions.address, reason: emailSuppressions.reason, createdAt: emailSuppressions.createdAt })
      .from(emailSuppressions)
      .innerJoin(
        users,
        or(
          eq(emailSuppressions.address, sql`lower(trim(${users.email}))`),
          eq(emailSuppressions.address, sql`lower(trim(${users.pendingEmail}))`),
        ),
      )
      .where(eq(users.id, userId))
      .orderBy(asc(emailSuppressions.createdAt), asc(emailSuppressions.address)),
    // Capped (docs/api.md Limits): collections, care cards and reminders are read whole.
    selectCollections(db, eq(collections.userId, userId)).orderBy(...collectionOrder),
    // The first page of the plants, in the document's order: their collection's place, then newest first.
    selectPlants(db, eq(userPlants.userId, userId))
      .innerJoin(collections, eq(collections.id, userPlants.collectionId))
      .orderBy(...collectionOrder, ...keysetOrderBy(NEWEST_PLANT_FIRST))
      .limit(pageSize),
    db
      .select()
      .from(savedCareInstructions)
      .where(eq(savedCareInstructions.userId, userId))
      .orderBy(desc(savedCareInstructions.createdAt), desc(savedCareInstructions.id)),
    selectReminders(db, eq(careReminders.userId, userId)).orderBy(asc(careReminders.nextDueAt), asc(careReminders.id)),
    // Whether the user has a calendar feed URL, and its dates: never its id, which the URL is signed over.
    db
      .select({ createdAt: calendarFeeds.createdAt, lastFetchedAt: calendarFeeds.lastFetchedAt })
      .from(calendarFeeds)
      .where(eq(calendarFeeds.userId, userId)),
    // When each device subscribed and what it called itself, and its push service (the endpoint's
    // host, below): never the endpoint itself, a capability to push to the device, or its keys.
    db
      .select({
        endpoint: pushSubscriptions.endpoint,
        createdAt: pushSubscriptions.createdAt,
        lastSuccessAt: pushSubscriptions.lastSuccessAt,
        failingSince: pushSubscriptions.failingSince,
        userAgent: pushSubscriptions.userAgent,
      })
      .from(pushSubscriptions)
      .where(eq(pushSubscriptions.userId, userId))
      .orderBy(asc(pushSubscriptions.createdAt)),
    // Where the user is signed in, as auth/sessions/ lists it, without the sessions' ids.
    liveSessionsQuery(env, userId),
    // The first page of each part that grows without a cap.
    ...Object.values(openings).flatMap((o) => o.queries),
  ]);
  if (!user) throw new AppError("AUTHENTICATION_REQUIRED", 401, "User no longer exists.");
  const lists = openedLists(openings, firstPages);

  const plants = collectionPlants(
    db,
    userId,
    pageSize,
    collectionRows.map((c) => c.id),
    plantRows,
  );

  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exported_at: now.toISOString(),
    account: userProfile(user),
    sign_in_methods: links.map((l) => apiFields(l, "provider email emailVerified linkedAt")),
    two_factor: { enabled: twoFactor.enabled, enabled_at: twoFactor.enabledAt },
    notification_preferences: preferencesOf(preferences),
    email_suppressions: suppressionRows.map((x) => apiFields(x, "address reason createdAt")),
    collections: collectionRows.map((c) => ({ ...collectionBody(c), plants: plants.get(c.id)! })),
    identification_requests: lists.requests,
    disease_requests: lists.diagnoses,
    saved_care_instructions: careCards.map(savedCareBody),
    reminders: reminderRows.map(reminderBody),
    calendar: {
      events: lists.events,
      rsvps: lists.rsvps,
      feed: feed ? apiFields(feed, "createdAt lastFetchedAt") : null,
    },
    forum: {
      topics: lists.topics,
      posts: lists.posts,
      reactions: lists.reactions,
      subscriptions: lists.subscriptions,
    },
    blog: {
      posts: lists.blogPosts,
      revisions: lists.revisions,
      images: lists.images,
    },
    blog_comments: lists.comments,
    reports: {
      forum_posts: lists.forumReports,
      blog_comments: lists.commentReports,
      proposals: lists.proposalReports,
    },
    community: {
      proposals: lists.proposals,
      votes: lists.votes,
    },
    push_devices: deviceRows.map((x) => ({
      push_service: pushService(x.endpoint),
      ...apiFields(x, "createdAt lastSuccessAt failingSince userAgent"),
    })),
    // No ids: an export is a file that travels (mail, cloud drives), and an id would only let
    // whoever holds the file name the owner's sessions; the owner ends them from the live list.
    sessions: sessionSummaries(sessionRows).map(({ id: _id, ...session }) => session),
  };
}

/** The notifications' page: EXPORT_PAGE, as every paged part's. */
export const NOTIFICATION_PAGE = EXPORT_PAGE;

/**
 * The user's notifications as the export shows them, a page at a time, newest first (by
 * `created_at`, then `id`, so rows made in the same millisecond are neither repeated nor skipped
 * across pages). Each page is one batch: the notifications and how each went by email and push.
 */
export function notificationPages(env: Bindings, userId: string, pageSize = NOTIFICATION_PAGE) {
  const db = database(env);
  // The digest email a held email was gathered into.
  const digests = alias(notificationDeliveries, "digest");
  const order = NEWEST_FIRST;
  const page = async (after: SQL | undefined) => {
    const where = and(eq(notifications.userId, userId), notWithdrawn(), after);
    const [notificationRows, deliveryRows] = await db.batch([
      // Every notification the service made for the user, in-app or not (one whose type they turned
      // off in-app still went by email or push). A withdrawn one is blank and shown nowhere: out.
      // Never its dedupe key.
      db
        .select({
          id: notifications.id,
          type: notifications.type,
          title: notifications.title,
          body: notifications.body,
          data: notifications.data,
          inApp: notifications.inApp,
          isRead: notifications.isRead,
          readAt: notifications.readAt,
          createdAt: notifications.createdAt,
        })
        .from(notifications)
        .where(where)
        .orderBy(...keysetOrderBy(order))
        .limit(pageSize),
      // How each went by email and push: the channel, the status and when it was sent (an email
      // gathered into a digest: when the digest was). Never the provider's message id, the dedupe
      // key or the delivery's error detail.
      db
        .select({
          notificationId: sql<string>`${notificationDeliveries.notificationId}`,
          channel: notificationDeliveries.channel,
          status: notificationDeliveries.status,
          sentAt: sql<string | null>`coalesce(${notificationDeliveries.sentAt}, ${digests.sentAt})`,
        })
        .from(notificationDeliveries)
        .leftJoin(digests, eq(digests.id, notificationDeliveries.digestId))
        .where(
          and(
            eq(notificationDeliveries.userId, userId),
            inArray(
              notificationDeliveries.notificationId,
              db
                .select({ id: notifications.id })
                .from(notifications)
                .where(where)
                .orderBy(...keysetOrderBy(order))
                .limit(pageSize),
            ),
          ),
        )
        .orderBy(asc(notificationDeliveries.channel), asc(notificationDeliveries.createdAt)),
    ]);
    const deliveriesByNotification = groupBy(deliveryRows, (d) => d.notificationId);
    const notificationBody = (n: (typeof notificationRows)[number]) => ({
      ...apiFields(n, "id type title body"),
      data: ownData(n.data),
      ...apiFields(n, "isRead readAt createdAt"),
      channels: [
        ...(n.inApp ? [{ channel: "in_app", status: "sent", sent_at: n.createdAt } satisfies ChannelState] : []),
        ...(deliveriesByNotification.get(n.id) ?? []).map(
          (d) => ({ channel: d.channel, status: d.status, sent_at: d.sentAt }) satisfies ChannelState,
        ),
      ],
    });
    return { rows: notificationRows, bodies: notificationRows.map(notificationBody) };
  };
  return keysetPages(order, pageSize, page);
}

/**
 * `value` as JSON, the same text JSON.stringify makes, in pieces: a Streamed list's pages are
 * read one at a time, each once the text before it is taken.
 */
async function* jsonPieces(value: unknown): AsyncGenerator<string, void, undefined> {
  if (value instanceof Streamed) {
    yield "[";
    let first = true;
    for await (const page of value.pages) {
      const items = page.map((item) => JSON.stringify(item)).join(",");
      yield first ? items : `,${items}`;
      first = false;
    }
    yield "]";
  } else if (Array.isArray(value) && holdsStreamed(value)) {
    yield "[";
    for (const [i, item] of value.entries()) {
      if (i > 0) yield ",";
      // As JSON.stringify: an undefined item is null.
      yield* jsonPieces(item === undefined ? null : item);
    }
    yield "]";
  } else if (holdsStreamed(value)) {
    yield "{";
    let first = true;
    for (const [key, item] of Object.entries(value)) {
      // As JSON.stringify: a key whose value is undefined is left out.
      if (item === undefined) continue;
      yield `${first ? "" : ","}${JSON.stringify(key)}:`;
      yield* jsonPieces(item);
      first = false;
    }
    yield "}";
  } else {
    yield JSON.stringify(value);
  }
}

/** Whether `value` is an array or a plain object with a Streamed list in it, at any depth. */
function holdsStreamed(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  if (!Array.isArray(value) && Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value).some((item) => item instanceof Streamed || holdsStreamed(item));
}

/**
 * The export as the bytes of one JSON document, streamed: the account and the first page of each
 * part that grows without a cap are read in one batch, by exportAccount, before the first byte (so
 * a refusal is still an error answer); each next page is read as the document reaches it, and the
 * notifications, last, a page at a time. A read failing mid-way ends the stream with an error,
 * which the client sees as a download cut short (and not valid JSON).
 */
export async function exportAccountStream(env: Bindings, viewer: AuthenticatedUser, now = new Date(), pageSize = EXPORT_PAGE) {
  const document = await exportAccount(env, viewer, now, pageSize);
  const pieces = jsonPieces({ ...document, notifications: new Streamed(notificationPages(env, viewer.id, pageSize)) });
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await pieces.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    async cancel() {
      await pieces.return(undefined);
    },
  });
  return { document, body };
}
