/**
 * The forum (API.md §5): categories, topics, posts, reactions, solutions, reports and topic
 * subscriptions. Everything is public to read; writes need a user and are checked here.
 *
 * Rules the spec leaves open, decided here:
 * - A topic's opening text is its first post (`is_first`), so it is edited, reacted to and
 *   reported like any post. `reply_count` counts the other posts that are not deleted;
 *   `last_activity_at` is the newest non-deleted post's time. Both are recomputed from the posts
 *   in the same `db.batch` as every post write, so they cannot drift.
 * - Forum moderators are the `moderator` and `admin` roles (editors run the blog).
 * - Locked topics refuse replies and edits from everyone but moderators: 403 TOPIC_LOCKED.
 * - A topic's author may delete it only while nobody else has a (non-deleted) reply in it:
 *   409 TOPIC_HAS_REPLIES otherwise. Moderators may always delete. Deleting a topic removes it.
 * - Deleting a post is a soft delete: the row stays as a "[deleted]" placeholder without author
 *   or reactions; if it was the solution, the topic's solution is cleared.
 * - Authors edit their posts within a window that grows with trust: new 24 h, basic 7 days,
 *   trusted and veteran without limit (403 EDIT_WINDOW_CLOSED after it). Moderators always can.
 * - Every post (topic or reply) counts towards the author's `post_count` (trust levels) while it
 *   stands: deleting it, or its topic, takes it off again, so posts written and deleted cannot
 *   earn a trust level (and with it a vote that counts in community identification).
 * - Image attachments (at most MAX_ATTACHMENTS, authors of trust level ATTACHMENT_MIN_TRUST and
 *   up, else 403 TRUST_LEVEL_TOO_LOW) are given only when the post is written; edits keep them.
 *   The photos go to R2 (content-addressed, shared with requests and plants) only after every
 *   check has passed, and the rows are written in the same batch as the post; if that batch
 *   fails, photos nothing else uses are deleted again. A deleted post shows no attachments (its
 *   rows stay, like its body, and keep the photos alive); deleting a topic removes them and
 *   releases photos that nothing else uses.
 */
import { and, asc, count, desc, eq, inArray, isNull, type SQL, sql } from "drizzle-orm";
import { batchRows, changes, type Database, database, rowIf, runBatch, tableRows } from "../db/client";
import { type Page, type PageRequest, countedPage } from "../db/pagination";
import {
  forumAttachments,
  forumCategories,
  forumPosts,
  forumReactions,
  forumReports,
  forumSubscriptions,
  forumTopics,
  notifications,
  users,
} from "../db/schema";
import type { AuthenticatedUser, Bindings } from "../env";
import { AppError, isUniqueViolation, orNotFound } from "../lib/errors";
import { uuidv7 } from "../lib/ids";
import type { Logger } from "../lib/logger";
import { IMAGE_MIME, type ImageMime, type ValidatedImage } from "../lib/images";
import { excerpt, sanitisePostBody, truncateText, visibleText } from "../lib/sanitise";
import { recountAccounts } from "./community";
import { notWithdrawn, withdrawStatements } from "./notification-delivery";
import { insertNotifications, type Notification, underHourlyCap, type WithdrawnNotification } from "./notifications";
import { imageUrl, parsePhotoRef, photoRef, releasePhotoRefs, withStoredPhotos } from "./photos";
import { refuseIfDeactivated } from "./sessions";
import { accountActive, byline, computeTrustLevel, type Role, TRUST_ORDER, type TrustLevel, trustLevelOf } from "./users";
import { HOUR_MS } from "../lib/durations";

export const FORUM_MODERATOR_ROLES: Role[] = ["moderator", "admin"];
export const REACTION_TYPES = ["like", "love", "helpful", "thanks"] as const;
export type ReactionType = (typeof REACTION_TYPES)[number];
export const REPORT_STATUSES = ["open", "resolved", "dismissed"] as const;
export const DELETED_PLACEHOLDER = "[deleted]";
/** API.md §5: at most this many photos per post, from authors of at least this trust level. */
export const MAX_ATTACHMENTS = 6;
export const ATTACHMENT_MIN_TRUST: TrustLevel = "basic";

/** How long an author may edit a post, by trust level (null: no limit). */
export const EDIT_WINDOW_MS: Record<TrustLevel, number | null> = {
  new: 24 * HOUR_MS,
  basic: 7 * 24 * HOUR_MS,
  trusted: null,
  veteran: null,
};

export function isForumModerator(user: AuthenticatedUser): boolean {
  return FORUM_MODERATOR_ROLES.includes(user.role);
}

// ---------------------------------------------------------------------------------------------
// Rows and response shapes

/** The author's columns every topic and post is read with (a left join: authors may be gone). */
const authorColumns = {
  author_username: users.username,
  author_first_name: users.firstName,
  author_last_name: users.lastName,
  author_avatar_key: users.avatarKey,
  author_profile_visibility: users.profileVisibility,
};

interface AuthorColumns {
  author_id: string | null;
  author_username: string | null;
  author_first_name: string | null;
  author_last_name: string | null;
  author_avatar_key: string | null;
  author_profile_visibility: string | null;
}

function author(row: AuthorColumns) {
  if (!row.author_id || !row.author_username) return null;
  return {
    id: row.author_id,
    username: row.author_username,
    ...byline({
      username: row.author_username,
      firstName: row.author_first_name,
      lastName: row.author_last_name,
      avatarKey: row.author_avatar_key,
      profileVisibility: row.author_profile_visibility,
    }),
  };
}

const categoryColumns = {
  id: forumCategories.id,
  slug: forumCategories.slug,
  name: forumCategories.name,
  description: forumCategories.description,
  position: forumCategories.position,
  // Counted from the topics, so it cannot drift. Written out: drizzle leaves a single-table
  // select's columns unqualified, which inside the subquery would name the topic's own id.
  topic_count: sql<number>`(SELECT count(*) FROM forum_topics t WHERE t.category_id = forum_categories.id)`,
};

const topicColumns = {
  id: forumTopics.id,
  category_id: forumTopics.categoryId,
  category_slug: forumCategories.slug,
  title: forumTopics.title,
  is_locked: forumTopics.isLocked,
  is_pinned: forumTopics.isPinned,
  reply_count: forumTopics.replyCount,
  last_activity_at: forumTopics.lastActivityAt,
  solution_post_id: forumTopics.solutionPostId,
  title_moderator_edited_at: forumTopics.titleModeratorEditedAt,
  created_at: forumTopics.createdAt,
  updated_at: forumTopics.updatedAt,
  author_id: forumTopics.authorId,
  ...authorColumns,
};

const postColumns = {
  id: forumPosts.id,
  topic_id: forumPosts.topicId,
  body: forumPosts.body,
  is_first: forumPosts.isFirst,
  is_deleted: forumPosts.isDeleted,
  deleted_at: forumPosts.deletedAt,
  edited_at: forumPosts.editedAt,
  moderator_edited_at: forumPosts.moderatorEditedAt,
  created_at: forumPosts.createdAt,
  updated_at: forumPosts.updatedAt,
  author_id: forumPosts.authorId,
  ...authorColumns,
};

