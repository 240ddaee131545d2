/**
 * Enrichment step of an identification job: when the best suggestion's catalogue entry lacks
 * care data, ask Trefle (cached in KV for 24 h) and fill in only the missing fields. Optional
 * by design: any failure is reported as `enrich_skipped` and the job goes on.
 */
import type { HubMessage } from "../../durable-objects/user-hub-protocol";
import { sql } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import { getConfig } from "../config";
import { database, sqlNow } from "../db/client";
import { species } from "../db/schema";
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import type { MergedSuggestion } from "./merge";
import { progress } from "./progress";
import { purgeStatement } from "./public-cache";
import { cachedTrefleSpecies, speciesNamed } from "./species";

/**
 * Returns true when it filled in catalogue fields. `known`: the best suggestion's catalogue entry
 * (its light and water data, or null when it is not in the catalogue) when the caller has just
 * read it; read here otherwise.
 */
export async function enrichSpecies(
  env: Bindings,
  requestId: string,
  suggestions: MergedSuggestion[],
  say: (m: HubMessage) => Promise<void>,
  logger: Logger,
  known?: { light_requirements: string | null; water_requirements: string | null } | null,
): Promise<boolean> {
  const top = suggestions[0];
  const config = getConfig(env);
  const skipped = async (reason: string) => {
    await say(progress(requestId, "enrich_skipped", "processing", { reason }));
    return false;
  };
  if (!top) return skipped("no suggestion");
  const existing =
    known === undefined
      ? await speciesNamed(env, top.scientific_name).then((row) =>
          row ? { light_requirements: row.lightRequirements, water_requirements: row.waterRequirements } : null,
        )
      : known;
  if (existing?.light_requirements && existing.water_requirements) return skipped("catalogue already has care data");
  if (!config.TREFLE_API_KEY) return skipped("Trefle not configured");

  await say(progress(requestId, "enrich_start", "processing", { source: "trefle", scientific_name: top.scientific_name }));
  try {
    const care = await cachedTrefleSpecies(env, top.scientific_name);
    if (!care) return skipped("unknown to Trefle");
    // Only the missing fields are filled: the catalogue's own data always wins.
    const fill = <T>(column: SQLiteColumn, value: T) => sql`coalesce(${column}, ${value})`;
    const s = species;
    const db = database(env);
    const fillIn = db
      .update(s)
      .set({
        trefleId: fill(s.trefleId, care.trefleId),
        lightRequirements: fill(s.lightRequirements, care.lightRequirements),
        waterRequirements: fill(s.waterRequirements, care.waterRequirements),
        soilPhMin: fill(s.soilPhMin, care.soilPhMin),
        soilPhMax: fill(s.soilPhMax, care.soilPhMax),
        matureHeightMinCm: fill(s.matureHeightMinCm, care.matureHeightMinCm),
        matureHeightMaxCm: fill(s.matureHeightMaxCm, care.matureHeightMaxCm),
        bloomTime: fill(s.bloomTime, care.bloomTime),
        flowerColor: fill(s.flowerColor, care.flowerColor),
        imageUrl: fill(s.imageUrl, care.imageUrl),
        updatedAt: sqlNow,
      })
      .where(sql`lower(${s.scientificName}) = lower(${top.scientific_name})`);
    // The catalogue's cached lists, searches and entries show these fields: purged with the
    // fill-in (when it wrote the row), or they would show the entry without them for minutes.
    await db.batch([fillIn, purgeStatement(db, "species", sql`changes() > 0`)]);
    await say(
      progress(requestId, "enrich_done", "processing", { source: "trefle", light: care.lightRequirements, water: care.waterRequirements }),
    );
    return true;
  } catch (err) {
    logger.warn("trefle enrichment failed", { error: String(err) });
    return skipped("Trefle unavailable");
  }
}
