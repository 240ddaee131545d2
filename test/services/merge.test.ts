/**
 * The merge of Plant.id and Pl@ntNet (src/services/merge.ts, API.md §2.3), tested directly:
 * noisy-OR combination, same-species detection (GBIF id or normalised scientific name),
 * rounding, ordering with its tie-breaks, the cap of MAX_MERGED_SUGGESTIONS and ranks.
 */
import { describe, expect, it } from "vitest";
import type { ProviderAnswer, ProviderName, ProviderSuggestion } from "../../src/providers/types";
import { finalStatusFor } from "../../src/services/identification-requests";
import { combinedConfidence, MAX_MERGED_SUGGESTIONS, mergeSuggestions, normaliseScientificName } from "../../src/services/merge";

function suggestion(scientificName: string, probability: number, extra: Partial<ProviderSuggestion> = {}): ProviderSuggestion {
  return {
    scientificName,
    authorship: "",
    commonNames: [],
    family: "",
    genus: "",
    gbifId: null,
    probability,
    description: "",
    url: null,
    similarImages: [],
    watering: null,
    propagationMethods: [],
    edibleParts: [],
    ...extra,
  };
}

function answer(provider: ProviderName, suggestions: ProviderSuggestion[]): ProviderAnswer {
  return { provider, isPlant: true, suggestions, health: null };
}

const summary = (merged: ReturnType<typeof mergeSuggestions>) =>
  merged.map((s) => ({ name: s.scientific_name, p: s.probability, sources: s.sources, rank: s.rank }));

describe("combinedConfidence (noisy-OR: 1 − (1 − p_plant_id) × (1 − p_plantnet))", () => {
  it.each([
    // [p_plant_id, p_plantnet, combined]
    [0.8, 0.5, 0.9],
    [0.6, 0.6, 0.84],
    [0.5, 0.5, 0.75],
    [0.9, 0.9, 0.99],
    [0.2, 0.1, 0.28],
    [0.5, 0, 0.5],
    [0, 0.5, 0.5],
    [0, 0, 0],
    [1, 0.3, 1],
    [0.3, 1, 1],
  ])("both providers: %f and %f → %f", (pPlantId, pPlantNet, combined) => {
    expect(combinedConfidence(pPlantId, pPlantNet)).toBeCloseTo(combined, 12);
  });

  it.each([
    // One provider alone keeps exactly its own score, never inflated.
    [0.7, undefined, 0.7],
    [undefined, 0.3, 0.3],
    [0.12345, undefined, 0.12345],
    [undefined, 0, 0],
    [undefined, undefined, 0],
  ])("one provider or none: %s and %s → %f", (pPlantId, pPlantNet, combined) => {
    expect(combinedConfidence(pPlantId, pPlantNet)).toBe(combined);
  });

  it.each([
    [0.01, 0.01],
    [0.3, 0.7],
    [0.99, 0.5],
    [0.5, 0.99],
  ])("agreement (%f, %f) is above either provider alone", (a, b) => {
    const combined = combinedConfidence(a, b);
    expect(combined).toBeGreaterThan(a);
    expect(combined).toBeGreaterThan(b);
    expect(combined).toBeLessThan(1);
  });

  it("is symmetric in its two scores", () => {
    expect(combinedConfidence(0.37, 0.81)).toBe(combinedConfidence(0.81, 0.37));
  });
});

describe("normaliseScientificName", () => {
  it.each([
    ["Monstera deliciosa", "monstera deliciosa"],
    ["Monstera deliciosa Liebm.", "monstera deliciosa"],
    ["Ficus lyrata Warb.", "ficus lyrata"],
    ["Rosa canina (L.) Desf.", "rosa canina"],
    ["  MONSTERA   Deliciosa  ", "monstera deliciosa"],
    ["Mentha × piperita", "mentha x piperita"],
    ["Mentha ✕ piperita L.", "mentha x piperita"],
    ["Mentha x piperita", "mentha x piperita"],
    ["Mentha ×piperita", "mentha x piperita"],
    ["Citrus ×  limon (L.) Osbeck", "citrus x limon"],
    ["Brassica oleracea var. capitata L.", "brassica oleracea var. capitata"],
    ["Dracaena trifasciata subsp. laurentii", "dracaena trifasciata subsp. laurentii"],
    ["Dracaena trifasciata ssp. laurentii", "dracaena trifasciata subsp. laurentii"],
    ["Acer palmatum cv. atropurpureum", "acer palmatum cv. atropurpureum"],
    ["Hibiscus rosa-sinensis L.", "hibiscus rosa-sinensis"],
    ["Monstera", "monstera"],
    ["Monstera sp.", "monstera"],
  ])("%j → %j", (name, normalised) => {
    expect(normaliseScientificName(name)).toBe(normalised);
  });
});

