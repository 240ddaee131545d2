/**
 * Blog fixtures written straight to D1 with drizzle (the editorial API has its own tests): the
 * public reads and search are tested against exactly the rows they must show or hide.
 */
import { env } from "cloudflare:workers";
import { database } from "../../src/db/client";
import { blogCategories, blogPostCategories, blogPosts, blogPostTags, blogSeries, type StoredBlock } from "../../src/db/schema";
import { postExcerpt, postSearchText, readingTime } from "../../src/lib/blog-text";

const unique = () => crypto.randomUUID().slice(0, 8);

export async function blogCategory(name = `Category ${unique()}`) {
  const row = {
    id: crypto.randomUUID(),
    slug: `${name.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${unique()}`,
    name,
    description: `About ${name}.`,
  };
  await database(env).insert(blogCategories).values(row);
  return row;
}

export async function blogSeriesRow(title = `Series ${unique()}`) {
  const row = { id: crypto.randomUUID(), slug: `series-${unique()}`, title, description: "A series.", isCompleted: false };
  await database(env).insert(blogSeries).values(row);
  return row;
}

export interface PostFixture {
  title?: string;
  status?: "draft" | "review" | "published" | "unpublished";
  publishedAt?: string;
  categoryIds?: string[];
  tags?: string[];
  introduction?: string;
  blocks?: StoredBlock[];
  featuredImage?: string | null;
  authorId?: string | null;
  seriesId?: string | null;
  seriesOrder?: number | null;
  isFeatured?: boolean;
  viewCount?: number;
}

export async function blogPost(f: PostFixture = {}) {
  const id = crypto.randomUUID();
  const title = f.title ?? `Post ${unique()}`;
  const introduction = f.introduction ?? "<p>An <strong>introduction</strong> to the post.</p>";
  const blocks = f.blocks ?? [
    { id: crypto.randomUUID(), type: "heading", value: "First things" },
    { id: crypto.randomUUID(), type: "paragraph", value: "<p>Water when the top inch is dry.</p>" },
  ];
  const status = f.status ?? "published";
  const searchText = postSearchText(introduction, blocks);
  const publishedAt = status === "published" || status === "unpublished" ? (f.publishedAt ?? new Date().toISOString()) : null;
  const slug = `${title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "")}-${unique()}`;
  const db = database(env);
  await db.insert(blogPosts).values({
    id,
    slug,
    title,
    introduction,
    contentBlocks: blocks,
    status,
    authorId: f.authorId ?? null,
    featuredImage: f.featuredImage ?? null,
    featuredImageAlt: f.featuredImage ? `${title} photo` : "",
    seriesId: f.seriesId ?? null,
    seriesOrder: f.seriesOrder ?? null,
    isFeatured: f.isFeatured ?? false,
    readingTime: readingTime(searchText),
    excerpt: postExcerpt(introduction, blocks),
    searchText,
    firstPublishedAt: publishedAt,
    lastPublishedAt: publishedAt,
    viewCount: f.viewCount ?? 0,
    revision: 1,
  });
  for (const categoryId of f.categoryIds ?? []) await db.insert(blogPostCategories).values({ postId: id, categoryId });
  for (const tag of f.tags ?? []) await db.insert(blogPostTags).values({ postId: id, tag });
  return { id, slug, title };
}
