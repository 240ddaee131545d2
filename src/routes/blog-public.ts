/**
 * The blog's public reads (issue 9 items 5–6, API.md §5a): the Wagtail API v2 shapes the web
 * client reads under /api/v2/, RSS 2.0 and Atom feeds, a sitemap, and the images under /media/.
 * Published posts only. Every answer is public: cached at the edge (services/blog-cache.ts) with
 * a strong ETag (304 on If-None-Match) and `Cache-Control: public`, the same for every caller —
 * credentials change nothing here. CORS (credentialed, `x-request-id` allowed) is the app's.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { escapeHtml } from "../lib/sanitise";
import { CLIENT_CACHE_CONTROL, cachedPublicRead } from "../services/blog-cache";
import { cacheKey, cachedAnswer, notModified } from "./cached-reads";
import {
  feedPosts,
  listCategories,
  listPublishedPosts,
  listSeries,
  popularPosts,
  postDetail,
  publishedIdBySlug,
  recordView,
  V2_ORDERS,
} from "../services/blog-public";
import { storedImageResponse } from "./media";
import { createRouter, routeSet } from "./router";
import { BooleanQuery, errorResponse, searchText } from "./schemas";

const tags = ["Blog (public, Wagtail API v2)"];
const JSON_TYPE = "application/json; charset=UTF-8";

const limitParam = (max: number, fallback: number) =>
  z.coerce
    .number({ message: "Must be a whole number." })
    .int("Must be a whole number.")
    .min(1, `limit must be between 1 and ${max}.`)
    .max(max, `limit must be between 1 and ${max}.`)
    .default(fallback)
    .openapi({ description: `1..${max} (default ${fallback}); anything else is a 400.` });
const offsetParam = z.coerce.number().int().min(0).max(100_000).default(0).openapi({ description: "Items to skip (default 0)." });
const slugParam = z.string().max(120);

const PostsQuery = z.object({
  limit: limitParam(20, 20),
  offset: offsetParam,
  order: z.enum(V2_ORDERS).default("-first_published_at"),
  search: searchText(100).optional(),
  category_slug: slugParam.optional(),
  tag: slugParam.optional(),
  author_username: z.string().max(150).optional(),
  series_slug: slugParam.optional(),
  featured: BooleanQuery.optional(),
  slug: slugParam
    .optional()
    .openapi({ description: "One post's slug: `items` then holds its detail shape (an unknown slug: 200 with no items)." }),
  type: z.string().max(100).optional().openapi({ description: "Accepted and ignored (Wagtail clients send `blog.BlogPostPage`)." }),
  fields: z.string().max(500).optional().openapi({ description: "Accepted and ignored: every field is always sent." }),
});

const Image = z.object({ url: z.string(), width: z.number().int(), height: z.number().int(), alt: z.string() }).nullable();
const ListItem = z
  .object({
    id: z.string(),
    meta: z
      .object({
        type: z.string().openapi({ example: "blog.BlogPostPage" }),
        detail_url: z.string().openapi({ description: "This item's detail on this API (absolute)." }),
        html_url: z.string().openapi({ description: "The post's page in the web app (absolute)." }),
        slug: z.string(),
        first_published_at: z.string().nullable(),
      })
      .openapi({ description: "Wagtail API v2's per-item meta." }),
    title: z.string(),
    slug: z.string(),
    url: z.string(),
    publish_date: z.string().openapi({ description: "YYYY-MM-DD" }),
    excerpt: z.string().openapi({ description: "Plain text, at most 30 words." }),
    featured_image: Image.openapi({ description: "Fitted in an 800×400 box (the original from /media/, its box size given)." }),
    featured_image_thumb: Image.openapi({ description: "Fitted in a 300×200 box." }),
    categories: z.array(z.object({ id: z.string(), name: z.string(), slug: z.string() })),
    tags: z.array(z.string()),
    author: z.object({ id: z.string(), username: z.string(), display_name: z.string() }).nullable(),
    reading_time: z.number().int().openapi({ description: "Minutes." }),
    is_featured: z.boolean(),
    view_count: z.number().int(),
    comment_count: z.number().int(),
  })
  .openapi("BlogPostListItem");
const SeriesItem = z
  .object({
    id: z.string(),
    title: z.string(),
    slug: z.string(),
    description: z.string(),
    cover_image: z.object({ url: z.string(), alt: z.string() }).nullable(),
    is_completed: z.boolean(),
  })
  .openapi("WagtailBlogSeries");
const Detail = ListItem.extend({
  introduction: z.string().openapi({ description: "Sanitised HTML." }),
  content_blocks: z.array(z.object({ type: z.string(), value: z.unknown(), id: z.string() })).openapi({
    description:
      "An array, never a string, of `{type, value, id}`: an image block's value is `{id, url, alt, width, height, caption}`, a plant spotlight's image `{id, url, alt, width, height}` (docs/api.md § Blog — public reads).",
  }),
  series: SeriesItem.nullable(),
  related_posts: z
    .array(
      z.object({
        id: z.string(),
        title: z.string(),
        slug: z.string(),
        url: z.string(),
        published_date: z.string(),
        excerpt: z.string(),
        featured_image: Image,
      }),
    )
    .openapi({ description: "At most 3: same category first, then shared tags, newest first." }),
}).openapi("WagtailBlogPostDetail");
const meta = z.object({ total_count: z.number().int() });

function cachedJsonResponse(description: string, schema: z.ZodType) {
  return {
    description: `${description}. Strong ETag; 304 on a matching If-None-Match.`,
    headers: z.object({ ETag: z.string(), "Cache-Control": z.string() }),
    content: { "application/json": { schema } },
  };
}

/**
 * What Wagtail accepts on every listing besides its fields and filters: `_` (a cache-buster
 * jQuery sends) and `format` (the renderer). Accepted and ignored; not part of a cache key.
 */
