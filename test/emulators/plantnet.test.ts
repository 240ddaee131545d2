import { describe, expect, it } from "vitest";

import { createPlantNetEmulator, type PlantNetEmulator } from "../../emulators/plantnet";
import { makeJpeg, makePng, notAPlantPng, plantNetForm } from "./helpers";

const BASE = "https://plantnet.emulator.test";

function identify(emulator: PlantNetEmulator, form: FormData, query = "api-key=emulator-key", project = "all") {
  return emulator.handle(new Request(`${BASE}/v2/identify/${project}?${query}`, { method: "POST", body: form }));
}

async function identifyJson(emulator: PlantNetEmulator, form: FormData, query = "api-key=emulator-key") {
  const response = await identify(emulator, form, query);
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, any>;
}

describe("Pl@ntNet emulator: identify", () => {
  it("answers the documented shape with results sorted by score", async () => {
    const emulator = createPlantNetEmulator();
    const body = await identifyJson(
      emulator,
      plantNetForm([
        { bytes: makePng(8, 8, { seed: 2 }), organ: "leaf" },
        { bytes: makeJpeg(800, 600), type: "image/jpeg", organ: "auto" },
      ]),
    );

    expect(body).toMatchObject({
      query: {
        project: "all",
        images: [expect.any(String), expect.any(String)],
        organs: ["leaf", "auto"],
        includeRelatedImages: false,
        noReject: false,
        type: null,
      },
      language: "en",
      preferedReferential: "k-world-flora",
      bestMatch: expect.any(String),
      version: expect.any(String),
      remainingIdentificationRequests: 499,
    });
    expect(body.predictedOrgans).toEqual([
      { image: body.query.images[0], filename: "photo_0.png", organ: "leaf", score: expect.any(Number) },
      {
        image: body.query.images[1],
        filename: "photo_1.png",
        organ: expect.stringMatching(/^(leaf|flower|fruit|bark)$/),
        score: expect.any(Number),
      },
    ]);

    const results = body.results as Record<string, any>[];
    expect(results.length).toBe(5);
    expect(results.map((r) => r.score)).toEqual([...results.map((r) => r.score)].sort((a, b) => b - a));
    const [top] = results;
    expect(top).toMatchObject({
      score: expect.any(Number),
      species: {
        scientificNameWithoutAuthor: expect.any(String),
        scientificNameAuthorship: expect.any(String),
        scientificName: expect.any(String),
        genus: { scientificNameWithoutAuthor: expect.any(String), scientificNameAuthorship: "", scientificName: expect.any(String) },
        family: { scientificNameWithoutAuthor: expect.any(String), scientificNameAuthorship: "", scientificName: expect.any(String) },
        commonNames: expect.any(Array),
      },
      gbif: { id: expect.stringMatching(/^\d+$/) },
      powo: { id: expect.stringMatching(/^\d+-\d$/) },
    });
    expect(body.bestMatch).toBe(top!.species.scientificName);
    expect(top).not.toHaveProperty("images");
  });

  it("honours nb-results, include-related-images, lang and type", async () => {
    const emulator = createPlantNetEmulator();
    const form = () => plantNetForm([{ bytes: makePng(4, 4, { seed: 5 }) }]);
    const en = await identifyJson(emulator, form(), "api-key=emulator-key&nb-results=2&include-related-images=true&type=legacy");
    expect(en.results.length).toBe(2);
    expect(en.query).toMatchObject({ includeRelatedImages: true, type: "legacy" });
    expect(en.results[0].images[0]).toMatchObject({
      organ: expect.any(String),
      author: expect.any(String),
      license: expect.any(String),
      date: { timestamp: expect.any(Number), string: expect.any(String) },
      citation: expect.any(String),
      url: { o: expect.stringMatching(/^https:\/\//), m: expect.any(String), s: expect.any(String) },
    });

    const fr = await identifyJson(emulator, form(), "api-key=emulator-key&lang=fr");
    expect(fr.language).toBe("fr");
    expect(fr.results[0].species.scientificName).toBe(en.results[0].species.scientificName);
    expect(fr.results[0].species.commonNames).not.toEqual(en.results[0].species.commonNames);
  });

  it("is deterministic per image bytes", async () => {
    const emulator = createPlantNetEmulator();
    const ranking = (body: Record<string, any>) => body.results.map((r: Record<string, any>) => [r.species.scientificName, r.score]);
    const first = await identifyJson(emulator, plantNetForm([{ bytes: makePng(4, 4, { seed: 9 }) }]));
    const again = await identifyJson(emulator, plantNetForm([{ bytes: makePng(4, 4, { seed: 9 }) }]));
    expect(ranking(again)).toEqual(ranking(first));
    const other = await identifyJson(emulator, plantNetForm([{ bytes: makePng(4, 4, { seed: 10 }) }]));
    expect(ranking(other)).not.toEqual(ranking(first));
  });

  it("rejects a NOTAPLANT image with 404 Species not found, unless no-reject=true", async () => {
    const emulator = createPlantNetEmulator();
    const rejected = await identify(emulator, plantNetForm([{ bytes: notAPlantPng() }]));
    expect(rejected.status).toBe(404);
    expect(await rejected.json()).toEqual({ statusCode: 404, error: "Not Found", message: "Species not found" });

    const accepted = await identifyJson(emulator, plantNetForm([{ bytes: notAPlantPng() }]), "api-key=emulator-key&no-reject=true");
    expect(accepted.query.noReject).toBe(true);
    expect(accepted.results[0].score).toBeLessThan(0.1);
  });

  it("lists projects without using the identify quota", async () => {
    const emulator = createPlantNetEmulator();
    const response = await emulator.handle(new Request(`${BASE}/v2/projects?api-key=emulator-key`));
    expect(response.status).toBe(200);
    const projects = (await response.json()) as { id: string }[];
    expect(projects.map((p) => p.id)).toEqual(
      expect.arrayContaining(["all", "k-world-flora", "weurope", "k-middle-europe", "canada", "useful"]),
    );
    expect(emulator.remainingIdentificationRequests).toBe(500);

    const regional = await identifyJson(emulator, plantNetForm([{ bytes: makePng(4, 4) }]), "api-key=emulator-key");
    expect(regional.query.project).toBe("all");
    const weurope = await identify(emulator, plantNetForm([{ bytes: makePng(4, 4) }]), "api-key=emulator-key", "weurope");
    expect(((await weurope.json()) as Record<string, any>).preferedReferential).toBe("weurope");
    expect((await identify(emulator, plantNetForm([{ bytes: makePng(4, 4) }]), "api-key=emulator-key", "mars")).status).toBe(404);
  });
});

describe("Pl@ntNet emulator: errors and quota", () => {
  it("answers 401 in Boom JSON without or with an unknown api-key", async () => {
    const emulator = createPlantNetEmulator();
    for (const query of ["", "api-key=wrong"]) {
      const response = await identify(emulator, plantNetForm([{ bytes: makePng(4, 4) }]), query);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ statusCode: 401, error: "Unauthorized", message: expect.any(String) });
    }
  });

  it.each([
    ["no images", () => new FormData()],
    [
      "more images than organs",
      () => {
        const form = plantNetForm([{ bytes: makePng(4, 4) }]);
        form.append("images", new Blob([makePng(4, 4, { seed: 1 })], { type: "image/png" }), "extra.png");
        return form;
      },
    ],
    ["six images", () => plantNetForm(Array.from({ length: 6 }, (_, seed) => ({ bytes: makePng(2, 2, { seed }) })))],
    ["an unknown organ", () => plantNetForm([{ bytes: makePng(4, 4), organ: "root" }])],
  ])("answers 400 for %s", async (_case, form) => {
    const response = await identify(createPlantNetEmulator(), form());
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ statusCode: 400, error: "Bad Request" });
  });

  it("answers 400 for bad query parameters", async () => {
    const emulator = createPlantNetEmulator();
    for (const query of ["nb-results=0", "lang=xx", "no-reject=maybe"]) {
      expect((await identify(emulator, plantNetForm([{ bytes: makePng(4, 4) }]), `api-key=emulator-key&${query}`)).status).toBe(400);
    }
  });

  it("answers 415 for a part that is not JPEG or PNG", async () => {
    const response = await identify(
      createPlantNetEmulator(),
      plantNetForm([{ bytes: new TextEncoder().encode("GIF89a"), type: "image/gif" }]),
    );
    expect(response.status).toBe(415);
    expect(await response.json()).toMatchObject({ statusCode: 415 });
  });

  it("answers 413 when the images exceed 50 MB in total", async () => {
    const big = new Uint8Array(26 * 1024 * 1024);
    const response = await identify(createPlantNetEmulator(), plantNetForm([{ bytes: big }, { bytes: big }]));
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ statusCode: 413 });
  });

  it("decrements the daily quota with RateLimit headers, then answers 429", async () => {
    const emulator = createPlantNetEmulator({ dailyQuota: 2 });
    const first = await identify(emulator, plantNetForm([{ bytes: makePng(4, 4) }]));
    expect(first.headers.get("ratelimit-policy")).toMatch(/^"dailyQuota";q=2;w=86400;pk=:.+:$/);
    expect(first.headers.get("ratelimit")).toMatch(/;r=1;t=\d+;/);
    expect(((await first.json()) as Record<string, unknown>).remainingIdentificationRequests).toBe(1);

    // A rejected non-plant image still counts against the quota.
    expect((await identify(emulator, plantNetForm([{ bytes: notAPlantPng() }]))).status).toBe(404);
    const exhausted = await identify(emulator, plantNetForm([{ bytes: makePng(4, 4) }]));
    expect(exhausted.status).toBe(429);
    expect(exhausted.headers.get("ratelimit")).toMatch(/;r=0;/);
    expect(Number(exhausted.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await exhausted.json()).toMatchObject({ statusCode: 429, error: "Too Many Requests" });

    emulator.reset();
    expect(emulator.remainingIdentificationRequests).toBe(2);
  });
});
