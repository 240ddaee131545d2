/**
 * Care instructions for a species: the AI guide stored in D1 (one per species and language,
 * written once by the identification job or on request), else rule-based advice from the
 * catalogue's light and water data (`source: "rules"`).
 */
import { and, eq, sql } from "drizzle-orm";
import { getConfig } from "../config";
import { database } from "../db/client";
import { careGuides, species } from "../db/schema";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import { uuidv7 } from "../lib/ids";
import { createLogger, type Logger } from "../lib/logger";
import { generateCareGuide } from "../providers/openai";
import { ProviderError } from "../providers/types";
import { ruleBasedCare } from "./care";
import { spendRateLimits, withinRateLimit } from "./rate-limits";
import { HOUR_MS } from "../lib/durations";

/** The catalogue fields care advice needs, named as `ruleBasedCare` reads them (API field names). */
const speciesForCare = {
  id: species.id,
  scientific_name: species.scientificName,
  common_names: species.commonNames,
  light_requirements: species.lightRequirements,
  water_requirements: species.waterRequirements,
  hardiness_zone_min: species.hardinessZoneMin,
  hardiness_zone_max: species.hardinessZoneMax,
  plant_type: species.plantType,
};

export type SpeciesForCare = NonNullable<Awaited<ReturnType<typeof findSpeciesForCare>>>;

export type CareInstructions =
  | ({ source: "openai"; language: string; model: string; generated_at: string } & Record<string, unknown>)
  | NonNullable<ReturnType<typeof ruleBasedCare>>;

export async function findSpeciesForCare(env: Bindings, by: { id?: string; scientificName?: string }) {
  const s = species;
  const row = await database(env)
    .select(speciesForCare)
    .from(s)
    // Scientific names match however they are capitalised (the unique index is on lower()).
    .where(by.id ? eq(s.id, by.id) : eq(sql`lower(${s.scientificName})`, sql`lower(${by.scientificName ?? ""})`))
    .get();
  return row ?? null;
}

/**
 * `findSpeciesForCare` by name and `storedCareGuide` for it in one read (the identification job
 * needs both right after completion): the species, or null, with its stored guide, or null.
 */
export async function findSpeciesWithStoredGuide(
  env: Bindings,
  scientificName: string,
  language: string,
): Promise<{ species: SpeciesForCare; guide: CareInstructions | null } | null> {
  const s = species;
  const g = careGuides;
  const row = await database(env)
    .select({ ...speciesForCare, guideContent: g.content, guideLanguage: g.language, guideModel: g.model, guideUpdatedAt: g.updatedAt })
    .from(s)
    .leftJoin(g, and(eq(g.speciesId, s.id), eq(g.language, language)))
    .where(eq(sql`lower(${s.scientificName})`, sql`lower(${scientificName})`))
    .get();
  if (!row) return null;
  const { guideContent, guideLanguage, guideModel, guideUpdatedAt, ...found } = row;
  const guide =
    guideContent && guideLanguage !== null && guideModel !== null && guideUpdatedAt !== null
      ? storedGuide(guideContent, { language: guideLanguage, model: guideModel, updatedAt: guideUpdatedAt })
      : null;
  return { species: found, guide };
}

/**
 * A stored guide as the API gives it: its content, the language it was stored under (the stored
 * content never names it, so the row's column does, as the rule-based advice's `language` does),
 * and which model wrote it when.
 */
function storedGuide(content: Record<string, unknown>, row: { language: string; model: string; updatedAt: string }): CareInstructions {
  return { ...content, source: "openai", language: row.language, model: row.model, generated_at: row.updatedAt };
}

export async function storedCareGuide(env: Bindings, speciesId: string, language: string): Promise<CareInstructions | null> {
  const g = careGuides;
  const row = await database(env)
    .select({ content: g.content, language: g.language, model: g.model, updatedAt: g.updatedAt })
    .from(g)
    .where(and(eq(g.speciesId, speciesId), eq(g.language, language)))
    .get();
  return row ? storedGuide(row.content, row) : null;
}

