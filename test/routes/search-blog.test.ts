/**
 * Blog posts in unified search and suggestions: only published posts, ever, and the index follows
 * every publish, edit, unpublish and delete (migration 0014's triggers). Posts are written with
 * drizzle directly so this file tests search alone; the editorial API has its own tests.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { blogPosts } from "../../src/db/schema";
import { postSearchText } from "../../src/services/blog-blocks";
import { call, jsonWithStatus as json } from "../helpers/http";

interface Hit {
  type: string;
  id: string;
  title: string;
  snippet: string;
  url: string;
  score: number;
  slug: string;
  publish_date: string;
}
interface SearchBody {
  results: { blog?: Hit[] };
  counts: { blog?: number };
}
const blogSearch = async (q: string) => json<SearchBody>(await call(`/api/v1/search/?q=${encodeURIComponent(q)}&types=blog&limit=20`), 200);
const suggestions = async (q: string) =>
  (await json<{ suggestions: { text: string; type: string }[] }>(await call(`/api/v1/search/suggestions/?q=${encodeURIComponent(q)}`), 200))
    .suggestions;

const tag = crypto.randomUUID().slice(0, 8);
async function post(
  title: string,
  paragraph: string,
  status: "draft" | "review" | "published" | "unpublished",
  publishedAt = "2026-11-01T08:00:00.000Z",
) {
  const id = crypto.randomUUID();
  const blocks = [{ id: crypto.randomUUID(), type: "paragraph", value: `<p>${paragraph}</p>` }];
  await database(env)
    .insert(blogPosts)
    .values({
      id,
      slug: `${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${crypto.randomUUID().slice(0, 6)}`,
      title,
      introduction: "<p>An introduction.</p>",
      contentBlocks: blocks,
      status,
      searchText: postSearchText("<p>An introduction.</p>", blocks),
      firstPublishedAt: status === "published" ? publishedAt : null,
    });
  return id;
}
const setStatus = (id: string, status: "draft" | "published" | "unpublished") =>
  database(env).update(blogPosts).set({ status, firstPublishedAt: "2026-11-02T08:00:00.000Z" }).where(eq(blogPosts.id, id));

describe("blog posts in unified search", () => {
  it("finds published posts by title and block text, never drafts, reviews or unpublished posts", async () => {
    const published = await post(`Repotting ${tag} orchids`, `Use bark, not soil, for ${tag} epiphytes.`, "published");
    await post(`Draft ${tag} orchids`, `secret ${tag} draft text`, "draft");
    await post(`Review ${tag} orchids`, `secret ${tag} review text`, "review");
    await post(`Gone ${tag} orchids`, `secret ${tag} unpublished text`, "unpublished");

    const byTitle = await blogSearch(`${tag} orchids`);
    expect(byTitle.counts.blog).toBe(1);
    expect(byTitle.results.blog).toEqual([
      expect.objectContaining({
        type: "blog",
        id: published,
        url: `/api/v2/blog-posts/${published}/`,
        publish_date: "2026-11-01",
        score: 0.6,
      }),
    ]);
    const byBody = await blogSearch(`bark, not soil, for ${tag}`);
    expect(byBody.results.blog!.map((h) => h.id)).toEqual([published]);
    expect(byBody.results.blog![0]!.score).toBe(0.4);
    expect(byBody.results.blog![0]!.snippet).toContain(`bark, not soil, for ${tag}`);
    expect(byBody.results.blog![0]!.snippet).not.toMatch(/[<>]/);
    expect((await blogSearch(`secret ${tag}`)).counts.blog).toBe(0);
  });

  it("follows publish, edit, unpublish and delete", async () => {
    const id = await post(`Winter ${tag} cacti`, `Keep ${tag} cacti cool and dry.`, "draft");
    expect((await blogSearch(`winter ${tag} cacti`)).counts.blog).toBe(0);
    await setStatus(id, "published");
    expect((await blogSearch(`winter ${tag} cacti`)).results.blog!.map((h) => h.id)).toEqual([id]);

    await database(env)
      .update(blogPosts)
      .set({ title: `Summer ${tag} cacti` })
      .where(eq(blogPosts.id, id));
    expect((await blogSearch(`winter ${tag} cacti`)).counts.blog).toBe(0);
    expect((await blogSearch(`summer ${tag} cacti`)).results.blog![0]).toMatchObject({ id, score: 1 });

    await setStatus(id, "unpublished");
    expect((await blogSearch(`summer ${tag} cacti`)).counts.blog).toBe(0);
    await setStatus(id, "published");
    expect((await blogSearch(`summer ${tag} cacti`)).counts.blog).toBe(1);
    await database(env).delete(blogPosts).where(eq(blogPosts.id, id));
    expect((await blogSearch(`summer ${tag} cacti`)).counts.blog).toBe(0);
  });

  it("answers queries shorter than a trigram, quotes and FTS syntax literally", async () => {
    const id = await post(`Zq ${tag} "quoted" AND NEAR(tips)`, `Short ${tag} words.`, "published");
    await post(`Zq ${tag} hidden`, "draft only", "draft");
    const short = await blogSearch("zq");
    expect(short.results.blog!.map((h) => h.id)).toContain(id);
    expect(short.results.blog!.every((h) => !h.title.includes("hidden"))).toBe(true);
    expect((await blogSearch(`"quoted" AND NEAR(tips)`)).results.blog!.map((h) => h.id)).toEqual([id]);
    for (const hostile of ['"', "*", "NEAR(", "a OR b", "title:x", "^x"]) {
      const res = await call(`/api/v1/search/?q=${encodeURIComponent(hostile)}&types=blog`);
      expect(res.status, hostile).toBe(200);
    }
  });

  it("suggests published titles only", async () => {
    await post(`Fernery ${tag} basics`, "Ferns like shade.", "published");
    await post(`Fernery ${tag} secrets`, "Not yet.", "review");
    const found = await suggestions(`fernery ${tag}`);
    expect(found).toEqual([{ text: `Fernery ${tag} basics`, type: "blog" }]);
  });
});