const WAGTAIL_ALWAYS = ["_", "format"];

/**
 * Wagtail API v2 refuses a query parameter its listings do not know, 400 with its own message,
 * instead of answering as if it were absent (a misspelt filter would otherwise list everything).
 * Its detail view checks none, and neither does ours.
 */
function refuseUnknownQuery(c: Context<AppEnv>, known: readonly string[]): void {
  const unknown = Object.keys(c.req.queries()).filter((name) => !known.includes(name) && !WAGTAIL_ALWAYS.includes(name));
  if (unknown.length > 0) {
    throw new AppError("BAD_REQUEST", 400, `query parameter is not an operation or a recognised field: ${unknown.sort().join(", ")}`);
  }
}

function answer(c: Context<AppEnv>, key: string, contentType: string, build: () => Promise<string>) {
  return cachedAnswer(c, (fresh) => cachedPublicRead(c.env, key, contentType, build, fresh), CLIENT_CACHE_CONTROL);
}

const waitUntilOf = (c: Context<AppEnv>) => (p: Promise<unknown>) => c.executionCtx.waitUntil(p.catch(() => {}));

export function blogPublicRoutes() {
  const app = createRouter();
  const reads = routeSet({ tags, errors: { 400: errorResponse(400, "A query parameter is not valid (e.g. limit over 20)") } });
  const reads404 = routeSet({ tags, errors: { 404: errorResponse(404, "No published post with this id") } });

  const list = reads.get("/api/v2/blog-posts", "Published posts, Wagtail API v2 listing").io(
    { query: PostsQuery },
    {
      200: cachedJsonResponse(
        "`{meta: {total_count}, items}`; with `slug=`, items hold the detail shape",
        z.object({ meta, items: z.array(z.union([Detail, ListItem])) }),
      ),
      ...notModified,
    },
  );
  app.openapi(list, async (c) => {
    refuseUnknownQuery(c, [...Object.keys(PostsQuery.shape), "search_operator"]);
    const q = c.req.valid("query");
    const filters = {
      search: q.search || undefined,
      category_slug: q.category_slug,
      tag: q.tag,
      author_username: q.author_username,
      series_slug: q.series_slug,
      featured: q.featured === undefined ? undefined : q.featured === "true",
      slug: q.slug,
    };
    if (q.slug !== undefined) {
      // A detail read by slug is a view, counted even when the answer comes from the cache.
      const id = await publishedIdBySlug(c.env, q.slug);
      if (id) waitUntilOf(c)(recordView(c.env, id));
    }
    const { type: _type, fields: _fields, ...normalised } = q;
    return answer(c, cacheKey("/api/v2/blog-posts", normalised), JSON_TYPE, async () => {
      const { total, items } = await listPublishedPosts(c.env, filters, q.order, q.limit, q.offset);
      return JSON.stringify({ meta: { total_count: total }, items });
    }) as never;
  });

  const popular = reads.get("/api/v2/blog-posts/popular", "The most viewed published posts (a bare array)").io(
    {
      query: z.object({
        limit: limitParam(50, 10),
        days: z.coerce.number().int().min(0).max(3650).default(30).openapi({ description: "Window in days (default 30); 0 = all time." }),
      }),
    },
    { 200: cachedJsonResponse("Most views in the window first, then total views, then newest", z.array(ListItem)), ...notModified },
  );
  app.openapi(popular, async (c) => {
    refuseUnknownQuery(c, ["limit", "days"]);
    const { limit, days } = c.req.valid("query");
    return answer(
      c,
      cacheKey("/api/v2/blog-posts/popular", { limit, days, day: new Date().toISOString().slice(0, 10) }),
      JSON_TYPE,
      async () => JSON.stringify(await popularPosts(c.env, limit, days)),
    ) as never;
  });

  const detail = reads404
    .get("/api/v2/blog-posts/{id}", "One published post, Wagtail API v2 detail")
    .io({ params: z.object({ id: z.string().max(64) }) }, { 200: cachedJsonResponse("The detail shape", Detail), ...notModified });
  app.openapi(detail, async (c) => {
    const { id } = c.req.valid("param");
    const result = await answer(c, `/api/v2/blog-posts/${encodeURIComponent(id)}`, JSON_TYPE, async () =>
      JSON.stringify(await postDetail(c.env, id)),
    );
    // Counted after the answer exists (a 404 threw above): one view per read, cache hit or not.
    waitUntilOf(c)(recordView(c.env, id));
    return result as never;
  });

  const categories = reads.get("/api/v2/categories", "Blog categories").io(
    { query: z.object({ limit: limitParam(100, 20), offset: offsetParam }) },
    {
      200: cachedJsonResponse(
        "`{meta, items: [{id, name, slug, description}]}`",
        z.object({ meta, items: z.array(z.object({ id: z.string(), name: z.string(), slug: z.string(), description: z.string() })) }),
      ),
      ...notModified,
    },
  );
  app.openapi(categories, async (c) => {
    refuseUnknownQuery(c, ["limit", "offset"]);
    const { limit, offset } = c.req.valid("query");
    return answer(c, cacheKey("/api/v2/categories", { limit, offset }), JSON_TYPE, async () => {
      const { total, items } = await listCategories(c.env, limit, offset);
      return JSON.stringify({ meta: { total_count: total }, items });
    }) as never;
  });

  const series = reads.get("/api/v2/series", "Blog series").io(
    { query: z.object({ limit: limitParam(100, 20), offset: offsetParam }) },
    {
      200: cachedJsonResponse(
        "`{meta, items: [{id, title, slug, description, cover_image, is_completed}]}`",
        z.object({ meta, items: z.array(SeriesItem) }),
      ),
      ...notModified,
    },
  );
  app.openapi(series, async (c) => {
    refuseUnknownQuery(c, ["limit", "offset"]);
    const { limit, offset } = c.req.valid("query");
    return answer(c, cacheKey("/api/v2/series", { limit, offset }), JSON_TYPE, async () => {
      const { total, items } = await listSeries(c.env, limit, offset);
      return JSON.stringify({ meta: { total_count: total }, items });
    }) as never;
  });

  // Feeds and the sitemap: the newest published posts, absolute links to the web app.
  const xml = (description: string) => ({ 200: { description, content: { "application/xml": { schema: z.string() } } }, ...notModified });
  const feeds = routeSet({ tags, errors: {} });
  const rss = feeds.get("/blog/feed.rss", "RSS 2.0 feed of the 20 newest published posts").io({}, xml("RSS 2.0"));
  app.openapi(rss, async (c) => answer(c, "/blog/feed.rss", "application/rss+xml; charset=UTF-8", async () => rssFeed(c)) as never);
  const atom = feeds.get("/blog/feed.atom", "Atom feed of the 20 newest published posts").io({}, xml("Atom (RFC 4287)"));
  app.openapi(atom, async (c) => answer(c, "/blog/feed.atom", "application/atom+xml; charset=UTF-8", async () => atomFeed(c)) as never);
  const sitemap = feeds.get("/sitemap.xml", "Sitemap of the published posts").io({}, xml("sitemaps.org 0.9"));
  app.openapi(sitemap, async (c) => answer(c, "/sitemap.xml", "application/xml; charset=UTF-8", async () => sitemapXml(c)) as never);

  // Blog images on our own origin (§5a: `url`s under /media/): a published post's to anyone, a
  // draft's to blog writers (signed in: app.ts authenticates /media/ too).
  const media = routeSet({ tags, errors: { 404: errorResponse(404, "No such image") } })
    .get("/media/images/{file}", "A blog image (the original; `width`/`height` in the JSON give its display box)")
    .io(
      { params: z.object({ file: z.string().max(80) }) },
      { 200: { description: "The image", content: { "image/*": { schema: z.any().openapi({ type: "string", format: "binary" }) } } } },
    );
  app.openapi(media, async (c) => (await storedImageResponse(c, c.req.valid("param").file)) as never);

  return app;
}

