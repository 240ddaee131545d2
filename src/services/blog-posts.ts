/**
 * Blog posts for writers and editors (issue 9 items 1–3, API.md §5 Blog): create, edit, delete,
 * the workflow draft → review → published → unpublished, scheduling, and revisions.
 *
 * Rules, including the ones the spec leaves open:
 * - Writers are the roles author, editor and admin; editors are editor and admin.
 * - Readers (anyone) see published posts only. A post that is not published is visible to its
 *   author and to editors; to anyone else it does not exist (404, nothing leaked).
 * - Authors edit and delete only their own posts, and only while they are not published (an
 *   author's own published post: 403; someone else's unpublished post: 404). Editors edit any
 *   post; an edit of a published post is live at once (and purges the public reads).
 * - Only editors set `is_featured` (an author changing it: 403), publish, unpublish and schedule.
 * - Every save (create, edit, restore) writes the next revision in the same D1 batch as the
 *   post. The update is conditional on the revision the save read, and blog_revisions is unique
 *   on (post, number), so of two concurrent saves one wins and the other is a 409 CONFLICT with
 *   nothing written. A snapshot holds the editable fields with the blocks as stored, so a
 *   restore needs no re-validation (its images are kept alive by the snapshot: photos.ts).
 * - Workflow moves are single conditional UPDATEs (`WHERE status IN (…)`): a move from the wrong
 *   state is a 409 INVALID_STATE. Publishing sets first_published_at once, last_published_at
 *   every time, and clears a schedule. A schedule keeps the status; the cron job
 *   (`publishScheduledPosts`) publishes due posts with one UPDATE … RETURNING, so overlapping
 *   runs publish each post exactly once.
 * - Slugs: derived from the title when not given (a taken derived slug gets a short suffix); a
 *   given slug that is taken is a 409 CONFLICT.
 * - Every change readers could see purges the public reads (blog-cache.ts) in the same D1 batch.
 * - An author's save or delete is conditional on the post not being published in the write
 *   itself, not only in the check before it: an editor publishing in between wins, and the
 *   author gets the 403 they would have got a moment later.
 */
import { and, asc, desc, eq, inArray, isNotNull, ne, type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn, SQLiteUpdateSetSource } from "drizzle-orm/sqlite-core";
import { changes, type Database, database, runBatch, type Statement, tableRows } from "../db/client";
import { countedPage, type Page, type PageRequest } from "../db/pagination";
import {
  blogCategories,
  blogPostCategories,
  blogPosts,
  blogPostTags,
  blogRevisions,
  blogSeries,
  notifications,
  type StoredBlock,
  users,
} from "../db/schema";
import type { AuthenticatedUser, Bindings } from "../env";
import { AppError, errorMatches, isUniqueViolation, orNotFound } from "../lib/errors";
import { isUuid, uuidv7 } from "../lib/ids";
import { sanitisePostBody } from "../lib/sanitise";
import { mediaUrl, postExcerpt, postSearchText, prepareBlocks, readingTime, renderBlock, type StoredImageValue } from "./blog-blocks";
import { purgeBlogReadsStatement } from "./blog-cache";
import { withdrawPostReplyNotices } from "./blog-comments";
import { categoriesBySlug, checkImage, checkSlug, normaliseTags, seriesBySlug, slugify, slugTaken } from "./blog-taxonomy";
import { announceWithdrawals } from "./notifications";
import { releasePhotoRefs } from "./photos";
import type { Role } from "./users";

export const WRITER_ROLES: Role[] = ["author", "editor", "admin"];
export const EDITOR_ROLES: Role[] = ["editor", "admin"];
export const POST_STATUSES = ["draft", "review", "published", "unpublished"] as const;
export type PostStatus = (typeof POST_STATUSES)[number];
/** `?status=` of the list: the four statuses, and `scheduled` (a publish time is set). */
export const LIST_STATUSES = [...POST_STATUSES, "scheduled"] as const;
export type ListStatus = (typeof LIST_STATUSES)[number];
export const INTRODUCTION_MAX = 10_000;

export const isEditor = (user: AuthenticatedUser | undefined) => !!user && EDITOR_ROLES.includes(user.role);
export const isWriter = (user: AuthenticatedUser | undefined) => !!user && WRITER_ROLES.includes(user.role);

// ---------------------------------------------------------------------------------------------
// Reading

