/**
 * The blog's public reads through the Worker (issue 9 items 5–6, API.md §5a): the Wagtail v2
 * shapes field by field, every filter and order, limits, published-only everywhere, ETag/304 and
 * the edge cache purged on change, exact view counts under concurrency, popular windows, feeds and
 * the sitemap parsed as XML, credentialed CORS, and the images under /media/.
 */
import { DOMParser } from "@xmldom/xmldom";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { getConfig } from "../../src/config";
import { database } from "../../src/db/client";
import { blogCacheState, blogPosts, blogPostViews } from "../../src/db/schema";
import { purgeBlogReads } from "../../src/services/blog-cache";
import { withStoredPhotos } from "../../src/services/photos";
import { blogCategory, blogPost, blogSeriesRow } from "../helpers/blog";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { makePng } from "../helpers/images";
import { eventually } from "../helpers/wait";

interface Listing<T = Record<string, unknown>> {
  meta: { total_count: number };
  items: T[];
}
type Item = Record<string, unknown> & { id: string; slug: string; title: string };
const get = (path: string, headers: Record<string, string> = {}) => call(path, { headers });
const listing = async (query: string) => json<Listing<Item>>(await get(`/api/v2/blog-posts/?${query}`), 200);

// Test files share the Cache API; a fresh generation per test keeps entries of one test from another.
beforeEach(async () => {
  await database(env)
    .insert(blogCacheState)
    .values({ id: 1, version: Math.floor(Math.random() * 1e9) })
    .onConflictDoUpdate({ target: blogCacheState.id, set: { version: Math.floor(Math.random() * 1e9) } });
});

async function storedPhoto(width: number, height: number) {
  const bytes = await makePng(width, height, { seed: crypto.randomUUID() });
  const { sha256Hex } = await import("../../src/lib/hash");
  const sha256 = await sha256Hex(bytes);
  await withStoredPhotos(env, null, [{ sha256, type: "png", mime: "image/png", bytes }], async () => {});
  return `${sha256}.png`;
}

