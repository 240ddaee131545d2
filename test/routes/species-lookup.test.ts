import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { SPECIES } from "../../emulators/species";
import { call, expectError, freshIp } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";

const emulators = useEmulators();
const LOOKUP = "/api/v1/plant-identification/species/lookup/";
const lookup = (name: string) => call(`${LOOKUP}?scientific_name=${encodeURIComponent(name)}`);

interface SpeciesBody {
  id: string;
  scientific_name: string;
  common_names: string[];
  family: string;
  genus: string;
  trefle_id: number | null;
  light_requirements: string | null;
  water_requirements: string | null;
  is_verified: boolean;
  source: string;
}

/** A species Trefle (the emulator) knows, distinct per test so the KV cache and D1 start clean for it. */
let next = 0;
function trefleSpecies() {
  const s = SPECIES[(next += 3) % SPECIES.length]!;
  return s;
}

describe("the Trefle cache", () => {
  it("takes any name a provider may answer with: one over KV's 512-byte key limit, or not well-formed text", async () => {
    const { cachedTrefleSpecies } = await import("../../src/services/species");
    for (const name of [`Monstera ${"\u6f22".repeat(190)}`, "Monstera \ud800deliciosa"]) {
      expect(await cachedTrefleSpecies(env, name)).toBeNull();
      // The second time from the cache (the answer "unknown" is cached too).
      expect(await cachedTrefleSpecies(env, name)).toBeNull();
    }
  });
});

describe("GET species/lookup/", () => {
  it("finds a catalogue species without asking Trefle, forgiving case and spacing", async () => {
    const id = crypto.randomUUID();
    await env.DB.prepare(
      "INSERT INTO species (id, scientific_name, family, genus, source, is_verified) VALUES (?, 'Lookupia localis', 'Testaceae', 'Lookupia', 'seed', 1)",
    )
      .bind(id)
      .run();
    const res = await lookup("  lookupia   LOCALIS ");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, scientific_name: "Lookupia localis", source: "seed", is_verified: true });
    expect(emulators.trefle.calls).toBe(0);
  });

  it("adds a species only Trefle knows as an unverified catalogue entry, then serves it locally", async () => {
    const known = trefleSpecies();
    const res = await lookup(known.scientificName.toUpperCase());
    expect(res.status).toBe(200);
    const body = (await res.json()) as SpeciesBody;
    expect(body).toMatchObject({
      scientific_name: known.scientificName,
      family: known.family,
      genus: known.genus,
      source: "trefle",
      is_verified: false,
    });
    expect(body.trefle_id).toEqual(expect.any(Number));
    expect(body.light_requirements).toMatch(/^(full_sun|partial_sun|partial_shade|full_shade)$/);
    expect(body.water_requirements).toMatch(/^(low|moderate|high)$/);
    expect(body.common_names.length).toBeGreaterThan(0);
    const callsAfterFirst = emulators.trefle.calls;
    expect(callsAfterFirst).toBe(2); // search, then detail

    const again = await lookup(known.scientificName);
    expect(((await again.json()) as SpeciesBody).id).toBe(body.id);
    expect(emulators.trefle.calls).toBe(callsAfterFirst);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM species WHERE lower(scientific_name) = lower(?)")
      .bind(known.scientificName)
      .first<{ n: number }>();
    expect(rows?.n).toBe(1);
  });

  it("stores a species once when lookups of it race", async () => {
    const known = trefleSpecies();
    const answers = await Promise.all(Array.from({ length: 4 }, () => lookup(known.scientificName)));
    const ids = await Promise.all(answers.map(async (r) => ((await r.json()) as SpeciesBody).id));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(ids).size).toBe(1);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM species WHERE lower(scientific_name) = lower(?)")
      .bind(known.scientificName)
      .first<{ n: number }>();
    expect(rows?.n).toBe(1);
  });

  it("answers 404 for a name nobody knows, and remembers Trefle's 'unknown' for a day", async () => {
    await expectError(await lookup("Nonexistia imaginaria"), 404, "NOT_FOUND");
    const calls = emulators.trefle.calls;
    expect(calls).toBeGreaterThan(0);
    await expectError(await lookup("nonexistia imaginaria"), 404, "NOT_FOUND");
    expect(emulators.trefle.calls).toBe(calls);
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM species WHERE lower(scientific_name) = 'nonexistia imaginaria'").first<{
      n: number;
    }>();
    expect(stored?.n).toBe(0);
  });

  it("Trefle down, throttling or answering garbage: 503 with Retry-After, nothing stored, nothing cached", async () => {
    const known = trefleSpecies();
    for (const failure of ["500", "malformed"] as const) {
      emulators.trefle.setMode({ failure });
      const res = await lookup(known.scientificName);
      const body = await expectError(res, 503, "SPECIES_LOOKUP_UNAVAILABLE");
      expect(body.message).toContain(known.scientificName);
      expect(res.headers.get("Retry-After")).toBe("30");
    }
    emulators.trefle.setMode({ failure: "429", retryAfterSeconds: 7 });
    const throttled = await lookup(known.scientificName);
    await expectError(throttled, 503, "SPECIES_LOOKUP_UNAVAILABLE");
    expect(throttled.headers.get("Retry-After")).toBe("7");
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM species WHERE lower(scientific_name) = lower(?)")
      .bind(known.scientificName)
      .first<{ n: number }>();
    expect(stored?.n).toBe(0);

    emulators.trefle.setMode({ failure: "none" });
    expect((await lookup(known.scientificName)).status).toBe(200);
  });

  it("without a Trefle key it searches the catalogue only", async () => {
    const ctx = createExecutionContext();
    const res = await createApp().request(
      `${LOOKUP}?scientific_name=${encodeURIComponent(trefleSpecies().scientificName)}`,
      { headers: { "CF-Connecting-IP": freshIp() } },
      { ...env, TREFLE_API_KEY: "" },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    const body = await expectError(res, 404, "NOT_FOUND");
    expect(body.message).toMatch(/in our catalogue\.$/);
    expect(emulators.trefle.calls).toBe(0);
  });

  it("rejects a missing, too short or odd name with 400", async () => {
    await expectError(await call(LOOKUP), 400, "VALIDATION_ERROR");
    await expectError(await lookup("ab"), 400, "VALIDATION_ERROR");
    await expectError(await lookup("Rosa; DROP TABLE species"), 400, "VALIDATION_ERROR");
    await expectError(await lookup("x".repeat(151)), 400, "VALIDATION_ERROR");
  });

  it("an empty or blank name is told to enter one, not also which characters a name has", async () => {
    for (const name of ["", "   "]) {
      const body = await expectError(await lookup(name), 400, "VALIDATION_ERROR");
      expect(body.errors, JSON.stringify(name)).toEqual({ scientific_name: ["Enter a scientific name, e.g. Monstera deliciosa."] });
    }
  });
});