/**
 * Text for the feeds and the sitemap: markup escaped, and every character XML 1.0 forbids dropped
 * (C0 controls but tab and line ends, lone surrogates, U+FFFE and U+FFFF), so no post's text can
 * make a feed ill-formed, which strict feed readers refuse whole.
 */
const xmlText = (s: string) => escapeHtml(s).replace(/[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, "");

function links(c: Context<AppEnv>) {
  const config = getConfig(c.env);
  return { site: config.FRONTEND_URL.replace(/\/$/, ""), api: config.PUBLIC_API_URL.replace(/\/$/, "") };
}

async function rssFeed(c: Context<AppEnv>): Promise<string> {
  const { site, api } = links(c);
  const posts = await feedPosts(c.env, 20);
  const items = posts
    .map(
      (p) =>
        `<item><title>${xmlText(p.title)}</title><link>${xmlText(`${site}/blog/${p.slug}/`)}</link><guid isPermaLink="false">${p.id}</guid><pubDate>${new Date(p.firstPublishedAt ?? p.updatedAt).toUTCString()}</pubDate><description>${xmlText(p.excerpt)}</description>${
          p.authorUsername ? `<dc:creator>${xmlText(p.authorUsername)}</dc:creator>` : ""
        }</item>`,
    )
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Plant Community blog</title><link>${xmlText(`${site}/blog/`)}</link><description>Care guides and seasonal advice from Plant Community.</description><language>en</language><atom:link href="${xmlText(`${api}/blog/feed.rss`)}" rel="self" type="application/rss+xml"/>${items}</channel></rss>\n`;
}

async function atomFeed(c: Context<AppEnv>): Promise<string> {
  const { site, api } = links(c);
  const posts = await feedPosts(c.env, 20);
  const updated =
    posts
      .map((p) => p.lastPublishedAt ?? p.updatedAt)
      .sort()
      .at(-1) ?? "1970-01-01T00:00:00.000Z";
  const entries = posts
    .map(
      (p) =>
        `<entry><title>${xmlText(p.title)}</title><link href="${xmlText(`${site}/blog/${p.slug}/`)}"/><id>urn:uuid:${p.id}</id><published>${p.firstPublishedAt}</published><updated>${p.lastPublishedAt ?? p.updatedAt}</updated><summary>${xmlText(p.excerpt)}</summary><author><name>${xmlText(p.authorUsername ?? "Plant Community")}</name></author></entry>`,
    )
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>Plant Community blog</title><link href="${xmlText(`${site}/blog/`)}"/><link rel="self" href="${xmlText(`${api}/blog/feed.atom`)}"/><id>${xmlText(`${api}/blog/feed.atom`)}</id><updated>${updated}</updated>${entries}</feed>\n`;
}

async function sitemapXml(c: Context<AppEnv>): Promise<string> {
  const { site } = links(c);
  const posts = await feedPosts(c.env, 50_000);
  const urls = posts
    .map(
      (p) =>
        `<url><loc>${xmlText(`${site}/blog/${p.slug}/`)}</loc><lastmod>${(p.lastPublishedAt ?? p.updatedAt).slice(0, 10)}</lastmod></url>`,
    )
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>${xmlText(`${site}/blog/`)}</loc></url>${urls}</urlset>\n`;
}
