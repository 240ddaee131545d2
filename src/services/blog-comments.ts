/**
 * Comments on blog posts (issue 9 item 4). Rules:
 * - Only published posts take and show comments; any other post is "not found".
 * - Bodies go through the allow-list sanitiser (src/lib/sanitise.ts) and are stored sanitised;
 *   a body with no visible text left is a 400.
 * - A comment by an author of trust level `new` waits for moderation (`pending`); others are
 *   `approved` at once. Readers see approved comments; authors also see their own pending ones.
 * - A reply names an approved comment of the same post (`parent_id`).
 * - `blog_posts.comment_count` is the count of approved comments, recomputed in the same batch
 *   as every write that can change it — never read-modify-write — and the edge cache is purged in
 *   that same batch (a comment never commits without its purge).
 * - Moderators (editor, moderator, admin) approve, reject and delete; approving or rejecting
 *   resolves the comment's open reports. Anyone signed in may report a comment once (not their own).
 * - Notifications: a held comment's author hears when it is approved; a comment's author hears
 *   when someone else's reply to it is shown (at once, or when approved) — once each, and from
 *   one replier at most MAX_REPLY_NOTICES_PER_HOUR_FROM_ONE_REPLIER times an hour. A reply
 *   deleted or rejected withdraws that notification (and its unsent email and push), which quotes it.
 */
import { and, asc, count, desc, eq, or, type SQL, sql } from "drizzle-orm";
import { changes, type Database, database, rowIf, runBatch, tableRows } from "../db/client";
import type { Page, PageRequest } from "../db/pagination";
import { blogCommentReports, blogComments, blogPosts, notifications, users } from "../db/schema";
import type { AuthenticatedUser, Bindings } from "../env";
import { AppError, isUniqueViolation } from "../lib/errors";
import { isUuid, uuidv7 } from "../lib/ids";
import { sanitisePostBody, truncateText, visibleText } from "../lib/sanitise";
import { purgeBlogReadsStatement } from "./blog-cache";
import { withdrawStatements } from "./notification-delivery";
import { announceNotifications, announceWithdrawals, createNotification, insertNotifications, underHourlyCap } from "./notifications";
import { refuseIfDeactivated } from "./sessions";
import { accountActive, byline, type Role, trustLevelOf } from "./users";

/** The 404 for a comment that is not there (or not the caller's to see). */
const noSuchComment = () => new AppError("NOT_FOUND", 404, "No such comment.");

export const COMMENT_MODERATOR_ROLES: Role[] = ["editor", "moderator", "admin"];
export const COMMENT_MAX_CHARS = 5000;
const isModerator = (user: AuthenticatedUser | undefined) => !!user && COMMENT_MODERATOR_ROLES.includes(user.role);

const c = blogComments;

const commentColumns = {
  id: c.id,
  postId: c.postId,
  parentId: c.parentId,
  body: c.body,
  status: c.status,
  createdAt: c.createdAt,
  userId: c.userId,
  username: users.username,
  firstName: users.firstName,
  lastName: users.lastName,
  avatarKey: users.avatarKey,
  profileVisibility: users.profileVisibility,
};
type CommentRow = {
  id: string;
  postId: string;
  parentId: string | null;
  body: string;
  status: "pending" | "approved" | "rejected";
  createdAt: string;
  userId: string;
  username: string;
  firstName: string;
  lastName: string;
  avatarKey: string | null;
  profileVisibility: string;
};

export function commentBody(row: CommentRow) {
  return {
    id: row.id,
    post_id: row.postId,
    parent_id: row.parentId,
    body: row.body,
    status: row.status,
    created_at: row.createdAt,
    author: {
      id: row.userId,
      username: row.username,
      ...byline(row),
    },
  };
}

/** The published post named by `idOrSlug` (its id, or its slug as the web app's URLs have it). */
async function publishedPost(env: Bindings, idOrSlug: string) {
  const named = isUuid(idOrSlug) ? eq(blogPosts.id, idOrSlug) : eq(blogPosts.slug, idOrSlug);
  const post = await database(env)
    .select({ id: blogPosts.id, slug: blogPosts.slug })
    .from(blogPosts)
    .where(and(named, eq(blogPosts.status, "published")))
    .get();
  if (!post) throw new AppError("NOT_FOUND", 404, "No published post with this id or slug.");
  return post;
}

