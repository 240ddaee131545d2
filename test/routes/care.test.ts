import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { generateCareGuide } from "../../src/providers/openai";
import { PLANTNET_LANGUAGES } from "../../src/providers/plantnet";
import type { ProviderError } from "../../src/providers/types";
import { CARE_RULES_LANGUAGES } from "../../src/services/care";
import { CARE_GENERATE_PER_HOUR, careForSpecies } from "../../src/services/care-guides";
import { call, expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();

async function species(light: string | null = "partial_shade", water: string | null = "moderate") {
  const id = crypto.randomUUID();
  await env.DB.prepare(
    "INSERT INTO species (id, scientific_name, common_names, light_requirements, water_requirements) VALUES (?, ?, '[\"Swiss cheese plant\"]', ?, ?)",
  )
    .bind(id, `Monstera testii ${id.slice(0, 8)}`, light, water)
    .run();
  return id;
}

const careOf = async (res: Response) => ((await res.json()) as { care_instructions: Record<string, unknown> | null }).care_instructions;

describe("species care instructions", () => {
  it("generates an AI guide once (structured output of our schema) and serves it from D1 afterwards", async () => {
    const u = await bearerUser();
    const id = await species();
    const first = await careOf(await call(`/api/v1/plant-identification/species/${id}/care/`, { bearer: u.access }));
    expect(first).toMatchObject({ source: "openai", difficulty_level: expect.any(String), light: { requirement: expect.any(String) } });
    expect(emulators.openai.calls).toBe(1);
    const second = await careOf(await call(`/api/v1/plant-identification/species/${id}/care/`, { bearer: u.access }));
    expect(second).toEqual(first);
    expect(emulators.openai.calls).toBe(1);
  });

  it("an AI guide says the language it was asked and stored in, when written, when served again and when regenerated", async () => {
    const u = await bearerUser();
    const id = await species();
    const url = `/api/v1/plant-identification/species/${id}/care/?language=fr`;
    const written = await careOf(await call(url, { bearer: u.access }));
    expect(written).toMatchObject({ source: "openai", language: "fr" });
    // The emulator marks text asked for in another language: the service asked OpenAI in French.
    expect(String(written!.overview)).toMatch(/^\[fr\] /);
    expect(await careOf(await call(url, { bearer: u.access }))).toEqual(written);
    expect(await careOf(await call(`${url}&regenerate=true`, { bearer: u.access }))).toMatchObject({ source: "openai", language: "fr" });
    // Each language's guide says its own.
    const english = await careOf(await call(`/api/v1/plant-identification/species/${id}/care/`, { bearer: u.access }));
    expect(english).toMatchObject({ source: "openai", language: "en" });
    expect(String(english!.overview)).not.toMatch(/^\[/);
    expect(emulators.openai.calls).toBe(3);
  });

  it("a guide stored before guides said their language answers with the language of its row", async () => {
    const u = await bearerUser();
    const id = await species();
    // The stored content as OpenAI wrote it: the care-guide schema has no language field.
    const content = {
      overview: "Eine robuste Zimmerpflanze.",
      difficulty_level: "easy",
      light: { requirement: "Hell", details: "Kein pralles Licht." },
    };
    await env.DB.prepare(
      "INSERT INTO care_guides (id, species_id, language, content, model, created_at, updated_at) VALUES (?, ?, 'de', ?, 'gpt-4o-mini', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')",
    )
      .bind(crypto.randomUUID(), id, JSON.stringify(content))
      .run();
    const care = await careOf(await call(`/api/v1/plant-identification/species/${id}/care/?language=de`, { bearer: u.access }));
    expect(care).toEqual({ ...content, source: "openai", language: "de", model: "gpt-4o-mini", generated_at: "2025-01-01T00:00:00.000Z" });
    expect(emulators.openai.calls).toBe(0);
  });

  it(`one user causes at most ${CARE_GENERATE_PER_HOUR} new AI guides an hour; past that, rule-based advice and no OpenAI call`, async () => {
    const u = await bearerUser();
    const id = await species("full_sun", "low");
    const languages = Array.from(
      { length: CARE_GENERATE_PER_HOUR + 2 },
      (_, i) => `${"abcdefghij"[Math.floor(i / 10)]}${"klmnopqrst"[i % 10]}`,
    );
    const sources: unknown[] = [];
    for (const language of languages)
      sources.push(
        (await careOf(await call(`/api/v1/plant-identification/species/${id}/care/?language=${language}`, { bearer: u.access })))?.source,
      );
    expect(sources.slice(0, CARE_GENERATE_PER_HOUR).every((s) => s === "openai")).toBe(true);
    expect(sources.slice(CARE_GENERATE_PER_HOUR)).toEqual(["rules", "rules"]);
    expect(emulators.openai.calls).toBe(CARE_GENERATE_PER_HOUR);
    // Guides already written are still served to that user.
    expect(
      (await careOf(await call(`/api/v1/plant-identification/species/${id}/care/?language=${languages[0]}`, { bearer: u.access })))?.source,
    ).toBe("openai");
    // Another user within their allowance writes the missing one.
    const other = await bearerUser();
    const last = languages.at(-1)!;
    expect(
      (await careOf(await call(`/api/v1/plant-identification/species/${id}/care/?language=${last}`, { bearer: other.access })))?.source,
    ).toBe("openai");
  });

  it("when the allowance cannot be counted (rate limiter down), answers the rule-based advice without calling OpenAI", async () => {
    const u = await bearerUser();
    const id = await species("full_sun", "low");
    const down = {
      idFromName: (name: string) => env.RATE_LIMITER.idFromName(name),
      get: () => ({
        consume: async () => {
          throw new Error("rate limiter unreachable");
        },
      }),
    };
    const { care } = await careForSpecies({ ...env, RATE_LIMITER: down } as unknown as Env, {
      speciesId: id,
      language: "en",
      regenerate: false,
      userId: u.userId,
    });
    expect(care).toMatchObject({ source: "rules" });
    expect(emulators.openai.calls).toBe(0);
  });

  it("falls back to rule-based advice when OpenAI fails, and says so", async () => {
    const u = await bearerUser();
    const id = await species("full_sun", "low");
    emulators.openai.setMode({ failure: "500" });
    const care = await careOf(await call(`/api/v1/plant-identification/species/${id}/care/`, { bearer: u.access }));
    expect(care).toMatchObject({ source: "rules", light_requirements: "full_sun", water_requirements: "low" });
    expect(String(care!.water)).toMatch(/sparingly/);
    emulators.openai.setMode({ failure: "insufficient_quota" });
    expect(await careOf(await call(`/api/v1/plant-identification/species/${id}/care/`, { bearer: u.access }))).toMatchObject({
      source: "rules",
    });
  });

  // How each language's advice for full sun and little water begins: a reader of it would know it.
  const RULES_OPENINGS: Record<string, { light: string; water: string }> = {
    en: { light: "Full sun:", water: "Water sparingly:" },
    fr: { light: "Plein soleil\u00a0:", water: "Arrosez avec parcimonie\u00a0:" },
    de: { light: "Volle Sonne:", water: "Sparsam gießen:" },
    es: { light: "Pleno sol:", water: "Riega poco:" },
    it: { light: "Pieno sole:", water: "Annaffia con parsimonia:" },
    pt: { light: "Sol pleno:", water: "Regue pouco:" },
    nl: { light: "Volle zon:", water: "Geef spaarzaam water:" },
    cs: { light: "Plné slunce:", water: "Zalévejte střídmě:" },
  };

  it("has rule-based advice in every language both engines answer in, and only those", () => {
    expect([...CARE_RULES_LANGUAGES].sort()).toEqual([...PLANTNET_LANGUAGES].sort());
    expect(Object.keys(RULES_OPENINGS).sort()).toEqual([...PLANTNET_LANGUAGES].sort());
  });

  it.each(Object.entries(RULES_OPENINGS))(
    "with OpenAI down, a request in %s gets the rule-based advice in it",
    async (language, opening) => {
      const u = await bearerUser();
      const id = await species("full_sun", "low");
      await env.DB.prepare("UPDATE species SET hardiness_zone_min = 5, hardiness_zone_max = 9 WHERE id = ?").bind(id).run();
      emulators.openai.setMode({ failure: "500" });
      const care = await careOf(await call(`/api/v1/plant-identification/species/${id}/care/?language=${language}`, { bearer: u.access }));
      expect(care).toMatchObject({ source: "rules", language, light_requirements: "full_sun", water_requirements: "low" });
      expect(String(care!.light).startsWith(opening.light), String(care!.light)).toBe(true);
      expect(String(care!.water).startsWith(opening.water), String(care!.water)).toBe(true);
      expect(String(care!.hardiness)).toMatch(/USDA.*5.*9/);
      // Nothing of another language's advice in it.
      for (const [other, theirs] of Object.entries(RULES_OPENINGS)) {
        if (other !== language) expect(String(care!.water).startsWith(theirs.water)).toBe(false);
      }
    },
  );

  it("with OpenAI down, a language the advice is not written in gets English, and says it is English", async () => {
    const u = await bearerUser();
    const id = await species("full_sun", "low");
    emulators.openai.setMode({ failure: "500" });
    const care = await careOf(await call(`/api/v1/plant-identification/species/${id}/care/?language=ja`, { bearer: u.access }));
    expect(care).toMatchObject({ source: "rules", language: "en" });
    expect(String(care!.water).startsWith(RULES_OPENINGS.en!.water)).toBe(true);
  });

  it("limits regeneration to 5 a minute per user; a refusal is a clear 503", async () => {
    const u = await bearerUser();
    const id = await species();
    for (let i = 0; i < 5; i++) {
      const res = await call(`/api/v1/plant-identification/species/${id}/care/?regenerate=true`, { bearer: u.access });
      expect(res.status, `regeneration ${i + 1}`).toBe(200);
    }
    expect(emulators.openai.calls).toBe(5);
    const limited = await call(`/api/v1/plant-identification/species/${id}/care/?regenerate=true`, { bearer: u.access });
    await expectError(limited, 429, "RATE_LIMITED");
    expect(limited.headers.get("Retry-After")).toBeTruthy();

    const other = await bearerUser();
    emulators.openai.setMode({ failure: "refusal" });
    const refused = await call(`/api/v1/plant-identification/species/${id}/care/?regenerate=true`, { bearer: other.access });
    await expectError(refused, 503, "CARE_UNAVAILABLE");
  });

  it(`regenerations spend the hourly allowance of AI guides too: one account causes at most ${CARE_GENERATE_PER_HOUR} OpenAI calls an hour`, async () => {
    const u = await bearerUser();
    const id = await species();
    // The per-minute limit out of the way: what is left is what an hour of patient calls costs.
    const patient = { ...env, CARE_REGENERATE_RATE_LIMIT: "1000/60" } as Env;
    const ask = (regenerate: boolean, language = "en") =>
      careForSpecies(patient, { speciesId: id, language, regenerate, userId: u.userId });
    expect((await ask(false)).care).toMatchObject({ source: "openai" });
    for (let i = 1; i < CARE_GENERATE_PER_HOUR; i++)
      expect((await ask(true)).care, `regeneration ${i}`).toMatchObject({ source: "openai" });
    expect(emulators.openai.calls).toBe(CARE_GENERATE_PER_HOUR);
    const refused = await ask(true).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 429, code: "RATE_LIMITED", headers: { "Retry-After": expect.stringMatching(/^[1-9]\d*$/) } });
    // Nor does a first-time guide in another language get written past it.
    expect((await ask(false, "fr")).care).toMatchObject({ source: "rules" });
    expect(emulators.openai.calls).toBe(CARE_GENERATE_PER_HOUR);
  });

  it("a regeneration OpenAI does not write (503) spends no allowance: the retry once it answers is not refused", async () => {
    const u = await bearerUser();
    const id = await species();
    // One regeneration a minute: the failed one must not use it up.
    const strict = { ...env, CARE_REGENERATE_RATE_LIMIT: "1/60" } as Env;
    const ask = () => careForSpecies(strict, { speciesId: id, language: "en", regenerate: true, userId: u.userId });
    emulators.openai.setMode({ failure: "insufficient_quota", times: 1 });
    expect(await ask().catch((e: unknown) => e)).toMatchObject({ status: 503, code: "CARE_UNAVAILABLE" });
    expect((await ask()).care).toMatchObject({ source: "openai" });
    expect(await ask().catch((e: unknown) => e)).toMatchObject({ status: 429, code: "RATE_LIMITED" });
  });

  it("404 for an unknown species, 400 for a bad id, 401 without a session", async () => {
    const u = await bearerUser();
    await expectError(
      await call(`/api/v1/plant-identification/species/${crypto.randomUUID()}/care/`, { bearer: u.access }),
      404,
      "NOT_FOUND",
    );
    await expectError(await call(`/api/v1/plant-identification/species/42/care/`, { bearer: u.access }), 400, "VALIDATION_ERROR");
    await expectError(await call(`/api/v1/plant-identification/species/${crypto.randomUUID()}/care/`), 401, "AUTHENTICATION_REQUIRED");
  });
});

