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
 * - Every new post (topic or reply) counts towards the author's `post_count` (trust levels).
 * - Image attachments (at most MAX_ATTACHMENTS, authors of trust level ATTACHMENT_MIN_TRUST and
 *   up, else 403 TRUST_LEVEL_TOO_LOW) are given only when the post is written; edits keep them.
 *   The photos go to R2 (content-addressed, shared with requests and plants) only after every
 *   check has passed, and the rows are written in the same batch as the post; if that batch
 *   fails, photos nothing else uses are deleted again. A deleted post shows no attachments (its
 *   rows stay, like its body, and keep the photos alive); deleting a topic removes them and
 *   releases photos that nothing else uses.
 */
import { fetchPage, type Page, type PageRequest } from "../db/pagination";
import type { Bindings, AuthenticatedUser } from "../env";
import { AppError, isUniqueViolation } from "../lib/errors";
import { uuidv7 } from "../lib/ids";
import { IMAGE_MIME, type ImageMime, type ValidatedImage } from "../lib/images";
import { excerpt, sanitisePostBody, truncateText, visibleText } from "../lib/sanitise";
import { insertNotificationsStatement, type NotificationRow } from "./notifications";
import { imageUrl, parsePhotoRef, releasePhotoRefs, withStoredPhotos } from "./photos";
import { avatarUrl, type Role, TRUST_ORDER, type TrustLevel, trustLevelOf } from "./users";

export const FORUM_MODERATOR_ROLES: Role[] = ["moderator", "admin"];
export const REACTION_TYPES = ["like", "love", "helpful", "thanks"] as const;
export type ReactionType = (typeof REACTION_TYPES)[number];
export const REPORT_STATUSES = ["open", "resolved", "dismissed"] as const;
export const DELETED_PLACEHOLDER = "[deleted]";
/** API.md §5: at most this many photos per post, from authors of at least this trust level. */
export const MAX_ATTACHMENTS = 6;
export const ATTACHMENT_MIN_TRUST: TrustLevel = "basic";

const HOUR_MS = 3_600_000;
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

interface AuthorColumns {
  author_id: string | null;
  author_username: string | null;
  author_first_name: string | null;
  author_last_name: string | null;
  author_avatar_key: string | null;
}

const AUTHOR_SELECT = `u.username AS author_username, u.first_name AS author_first_name, u.last_name AS author_last_name, u.avatar_key AS author_avatar_key`;

function author(row: AuthorColumns) {
  if (!row.author_id || !row.author_username) return null;
  const displayName = `${row.author_first_name ?? ""} ${row.author_last_name ?? ""}`.trim() || row.author_username;
  return {
    id: row.author_id,
    username: row.author_username,
    display_name: displayName,
    avatar_url: avatarUrl({ avatarKey: row.author_avatar_key }),
  };
}

export interface CategoryRow {
  id: string;
  slug: string;
  name: string;
  description: string;
  position: number;
  topic_count: number;
}