const postColumns = {
  id: blogPosts.id,
  slug: blogPosts.slug,
  title: blogPosts.title,
  introduction: blogPosts.introduction,
  status: blogPosts.status,
  authorId: blogPosts.authorId,
  featuredImage: blogPosts.featuredImage,
  featuredImageAlt: blogPosts.featuredImageAlt,
  seriesId: blogPosts.seriesId,
  seriesOrder: blogPosts.seriesOrder,
  isFeatured: blogPosts.isFeatured,
  readingTime: blogPosts.readingTime,
  excerpt: blogPosts.excerpt,
  scheduledAt: blogPosts.scheduledAt,
  firstPublishedAt: blogPosts.firstPublishedAt,
  lastPublishedAt: blogPosts.lastPublishedAt,
  viewCount: blogPosts.viewCount,
  commentCount: blogPosts.commentCount,
  revision: blogPosts.revision,
  createdAt: blogPosts.createdAt,
  updatedAt: blogPosts.updatedAt,
  authorUsername: users.username,
  authorFirstName: users.firstName,
  authorLastName: users.lastName,
  // Aliased: D1 batches return rows keyed by column name, and the series' `slug` and `title`
  // would overwrite the post's own.
  seriesSlug: sql<string | null>`${blogSeries.slug}`.as("series_slug"),
  seriesTitle: sql<string | null>`${blogSeries.title}`.as("series_title"),
};

function selectPosts(env: Bindings) {
  return database(env)
    .select(postColumns)
    .from(blogPosts)
    .leftJoin(users, eq(users.id, blogPosts.authorId))
    .leftJoin(blogSeries, eq(blogSeries.id, blogPosts.seriesId))
    .$dynamic();
}

/** Posts with their blocks, as `detailBody` takes them (a statement a batch can hold). */
export function selectPostDetails(env: Bindings) {
  return database(env)
    .select({ ...postColumns, contentBlocks: blogPosts.contentBlocks })
    .from(blogPosts)
    .leftJoin(users, eq(users.id, blogPosts.authorId))
    .leftJoin(blogSeries, eq(blogSeries.id, blogPosts.seriesId))
    .$dynamic();
}

type PostSummaryRow = Awaited<ReturnType<ReturnType<typeof selectPosts>["get"]>> & {};
export type PostRow = PostSummaryRow & { contentBlocks: StoredBlock[] };

type Taxonomy = { cats: Map<string, { id: string; name: string; slug: string }[]>; tags: Map<string, string[]> };

/**
 * The two reads of the categories and tags of the posts `postIn` picks (given the post id column
 * of each table), to run in a batch; `groupTaxonomy` turns their rows into the maps bodies take.
 */
export function selectTaxonomy(db: Database, postIn: (postId: SQLiteColumn) => SQL) {
  return [
    db
      .select({ postId: blogPostCategories.postId, id: blogCategories.id, name: blogCategories.name, slug: blogCategories.slug })
      .from(blogPostCategories)
      .innerJoin(blogCategories, eq(blogCategories.id, blogPostCategories.categoryId))
      .where(postIn(blogPostCategories.postId))
      .orderBy(asc(blogCategories.name)),
    db.select().from(blogPostTags).where(postIn(blogPostTags.postId)).orderBy(asc(blogPostTags.tag)),
  ] as const;
}

export function groupTaxonomy(
  catRows: { postId: string; id: string; name: string; slug: string }[],
  tagRows: { postId: string; tag: string }[],
): Taxonomy {
  const cats: Taxonomy["cats"] = new Map();
  const tags: Taxonomy["tags"] = new Map();
  for (const r of catRows) (cats.get(r.postId) ?? cats.set(r.postId, []).get(r.postId)!).push({ id: r.id, name: r.name, slug: r.slug });
  for (const r of tagRows) (tags.get(r.postId) ?? tags.set(r.postId, []).get(r.postId)!).push(r.tag);
  return { cats, tags };
}

/** A post's categories and tags, for many posts in one round trip. */
export async function taxonomyOf(env: Bindings, ids: string[]): Promise<Taxonomy> {
  const db = database(env);
  if (ids.length === 0) return { cats: new Map(), tags: new Map() };
  const [catRows, tagRows] = await db.batch(selectTaxonomy(db, (postId) => inArray(postId, ids)));
  return groupTaxonomy(catRows, tagRows);
}

function author(row: PostSummaryRow) {
  if (!row.authorId || !row.authorUsername) return null;
  const display = `${row.authorFirstName ?? ""} ${row.authorLastName ?? ""}`.trim() || row.authorUsername;
  return { id: row.authorId, username: row.authorUsername, display_name: display };
}

function summaryBody(row: PostSummaryRow, categories: { id: string; name: string; slug: string }[], tags: string[]) {
  return {
    id: row.id,
    slug: row.slug,
    title: row.title,
    status: row.status,
    author: author(row),
    excerpt: row.excerpt,
    reading_time: row.readingTime,
    categories,
    tags,
    series: row.seriesId && row.seriesSlug ? { id: row.seriesId, slug: row.seriesSlug, title: row.seriesTitle ?? "" } : null,
    series_order: row.seriesOrder,
    featured_image: row.featuredImage ? { id: row.featuredImage, url: mediaUrl(row.featuredImage), alt: row.featuredImageAlt } : null,
    is_featured: row.isFeatured,
    publish_date: row.firstPublishedAt ? row.firstPublishedAt.slice(0, 10) : null,
    scheduled_at: row.scheduledAt,
    first_published_at: row.firstPublishedAt,
    last_published_at: row.lastPublishedAt,
    revision: row.revision,
    view_count: row.viewCount,
    comment_count: row.commentCount,
    created_at: row.createdAt,
    updated_at: row.updatedAt,
  };
}

