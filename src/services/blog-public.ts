/**
 * The blog as readers see it (API.md §5a, the Wagtail API v2 shapes the web client reads): only
 * published posts, ever — every query here starts from `status = 'published'`.
 *
 * Decisions the spec leaves open:
 * - Images: the Cloudflare Images binding is not bound, so `/media/images/<ref>` serves the
 *   original from R2, and `featured_image` / `featured_image_thumb` give the size of the box the
 *   client should show it in (the original fitted inside 800×400 and 300×200, aspect kept, never
 *   enlarged) — honest numbers for layout without a resizing service.
 * - `excerpt` is the stored plain-text excerpt (≤ 30 words; ≤ 20 for related posts).
 * - Related posts: published, not the post itself, sharing a category first, then sharing a tag,
 *   newest first within each, at most 3.
 * - Views: the detail read (by id or slug) counts one view per request, exactly — an UPSERT on
 *   (post, UTC day) and the post's total in one batch — even when the answer comes from the cache.
 * - Popular: views in the last `days` days (0: all time), then total views, then newest.
 */
import { and, asc, count, desc, eq, exists, inArray, type SQL, sql } from "drizzle-orm";
import { database, runBatch } from "../db/client";
import { tablePage } from "../db/pagination";
import { ftsPhrase } from "../db/text-match";
import {
  blogCategories,
  blogPostCategories,
  blogPosts,
  blogPostTags,
  blogPostViews,
  blogSeries,
  type StoredBlock,
  users,
} from "../db/schema";
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import { mediaUrl, renderBlock, shorterExcerpt, storedImageSize } from "./blog-blocks";
import { taxonomyOf } from "./blog-posts";
import { displayName } from "./users";
import { DAY_MS } from "../lib/durations";

export const V2_ORDERS = ["-first_published_at", "first_published_at", "-view_count"] as const;
export type V2Order = (typeof V2_ORDERS)[number];

export interface V2Filters {
  search?: string;
  category_slug?: string;
  tag?: string;
  author_username?: string;
  series_slug?: string;
  featured?: boolean;
  slug?: string;
}

const p = blogPosts;
const published = eq(p.status, "published");

function filterConditions(f: V2Filters): SQL[] {
  const where: SQL[] = [published];
  if (f.slug !== undefined) where.push(eq(p.slug, f.slug));
  if (f.featured !== undefined) where.push(eq(p.isFeatured, f.featured));
  // Filters are IN-subqueries over their own indexes (blog_post_categories by category,
  // blog_post_tags by tag, posts by author or series), so a rare filter reads only its matches
  // instead of testing every published post.
  if (f.category_slug !== undefined) {
    where.push(
      sql`${p.id} IN (SELECT pc.post_id FROM ${blogPostCategories} pc WHERE pc.category_id = (SELECT c.id FROM ${blogCategories} c WHERE c.slug = ${f.category_slug}))`,
    );
  }
  if (f.tag !== undefined) where.push(sql`${p.id} IN (SELECT t.post_id FROM ${blogPostTags} t WHERE t.tag = ${f.tag.toLowerCase()})`);
  if (f.author_username !== undefined)
    where.push(sql`${p.authorId} IN (SELECT u.id FROM ${users} u WHERE lower(u.username) = lower(${f.author_username}))`);
  if (f.series_slug !== undefined) where.push(sql`${p.seriesId} = (SELECT s.id FROM ${blogSeries} s WHERE s.slug = ${f.series_slug})`);
  if (f.search !== undefined) {
    const q = f.search.toLowerCase().replace(/\s+/g, " ").trim();
    // FTS5 (trigram) holds published posts only; queries shorter than a trigram test the rows.
    where.push(
      [...q].length >= 3
        ? sql`${p}.rowid IN (SELECT rowid FROM blog_fts WHERE blog_fts MATCH ${ftsPhrase(q)})`
        : sql`(instr(lower(${p.title}), ${q}) > 0 OR instr(lower(${p.searchText}), ${q}) > 0)`,
    );
  }
  return where;
}