const reportColumns = {
  id: forumReports.id,
  post_id: forumReports.postId,
  topic_id: forumPosts.topicId,
  reporter_id: forumReports.reporterId,
  reporter_username: users.username,
  reason: forumReports.reason,
  status: forumReports.status,
  resolved_by: forumReports.resolvedBy,
  resolved_at: forumReports.resolvedAt,
  created_at: forumReports.createdAt,
  post_body: forumPosts.body,
  post_is_deleted: forumPosts.isDeleted,
};

export function selectTopics(env: Bindings) {
  return database(env)
    .select(topicColumns)
    .from(forumTopics)
    .innerJoin(forumCategories, eq(forumCategories.id, forumTopics.categoryId))
    .leftJoin(users, eq(users.id, forumTopics.authorId))
    .$dynamic();
}

export function selectPosts(env: Bindings) {
  return database(env).select(postColumns).from(forumPosts).leftJoin(users, eq(users.id, forumPosts.authorId)).$dynamic();
}

function selectReports(env: Bindings) {
  return database(env)
    .select(reportColumns)
    .from(forumReports)
    .innerJoin(forumPosts, eq(forumPosts.id, forumReports.postId))
    .innerJoin(users, eq(users.id, forumReports.reporterId))
    .$dynamic();
}

/** Rows as the forum reads them: typed by their selects over the schema. */
export type CategoryRow = Awaited<ReturnType<typeof listCategories>>[number];
export type TopicRow = Awaited<ReturnType<ReturnType<typeof selectTopics>["get"]>> & {};
export type PostRow = Awaited<ReturnType<ReturnType<typeof selectPosts>["get"]>> & {};
export type ReportRow = Awaited<ReturnType<ReturnType<typeof selectReports>["get"]>> & {};

export function categoryBody(row: CategoryRow) {
  return { id: row.id, slug: row.slug, name: row.name, description: row.description, position: row.position, topic_count: row.topic_count };
}