/** The statement that sets a post's comment count from its approved comments. */
function recount(env: Bindings, postId: string) {
  const db = database(env);
  return db
    .update(blogPosts)
    .set({
      commentCount: sql`(SELECT count(*) FROM ${blogComments} WHERE ${blogComments.postId} = ${postId} AND ${blogComments.status} = 'approved')`,
    })
    .where(eq(blogPosts.id, postId));
}

/** Comments with their author, as every comment read (and the account export) selects them. */
export function selectComments(env: Bindings) {
  return database(env).select(commentColumns).from(c).innerJoin(users, eq(users.id, c.userId)).$dynamic();
}

/** Approved comments of a published post, oldest first; a signed-in reader also sees their own pending ones. */
export async function listComments(
  env: Bindings,
  viewer: AuthenticatedUser | undefined,
  idOrSlug: string,
  page: PageRequest,
): Promise<Page<ReturnType<typeof commentBody>>> {
  const { id: postId } = await publishedPost(env, idOrSlug);
  const visible: SQL = viewer
    ? or(eq(c.status, "approved"), and(eq(c.status, "pending"), eq(c.userId, viewer.id)))!
    : eq(c.status, "approved");
  const where = and(eq(c.postId, postId), visible);
  const db = database(env);
  const [counted, rows] = await db.batch([
    db.select({ n: count() }).from(c).where(where),
    selectComments(env)
      .where(where)
      .orderBy(asc(c.createdAt), asc(c.id))
      .limit(page.pageSize)
      .offset((page.page - 1) * page.pageSize),
  ]);
  return { count: counted[0]?.n ?? 0, rows: (rows as CommentRow[]).map(commentBody) };
}

async function commentRow(env: Bindings, id: string): Promise<CommentRow | undefined> {
  return (await selectComments(env).where(eq(c.id, id)).get()) as CommentRow | undefined;
}

export async function addComment(
  env: Bindings,
  user: AuthenticatedUser,
  idOrSlug: string,
  input: { body: string; parent_id?: string | null },
) {
  const post = await publishedPost(env, idOrSlug);
  const postId = post.id;
  const body = sanitisePostBody(input.body);
  if (visibleText(body) === "")
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { body: ["The comment has no text (markup alone does not count)."] });
  if (input.parent_id) {
    const parent = await database(env)
      .select({ id: c.id })
      .from(c)
      .where(and(eq(c.id, input.parent_id), eq(c.postId, postId), eq(c.status, "approved")))
      .get();
    if (!parent)
      throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { parent_id: ["Must be an approved comment on the same post."] });
  }
  const held = (await trustLevelOf(env, user.id)) === "new";
  const id = uuidv7();
  const db = database(env);
  // An approved comment moves the post's comment_count, which the cached public reads show: the
  // purge is in the insert's batch, so the comment never commits without it (a purge failing
  // after the commit would answer a written comment with a 5xx, and the retry of its
  // Idempotency-Key would post it again). The author's account is active inside the insert: a
  // deactivation (or deletion) committed while the comment was on its way leaves none.
  await runBatch(db, [
    db
      .insert(c)
      .select(
        rowIf(
          c,
          { id, postId, userId: user.id, parentId: input.parent_id ?? null, body, status: held ? "pending" : "approved" },
          accountActive(sql`${user.id}`),
        ),
      ),
    recount(env, postId),
    ...(held ? [] : [purgeBlogReadsStatement()]),
  ]);
  const row = await commentRow(env, id);
  if (!row) {
    await refuseIfDeactivated(env, user.id);
    throw new Error("The comment's insert wrote nothing");
  }
  if (!held) await tellParentAuthor(env, row, post.slug);
  return commentBody(row);
}

/**
 * One replier's replies notify one comment author at most this many times an hour: past it the
 * replies are still shown, but answering someone's comment over and over cannot flood their
 * notifications and inbox (as with forum mentions). Withdrawn ones count too.
 */
export const MAX_REPLY_NOTICES_PER_HOUR_FROM_ONE_REPLIER = 5;

/**
 * The parent comment's author hears of a shown reply (not of their own), once, while the reply is
 * still shown and within MAX_REPLY_NOTICES_PER_HOUR_FROM_ONE_REPLIER; `author_id` in the data
 * names the replier, which the count reads (the recipient's last hour, by their index).
 */
