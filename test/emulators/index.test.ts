import { describe, expect, it } from "vitest";

import { EMULATOR_TEST_URLS, createEmulators, emulatorBaseUrls, hostMap } from "../../emulators/index";
import { makePng, notAPlantPng, plantNetForm, toBase64 } from "./helpers";

const ORIGIN = "http://127.0.0.1:8790";

function control(emulators: ReturnType<typeof createEmulators>, path: string, body?: unknown) {
  return emulators.route(
    new Request(
      `${ORIGIN}/__control${path}`,
      body === undefined ? {} : { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) },
    ),
  );
}

describe("combined server routing", () => {
  it("strips the emulator prefix and keeps the rest of the path and query", async () => {
    const emulators = createEmulators();
    const urls = emulatorBaseUrls(ORIGIN);

    const plantId = await emulators.route(
      new Request(`${urls.PLANT_ID_API_URL}/identification?details=url`, {
        method: "POST",
        headers: { "Api-Key": "emulator-key", "content-type": "application/json" },
        body: JSON.stringify({ images: [toBase64(makePng(4, 4))] }),
      }),
    );
    expect(plantId.status).toBe(200);
    expect(emulators.plantId.requests).toEqual([{ method: "POST", path: "/v3/identification", search: "?details=url" }]);

    const plantnet = await emulators.route(
      new Request(`${urls.PLANTNET_API_URL}/v2/identify/all?api-key=emulator-key`, {
        method: "POST",
        body: plantNetForm([{ bytes: makePng(4, 4) }]),
      }),
    );
    expect(plantnet.status).toBe(200);
    expect(emulators.plantnet.requests[0]?.path).toBe("/v2/identify/all");

    const trefle = await emulators.route(new Request(`${urls.TREFLE_API_URL}/species/quercus-robur?token=emulator-key`));
    expect(trefle.status).toBe(200);
    // Trefle links are server-relative to the emulator, exactly as upstream.
    expect(((await trefle.json()) as any).data.links.self).toBe("/api/v1/species/quercus-robur");

    const openai = await emulators.route(
      new Request(`${urls.OPENAI_API_URL}/models`, { headers: { authorization: "Bearer emulator-key" } }),
    );
    expect(openai.status).toBe(200);

    const email = await emulators.route(
      new Request(`${urls.EMAIL_API_URL}/emails`, {
        method: "POST",
        headers: { authorization: "Bearer emulator-key" },
        body: JSON.stringify({ from: "a@example.com", to: "b@example.com", subject: "s", text: "t" }),
      }),
    );
    expect(email.status).toBe(200);
    expect(emulators.email.outbox).toHaveLength(1);
  });

  it("answers the health check and 404 for unknown prefixes", async () => {
    const emulators = createEmulators();
    const health = await emulators.route(new Request(`${ORIGIN}/__health`));
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    expect((await emulators.route(new Request(`${ORIGIN}/perenual/api`))).status).toBe(404);
  });

  it("names every prefix it serves in that 404, not only the providers'", async () => {
    const emulators = createEmulators({ mediaBaseUrl: `${ORIGIN}/media` });
    const res = await emulators.route(new Request(`${ORIGIN}/media/leaf.jpg`));
    expect(res.status).toBe(404);
    const { error } = (await res.json()) as { error: string };
    for (const prefix of ["/plant-id", "/email", "/firebase", "/push", "/sentry", "/media/plant-id", "/media/plantnet", "/__control"]) {
      expect(error).toContain(prefix);
    }
  });

  it("passes the caller's abort signal through the prefix routing", async () => {
    const emulators = createEmulators();
    emulators.trefle.setMode({ failure: "hang" });
    const pending = emulators.route(new Request(`${ORIGIN}/trefle/api/v1/species?token=emulator-key`, { signal: AbortSignal.timeout(50) }));
    await expect(pending).rejects.toMatchObject({ name: "TimeoutError" });
  });
});

