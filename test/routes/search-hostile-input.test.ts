/**
 * Hostile bytes and FTS5 syntax in every text search, through the Worker (security item 7).
 * Control characters (a NUL ends an FTS5 query string early and used to answer 500) are refused
 * with the normal 400 envelope and a field error on the searched parameter; FTS5 operators and
 * unbalanced quotes are plain text, never a 5xx.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import seedSpecies from "../../seed/species.json";
import { speciesSeedStatements, type SeedSpecies } from "../../src/db/seed";
import { searchSpecies } from "../../src/services/species";
import { searchSuggestions, unifiedSearch } from "../../src/services/search";
import { call, expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

// species/lookup/ falls back to Trefle for unknown names: answer from the emulator, not the internet.
useEmulators();

/** Every route that searches text, with the query parameter it searches. */
const ROUTES = [
  { name: "unified search", path: "/api/v1/search/", param: "q" },
  { name: "search suggestions", path: "/api/v1/search/suggestions/", param: "q" },
  { name: "plant search (FTS5)", path: "/api/v1/plant-identification/search/plants/", param: "q" },
  { name: "species catalogue", path: "/api/v1/plant-identification/species/", param: "search" },
  { name: "species lookup", path: "/api/v1/plant-identification/species/lookup/", param: "scientific_name" },
  { name: "disease database", path: "/api/v1/plant-identification/disease-database/", param: "search" },
] as const;

/** Control characters, alone, inside a word, and enough of them to make FTS5 trigrams. */
const CONTROL_INPUTS = [
  "a\u0000b",
  "monstera\u0000",
  "\u0000\u0000\u0000",
  "abc\u0000def ghi",
  "ab\u0001cd",
  "abc\u001fdef",
  "abc\u007fdef",
  "mon\tstera",
  "mon\nstera",
];

/** FTS5 query syntax and other bytes a parser could trip on; all must be searched as plain text. */
const SYNTAX_INPUTS = [
  '"',
  '"abc',
  'abc"def',
  '""""',
  "NEAR(",
  "NEAR(abc def",
  "NEAR(abc, 2)",
  "*",
  "abc*",
  "***",
  "-",
  "-abc",
  "---",
  ":",
  "a:b:c",
  "species_fts:abc",
  "^",
  "^abc",
  "abc OR",
  "AND",
  "NOT abc",
  "(abc",
  "abc)",
  "{a b}:c",
  "'; DROP TABLE species; --",
  "%_\\",
  "\uFFFF\uFFFEabc",
  "🌱🌱🌱",
];

const url = (route: (typeof ROUTES)[number], value: string) => `${route.path}?${route.param}=${encodeURIComponent(value)}`;

beforeAll(async () => {
  const statements = await speciesSeedStatements(seedSpecies as SeedSpecies[]);
  await env.DB.batch(statements.map((s) => env.DB.prepare(s)));
  // A forum topic and a confirmed disease, so the forum and disease searches have rows to scan.
  const writer = await bearerUser();
  const topic = await call("/api/v1/forum/categories/houseplants/topics/", {
    bearer: writer.access,
    json: { title: "abc def monstera", body: "NEAR abc * def" },
  });
  expect(topic.status, await topic.clone().text()).toBe(201);
  const requestId = crypto.randomUUID();
  await env.DB.batch([
    env.DB.prepare(
      "INSERT INTO disease_requests (id, user_id, status, image_hashes, symptoms_description) VALUES (?, ?, 'identified', '[]', 'spots')",
    ).bind(requestId, writer.userId),
    env.DB.prepare(
      `INSERT INTO disease_results (id, request_id, name, common_names, probability, description, disease_type, rank, is_confirmed, confirmed_at)
       VALUES (?, ?, 'Abc blight', '["abc rot"]', 0.9, 'abc def', 'fungal', 1, 1, ?)`,
    ).bind(crypto.randomUUID(), requestId, new Date().toISOString()),
  ]);
});