async function tellParentAuthor(env: Bindings, reply: CommentRow, postSlug: string): Promise<void> {
  if (!reply.parentId) return;
  const now = new Date().toISOString();
  await insertNotifications(
    database(env),
    "blog_comment_reply",
    {
      userId: sql`parent.user_id`,
      title: sql`${`${reply.username} answered your comment`}`,
      body: sql`${truncateText(visibleText(reply.body), 140)}`,
      data: sql`json_object('post_id', ${reply.postId}, 'post_slug', ${postSlug}, 'comment_id', ${reply.id}, 'author_id', ${reply.userId})`,
      dedupeKey: sql`${`blog_comment_reply:${reply.id}`}`,
      createdAt: now,
    },
    sql`FROM blog_comments parent JOIN blog_comments shown ON shown.id = ${reply.id} AND shown.status = 'approved'
        WHERE parent.id = ${reply.parentId} AND parent.user_id <> ${reply.userId}
          AND ${underHourlyCap(sql.raw("parent.user_id"), "blog_comment_reply", reply.userId, now, MAX_REPLY_NOTICES_PER_HOUR_FROM_ONE_REPLIER)}`,
  )
    .then((rows) => announceNotifications(env, rows))
    .catch(() => undefined); // best effort: the comment is written either way
}

/** The caller's own comment, or any comment for a moderator; others get "not found". */
async function commentFor(env: Bindings, user: AuthenticatedUser, id: string): Promise<CommentRow> {
  const row = await commentRow(env, id);
  if (!row || (row.userId !== user.id && !isModerator(user))) throw noSuchComment();
  return row;
}

/**
 * Withdraws the reply notification comment `id` raised (its parent's author's, which quotes it),
 * for the batch that removes the comment from view: its text must not stay readable there nor go
 * out later by email, push or digest; only while `when` holds (the removal's own condition). The
 * first statement reads the rows withdrawn.
 */
function withdrawReplyNotice(db: Database, id: string, when: SQL = sql`1`) {
  return withdrawStatements(db, sql`(SELECT id FROM notifications n WHERE ${replyNoticeOf(sql`${id}`)} AND ${when})`);
}

/** SQL: notification `n` is the reply notice comment `commentId` (an expression for one id) raised. */
export function replyNoticeOf(commentId: SQL): SQL {
  return sql`n.dedupe_key = 'blog_comment_reply:' || ${commentId}`;
}

/**
 * Withdraws the reply notifications the comments of post `postId` raised, for the batch that
 * deletes the post (its comments go with it), before the delete and only while `when` holds (the
 * delete's own condition): no reply stays quoted once the post and its comments are gone.
 */
export function withdrawPostReplyNotices(db: Database, postId: string, when: SQL) {
  return withdrawStatements(
    db,
    sql`(SELECT n.id FROM blog_comments bc JOIN notifications n ON ${replyNoticeOf(sql`bc.id`)}
         WHERE bc.post_id = ${postId} AND bc.parent_id IS NOT NULL AND ${when})`,
  );
}

export async function deleteComment(env: Bindings, user: AuthenticatedUser, id: string): Promise<void> {
  const row = await commentFor(env, user, id);
  const db = database(env);
  // Someone else's comment is deleted by a moderator only while their account is active, checked
  // inside the batch. (One's own goes whether or not one was deactivated meanwhile: harmless.)
  const own = row.userId === user.id;
  const allowed = own ? undefined : accountActive(sql`${user.id}`);
  const [withdrawn, , , deleted] = await runBatch(db, [
    ...withdrawReplyNotice(db, id, allowed),
    db.delete(c).where(and(eq(c.id, id), allowed)),
    recount(env, row.postId),
    purgeBlogReadsStatement(),
  ]);
  if (!own && changes(deleted) === 0) await refuseIfDeactivated(env, user.id);
  await announceWithdrawals(env, tableRows(notifications, withdrawn));
}

