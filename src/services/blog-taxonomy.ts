/**
 * The blog's categories, tags and series (issue 9 item 3): public lists, and writes by editors.
 *
 * - Slugs are lower-case `a-z0-9-` words, derived from the name/title when not given; a slug in
 *   use is a 409 CONFLICT. The same rules name posts (blog-posts.ts).
 * - Tags are not a table: they are the lower-case slugs kept per post; the public list counts
 *   them over published posts only.
 * - A series' cover image is a photo reference (uploaded through POST /api/v1/blog/images/) with
 *   required alt text; replacing or deleting it releases the old photo when nothing else uses it.
 * - Every change readers could see (a category's or series' name, slug, description, cover)
 *   purges the public reads of the published posts it shows on, after the write is committed;
 *   a new category or series purges in its insert's batch (the public lists show every one).
 */
import { and, asc, count, desc, eq, inArray, sql } from "drizzle-orm";
import { database, runBatch } from "../db/client";
import { blogCategories, blogPostCategories, blogPosts, blogPostTags, blogSeries } from "../db/schema";
import type { Bindings } from "../env";
import { AppError, isUniqueViolation, orNotFound } from "../lib/errors";
import { isUuid, uuidv7 } from "../lib/ids";
import { blogImageSize, mediaUrl } from "./blog-blocks";
import { purgeBlogReads, purgeBlogReadsStatement } from "./blog-cache";
import { releasePhotoRefs } from "./photos";

export const SLUG_RE = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
export const SLUG_MAX = 100;

/** Latin letters NFKD does not split into a base letter and a mark (German, Nordic, Polish, Vietnamese, Turkish…). */
const LATIN_LETTERS: Record<string, string> = { ß: "ss", đ: "d", ð: "d", ø: "o", æ: "ae", œ: "oe", ł: "l", þ: "th", ı: "i", ħ: "h" };

/**
 * A slug from free text: accents dropped, Latin letters spelt in a–z ("Straße" → "strasse",
 * "Đà Lạt" → "da-lat"), lower case, runs of anything else become one hyphen. Other scripts give
 * nothing: the caller asks for a slug (derivedSlug) or falls back.
 */
export function slugify(text: string, max = 80): string {
  return text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[ßđðøæœłþıħ]/g, (ch) => LATIN_LETTERS[ch]!)
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, max)
    .replace(/^-+|-+$/g, "");
}

/** The slug made from `text` (the request's `field`); 400 on `slug` when the text has nothing to make it from. */
function derivedSlug(text: string, field: string): string {
  const slug = slugify(text);
  if (!slug)
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", {
      slug: [`The ${field} has no letters a–z or digits to make a slug from: send a slug.`],
    });
  return slug;
}

/** 400 when a slug is not of the form, or could be taken for an id (posts are read by id or slug). */
export function checkSlug(slug: string, field = "slug"): string {
  if (!SLUG_RE.test(slug) || slug.length > SLUG_MAX)
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", {
      [field]: [`Use lower-case letters, digits and single hyphens (at most ${SLUG_MAX} characters).`],
    });
  if (isUuid(slug)) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { [field]: ["A slug may not look like an id."] });
  return slug;
}

export function slugTaken(what: string) {
  return new AppError("CONFLICT", 409, `This slug is already used by another ${what}.`, { slug: ["Already in use."] });
}

/** A photo of the blog's media library (uploaded first), with its alt text; 400 naming `field` otherwise. */
export async function checkImage(env: Bindings, ref: string, alt: string, field: string): Promise<void> {
  if (!(await blogImageSize(env, ref)))
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", {
      [field]: ["No such uploaded image (upload it with POST /api/v1/blog/images/ first)."],
    });
  if (!alt.trim())
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { [`${field}_alt`]: ["Alt text is required with an image."] });
}

/** Published posts in a category or series, for purging their public reads. */
async function publishedPostsWhere(env: Bindings, where: ReturnType<typeof eq>, viaCategory: boolean) {
  const db = database(env);
  const rows = viaCategory
    ? await db
        .select({ id: blogPosts.id, slug: blogPosts.slug })
        .from(blogPosts)
        .innerJoin(blogPostCategories, eq(blogPostCategories.postId, blogPosts.id))
        .where(and(where, eq(blogPosts.status, "published")))
    : await db
        .select({ id: blogPosts.id, slug: blogPosts.slug })
        .from(blogPosts)
        .where(and(where, eq(blogPosts.status, "published")));
  return { postIds: rows.map((r) => r.id), slugs: rows.map((r) => r.slug) };
}

// ---------------------------------------------------------------------------------------------
// Categories