const ORDER: Record<V2Order, SQL[]> = {
  "-first_published_at": [desc(p.firstPublishedAt), desc(p.id)],
  first_published_at: [asc(p.firstPublishedAt), asc(p.id)],
  "-view_count": [desc(p.viewCount), desc(p.firstPublishedAt), desc(p.id)],
};

const listColumns = {
  id: p.id,
  slug: p.slug,
  title: p.title,
  excerpt: p.excerpt,
  featuredImage: p.featuredImage,
  featuredImageAlt: p.featuredImageAlt,
  readingTime: p.readingTime,
  isFeatured: p.isFeatured,
  viewCount: p.viewCount,
  commentCount: p.commentCount,
  firstPublishedAt: p.firstPublishedAt,
  authorId: p.authorId,
  authorUsername: users.username,
  authorFirstName: users.firstName,
  authorLastName: users.lastName,
  authorProfileVisibility: users.profileVisibility,
};
type ListRow = { [K in keyof typeof listColumns]: unknown } & {
  id: string;
  slug: string;
  title: string;
  excerpt: string;
  featuredImage: string | null;
  featuredImageAlt: string;
  readingTime: number;
  isFeatured: boolean;
  viewCount: number;
  commentCount: number;
  firstPublishedAt: string | null;
  authorId: string | null;
  authorUsername: string | null;
  authorFirstName: string | null;
  authorLastName: string | null;
};

/** The size of `box` that an image of `size` fills when fitted inside it (aspect kept, never enlarged). */
export function fitInBox(size: { width: number; height: number }, box: { width: number; height: number }) {
  const scale = Math.min(1, box.width / size.width, box.height / size.height);
  return { width: Math.max(1, Math.round(size.width * scale)), height: Math.max(1, Math.round(size.height * scale)) };
}

async function imageShapes(env: Bindings, ref: string | null, alt: string) {
  if (!ref) return { featured_image: null, featured_image_thumb: null };
  const size = (await storedImageSize(env, ref)) ?? { width: 800, height: 400 };
  const url = mediaUrl(ref);
  return {
    featured_image: { url, ...fitInBox(size, { width: 800, height: 400 }), alt },
    featured_image_thumb: { url, ...fitInBox(size, { width: 300, height: 200 }), alt },
  };
}

const postUrl = (slug: string) => `/blog/${slug}/`;

/** Wagtail's page type for a blog post, as its v2 API names it in `meta.type`. */
export const WAGTAIL_POST_TYPE = "blog.BlogPostPage";

async function listItems(env: Bindings, rows: ListRow[]) {
  const { cats: categories, tags } = await taxonomyOf(
    env,
    rows.map((r) => r.id),
  );
  const { PUBLIC_API_URL, FRONTEND_URL } = getConfig(env);
  return Promise.all(
    rows.map(async (r) => ({
      id: r.id,
      // Wagtail API v2's per-item meta: where the item's own detail and its page live.
      meta: {
        type: WAGTAIL_POST_TYPE,
        detail_url: `${PUBLIC_API_URL}/api/v2/blog-posts/${r.id}/`,
        html_url: `${FRONTEND_URL.replace(/\/$/, "")}${postUrl(r.slug)}`,
        slug: r.slug,
        first_published_at: r.firstPublishedAt,
      },
      title: r.title,
      slug: r.slug,
      url: postUrl(r.slug),
      publish_date: (r.firstPublishedAt ?? "").slice(0, 10),
      excerpt: r.excerpt,
      ...(await imageShapes(env, r.featuredImage, r.featuredImageAlt || r.title)),
      categories: categories.get(r.id) ?? [],
      tags: tags.get(r.id) ?? [],
      author: r.authorId
        ? {
            id: r.authorId,
            username: r.authorUsername!,
            display_name: displayName({
              username: r.authorUsername!,
              firstName: r.authorFirstName as string | null,
              lastName: r.authorLastName as string | null,
              profileVisibility: r.authorProfileVisibility as string | null,
            }),
          }
        : null,
      reading_time: r.readingTime,
      is_featured: r.isFeatured,
      view_count: r.viewCount,
      comment_count: r.commentCount,
    })),
  );
}
export type V2ListItem = Awaited<ReturnType<typeof listItems>>[number];

