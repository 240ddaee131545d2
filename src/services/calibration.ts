/**
 * Calibrated confidence (issue 11 item 6). Ground truth is what the community confirmed: on every
 * request with a community consensus, each engine result is one sample per provider that scored
 * it — (the provider's raw score, whether that result is the confirmed one). `fitCalibrations`
 * fits an isotonic map per provider (lib/calibration.ts) and stores it as a new version when the
 * evidence changed; below MIN_SAMPLES a provider keeps its raw scores. The merge applies the
 * newest maps (`currentCalibrations`, cached briefly in the isolate) and every answer names the
 * versions it used.
 *
 * Scheduled from the five-minute cron, but fitted at most once per FIT_INTERVAL_MS (a KV mark).
 */
import { and, desc, eq, sql } from "drizzle-orm";
import { bindingOf, database } from "../db/client";
import { calibrations } from "../db/schema";
import type { Bindings } from "../env";
import { type CalibrationMap, fitIsotonic, MIN_SAMPLES, type Sample } from "../lib/calibration";
import type { ProviderName } from "../providers/types";
import type { Calibrations } from "./merge";
import { DAY_MS } from "../lib/durations";

export const FIT_INTERVAL_MS = DAY_MS;
const FIT_MARK = "calibration:last-fit";
const CACHE_MS = 60_000;
const PROVIDERS: { name: ProviderName; field: string }[] = [
  { name: "plant_id", field: "plant_id_probability" },
  { name: "plantnet", field: "plantnet_score" },
];

/** Samples per provider from every community-confirmed request (engine results only). */
export async function groundTruth(env: Bindings): Promise<Record<ProviderName, Sample[]>> {
  const rows = await database(env).all<{ pid: number | null; pn: number | null; correct: number }>(sql`
    SELECT json_extract(r.details, '$.plant_id_probability') AS pid, json_extract(r.details, '$.plantnet_score') AS pn,
           r.id = q.community_result_id AS correct
      FROM identification_requests q JOIN identification_results r ON r.request_id = q.id
     WHERE q.community_result_id IS NOT NULL AND r.identification_source LIKE 'ai_%'`);
  const out: Record<ProviderName, Sample[]> = { plant_id: [], plantnet: [] };
  for (const row of rows) {
    if (typeof row.pid === "number") out.plant_id.push({ score: row.pid, correct: row.correct === 1 });
    if (typeof row.pn === "number") out.plantnet.push({ score: row.pn, correct: row.correct === 1 });
  }
  return out;
}

export interface FitReport {
  provider: ProviderName;
  samples: number;
  /** The version now in use; null: raw scores. */
  version: number | null;
  fitted: boolean;
}

/**
 * Fits every provider's map from the current ground truth. A new version is stored only when
 * there are enough samples and they differ from those of the newest version (count or
 * positives), so refits of unchanged evidence do not churn versions.
 */
export async function fitCalibrations(env: Bindings, now = Date.now()): Promise<FitReport[]> {
  const db = database(env);
  const truth = await groundTruth(env);
  const reports: FitReport[] = [];
  for (const { name } of PROVIDERS) {
    const samples = truth[name];
    const latest = await db.select().from(calibrations).where(eq(calibrations.provider, name)).orderBy(desc(calibrations.version)).get();
    const positives = samples.filter((s) => s.correct).length;
    if (samples.length < MIN_SAMPLES || (latest && latest.samples === samples.length && latest.positives === positives)) {
      reports.push({ provider: name, samples: samples.length, version: latest?.version ?? null, fitted: false });
      continue;
    }
    const version = (latest?.version ?? 0) + 1;
    const inserted = await db
      .insert(calibrations)
      .values({
        provider: name,
        version,
        method: "isotonic",
        samples: samples.length,
        positives,
        points: fitIsotonic(samples),
        fittedAt: new Date(now).toISOString(),
      })
      .onConflictDoNothing()
      .returning()
      .get();
    reports.push({ provider: name, samples: samples.length, version, fitted: Boolean(inserted) });
  }
  cached = null;
  return reports;
}

/** The cron's entry: fits when the last fit is older than FIT_INTERVAL_MS (or `force`). */
export async function scheduledCalibrationFit(env: Bindings, now = Date.now()): Promise<FitReport[] | null> {
  const last = Number((await env.CACHE.get(FIT_MARK)) ?? 0);
  if (now - last < FIT_INTERVAL_MS) return null;
  await env.CACHE.put(FIT_MARK, String(now));
  return fitCalibrations(env, now);
}

let cached: { at: number; db: D1Database; value: Calibrations } | null = null;

/** The newest map of each provider (none: raw), cached for a minute per isolate. */
export async function currentCalibrations(env: Bindings, now = Date.now()): Promise<Calibrations> {
  if (cached && cached.db === bindingOf(env.DB) && now - cached.at < CACHE_MS) return cached.value;
  const rows = await database(env)
    .select()
    .from(calibrations)
    .where(
      and(
        sql`${calibrations.version} = (SELECT max(c2.version) FROM calibrations c2 WHERE c2.provider = ${calibrations.provider})`,
        eq(calibrations.method, "isotonic"),
      ),
    )
    .all();
  const value: Calibrations = {};
  for (const row of rows) value[row.provider] = { version: row.version, map: row.points as CalibrationMap };
  cached = { at: now, db: bindingOf(env.DB), value };
  return value;
}

/** Forgets the isolate's cached maps (tests, and right after a fit). */
export function forgetCalibrationCache(): void {
  cached = null;
}
