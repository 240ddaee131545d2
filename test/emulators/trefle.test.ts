import { describe, expect, it } from "vitest";

import { SPECIES } from "../../emulators/species";
import { TREFLE_PAGE_SIZE, createTrefleEmulator, type TrefleEmulator } from "../../emulators/trefle";

const BASE = "https://trefle.emulator.test/api/v1";

async function get(emulator: TrefleEmulator, pathAndQuery: string, init: RequestInit = {}) {
  const separator = pathAndQuery.includes("?") ? "&" : "?";
  const response = await emulator.handle(new Request(`${BASE}${pathAndQuery}${separator}token=emulator-key`, init));
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, any> };
}

const SPECIES_LIGHT_KEYS = [
  "id",
  "common_name",
  "slug",
  "scientific_name",
  "year",
  "bibliography",
  "author",
  "status",
  "rank",
  "family_common_name",
  "family",
  "genus_id",
  "genus",
  "image_url",
  "synonyms",
  "links",
].sort();

describe("Trefle emulator: search and lists", () => {
  it("searches plants with the list envelope and species_light items", async () => {
    const { status, body } = await get(createTrefleEmulator(), "/plants/search?q=monstera");
    expect(status).toBe(200);
    expect(body.meta.total).toBe(2);
    expect(body.data.map((item: Record<string, unknown>) => item.scientific_name)).toEqual(["Monstera deliciosa", "Monstera adansonii"]);
    expect(Object.keys(body.data[0]).sort()).toEqual(SPECIES_LIGHT_KEYS);
    expect(body.data[0]).toMatchObject({
      id: 182512,
      slug: "monstera-deliciosa",
      status: "accepted",
      rank: "species",
      synonyms: expect.arrayContaining([expect.any(String)]),
      links: { self: "/api/v1/species/monstera-deliciosa", plant: "/api/v1/plants/monstera-deliciosa", genus: "/api/v1/genus/monstera" },
    });
    // One page: no prev/next, and the token never leaks into links.
    expect(body.links).toEqual({
      self: "/api/v1/plants/search?q=monstera",
      first: "/api/v1/plants/search?page=1&q=monstera",
      last: "/api/v1/plants/search?page=1&q=monstera",
    });
  });

  it("matches common names and honours limit and page, omitting prev/next at the edges", async () => {
    const emulator = createTrefleEmulator();
    const byCommonName = await get(emulator, "/species/search?q=snake plant");
    expect(byCommonName.body.data[0].scientific_name).toBe("Dracaena trifasciata");

    const first = await get(emulator, "/plants/search?q=a&limit=2");
    expect(first.body.data.length).toBe(2);
    expect(first.body.links).not.toHaveProperty("prev");
    expect(first.body.links.next).toBe("/api/v1/plants/search?limit=2&page=2&q=a");
    const lastPage = Math.ceil(first.body.meta.total / 2);
    const last = await get(emulator, `/plants/search?q=a&limit=2&page=${lastPage}`);
    expect(last.body.links).not.toHaveProperty("next");
    expect(last.body.links.prev).toBe(`/api/v1/plants/search?limit=2&page=${lastPage - 1}&q=a`);

    const beyond = await get(emulator, `/plants/search?q=a&limit=2&page=${lastPage + 1}`);
    expect(beyond.status).toBe(404);
    expect(beyond.body).toMatchObject({ error: true, message: expect.any(String) });

    const none = await get(emulator, "/plants/search?q=zzzzzz");
    expect(none.status).toBe(200);
    expect(none.body).toMatchObject({ data: [], meta: { total: 0 } });
  });

  it("answers 422 when q is missing", async () => {
    const { status, body } = await get(createTrefleEmulator(), "/plants/search");
    expect(status).toBe(422);
    expect(body).toEqual({ error: true, message: "param is missing or the value is empty: q" });
  });

  it("filters species on whitelisted fields and silently drops unknown filters", async () => {
    const emulator = createTrefleEmulator();
    const byName = await get(emulator, "/species?filter[scientific_name]=Quercus robur");
    expect(byName.body.data.map((s: Record<string, unknown>) => s.slug)).toEqual(["quercus-robur"]);

    const araceae = await get(emulator, "/species?filter[family_name]=Araceae");
    const withUnknown = await get(emulator, "/species?filter[family_name]=Araceae&filter[leaf]=green&filter[atmospheric_humidity]=8");
    expect(araceae.body.meta.total).toBe(SPECIES.filter((s) => s.family === "Araceae").length);
    expect(withUnknown.body.meta.total).toBe(araceae.body.meta.total);

    const bright = await get(emulator, "/species?range[light]=9,&filter_not[edible]=false");
    expect(bright.body.data.length).toBeGreaterThan(0);
    for (const item of bright.body.data) {
      const species = SPECIES.find((s) => s.slug === item.slug)!;
      expect(species.growth.light).toBeGreaterThanOrEqual(9);
      expect(species.edibleParts).not.toBeNull();
    }
  });

  it("pages the species list by the default page size", async () => {
    const { body } = await get(createTrefleEmulator(), "/species");
    expect(body.meta.total).toBe(SPECIES.length);
    expect(body.data.length).toBe(Math.min(TREFLE_PAGE_SIZE, SPECIES.length));
    expect(body.links.next).toBe("/api/v1/species?page=2");
  });
});