/** A stored block in the shape PATCH takes back (images as references, spotlights as species ids). */
export function editableBlock(block: StoredBlock): { id: string; type: string; value: unknown } {
  const v = block.value as Record<string, unknown>;
  if (block.type === "image") {
    const img = v as unknown as StoredImageValue;
    return { id: block.id, type: block.type, value: { image: img.image, alt: img.alt, caption: img.caption } };
  }
  if (block.type === "plant_spotlight")
    return {
      id: block.id,
      type: block.type,
      value: { species_id: v.species_id, description: v.description, care_difficulty: v.care_difficulty },
    };
  return { id: block.id, type: block.type, value: block.value };
}

export async function postSummaries(env: Bindings, rows: PostSummaryRow[]) {
  const { cats, tags } = await taxonomyOf(
    env,
    rows.map((r) => r.id),
  );
  return rows.map((r) => summaryBody(r, cats.get(r.id) ?? [], tags.get(r.id) ?? []));
}

/** A post as the editor's routes answer it (`GET blog/posts/{id}/`), its taxonomy read already. */
export function detailBody(row: PostRow, { cats, tags }: Taxonomy) {
  return {
    ...summaryBody(row, cats.get(row.id) ?? [], tags.get(row.id) ?? []),
    introduction: row.introduction,
    content_blocks: row.contentBlocks.map(editableBlock),
    rendered_blocks: row.contentBlocks.map(renderBlock),
  };
}

export async function postDetail(env: Bindings, row: PostRow) {
  return detailBody(row, await taxonomyOf(env, [row.id]));
}

async function loadPost(env: Bindings, idOrSlug: string): Promise<PostRow | undefined> {
  const where = isUuid(idOrSlug) ? eq(blogPosts.id, idOrSlug) : eq(blogPosts.slug, idOrSlug);
  return await selectPostDetails(env).where(where).get();
}

const notFound = () => new AppError("NOT_FOUND", 404, "Post not found.");

/** May this caller see the post? Published: everyone. Otherwise its author (a writer) and editors. */
function canSee(user: AuthenticatedUser | undefined, post: PostSummaryRow): boolean {
  return post.status === "published" || isEditor(user) || (isWriter(user) && post.authorId === user!.id);
}

/** A post by id or slug as this caller may see it; 404 otherwise. */
export async function getPostFor(env: Bindings, user: AuthenticatedUser | undefined, idOrSlug: string): Promise<PostRow> {
  const post = await loadPost(env, idOrSlug);
  if (!post || !canSee(user, post)) throw notFound();
  return post;
}

/**
 * A post the caller may change: editors any; authors their own while not published. Someone
 * else's post the caller cannot see is a 404; one they can see (published) is a 403.
 */
async function postToChange(env: Bindings, user: AuthenticatedUser, id: string, action: string): Promise<PostRow> {
  const post = await getPostFor(env, user, id);
  if (isEditor(user)) return post;
  if (post.authorId !== user.id) throw new AppError("FORBIDDEN", 403, `You can only ${action} your own posts.`);
  if (post.status === "published")
    throw new AppError("FORBIDDEN", 403, `A published post can only be changed by an editor; ask one to ${action} it or to unpublish it.`);
  return post;
}

/**
 * A post whose history the caller may read: its author or an editor. Revisions hold what was
 * written before publication, and what was taken out before it went live; another writer sees
 * only the published post. Someone else's post the caller cannot see is a 404; one they can see
 * (published) is a 403.
 */
async function postHistoryFor(env: Bindings, user: AuthenticatedUser, id: string): Promise<PostRow> {
  const post = await getPostFor(env, user, id);
  if (!isEditor(user) && post.authorId !== user.id) {
    throw new AppError("FORBIDDEN", 403, "Only the post's author and editors can read its revisions.");
  }
  return post;
}

export interface ListFilters {
  status?: ListStatus;
  category?: string;
  tag?: string;
  series?: string;
  author?: string;
}

/**
 * Posts for the list. Without `status` (or with `published`) anyone gets published posts,
 * newest first. Other statuses need a writer (401 anonymous, 403 others): authors see their own
 * posts only, editors all; those lists are ordered by last change.
 */
