import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import seedSpecies from "../../seed/species.json";
import { seedSpeciesId, speciesSeedStatements, type SeedSpecies } from "../../src/db/seed";

describe("migrations", () => {
  it("created every table and the seed system's indexes", async () => {
    const { results } = await env.DB.prepare("SELECT type, name FROM sqlite_master WHERE type IN ('table','index')").all<{
      type: string;
      name: string;
    }>();
    const names = new Set(results.map((r) => r.name));
    for (const table of [
      "users",
      "species",
      "identification_requests",
      "identification_results",
      "votes",
      "collections",
      "user_plants",
      "refresh_tokens",
      "revoked_tokens",
      "password_reset_tokens",
      "ws_tickets",
      "oauth_states",
      "oauth_accounts",
      "retired_usernames",
      "two_factor",
    ]) {
      expect(names, table).toContain(table);
    }
    for (const index of [
      "requests_user_created_idx",
      "results_confidence_idx",
      "species_popularity_idx",
      "species_scientific_name_unique",
      "votes_result_user_unique",
    ]) {
      expect(names, index).toContain(index);
    }
  });

  it("enforces one vote per user per result and unique scientific names", async () => {
    await env.DB.prepare("INSERT INTO species (id, scientific_name) VALUES ('s-1', 'Monstera deliciosa')").run();
    await expect(env.DB.prepare("INSERT INTO species (id, scientific_name) VALUES ('s-2', 'MONSTERA DELICIOSA')").run()).rejects.toThrow(
      /UNIQUE/,
    );
    await env.DB.batch([
      env.DB.prepare("INSERT INTO users (id, username, email) VALUES ('u-1', 'voter', 'voter@example.com')"),
      env.DB.prepare("INSERT INTO identification_requests (id, user_id, image_hashes) VALUES ('r-1', 'u-1', '[]')"),
      env.DB.prepare(
        "INSERT INTO identification_results (id, request_id, scientific_name, confidence_score, identification_source, rank) VALUES ('res-1', 'r-1', 'Monstera deliciosa', 0.9, 'ai_combined', 1)",
      ),
      env.DB.prepare("INSERT INTO votes (id, result_id, user_id, vote_type) VALUES ('v-1', 'res-1', 'u-1', 'upvote')"),
    ]);
    await expect(
      env.DB.prepare("INSERT INTO votes (id, result_id, user_id, vote_type) VALUES ('v-2', 'res-1', 'u-1', 'downvote')").run(),
    ).rejects.toThrow(/UNIQUE/);
  });
});

describe("species seed", () => {
  it("ships at least 300 real species with light and water needs", () => {
    const entries = seedSpecies as SeedSpecies[];
    expect(entries.length).toBeGreaterThanOrEqual(300);
    const withCare = entries.filter((s) => s.light_requirements && s.water_requirements);
    expect(withCare.length / entries.length).toBeGreaterThan(0.9);
    expect(entries.every((s) => s.scientific_name.split(" ")[0] === s.genus)).toBe(true);
  });

  it("loads into D1 idempotently with stable ids", async () => {
    const statements = await speciesSeedStatements(seedSpecies as SeedSpecies[]);
    await env.DB.batch(statements.map((s) => env.DB.prepare(s)));
    await env.DB.batch(statements.map((s) => env.DB.prepare(s))); // second run changes nothing
    const count = await env.DB.prepare("SELECT count(*) AS n FROM species WHERE source = 'seed'").first<{ n: number }>();
    expect(count?.n).toBe((seedSpecies as SeedSpecies[]).length);
    const rose = await env.DB.prepare("SELECT id, family, common_names FROM species WHERE scientific_name = 'Rosa canina'").first<{
      id: string;
      family: string;
      common_names: string;
    }>();
    if (rose) {
      expect(rose.family).toBe("Rosaceae");
      expect(rose.id).toBe(await seedSpeciesId("Rosa canina"));
      expect(JSON.parse(rose.common_names)).toBeInstanceOf(Array);
    }
    // Names with quotes survive SQL literal escaping.
    const anyWithQuote = (seedSpecies as SeedSpecies[]).find((s) => s.description.includes("'"));
    if (anyWithQuote) {
      const row = await env.DB.prepare("SELECT description FROM species WHERE scientific_name = ?")
        .bind(anyWithQuote.scientific_name)
        .first<{ description: string }>();
      expect(row?.description).toBe(anyWithQuote.description);
    }
  });
});

describe("0013: one reference form for photos", () => {
  it("rewrites plants' R2 keys and avatars' old keys to plain references, and leaves references alone", async () => {
    const migration = (env.TEST_MIGRATIONS as { name: string; queries: string[] }[]).find((m) => m.name.startsWith("0013_"))!;
    expect(migration).toBeDefined();
    const sha = "a".repeat(64);
    const userId = crypto.randomUUID();
    const collectionId = crypto.randomUUID();
    await env.DB.batch([
      env.DB.prepare("INSERT INTO users (id, username, email, password_hash, avatar_key) VALUES (?, ?, ?, '', ?)").bind(
        userId,
        `legacy${Date.now()}`,
        `legacy${Date.now()}@example.com`,
        `avatars/${sha}.png`,
      ),
      env.DB.prepare("INSERT INTO collections (id, user_id, name) VALUES (?, ?, 'Legacy')").bind(collectionId, userId),
      env.DB.prepare("INSERT INTO user_plants (id, user_id, collection_id, image_key) VALUES (?, ?, ?, ?)").bind(
        crypto.randomUUID(),
        userId,
        collectionId,
        `images/${sha}.jpg`,
      ),
      env.DB.prepare("INSERT INTO user_plants (id, user_id, collection_id, image_key) VALUES (?, ?, ?, ?)").bind(
        crypto.randomUUID(),
        userId,
        collectionId,
        `${sha}.webp`,
      ),
    ]);
    for (const query of migration.queries) await env.DB.prepare(query).run();
    const plants = await env.DB.prepare("SELECT image_key FROM user_plants WHERE user_id = ? ORDER BY image_key").bind(userId).all();
    expect(plants.results.map((r) => r.image_key)).toEqual([`${sha}.jpg`, `${sha}.webp`]);
    const user = await env.DB.prepare("SELECT avatar_key FROM users WHERE id = ?").bind(userId).first();
    expect(user!.avatar_key).toBe(`${sha}.png`);
  });
});

