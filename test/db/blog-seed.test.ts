/**
 * The blog's demo seed (seed/blog.json → src/db/seed.ts): it loads, re-loads harmlessly, every
 * post is published and searchable, and each stored block is exactly what the editorial service
 * (`prepareBlocks`) stores for the same input — the seed cannot drift from the rules.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import seedBlog from "../../seed/blog.json";
import seedSpecies from "../../seed/species.json";
import { database } from "../../src/db/client";
import { blogSeedStatements, type SeedBlog, type SeedSpecies, seedSpeciesId, speciesSeedStatements } from "../../src/db/seed";
import { blogPosts, users } from "../../src/db/schema";
import { prepareBlocks } from "../../src/services/blog-blocks";
import { call, jsonWithStatus as json } from "../helpers/http";

const blog = seedBlog as SeedBlog;
const load = async () => {
  const statements = [
    ...(await speciesSeedStatements(seedSpecies as SeedSpecies[])),
    ...(await blogSeedStatements(blog, seedSpecies as SeedSpecies[])),
  ];
  await env.DB.batch(statements.map((s) => env.DB.prepare(s)));
};

beforeAll(load);

describe("blog seed", () => {
  it("publishes every post once, by an editors' account that cannot sign in, and loading again changes nothing", async () => {
    const db = database(env);
    const slugs = blog.posts.map((p) => p.slug);
    const rows = await db.select().from(blogPosts);
    const seeded = rows.filter((r) => slugs.includes(r.slug));
    expect(seeded).toHaveLength(blog.posts.length);
    expect(seeded.every((r) => r.status === "published" && r.firstPublishedAt && r.readingTime >= 1 && r.excerpt.length > 0)).toBe(true);
    const author = await db.select().from(users).where(eq(users.username, blog.author.username)).get();
    expect(author).toMatchObject({ role: "editor", passwordHash: null });
    await load();
    expect((await db.select().from(blogPosts)).filter((r) => slugs.includes(r.slug))).toHaveLength(blog.posts.length);
  });

  it("stores each block as the editorial service would", async () => {
    const db = database(env);
    for (const post of blog.posts) {
      const input = await Promise.all(
        post.content_blocks.map(async (b) => {
          if (b.type !== "plant_spotlight") return b;
          const { species, ...rest } = b.value as { species: string };
          return { type: b.type, value: { ...rest, species_id: await seedSpeciesId(species) } };
        }),
      );
      const expected = await prepareBlocks(env, input);
      const row = await db.select().from(blogPosts).where(eq(blogPosts.slug, post.slug)).get();
      const withoutIds = (blocks: { type: string; value: unknown }[]) => blocks.map(({ type, value }) => ({ type, value }));
      expect(withoutIds(row!.contentBlocks), post.slug).toEqual(withoutIds(expected));
    }
  });

  it("is found by unified search", async () => {
    const body = await json<{ results: { blog: { slug: string }[] } }>(await call("/api/v1/search/?q=watering&types=blog"), 200);
    expect(body.results.blog.map((h) => h.slug)).toContain("watering-without-guesswork");
  });
});
