/**
 * Enrichment step of an identification job: when the best suggestion's catalogue entry lacks
 * care data, ask Trefle (cached in KV for 24 h) and fill in only the missing fields. Optional
 * by design: any failure is reported as `enrich_skipped` and the job goes on.
 */
import type { HubMessage } from "../../durable-objects/user-hub-protocol";
import { getConfig } from "../config";
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import type { MergedSuggestion } from "./merge";
import { progress } from "./progress";
import { cachedTrefleSpecies } from "./species";

export async function enrichSpecies(
  env: Bindings,
  requestId: string,
  suggestions: MergedSuggestion[],
  say: (m: HubMessage) => Promise<void>,
  logger: Logger,
): Promise<void> {
  const top = suggestions[0];
  const config = getConfig(env);
  if (!top) return say(progress(requestId, "enrich_skipped", "processing", { reason: "no suggestion" }));
  const existing = await env.DB.prepare(
    "SELECT light_requirements, water_requirements, trefle_id FROM species WHERE lower(scientific_name) = lower(?)",
  )
    .bind(top.scientific_name)
    .first<{ light_requirements: string | null; water_requirements: string | null; trefle_id: number | null }>();
  if (existing?.light_requirements && existing.water_requirements) {
    return say(progress(requestId, "enrich_skipped", "processing", { reason: "catalogue already has care data" }));
  }
  if (!config.TREFLE_API_KEY) return say(progress(requestId, "enrich_skipped", "processing", { reason: "Trefle not configured" }));

  await say(progress(requestId, "enrich_start", "processing", { source: "trefle", scientific_name: top.scientific_name }));
  try {
    const care = await cachedTrefleSpecies(env, top.scientific_name);
    if (!care) return say(progress(requestId, "enrich_skipped", "processing", { reason: "unknown to Trefle" }));
    await env.DB.prepare(
      `UPDATE species SET
         trefle_id = coalesce(trefle_id, ?), light_requirements = coalesce(light_requirements, ?),
         water_requirements = coalesce(water_requirements, ?), soil_ph_min = coalesce(soil_ph_min, ?),
         soil_ph_max = coalesce(soil_ph_max, ?), mature_height_min_cm = coalesce(mature_height_min_cm, ?),
         mature_height_max_cm = coalesce(mature_height_max_cm, ?), bloom_time = coalesce(bloom_time, ?),
         flower_color = coalesce(flower_color, ?), image_url = coalesce(image_url, ?),
         updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
       WHERE lower(scientific_name) = lower(?)`,
    )
      .bind(
        care.trefleId,
        care.lightRequirements,
        care.waterRequirements,
        care.soilPhMin,
        care.soilPhMax,
        care.matureHeightMinCm,
        care.matureHeightMaxCm,
        care.bloomTime,
        care.flowerColor,
        care.imageUrl,
        top.scientific_name,
      )
      .run();
    await say(
      progress(requestId, "enrich_done", "processing", { source: "trefle", light: care.lightRequirements, water: care.waterRequirements }),
    );
  } catch (err) {
    logger.warn("trefle enrichment failed", { error: String(err) });
    await say(progress(requestId, "enrich_skipped", "processing", { reason: "Trefle unavailable" }));
  }
}
