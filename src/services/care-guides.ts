/**
 * Care instructions for a species: the AI guide stored in D1 (one per species and language,
 * written once by the identification job or on request), else rule-based advice from the
 * catalogue's light and water data (`source: "rules"`).
 */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { uuidv7 } from "../lib/ids";
import type { Logger } from "../lib/logger";
import { generateCareGuide } from "../providers/openai";
import { ruleBasedCare, type CatalogueCareFields } from "./care";

export interface SpeciesForCare extends CatalogueCareFields {
  id: string;
}

export type CareInstructions =
  | ({ source: "openai"; model: string; generated_at: string } & Record<string, unknown>)
  | NonNullable<ReturnType<typeof ruleBasedCare>>;

export async function findSpeciesForCare(env: Bindings, by: { id?: string; scientificName?: string }): Promise<SpeciesForCare | null> {
  const columns =
    "id, scientific_name, common_names, light_requirements, water_requirements, hardiness_zone_min, hardiness_zone_max, plant_type";
  return by.id
    ? env.DB.prepare(`SELECT ${columns} FROM species WHERE id = ?`).bind(by.id).first<SpeciesForCare>()
    : env.DB.prepare(`SELECT ${columns} FROM species WHERE lower(scientific_name) = lower(?)`)
        .bind(by.scientificName ?? "")
        .first<SpeciesForCare>();
}

export async function storedCareGuide(env: Bindings, speciesId: string, language: string): Promise<CareInstructions | null> {
  const row = await env.DB.prepare("SELECT content, model, updated_at FROM care_guides WHERE species_id = ? AND language = ?")
    .bind(speciesId, language)
    .first<{ content: string; model: string; updated_at: string }>();
  return row
    ? { ...(JSON.parse(row.content) as Record<string, unknown>), source: "openai", model: row.model, generated_at: row.updated_at }
    : null;
}

/** Asks OpenAI for a guide and stores it (replacing any older one). Throws ProviderError. */
export async function generateAndStoreCareGuide(env: Bindings, species: SpeciesForCare, language: string): Promise<CareInstructions> {
  const config = getConfig(env);
  const commonName = (JSON.parse(species.common_names || "[]") as string[])[0];
  const guide = await generateCareGuide(
    { baseUrl: config.OPENAI_API_URL, apiKey: config.OPENAI_API_KEY, model: config.OPENAI_MODEL, timeoutMs: config.OPENAI_TIMEOUT_MS },
    { scientificName: species.scientific_name, commonName, language },
  );
  const now = new Date().toISOString();
  await env.DB.prepare(
    `INSERT INTO care_guides (id, species_id, language, content, model, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (species_id, language) DO UPDATE SET content = excluded.content, model = excluded.model, updated_at = excluded.updated_at`,
  )
    .bind(uuidv7(), species.id, language, JSON.stringify(guide), config.OPENAI_MODEL, now, now)
    .run();
  return { ...guide, source: "openai", model: config.OPENAI_MODEL, generated_at: now };
}

/**
 * The stored guide, else a new AI guide when OpenAI is configured, else (or on any failure)
 * the rule-based advice. Never throws for provider trouble.
 */
export async function careInstructionsFor(
  env: Bindings,
  species: SpeciesForCare,
  language: string,
  logger?: Logger,
): Promise<CareInstructions | null> {
  const stored = await storedCareGuide(env, species.id, language);
  if (stored) return stored;
  if (getConfig(env).OPENAI_API_KEY) {
    try {
      return await generateAndStoreCareGuide(env, species, language);
    } catch (err) {
      logger?.warn("care guide generation failed", { species: species.scientific_name, error: String(err) });
    }
  }
  return ruleBasedCare(species);
}