describe("control characters in search text", () => {
  const cases = ROUTES.flatMap((route) => CONTROL_INPUTS.map((input) => ({ ...route, input, shown: JSON.stringify(input) })));

  it.each(cases)("$name ?$param=$shown → 400 VALIDATION_ERROR on $param", async (c) => {
    const body = await expectError(await call(url(c, c.input)), 400, "VALIDATION_ERROR");
    expect(body.errors?.[c.param]).toContain("Must not contain control characters (such as NUL, tabs or line breaks).");
  });

  it("the raw %00 of the report answers 400 on the unified search", async () => {
    const body = await expectError(await call("/api/v1/search/?q=a%00b"), 400, "VALIDATION_ERROR");
    expect(Object.keys(body.errors ?? {})).toEqual(["q"]);
  });

  it("leading and trailing whitespace (a pasted newline) is trimmed, not refused", async () => {
    const res = await call(`/api/v1/search/?q=${encodeURIComponent("\tmonstera\r\n")}`);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { query: string }).query).toBe("monstera");
  });
});

describe("FTS5 syntax in search text is plain text", () => {
  const cases = ROUTES.flatMap((route) => SYNTAX_INPUTS.map((input) => ({ ...route, input, shown: JSON.stringify(input) })));

  it.each(cases)("$name ?$param=$shown → no 5xx", async (c) => {
    const res = await call(url(c, c.input));
    const text = await res.clone().text();
    if (c.param === "scientific_name") {
      // Not a text search: its own pattern refuses most of these, and an unknown name is a 404.
      expect([200, 400, 404], text).toContain(res.status);
    } else {
      expect(res.status, text).toBe(200);
    }
  });

  it("invalid UTF-8 in the query string is no 5xx either", async () => {
    for (const raw of ["abc%FF", "%ED%A0%80abc", "%C0%80abc", "abc%", "%E2%80"]) {
      for (const route of ROUTES) {
        const res = await call(`${route.path}?${route.param}=${raw}`);
        expect(res.status, `${route.path} ${raw}: ${await res.clone().text()}`).toBeLessThan(500);
      }
    }
  });

  it("an operator in the query still finds the literal text", async () => {
    const res = await call(`/api/v1/search/?q=${encodeURIComponent("abc def")}&types=forum`);
    const body = (await res.json()) as { counts: { forum: number } };
    expect(body.counts.forum).toBe(1);
    const star = (await (await call(`/api/v1/search/?q=${encodeURIComponent("NEAR abc *")}&types=forum`)).json()) as {
      counts: { forum: number };
    };
    expect(star.counts.forum).toBe(1);
  });
});

describe("the search services never hand a control character to SQL", () => {
  it("searchSpecies, unifiedSearch and searchSuggestions read a NUL as a space", async () => {
    // Called directly, as a job or a future route might: the route's 400 is not the only guard.
    const withNul = await searchSpecies(env, "monstera\u0000deliciosa", 5);
    const withSpace = await searchSpecies(env, "monstera deliciosa", 5);
    expect(withNul.rows.map((r) => r.scientificName)).toEqual(withSpace.rows.map((r) => r.scientificName));
    expect(withNul.rows[0]?.scientificName).toBe("Monstera deliciosa");
    const unified = await unifiedSearch(env, "abc\u0000def", ["species", "forum", "diseases"], 5);
    expect(unified.forum?.total).toBe(1); // the title "abc def monstera"
    expect(unified.diseases?.total).toBe(1); // "Abc blight", described as "abc def"
    await expect(searchSuggestions(env, "mon\u0000")).resolves.toBeInstanceOf(Array);
  });
});

describe("staff user search", () => {
  // Not an FTS5 search (instr over username and email): hostile text must still not be a 5xx.
  it.each(["a\u0000b", '"abc', "NEAR(", "*", "-", ":", "^"])("admin/users ?search=%j → no 5xx", async (input) => {
    const admin = await bearerUser();
    await env.DB.prepare("UPDATE users SET role = 'admin' WHERE id = ?").bind(admin.userId).run();
    const res = await call(`/api/v1/admin/users/?search=${encodeURIComponent(input)}`, { bearer: admin.access });
    expect(res.status, await res.clone().text()).toBeLessThan(500);
    if (input.includes("\u0000")) expect((await expectError(res, 400, "VALIDATION_ERROR")).errors?.search).toBeDefined();
  });
});