export async function listPosts(
  env: Bindings,
  user: AuthenticatedUser | undefined,
  filters: ListFilters,
  page: PageRequest,
): Promise<Page<PostSummaryRow>> {
  const status = filters.status ?? "published";
  const conditions: (SQL | undefined)[] = [];
  if (status !== "published") {
    if (!user) throw new AppError("AUTHENTICATION_REQUIRED", 401, "Sign in to list posts that are not published.");
    if (!isWriter(user)) throw new AppError("FORBIDDEN", 403, "Only authors and editors can list posts that are not published.");
    if (!isEditor(user)) conditions.push(eq(blogPosts.authorId, user.id));
  }
  conditions.push(status === "scheduled" ? isNotNull(blogPosts.scheduledAt) : eq(blogPosts.status, status));
  if (filters.category !== undefined)
    conditions.push(
      sql`${blogPosts.id} IN (SELECT pc.post_id FROM blog_post_categories pc JOIN blog_categories c ON c.id = pc.category_id WHERE c.slug = ${filters.category})`,
    );
  if (filters.tag !== undefined)
    conditions.push(sql`${blogPosts.id} IN (SELECT t.post_id FROM blog_post_tags t WHERE t.tag = ${filters.tag.trim().toLowerCase()})`);
  if (filters.series !== undefined)
    conditions.push(sql`${blogPosts.seriesId} = (SELECT s.id FROM blog_series s WHERE s.slug = ${filters.series})`);
  if (filters.author !== undefined)
    conditions.push(sql`${blogPosts.authorId} = (SELECT u.id FROM users u WHERE u.username = ${filters.author})`);
  const where = and(...conditions);
  const order =
    status === "published"
      ? [desc(blogPosts.firstPublishedAt), desc(blogPosts.id)]
      : status === "scheduled"
        ? [asc(blogPosts.scheduledAt), asc(blogPosts.id)]
        : [desc(blogPosts.updatedAt), desc(blogPosts.id)];
  return countedPage(
    database(env),
    selectPosts(env)
      .where(where)
      .orderBy(...order),
    { from: blogPosts, where },
    page,
  );
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A post's editable fields as a client sends them (all optional on PATCH). */
export interface PostInput {
  title?: string;
  slug?: string;
  introduction?: string;
  content_blocks?: unknown[];
  categories?: string[];
  tags?: string[];
  series?: string | null;
  series_order?: number | null;
  featured_image?: string | null;
  featured_image_alt?: string;
  is_featured?: boolean;
}

/** The editable fields as stored, and what a revision's snapshot holds. */
export interface Snapshot {
  title: string;
  slug: string;
  introduction: string;
  content_blocks: StoredBlock[];
  category_ids: string[];
  tags: string[];
  series_id: string | null;
  series_order: number | null;
  featured_image: string | null;
  featured_image_alt: string;
  is_featured: boolean;
}

async function currentSnapshot(env: Bindings, post: PostRow): Promise<Snapshot> {
  const { cats, tags } = await taxonomyOf(env, [post.id]);
  return {
    title: post.title,
    slug: post.slug,
    introduction: post.introduction,
    content_blocks: post.contentBlocks,
    category_ids: (cats.get(post.id) ?? []).map((c) => c.id).sort(),
    tags: tags.get(post.id) ?? [],
    series_id: post.seriesId,
    series_order: post.seriesOrder,
    featured_image: post.featuredImage,
    featured_image_alt: post.featuredImageAlt,
    is_featured: post.isFeatured,
  };
}

/** Validates `input` over `base` (the post's current fields; defaults for a new post) into the next snapshot. */
async function nextSnapshot(env: Bindings, user: AuthenticatedUser, base: Snapshot, input: PostInput): Promise<Snapshot> {
  if (input.is_featured !== undefined && input.is_featured !== base.is_featured && !isEditor(user))
    throw new AppError("FORBIDDEN", 403, "Only editors can feature a post.");
  const next: Snapshot = { ...base };
  if (input.title !== undefined) next.title = input.title;
  if (input.slug !== undefined) next.slug = checkSlug(input.slug);
  if (input.introduction !== undefined) next.introduction = sanitisePostBody(input.introduction);
  if (input.tags !== undefined) next.tags = normaliseTags(input.tags);
  if (input.categories !== undefined) next.category_ids = (await categoriesBySlug(env, input.categories)).map((c) => c.id).sort();
  if (input.series !== undefined) next.series_id = input.series === null ? null : (await seriesBySlug(env, input.series)).id;
  if (input.series_order !== undefined) next.series_order = input.series_order;
  if (next.series_id === null) next.series_order = null;
  if (input.featured_image !== undefined) next.featured_image = input.featured_image;
  if (input.featured_image_alt !== undefined) next.featured_image_alt = input.featured_image_alt;
  if (next.featured_image === null) next.featured_image_alt = "";
  else if (input.featured_image !== undefined || input.featured_image_alt !== undefined)
    await checkImage(env, next.featured_image, next.featured_image_alt, "featured_image");
  if (input.is_featured !== undefined) next.is_featured = input.is_featured;
  if (input.content_blocks !== undefined) next.content_blocks = await prepareBlocks(env, input.content_blocks);
  return next;
}

/** Every photo a snapshot refers to. */
function photosIn(s: Pick<Snapshot, "featured_image" | "content_blocks">): string[] {
  const refs = s.content_blocks.filter((b) => b.type === "image").map((b) => (b.value as StoredImageValue).image);
  return s.featured_image ? [s.featured_image, ...refs] : refs;
}

/** The post columns a snapshot sets, with the values computed from it. */
function postValues(s: Snapshot) {
  const searchText = postSearchText(s.introduction, s.content_blocks);
  return {
    title: s.title,
    slug: s.slug,
    introduction: s.introduction,
    contentBlocks: s.content_blocks,
    seriesId: s.series_id,
    seriesOrder: s.series_order,
    featuredImage: s.featured_image,
    featuredImageAlt: s.featured_image_alt,
    isFeatured: s.is_featured,
    excerpt: postExcerpt(s.introduction, s.content_blocks),
    readingTime: readingTime(searchText),
    searchText,
  };
}

/** Statements that replace a post's categories and tags with the snapshot's. */
function taxonomyStatements(env: Bindings, postId: string, s: Snapshot): Statement[] {
  const db = database(env);
  const out: Statement[] = [db.delete(blogPostCategories).where(eq(blogPostCategories.postId, postId))];
  if (s.category_ids.length > 0)
    out.push(db.insert(blogPostCategories).values(s.category_ids.map((categoryId) => ({ postId, categoryId }))));
  out.push(db.delete(blogPostTags).where(eq(blogPostTags.postId, postId)));
  if (s.tags.length > 0) out.push(db.insert(blogPostTags).values(s.tags.map((tag) => ({ postId, tag }))));
  return out;
}

/** A failed save's UNIQUE violation: the slug is taken, or another save took this revision number. */
function saveConflict(err: unknown): AppError | null {
  if (!isUniqueViolation(err)) return null;
  return errorMatches(err, /UNIQUE constraint failed: blog_revisions/) ? savedMeanwhile() : slugTaken("post");
}

async function freeDerivedSlug(env: Bindings, title: string): Promise<string> {
  const base = slugify(title) || "post";
  const taken = await database(env).select({ id: blogPosts.id }).from(blogPosts).where(eq(blogPosts.slug, base)).get();
  return taken || isUuid(base) ? `${base.slice(0, 72)}-${crypto.randomUUID().slice(0, 6)}` : base;
}

const EMPTY: Snapshot = {
  title: "",
  slug: "",
  introduction: "",
  content_blocks: [],
  category_ids: [],
  tags: [],
  series_id: null,
  series_order: null,
  featured_image: null,
  featured_image_alt: "",
  is_featured: false,
};

/** A new draft by `user`, with revision 1, in one batch. */
export async function createPost(env: Bindings, user: AuthenticatedUser, input: PostInput & { title: string }): Promise<PostRow> {
  const snapshot = await nextSnapshot(env, user, { ...EMPTY, slug: input.slug ?? "" }, input);
  if (input.slug === undefined) snapshot.slug = await freeDerivedSlug(env, snapshot.title);
  const id = uuidv7();
  const now = new Date().toISOString();
  const db = database(env);
  try {
    await runBatch(db, [
      db
        .insert(blogPosts)
        .values({ id, ...postValues(snapshot), status: "draft", authorId: user.id, revision: 1, createdAt: now, updatedAt: now }),
      ...taxonomyStatements(env, id, snapshot),
      db
        .insert(blogRevisions)
        .values({ id: uuidv7(), postId: id, number: 1, authorId: user.id, snapshot: { ...snapshot }, createdAt: now }),
    ]);
  } catch (err) {
    throw saveConflict(err) ?? err;
  }
  // Read back: an editor may have deleted the new draft already (a 404, as for any missing post).
  return orNotFound(await loadPost(env, id), "Post");
}

/**
 * Writes `next` as the post's next revision, conditional on the revision `post` was read at and,
 * for an author, on the post still not being published: an editor may publish between the
 * author's check and this write, and what goes live must be what the editor saw. The revision
 * row is written only if the post's update was (its number is NULL otherwise, which the NOT NULL
 * constraint refuses), so a refused save writes nothing at all; the purge is in the same batch.
 */
async function save(env: Bindings, user: AuthenticatedUser, post: PostRow, before: Snapshot, next: Snapshot): Promise<PostRow> {
  const number = post.revision + 1;
  const now = new Date().toISOString();
  const db = database(env);
  const editor = isEditor(user);
  let updated: unknown;
  try {
    [updated] = await runBatch(db, [
      db
        .update(blogPosts)
        // An editor scheduled what they read: a writer's change takes the post off the schedule,
        // so nothing an editor has not seen goes live on its own.
        .set({ ...postValues(next), revision: number, updatedAt: now, ...(editor ? {} : { scheduledAt: null }) })
        .where(
          and(eq(blogPosts.id, post.id), eq(blogPosts.revision, post.revision), editor ? undefined : ne(blogPosts.status, "published")),
        ),
      purgeBlogReadsStatement(sql`changes() > 0 AND (SELECT status FROM ${blogPosts} WHERE id = ${post.id}) = 'published'`),
      db.insert(blogRevisions).values({
        id: uuidv7(),
        postId: post.id,
        number: sql`CASE WHEN (SELECT revision FROM ${blogPosts} WHERE id = ${post.id}) = ${number} THEN ${number} END`,
        authorId: user.id,
        snapshot: { ...next },
        createdAt: now,
      }),
      ...taxonomyStatements(env, post.id, next),
    ]);
  } catch (err) {
    // The revision row comes before the taxonomy rows, so a save that did not apply fails here first.
    if (errorMatches(err, /NOT NULL constraint failed: blog_revisions\.number/)) {
      await postToChange(env, user, post.id, "edit"); // published or deleted meanwhile: its 403 or 404
      throw savedMeanwhile();
    }
    throw saveConflict(err) ?? err;
  }
  if (changes(updated) === 0) throw savedMeanwhile();
  // Deleted since the save landed: the photos it dropped still go, and the answer is the 404 of a missing post.
  const after = await loadPost(env, post.id);
  const kept = new Set(photosIn(next));
  await releasePhotoRefs(
    env,
    photosIn(before).filter((ref) => !kept.has(ref)),
    { fromBlog: true },
  );
  return orNotFound(after, "Post");
}

const savedMeanwhile = () => new AppError("CONFLICT", 409, "The post was saved by someone else meanwhile; reload it and try again.");

export async function updatePost(env: Bindings, user: AuthenticatedUser, id: string, input: PostInput): Promise<PostRow> {
  const post = await postToChange(env, user, id, "edit");
  const before = await currentSnapshot(env, post);
  return save(env, user, post, before, await nextSnapshot(env, user, before, input));
}

export async function deletePost(env: Bindings, user: AuthenticatedUser, id: string): Promise<void> {
  const post = await postToChange(env, user, id, "delete");
  const db = database(env);
  // The revisions go with it (cascade), so the photos only they kept can be released too.
  const revisions = await db.select({ snapshot: blogRevisions.snapshot }).from(blogRevisions).where(eq(blogRevisions.postId, post.id));
  // An author's delete holds only while the post is not published (an editor may publish it
  // meanwhile); an editor's delete of a published post purges in the same batch.
  const editor = isEditor(user);
  // Its comments go with it: the reply notifications quoting them are withdrawn first, on the
  // delete's own condition.
  const [withdrawn, , , , deleted] = await runBatch(db, [
    ...withdrawPostReplyNotices(db, post.id, editor ? sql`1` : sql`(SELECT status FROM ${blogPosts} WHERE id = ${post.id}) <> 'published'`),
    purgeBlogReadsStatement(editor ? sql`(SELECT status FROM ${blogPosts} WHERE id = ${post.id}) = 'published'` : sql`0`),
    db.delete(blogPosts).where(and(eq(blogPosts.id, post.id), editor ? undefined : ne(blogPosts.status, "published"))),
  ]);
  if (changes(deleted) === 0) {
    await postToChange(env, user, post.id, "delete"); // published or deleted meanwhile: its 403 or 404
    throw savedMeanwhile();
  }
  await announceWithdrawals(env, tableRows(notifications, withdrawn));
  const refs = new Set([...photosIn({ featured_image: post.featuredImage, content_blocks: post.contentBlocks })]);
  for (const r of revisions) for (const ref of photosIn(r.snapshot as unknown as Snapshot)) refs.add(ref);
  await releasePhotoRefs(env, [...refs], { fromBlog: true });
}

// ---------------------------------------------------------------------------------------------
// Workflow

/**
 * Moves a post from one of `from` to `to` with one conditional UPDATE; 409 INVALID_STATE when it
 * is in another state (checked again by the UPDATE itself, so a concurrent move cannot slip in).
 */
async function move(
  env: Bindings,
  post: PostRow,
  from: readonly PostStatus[],
  set: SQLiteUpdateSetSource<typeof blogPosts>,
  what: string,
  /** Whether readers see the move (publish, unpublish): the purge joins its batch. */
  visible = false,
  /** The revision the editor reviewed: the move holds only while the post is still at it. */
  reviewed?: number,
): Promise<PostRow> {
  const stateError = (status: PostStatus) =>
    new AppError("INVALID_STATE", 409, `Cannot ${what} a post that is ${status === "review" ? "in review" : status}.`, {
      status: [`Must be ${from.join(" or ")}.`],
    });
  if (!from.includes(post.status)) throw stateError(post.status);
  const changedSince = (current: number) =>
    new AppError("CONFLICT", 409, `The post has been saved since revision ${reviewed}, the one you reviewed; review it again.`, {
      revision: [`The post is at revision ${current}.`],
    });
  if (reviewed !== undefined && post.revision !== reviewed) throw changedSince(post.revision);
  const db = database(env);
  const [moved] = await runBatch(db, [
    db
      .update(blogPosts)
      .set({ ...set, updatedAt: new Date().toISOString() })
      .where(
        and(
          eq(blogPosts.id, post.id),
          inArray(blogPosts.status, [...from]),
          reviewed === undefined ? undefined : eq(blogPosts.revision, reviewed),
        ),
      ),
    ...(visible ? [purgeBlogReadsStatement(sql`changes() > 0`)] : []),
  ]);
  if (changes(moved) === 0) {
    // Moved or saved by someone else since it was read: the answer names the post as it is now.
    const current = await loadPost(env, post.id);
    if (!current) throw notFound();
    if (reviewed !== undefined && current.revision !== reviewed) throw changedSince(current.revision);
    throw stateError(current.status);
  }
  return orNotFound(await loadPost(env, post.id), "Post"); // deleted since the move landed
}

/** Draft or unpublished → review: the post's author (a writer) or an editor. */
export async function submitPost(env: Bindings, user: AuthenticatedUser, id: string): Promise<PostRow> {
  const post = await getPostFor(env, user, id);
  if (!isEditor(user) && post.authorId !== user.id) throw new AppError("FORBIDDEN", 403, "You can only submit your own posts.");
  return move(env, post, ["draft", "unpublished"], { status: "review" }, "submit");
}

/** → published (editors): first_published_at once, last_published_at now, any schedule cleared. */
export async function publishPost(env: Bindings, user: AuthenticatedUser, id: string, reviewed?: number): Promise<PostRow> {
  const post = await getPostFor(env, user, id);
  const now = new Date().toISOString();
  return move(
    env,
    post,
    ["draft", "review", "unpublished"],
    {
      status: "published",
      firstPublishedAt: sql`coalesce(${blogPosts.firstPublishedAt}, ${now})`,
      lastPublishedAt: now,
      scheduledAt: null,
    },
    "publish",
    true,
    reviewed,
  );
}

/** Published → unpublished (editors). */
export async function unpublishPost(env: Bindings, user: AuthenticatedUser, id: string): Promise<PostRow> {
  const post = await getPostFor(env, user, id);
  return move(env, post, ["published"], { status: "unpublished" }, "unpublish", true);
}

/** Sets (a future time) or clears (null) when the cron job publishes a post that is not published (editors). */
export async function schedulePost(
  env: Bindings,
  user: AuthenticatedUser,
  id: string,
  publishAt: string | null,
  reviewed?: number,
  now = Date.now(),
) {
  const post = await getPostFor(env, user, id);
  if (publishAt !== null && Date.parse(publishAt) <= now)
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { publish_at: ["Must be in the future."] });
  const at = publishAt === null ? null : new Date(publishAt).toISOString();
  const what = publishAt === null ? "unschedule" : "schedule";
  return move(env, post, ["draft", "review", "unpublished"], { scheduledAt: at }, what, false, reviewed);
}

