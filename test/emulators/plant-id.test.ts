import { describe, expect, it } from "vitest";

import { createPlantIdEmulator, type PlantIdEmulator } from "../../emulators/plant-id";
import { makeJpeg, makePng, notAPlantPng, toBase64 } from "./helpers";

const BASE = "https://plant-id.emulator.test/v3";

interface Suggestion {
  id: string;
  name: string;
  probability: number;
  similar_images?: { id: string; url: string; url_small: string; similarity: number }[];
  details: Record<string, unknown>;
}

function post(emulator: PlantIdEmulator, path: string, body: unknown, headers: Record<string, string> = { "Api-Key": "emulator-key" }) {
  return emulator.handle(
    new Request(`${BASE}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    }),
  );
}

async function identify(emulator: PlantIdEmulator, images: Uint8Array[], query = "", extra: Record<string, unknown> = {}) {
  const response = await post(emulator, `/identification${query}`, { images: images.map(toBase64), ...extra });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, any>;
}

describe("Plant.id emulator: identification", () => {
  it("answers the documented envelope with suggestions sorted by probability", async () => {
    const emulator = createPlantIdEmulator();
    const body = await identify(
      emulator,
      [makePng(8, 8, { seed: 1 })],
      "?details=common_names,taxonomy,url,description,watering,propagation_methods,edible_parts",
      {
        latitude: 50.08,
        longitude: 14.42,
      },
    );

    expect(body).toMatchObject({
      access_token: expect.any(String),
      model_version: expect.stringMatching(/^plant_id:/),
      custom_id: null,
      input: {
        latitude: 50.08,
        longitude: 14.42,
        similar_images: true,
        images: [expect.stringMatching(/^https:\/\/plant-id\.emulator\.invalid\//)],
      },
      status: "COMPLETED",
      sla_compliant_client: true,
      sla_compliant_system: true,
      created: expect.any(Number),
      completed: expect.any(Number),
    });
    expect(body.result.is_plant).toEqual({ probability: expect.any(Number), binary: true, threshold: 0.5 });

    const suggestions = body.result.classification.suggestions as Suggestion[];
    expect(suggestions.length).toBe(3);
    expect(suggestions.map((s) => s.probability)).toEqual([...suggestions.map((s) => s.probability)].sort((a, b) => b - a));
    const [top] = suggestions;
    expect(top!.probability).toBeGreaterThanOrEqual(0.55);
    expect(top!.probability).toBeLessThanOrEqual(0.97);
    expect(top!.id).toMatch(/^[0-9a-f]{16}$/);
    expect(top!.name).toMatch(/^[A-Z][a-z]+ [a-z]+$/);
    expect(top!.similar_images![0]).toMatchObject({
      url: expect.stringMatching(/^https:\/\/plant-id\.emulator\.invalid\/similar_images\//),
      url_small: expect.stringContaining(".small."),
      similarity: expect.any(Number),
    });
    expect(Object.keys(top!.details).sort()).toEqual(
      ["common_names", "taxonomy", "url", "description", "watering", "propagation_methods", "edible_parts", "language", "entity_id"].sort(),
    );
    expect(top!.details).toMatchObject({
      language: "en",
      entity_id: top!.id,
      common_names: expect.arrayContaining([expect.any(String)]),
      taxonomy: { kingdom: "Plantae", genus: top!.name.split(" ")[0] },
      description: {
        value: expect.any(String),
        citation: expect.any(String),
        license_name: expect.any(String),
        license_url: expect.any(String),
      },
      watering: { min: expect.any(Number), max: expect.any(Number) },
    });
  });

  it("returns only language and entity_id without details, and null for unknown requested keys", async () => {
    const emulator = createPlantIdEmulator();
    const plain = await identify(emulator, [makePng(4, 4)]);
    const top = plain.result.classification.suggestions[0] as Suggestion;
    expect(top.details).toEqual({ language: "en", entity_id: top.id });

    const withUnknown = await identify(emulator, [makePng(4, 4)], "?details=common_names,no_such_detail,cultural_significance");
    expect(withUnknown.result.classification.suggestions[0].details).toMatchObject({ no_such_detail: null, cultural_significance: null });
  });

  it("localises common names with `language`", async () => {
    const emulator = createPlantIdEmulator();
    const en = await identify(emulator, [makePng(4, 4, { seed: 3 })], "?details=common_names&language=en");
    const fr = await identify(emulator, [makePng(4, 4, { seed: 3 })], "?details=common_names&language=fr,en");
    const [enTop, frTop] = [en.result.classification.suggestions[0], fr.result.classification.suggestions[0]];
    expect(frTop.details.language).toBe("fr");
    expect(frTop.name).toBe(enTop.name);
    expect(frTop.details.common_names).not.toEqual(enTop.details.common_names);
  });

  it("omits similar_images when the request sets similar_images=false", async () => {
    const body = await identify(createPlantIdEmulator(), [makePng(4, 4)], "", { similar_images: false });
    expect(body.input.similar_images).toBe(false);
    for (const suggestion of body.result.classification.suggestions) expect(suggestion).not.toHaveProperty("similar_images");
  });

  it("is deterministic per image bytes and varies across images", async () => {
    const emulator = createPlantIdEmulator();
    const summary = (body: Record<string, any>) => body.result.classification.suggestions.map((s: Suggestion) => [s.name, s.probability]);
    const image = makeJpeg(640, 480, 7);
    const first = await identify(emulator, [image]);
    const second = await identify(emulator, [image, makePng(4, 4)]);
    expect(summary(second)).toEqual(summary(first));
    expect(second.access_token).not.toBe(first.access_token);

    const tops = new Set<string>();
    for (let seed = 0; seed < 12; seed += 1)
      tops.add((await identify(emulator, [makePng(4, 4, { seed })])).result.classification.suggestions[0].name);
    expect(tops.size).toBeGreaterThan(1);
  });

  it("reports a NOTAPLANT image as not a plant with low probabilities", async () => {
    const body = await identify(createPlantIdEmulator(), [notAPlantPng()]);
    expect(body.result.is_plant.binary).toBe(false);
    expect(body.result.is_plant.probability).toBeLessThan(0.5);
    for (const suggestion of body.result.classification.suggestions) expect(suggestion.probability).toBeLessThan(0.2);
  });

  it("adds is_healthy and disease with health=all", async () => {
    const body = await identify(createPlantIdEmulator(), [makePng(4, 4)], "?details=common_names,treatment,cause", { health: "all" });
    expect(body.input.health).toBe("all");
    expect(body.result.classification.suggestions.length).toBeGreaterThan(0);
    expect(body.result.is_healthy).toEqual({ probability: expect.any(Number), binary: expect.any(Boolean), threshold: 0.525 });
    const disease = body.result.disease.suggestions[0];
    expect(disease.details).toMatchObject({
      treatment: { prevention: expect.any(Array) },
      common_names: expect.any(Array),
      language: "en",
    });
    expect(disease.details).toHaveProperty("cause");
    // Disease-only keys stay off plant suggestions; shared keys appear on both.
    expect(body.result.classification.suggestions[0].details).not.toHaveProperty("treatment");
    expect(body.result.classification.suggestions[0].details).toHaveProperty("common_names");
  });

  it("answers async=true with CREATED and no result, then GET by access token completes it", async () => {
    const emulator = createPlantIdEmulator();
    const created = await identify(emulator, [makePng(4, 4)], "?async=true");
    expect(created.status).toBe("CREATED");
    expect(created).not.toHaveProperty("result");
    expect(created.completed).toBeNull();

    const fetched = await emulator.handle(
      new Request(`${BASE}/identification/${created.access_token}?details=common_names`, { headers: { "Api-Key": "emulator-key" } }),
    );
    expect(fetched.status).toBe(200);
    const body = (await fetched.json()) as Record<string, any>;
    expect(body.status).toBe("COMPLETED");
    expect(body.result.classification.suggestions[0].details.common_names).toEqual(expect.any(Array));

    const unknown = await emulator.handle(new Request(`${BASE}/identification/nope`, { headers: { "Api-Key": "emulator-key" } }));
    expect(unknown.status).toBe(404);
  });

  it("supports classification_level=genus and classification_raw", async () => {
    const emulator = createPlantIdEmulator();
    const genus = await identify(emulator, [makePng(4, 4)], "", { classification_level: "genus" });
    expect(genus.input.classification_level).toBe("genus");
    expect(genus.result.classification.suggestions[0].name).toMatch(/^[A-Z][a-z]+$/);

    const raw = await identify(emulator, [makePng(4, 4)], "", { classification_raw: true });
    expect(raw.result.classification).toEqual({ genus: expect.any(Array), species: expect.any(Array) });
  });
});

describe("Plant.id emulator: health assessment", () => {
  it("answers /health_assessment with the health shape", async () => {
    const response = await post(createPlantIdEmulator(), "/health_assessment?details=local_name,description,treatment,classification,url", {
      images: [toBase64(makePng(4, 4))],
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, any>;
    expect(body.input.health).toBe("only");
    expect(Object.keys(body.result).sort()).toEqual(["disease", "is_healthy", "is_plant"]);
    const suggestions = body.result.disease.suggestions;
    expect(suggestions.length).toBe(3);
    expect(suggestions[0]).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      name: expect.any(String),
      probability: expect.any(Number),
      details: { local_name: expect.any(String), description: expect.any(String), classification: expect.any(Array), language: "en" },
    });
    expect(body.result.disease.question.options.yes).toMatchObject({ suggestion_index: 0, entity_id: suggestions[0].id });
  });

  it("treats health=only on /identification the same way and honours full_disease_list", async () => {
    const body = await identify(createPlantIdEmulator(), [makePng(4, 4)], "?full_disease_list=true", { health: "only" });
    expect(body.result).not.toHaveProperty("classification");
    expect(body.result.disease.suggestions.length).toBeGreaterThan(3);
  });
});

describe("Plant.id emulator: auth, validation, credits", () => {
  const image = toBase64(makePng(4, 4));

  it("requires a known Api-Key, or Basic auth as client:<key>", async () => {
    const emulator = createPlantIdEmulator({ apiKeys: ["k1"] });
    const missing = await post(emulator, "/identification", { images: [image] }, {});
    expect(missing.status).toBe(401);
    expect(await missing.text()).toBe("No api key provided.");

    const wrong = await post(emulator, "/identification", { images: [image] }, { "Api-Key": "emulator-key" });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toBe("The specified api key not found.");

    const basic = await post(emulator, "/identification", { images: [image] }, { Authorization: `Basic ${btoa("client:k1")}` });
    expect(basic.status).toBe(200);
    const badBasic = await post(emulator, "/identification", { images: [image] }, { Authorization: `Basic ${btoa("someone:k1")}` });
    expect(badBasic.status).toBe(401);
  });

  it.each([
    ["invalid JSON", "{not json", "Invalid json data"],
    ["no images", {}, "Missing image data"],
    ["an empty image list", { images: [] }, "Missing image data"],
    ["images that are not strings", { images: [1] }, "Images have to be list of base64 strings"],
    ["invalid base64", { images: ["***"] }, "Invalid base64 image data"],
    ["more than 5 images", { images: Array(6).fill(image) }, "Too many images. Maximum is 5."],
    ["a bad health value", { images: [image], health: "some" }, 'health has to be one of "all", "only"'],
  ])("answers 400 for %s", async (_case, body, message) => {
    const response = await post(createPlantIdEmulator(), "/identification", body);
    expect(response.status).toBe(400);
    expect(await response.text()).toBe(message);
  });

  it("answers 404 for unknown paths and 405 for wrong methods", async () => {
    const emulator = createPlantIdEmulator();
    expect((await emulator.handle(new Request(`${BASE}/nope`, { headers: { "Api-Key": "emulator-key" } }))).status).toBe(404);
    expect((await emulator.handle(new Request(`${BASE}/identification`, { headers: { "Api-Key": "emulator-key" } }))).status).toBe(405);
  });

  it("reports usage and answers 429 with the credit message when credits run out", async () => {
    const emulator = createPlantIdEmulator({ creditLimit: 2 });
    expect((await post(emulator, "/identification", { images: [image] })).status).toBe(200);
    expect((await post(emulator, "/health_assessment", { images: [image] })).status).toBe(200);
    const exhausted = await post(emulator, "/identification", { images: [image] });
    expect(exhausted.status).toBe(429);
    expect(await exhausted.text()).toContain("does not have sufficient number of available credits");

    const usage = await emulator.handle(new Request(`${BASE}/usage_info`, { headers: { "Api-Key": "emulator-key" } }));
    expect(await usage.json()).toMatchObject({
      active: true,
      credit_limits: { month: 2 },
      used: { month: 2 },
      can_use_credits: { value: false },
      remaining: { month: 0 },
    });

    emulator.reset();
    expect((await post(emulator, "/identification", { images: [image] })).status).toBe(200);
  });

  it("records calls for assertions", async () => {
    const emulator = createPlantIdEmulator();
    await post(emulator, "/identification?details=url", { images: [image] });
    expect(emulator.calls).toBe(1);
    expect(emulator.requests).toEqual([{ method: "POST", path: "/v3/identification", search: "?details=url" }]);
  });
});