/** Asks OpenAI for a guide and stores it (replacing any older one). Throws ProviderError. */
export async function generateAndStoreCareGuide(env: Bindings, species: SpeciesForCare, language: string): Promise<CareInstructions> {
  const config = getConfig(env);
  const commonName = species.common_names[0];
  const guide = await generateCareGuide(
    { baseUrl: config.OPENAI_API_URL, apiKey: config.OPENAI_API_KEY, model: config.OPENAI_MODEL, timeoutMs: config.OPENAI_TIMEOUT_MS },
    { scientificName: species.scientific_name, commonName, language },
  );
  const now = new Date().toISOString();
  await database(env)
    .insert(careGuides)
    .values({ id: uuidv7(), speciesId: species.id, language, content: guide, model: config.OPENAI_MODEL, createdAt: now, updatedAt: now })
    .onConflictDoUpdate({
      target: [careGuides.speciesId, careGuides.language],
      set: { content: guide, model: config.OPENAI_MODEL, updatedAt: now },
    });
  return storedGuide(guide, { language, model: config.OPENAI_MODEL, updatedAt: now });
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
  /** The stored guide when the caller has just read it (`findSpeciesWithStoredGuide`); read here otherwise. */
  known?: { guide: CareInstructions | null },
  /** Asked only when a guide would be generated: false (or a failure to answer) means rules instead. */
  mayGenerate?: () => Promise<boolean>,
): Promise<CareInstructions | null> {
  const stored = known ? known.guide : await storedCareGuide(env, species.id, language);
  if (stored) return stored;
  if (getConfig(env).OPENAI_API_KEY) {
    try {
      if (mayGenerate && !(await mayGenerate())) return ruleBasedCare(species, language);
      return await generateAndStoreCareGuide(env, species, language);
    } catch (err) {
      logger?.warn("care guide generation failed", { species: species.scientific_name, error: String(err) });
    }
  }
  return ruleBasedCare(species, language);
}

/** AI guides one user may cause per hour through the care route: first-time ones and regenerations together. */
export const CARE_GENERATE_PER_HOUR = 30;
const CARE_GENERATE_RATE = { limit: CARE_GENERATE_PER_HOUR, windowMs: HOUR_MS };
const careGenerateBucket = (userId: string) => `care-generate:user:${userId}`;

/**
 * Care instructions for a species as the care route answers them: 404 for an unknown species;
 * `regenerate` (rate-limited per user) asks OpenAI again and answers 503 with Retry-After when
 * it cannot; otherwise the stored guide, generated on first use, or the rule-based fallback.
 */
export async function careForSpecies(
  env: Bindings,
  request: { speciesId: string; language: string; regenerate: boolean; userId: string },
  logger?: Logger,
): Promise<{ species: SpeciesForCare; care: CareInstructions | null }> {
  const species = await findSpeciesForCare(env, { id: request.speciesId });
  if (!species) throw new AppError("NOT_FOUND", 404, "Species not found.");
  if (!request.regenerate) {
    // A guide not yet written costs an OpenAI call: each user may cause CARE_GENERATE_PER_HOUR an
    // hour (any species, any language); past that the answer is the rule-based advice, not an
    // error, and the guide is written when someone within their allowance asks.
    const allowance = () => withinRateLimit(env, careGenerateBucket(request.userId), CARE_GENERATE_RATE);
    return { species, care: await careInstructionsFor(env, species, request.language, logger, undefined, allowance) };
  }
  // A regeneration is an OpenAI call like a first guide: it spends the same hourly allowance as
  // well as its own per-minute one, so CARE_REGENERATE_RATE_LIMIT alone (5 a minute, 300 an
  // hour) is not what one account may cost. Either refusing is a 429 that spends neither; and
  // a regeneration OpenAI does not write (the 503 below) spends neither, as an identification no
  // provider answers is given back.
  const refund = await spendRateLimits(
    env,
    [
      [`care:user:${request.userId}`, getConfig(env).CARE_REGENERATE_RATE_LIMIT],
      [careGenerateBucket(request.userId), CARE_GENERATE_RATE],
    ],
    logger ?? createLogger(),
  );
  try {
    return { species, care: await generateAndStoreCareGuide(env, species, request.language) };
  } catch (err) {
    if (!(err instanceof ProviderError)) throw err;
    await refund();
    throw new AppError("CARE_UNAVAILABLE", 503, "AI care instructions are unavailable right now. Please try again later.", undefined, {
      "Retry-After": "60",
    });
  }
}