function selectList(env: Bindings) {
  return database(env).select(listColumns).from(p).leftJoin(users, eq(users.id, p.authorId)).$dynamic();
}

/** `/api/v2/blog-posts/`: a page of list items and the total; with `slug`, the detail shape. */
export async function listPublishedPosts(env: Bindings, filters: V2Filters, order: V2Order, limit: number, offset: number) {
  const db = database(env);
  const where = and(...filterConditions(filters));
  const [counted, rows] = await db.batch([
    db.select({ n: count() }).from(p).where(where),
    selectList(env)
      .where(where)
      .orderBy(...ORDER[order])
      .limit(limit)
      .offset(offset),
  ]);
  const total = counted[0]?.n ?? 0;
  if (filters.slug !== undefined) {
    const items = await Promise.all((rows as ListRow[]).map((r) => postDetail(env, r.id)));
    return { total, items };
  }
  return { total, items: await listItems(env, rows as ListRow[]) };
}

/** The detail shape of a published post, by id; 404 for anything else. */
export async function postDetail(env: Bindings, id: string) {
  const db = database(env);
  const thisPost = and(published, eq(p.id, id));
  // One batch, so one snapshot: a post deleted or unpublished between two reads would be found by
  // the first and missing (or no longer published) in the second.
  const [[row], [extra]] = await db.batch([
    selectList(env).where(thisPost),
    db.select({ introduction: p.introduction, contentBlocks: p.contentBlocks, seriesId: p.seriesId }).from(p).where(thisPost),
  ]);
  if (!row || !extra) throw new AppError("NOT_FOUND", 404, "No published post with this id.");
  const [item] = await listItems(env, [row as ListRow]);
  const series = extra.seriesId ? await db.select().from(blogSeries).where(eq(blogSeries.id, extra.seriesId)).get() : undefined;
  return {
    ...item!,
    introduction: extra.introduction,
    content_blocks: (extra.contentBlocks as StoredBlock[]).map(renderBlock),
    series: series ? seriesItem(series) : null,
    related_posts: await relatedPosts(
      env,
      id,
      item!.categories.map((c) => c.id),
      item!.tags,
    ),
  };
}
export type V2Detail = Awaited<ReturnType<typeof postDetail>>;

/** The id of the published post with this slug (or null). */
export async function publishedIdBySlug(env: Bindings, slug: string): Promise<string | null> {
  const row = await database(env)
    .select({ id: p.id })
    .from(p)
    .where(and(published, eq(p.slug, slug)))
    .get();
  return row?.id ?? null;
}

/** ≤ 3 published posts: sharing a category first, then sharing a tag; newest first within each. */
async function relatedPosts(env: Bindings, id: string, categoryIds: string[], tags: string[]) {
  if (categoryIds.length === 0 && tags.length === 0) return [];
  const db = database(env);
  // 1 when the post shares any of `values` in the join table, as an ORDER BY key and a filter.
  const sharesAny = <C extends typeof blogPostCategories.categoryId | typeof blogPostTags.tag>(
    table: typeof blogPostCategories | typeof blogPostTags,
    postId: typeof blogPostCategories.postId | typeof blogPostTags.postId,
    column: C,
    values: string[],
  ) =>
    values.length > 0
      ? exists(
          db
            .select({ one: sql`1` })
            .from(table)
            .where(and(eq(postId, p.id), inArray(column, values))),
        )
      : sql`0`;
  const sameCategory = sharesAny(blogPostCategories, blogPostCategories.postId, blogPostCategories.categoryId, categoryIds);
  const sameTag = sharesAny(blogPostTags, blogPostTags.postId, blogPostTags.tag, tags);
  const rows = await db
    .select({
      id: p.id,
      title: p.title,
      slug: p.slug,
      firstPublishedAt: p.firstPublishedAt,
      excerpt: p.excerpt,
      featuredImage: p.featuredImage,
      featuredImageAlt: p.featuredImageAlt,
    })
    .from(p)
    .where(and(published, sql`${p.id} <> ${id}`, sql`(${sameCategory} OR ${sameTag})`))
    .orderBy(desc(sql`${sameCategory}`), desc(p.firstPublishedAt), desc(p.id))
    .limit(3);
  return Promise.all(
    rows.map(async (r) => ({
      id: r.id,
      title: r.title,
      slug: r.slug,
      url: postUrl(r.slug),
      published_date: (r.firstPublishedAt ?? "").slice(0, 10),
      excerpt: shorterExcerpt(r.excerpt, 20),
      featured_image: (await imageShapes(env, r.featuredImage, r.featuredImageAlt || r.title)).featured_image,
    })),
  );
}