describe("Trefle emulator: details", () => {
  it("returns a species detail by slug or id, with nulls where data is unknown", async () => {
    const emulator = createTrefleEmulator();
    const bySlug = await get(emulator, "/species/monstera-deliciosa");
    const byId = await get(emulator, "/species/182512");
    expect(bySlug.status).toBe(200);
    expect(byId.body).toEqual(bySlug.body);
    expect(bySlug.headers.get("cache-control")).toContain("max-age");
    const { data, meta } = bySlug.body;
    expect(meta.last_modified).toEqual(expect.any(String));
    expect(data).toMatchObject({
      scientific_name: "Monstera deliciosa",
      edible: true,
      edible_part: ["fruits"],
      common_names: { en: expect.arrayContaining(["Swiss cheese plant"]), fr: expect.any(Array) },
      distribution: { native: expect.arrayContaining(["Mexico"]) },
      distributions: { native: [expect.objectContaining({ name: "Mexico", slug: "mexico" }), ...Array(4).fill(expect.any(Object))] },
      flower: { color: ["white"], conspicuous: true },
      specifications: { growth_habit: "Vine", maximum_height: { cm: 2000 }, toxicity: "medium" },
      growth: {
        light: 6,
        atmospheric_humidity: 8,
        ph_minimum: 5.5,
        ph_maximum: 7,
        minimum_temperature: { deg_c: 10, deg_f: 50 },
        days_to_harvest: null,
        soil_nutriments: null,
      },
      synonyms: [expect.objectContaining({ name: "Philodendron pertusum" }), expect.any(Object)],
      images: { leaf: [expect.objectContaining({ image_url: expect.any(String), copyright: expect.any(String) })] },
    });
  });

  it("returns a plant with its main species", async () => {
    const { status, body } = await get(createTrefleEmulator(), "/plants/quercus-robur");
    expect(status).toBe(200);
    expect(body.data).toMatchObject({
      slug: "quercus-robur",
      main_species_id: body.data.id,
      main_species: { scientific_name: "Quercus robur", common_names: { en: expect.any(Array) } },
      genus: { name: "Quercus", slug: "quercus" },
      family: { name: "Fagaceae", common_name: "Beech family" },
    });
  });

  it("answers 404 with a singular `message` for unknown ids", async () => {
    const { status, body } = await get(createTrefleEmulator(), "/species/not-a-plant");
    expect(status).toBe(404);
    expect(body).toEqual({ error: true, message: expect.any(String) });
  });
});

describe("Trefle emulator: auth and throttle", () => {
  it("accepts the token in the query or as a Bearer header; 401 uses plural `messages`", async () => {
    const emulator = createTrefleEmulator();
    const bearer = await emulator.handle(new Request(`${BASE}/species/1`, { headers: { Authorization: "Bearer emulator-key" } }));
    expect(bearer.status).toBe(404);

    const missing = await emulator.handle(new Request(`${BASE}/plants/search?q=oak`));
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({
      error: true,
      messages: "An access token is required to access this resource. See https://trefle.io",
    });
    const wrong = await emulator.handle(new Request(`${BASE}/plants/search?q=oak&token=nope`));
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: true, messages: "Invalid access token" });
  });

  it("throttles at 60 requests per minute with RateLimit-* and Retry-After, refilling over time", async () => {
    let clock = 1_000_000;
    const emulator = createTrefleEmulator({ now: () => clock });
    for (let i = 0; i < 60; i += 1) expect((await get(emulator, "/plants/search?q=oak")).status).toBe(200);

    const limited = await get(emulator, "/plants/search?q=oak");
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ error: true, message: expect.stringContaining("Too many requests") });
    expect(limited.headers.get("ratelimit-limit")).toBe("60");
    expect(limited.headers.get("ratelimit-remaining")).toBe("0");
    expect(Number(limited.headers.get("ratelimit-reset"))).toBeGreaterThan(clock / 1000);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);

    clock += 1_000;
    expect((await get(emulator, "/plants/search?q=oak")).status).toBe(200);
  });
});