export interface TopicRow extends AuthorColumns {
  id: string;
  category_id: string;
  category_slug: string;
  title: string;
  is_locked: number;
  is_pinned: number;
  reply_count: number;
  last_activity_at: string;
  solution_post_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface PostRow extends AuthorColumns {
  id: string;
  topic_id: string;
  body: string;
  is_first: number;
  is_deleted: number;
  deleted_at: string | null;
  edited_at: string | null;
  created_at: string;
  updated_at: string;
}

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
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

// ---------------------------------------------------------------------------------------------
// Reads

export async function listCategories(env: Bindings): Promise<CategoryRow[]> {
  const { results } = await env.DB.prepare(
    `SELECT c.id, c.slug, c.name, c.description, c.position,
            (SELECT count(*) FROM forum_topics t WHERE t.category_id = c.id) AS topic_count
       FROM forum_categories c ORDER BY c.position, c.name`,
  ).all<CategoryRow>();
  return results;
}

export async function categoryBySlug(env: Bindings, slug: string): Promise<CategoryRow> {
  const row = await env.DB.prepare(
    `SELECT c.id, c.slug, c.name, c.description, c.position,
            (SELECT count(*) FROM forum_topics t WHERE t.category_id = c.id) AS topic_count
       FROM forum_categories c WHERE c.slug = ?`,
  )
    .bind(slug)
    .first<CategoryRow>();
  if (!row) throw new AppError("NOT_FOUND", 404, "Category not found.");
  return row;
}

const TOPIC_SELECT = `t.id, t.category_id, c.slug AS category_slug, t.title, t.is_locked, t.is_pinned, t.reply_count,
  t.last_activity_at, t.solution_post_id, t.created_at, t.updated_at, t.author_id, ${AUTHOR_SELECT}`;
const TOPIC_FROM = `FROM forum_topics t JOIN forum_categories c ON c.id = t.category_id LEFT JOIN users u ON u.id = t.author_id`;

/** A category's topics: pinned first, then the most recent activity. */
export function listTopics(env: Bindings, categoryId: string, page: PageRequest): Promise<Page<TopicRow>> {
  return fetchPage<TopicRow>(env, topicPageQuery(categoryId), page);
}

function topicPageQuery(categoryId: string) {
  return {
    select: TOPIC_SELECT,
    from: `${TOPIC_FROM} WHERE t.category_id = ?`,
    order: "t.is_pinned DESC, t.last_activity_at DESC, t.id DESC",
    binds: [categoryId],
  };
}

export async function getTopic(env: Bindings, id: string): Promise<TopicRow> {
  const row = await env.DB.prepare(`SELECT ${TOPIC_SELECT} ${TOPIC_FROM} WHERE t.id = ?`).bind(id).first<TopicRow>();
  if (!row) throw new AppError("NOT_FOUND", 404, "Topic not found.");
  return row;
}

const POST_SELECT = `p.id, p.topic_id, p.body, p.is_first, p.is_deleted, p.deleted_at, p.edited_at, p.created_at, p.updated_at, p.author_id, ${AUTHOR_SELECT}`;
const POST_FROM = `FROM forum_posts p LEFT JOIN users u ON u.id = p.author_id`;

/** A topic's posts, oldest first: the opening post, then the replies in the order they were written. */
export function listPosts(env: Bindings, topicId: string, page: PageRequest): Promise<Page<PostRow>> {
  return fetchPage<PostRow>(env, postPageQuery(topicId), page);
}

function postPageQuery(topicId: string) {
  return {
    select: POST_SELECT,
    from: `${POST_FROM} WHERE p.topic_id = ?`,
    order: "p.created_at ASC, p.is_first DESC, p.id ASC",
    binds: [topicId],
  };
}

export async function getPost(env: Bindings, id: string): Promise<PostRow> {
  const row = await env.DB.prepare(`SELECT ${POST_SELECT} ${POST_FROM} WHERE p.id = ?`).bind(id).first<PostRow>();
  if (!row) throw new AppError("NOT_FOUND", 404, "Post not found.");
  return row;
}

export async function firstPost(env: Bindings, topicId: string): Promise<PostRow | null> {
  return env.DB.prepare(`SELECT ${POST_SELECT} ${POST_FROM} WHERE p.topic_id = ? AND p.is_first = 1`).bind(topicId).first<PostRow>();
}

/** Reaction counts per post and the caller's own reactions, for one page of posts in one query. */
export async function reactionsFor(env: Bindings, postIds: string[], userId?: string) {
  const counts = new Map<string, ReactionCounts>();
  const mine = new Map<string, ReactionType[]>();
  if (postIds.length === 0) return { counts, mine };
  // D1 binds at most 100 parameters per statement: chunk the ids (a page holds up to 100 posts).
  const chunks: string[][] = [];
  for (let i = 0; i < postIds.length; i += 50) chunks.push(postIds.slice(i, i + 50));
  const answers = await env.DB.batch<{ post_id: string; type: ReactionType; n: number; mine: number }>(
    chunks.map((ids) =>
      env.DB.prepare(
        `SELECT post_id, type, count(*) AS n, max(user_id = ?) AS mine FROM forum_reactions WHERE post_id IN (${ids.map(() => "?").join(", ")}) GROUP BY post_id, type`,
      ).bind(userId ?? "", ...ids),
    ),
  );
  const results = answers.flatMap((a) => a.results);
  for (const r of results) {
    const c = counts.get(r.post_id) ?? noReactions();
    c[r.type] = r.n;
    counts.set(r.post_id, c);
    if (r.mine) mine.set(r.post_id, [...(mine.get(r.post_id) ?? []), r.type]);
  }
  return { counts, mine };
}

/** Attachments per post, in position order, for one page of posts (deleted posts: pass none). */
export async function attachmentsFor(env: Bindings, postIds: string[]): Promise<Map<string, Attachment[]>> {
  const out = new Map<string, Attachment[]>();
  if (postIds.length === 0) return out;
  const chunks: string[][] = [];
  for (let i = 0; i < postIds.length; i += 50) chunks.push(postIds.slice(i, i + 50));
  const answers = await env.DB.batch<{ post_id: string; image: string; width: number; height: number }>(
    chunks.map((ids) =>
      env.DB.prepare(
        `SELECT post_id, image, width, height FROM forum_attachments WHERE post_id IN (${ids.map(() => "?").join(", ")}) ORDER BY post_id, position`,
      ).bind(...ids),
    ),
  );
  for (const r of answers.flatMap((a) => a.results)) {
    const image = parsePhotoRef(r.image);
    if (!image) continue; // only ever written from validated uploads; never expose a malformed key
    const list = out.get(r.post_id) ?? [];
    list.push({ url: imageUrl(image), width: r.width, height: r.height, content_type: IMAGE_MIME[image.type] });
    out.set(r.post_id, list);
  }
  return out;
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
  const row = await env.DB.prepare("SELECT 1 AS x FROM forum_subscriptions WHERE topic_id = ? AND user_id = ?")
    .bind(topicId, userId)
    .first();
  return row !== null;
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

/** Recomputes a topic's counters from its posts (run in the same batch as the post write). */
function refreshTopicCounters(env: Bindings, topicId: string, now: string) {
  return env.DB.prepare(
    `UPDATE forum_topics SET
       reply_count = (SELECT count(*) FROM forum_posts WHERE topic_id = ? AND is_first = 0 AND is_deleted = 0),
       last_activity_at = COALESCE((SELECT max(created_at) FROM forum_posts WHERE topic_id = ? AND is_deleted = 0), created_at),
       updated_at = ?
     WHERE id = ?`,
  ).bind(topicId, topicId, now, topicId);
}

function countPost(env: Bindings, userId: string) {
  return env.DB.prepare("UPDATE users SET post_count = post_count + 1 WHERE id = ?").bind(userId);
}

/** One row per photo, positions 1..n in upload order (for the same batch as the post insert). */
function insertAttachments(env: Bindings, postId: string, images: ValidatedImage[], now: string) {
  return images.map((img, i) =>
    env.DB.prepare("INSERT INTO forum_attachments (post_id, position, image, width, height, created_at) VALUES (?, ?, ?, ?, ?, ?)").bind(
      postId,
      i + 1,
      `${img.sha256}.${img.extension}`, // "<sha256>.<ext>", as requests store their images
      img.width,
      img.height,
      now,
    ),
  );
}

/** Stores the photos, then runs the D1 write; a failed write releases them again (photos.ts). */
function withStoredImages<T>(env: Bindings, images: ValidatedImage[], write: () => Promise<T>): Promise<T> {
  return images.length === 0 ? write() : withStoredPhotos(env, images, write);
}

export async function createTopic(
  env: Bindings,
  user: AuthenticatedUser,
  categoryId: string,
  title: string,
  rawBody: string,
  images: ValidatedImage[] = [],
): Promise<TopicRow> {
  const body = cleanBody(rawBody);
  const topicId = uuidv7();
  const postId = uuidv7();
  const now = new Date().toISOString();
  await withStoredImages(env, images, () =>
    env.DB.batch([
      env.DB.prepare(
        `INSERT INTO forum_topics (id, category_id, author_id, title, last_activity_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).bind(topicId, categoryId, user.id, title, now, now, now),
      env.DB.prepare(
        `INSERT INTO forum_posts (id, topic_id, author_id, body, is_first, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)`,
      ).bind(postId, topicId, user.id, body, now, now),
      ...insertAttachments(env, postId, images, now),
      env.DB.prepare("INSERT INTO forum_subscriptions (topic_id, user_id, created_at) VALUES (?, ?, ?)").bind(topicId, user.id, now),
      countPost(env, user.id),
    ]),
  );
  return getTopic(env, topicId);
}

function assertTopicAuthorOrModerator(user: AuthenticatedUser, topic: TopicRow, action: string) {
  if (topic.author_id !== user.id && !isForumModerator(user))
    throw new AppError("FORBIDDEN", 403, `Only the topic's author or a moderator can ${action}.`);
}

export async function updateTopicTitle(env: Bindings, user: AuthenticatedUser, id: string, title: string): Promise<TopicRow> {
  const topic = await getTopic(env, id);
  assertTopicAuthorOrModerator(user, topic, "change its title");
  if (topic.is_locked && !isForumModerator(user)) throw lockedError();
  await env.DB.prepare("UPDATE forum_topics SET title = ?, updated_at = ? WHERE id = ?").bind(title, new Date().toISOString(), id).run();
  return getTopic(env, id);
}

export async function deleteTopic(env: Bindings, user: AuthenticatedUser, id: string): Promise<void> {
  const topic = await getTopic(env, id);
  assertTopicAuthorOrModerator(user, topic, "delete it");
  if (!isForumModerator(user)) {
    const others = await env.DB.prepare("SELECT count(*) AS n FROM forum_posts WHERE topic_id = ? AND author_id != ? AND is_deleted = 0")
      .bind(id, user.id)
      .first<{ n: number }>();
    if (others!.n > 0) throw new AppError("TOPIC_HAS_REPLIES", 409, "This topic has replies from others; ask a moderator to remove it.");
  }
  // The posts and their attachments go with the topic (cascade); then release photos nothing else uses.
  const [attached] = await env.DB.batch<{ image: string }>([
    env.DB.prepare("SELECT DISTINCT a.image FROM forum_attachments a JOIN forum_posts p ON p.id = a.post_id WHERE p.topic_id = ?").bind(id),
    env.DB.prepare("DELETE FROM forum_topics WHERE id = ?").bind(id),
  ]);
  await releasePhotoRefs(
    env,
    attached!.results.map((r) => r.image),
  );
}

function lockedError() {
  return new AppError("TOPIC_LOCKED", 403, "This topic is locked.");
}

/** Subscribers notified of one reply, at most: a huge topic must not turn a reply into a mass write. */
export const MAX_REPLY_NOTIFICATIONS = 200;
const REPLY_EXCERPT_CHARS = 140;

/**
 * Posts a reply and, in the same atomic batch, one `forum_reply` notification for each of the
 * topic's subscribers except the replier (active accounts, longest subscribed first, at most
 * MAX_REPLY_NOTIFICATIONS). The dedupe key `forum_reply:<post id>:<user id>` means a post can
 * notify each user once; edits and deletions never notify. Returns the inserted notifications
 * for the caller to push live.
 */
export async function createReply(
  env: Bindings,
  user: AuthenticatedUser,
  topicId: string,
  rawBody: string,
  images: ValidatedImage[] = [],
): Promise<{ post: PostRow; notifications: NotificationRow[] }> {
  const topic = await getTopic(env, topicId);
  if (topic.is_locked && !isForumModerator(user)) throw lockedError();
  const body = cleanBody(rawBody);
  const id = uuidv7();
  const now = new Date().toISOString();
  const db = env.DB;
  const title = truncateText(`${user.username} replied to "${truncateText(topic.title, 80)}"`, 120);
  const results = await withStoredImages(env, images, () =>
    db.batch([
      db
        .prepare(`INSERT INTO forum_posts (id, topic_id, author_id, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`)
        .bind(id, topicId, user.id, body, now, now),
      ...insertAttachments(env, id, images, now),
      refreshTopicCounters(env, topicId, now),
      countPost(env, user.id),
      insertNotificationsStatement(
        db,
        "forum_reply",
        {
          userId: "s.user_id",
          title: "?",
          body: "?",
          data: "json_object('topic_id', ?, 'post_id', ?, 'category_slug', ?)",
          dedupeKey: "'forum_reply:' || ? || ':' || s.user_id",
          createdAt: "?",
        },
        `FROM forum_subscriptions s JOIN users u ON u.id = s.user_id
        WHERE s.topic_id = ? AND s.user_id != ? AND u.is_active = 1
        ORDER BY s.created_at, s.user_id
        LIMIT ?`,
      ).bind(
        title,
        excerpt(body, REPLY_EXCERPT_CHARS),
        topicId,
        id,
        topic.category_slug,
        id,
        now,
        topicId,
        user.id,
        MAX_REPLY_NOTIFICATIONS,
      ),
    ]),
  );
  return { post: await getPost(env, id), notifications: results[results.length - 1]!.results as NotificationRow[] };
}

/** The post, its topic, and a 409 when it is already deleted. */
async function livePost(env: Bindings, id: string): Promise<{ post: PostRow; topic: TopicRow }> {
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
): Promise<{ post: PostRow; topic: TopicRow }> {
  const { post, topic } = await livePost(env, id);
  if (!isForumModerator(user)) {
    if (post.author_id !== user.id) throw new AppError("FORBIDDEN", 403, "You can only edit your own posts.");
    if (topic.is_locked) throw lockedError();
    const window = EDIT_WINDOW_MS[(await trustLevelOf(env, user.id, now)) ?? "new"];
    if (window !== null && now - Date.parse(post.created_at) > window) {
      throw new AppError("EDIT_WINDOW_CLOSED", 403, `Posts can be edited for ${window / HOUR_MS} hours at your trust level.`);
    }
  }
  const body = cleanBody(rawBody);
  const at = new Date(now).toISOString();
  await env.DB.prepare("UPDATE forum_posts SET body = ?, edited_at = ?, updated_at = ? WHERE id = ?").bind(body, at, at, id).run();
  return { post: await getPost(env, id), topic };
}

export async function deletePost(env: Bindings, user: AuthenticatedUser, id: string): Promise<void> {
  const { post } = await livePost(env, id);
  if (post.author_id !== user.id && !isForumModerator(user)) throw new AppError("FORBIDDEN", 403, "You can only delete your own posts.");
  const now = new Date().toISOString();
  await env.DB.batch([
    env.DB.prepare("UPDATE forum_posts SET is_deleted = 1, deleted_at = ?, updated_at = ? WHERE id = ? AND is_deleted = 0").bind(
      now,
      now,
      id,
    ),
    env.DB.prepare("DELETE FROM forum_reactions WHERE post_id = ?").bind(id),
    env.DB.prepare("UPDATE forum_topics SET solution_post_id = NULL WHERE id = ? AND solution_post_id = ?").bind(post.topic_id, id),
    refreshTopicCounters(env, post.topic_id, now),
  ]);
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
  const db = env.DB;
  const [removed, added, state] = await db.batch<{ type: ReactionType; n?: number; mine?: number }>([
    db.prepare("DELETE FROM forum_reactions WHERE post_id = ? AND user_id = ? AND type = ? RETURNING type").bind(postId, userId, type),
    db
      .prepare(
        `INSERT INTO forum_reactions (post_id, user_id, type, created_at)
         SELECT ?1, ?2, ?3, ?4 WHERE changes() = 0 AND EXISTS (SELECT 1 FROM forum_posts WHERE id = ?1 AND is_deleted = 0)
         RETURNING type`,
      )
      .bind(postId, userId, type, new Date().toISOString()),
    db
      .prepare("SELECT type, count(*) AS n, max(user_id = ?) AS mine FROM forum_reactions WHERE post_id = ? GROUP BY type ORDER BY type")
      .bind(userId, postId),
  ]);
  const reacted = added!.results.length > 0;
  // Neither removed nor added: the post was deleted between the check above and the batch.
  if (!reacted && removed!.results.length === 0) throw new AppError("POST_DELETED", 409, "This post has been deleted.");
  const reactions = noReactions();
  const mine: ReactionType[] = [];
  for (const row of state!.results) {
    reactions[row.type] = row.n ?? 0;
    if (row.mine) mine.push(row.type);
  }
  return { post_id: postId, type, reacted, reactions, my_reactions: mine };
}

export async function setSolution(env: Bindings, user: AuthenticatedUser, topicId: string, postId: string | null): Promise<TopicRow> {
  const topic = await getTopic(env, topicId);
  assertTopicAuthorOrModerator(user, topic, "mark the solution");
  if (postId !== null) {
    const post = await env.DB.prepare("SELECT is_first, is_deleted FROM forum_posts WHERE id = ? AND topic_id = ?")
      .bind(postId, topicId)
      .first<{ is_first: number; is_deleted: number }>();
    const problem = !post
      ? "No such post in this topic."
      : post.is_first
        ? "The opening post cannot be the solution."
        : post.is_deleted
          ? "A deleted post cannot be the solution."
          : null;
    if (problem) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { post_id: [problem] });
  }
  await env.DB.prepare("UPDATE forum_topics SET solution_post_id = ?, updated_at = ? WHERE id = ?")
    .bind(postId, new Date().toISOString(), topicId)
    .run();
  return getTopic(env, topicId);
}

export async function moderateTopic(
  env: Bindings,
  topicId: string,
  patch: { is_locked?: boolean; is_pinned?: boolean },
): Promise<TopicRow> {
  await getTopic(env, topicId);
  const sets: string[] = [];
  const binds: unknown[] = [];
  if (patch.is_locked !== undefined) {
    sets.push("is_locked = ?");
    binds.push(patch.is_locked ? 1 : 0);
  }
  if (patch.is_pinned !== undefined) {
    sets.push("is_pinned = ?");
    binds.push(patch.is_pinned ? 1 : 0);
  }
  await env.DB.prepare(`UPDATE forum_topics SET ${sets.join(", ")}, updated_at = ? WHERE id = ?`)
    .bind(...binds, new Date().toISOString(), topicId)
    .run();
  return getTopic(env, topicId);
}

export async function setSubscription(env: Bindings, userId: string, topicId: string, subscribed: boolean): Promise<void> {
  await getTopic(env, topicId);
  if (subscribed) {
    await env.DB.prepare("INSERT INTO forum_subscriptions (topic_id, user_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
      .bind(topicId, userId, new Date().toISOString())
      .run();
  } else {
    await env.DB.prepare("DELETE FROM forum_subscriptions WHERE topic_id = ? AND user_id = ?").bind(topicId, userId).run();
  }
}

// ---------------------------------------------------------------------------------------------
// Reports

export interface ReportRow {
  id: string;
  post_id: string;
  topic_id: string;
  reporter_id: string;
  reporter_username: string;
  reason: string;
  status: (typeof REPORT_STATUSES)[number];
  resolved_by: string | null;
  resolved_at: string | null;
  created_at: string;
  post_body: string;
  post_is_deleted: number;
}

const REPORT_SELECT = `r.id, r.post_id, p.topic_id, r.reporter_id, u.username AS reporter_username, r.reason, r.status, r.resolved_by,
  r.resolved_at, r.created_at, p.body AS post_body, p.is_deleted AS post_is_deleted`;
const REPORT_FROM = `FROM forum_reports r JOIN forum_posts p ON p.id = r.post_id JOIN users u ON u.id = r.reporter_id`;

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

/** Reports of one status, oldest first. */
export function listReports(env: Bindings, status: (typeof REPORT_STATUSES)[number], page: PageRequest): Promise<Page<ReportRow>> {
  return fetchPage<ReportRow>(env, reportPageQuery(status), page);
}

function reportPageQuery(status: (typeof REPORT_STATUSES)[number]) {
  return { select: REPORT_SELECT, from: `${REPORT_FROM} WHERE r.status = ?`, order: "r.created_at ASC, r.id ASC", binds: [status] };
}

async function getReport(env: Bindings, id: string): Promise<ReportRow> {
  const row = await env.DB.prepare(`SELECT ${REPORT_SELECT} ${REPORT_FROM} WHERE r.id = ?`).bind(id).first<ReportRow>();
  if (!row) throw new AppError("NOT_FOUND", 404, "Report not found.");
  return row;
}

export async function reportPost(env: Bindings, userId: string, postId: string, reason: string): Promise<ReportRow> {
  await getPost(env, postId);
  const id = uuidv7();
  try {
    await env.DB.prepare("INSERT INTO forum_reports (id, post_id, reporter_id, reason, created_at) VALUES (?, ?, ?, ?, ?)")
      .bind(id, postId, userId, reason, new Date().toISOString())
      .run();
  } catch (err) {
    if (isUniqueViolation(err)) throw new AppError("ALREADY_REPORTED", 409, "You have already reported this post.");
    throw err;
  }
  return getReport(env, id);
}

export async function resolveReport(
  env: Bindings,
  moderatorId: string,
  id: string,
  status: "resolved" | "dismissed" | "open",
): Promise<ReportRow> {
  await getReport(env, id);
  const open = status === "open";
  await env.DB.prepare("UPDATE forum_reports SET status = ?, resolved_by = ?, resolved_at = ? WHERE id = ?")
    .bind(status, open ? null : moderatorId, open ? null : new Date().toISOString(), id)
    .run();
  return getReport(env, id);
}