export function topicBody(row: TopicRow) {
  return {
    id: row.id,
    category: row.category_slug,
    title: row.title,
    author: author(row),
    is_locked: Boolean(row.is_locked),
    is_pinned: Boolean(row.is_pinned),
    reply_count: row.reply_count,
    last_activity_at: row.last_activity_at,
    solution_post_id: row.solution_post_id,
    title_edited_by_moderator: Boolean(row.title_moderator_edited_at),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export type ReactionCounts = Record<ReactionType, number>;
const noReactions = (): ReactionCounts => ({ like: 0, love: 0, helpful: 0, thanks: 0 });

export interface Attachment {
  url: string;
  width: number;
  height: number;
  content_type: ImageMime;
}

export function postBody(
  row: PostRow,
  solutionPostId: string | null,
  reactions: ReactionCounts = noReactions(),
  mine: ReactionType[] = [],
  attachments: Attachment[] = [],
) {
  const deleted = Boolean(row.is_deleted);
  return {
    id: row.id,
    topic_id: row.topic_id,
    author: deleted ? null : author(row),
    body: deleted ? DELETED_PLACEHOLDER : row.body,
    is_first_post: Boolean(row.is_first),
    is_deleted: deleted,
    is_solution: row.id === solutionPostId,
    reactions: deleted ? noReactions() : reactions,
    my_reactions: deleted ? [] : mine,
    attachments: deleted ? [] : attachments,
    edited_at: row.edited_at,
    edited_by_moderator: Boolean(row.moderator_edited_at),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

// ---------------------------------------------------------------------------------------------
// Reads

export function listCategories(env: Bindings) {
  return database(env).select(categoryColumns).from(forumCategories).orderBy(asc(forumCategories.position), asc(forumCategories.name));
}

export async function categoryBySlug(env: Bindings, slug: string): Promise<CategoryRow> {
  return orNotFound(
    await database(env).select(categoryColumns).from(forumCategories).where(eq(forumCategories.slug, slug)).get(),
    "Category",
  );
}

/** A category's topics: pinned first, then the most recent activity. */
export function listTopics(env: Bindings, categoryId: string, page: PageRequest): Promise<Page<NonNullable<TopicRow>>> {
  const { isPinned, lastActivityAt, id } = forumTopics;
  const where = eq(forumTopics.categoryId, categoryId);
  const rows = selectTopics(env).where(where).orderBy(desc(isPinned), desc(lastActivityAt), desc(id));
  return countedPage(database(env), rows, { from: forumTopics, where }, page) as Promise<Page<NonNullable<TopicRow>>>;
}

export async function getTopic(env: Bindings, id: string): Promise<NonNullable<TopicRow>> {
  return orNotFound(await selectTopics(env).where(eq(forumTopics.id, id)).get(), "Topic");
}

/** A topic's posts, oldest first: the opening post, then the replies in the order they were written. */
export function listPosts(env: Bindings, topicId: string, page: PageRequest): Promise<Page<NonNullable<PostRow>>> {
  const where = eq(forumPosts.topicId, topicId);
  const rows = selectPosts(env).where(where).orderBy(asc(forumPosts.createdAt), desc(forumPosts.isFirst), asc(forumPosts.id));
  return countedPage(database(env), rows, { from: forumPosts, where }, page) as Promise<Page<NonNullable<PostRow>>>;
}

export async function getPost(env: Bindings, id: string): Promise<NonNullable<PostRow>> {
  return orNotFound(await selectPosts(env).where(eq(forumPosts.id, id)).get(), "Post");
}

export async function firstPost(env: Bindings, topicId: string): Promise<NonNullable<PostRow> | null> {
  return (
    (await selectPosts(env)
      .where(and(eq(forumPosts.topicId, topicId), eq(forumPosts.isFirst, true)))
      .get()) ?? null
  );
}

/** D1 binds at most 100 parameters per statement: ids go in chunks of 50 (a page holds up to 100 posts). */
function chunked(ids: string[]): string[][] {
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += 50) chunks.push(ids.slice(i, i + 50));
  return chunks;
}

/** Reaction counts per post and the caller's own reactions, for one page of posts in one query. */
export async function reactionsFor(env: Bindings, postIds: string[], userId?: string) {
  const counts = new Map<string, ReactionCounts>();
  const mine = new Map<string, ReactionType[]>();
  if (postIds.length === 0) return { counts, mine };
  const db = database(env);
  const r = forumReactions;
  const answers = await Promise.all(
    chunked(postIds).map((ids) =>
      db
        .select({ postId: r.postId, type: r.type, n: count(), mine: sql<number>`max(${r.userId} = ${userId ?? ""})` })
        .from(r)
        .where(inArray(r.postId, ids))
        .groupBy(r.postId, r.type),
    ),
  );
  for (const row of answers.flat()) {
    const c = counts.get(row.postId) ?? noReactions();
    c[row.type] = row.n;
    counts.set(row.postId, c);
    if (row.mine) mine.set(row.postId, [...(mine.get(row.postId) ?? []), row.type]);
  }
  return { counts, mine };
}

/** Attachments per post, in position order, for one page of posts (deleted posts: pass none). */
export async function attachmentsFor(env: Bindings, postIds: string[]): Promise<Map<string, Attachment[]>> {
  const out = new Map<string, Attachment[]>();
  if (postIds.length === 0) return out;
  const db = database(env);
  const a = forumAttachments;
  const answers = await Promise.all(
    chunked(postIds).map((ids) =>
      db
        .select({ postId: a.postId, image: a.image, width: a.width, height: a.height })
        .from(a)
        .where(inArray(a.postId, ids))
        .orderBy(a.postId, a.position),
    ),
  );
  for (const r of answers.flat()) {
    const attachment = attachmentBody(r);
    if (!attachment) continue;
    out.set(r.postId, [...(out.get(r.postId) ?? []), attachment]);
  }
  return out;
}

/** A stored attachment as the API shows it; null for a malformed reference (never exposed). */
export function attachmentBody(row: { image: string; width: number; height: number }): Attachment | null {
  const image = parsePhotoRef(row.image);
  // Only ever written from validated uploads; never expose a malformed key.
  if (!image) return null;
  return { url: imageUrl(image), width: row.width, height: row.height, content_type: IMAGE_MIME[image.type] };
}

/** 403 TRUST_LEVEL_TOO_LOW unless the user may attach images (API.md §5). */
export async function assertMayAttachImages(env: Bindings, userId: string, now = Date.now()): Promise<void> {
  const level = await trustLevelOf(env, userId, now);
  if (!level || TRUST_ORDER.indexOf(level) < TRUST_ORDER.indexOf(ATTACHMENT_MIN_TRUST)) {
    throw new AppError("TRUST_LEVEL_TOO_LOW", 403, `Image attachments need trust level "${ATTACHMENT_MIN_TRUST}" or above.`);
  }
}

/**
 * Posts as the API shows them to `viewerId` (undefined: anonymous): with their reactions, the
 * viewer's own, and their photos. Deleted posts are placeholders and carry neither.
 */
export async function postBodies(env: Bindings, rows: PostRow[], solutionPostId: string | null, viewerId: string | undefined) {
  const live = rows.filter((r) => !r.is_deleted).map((r) => r.id);
  const [{ counts, mine }, attachments] = await Promise.all([reactionsFor(env, live, viewerId), attachmentsFor(env, live)]);
  return rows.map((r) => postBody(r, solutionPostId, counts.get(r.id), mine.get(r.id), attachments.get(r.id)));
}

/** A topic with its opening post and whether `viewerId` follows it. */
export async function topicDetail(env: Bindings, topic: TopicRow, viewerId: string | undefined) {
  const [first, subscribed] = await Promise.all([firstPost(env, topic.id), viewerId ? isSubscribed(env, topic.id, viewerId) : false]);
  const [firstBody] = first ? await postBodies(env, [first], topic.solution_post_id, viewerId) : [];
  return { ...topicBody(topic), first_post: firstBody ?? null, is_subscribed: subscribed };
}

export async function isSubscribed(env: Bindings, topicId: string, userId: string): Promise<boolean> {
  const s = forumSubscriptions;
  const row = await database(env)
    .select({ topicId: s.topicId })
    .from(s)
    .where(and(eq(s.topicId, topicId), eq(s.userId, userId)))
    .get();
  return row !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Writes

/** Sanitises a body; a body with no visible text left (e.g. only a script) is refused. */
export function cleanBody(raw: string): string {
  const html = sanitisePostBody(raw);
  if (visibleText(html) === "")
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", {
      body: ["The post has no text left after removing unsupported markup."],
    });
  return html;
}

/** Recomputes a topic's counters from its posts (a statement for the same batch as the post write). */
function refreshTopicCounters(env: Bindings, topicId: string, now: string, landed?: SQL) {
  const t = forumTopics;
  // Counters recomputed from the source rows in one statement, so they can never drift.
  return database(env)
    .update(t)
    .set({
      replyCount: sql`(SELECT count(*) FROM ${forumPosts} WHERE ${forumPosts.topicId} = ${topicId} AND ${forumPosts.isFirst} = 0 AND ${forumPosts.isDeleted} = 0)`,
      lastActivityAt: sql`COALESCE((SELECT max(${forumPosts.createdAt}) FROM ${forumPosts} WHERE ${forumPosts.topicId} = ${topicId} AND ${forumPosts.isDeleted} = 0), ${t.createdAt})`,
      updatedAt: now,
    })
    .where(and(eq(t.id, topicId), landed));
}

/**
 * Counts a post towards its author's trust; with `landed`, only if it holds. Answers the author as
 * now, for `recountRisen`.
 */
function countPost(env: Bindings, userId: string, landed?: SQL) {
  return database(env)
    .update(users)
    .set({ postCount: sql`${users.postCount} + 1` })
    .where(and(eq(users.id, userId), landed))
    .returning({ id: users.id, post_count: users.postCount, trust_level: users.trustLevel, date_joined: users.dateJoined });
}

/**
 * One row per photo, positions 1..n in upload order (for the same batch as the post insert);
 * with `landed`, only if it holds (a reply refused in the batch leaves no attachment rows).
 */
function insertAttachments(env: Bindings, postId: string, images: ValidatedImage[], now: string, landed: SQL = sql`1`) {
  if (images.length === 0) return [];
  const db = database(env);
  // The photos as one JSON value: one statement whatever their number. Not a UNION ALL of one
  // SELECT a photo, which D1 refuses past five ("too many terms in compound SELECT"). Each value
  // is named by its column (drizzle refuses fields that are not the table's, in its order).
  const rows = JSON.stringify(images.map((img) => [photoRef(img), img.width, img.height]));
  return [
    db.insert(forumAttachments).select(
      db
        .select({
          postId: sql<string>`${postId}`.as("post_id"),
          position: sql<number>`j.key + 1`.as("position"),
          image: sql<string>`j.value ->> 0`.as("image"),
          width: sql<number>`j.value ->> 1`.as("width"),
          height: sql<number>`j.value ->> 2`.as("height"),
          createdAt: sql<string>`${now}`.as("created_at"),
        })
        .from(sql`json_each(${rows}) j`)
        .where(landed),
    ),
  ];
}

/** Stores the photos, then runs the D1 write; a failed write releases them again (photos.ts). */
function withStoredImages<T>(env: Bindings, authorId: string, images: ValidatedImage[], write: () => Promise<T>): Promise<T> {
  return images.length === 0 ? write() : withStoredPhotos(env, authorId, images, write);
}

/**
 * Opens a topic with its first post, and in the same batch the `forum_mention` notifications its
 * opening post raises (as a reply's do). Returns them for the caller to push live.
 */
export async function createTopic(
  env: Bindings,
  user: AuthenticatedUser,
  category: { id: string; slug: string },
  title: string,
  rawBody: string,
  images: ValidatedImage[] = [],
  logger?: Logger,
): Promise<{ topic: TopicRow; notifications: Notification[] }> {
  const body = cleanBody(rawBody);
  const topicId = uuidv7();
  const postId = uuidv7();
  const now = new Date().toISOString();
  const db = database(env);
  // The author's account is active inside the insert (a deactivation committed while this was on
  // its way leaves no topic); everything else holds only if the topic landed.
  const landed = sql`EXISTS (SELECT 1 FROM forum_topics WHERE id = ${topicId})`;
  const results = await withStoredImages(env, user.id, images, async () => {
    const results = await runBatch(db, [
      db
        .insert(forumTopics)
        .select(
          rowIf(
            forumTopics,
            { id: topicId, categoryId: category.id, authorId: user.id, title, lastActivityAt: now, createdAt: now, updatedAt: now },
            authorActive(user),
          ),
        )
        .returning({ id: forumTopics.id }),
      db
        .insert(forumPosts)
        .select(rowIf(forumPosts, { id: postId, topicId, authorId: user.id, body, isFirst: true, createdAt: now, updatedAt: now }, landed)),
      ...insertAttachments(env, postId, images, now, landed),
      db.insert(forumSubscriptions).select(rowIf(forumSubscriptions, { topicId, userId: user.id, createdAt: now }, landed)),
      countPost(env, user.id, landed),
      mentionNotifications(db, { id: postId, body, topicId, categorySlug: category.slug, topicTitle: title }, user, now, landed),
    ]);
    if (batchRows(results[0]).length === 0) {
      await refuseIfDeactivated(env, user.id);
      throw new Error("The topic's insert wrote nothing"); // thrown in here so that the photos stored for it are released
    }
    return results;
  });
  await recountRisen(env, results.at(-2), logger); // countPost's answer
  return { topic: await getTopic(env, topicId), notifications: tableRows(notifications, results.at(-1)) };
}

function assertTopicAuthorOrModerator(user: AuthenticatedUser, topic: TopicRow, action: string) {
  if (topic.author_id !== user.id && !isForumModerator(user))
    throw new AppError("FORBIDDEN", 403, `Only the topic's author or a moderator can ${action}.`);
}

/**
 * An author may change what they wrote for EDIT_WINDOW_MS of their trust level after writing it
 * (a topic's title counts as written with the topic); moderators always may.
 */
async function assertWithinEditWindow(env: Bindings, user: AuthenticatedUser, writtenAt: string, what: string, now: number) {
  if (isForumModerator(user)) return;
  const window = EDIT_WINDOW_MS[(await trustLevelOf(env, user.id, now)) ?? "new"];
  if (window !== null && now - Date.parse(writtenAt) > window) {
    throw new AppError("EDIT_WINDOW_CLOSED", 403, `${what} can be edited for ${window / HOUR_MS} hours at your trust level.`);
  }
}

/**
 * Once a moderator has rewritten someone else's post or title, its author may no longer change it
 * (else they could write back what the moderator removed); the moderator and their peers still may.
 */
function moderatorEditedError(what: string) {
  return new AppError("EDIT_WINDOW_CLOSED", 403, `A moderator has edited this ${what}; only a moderator can change it now.`);
}

/**
 * Changes a topic's title. The reply and mention notifications its posts raised quote the title:
 * they quote the new one (a moderator rewriting an abusive title must not leave it in inboxes and
 * the next digest), and come back for the caller to tell their owners' sockets. The rewrite holds
 * only while the topic still has this title, so of two edits racing the later title wins there too.
 */
export async function updateTopicTitle(
  env: Bindings,
  user: AuthenticatedUser,
  id: string,
  title: string,
  now = Date.now(),
): Promise<{ topic: NonNullable<TopicRow>; updated: Notification[] }> {
  const topic = await getTopic(env, id);
  assertTopicAuthorOrModerator(user, topic, "change its title");
  const moderator = isForumModerator(user);
  if (topic.is_locked && !moderator) throw lockedError();
  if (topic.title_moderator_edited_at && !moderator) throw moderatorEditedError("title");
  await assertWithinEditWindow(env, user, topic.created_at, "Titles", now);
  const at = new Date(now).toISOString();
  const db = database(env);
  const [renamed, raised] = await runBatch(db, [
    db
      .update(forumTopics)
      // A moderator's change of someone else's title is recorded: its author may no longer change it.
      .set({ title, updatedAt: at, ...(moderator && topic.author_id !== user.id ? { titleModeratorEditedAt: at } : {}) })
      // The lock and a moderator's rewrite, checked again inside the write (a moderator's change
      // ignores both), and the writer's account still active.
      .where(
        and(
          eq(forumTopics.id, id),
          moderator ? undefined : and(eq(forumTopics.isLocked, false), isNull(forumTopics.titleModeratorEditedAt)),
          authorActive(user),
        ),
      ),
    // Usernames never change, so the post's author is who the title names: a title per type
    // and author, not per notification (a busy topic raises thousands; one value holding them
    // all would pass D1's 2 MB value limit).
    sql`SELECT DISTINCT notifications.type, p.author_id, u.username FROM forum_posts p
        JOIN users u ON u.id = p.author_id
        JOIN notifications ON ${raisedBy(sql`p.id`)}
        WHERE p.topic_id = ${id} AND ${notWithdrawn()}`,
  ]);
  const titles = batchRows(raised).map((r) => [
    `${r.type}:${r.author_id}`,
    NOTICE_TITLES[r.type as PostNotificationType](r.username as string, title),
  ]);
  if (changes(renamed) === 0) {
    await refuseIfDeactivated(env, user.id);
    const current = await getTopic(env, id); // 404 when it was deleted meanwhile
    if (current.title_moderator_edited_at && !current.is_locked) throw moderatorEditedError("title");
    throw lockedError();
  }
  const statements: SQL[] = [];
  for (let i = 0; i < titles.length; i += TITLES_PER_STATEMENT) {
    const map = JSON.stringify(Object.fromEntries(titles.slice(i, i + TITLES_PER_STATEMENT)));
    statements.push(sql`UPDATE notifications SET title = m.value
        FROM forum_posts p, (SELECT key, value FROM json_each(${map})) m
        WHERE p.topic_id = ${id} AND (${raisedBy(sql`p.id`)}) AND m.key = notifications.type || ':' || p.author_id
          AND ${notWithdrawn()} AND EXISTS (SELECT 1 FROM forum_topics WHERE id = ${id} AND title = ${title})
        RETURNING *`);
  }
  const updated = (await runBatch(db, statements)).flatMap((rows) => tableRows(notifications, rows));
  return { topic: await getTopic(env, id), updated };
}

/** Deletes a topic with its posts; answers the notifications withdrawn with them, for the caller to tell their owners' sockets. */
export async function deleteTopic(env: Bindings, user: AuthenticatedUser, id: string, logger?: Logger): Promise<WithdrawnNotification[]> {
  const topic = await getTopic(env, id);
  assertTopicAuthorOrModerator(user, topic, "delete it");
  const db = database(env);
  const p = forumPosts;
  const hasReplies = () => new AppError("TOPIC_HAS_REPLIES", 409, "This topic has replies from others; ask a moderator to remove it.");
  // Its author may delete it only while nobody else has replied, a moderator only while their
  // account is active: checked inside the batch, so a reply that lands meanwhile, or the
  // moderator's deactivation, stops every statement. (An author's own topic goes whether or not
  // they were deactivated meanwhile: removing what one wrote is harmless.)
  const authorMay =
    topic.author_id === user.id
      ? sql`NOT EXISTS (SELECT 1 FROM forum_posts op WHERE op.topic_id = ${id} AND op.author_id <> ${user.id} AND op.is_deleted = 0)`
      : sql`0`;
  const mayDelete = isForumModerator(user) ? sql`(${authorMay} OR ${authorActive(user)})` : authorMay;
  // The posts and their attachments go with the topic (cascade), the notifications they raised
  // are withdrawn first; then release photos nothing else uses.
  const [attached, withdrawn, , , uncounted, deleted] = await runBatch(db, [
    db
      .selectDistinct({ image: forumAttachments.image })
      .from(forumAttachments)
      .innerJoin(p, eq(p.id, forumAttachments.postId))
      .where(and(eq(p.topicId, id), mayDelete)),
    ...withdrawNotifications(db, sql`SELECT tp.id AS id FROM forum_posts tp WHERE tp.topic_id = ${id} AND ${mayDelete}`),
    // Its live posts stop counting towards their authors' trust, before the cascade takes them.
    sql`UPDATE users SET post_count = max(post_count -
          (SELECT count(*) FROM forum_posts tp WHERE tp.topic_id = ${id} AND tp.author_id = users.id AND tp.is_deleted = 0), 0)
        WHERE id IN (SELECT author_id FROM forum_posts tp WHERE tp.topic_id = ${id} AND tp.is_deleted = 0) AND ${mayDelete}
        ${uncountedAuthors(sql`(SELECT count(*) FROM forum_posts tp WHERE tp.topic_id = ${id} AND tp.author_id = users.id AND tp.is_deleted = 0)`)}`,
    db
      .delete(forumTopics)
      .where(and(eq(forumTopics.id, id), mayDelete))
      .returning({ id: forumTopics.id }),
  ]);
  if (batchRows(deleted).length === 0) {
    if (isForumModerator(user)) await refuseIfDeactivated(env, user.id);
    await getTopic(env, id); // 404 when someone else deleted it meanwhile
    throw hasReplies();
  }
  await releasePhotoRefs(
    env,
    batchRows(attached).map((r) => String(r.image)),
  );
  await recountFallen(env, uncounted, logger);
  // Read by the table's columns whichever way runBatch sent the batch (drizzle's or raw D1).
  return tableRows(notifications, withdrawn).map(({ id, userId, inApp }) => ({ id, userId, inApp }));
}

/** SQL: topic `topicId` is not locked (a write by anyone but a moderator holds only then). */
function unlocked(topicId: string): SQL {
  return sql`NOT EXISTS (SELECT 1 FROM ${forumTopics} WHERE ${forumTopics.id} = ${topicId} AND ${forumTopics.isLocked} = 1)`;
}

/**
 * SQL: the account of `user`, who asked for a write, is still active: held inside the write, so a
 * deactivation (or deletion) committed while the request was on its way lands nothing of theirs
 * after it; refuseIfDeactivated then answers 401.
 */
function authorActive(user: Pick<AuthenticatedUser, "id">): SQL {
  return accountActive(sql`${user.id}`);
}

function lockedError() {
  return new AppError("TOPIC_LOCKED", 403, "This topic is locked.");
}

/** The notification types a post raises; each dedupe key is `<type>:<post id>:<recipient id>`. */
const POST_NOTIFICATION_TYPES = ["forum_reply", "forum_mention"] as const;
type PostNotificationType = (typeof POST_NOTIFICATION_TYPES)[number];
/** Titles (one per type and author) per statement of a title change: each statement's map stays well under D1's 2 MB value limit. */
const TITLES_PER_STATEMENT = 1000;

/** Each post notification's title: who wrote, and in which topic (rewritten when the title changes). */
const NOTICE_TITLES: Record<PostNotificationType, (username: string, topicTitle: string) => string> = {
  forum_reply: (username, topicTitle) => truncateText(`${username} replied to "${truncateText(topicTitle, 80)}"`, 120),
  forum_mention: (username, topicTitle) => truncateText(`${username} mentioned you in "${truncateText(topicTitle, 80)}"`, 120),
};

/**
 * SQL: the `notifications` row was raised by post `postId` (an expression for one id): its dedupe
 * key lies between `<type>:<post id>:` and `<type>:<post id>;` (';' follows ':'), a range on the
 * unique index, not a scan of everyone's notifications.
 */
export function raisedBy(postId: SQL): SQL {
  return sql.join(
    POST_NOTIFICATION_TYPES.map(
      (type) =>
        sql`(notifications.dedupe_key >= ${`${type}:`} || ${postId} || ':' AND notifications.dedupe_key < ${`${type}:`} || ${postId} || ';')`,
    ),
    sql` OR `,
  );
}

/**
 * What a `post_count` decrement answers: the authors whose posts stopped counting, as they are now,
 * and how many of their posts stopped counting (`deducted`, evaluated while those posts still stand).
 */
const uncountedAuthors = (deducted: SQL) => sql`RETURNING id, post_count, trust_level, date_joined, ${deducted} AS deducted`;

/**
 * Posts that stop counting may cost their authors the `basic` level, and with it the weight of
 * their community votes: the identifications of those the delete dropped to `new` are recounted
 * (an author who was `new` already had no vote that counted: nothing to recount). After the
 * delete and best effort: the delete stands if this fails, and the next vote or proposal on
 * those requests recounts them.
 */
async function recountFallen(env: Bindings, uncounted: unknown, logger?: Logger): Promise<void> {
  await recountCrossed(env, uncounted, (row) => Number(row.post_count) + Number(row.deducted), logger);
}

/**
 * The other way: the post that earns its author the `basic` level (the fifth, from an account a
 * week old) makes their community votes count, so the identifications they voted on are recounted
 * — as a vote would, telling a consensus gained. After the post and best effort, as above.
 */
async function recountRisen(env: Bindings, counted: unknown, logger?: Logger): Promise<void> {
  await recountCrossed(env, counted, (row) => Number(row.post_count) - 1, logger);
}

/**
 * Recounts the identifications of the authors in `rows` (`id, post_count, trust_level,
 * date_joined` as they are now) whose level crossed `new` between `postsBefore` posts and now.
 */
async function recountCrossed(
  env: Bindings,
  rows: unknown,
  postsBefore: (row: Record<string, unknown>) => number,
  logger?: Logger,
): Promise<void> {
  const isNew = (row: Record<string, unknown>, postCount: number) =>
    computeTrustLevel({ postCount, trustLevel: row.trust_level as TrustLevel, dateJoined: String(row.date_joined) }) === "new";
  const crossed = batchRows(rows)
    .filter((row) => isNew(row, Number(row.post_count)) !== isNew(row, postsBefore(row)))
    .map((row) => String(row.id));
  if (crossed.length === 0) return;
  await recountAccounts(env, crossed, logger).catch((err: unknown) =>
    logger?.warn("community recount failed", { users: crossed, error: String(err) }),
  );
}

/**
 * Withdraws the notifications the posts `postIds` (a query of post ids as `id`) raised: a removed
 * post's text must not stay readable in anyone's notifications, nor go out later in an email,
 * a push or a digest (see withdrawStatements). The rows stay, blank, so that the mention cap
 * still counts them: deleting and reposting must not start it again.
 */
function withdrawNotifications(db: Database, postIds: SQL) {
  return withdrawStatements(db, sql`(SELECT notifications.id FROM (${postIds}) AS wp JOIN notifications ON ${raisedBy(sql.raw("wp.id"))})`);
}

/** Subscribers notified of one reply, at most: a huge topic must not turn a reply into a mass write. */
export const MAX_REPLY_NOTIFICATIONS = 200;
const REPLY_EXCERPT_CHARS = 140;

/**
 * Posts a reply and, in the same atomic batch, one `forum_reply` notification for each of the
 * topic's subscribers except the replier (active accounts, longest subscribed first, at most
 * MAX_REPLY_NOTIFICATIONS) and except those the reply mentions: they get the `forum_mention`
 * notification instead, the more specific of the two, and only it — so its email and push go out
 * once too. A mention held back by the hourly cap leaves a subscriber their reply notice. The dedupe key `forum_reply:<post id>:<user id>` means a post can
 * notify each user once; edits and deletions never notify. Returns the inserted notifications
 * for the caller to push live. A locked topic refuses the reply inside the insert itself, so a
 * lock that commits between the check and the batch still holds (403 TOPIC_LOCKED).
 */
export async function createReply(
  env: Bindings,
  user: AuthenticatedUser,
  topicId: string,
  rawBody: string,
  images: ValidatedImage[] = [],
  logger?: Logger,
): Promise<{ post: NonNullable<PostRow>; notifications: Notification[] }> {
  const topic = await getTopic(env, topicId);
  if (topic.is_locked && !isForumModerator(user)) throw lockedError();
  const body = cleanBody(rawBody);
  const id = uuidv7();
  const now = new Date().toISOString();
  const db = database(env);
  const title = NOTICE_TITLES.forum_reply(user.username, topic.title);
  const subscriber = sql.raw("s.user_id");
  // The lock is checked again by the insert itself: a lock committed since the check above
  // refuses the reply, as does the author's deactivation. Every other statement holds only if
  // the post landed (its id is new).
  const open = isForumModerator(user) ? undefined : eq(forumTopics.isLocked, false);
  const landed = sql`EXISTS (SELECT 1 FROM forum_posts WHERE id = ${id})`;
  const results = await withStoredImages(env, user.id, images, async () => {
    const results = await runBatch(db, [
      // Each value named by its column: drizzle refuses a select whose fields are not the
      // table's, in its order, where a raw SELECT's values would silently shift.
      db
        .insert(forumPosts)
        .select(
          db
            .select({
              id: sql<string>`${id}`.as("id"),
              topicId: forumTopics.id,
              authorId: sql<string>`${user.id}`.as("author_id"),
              body: sql<string>`${body}`.as("body"),
              isFirst: sql<boolean>`0`.as("is_first"),
              isDeleted: sql<boolean>`0`.as("is_deleted"),
              deletedAt: sql<null>`NULL`.as("deleted_at"),
              editedAt: sql<null>`NULL`.as("edited_at"),
              moderatorEditedAt: sql<null>`NULL`.as("moderator_edited_at"),
              createdAt: sql<string>`${now}`.as("created_at"),
              updatedAt: sql<string>`${now}`.as("updated_at"),
            })
            .from(forumTopics)
            .where(and(eq(forumTopics.id, topicId), open, authorActive(user))),
        )
        .returning({ id: forumPosts.id }),
      ...insertAttachments(env, id, images, now, landed),
      refreshTopicCounters(env, topicId, now, landed),
      countPost(env, user.id, landed),
      // First the mentions: a subscriber this reply mentions has its mention notice, and the
      // reply notice below skips them — one notice per person for one post.
      mentionNotifications(db, { id, body, topicId, categorySlug: topic.category_slug, topicTitle: topic.title }, user, now, landed),
      insertNotifications(
        db,
        "forum_reply",
        {
          userId: subscriber,
          title: sql`${title}`,
          body: sql`${excerpt(body, REPLY_EXCERPT_CHARS)}`,
          data: sql`json_object('topic_id', ${topicId}, 'post_id', ${id}, 'category_slug', ${topic.category_slug})`,
          dedupeKey: sql`'forum_reply:' || ${id} || ':' || ${subscriber}`,
          createdAt: now,
        },
        sql`FROM forum_subscriptions s JOIN users u ON u.id = s.user_id
             WHERE s.topic_id = ${topicId} AND s.user_id != ${user.id} AND u.is_active = 1 AND ${landed}
               AND NOT EXISTS (SELECT 1 FROM notifications m WHERE m.dedupe_key = ${mentionKey(sql`${id}`, sql.raw("s.user_id"))})
             ORDER BY s.created_at, s.user_id
             LIMIT ${MAX_REPLY_NOTIFICATIONS}`,
      ),
    ]);
    if (batchRows(results[0]).length === 0) {
      // Thrown in here so that the photos stored for it are released.
      await refuseIfDeactivated(env, user.id);
      await getTopic(env, topicId); // 404 when the topic was deleted meanwhile
      throw lockedError();
    }
    return results;
  });
  await recountRisen(env, results.at(-3), logger); // countPost's answer
  return { post: await getPost(env, id), notifications: [...(results.at(-2) as Notification[]), ...(results.at(-1) as Notification[])] };
}

/** At most this many people are notified of a mention in one post. */
export const MAX_MENTIONS = 10;
/**
 * One author's mentions notify one person at most this many times an hour: past it, posts still
 * show the mention, but repeating someone's name cannot flood their notifications and inbox.
 */
export const MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR = 5;

/** The usernames a post mentions as `@name` (lower-cased, distinct, at most MAX_MENTIONS). */
export function mentionedUsernames(bodyHtml: string): string[] {
  const names = new Set<string>();
  for (const match of visibleText(bodyHtml).matchAll(/(?:^|[^\w@])@([\w.@+-]{3,150})/g)) {
    const name = match[1]!.replace(/[.@+-]+$/, "").toLowerCase();
    if (name.length >= 3) names.add(name);
    if (names.size >= MAX_MENTIONS) break;
  }
  return [...names];
}

/** The dedupe key of the mention notice post `postId` raised for `userId`: once per post and person. */
function mentionKey(postId: SQL, userId: SQL): SQL {
  return sql`'forum_mention:' || ${postId} || ':' || ${userId}`;
}

/**
 * One `forum_mention` notification for each active user a post mentions (not its author, nor
 * anyone this author's mentions already notified MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR times in
 * the past hour), in the caller's batch; the dedupe key `forum_mention:<post id>:<user id>`
 * makes it once per post. The count reads the recipient's last hour of notifications (their
 * index), and `author_id` in the data says whose mention each was. With `landed`, only if it
 * holds (a reply refused inside its batch mentions nobody).
 */
function mentionNotifications(
  db: Database,
  post: { id: string; body: string; topicId: string; categorySlug: string; topicTitle: string },
  author: AuthenticatedUser,
  now: string,
  landed: SQL = sql`1`,
) {
  const names = JSON.stringify(mentionedUsernames(post.body));
  const mentioned = sql.raw("u.id");
  return insertNotifications(
    db,
    "forum_mention",
    {
      userId: mentioned,
      title: sql`${NOTICE_TITLES.forum_mention(author.username, post.topicTitle)}`,
      body: sql`${excerpt(post.body, REPLY_EXCERPT_CHARS)}`,
      data: sql`json_object('topic_id', ${post.topicId}, 'post_id', ${post.id}, 'category_slug', ${post.categorySlug}, 'author_id', ${author.id})`,
      dedupeKey: mentionKey(sql`${post.id}`, mentioned),
      createdAt: now,
    },
    // json_each is the point: the mentioned names as a list to match in one statement.
    sql`FROM users u WHERE lower(u.username) IN (SELECT value FROM json_each(${names})) AND u.id != ${author.id} AND u.is_active = 1
         AND ${underHourlyCap(sql.raw("u.id"), "forum_mention", author.id, now, MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR)} AND ${landed}`,
  );
}

/** The post, its topic, and a 409 when it is already deleted. */
async function livePost(env: Bindings, id: string): Promise<{ post: NonNullable<PostRow>; topic: NonNullable<TopicRow> }> {
  const post = await getPost(env, id);
  if (post.is_deleted) throw new AppError("POST_DELETED", 409, "This post has been deleted.");
  return { post, topic: await getTopic(env, post.topic_id) };
}

export async function editPost(
  env: Bindings,
  user: AuthenticatedUser,
  id: string,
  rawBody: string,
  now = Date.now(),
): Promise<{ post: NonNullable<PostRow>; topic: NonNullable<TopicRow>; updated: Notification[] }> {
  const { post, topic } = await livePost(env, id);
  const moderator = isForumModerator(user);
  if (!moderator) {
    if (post.author_id !== user.id) throw new AppError("FORBIDDEN", 403, "You can only edit your own posts.");
    if (topic.is_locked) throw lockedError();
    if (post.moderator_edited_at) throw moderatorEditedError("post");
  }
  await assertWithinEditWindow(env, user, post.created_at, "Posts", now);
  const body = cleanBody(rawBody);
  const at = new Date(now).toISOString();
  const db = database(env);
  // The lock and a moderator's rewrite, checked again inside the write (a moderator's edit
  // ignores both), and the editor's account still active.
  const open = and(
    moderator
      ? sql`1`
      : and(unlocked(post.topic_id), sql`NOT EXISTS (SELECT 1 FROM forum_posts WHERE id = ${id} AND moderator_edited_at IS NOT NULL)`),
    authorActive(user),
  )!;
  // The notifications the post raised quote it: they quote what it says now. Both writes hold
  // only while the post is live (and its topic open), checked again inside the batch: a delete
  // that landed since the check above has withdrawn those notifications, and the edit must not
  // write text back. They come back for the caller to tell their owners' sockets.
  const [edited, updated] = await runBatch(db, [
    db
      .update(forumPosts)
      // A moderator's edit of someone else's post is recorded: its author may no longer edit it.
      .set({ body, editedAt: at, updatedAt: at, ...(moderator && post.author_id !== user.id ? { moderatorEditedAt: at } : {}) })
      .where(and(eq(forumPosts.id, id), eq(forumPosts.isDeleted, false), open)),
    sql`UPDATE notifications SET body = ${excerpt(body, REPLY_EXCERPT_CHARS)}
        WHERE ${raisedBy(sql`${id}`)} AND ${notWithdrawn()}
          AND EXISTS (SELECT 1 FROM forum_posts WHERE id = ${id} AND is_deleted = 0) AND ${open}
        RETURNING *`,
  ]);
  if (changes(edited) === 0) {
    await refuseIfDeactivated(env, user.id);
    if ((await getTopic(env, post.topic_id)).is_locked && !moderator) throw lockedError();
    const current = await getPost(env, id);
    if (current.moderator_edited_at && !current.is_deleted && !moderator) throw moderatorEditedError("post");
    throw new AppError("POST_DELETED", 409, "This post has been deleted.");
  }
  return { post: await getPost(env, id), topic, updated: tableRows(notifications, updated) };
}

/**
 * Deletes a post (a placeholder stays); answers the notifications withdrawn with it, for the caller
 * to tell their owners' sockets. Its attachments go with it (a deleted post shows none), and their
 * photos are released unless another row still shows them: a deleted post's photos no longer count
 * toward its author's storage allowance, nor stay stored for nobody.
 */
export async function deletePost(env: Bindings, user: AuthenticatedUser, id: string, logger?: Logger): Promise<WithdrawnNotification[]> {
  const { post } = await livePost(env, id);
  const own = post.author_id === user.id;
  if (!own && !isForumModerator(user)) throw new AppError("FORBIDDEN", 403, "You can only delete your own posts.");
  const now = new Date().toISOString();
  const db = database(env);
  // Someone else's post is deleted by a moderator only while their account is active, checked in
  // every statement: a deactivation committed meanwhile deletes and withdraws nothing. (One's own
  // post goes whether or not one was deactivated meanwhile: removing what one wrote is harmless.)
  const allowed = own ? sql`1` : authorActive(user);
  const postDeleted = sql`EXISTS (SELECT 1 FROM ${forumPosts} dp WHERE dp.id = ${id} AND dp.is_deleted = 1)`;
  const batch = await runBatch(db, [
    db
      .update(forumPosts)
      .set({ isDeleted: true, deletedAt: now, updatedAt: now })
      .where(and(eq(forumPosts.id, id), eq(forumPosts.isDeleted, false), allowed)),
    // Right after it: changes() is that update's, so a post deleted twice is uncounted once.
    sql`UPDATE users SET post_count = max(post_count - 1, 0)
        WHERE id = (SELECT author_id FROM forum_posts WHERE id = ${id}) AND changes() = 1
        ${uncountedAuthors(sql`1`)}`,
    ...withdrawNotifications(db, sql`SELECT ${id} AS id WHERE ${allowed}`),
    db.delete(forumReactions).where(and(eq(forumReactions.postId, id), allowed)),
    db
      .update(forumTopics)
      .set({ solutionPostId: null })
      .where(and(eq(forumTopics.id, post.topic_id), eq(forumTopics.solutionPostId, id), allowed)),
    refreshTopicCounters(env, post.topic_id, now, allowed),
    // Last, once the post is marked deleted (by this request or an earlier one): its attachments.
    db
      .delete(forumAttachments)
      .where(and(eq(forumAttachments.postId, id), postDeleted, allowed))
      .returning({ image: forumAttachments.image }),
  ]);
  const [marked, uncounted, withdrawn] = batch;
  const detached = batch.at(-1);
  if (!own && changes(marked) === 0) await refuseIfDeactivated(env, user.id);
  await releasePhotoRefs(
    env,
    batchRows(detached).map((r) => String(r.image)),
  );
  await recountFallen(env, uncounted, logger);
  // Read by the table's columns whichever way runBatch sent the batch (drizzle's or raw D1).
  return tableRows(notifications, withdrawn).map(({ id, userId, inApp }) => ({ id, userId, inApp }));
}

/**
 * Adds the reaction, or removes it if the user already has it, and answers the state this toggle
 * left. One D1 batch, which runs as one transaction, serialised with every other write:
 *   1. delete the reaction if it is there;
 *   2. insert it only if (1) deleted nothing — `changes()` is the row count of the statement just
 *      before, on the same connection — and only while the post is live;
 *   3. read the post's counts and the caller's reactions.
 * So N concurrent toggles behave as N toggles one after the other: they alternate added/removed,
 * never duplicate a row, and each answer's `reacted`, counts and `my_reactions` are the state
 * right after that toggle (a read-then-write, as before, let two toggles both "add" one row).
 */
export async function toggleReaction(env: Bindings, userId: string, postId: string, type: ReactionType) {
  await livePost(env, postId);
  const db = database(env);
  const r = forumReactions;
  const [removed, added, state] = (await runBatch(db, [
    db
      .delete(r)
      .where(and(eq(r.postId, postId), eq(r.userId, userId), eq(r.type, type), authorActive({ id: userId })))
      .returning({ type: r.type }),
    // changes() is the point: insert only when the delete just before removed nothing, in the same transaction.
    sql`INSERT INTO forum_reactions (post_id, user_id, type, created_at)
        SELECT ${postId}, ${userId}, ${type}, ${new Date().toISOString()}
         WHERE changes() = 0 AND EXISTS (SELECT 1 FROM forum_posts WHERE id = ${postId} AND is_deleted = 0)
           AND ${authorActive({ id: userId })}
        RETURNING type`,
    // Read inside the same transaction (a raw batch answers rows by these aliases).
    sql`SELECT type, count(*) AS n, max(user_id = ${userId}) AS mine FROM forum_reactions WHERE post_id = ${postId} GROUP BY type ORDER BY type`,
  ])) as { results: { type: ReactionType; n?: number; mine?: number }[] }[];
  const reacted = added!.results.length > 0;
  // Neither removed nor added: the account was deactivated, or the post deleted, between the
  // check above and the batch.
  if (!reacted && removed!.results.length === 0) {
    await refuseIfDeactivated(env, userId);
    throw new AppError("POST_DELETED", 409, "This post has been deleted.");
  }
  const reactions = noReactions();
  const mine: ReactionType[] = [];
  for (const row of state!.results) {
    reactions[row.type] = row.n ?? 0;
    if (row.mine) mine.push(row.type);
  }
  return { post_id: postId, type, reacted, reactions, my_reactions: mine };
}

/**
 * Marks (or, with null, clears) a topic's solution. The post must be a live reply of this topic,
 * checked by the update itself: a post deleted while this runs (whose delete cleared a solution
 * that was not set yet) cannot become the solution after all. A refused update reads the post to
 * say why (400).
 */
export async function setSolution(env: Bindings, user: AuthenticatedUser, topicId: string, postId: string | null): Promise<TopicRow> {
  const topic = await getTopic(env, topicId);
  assertTopicAuthorOrModerator(user, topic, "mark the solution");
  const p = forumPosts;
  const candidate =
    postId === null
      ? undefined
      : sql`EXISTS (SELECT 1 FROM ${p} WHERE ${p.id} = ${postId} AND ${p.topicId} = ${topicId} AND ${p.isFirst} = 0 AND ${p.isDeleted} = 0)`;
  const marked = await database(env)
    .update(forumTopics)
    .set({ solutionPostId: postId, updatedAt: new Date().toISOString() })
    .where(and(eq(forumTopics.id, topicId), candidate, authorActive(user)))
    .returning({ id: forumTopics.id });
  if (marked.length === 0) {
    // The update carries the rule; only a refusal reads the post, to say why.
    await refuseIfDeactivated(env, user.id);
    await getTopic(env, topicId); // 404 when the topic was deleted meanwhile
    if (postId !== null) await assertSolutionCandidate(env, topicId, postId);
    throw new AppError("CONFLICT", 409, "The topic changed at the same moment; try again.");
  }
  return getTopic(env, topicId);
}

/** 400 unless `postId` is a live reply (not the opening post) of topic `topicId`. */
async function assertSolutionCandidate(env: Bindings, topicId: string, postId: string): Promise<void> {
  const post = await database(env)
    .select({ is_first: forumPosts.isFirst, is_deleted: forumPosts.isDeleted })
    .from(forumPosts)
    .where(and(eq(forumPosts.id, postId), eq(forumPosts.topicId, topicId)))
    .get();
  const problem = !post
    ? "No such post in this topic."
    : post.is_first
      ? "The opening post cannot be the solution."
      : post.is_deleted
        ? "A deleted post cannot be the solution."
        : null;
  if (problem) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { post_id: [problem] });
}

/** Locks or pins a topic, only while the moderator's account is active (checked inside the write). */
export async function moderateTopic(
  env: Bindings,
  moderator: Pick<AuthenticatedUser, "id">,
  topicId: string,
  patch: { is_locked?: boolean; is_pinned?: boolean },
): Promise<TopicRow> {
  await getTopic(env, topicId);
  const changed = await database(env)
    .update(forumTopics)
    .set({ isLocked: patch.is_locked, isPinned: patch.is_pinned, updatedAt: new Date().toISOString() })
    .where(and(eq(forumTopics.id, topicId), authorActive(moderator)));
  if (changes(changed) === 0) await refuseIfDeactivated(env, moderator.id);
  return getTopic(env, topicId);
}

export async function setSubscription(env: Bindings, userId: string, topicId: string, subscribed: boolean): Promise<void> {
  await getTopic(env, topicId);
  const db = database(env);
  const sub = forumSubscriptions;
  if (subscribed) {
    // Only while the account is active (checked inside the insert): a deactivation committed while
    // this was on its way subscribes nothing (401). Stopping is left to land: it is harmless.
    const added = await db
      .insert(sub)
      .select(rowIf(sub, { topicId, userId, createdAt: new Date().toISOString() }, authorActive({ id: userId })))
      .onConflictDoNothing();
    // Nothing added: already subscribed, or refused.
    if (changes(added) === 0) await refuseIfDeactivated(env, userId);
  } else {
    await db.delete(sub).where(and(eq(sub.topicId, topicId), eq(sub.userId, userId)));
  }
}

// ---------------------------------------------------------------------------------------------
// Reports

export function reportBody(row: ReportRow) {
  return {
    id: row.id,
    post_id: row.post_id,
    topic_id: row.topic_id,
    reporter: { id: row.reporter_id, username: row.reporter_username },
    reason: row.reason,
    status: row.status,
    post_body: row.post_body,
    post_is_deleted: Boolean(row.post_is_deleted),
    resolved_by: row.resolved_by,
    resolved_at: row.resolved_at,
    created_at: row.created_at,
  };
}

/** A report as its reporter is answered (`POST forum/posts/{id}/report/`): not the moderators' view of it. */
export function reportReceipt(row: Pick<ReportRow, "id" | "post_id" | "status" | "created_at">) {
  return { id: row.id, post_id: row.post_id, status: row.status, created_at: row.created_at };
}

/** Reports of one status, oldest first. */
export function listReports(
  env: Bindings,
  status: (typeof REPORT_STATUSES)[number],
  page: PageRequest,
): Promise<Page<NonNullable<ReportRow>>> {
  const where = eq(forumReports.status, status);
  return countedPage(
    database(env),
    selectReports(env).where(where).orderBy(asc(forumReports.createdAt), asc(forumReports.id)),
    { from: forumReports, where },
    page,
  ) as Promise<Page<NonNullable<ReportRow>>>;
}

async function getReport(env: Bindings, id: string): Promise<NonNullable<ReportRow>> {
  return orNotFound(await selectReports(env).where(eq(forumReports.id, id)).get(), "Report");
}

export async function reportPost(env: Bindings, userId: string, postId: string, reason: string): Promise<NonNullable<ReportRow>> {
  await getPost(env, postId);
  const id = uuidv7();
  const db = database(env);
  try {
    await db
      .insert(forumReports)
      .select(
        rowIf(forumReports, { id, postId, reporterId: userId, reason, createdAt: new Date().toISOString() }, authorActive({ id: userId })),
      );
  } catch (err) {
    if (isUniqueViolation(err)) throw new AppError("ALREADY_REPORTED", 409, "You have already reported this post.");
    throw err;
  }
  const report = await selectReports(env).where(eq(forumReports.id, id)).get();
  if (!report) await refuseIfDeactivated(env, userId);
  return orNotFound(report, "Report");
}

export async function resolveReport(
  env: Bindings,
  moderatorId: string,
  id: string,
  status: "resolved" | "dismissed" | "open",
): Promise<NonNullable<ReportRow>> {
  await getReport(env, id);
  const open = status === "open";
  // Only while the moderator's account is active (checked inside the write).
  const changed = await database(env)
    .update(forumReports)
    .set({ status, resolvedBy: open ? null : moderatorId, resolvedAt: open ? null : new Date().toISOString() })
    .where(and(eq(forumReports.id, id), authorActive({ id: moderatorId })));
  if (changes(changed) === 0) await refuseIfDeactivated(env, moderatorId);
  return getReport(env, id);
}