export async function moderateComment(env: Bindings, moderator: AuthenticatedUser, id: string, status: "approved" | "rejected") {
  if (!isModerator(moderator)) throw new AppError("FORBIDDEN", 403, "Only editors and moderators can moderate comments.");
  const row = await commentRow(env, id);
  if (!row) throw noSuchComment();
  const db = database(env);
  // Only while the moderator's account is active, checked in each write of the batch.
  const active = accountActive(sql`${moderator.id}`);
  const withdraw = status === "rejected" ? withdrawReplyNotice(db, id, active) : [];
  const results = await runBatch(db, [
    ...withdraw,
    db
      .update(c)
      .set({ status, moderatedBy: moderator.id, moderatedAt: new Date().toISOString(), updatedAt: new Date().toISOString() })
      .where(and(eq(c.id, id), active)),
    db
      .update(blogCommentReports)
      .set({ status: status === "rejected" ? "resolved" : "dismissed" })
      .where(and(eq(blogCommentReports.commentId, id), eq(blogCommentReports.status, "open"), active)),
    recount(env, row.postId),
    // In the batch (as for a new comment): the moderation never commits without its purge.
    purgeBlogReadsStatement(),
  ]);
  if (changes(results[withdraw.length]) === 0) {
    await refuseIfDeactivated(env, moderator.id);
    throw noSuchComment(); // deleted while this was on its way
  }
  const withdrawn = results[0];
  if (status === "rejected") await announceWithdrawals(env, tableRows(notifications, withdrawn));
  const after = await commentRow(env, id);
  if (!after) throw noSuchComment(); // deleted since the moderation landed
  // Told only while its post is published: one taken off the blog shows no comments, and its title
  // and slug may by now be a draft's, which only its writers may see.
  const post =
    status === "approved" && row.status === "pending"
      ? await database(env)
          .select({ slug: blogPosts.slug, title: blogPosts.title })
          .from(blogPosts)
          .where(and(eq(blogPosts.id, row.postId), eq(blogPosts.status, "published")))
          .get()
      : undefined;
  if (post) {
    await createNotification(env, {
      userId: row.userId,
      type: "blog_comment_approved",
      title: `Your comment on "${post.title}" is published`,
      body: truncateText(visibleText(row.body), 140),
      data: { post_id: row.postId, post_slug: post.slug, comment_id: row.id },
      dedupeKey: `blog_comment_approved:${row.id}`,
    }).catch(() => false); // best effort: the moderation is done either way
    await tellParentAuthor(env, after, post.slug);
  }
  return commentBody(after);
}

export async function reportComment(env: Bindings, user: AuthenticatedUser, id: string, reason: string) {
  const row = await commentRow(env, id);
  // Only what the reporter can see can be reported: approved comments (and never their own).
  if (row?.status !== "approved") throw noSuchComment();
  if (row.userId === user.id)
    throw new AppError("VALIDATION_ERROR", 400, "You cannot report your own comment.", {
      comment: ["You cannot report your own comment."],
    });
  let written: unknown;
  try {
    written = await database(env)
      .insert(blogCommentReports)
      .select(rowIf(blogCommentReports, { id: uuidv7(), commentId: id, reporterId: user.id, reason }, accountActive(sql`${user.id}`)));
  } catch (err) {
    if (isUniqueViolation(err)) throw new AppError("ALREADY_REPORTED", 409, "You have already reported this comment.");
    throw err;
  }
  if (changes(written) === 0) await refuseIfDeactivated(env, user.id); // deactivated (or deleted) meanwhile
  return { reported: true as const };
}

/** The moderation queue: pending comments, or comments with open reports (with their report count), oldest first. */
export async function moderationQueue(env: Bindings, moderator: AuthenticatedUser, status: "pending" | "reported", page: PageRequest) {
  if (!isModerator(moderator)) throw new AppError("FORBIDDEN", 403, "Only editors and moderators can moderate comments.");
  const db = database(env);
  const reportsOpen = sql<number>`(SELECT count(*) FROM ${blogCommentReports} r WHERE r.comment_id = ${c.id} AND r.status = 'open')`;
  const where = status === "pending" ? eq(c.status, "pending") : sql`${reportsOpen} > 0`;
  const [counted, rows] = await db.batch([
    db.select({ n: count() }).from(c).where(where),
    database(env)
      .select({ ...commentColumns, openReports: reportsOpen })
      .from(c)
      .innerJoin(users, eq(users.id, c.userId))
      .where(where)
      .orderBy(status === "pending" ? asc(c.createdAt) : desc(reportsOpen), asc(c.id))
      .limit(page.pageSize)
      .offset((page.page - 1) * page.pageSize),
  ]);
  return {
    count: counted[0]?.n ?? 0,
    rows: (rows as (CommentRow & { openReports: number })[]).map((r) => ({ ...commentBody(r), open_reports: r.openReports })),
  };
}