describe("lookups of names the catalogue lacks are limited (SPECIES_LOOKUP_RATE_LIMIT)", () => {
  // Each may call Trefle on the deployment's quota and add a species, which purges the cached
  // catalogue for every reader: one address or account must not do that at will.
  const limited = { ...env, SPECIES_LOOKUP_RATE_LIMIT: "2/3600" };
  const lookupFrom = async (ip: string, name: string) => {
    const ctx = createExecutionContext();
    const res = await createApp().request(
      `${LOOKUP}?scientific_name=${encodeURIComponent(name)}`,
      { headers: { "CF-Connecting-IP": ip } },
      limited,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return res;
  };

  it("per address when anonymous: past the budget 429 with Retry-After and Trefle is not called; catalogue names stay free", async () => {
    const ip = freshIp();
    await expectError(await lookupFrom(ip, "Nonexistia prima"), 404, "NOT_FOUND");
    expect((await lookupFrom(ip, trefleSpecies().scientificName)).status).toBe(200);
    const calls = emulators.trefle.calls;
    const refused = await lookupFrom(ip, "Nonexistia tertia");
    await expectError(refused.clone(), 429, "RATE_LIMITED");
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(emulators.trefle.calls).toBe(calls);
    // A name the catalogue has costs nothing, and another address has its own budget.
    await env.DB.prepare(
      "INSERT INTO species (id, scientific_name, family, genus, source, is_verified) VALUES (?, 'Budgetia localis', 'Testaceae', 'Budgetia', 'seed', 1) ON CONFLICT DO NOTHING",
    )
      .bind(crypto.randomUUID())
      .run();
    expect((await lookupFrom(ip, "Budgetia localis")).status).toBe(200);
    await expectError(await lookupFrom(freshIp(), "Nonexistia quarta"), 404, "NOT_FOUND");
  });
});