export type CategoryRow = typeof blogCategories.$inferSelect;

export function categoryBody(row: CategoryRow) {
  return { id: row.id, slug: row.slug, name: row.name, description: row.description };
}

export function listCategories(env: Bindings): Promise<CategoryRow[]> {
  return database(env).select().from(blogCategories).orderBy(asc(blogCategories.name), asc(blogCategories.id));
}

async function getCategory(env: Bindings, id: string): Promise<CategoryRow> {
  return orNotFound(await database(env).select().from(blogCategories).where(eq(blogCategories.id, id)).get(), "Category");
}

export interface CategoryInput {
  name?: string;
  slug?: string;
  description?: string;
}

export async function createCategory(env: Bindings, input: Required<Pick<CategoryInput, "name">> & CategoryInput): Promise<CategoryRow> {
  const slug = checkSlug(input.slug ?? derivedSlug(input.name, "name"));
  const id = uuidv7();
  try {
    // The public category list (/api/v2/categories/) shows every category: it purges with the insert.
    const db = database(env);
    await runBatch(db, [
      db.insert(blogCategories).values({ id, slug, name: input.name, description: input.description ?? "" }),
      purgeBlogReadsStatement(),
    ]);
  } catch (err) {
    if (isUniqueViolation(err)) throw slugTaken("category");
    throw err;
  }
  return getCategory(env, id);
}

export async function updateCategory(env: Bindings, id: string, input: CategoryInput): Promise<CategoryRow> {
  await getCategory(env, id);
  if (input.slug !== undefined) checkSlug(input.slug);
  try {
    await database(env)
      .update(blogCategories)
      .set({ name: input.name, slug: input.slug, description: input.description })
      .where(eq(blogCategories.id, id));
  } catch (err) {
    if (isUniqueViolation(err)) throw slugTaken("category");
    throw err;
  }
  await purgeBlogReads(env, await publishedPostsWhere(env, eq(blogPostCategories.categoryId, id), true));
  return getCategory(env, id);
}

export async function deleteCategory(env: Bindings, id: string): Promise<void> {
  await getCategory(env, id);
  const affected = await publishedPostsWhere(env, eq(blogPostCategories.categoryId, id), true);
  // The posts' links go with it (ON DELETE CASCADE).
  await database(env).delete(blogCategories).where(eq(blogCategories.id, id));
  await purgeBlogReads(env, affected);
}

/** The categories with these slugs; 400 on `field` naming any that does not exist. */
export async function categoriesBySlug(env: Bindings, slugs: readonly string[], field = "categories"): Promise<CategoryRow[]> {
  const wanted = [...new Set(slugs)];
  if (wanted.length === 0) return [];
  const rows = await database(env).select().from(blogCategories).where(inArray(blogCategories.slug, wanted));
  const missing = wanted.filter((s) => !rows.some((r) => r.slug === s));
  if (missing.length > 0)
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { [field]: [`No such category: ${missing.join(", ")}.`] });
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Tags

/** Tags of published posts with how many published posts carry each, most used first. */
export async function listTags(env: Bindings, limit = 500): Promise<{ tag: string; count: number }[]> {
  const n = count();
  return database(env)
    .select({ tag: blogPostTags.tag, count: n })
    .from(blogPostTags)
    .innerJoin(blogPosts, eq(blogPosts.id, blogPostTags.postId))
    .where(eq(blogPosts.status, "published"))
    .groupBy(blogPostTags.tag)
    .orderBy(desc(n), asc(blogPostTags.tag))
    .limit(limit);
}

export const TAG_MAX = 50;
export const TAGS_PER_POST = 20;

/** A post's tags as stored: trimmed, lower case, spaces as hyphens, unique; 400 for one that is not a slug then. */
export function normaliseTags(tags: readonly string[]): string[] {
  const out = [...new Set(tags.map((t) => t.trim().toLowerCase().replace(/\s+/g, "-")))];
  const bad = out.filter((t) => !SLUG_RE.test(t) || t.length > TAG_MAX);
  if (bad.length > 0)
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", {
      tags: [
        `Tags are words of letters a–z (no accents or other scripts), digits and hyphens, at most ${TAG_MAX} characters: ${bad.slice(0, 3).join(", ")}.`,
      ],
    });
  if (out.length > TAGS_PER_POST)
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { tags: [`At most ${TAGS_PER_POST} tags.`] });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Series

export type SeriesRow = typeof blogSeries.$inferSelect;

