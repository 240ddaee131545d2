/**
 * Unified search and suggestions through the Worker: species from the seed catalogue, forum
 * topics and posts written through the API, confirmed diseases inserted directly.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import seedSpecies from "../../seed/species.json";
import { speciesSeedStatements, type SeedSpecies } from "../../src/db/seed";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { bearerUser } from "../helpers/users";

interface Hit {
  type: string;
  id: string;
  title: string;
  snippet: string;
  url: string;
  score: number;
  post_id?: string | null;
  category?: string;
  common_names?: string[];
}
interface SearchBody {
  query: string;
  results: Record<string, Hit[]>;
  counts: Record<string, number>;
  total: number;
}
interface Suggestions {
  query: string;
  suggestions: { text: string; type: "species" | "forum" }[];
}

const API = "/api/v1/forum";
const search = async (query: string) => json<SearchBody>(await call(`/api/v1/search/?${query}`), 200);
const q = (text: string, extra = "") => search(`q=${encodeURIComponent(text)}${extra}`);

let writer: Awaited<ReturnType<typeof bearerUser>>;
const topic = async (title: string, body: string, slug = "houseplants") =>
  json<{ id: string; first_post: { id: string } }>(
    await call(`${API}/categories/${slug}/topics/`, { bearer: writer.access, json: { title, body } }),
    201,
  );
const reply = async (topicId: string, body: string) =>
  json<{ id: string }>(await call(`${API}/topics/${topicId}/posts/`, { bearer: writer.access, json: { body } }), 201);

async function confirmedDisease(
  userId: string,
  name: string,
  description: string,
  opts: { confirmed?: boolean; commonNames?: string[]; type?: string } = {},
) {
  const requestId = crypto.randomUUID();
  await env.DB.batch([
    env.DB.prepare(
      "INSERT INTO disease_requests (id, user_id, status, image_hashes, symptoms_description) VALUES (?, ?, 'identified', '[]', 'spots')",
    ).bind(requestId, userId),
    env.DB.prepare(
      `INSERT INTO disease_results (id, request_id, name, common_names, probability, description, disease_type, rank, is_confirmed, confirmed_at)
       VALUES (?, ?, ?, ?, 0.9, ?, ?, 1, ?, ?)`,
    ).bind(
      crypto.randomUUID(),
      requestId,
      name,
      JSON.stringify(opts.commonNames ?? []),
      description,
      opts.type ?? "fungal",
      opts.confirmed === false ? 0 : 1,
      opts.confirmed === false ? null : new Date().toISOString(),
    ),
  ]);
}

beforeAll(async () => {
  const statements = await speciesSeedStatements(seedSpecies as SeedSpecies[]);
  await env.DB.batch(statements.map((s) => env.DB.prepare(s)));
  // Popularity alone would put the "coastal rosemary" first for "rosemary".
  await env.DB.prepare("UPDATE species SET identification_count = 500 WHERE scientific_name = 'Westringia fruticosa'").run();
  await env.DB.prepare("UPDATE species SET identification_count = 42 WHERE scientific_name = 'Monstera deliciosa'").run();
  writer = await bearerUser();
});

describe("unified search", () => {
  it("groups hits by type with counts and total, ranks exact/prefix first, and is cacheable", async () => {
    await topic("Rosemary cuttings won't root", "I put them in water two weeks ago.", "propagation");
    await confirmedDisease(writer.userId, "Rosemary blight", "Brown needles spreading from the tips of rosemary.");
    const res = await call("/api/v1/search/?q=%20Rosemary%20");
    expect(res.headers.get("Cache-Control")).toBe("public, max-age=30");
    const body = await json<SearchBody>(res, 200);
    expect(body.query).toBe("Rosemary");
    expect(Object.keys(body.results).sort()).toEqual(["blog", "diseases", "forum", "species"]);
    expect(body.total).toBe(body.counts.species! + body.counts.blog! + body.counts.forum! + body.counts.diseases!);
    expect(body.counts.forum).toBe(1);
    expect(body.counts.diseases).toBe(1);

    const species = body.results.species!;
    // Exact common name first, despite the "coastal rosemary" being far more popular.
    expect(species[0]).toMatchObject({ type: "species", title: "Salvia rosmarinus", score: 1 });
    expect(species[0]!.url).toBe(`/api/v1/plant-identification/species/${species[0]!.id}/`);
    expect(species[0]!.snippet).toContain("rosemary");
    expect(species.map((s) => s.title)).toContain("Westringia fruticosa");
    expect(species.length).toBeLessThanOrEqual(5);
    const scores = species.map((s) => s.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));

    expect(body.results.forum![0]).toMatchObject({
      type: "forum",
      title: "Rosemary cuttings won't root",
      score: 0.8,
      category: "propagation",
      post_id: null,
    });
    expect(body.results.forum![0]!.snippet).toBe("I put them in water two weeks ago.");
    expect(body.results.diseases![0]).toMatchObject({
      type: "diseases",
      title: "Rosemary blight",
      score: 0.8,
      url: "/api/v1/plant-identification/disease-database/?search=Rosemary%20blight",
    });
    expect(body.results.diseases![0]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("tolerates typos in species names", async () => {
    const body = await q("monstra", "&types=species");
    expect(body.results.species!.slice(0, 3).map((h) => h.title)).toContain("Monstera deliciosa");
    // No name contains "monstra": every hit is a typo-tolerant one.
    expect(new Set(body.results.species!.map((h) => h.score))).toEqual(new Set([0.3]));
    expect(body.counts.species).toBeGreaterThanOrEqual(3);
    // Literal hits outrank typo-tolerant ones: name prefix, then a word's prefix ("mini monstera");
    // rows that only share a trigram with the query are below the relevance floor.
    const literal = await q("monster", "&types=species&limit=20");
    expect(literal.results.species!.map((h) => [h.title, h.score])).toEqual([
      ["Monstera deliciosa", 0.8],
      ["Monstera adansonii", 0.8],
      ["Rhaphidophora tetrasperma", 0.7],
    ]);
    expect(literal.counts.species).toBe(3);
  });

  it("ranks forum topics: exact title, prefix, contains, then body-only; deleted posts never match", async () => {
    const exact = await topic("Mealybug invasion", "Cotton-like clusters on the stems.");
    const contains = await topic("Help: mealybug invasion on cactus", "They are in every crevice.");
    const prefix = await topic("Mealybug invasion again this spring", "Same plant as last year.");
    const bodyOnly = await topic(
      "Sticky leaves on my hoya",
      "<p>I think it is a <strong>mealybug invasion</strong> &amp; maybe scale.</p>",
    );
    const unrelated = await topic("Watering schedule for succulents", "Once every two weeks.");
    const deleted = await reply(unrelated.id, "Secret word: grubwormzz and a mealybug invasion story.");
    expect((await call(`${API}/posts/${deleted.id}/`, { method: "DELETE", bearer: writer.access })).status).toBe(204);

    const body = await q("MEALYBUG INVASION", "&types=forum");
    expect(body.results.forum!.map((h) => h.id)).toEqual([exact.id, prefix.id, contains.id, bodyOnly.id]);
    expect(body.results.forum!.map((h) => h.score)).toEqual([1, 0.8, 0.6, 0.4]);
    expect(body.counts).toEqual({ forum: 4 });
    const hit = body.results.forum!.at(-1)!;
    expect(hit.post_id).toBe(bodyOnly.first_post.id);
    expect(hit.snippet).toBe("I think it is a mealybug invasion & maybe scale.");

    // Markup is not text; escaped entities are matched as the text they show.
    expect((await q("strong", "&types=forum")).counts.forum).toBe(0);
    expect((await q("invasion & maybe", "&types=forum")).results.forum!.map((h) => h.id)).toEqual([bodyOnly.id]);
    // A deleted post's words find nothing, and an edited post is found by its new text only.
    expect((await q("grubwormzz", "&types=forum")).counts.forum).toBe(0);
    const edited = await reply(unrelated.id, "Original wording: oldwordqq.");
    expect(
      (await call(`${API}/posts/${edited.id}/`, { method: "PATCH", bearer: writer.access, json: { body: "New wording: newwordqq." } }))
        .status,
    ).toBe(200);
    expect((await q("oldwordqq", "&types=forum")).counts.forum).toBe(0);
    expect((await q("newwordqq", "&types=forum")).results.forum!.map((h) => [h.id, h.post_id])).toEqual([[unrelated.id, edited.id]]);

    // A deleted opening post leaves the title findable but feeds no snippet.
    const weevil = await topic("Vine weevil larvae in pots", "Private detail: hiddenzz.");
    expect((await call(`${API}/posts/${weevil.first_post.id}/`, { method: "DELETE", bearer: writer.access })).status).toBe(204);
    const found = await q("vine weevil", "&types=forum");
    expect(found.results.forum).toEqual([expect.objectContaining({ id: weevil.id, snippet: "", post_id: null })]);
    expect((await q("hiddenzz", "&types=forum")).counts.forum).toBe(0);
  });

  it("finds through the post index exactly the topics that testing every live post finds, and the index follows every write", async () => {
    const ficus = await topic("Leaf drop after moving", "My FICUS Lyrata drops leaves since the move.");
    await reply(ficus.id, "Mine did the same, an ant trail too, and zz plant next to it.");
    const basil = await topic("Herb trouble", "Über-fertilised basil turned yellow.");
    const gone = await topic("To be removed", "Temporary text: vanishqq.");
    // Hard delete: the topic's posts go by cascade, through the index's delete trigger.
    await env.DB.prepare("DELETE FROM forum_topics WHERE id = ?").bind(gone.id).run();

    // The yardstick: every live post tested with instr, as before the index (plain words, so
    // markup stripping makes no difference).
    const everyPost = async (text: string) => {
      const ql = text.toLowerCase();
      const longest = ql.split(" ").reduce((a, b) => (b.length > a.length ? b : a), "");
      const row = await env.DB.prepare(
        `SELECT count(*) AS n FROM forum_topics t WHERE instr(lower(t.title), ?1) > 0 OR EXISTS (
           SELECT 1 FROM forum_posts p WHERE p.topic_id = t.id AND p.is_deleted = 0 AND instr(lower(p.body), ?2) > 0 AND instr(lower(p.body), ?1) > 0)`,
      )
        .bind(ql, longest)
        .first<{ n: number }>();
      return row!.n;
    };
    for (const text of ["ficus lyrata", "Ficus", "LYRATA DROPS", "ant", "zz", "zz plant", "über", "basil", "vanishqq", "the", "leaves"]) {
      const found = await q(text, "&types=forum");
      expect(found.counts.forum, text).toBe(await everyPost(text));
      // The count is every match, not the page's.
      const one = await q(text, "&types=forum&limit=1");
      expect(one.counts.forum, text).toBe(found.counts.forum);
      expect(one.results.forum, text).toHaveLength(Math.min(1, found.counts.forum!));
    }
    expect((await q("the", "&types=forum")).counts.forum).toBeGreaterThan(1);
    expect((await q("lyrata", "&types=forum")).results.forum!.map((h) => h.id)).toEqual([ficus.id]);
    expect((await q("ant trail", "&types=forum")).results.forum!.map((h) => h.id)).toEqual([ficus.id]);
    expect((await q("zz", "&types=forum")).results.forum!.map((h) => h.id)).toEqual([ficus.id]);
    expect((await q("vanishqq", "&types=forum")).counts.forum).toBe(0);
    expect((await q("basil", "&types=forum")).results.forum!.map((h) => h.id)).toEqual([basil.id]);
    // The external-content index agrees with the posts it indexes after inserts, edits and deletes.
    await env.DB.prepare("INSERT INTO forum_posts_fts (forum_posts_fts, rank) VALUES ('integrity-check', 1)").run();
  });

  it("a query of only 1–2-letter words tests the latest SEARCH_SHORT_WORD_POSTS posts' text, and every title", async () => {
    const { searchForumGroup } = await import("../../src/services/search");
    const old = await topic("Repotting question", "My pot says qv on the bottom.");
    const titled = await topic("What does qv mean on a label", "Asking for a friend.");
    // Newer posts push the first topic's opening post out of a window of three.
    for (let i = 0; i < 3; i++) await reply(titled.id, `Reply number ${i}.`);
    const narrow = { ...env, SEARCH_SHORT_WORD_POSTS: "3" } as Env;
    const found = await searchForumGroup(narrow, "qv", 10);
    expect(found.hits.map((h) => h.id)).toEqual([titled.id]);
    expect(found.total).toBe(1);
    // With the whole forum in the window (the default), the old post's text is found as before.
    expect((await searchForumGroup(env, "qv", 10)).hits.map((h) => h.id).sort()).toEqual([old.id, titled.id].sort());
    // A word of three letters or more uses the index: no window.
    expect((await searchForumGroup(narrow, "bottom", 10)).hits.map((h) => h.id)).toEqual([old.id]);
  });

  it("finds and ranks forum titles whatever their case in any script", async () => {
    const id = crypto.randomUUID().slice(0, 8);
    const exact = await topic(`Übersicht ${id}`, "Welche Gießkanne?");
    const prefix = await topic(`ÜBERSICHT ${id} der Kakteen`, "Bitte helfen.");
    const body = await q(`übersicht ${id}`, "&types=forum");
    expect(body.results.forum!.map((h) => [h.id, h.score])).toEqual([
      [exact.id, 1],
      [prefix.id, 0.8],
    ]);
  });

  it("matches % and _ literally", async () => {
    const percent = await topic("Using 50% shade cloth for lettuce", "Keeps it from bolting.");
    await topic("Using 500 shade cloth rolls", "Not a percentage.");
    const underscore = await topic("snake_plant watering", "Rarely.");
    await topic("snakeXplant watering", "Rarely too.");
    expect((await q("50%", "&types=forum")).results.forum!.map((h) => h.id)).toEqual([percent.id]);
    expect((await q("e_p", "&types=forum")).results.forum!.map((h) => h.id)).toEqual([underscore.id]);
    expect((await q("%", "&types=species,diseases")).counts).toEqual({ species: 0, diseases: 0 });
    expect((await q("_", "&types=species")).counts.species).toBe(0);
  });

  it("lists only confirmed diseases, exact name first, searchable by common name and description", async () => {
    await confirmedDisease(writer.userId, "Powdery mildew", "White powder on leaves.", { commonNames: ["oidium"] });
    await confirmedDisease(writer.userId, "Powdery mildew", "White dusty coating.");
    await confirmedDisease(writer.userId, "Downy mildew", "Yellow patches above, grey fuzz below.", { type: "oomycete" });
    await confirmedDisease(writer.userId, "Mildew rot", "Never confirmed.", { confirmed: false });

    const body = await q("powdery mildew", "&types=diseases");
    expect(body.results.diseases![0]).toMatchObject({ title: "Powdery mildew", score: 1 });
    const mildew = await q("mildew", "&types=diseases");
    expect(mildew.counts.diseases).toBe(2);
    // Equal scores: most confirmed first.
    expect(mildew.results.diseases!.map((h) => [h.title, h.score])).toEqual([
      ["Powdery mildew", 0.6],
      ["Downy mildew", 0.6],
    ]);
    expect((await q("grey fuzz", "&types=diseases")).results.diseases!.map((h) => [h.title, h.score, h.snippet])).toEqual([
      ["Downy mildew", 0.4, "Yellow patches above, grey fuzz below."],
    ]);
    expect((await q("mildew rot", "&types=diseases")).counts.diseases).toBe(0);
  });

  it("filters by types and limits per type", async () => {
    const only = await q("rose", "&types=species");
    expect(Object.keys(only.results)).toEqual(["species"]);
    expect(only.total).toBe(only.counts.species);
    const limited = await q("rose", "&types=species,forum&limit=2");
    expect(limited.results.species).toHaveLength(2);
    expect(limited.counts.species).toBeGreaterThan(2);
    const full = await q("rose", "&types=species&limit=20");
    expect(full.results.species).toHaveLength(20);
    // The top of a longer list is the shorter list.
    expect(full.results.species!.slice(0, 2)).toEqual(limited.results.species);
    expect(full.results.species![0]!.score).toBeGreaterThanOrEqual(0.8);

    const two = await q("rose", "&types=blog,%20Species");
    expect(Object.keys(two.results).sort()).toEqual(["blog", "species"]);
  });

  it("rejects bad input with 400", async () => {
    for (const query of [
      "",
      "q=",
      "q=%20%20",
      `q=${"a".repeat(101)}`,
      "q=rose&types=plants",
      "q=rose&limit=0",
      "q=rose&limit=51",
      "q=rose&limit=x",
    ]) {
      await expectError(await call(`/api/v1/search/?${query}`), 400, "VALIDATION_ERROR");
    }
    for (const query of ["", "q=", `q=${"a".repeat(101)}`])
      await expectError(await call(`/api/v1/search/suggestions/?${query}`), 400, "VALIDATION_ERROR");
    // 100 characters after trimming is fine, also when rows match (D1 refuses LIKE patterns over 50 bytes);
    // so is a query of only LIKE and FTS specials.
    await topic("Monstera deliciosa monstera deliciosa monstera deliciosa tips", "Long title.");
    const long = ` ${"Monstera deliciosa ".repeat(6).slice(0, 100)} `;
    const longBody = await search(`q=${encodeURIComponent(long)}`);
    expect(longBody.query).toHaveLength(100);
    expect(longBody.counts.species).toBeGreaterThan(0);
    expect((await call(`/api/v1/search/suggestions/?q=${encodeURIComponent(long)}`)).status).toBe(200);
    expect((await call(`/api/v1/search/?q=${encodeURIComponent(` ${"b".repeat(100)} `)}`)).status).toBe(200);
    expect((await call(`/api/v1/search/?q=${encodeURIComponent('"*"^(%_\\')}`)).status).toBe(200);
  });
});

describe("search suggestions", () => {
  it("completes species names and topic titles that start with the query, without duplicates", async () => {
    const t = await topic("Monstera leaves curling inward", "Since the move.");
    const res = await call("/api/v1/search/suggestions/?q=MON");
    expect(res.headers.get("Cache-Control")).toBe("public, max-age=30");
    const body = await json<Suggestions>(res, 200);
    expect(body.query).toBe("MON");
    expect(body.suggestions.length).toBeGreaterThan(2);
    expect(body.suggestions.length).toBeLessThanOrEqual(10);
    expect(body.suggestions.every((s) => s.text.toLowerCase().startsWith("mon"))).toBe(true);
    expect(body.suggestions[0]).toEqual({ text: "Monstera deliciosa", type: "species" });
    expect(body.suggestions).toContainEqual({ text: "monstera", type: "species" });
    expect(body.suggestions).toContainEqual({ text: "Monstera leaves curling inward", type: "forum" });
    const lower = body.suggestions.map((s) => s.text.toLowerCase());
    expect(new Set(lower).size).toBe(lower.length);
    expect(t.id).toBeTruthy();

    const many = await json<Suggestions>(await call("/api/v1/search/suggestions/?q=r"), 200);
    expect(many.suggestions).toHaveLength(10);
    expect((await json<Suggestions>(await call("/api/v1/search/suggestions/?q=zzzqqq"), 200)).suggestions).toEqual([]);
    expect((await json<Suggestions>(await call("/api/v1/search/suggestions/?q=%25"), 200)).suggestions).toEqual([]);
  });
});
