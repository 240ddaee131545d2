/**
 * The calibration job on a small fixed data set (issue 11 item 6): community-confirmed requests
 * become samples, the fitted maps are the expected ones, a refit of unchanged evidence keeps the
 * version, too little evidence keeps raw scores — and identification answers use the maps and
 * name their version.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { currentCalibrations, fitCalibrations, forgetCalibrationCache, groundTruth } from "../../src/services/calibration";
import { makePng } from "../helpers/images";
import { call } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();

/**
 * 100 confirmed requests, each with two engine results: A (Plant.id 0.9, Pl@ntNet 0.2) and
 * B (Plant.id 0.3, Pl@ntNet 0.6). The community confirmed A on 50, B on 30, and a third
 * (community) species on 20. So Plant.id is right 50% at 0.9 and 30% at 0.3 (monotone, kept);
 * Pl@ntNet is right 50% at 0.2 but 30% at 0.6 (a violation, pooled to 40% at 0.4).
 */
async function seedGroundTruth(count: number) {
  const owner = await bearerUser();
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < count; i++) {
    const req = crypto.randomUUID();
    const [a, b, c] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    const confirmed = i < count / 2 ? a : i < (count * 8) / 10 ? b : c;
    statements.push(
      env.DB.prepare(
        "INSERT INTO identification_requests (id, user_id, status, image_hashes, community_result_id) VALUES (?, ?, 'identified', '[]', ?)",
      ).bind(req, owner.userId, confirmed),
      env.DB.prepare(
        `INSERT INTO identification_results (id, request_id, scientific_name, confidence_score, identification_source, rank, details)
         VALUES (?, ?, 'Alpha one', 0.9, 'ai_combined', 1, '{"plant_id_probability":0.9,"plantnet_score":0.2}'),
                (?, ?, 'Beta two', 0.7, 'ai_combined', 2, '{"plant_id_probability":0.3,"plantnet_score":0.6}'),
                (?, ?, 'Gamma three', 0, 'community', 3, '{}')`,
      ).bind(a, req, b, req, c, req),
    );
  }
  await env.DB.batch(statements);
}

describe("calibration job", () => {
  beforeAll(async () => {
    forgetCalibrationCache();
  });

  it("keeps raw scores below the minimum sample size", async () => {
    await seedGroundTruth(40);
    const reports = await fitCalibrations(env);
    expect(reports.map((r) => [r.provider, r.samples, r.version])).toEqual([
      ["plant_id", 80, null],
      ["plantnet", 80, null],
    ]);
    expect(await currentCalibrations(env)).toEqual({});
  });

  it("fits the expected maps, versions them, and keeps the version when nothing changed", async () => {
    await seedGroundTruth(60); // with the 40 above: 100 requests, 200 samples per provider
    const truth = await groundTruth(env);
    expect(truth.plant_id).toHaveLength(200);
    const reports = await fitCalibrations(env);
    expect(reports.map((r) => [r.provider, r.version, r.fitted])).toEqual([
      ["plant_id", 1, true],
      ["plantnet", 1, true],
    ]);
    const maps = await currentCalibrations(env);
    expect(maps.plant_id).toEqual({
      version: 1,
      map: [
        [0.3, 0.3],
        [0.9, 0.5],
      ],
    });
    expect(maps.plantnet).toEqual({ version: 1, map: [[0.4, 0.4]] });
    expect((await fitCalibrations(env)).map((r) => [r.version, r.fitted])).toEqual([
      [1, false],
      [1, false],
    ]);
  });

  it("identification answers use the maps and name their version", async () => {
    forgetCalibrationCache();
    const u = await bearerUser();
    const f = new FormData();
    f.append("image", new File([await makePng(320, 240, { seed: `calibration-${Math.random()}` })], "leaf.png", { type: "image/png" }));
    const res = await call("/api/v1/plant-identification/identify/", { bearer: u.access, body: f });
    const body = (await res.json()) as {
      suggestions: {
        probability: number;
        plant_id_probability?: number;
        plantnet_score?: number;
        calibration_version: string;
        sources: string[];
      }[];
    };
    expect(res.status).toBe(200);
    const maps = await currentCalibrations(env);
    for (const s of body.suggestions) {
      expect(s.calibration_version).toBe("plant_id:v1,plantnet:v1");
      // Recompute the calibrated noisy-OR from the raw scores: the answer must equal it.
      const at = (map: [number, number][], x: number) => {
        const [first, last] = [map[0]!, map[map.length - 1]!];
        if (x <= first[0]) return first[1];
        if (x >= last[0]) return last[1];
        const i = map.findIndex((p) => p[0] > x);
        const [x0, y0] = map[i - 1]!;
        const [x1, y1] = map[i]!;
        return y0 + ((x - x0) * (y1 - y0)) / (x1 - x0);
      };
      const pid = s.plant_id_probability === undefined ? undefined : at(maps.plant_id!.map, s.plant_id_probability);
      const pn = s.plantnet_score === undefined ? undefined : at(maps.plantnet!.map, s.plantnet_score);
      const expected = pid === undefined ? pn! : pn === undefined ? pid : 1 - (1 - pid) * (1 - pn);
      expect(s.probability).toBeCloseTo(expected, 3);
    }
    expect(body.suggestions.length).toBeGreaterThan(0);
    expect(emulators.plantId.calls + emulators.plantnet.calls).toBeGreaterThan(0);
  });
});