/**
 * Publishes every post whose time has come, in one UPDATE … RETURNING: a row is returned only by
 * the statement that changed it, so overlapping cron runs publish each post exactly once.
 * Returns the posts it published (and purges their public reads).
 */
export async function publishScheduledPosts(env: Bindings, now = Date.now()): Promise<{ id: string; slug: string }[]> {
  const at = new Date(now).toISOString();
  const db = database(env);
  const [published] = await runBatch(db, [
    db
      .update(blogPosts)
      .set({
        status: "published",
        firstPublishedAt: sql`coalesce(${blogPosts.firstPublishedAt}, ${at})`,
        lastPublishedAt: at,
        scheduledAt: null,
        updatedAt: at,
      })
      .where(and(isNotNull(blogPosts.scheduledAt), sql`${blogPosts.scheduledAt} <= ${at}`))
      .returning({ id: blogPosts.id, slug: blogPosts.slug }),
    purgeBlogReadsStatement(sql`changes() > 0`),
  ]);
  return tableRows(blogPosts, published).map((p) => ({ id: p.id, slug: p.slug }));
}

// ---------------------------------------------------------------------------------------------
// Revisions

export async function listRevisions(env: Bindings, user: AuthenticatedUser, id: string, page: PageRequest) {
  const post = await postHistoryFor(env, user, id);
  const where = eq(blogRevisions.postId, post.id);
  const result = await countedPage(
    database(env),
    database(env)
      .select({
        number: blogRevisions.number,
        createdAt: blogRevisions.createdAt,
        authorId: blogRevisions.authorId,
        username: users.username,
      })
      .from(blogRevisions)
      .leftJoin(users, eq(users.id, blogRevisions.authorId))
      .where(where)
      .orderBy(desc(blogRevisions.number))
      .$dynamic(),
    { from: blogRevisions, where },
    page,
  );
  return { count: result.count, rows: result.rows.map((r) => revisionBody(r, post.revision)) };
}

