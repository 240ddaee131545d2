import { describe, expect, it } from "vitest";

import {
  COMMON_FAILURES,
  FailureModeController,
  decodeBase64,
  descendingScores,
  drawFromImage,
  encodeBase64,
  isNotAPlant,
  parseModePatch,
  sha256Hex,
  sleep,
} from "../../emulators/common";
import { DISEASES, SPECIES } from "../../emulators/species";
import { makePng, notAPlantPng } from "./helpers";

describe("shared species data", () => {
  it("has about 40 species with complete, unique identifiers", () => {
    expect(SPECIES.length).toBeGreaterThanOrEqual(40);
    for (const key of ["entityId", "scientificName", "slug", "gbifId", "trefleId", "powoId"] as const) {
      expect(new Set(SPECIES.map((s) => s[key])).size, key).toBe(SPECIES.length);
    }
    for (const species of SPECIES) {
      expect(species.entityId).toMatch(/^[0-9a-f]{16}$/);
      expect(species.scientificName).toMatch(/^[A-Z][a-z]+ [a-z]+$/);
      expect(species.commonNames.en.length, species.scientificName).toBeGreaterThan(0);
      expect(species.commonNames.fr.length, species.scientificName).toBeGreaterThan(0);
      expect(species.watering.min).toBeLessThanOrEqual(species.watering.max);
      expect(species.growth.light).toBeGreaterThanOrEqual(0);
      expect(species.growth.light).toBeLessThanOrEqual(10);
      expect(species.growth.phMinimum).toBeLessThanOrEqual(species.growth.phMaximum);
      expect(species.genus).toBe(species.scientificName.split(" ")[0]);
    }
  });

  it("has diseases with the Plant.id detail fields", () => {
    expect(DISEASES.length).toBeGreaterThanOrEqual(8);
    expect(new Set(DISEASES.map((d) => d.entityId)).size).toBe(DISEASES.length);
    for (const disease of DISEASES) {
      expect(disease.treatment.prevention.length).toBeGreaterThan(0);
      expect(disease.classification.length).toBeGreaterThan(0);
    }
  });
});

describe("hashing and base64", () => {
  it("hashes bytes with SHA-256", async () => {
    expect(await sha256Hex(new TextEncoder().encode("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("round-trips base64 and rejects what is not strict base64", () => {
    const bytes = makePng(3, 2, { seed: 4 });
    expect(decodeBase64(encodeBase64(bytes))).toEqual(bytes);
    expect(decodeBase64("")).toBeNull();
    expect(decodeBase64("not base64!")).toBeNull();
    expect(decodeBase64("abc")).toBeNull();
    expect(decodeBase64("A===")).toBeNull();
    expect(decodeBase64("ab=c")).toBeNull();
    expect(decodeBase64("ab==cdef")).toBeNull();
    expect(decodeBase64("abc=")).toEqual(new Uint8Array([0x69, 0xb7]));
    expect(decodeBase64("data:image/png;base64,iVBORw0KGgo=")).toBeNull();
  });
});

describe("deterministic draws", () => {
  it("gives the same ranking for the same bytes and varies with the bytes", async () => {
    const first = await drawFromImage(makePng(4, 4, { seed: 1 }));
    const again = await drawFromImage(makePng(4, 4, { seed: 1 }));
    expect(again.ranking.map((s) => s.scientificName)).toEqual(first.ranking.map((s) => s.scientificName));

    const tops = new Set<string>();
    for (let seed = 0; seed < 30; seed += 1) tops.add((await drawFromImage(makePng(4, 4, { seed }))).ranking[0]!.scientificName);
    expect(tops.size).toBeGreaterThan(5);
  });

  it("ranks five distinct species, alternatives from the same family first", async () => {
    for (let seed = 0; seed < 20; seed += 1) {
      const { ranking } = await drawFromImage(makePng(2, 2, { seed }));
      expect(new Set(ranking).size).toBe(5);
      const [top, second] = ranking;
      const familySize = SPECIES.filter((s) => s.family === top!.family).length;
      if (familySize > 1) expect(second!.family).toBe(top!.family);
    }
  });

  it("produces descending scores inside the requested top range", async () => {
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", makePng(2, 2)));
    const scores = descendingScores(hash, 8, 3, 0.55, 0.97);
    expect(scores[0]).toBeGreaterThanOrEqual(0.55);
    expect(scores[0]).toBeLessThanOrEqual(0.97);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    expect(scores.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1);
  });

  it("applies the non-plant rule to images carrying the NOTAPLANT marker", async () => {
    expect(isNotAPlant(notAPlantPng())).toBe(true);
    expect(isNotAPlant(makePng(4, 4))).toBe(false);
    expect((await drawFromImage(notAPlantPng())).isPlant).toBe(false);
  });
});

describe("failure mode controller", () => {
  it("validates patches", () => {
    expect(parseModePatch({ failure: "500", times: 2 }, COMMON_FAILURES)).toEqual({ ok: true, patch: { failure: "500", times: 2 } });
    expect(parseModePatch({ failure: "teapot" }, COMMON_FAILURES).ok).toBe(false);
    expect(parseModePatch({ latencyMs: -1 }, COMMON_FAILURES).ok).toBe(false);
    expect(parseModePatch({ times: 0 }, COMMON_FAILURES).ok).toBe(false);
    expect(parseModePatch({ times: 1.5 }, COMMON_FAILURES).ok).toBe(false);
    expect(parseModePatch({ latency: 5 }, COMMON_FAILURES).ok).toBe(false);
    expect(parseModePatch([], COMMON_FAILURES).ok).toBe(false);
  });

  it("counts `times` down and reverts to none; setting a failure resets times", () => {
    const controller = new FailureModeController(COMMON_FAILURES, "none");
    controller.set({ failure: "500", times: 2 });
    expect(controller.take(() => true)).toBe("500");
    expect(controller.mode.times).toBe(1);
    expect(controller.take(() => true)).toBe("500");
    expect(controller.take(() => true)).toBe("none");
    expect(controller.mode).toMatchObject({ failure: "none", times: null });

    controller.set({ failure: "429", times: 1 });
    controller.set({ failure: "500" });
    expect(controller.mode.times).toBeNull();
    expect(() => controller.set({ latencyMs: Number.NaN })).toThrow(RangeError);
  });

  it("does not consume a failure the caller does not apply", () => {
    const controller = new FailureModeController(COMMON_FAILURES, "none");
    controller.set({ failure: "hang", times: 1 });
    expect(controller.take((failure) => failure !== "hang")).toBe("none");
    expect(controller.mode).toMatchObject({ failure: "hang", times: 1 });
  });

  it("sleeps, and stops sleeping when the signal aborts", async () => {
    await expect(sleep(5)).resolves.toBeUndefined();
    await expect(sleep(60_000, AbortSignal.timeout(20))).rejects.toMatchObject({ name: "TimeoutError" });
  });
});