const seriesColumns = {
  id: blogSeries.id,
  slug: blogSeries.slug,
  title: blogSeries.title,
  description: blogSeries.description,
  coverImage: blogSeries.coverImage,
  coverImageAlt: blogSeries.coverImageAlt,
  isCompleted: blogSeries.isCompleted,
  createdAt: blogSeries.createdAt,
  updatedAt: blogSeries.updatedAt,
  // Published posts only: drafts are not shown to readers, nor counted for them.
  postCount: sql<number>`(SELECT count(*) FROM blog_posts p WHERE p.series_id = blog_series.id AND p.status = 'published')`,
};
type SeriesWithCount = SeriesRow & { postCount: number };

export function seriesBody(row: SeriesWithCount) {
  return {
    id: row.id,
    slug: row.slug,
    title: row.title,
    description: row.description,
    cover_image: row.coverImage ? { id: row.coverImage, url: mediaUrl(row.coverImage), alt: row.coverImageAlt } : null,
    is_completed: row.isCompleted,
    post_count: row.postCount,
    created_at: row.createdAt,
    updated_at: row.updatedAt,
  };
}

export function listSeries(env: Bindings): Promise<SeriesWithCount[]> {
  return database(env).select(seriesColumns).from(blogSeries).orderBy(asc(blogSeries.title), asc(blogSeries.id));
}

async function getSeries(env: Bindings, id: string): Promise<SeriesWithCount> {
  return orNotFound(await database(env).select(seriesColumns).from(blogSeries).where(eq(blogSeries.id, id)).get(), "Series");
}

/** The series with this slug; 400 on `field` when there is none. */
export async function seriesBySlug(env: Bindings, slug: string, field = "series"): Promise<SeriesRow> {
  const row = await database(env).select().from(blogSeries).where(eq(blogSeries.slug, slug)).get();
  if (!row) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { [field]: [`No such series: ${slug}.`] });
  return row;
}

export interface SeriesInput {
  title?: string;
  slug?: string;
  description?: string;
  cover_image?: string | null;
  cover_image_alt?: string;
  is_completed?: boolean;
}

export async function createSeries(env: Bindings, input: SeriesInput & { title: string }): Promise<SeriesWithCount> {
  const slug = checkSlug(input.slug ?? derivedSlug(input.title, "title"));
  if (input.cover_image) await checkImage(env, input.cover_image, input.cover_image_alt ?? "", "cover_image");
  const id = uuidv7();
  try {
    // The public series list (/api/v2/series/) shows every series: it purges with the insert.
    const db = database(env);
    await runBatch(db, [
      db.insert(blogSeries).values({
        id,
        slug,
        title: input.title,
        description: input.description ?? "",
        coverImage: input.cover_image ?? null,
        coverImageAlt: input.cover_image ? (input.cover_image_alt ?? "") : "",
        isCompleted: input.is_completed ?? false,
      }),
      purgeBlogReadsStatement(),
    ]);
  } catch (err) {
    if (isUniqueViolation(err)) throw slugTaken("series");
    throw err;
  }
  return getSeries(env, id);
}

export async function updateSeries(env: Bindings, id: string, input: SeriesInput): Promise<SeriesWithCount> {
  const before = await getSeries(env, id);
  if (input.slug !== undefined) checkSlug(input.slug);
  const cover = input.cover_image === undefined ? before.coverImage : input.cover_image;
  const alt = input.cover_image_alt ?? (input.cover_image === undefined ? before.coverImageAlt : "");
  if (cover && (cover !== before.coverImage || input.cover_image_alt !== undefined)) await checkImage(env, cover, alt, "cover_image");
  try {
    await database(env)
      .update(blogSeries)
      .set({
        title: input.title,
        slug: input.slug,
        description: input.description,
        coverImage: cover,
        coverImageAlt: cover ? alt : "",
        isCompleted: input.is_completed,
        updatedAt: new Date().toISOString(),
      })
      .where(eq(blogSeries.id, id));
  } catch (err) {
    if (isUniqueViolation(err)) throw slugTaken("series");
    throw err;
  }
  if (before.coverImage && before.coverImage !== cover) await releasePhotoRefs(env, [before.coverImage], { fromBlog: true });
  await purgeBlogReads(env, await publishedPostsWhere(env, eq(blogPosts.seriesId, id), false));
  return getSeries(env, id);
}

export async function deleteSeries(env: Bindings, id: string): Promise<void> {
  const before = await getSeries(env, id);
  const affected = await publishedPostsWhere(env, eq(blogPosts.seriesId, id), false);
  // Its posts stay, out of any series (ON DELETE SET NULL).
  await database(env).delete(blogSeries).where(eq(blogSeries.id, id));
  await releasePhotoRefs(env, [before.coverImage], { fromBlog: true });
  await purgeBlogReads(env, affected);
}
