import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import seedSpecies from "../../seed/species.json";
import { speciesSeedStatements, type SeedSpecies } from "../../src/db/seed";
import { call, expectError } from "../helpers/http";

interface Page {
  count: number;
  next: string | null;
  previous: string | null;
  results: { id: string; scientific_name: string; common_names: string[]; family: string; identification_count: number }[];
}
interface Search {
  results: { scientific_name: string; common_names: string[] }[];
  total: number;
  search_query: string;
  source: string;
}

beforeAll(async () => {
  const statements = await speciesSeedStatements(seedSpecies as SeedSpecies[]);
  await env.DB.batch(statements.map((s) => env.DB.prepare(s)));
  await env.DB.prepare("UPDATE species SET identification_count = 42 WHERE scientific_name = 'Monstera deliciosa'").run();
});

const search = async (q: string) =>
  (await (await call(`/api/v1/plant-identification/search/plants/?q=${encodeURIComponent(q)}`)).json()) as Search;

describe("species catalogue", () => {
  it("lists by popularity then name, paginated, with family filter and literal search", async () => {
    const first = (await (await call("/api/v1/plant-identification/species/?page_size=5")).json()) as Page;
    expect(first.count).toBe((seedSpecies as SeedSpecies[]).length);
    expect(first.results).toHaveLength(5);
    expect(first.results[0]!.scientific_name).toBe("Monstera deliciosa");
    const names = first.results.slice(1).map((r) => r.scientific_name);
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : 1)));
    expect(first.next).toContain("page=2");
    expect(first.previous).toBeNull();

    const roses = (await (await call("/api/v1/plant-identification/species/?family=rosaceae&page_size=100")).json()) as Page;
    expect(roses.count).toBeGreaterThan(5);
    expect(roses.results.every((r) => r.family === "Rosaceae")).toBe(true);

    const literal = (await (await call("/api/v1/plant-identification/species/?search=%25")).json()) as Page;
    expect(literal.count).toBe(0);
    const underscore = (await (await call("/api/v1/plant-identification/species/?search=_")).json()) as Page;
    expect(underscore.count).toBe(0);
    const substring = (await (await call("/api/v1/plant-identification/species/?search=ONSTERA%20DELIC")).json()) as Page;
    expect(substring.results.map((r) => r.scientific_name)).toContain("Monstera deliciosa");
    // D1 refuses LIKE patterns over 50 bytes: the longest allowed search must still answer 200.
    const long = await call(`/api/v1/plant-identification/species/?search=${"a".repeat(100)}`);
    expect(long.status).toBe(200);
    expect(((await long.json()) as Page).count).toBe(0);

    const detail = await call(`/api/v1/plant-identification/species/${first.results[0]!.id}/`);
    expect(await detail.json()).toMatchObject({ scientific_name: "Monstera deliciosa", identification_count: 42 });
    await expectError(await call(`/api/v1/plant-identification/species/${crypto.randomUUID()}/`), 404, "NOT_FOUND");
    await expectError(await call("/api/v1/plant-identification/species/?page=0"), 400, "VALIDATION_ERROR");
  });

  it("search folds case in every script, not A–Z only, and composes an NFD query", async () => {
    const name = `Spinacia testensis ${crypto.randomUUID().slice(0, 8)}`;
    await env.DB.prepare("INSERT INTO species (id, scientific_name, common_names) VALUES (?, ?, ?)")
      .bind(crypto.randomUUID(), name, JSON.stringify(["Épinard d'hiver", "Шпинат", "ΣΠΑΝΆΚΙ"]))
      .run();
    for (const q of ["ÉPINARD", "épinard", "e\u0301pinard", "шпинат", "ШПИНАТ", "σπανάκι"]) {
      const page = (await (await call(`/api/v1/plant-identification/species/?search=${encodeURIComponent(q)}`)).json()) as Page;
      expect(
        page.results.map((r) => r.scientific_name),
        q,
      ).toEqual([name]);
    }
    // Many different letters: the folding stays bounded and the answer is still an answer.
    const many = await call(
      `/api/v1/plant-identification/species/?search=${encodeURIComponent("абвгдеёжзийклмнопрстуфхцчшщъыьэюяàáâãäåæçèéêëìíîï'")}`,
    );
    expect(many.status).toBe(200);
    expect(((await many.json()) as Page).count).toBe(0);
  });
});

describe("plant search (FTS5 trigram)", () => {
  it("finds by scientific name, common name and family, best match first", async () => {
    expect((await search("Monstera")).results[0]!.scientific_name).toBe("Monstera deliciosa");
    const byCommon = await search("swiss cheese");
    expect(byCommon.results[0]!.scientific_name).toBe("Monstera deliciosa");
    expect(byCommon).toMatchObject({ search_query: "swiss cheese", source: "local" });
    expect((await search("Lamiaceae")).total).toBeGreaterThan(5);
  });

  it("tolerates typos", async () => {
    expect((await search("monstra")).results.slice(0, 3).map((r) => r.scientific_name)).toContain("Monstera deliciosa");
    expect((await search("lavendar")).results.slice(0, 3).some((r) => r.scientific_name.startsWith("Lavandula"))).toBe(true);
  });

  it("handles short queries, wildcards and junk safely", async () => {
    const short = await search("ro");
    expect(short.total).toBeGreaterThan(0);
    expect(
      short.results.every(
        (r) =>
          /^ro/i.test(r.scientific_name) ||
          r.common_names.some((n) => /^ro/i.test(n)) ||
          /^ro/i.test((r as unknown as { family: string }).family),
      ),
    ).toBe(true);
    expect((await search("%")).total).toBe(0);
    expect((await search("_")).total).toBe(0);
    expect((await search('"; DROP TABLE species; --')).results).toBeInstanceOf(Array);
    expect((await call("/api/v1/plant-identification/species/?page_size=1")).status).toBe(200);
    await expectError(await call("/api/v1/plant-identification/search/plants/?q="), 400, "VALIDATION_ERROR");
    await expectError(await call("/api/v1/plant-identification/search/plants/"), 400, "VALIDATION_ERROR");
  });
});