describe("mergeSuggestions", () => {
  it.each([
    ["no answers at all", {}],
    ["both null", { plant_id: null, plantnet: null }],
    ["both empty", { plant_id: answer("plant_id", []), plantnet: answer("plantnet", []) }],
  ])("%s → []", (_label, answers) => {
    expect(mergeSuggestions(answers)).toEqual([]);
  });

  it("agreement by normalised name combines the scores; one-provider species keep their own score", () => {
    const merged = mergeSuggestions({
      plant_id: answer("plant_id", [suggestion("Monstera deliciosa", 0.6), suggestion("Ficus lyrata", 0.7)]),
      plantnet: answer("plantnet", [suggestion("MONSTERA deliciosa Liebm.", 0.5), suggestion("Pothos aureus", 0.3)]),
    });
    expect(summary(merged)).toEqual([
      { name: "Monstera deliciosa", p: 0.8, sources: ["plant_id", "plantnet"], rank: 1 },
      { name: "Ficus lyrata", p: 0.7, sources: ["plant_id"], rank: 2 },
      { name: "Pothos aureus", p: 0.3, sources: ["plantnet"], rank: 3 },
    ]);
    expect(merged[0]).toMatchObject({ plant_id_probability: 0.6, plantnet_score: 0.5 });
    expect(merged[1]!.plant_id_probability).toBe(0.7);
    expect(merged[1]).not.toHaveProperty("plantnet_score");
    expect(merged[2]!.plantnet_score).toBe(0.3);
    expect(merged[2]).not.toHaveProperty("plant_id_probability");
  });

  it("agreement by GBIF id merges different names; the Plant.id name is the one shown", () => {
    const merged = mergeSuggestions({
      plant_id: answer("plant_id", [suggestion("Dracaena trifasciata", 0.5, { gbifId: 2_768_868 })]),
      plantnet: answer("plantnet", [suggestion("Sansevieria trifasciata", 0.4, { gbifId: 2_768_868 })]),
    });
    expect(summary(merged)).toEqual([{ name: "Dracaena trifasciata", p: 0.7, sources: ["plant_id", "plantnet"], rank: 1 }]);
    expect(merged[0]!.gbif_id).toBe(2_768_868);
  });

  it("different GBIF ids with the same normalised name still merge (name is enough)", () => {
    const merged = mergeSuggestions({
      plant_id: answer("plant_id", [suggestion("Ficus lyrata", 0.5, { gbifId: 1 })]),
      plantnet: answer("plantnet", [suggestion("Ficus lyrata Warb.", 0.5, { gbifId: 2 })]),
    });
    expect(summary(merged)).toEqual([{ name: "Ficus lyrata", p: 0.75, sources: ["plant_id", "plantnet"], rank: 1 }]);
    expect(merged[0]!.gbif_id).toBe(1);
  });

  it("takes the GBIF id from Pl@ntNet when Plant.id has none", () => {
    const merged = mergeSuggestions({
      plant_id: answer("plant_id", [suggestion("Ficus lyrata", 0.5)]),
      plantnet: answer("plantnet", [suggestion("Ficus lyrata", 0.2, { gbifId: 42 })]),
    });
    expect(merged[0]!.gbif_id).toBe(42);
    expect(merged[0]!.probability).toBe(0.6);
  });

  it("a provider's own duplicate never merges with itself: the first entry is kept", () => {
    const merged = mergeSuggestions({
      plant_id: answer("plant_id", [suggestion("Ficus lyrata", 0.4), suggestion("Ficus lyrata Warb.", 0.9)]),
      plantnet: answer("plantnet", [suggestion("Rosa canina", 0.2, { gbifId: 7 }), suggestion("Rosa gallica", 0.6, { gbifId: 7 })]),
    });
    expect(summary(merged)).toEqual([
      { name: "Ficus lyrata", p: 0.4, sources: ["plant_id"], rank: 1 },
      { name: "Rosa canina", p: 0.2, sources: ["plantnet"], rank: 2 },
    ]);
  });

  it.each([
    ["only Plant.id", "plant_id" as const],
    ["only Pl@ntNet", "plantnet" as const],
  ])("%s answering: its scores pass through unchanged, in order", (_label, provider) => {
    const list = [suggestion("Aloe vera", 0.15), suggestion("Haworthia fasciata", 0.62), suggestion("Echeveria elegans", 0.2)];
    const merged = mergeSuggestions({ [provider]: answer(provider, list), [provider === "plant_id" ? "plantnet" : "plant_id"]: null });
    expect(summary(merged)).toEqual([
      { name: "Haworthia fasciata", p: 0.62, sources: [provider], rank: 1 },
      { name: "Echeveria elegans", p: 0.2, sources: [provider], rank: 2 },
      { name: "Aloe vera", p: 0.15, sources: [provider], rank: 3 },
    ]);
  });

  it.each([
    // [provider score, rounded]
    [0.33333, 0.3333],
    [0.66666, 0.6667],
    [0.123449, 0.1234],
    [0.99999, 1],
    [0.00004, 0],
  ])("probabilities are rounded to 4 decimals: %f → %f", (score, rounded) => {
    const [alone] = mergeSuggestions({ plant_id: answer("plant_id", [suggestion("Aloe vera", score)]) });
    expect(alone!.probability).toBe(rounded);
    expect(alone!.plant_id_probability).toBe(rounded);
  });

  it("rounds the combined score, not the inputs: 1 − (1 − 0.33333)(1 − 0.33333) = 0.5555511… → 0.5556", () => {
    const [both] = mergeSuggestions({
      plant_id: answer("plant_id", [suggestion("Aloe vera", 0.33333)]),
      plantnet: answer("plantnet", [suggestion("Aloe vera", 0.33333)]),
    });
    expect(both).toMatchObject({ probability: 0.5556, plant_id_probability: 0.3333, plantnet_score: 0.3333 });
  });

  it("ties on probability: both providers first, then scientific name A→Z", () => {
    const merged = mergeSuggestions({
      plant_id: answer("plant_id", [suggestion("Zamioculcas zamiifolia", 0.5), suggestion("Calathea ornata", 0.2)]),
      // Calathea: 1 − 0.8 × 0.625 = 0.5, tied with the two single-provider species.
      plantnet: answer("plantnet", [suggestion("Begonia maculata", 0.5), suggestion("Calathea ornata", 0.375)]),
    });
    expect(summary(merged)).toEqual([
      { name: "Calathea ornata", p: 0.5, sources: ["plant_id", "plantnet"], rank: 1 },
      { name: "Begonia maculata", p: 0.5, sources: ["plantnet"], rank: 2 },
      { name: "Zamioculcas zamiifolia", p: 0.5, sources: ["plant_id"], rank: 3 },
    ]);
  });

  it(`keeps the best ${MAX_MERGED_SUGGESTIONS} of 16 distinct species, ranked 1..${MAX_MERGED_SUGGESTIONS}`, () => {
    expect(MAX_MERGED_SUGGESTIONS).toBe(10);
    const plantId = Array.from({ length: 8 }, (_, i) => suggestion(`Pid${"abcdefgh"[i]} species`, (i + 1) / 100));
    const plantnet = Array.from({ length: 8 }, (_, i) => suggestion(`Pn${"abcdefgh"[i]} species`, (i + 1) / 100 + 0.005));
    const merged = mergeSuggestions({ plant_id: answer("plant_id", plantId), plantnet: answer("plantnet", plantnet) });
    expect(merged.map((s) => s.rank)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(merged.map((s) => s.probability)).toEqual([0.085, 0.08, 0.075, 0.07, 0.065, 0.06, 0.055, 0.05, 0.045, 0.04]);
    expect(merged.at(-1)!.scientific_name).toBe("Pidd species");
  });

  it("combines the descriptive fields: union of common names, Plant.id first, images capped at 6, care from Plant.id only", () => {
    const img = (n: number) => ({ url: `https://img.test/${n}.jpg` });
    const [merged] = mergeSuggestions({
      plant_id: answer("plant_id", [
        suggestion("Monstera deliciosa", 0.5, {
          commonNames: ["Swiss cheese plant", "Split-leaf philodendron"],
          description: "",
          family: "Araceae",
          genus: "",
          gbifId: null,
          similarImages: [img(1), img(2), img(3), img(4)],
          watering: { min: 2, max: 3 },
          propagationMethods: ["cuttings"],
          url: "https://en.wikipedia.org/wiki/Monstera_deliciosa",
        }),
      ]),
      plantnet: answer("plantnet", [
        suggestion("Monstera deliciosa", 0.5, {
          commonNames: ["Split-leaf philodendron", "Ceriman"],
          description: "A climbing aroid.",
          family: "Araceae (pn)",
          genus: "Monstera",
          similarImages: [img(5), img(6), img(7)],
          watering: { min: 1, max: 1 },
          propagationMethods: ["seeds"],
          url: "https://plantnet.test/monstera",
        }),
      ]),
    });
    expect(merged).toEqual({
      plant_name: "Swiss cheese plant",
      scientific_name: "Monstera deliciosa",
      probability: 0.75,
      common_names: ["Swiss cheese plant", "Split-leaf philodendron", "Ceriman"],
      description: "A climbing aroid.",
      family: "Araceae",
      genus: "Monstera",
      similar_images: [img(1), img(2), img(3), img(4), img(5), img(6)],
      watering: { min: 2, max: 3 },
      propagation_methods: ["cuttings"],
      url: "https://en.wikipedia.org/wiki/Monstera_deliciosa",
      sources: ["plant_id", "plantnet"],
      plant_id_probability: 0.5,
      plantnet_score: 0.5,
      calibration_version: "plant_id:raw,plantnet:raw",
      rank: 1,
    });
  });

  it("a Pl@ntNet-only species has no care fields, and its name falls back to the scientific name", () => {
    const [merged] = mergeSuggestions({
      plantnet: answer("plantnet", [
        suggestion("Ceropegia woodii", 0.4, { watering: { min: 1, max: 2 }, propagationMethods: ["cuttings"], url: "https://x.test" }),
      ]),
    });
    expect(merged).toEqual({
      plant_name: "Ceropegia woodii",
      scientific_name: "Ceropegia woodii",
      probability: 0.4,
      common_names: [],
      description: "",
      family: "",
      genus: "",
      similar_images: [],
      sources: ["plantnet"],
      plantnet_score: 0.4,
      calibration_version: "plant_id:raw,plantnet:raw",
      rank: 1,
    });
  });

  it("with calibration maps, combines calibrated scores, keeps the raw ones, and names the versions", () => {
    const calibrations = {
      plant_id: {
        version: 3,
        map: [
          [0.3, 0.3],
          [0.9, 0.5],
        ] as [number, number][],
      },
      plantnet: { version: 1, map: [[0.4, 0.4]] as [number, number][] },
    };
    const merged = mergeSuggestions(
      {
        plant_id: answer("plant_id", [suggestion("Monstera deliciosa", 0.9), suggestion("Ficus lyrata", 0.6)]),
        plantnet: answer("plantnet", [suggestion("Monstera deliciosa", 0.6)]),
      },
      calibrations,
    );
    // Monstera: 1 − (1 − 0.5)(1 − 0.4) = 0.7 instead of the raw 1 − 0.1 × 0.4 = 0.96.
    expect(merged.map((m) => [m.scientific_name, m.probability, m.plant_id_probability, m.calibration_version])).toEqual([
      ["Monstera deliciosa", 0.7, 0.9, "plant_id:v3,plantnet:v1"],
      ["Ficus lyrata", 0.4, 0.6, "plant_id:v3,plantnet:v1"],
    ]);
  });
});

describe("a request's final status from its merged suggestions (API.md §2.2: identified when the best has confidence ≥ 0.5)", () => {
  const status = (answers: Parameters<typeof mergeSuggestions>[0]) => finalStatusFor(mergeSuggestions(answers));

  it.each([
    [0.5, "identified"],
    [0.49, "needs_help"],
    [0.97, "identified"],
  ])("one provider's best at %f → %s", (p, expected) => {
    expect(status({ plant_id: answer("plant_id", [suggestion("Ficus lyrata", p)]) })).toBe(expected);
  });

  it("judges the best suggestion whatever order a provider listed them in", () => {
    expect(status({ plantnet: answer("plantnet", [suggestion("Ficus lyrata", 0.2), suggestion("Monstera deliciosa", 0.6)]) })).toBe(
      "identified",
    );
  });

  it("lets two providers' agreement reach the threshold neither reaches alone; nothing found is needs_help", () => {
    const agreeing = {
      plant_id: answer("plant_id", [suggestion("Monstera deliciosa", 0.4)]),
      plantnet: answer("plantnet", [suggestion("Monstera deliciosa", 0.3)]),
    };
    expect(status(agreeing)).toBe("identified");
    expect(status({ plant_id: answer("plant_id", []), plantnet: null })).toBe("needs_help");
  });
});