describe("control API", () => {
  it("sets a mode, reports modes and call counts, and resets everything", async () => {
    const emulators = createEmulators();
    const set = await control(emulators, "/openai", { failure: "refusal", times: 1, latencyMs: 0 });
    expect(set.status).toBe(200);
    expect(await set.json()).toMatchObject({ name: "openai", mode: { failure: "refusal", times: 1 } });

    await emulators.route(new Request(`${ORIGIN}/trefle/api/v1/species?token=emulator-key`));
    const state = (await (await control(emulators, "")).json()) as any;
    expect(Object.keys(state.emulators).sort()).toEqual(["email", "openai", "plant-id", "plantnet", "trefle"]);
    expect(state.emulators.openai.mode).toEqual({ latencyMs: 0, failure: "refusal", retryAfterSeconds: 1, times: 1 });
    expect(state.emulators.trefle.calls).toBe(1);

    const reset = await control(emulators, "/reset", {});
    expect(reset.status).toBe(200);
    const after = (await reset.json()) as any;
    expect(after.emulators.openai.mode.failure).toBe("none");
    expect(after.emulators.trefle.calls).toBe(0);
  });

  it("rejects bad input with 400 and unknown emulators with 404", async () => {
    const emulators = createEmulators();
    for (const body of [
      "{oops",
      { failure: "teapot" },
      { failure: "refusal" },
      { latencyMs: "slow" },
      { times: 0 },
      { colour: "red" },
      [1],
    ]) {
      const response = await control(emulators, "/plant-id", body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(await response.json()).toEqual({ error: expect.any(String) });
    }
    expect(emulators.plantId.mode.failure).toBe("none");
    expect((await control(emulators, "/perenual", { failure: "500" })).status).toBe(404);
    expect((await emulators.route(new Request(`${ORIGIN}/__control/plant-id`))).status).toBe(405);
  });

  it("accepts the extra OpenAI failures only for OpenAI", async () => {
    const emulators = createEmulators();
    expect((await control(emulators, "/openai", { failure: "insufficient_quota" })).status).toBe(200);
    expect((await control(emulators, "/trefle", { failure: "insufficient_quota" })).status).toBe(400);
  });
});

describe("hostMap", () => {
  it("routes *.emulator.test hosts to the matching emulator with the path unchanged", async () => {
    const emulators = createEmulators();
    const route = hostMap(emulators);

    const response = await route(`${EMULATOR_TEST_URLS.TREFLE_API_URL}/plants/search?q=oak&token=emulator-key`);
    expect(response?.status).toBe(200);
    expect(emulators.trefle.requests[0]).toEqual({ method: "GET", path: "/api/v1/plants/search", search: "?q=oak&token=emulator-key" });

    const viaRequest = await route(
      new Request(`${EMULATOR_TEST_URLS.OPENAI_API_URL}/models`, { headers: { authorization: "Bearer emulator-key" } }),
    );
    expect(viaRequest?.status).toBe(200);
    expect(route("https://api.plant.id/v3/identification")).toBeUndefined();
  });

  it("gives a fresh Response per call", async () => {
    const route = hostMap(createEmulators());
    const url = `${EMULATOR_TEST_URLS.TREFLE_API_URL}/species/quercus-robur?token=emulator-key`;
    const [a, b] = await Promise.all([route(url), route(url)]);
    expect(a).not.toBe(b);
    expect(await a!.json()).toEqual(await b!.json());
  });
});

describe("consistency across providers", () => {
  it("Plant.id and Pl@ntNet agree on the top species with different scores, and Trefle knows it", async () => {
    const emulators = createEmulators();
    const route = hostMap(emulators);
    let differentScores = 0;
    for (let seed = 0; seed < 10; seed += 1) {
      const image = makePng(6, 6, { seed });
      const plantId = (await (await route(`${EMULATOR_TEST_URLS.PLANT_ID_API_URL}/identification`, {
        method: "POST",
        headers: { "Api-Key": "emulator-key", "content-type": "application/json" },
        body: JSON.stringify({ images: [toBase64(image)] }),
      }))!.json()) as any;
      const plantnet = (await (await route(`${EMULATOR_TEST_URLS.PLANTNET_API_URL}/v2/identify/all?api-key=emulator-key`, {
        method: "POST",
        body: plantNetForm([{ bytes: image }]),
      }))!.json()) as any;

      const plantIdTop = plantId.result.classification.suggestions[0];
      const plantnetTop = plantnet.results[0];
      expect(plantnetTop.species.scientificNameWithoutAuthor).toBe(plantIdTop.name);
      if (plantnetTop.score !== plantIdTop.probability) differentScores += 1;

      const trefle = await route(
        `${EMULATOR_TEST_URLS.TREFLE_API_URL}/species?filter[scientific_name]=${encodeURIComponent(plantIdTop.name)}&token=emulator-key`,
      );
      expect(((await trefle!.json()) as any).data[0].scientific_name).toBe(plantIdTop.name);
    }
    expect(differentScores).toBeGreaterThan(5);
  });

  it("treats a NOTAPLANT image as a non-plant in both identification providers", async () => {
    const route = hostMap(createEmulators());
    const plantId = (await (await route(`${EMULATOR_TEST_URLS.PLANT_ID_API_URL}/identification`, {
      method: "POST",
      headers: { "Api-Key": "emulator-key" },
      body: JSON.stringify({ images: [toBase64(notAPlantPng(3))] }),
    }))!.json()) as any;
    expect(plantId.result.is_plant.binary).toBe(false);
    const plantnet = await route(`${EMULATOR_TEST_URLS.PLANTNET_API_URL}/v2/identify/all?api-key=emulator-key`, {
      method: "POST",
      body: plantNetForm([{ bytes: notAPlantPng(3) }]),
    });
    expect(plantnet?.status).toBe(404);
  });
});