/** `/api/v2/blog-posts/popular/`: most viewed in the last `days` days (0: all time), then total views, then newest. */
export async function popularPosts(env: Bindings, limit: number, days: number, now = Date.now()) {
  const since = days > 0 ? new Date(now - (days - 1) * DAY_MS).toISOString().slice(0, 10) : "0000-00-00";
  // The window's views per post: an aggregate over the day index, so SQL is the point.
  const windowViews = sql<number>`(SELECT coalesce(sum(v.views), 0) FROM ${blogPostViews} v WHERE v.post_id = ${p.id} AND v.day >= ${since})`;
  const rows = await selectList(env)
    .where(published)
    .orderBy(desc(windowViews), desc(p.viewCount), desc(p.firstPublishedAt), desc(p.id))
    .limit(limit);
  return listItems(env, rows as ListRow[]);
}

function seriesItem(s: typeof blogSeries.$inferSelect) {
  return {
    id: s.id,
    title: s.title,
    slug: s.slug,
    description: s.description,
    cover_image: s.coverImage ? { url: mediaUrl(s.coverImage), alt: s.coverImageAlt || s.title } : null,
    is_completed: s.isCompleted,
  };
}

/** A page of a whole small table (categories, series) in one round trip, via the shared page query. */
export async function listCategories(env: Bindings, limit: number, offset: number) {
  const { count: total, rows } = await tablePage(
    database(env),
    blogCategories,
    undefined,
    [asc(blogCategories.name), asc(blogCategories.id)],
    offsetPage(limit, offset),
  );
  return { total, items: rows.map((c) => ({ id: c.id, name: c.name, slug: c.slug, description: c.description })) };
}

export async function listSeries(env: Bindings, limit: number, offset: number) {
  const { count: total, rows } = await tablePage(
    database(env),
    blogSeries,
    undefined,
    [asc(blogSeries.title), asc(blogSeries.id)],
    offsetPage(limit, offset),
  );
  return { total, items: rows.map(seriesItem) };
}

/** Wagtail's limit/offset as a page request; offsets that are not a multiple of the limit are exact too. */
function offsetPage(limit: number, offset: number) {
  return { pageSize: limit, page: 1, offset };
}

/** Counts one view of a published post, exactly: the day's row and the total, in one batch. */
export async function recordView(env: Bindings, postId: string, now = Date.now()): Promise<void> {
  const db = database(env);
  const day = new Date(now).toISOString().slice(0, 10);
  await runBatch(db, [
    db
      .insert(blogPostViews)
      .values({ postId, day, views: 1 })
      .onConflictDoUpdate({ target: [blogPostViews.postId, blogPostViews.day], set: { views: sql`${blogPostViews.views} + 1` } }),
    db
      .update(p)
      .set({ viewCount: sql`${p.viewCount} + 1` })
      .where(eq(p.id, postId)),
  ]);
}

/** Published posts for feeds and the sitemap, newest first. */
export async function feedPosts(env: Bindings, limit: number) {
  return database(env)
    .select({
      id: p.id,
      slug: p.slug,
      title: p.title,
      excerpt: p.excerpt,
      firstPublishedAt: p.firstPublishedAt,
      updatedAt: p.updatedAt,
      lastPublishedAt: p.lastPublishedAt,
      authorUsername: users.username,
    })
    .from(p)
    .leftJoin(users, eq(users.id, p.authorId))
    .where(published)
    .orderBy(desc(p.firstPublishedAt), desc(p.id))
    .limit(limit);
}