/** A revision as `GET blog/posts/{id}/revisions/` lists it; `current` is its post's `revision`. */
export function revisionBody(r: { number: number; createdAt: string; authorId: string | null; username: string | null }, current: number) {
  return {
    number: r.number,
    created_at: r.createdAt,
    author: r.authorId && r.username ? { id: r.authorId, username: r.username } : null,
    is_current: r.number === current,
  };
}

async function revision(env: Bindings, postId: string, number: number): Promise<Snapshot> {
  const row = await database(env)
    .select({ snapshot: blogRevisions.snapshot })
    .from(blogRevisions)
    .where(and(eq(blogRevisions.postId, postId), eq(blogRevisions.number, number)))
    .get();
  if (!row) throw new AppError("NOT_FOUND", 404, `Revision ${number} not found.`);
  return row.snapshot as unknown as Snapshot;
}

const DIFF_FIELDS = [
  "title",
  "slug",
  "introduction",
  "category_ids",
  "tags",
  "series_id",
  "series_order",
  "featured_image",
  "featured_image_alt",
  "is_featured",
] as const;

/**
 * Two revisions compared: the scalar fields that differ, and blocks matched by id — added,
 * removed, changed (type or value), and moved (blocks in both whose order among the blocks in
 * both differs).
 */
export async function diffRevisions(env: Bindings, user: AuthenticatedUser, id: string, from: number, to: number) {
  const post = await postHistoryFor(env, user, id);
  const [a, b] = await Promise.all([revision(env, post.id, from), revision(env, post.id, to)]);
  const fields = DIFF_FIELDS.filter((f) => JSON.stringify(a[f] ?? null) !== JSON.stringify(b[f] ?? null)).map((f) => ({
    field: f,
    from: a[f] ?? null,
    to: b[f] ?? null,
  }));
  const before = new Map(a.content_blocks.map((blk, i) => [blk.id, { blk, i }]));
  const after = new Map(b.content_blocks.map((blk, i) => [blk.id, { blk, i }]));
  const commonBefore = a.content_blocks.filter((blk) => after.has(blk.id)).map((blk) => blk.id);
  const commonAfter = b.content_blocks.filter((blk) => before.has(blk.id)).map((blk) => blk.id);
  return {
    from,
    to,
    fields,
    blocks: {
      added: b.content_blocks.filter((blk) => !before.has(blk.id)).map((blk) => ({ ...editableBlock(blk), index: after.get(blk.id)!.i })),
      removed: a.content_blocks.filter((blk) => !after.has(blk.id)).map((blk) => ({ ...editableBlock(blk), index: before.get(blk.id)!.i })),
      changed: commonAfter
        .filter((bid) => {
          const x = before.get(bid)!.blk;
          const y = after.get(bid)!.blk;
          return x.type !== y.type || JSON.stringify(x.value) !== JSON.stringify(y.value);
        })
        .map((bid) => ({ id: bid, before: editableBlock(before.get(bid)!.blk), after: editableBlock(after.get(bid)!.blk) })),
      moved: commonAfter
        .map((bid, i) => ({ id: bid, from_index: before.get(bid)!.i, to_index: after.get(bid)!.i, rank: i }))
        .filter((m) => commonBefore.indexOf(m.id) !== m.rank)
        .map(({ rank: _rank, ...m }) => m),
    },
  };
}

/** Writes a new revision with a past revision's content (the same permissions as an edit). */
export async function restoreRevision(env: Bindings, user: AuthenticatedUser, id: string, number: number): Promise<PostRow> {
  const post = await postToChange(env, user, id, "edit");
  const old = await revision(env, post.id, number);
  const before = await currentSnapshot(env, post);
  if (old.is_featured !== before.is_featured && !isEditor(user)) throw new AppError("FORBIDDEN", 403, "Only editors can feature a post.");
  const db = database(env);
  // Categories or a series deleted since are left out.
  const cats = old.category_ids.length
    ? (await db.select({ id: blogCategories.id }).from(blogCategories).where(inArray(blogCategories.id, old.category_ids))).map((c) => c.id)
    : [];
  const series = old.series_id
    ? await db.select({ id: blogSeries.id }).from(blogSeries).where(eq(blogSeries.id, old.series_id)).get()
    : null;
  const next: Snapshot = { ...EMPTY, ...old, category_ids: cats.sort(), series_id: series?.id ?? null };
  if (!next.series_id) next.series_order = null;
  return save(env, user, post, before, next);
}