describe("OpenAI client", () => {
  const settings = { baseUrl: env.OPENAI_API_URL, apiKey: "emulator-key", model: "gpt-5-mini", timeoutMs: 5000 };

  it("turns truncated output, refusals, quota and bad keys into typed errors", async () => {
    const plant = { scientificName: "Monstera deliciosa", language: "en" };
    emulators.openai.setMode({ failure: "length", times: 1 });
    await expect(generateCareGuide(settings, plant)).rejects.toMatchObject({ kind: "malformed" });
    emulators.openai.setMode({ failure: "refusal", times: 1 });
    await expect(generateCareGuide(settings, plant)).rejects.toMatchObject({ kind: "bad_request" });
    emulators.openai.setMode({ failure: "insufficient_quota", times: 1 });
    const quota = await generateCareGuide(settings, plant).catch((e: ProviderError) => e);
    expect(quota).toMatchObject({ kind: "auth" });
    expect((quota as ProviderError).retryable).toBe(false);
    emulators.openai.setMode({ failure: "429", times: 1, retryAfterSeconds: 3 });
    await expect(generateCareGuide(settings, plant)).rejects.toMatchObject({ kind: "rate_limited", retryAfterS: 3 });
    await expect(generateCareGuide({ ...settings, apiKey: "wrong" }, plant)).rejects.toMatchObject({ kind: "auth" });
    expect(await generateCareGuide(settings, plant)).toMatchObject({ overview: expect.any(String) });
  });
});