describe("0029: the blog's media library", () => {
  it("takes in every photo the blog already holds — featured images, image blocks, revisions, series covers — and nothing else", async () => {
    const migration = (env.TEST_MIGRATIONS as { name: string; queries: string[] }[]).find((m) => m.name.startsWith("0029_"))!;
    expect(migration).toBeDefined();
    const hex = () => Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
    const [featured, block, revised, cover, mentioned] = [`${hex()}.jpg`, `${hex()}.png`, `${hex()}.webp`, `${hex()}.png`, `${hex()}.png`];
    const postId = crypto.randomUUID();
    const blocks = [
      { id: "b1", type: "image", value: { image: block, alt: "A leaf", caption: "", width: 10, height: 10 } },
      { id: "b2", type: "plant_spotlight", value: { species_id: "x", image: { url: "https://example.com/a.jpg", alt: "A" } } },
      { id: "b3", type: "paragraph", value: `<p>image ${mentioned}</p>` },
    ];
    await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO blog_posts (id, slug, title, content_blocks, status, featured_image, featured_image_alt) VALUES (?, ?, 'Legacy', ?, 'draft', ?, 'A')",
      ).bind(postId, `legacy-${postId}`, JSON.stringify(blocks), featured),
      env.DB.prepare("INSERT INTO blog_revisions (id, post_id, number, snapshot) VALUES (?, ?, 1, ?)").bind(
        crypto.randomUUID(),
        postId,
        JSON.stringify({ featured_image: revised, content_blocks: [] }),
      ),
      env.DB.prepare("INSERT INTO blog_series (id, slug, title, cover_image) VALUES (?, ?, 'Legacy', ?)").bind(
        crypto.randomUUID(),
        `legacy-series-${postId}`,
        cover,
      ),
    ]);
    for (const query of migration.queries.filter((q) => /^\s*(--[^\n]*\n\s*)*INSERT/i.test(q))) await env.DB.prepare(query).run();
    const found = await env.DB.prepare("SELECT ref FROM blog_images WHERE ref IN (?, ?, ?, ?, ?)")
      .bind(featured, block, revised, cover, mentioned)
      .all();
    // Not a reference-like word in a paragraph's text.
    expect(found.results.map((r) => r.ref).sort()).toEqual([featured, block, revised, cover].sort());
    const url = await env.DB.prepare("SELECT count(*) AS n FROM blog_images WHERE ref LIKE 'https:%'").first<{ n: number }>();
    expect(url!.n).toBe(0);
  });
});

describe("0033: post counts from the posts that stand", () => {
  it("lowers a count that includes deleted posts to the live posts, and never raises one", async () => {
    const migration = (env.TEST_MIGRATIONS as { name: string; queries: string[] }[]).find((m) => m.name.startsWith("0033_"))!;
    expect(migration).toBeDefined();
    const stamp = `${Date.now()}${Math.random().toString(36).slice(2, 8)}`;
    const [inflated, seeded] = [crypto.randomUUID(), crypto.randomUUID()];
    const topicId = crypto.randomUUID();
    const category = await env.DB.prepare("SELECT id FROM forum_categories LIMIT 1").first<{ id: string }>();
    const post = (author: string, deleted: number) =>
      env.DB.prepare("INSERT INTO forum_posts (id, topic_id, author_id, body, is_first, is_deleted) VALUES (?, ?, ?, 'A post', 0, ?)").bind(
        crypto.randomUUID(),
        topicId,
        author,
        deleted,
      );
    await env.DB.batch([
      // Six posts counted, five of them deleted before deletes took posts off the count.
      env.DB.prepare("INSERT INTO users (id, username, email, password_hash, post_count) VALUES (?, ?, ?, '', 6)").bind(
        inflated,
        `inflated${stamp}`,
        `inflated${stamp}@example.com`,
      ),
      // A count below the live posts (written by something other than a forum post) is left alone.
      env.DB.prepare("INSERT INTO users (id, username, email, password_hash, post_count) VALUES (?, ?, ?, '', 1)").bind(
        seeded,
        `seeded${stamp}`,
        `seeded${stamp}@example.com`,
      ),
      env.DB.prepare("INSERT INTO forum_topics (id, category_id, author_id, title) VALUES (?, ?, ?, 'Legacy topic')").bind(
        topicId,
        category!.id,
        inflated,
      ),
      post(inflated, 0),
      ...Array.from({ length: 5 }, () => post(inflated, 1)),
      post(seeded, 0),
      post(seeded, 0),
    ]);
    for (const query of migration.queries) await env.DB.prepare(query).run();
    const counts = await env.DB.prepare("SELECT id, post_count FROM users WHERE id IN (?, ?)")
      .bind(inflated, seeded)
      .all<{ id: string; post_count: number }>();
    const byId = Object.fromEntries(counts.results.map((r) => [r.id, r.post_count]));
    expect(byId[inflated]).toBe(1);
    // Two live posts but a count of 1: never raised.
    expect(byId[seeded]).toBe(1);
  });
});