describe("GET /api/v2/blog-posts/ (Wagtail v2 listing)", () => {
  it("lists published posts only, newest first, in the list-item shape", async () => {
    const cat = await blogCategory("Houseplants");
    const tag = `tag-${crypto.randomUUID().slice(0, 6)}`;
    const older = await blogPost({ title: "Older post", publishedAt: "2026-10-01T08:00:00.000Z", categoryIds: [cat.id], tags: [tag] });
    const newer = await blogPost({
      title: "Newer post",
      publishedAt: "2026-11-01T08:00:00.000Z",
      categoryIds: [cat.id],
      tags: [tag],
      isFeatured: true,
    });
    for (const status of ["draft", "review", "unpublished"] as const)
      await blogPost({ title: `Hidden ${status}`, status, categoryIds: [cat.id], tags: [tag] });

    const body = await listing(`tag=${tag}`);
    expect(body.meta.total_count).toBe(2);
    expect(body.items.map((i) => i.id)).toEqual([newer.id, older.id]);
    const item = body.items[0]!;
    expect(Object.keys(item).sort()).toEqual(
      [
        "id",
        "meta",
        "title",
        "slug",
        "url",
        "publish_date",
        "excerpt",
        "featured_image",
        "featured_image_thumb",
        "categories",
        "tags",
        "author",
        "reading_time",
        "is_featured",
        "view_count",
        "comment_count",
      ].sort(),
    );
    expect(item).toMatchObject({
      // Wagtail API v2's per-item meta.
      meta: {
        type: "blog.BlogPostPage",
        detail_url: `https://api.test/api/v2/blog-posts/${newer.id}/`,
        html_url: `${getConfig(env).FRONTEND_URL.replace(/\/$/, "")}/blog/${newer.slug}/`,
        slug: newer.slug,
        first_published_at: "2026-11-01T08:00:00.000Z",
      },
      title: "Newer post",
      slug: newer.slug,
      url: `/blog/${newer.slug}/`,
      publish_date: "2026-11-01",
      excerpt: "An introduction to the post.",
      featured_image: null,
      featured_image_thumb: null,
      categories: [{ id: cat.id, name: "Houseplants", slug: cat.slug }],
      tags: [tag],
      author: null,
      reading_time: 1,
      is_featured: true,
      view_count: 0,
      comment_count: 0,
    });
  });

  it("filters by category, tag, author, series, featured and search; orders three ways; pages with limit/offset", async () => {
    const cat = await blogCategory();
    const other = await blogCategory();
    const series = await blogSeriesRow();
    const tag = `t-${crypto.randomUUID().slice(0, 6)}`;
    const author = await call("/api/v1/auth/register/", {
      json: { username: `writer${Date.now().toString(36)}`, email: `w${Date.now()}@example.com`, password: "Fern-Gully-Moss-42!" },
    });
    const writer = ((await author.json()) as { user: { id: string; username: string } }).user;
    const a = await blogPost({
      title: "Alpha ficus care",
      publishedAt: "2026-01-01T00:00:00.000Z",
      categoryIds: [cat.id],
      tags: [tag],
      viewCount: 5,
      authorId: writer.id,
      seriesId: series.id,
    });
    const b = await blogPost({
      title: "Beta orchid care",
      publishedAt: "2026-02-01T00:00:00.000Z",
      categoryIds: [other.id],
      tags: [tag],
      viewCount: 50,
      isFeatured: true,
    });
    const c = await blogPost({
      title: "Gamma ficus pruning",
      publishedAt: "2026-03-01T00:00:00.000Z",
      categoryIds: [cat.id],
      tags: [tag],
      viewCount: 10,
    });
    const ids = async (q: string) => (await listing(`tag=${tag}&${q}`)).items.map((i) => i.id);
    expect(await ids(`category_slug=${cat.slug}`)).toEqual([c.id, a.id]);
    expect(await ids(`author_username=${writer.username.toUpperCase()}`)).toEqual([a.id]);
    expect((await listing(`tag=${tag}&author_username=${writer.username}`)).items[0]!.author).toEqual({
      id: writer.id,
      username: writer.username,
      display_name: writer.username,
    });
    expect(await ids(`series_slug=${series.slug}`)).toEqual([a.id]);
    expect(await ids("featured=true")).toEqual([b.id]);
    expect(await ids("featured=false")).toEqual([c.id, a.id]);
    expect(await ids("search=ficus")).toEqual([c.id, a.id]);
    expect(await ids("search=ic")).toEqual([c.id, a.id]);
    expect(await ids("order=first_published_at")).toEqual([a.id, b.id, c.id]);
    expect(await ids("order=-view_count")).toEqual([b.id, c.id, a.id]);
    expect(await ids("limit=1&offset=1")).toEqual([b.id]);
    expect((await listing(`tag=${tag}&limit=1`)).meta.total_count).toBe(3);
    expect(await ids("type=blog.BlogPostPage&fields=*")).toEqual([c.id, b.id, a.id]);
  });

  it("answers 400 for a limit over 20 or not above 0, and other bad values", async () => {
    for (const q of ["limit=21", "limit=0", "limit=-1", "limit=abc", "offset=-1", "order=title", "featured=yes", "search=%00"]) {
      await expectError(await get(`/api/v2/blog-posts/?${q}`), 400, "VALIDATION_ERROR");
    }
  });

  // Wagtail API v2 refuses what it does not know: a misspelt filter must not list everything.
  it("answers 400 naming a query parameter it does not know, on every v2 read", async () => {
    const post = await blogPost({ title: "Known fields only" });
    for (const path of [
      "/api/v2/blog-posts/?categry_slug=ferns",
      "/api/v2/blog-posts/popular/?offset=1",
      "/api/v2/categories/?order=name",
      "/api/v2/series/?categry_slug=ferns",
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(400);
      const body = (await res.json()) as { code: string; message: string };
      expect(body.code).toBe("BAD_REQUEST");
      expect(body.message).toMatch(/^query parameter is not an operation or a recognised field: (categry_slug|offset|limit|order)$/);
    }
    // What Wagtail accepts stays accepted: its type and fields, the `_` cache-buster jQuery adds,
    // `format`, `search_operator`; and its detail view checks no query parameter at all.
    const stamp = Date.now();
    for (const path of [
      "/api/v2/blog-posts/?type=blog.BlogPostPage&fields=*&limit=1",
      `/api/v2/blog-posts/?_=${stamp}&format=json&search_operator=and`,
      `/api/v2/categories/?_=${stamp}&format=json`,
      `/api/v2/blog-posts/${post.id}/?fields=*&_=${stamp}`,
    ])
      expect((await get(path)).status, path).toBe(200);
  });

  it("with slug= gives the detail shape in items; an unknown or unpublished slug is 200 with no items", async () => {
    const post = await blogPost({ title: "Slugged" });
    const body = await listing(`slug=${post.slug}`);
    expect(body.meta.total_count).toBe(1);
    expect(body.items[0]).toMatchObject({
      id: post.id,
      introduction: expect.any(String),
      content_blocks: expect.any(Array),
      related_posts: expect.any(Array),
    });
    expect(await listing("slug=no-such-post")).toEqual({ meta: { total_count: 0 }, items: [] });
    const draft = await blogPost({ status: "draft" });
    expect(await listing(`slug=${draft.slug}`)).toEqual({ meta: { total_count: 0 }, items: [] });
  });
});

describe("GET /api/v2/blog-posts/{id}/ (detail)", () => {
  it("gives at most 3 related posts, same category first and newest first within each (API.md §5a)", async () => {
    const cat = await blogCategory();
    const tag = `cap-${crypto.randomUUID().slice(0, 6)}`;
    const post = await blogPost({ categoryIds: [cat.id], tags: [tag] });
    const inCategory = async (month: string) => blogPost({ categoryIds: [cat.id], publishedAt: `2026-${month}-01T00:00:00.000Z` });
    const [feb, apr, mar, jan] = [await inCategory("02"), await inCategory("04"), await inCategory("03"), await inCategory("01")];
    await blogPost({ tags: [tag], publishedAt: "2026-09-01T00:00:00.000Z" }); // newer, but only a tag in common
    const detail = await json<{ related_posts: { id: string }[] }>(await get(`/api/v2/blog-posts/${post.id}/`), 200);
    expect(detail.related_posts.map((r) => r.id)).toEqual([apr.id, mar.id, feb.id]);
    expect(detail.related_posts.map((r) => r.id)).not.toContain(jan.id);
  });

  it("gives the detail shape: content blocks as an array, series, related posts (same category first)", async () => {
    const cat = await blogCategory();
    const series = await blogSeriesRow("Basics");
    const tag = `rel-${crypto.randomUUID().slice(0, 6)}`;
    const ref = await storedPhoto(1600, 1200);
    const post = await blogPost({
      title: "The main one",
      categoryIds: [cat.id],
      tags: [tag],
      seriesId: series.id,
      featuredImage: ref,
      blocks: [
        { id: crypto.randomUUID(), type: "heading", value: "Soil" },
        { id: crypto.randomUUID(), type: "image", value: { image: ref, alt: "Repotting", caption: "", width: 1600, height: 1200 } },
        { id: crypto.randomUUID(), type: "quote", value: { quote_text: "<p>Roots need air.</p>", attribution: "A gardener" } },
      ],
    });
    const sameCategory = await blogPost({ title: "Same category", categoryIds: [cat.id], publishedAt: "2026-01-01T00:00:00.000Z" });
    const sameTag = await blogPost({ title: "Same tag", tags: [tag], publishedAt: "2026-06-01T00:00:00.000Z" });
    await blogPost({ title: "Hidden related", status: "draft", categoryIds: [cat.id] });
    const detail = await json<Record<string, unknown> & { content_blocks: { type: string; value: Record<string, unknown>; id: string }[] }>(
      await get(`/api/v2/blog-posts/${post.id}/`),
      200,
    );
    expect(Array.isArray(detail.content_blocks)).toBe(true);
    expect(detail.content_blocks.map((b) => b.type)).toEqual(["heading", "image", "quote"]);
    expect(detail.content_blocks[1]!.value).toMatchObject({
      id: ref,
      url: `/media/images/${ref}`,
      alt: "Repotting",
      width: 1600,
      height: 1200,
    });
    expect(detail.content_blocks[2]!.value).toEqual({ quote_text: "<p>Roots need air.</p>", attribution: "A gardener" });
    expect(detail.featured_image).toEqual({ url: `/media/images/${ref}`, width: 533, height: 400, alt: "The main one photo" });
    expect(detail.featured_image_thumb).toEqual({ url: `/media/images/${ref}`, width: 267, height: 200, alt: "The main one photo" });
    expect(detail.series).toMatchObject({ id: series.id, title: "Basics", slug: series.slug, is_completed: false, cover_image: null });
    expect((detail.related_posts as { id: string }[]).map((r) => r.id)).toEqual([sameCategory.id, sameTag.id]);
    expect((detail.related_posts as Record<string, unknown>[])[0]).toMatchObject({
      url: `/blog/${sameCategory.slug}/`,
      published_date: "2026-01-01",
    });
    expect(detail.introduction).toBe("<p>An <strong>introduction</strong> to the post.</p>");

    // The image is served from our origin, cacheable by anyone while the post is published.
    const image = await get(`/media/images/${ref}`);
    expect(image.status).toBe(200);
    expect(image.headers.get("Content-Type")).toBe("image/png");
    expect(image.headers.get("Cache-Control")).toBe("public, max-age=3600");
    await expectError(await get("/media/images/not-a-photo.png"), 404, "NOT_FOUND");
  });

  it("is 404 in the envelope for unknown, draft, review and unpublished posts", async () => {
    await expectError(await get(`/api/v2/blog-posts/${crypto.randomUUID()}/`), 404, "NOT_FOUND");
    await expectError(await get("/api/v2/blog-posts/not-an-id/"), 404, "NOT_FOUND");
    for (const status of ["draft", "review", "unpublished"] as const) {
      const hidden = await blogPost({ status });
      await expectError(await get(`/api/v2/blog-posts/${hidden.id}/`), 404, "NOT_FOUND");
    }
  });
});

describe("edge caching", () => {
  it("sends a strong ETag and public Cache-Control, answers 304 to If-None-Match, and serves hits from the cache", async () => {
    const post = await blogPost();
    const first = await get(`/api/v2/blog-posts/${post.id}/`);
    const etag = first.headers.get("ETag")!;
    expect(etag).toMatch(/^"[0-9a-f]{40}"$/);
    expect(first.headers.get("Cache-Control")).toMatch(/^public, max-age=60/);
    expect(first.headers.get("X-Cache")).toBe("MISS");
    const second = await get(`/api/v2/blog-posts/${post.id}/`);
    expect(second.headers.get("X-Cache")).toBe("HIT");
    expect(second.headers.get("ETag")).toBe(etag);
    // fetch() sends no-cache with every conditional request: still answered from the edge's ETag.
    const revalidated = await get(`/api/v2/blog-posts/${post.id}/`, {
      "If-None-Match": `"other", ${etag}`,
      "Cache-Control": "no-cache",
      Pragma: "no-cache",
    });
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get("ETag")).toBe(etag);
    expect(await revalidated.text()).toBe("");
    expect((await get(`/api/v2/blog-posts/${post.id}/`, { "If-None-Match": '"stale"' })).status).toBe(200);
    // A client asking for a fresh answer (no-cache) gets one built now (view counts have moved
    // on, so its ETag is new), and it is what the edge serves next.
    const fresh = await get(`/api/v2/blog-posts/${post.id}/`, { "Cache-Control": "no-cache" });
    expect(fresh.headers.get("X-Cache")).toBe("MISS");
    const next = await get(`/api/v2/blog-posts/${post.id}/`);
    expect(next.headers.get("X-Cache")).toBe("HIT");
    expect(next.headers.get("ETag")).toBe(fresh.headers.get("ETag"));
  });

  it("is purged when a post changes: an unpublished post disappears from cached reads at once", async () => {
    const cat = await blogCategory();
    const post = await blogPost({ title: "Soon gone", categoryIds: [cat.id] });
    expect((await listing(`category_slug=${cat.slug}`)).meta.total_count).toBe(1);
    expect((await get(`/api/v2/blog-posts/${post.id}/`)).status).toBe(200);
    expect((await get(`/api/v2/blog-posts/${post.id}/`)).headers.get("X-Cache")).toBe("HIT");
    await database(env).update(blogPosts).set({ status: "unpublished" }).where(eq(blogPosts.id, post.id));
    // Without a purge the edge would still serve it…
    expect((await get(`/api/v2/blog-posts/${post.id}/`)).status).toBe(200);
    await purgeBlogReads(env, { postIds: [post.id], slugs: [post.slug] });
    // …after it, every cached read reflects the change.
    await expectError(await get(`/api/v2/blog-posts/${post.id}/`), 404, "NOT_FOUND");
    expect((await listing(`category_slug=${cat.slug}`)).meta.total_count).toBe(0);
  });

  it("answers a credentialed CORS preflight from an allowed origin with x-request-id allowed", async () => {
    const origin = "http://localhost:5173";
    const res = await call("/api/v2/blog-posts/", {
      method: "OPTIONS",
      headers: { Origin: origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-request-id, content-type" },
    });
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe(origin);
    expect(res.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    expect(res.headers.get("Access-Control-Allow-Headers")!.toLowerCase()).toContain("x-request-id");
    const read = await get("/api/v2/blog-posts/", { Origin: origin });
    expect(read.headers.get("Access-Control-Allow-Origin")).toBe(origin);
  });
});

describe("views and popular", () => {
  it("counts every detail read exactly, hits included, per day and in total", async () => {
    const post = await blogPost();
    // The Worker's clock stopped (same isolate): a run crossing midnight UTC would split the
    // views over two days, or look for them under the next day.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now());
      await Promise.all(Array.from({ length: 20 }, () => get(`/api/v2/blog-posts/${post.id}/`)));
      await json(await get(`/api/v2/blog-posts/?slug=${post.slug}`), 200);
      const expected = 21;
      // Views are written after the answer (waitUntil): wait for them to land, as long as a
      // loaded machine needs (a fixed 2.5 s was not always enough for 21 writes).
      const viewCount = async () =>
        (await database(env).select({ v: blogPosts.viewCount }).from(blogPosts).where(eq(blogPosts.id, post.id)).get())!.v;
      let seen = 0;
      await eventually(
        async () => (seen = await viewCount()) >= expected,
        10_000,
        () => `${seen} of ${expected} views counted`,
      );
      expect(await viewCount()).toBe(expected);
      const days = await database(env).select().from(blogPostViews).where(eq(blogPostViews.postId, post.id));
      expect(days).toEqual([{ postId: post.id, day: new Date().toISOString().slice(0, 10), views: expected }]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("ranks by views in the window, then total views, then newest — a bare array", async () => {
    const tag = `pop-${crypto.randomUUID().slice(0, 6)}`;
    const oldFavourite = await blogPost({ title: "Old favourite", viewCount: 1000, tags: [tag], publishedAt: "2025-01-01T00:00:00.000Z" });
    const trending = await blogPost({ title: "Trending", viewCount: 30, tags: [tag] });
    const today = new Date().toISOString().slice(0, 10);
    await database(env)
      .insert(blogPostViews)
      .values([
        { postId: trending.id, day: today, views: 30 },
        { postId: oldFavourite.id, day: "2025-01-02", views: 1000 },
      ]);
    const recent = await json<Item[]>(await get("/api/v2/blog-posts/popular/?limit=50&days=7"), 200);
    expect(Array.isArray(recent)).toBe(true);
    const order = recent.map((i) => i.id).filter((id) => [oldFavourite.id, trending.id].includes(id));
    expect(order).toEqual([trending.id, oldFavourite.id]);
    const allTime = (await json<Item[]>(await get("/api/v2/blog-posts/popular/?limit=50&days=0"), 200))
      .map((i) => i.id)
      .filter((id) => [oldFavourite.id, trending.id].includes(id));
    expect(allTime).toEqual([oldFavourite.id, trending.id]);
    await expectError(await get("/api/v2/blog-posts/popular/?limit=51"), 400, "VALIDATION_ERROR");
  });
});

describe("categories, series, feeds and the sitemap", () => {
  it("lists categories and series in the v2 envelope", async () => {
    const cat = await blogCategory("Zeta category");
    const series = await blogSeriesRow("Zeta series");
    const cats = await json<Listing<{ id: string; name: string; slug: string; description: string }>>(
      await get("/api/v2/categories/?limit=100"),
      200,
    );
    expect(cats.items).toContainEqual({ id: cat.id, name: "Zeta category", slug: cat.slug, description: "About Zeta category." });
    expect(cats.meta.total_count).toBeGreaterThanOrEqual(1);
    const all = await json<Listing>(await get("/api/v2/series/?limit=100"), 200);
    expect(all.items).toContainEqual({
      id: series.id,
      title: "Zeta series",
      slug: series.slug,
      description: "A series.",
      cover_image: null,
      is_completed: false,
    });
  });

  it("serve RSS 2.0, Atom and a sitemap that parse as XML, with published posts only and escaped titles", async () => {
    const post = await blogPost({ title: 'Ferns & "friends" <3' });
    const draft = await blogPost({ title: "Secret draft", status: "draft" });
    const parse = async (path: string, type: RegExp) => {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("Content-Type")).toMatch(type);
      const text = await res.text();
      const errors: string[] = [];
      const doc = new DOMParser({ onError: (level, msg) => void (level !== "warning" && errors.push(msg)) }).parseFromString(
        text,
        "application/xml",
      );
      expect(errors).toEqual([]);
      expect(text).not.toContain(draft.slug);
      return { doc, text };
    };
    const rss = await parse("/blog/feed.rss", /application\/rss\+xml/);
    expect(rss.doc.documentElement!.getAttribute("version")).toBe("2.0");
    const titles = Array.from(rss.doc.getElementsByTagName("item")).map((i) => i.getElementsByTagName("title")[0]!.textContent);
    expect(titles).toContain('Ferns & "friends" <3');
    expect(rss.text).toContain(`http://localhost:5173/blog/${post.slug}/`);
    const atom = await parse("/blog/feed.atom", /application\/atom\+xml/);
    expect(atom.doc.documentElement!.namespaceURI).toBe("http://www.w3.org/2005/Atom");
    expect(Array.from(atom.doc.getElementsByTagName("id")).map((n) => n.textContent)).toContain(`urn:uuid:${post.id}`);
    const sitemap = await parse("/sitemap.xml", /application\/xml/);
    expect(Array.from(sitemap.doc.getElementsByTagName("loc")).map((n) => n.textContent)).toContain(
      `http://localhost:5173/blog/${post.slug}/`,
    );
  });
});
