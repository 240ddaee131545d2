/**
 * The species catalogue: listing (popularity, then name), detail, and typo-tolerant search.
 *
 * Search uses the FTS5 trigram index (migrations/0004): the query is cut into its trigrams and
 * any of them may match, ranked by bm25 — so "monstra" still finds Monstera (it shares "mon",
 * "ons", "nst") — and exact substring matches rank first, most identified first. Queries shorter than three
 * characters, which have no trigram, fall back to a prefix LIKE in which `_` and `%` are literal.
 */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { uuidv7 } from "../lib/ids";
import { trefleSpeciesFor, type TrefleSpecies } from "../providers/trefle";
import { ProviderError } from "../providers/types";

export interface SpeciesRow {
  id: string;
  scientific_name: string;
  common_names: string;
  family: string;
  genus: string;
  gbif_id: number | null;
  trefle_id: number | null;
  plant_type: string | null;
  light_requirements: string | null;
  water_requirements: string | null;
  hardiness_zone_min: number | null;
  hardiness_zone_max: number | null;
  soil_ph_min: number | null;
  soil_ph_max: number | null;
  mature_height_min_cm: number | null;
  mature_height_max_cm: number | null;
  bloom_time: string | null;
  flower_color: string | null;
  description: string;
  image_url: string | null;
  identification_count: number;
  is_verified: number;
  source: string;
}

export function speciesBody(row: SpeciesRow) {
  return {
    id: row.id,
    scientific_name: row.scientific_name,
    common_names: JSON.parse(row.common_names || "[]") as string[],
    family: row.family,
    genus: row.genus,
    gbif_id: row.gbif_id,
    trefle_id: row.trefle_id,
    plant_type: row.plant_type,
    light_requirements: row.light_requirements,
    water_requirements: row.water_requirements,
    hardiness_zone_min: row.hardiness_zone_min,
    hardiness_zone_max: row.hardiness_zone_max,
    soil_ph_min: row.soil_ph_min,
    soil_ph_max: row.soil_ph_max,
    mature_height_min_cm: row.mature_height_min_cm,
    mature_height_max_cm: row.mature_height_max_cm,
    bloom_time: row.bloom_time,
    flower_color: row.flower_color,
    description: row.description,
    image_url: row.image_url,
    identification_count: row.identification_count,
    is_verified: Boolean(row.is_verified),
    source: row.source,
  };
}

/** `%`, `_` and `\` match themselves in LIKE patterns built from user input. */
export function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (m) => `\\${m}`);
}

/**
 * C0 control characters and DEL become spaces. FTS5's query parser ends a string at a NUL
 * ("unterminated string", a 500), and SQLite's text functions stop at one too. The routes refuse
 * such queries with a 400 first; this keeps every other caller of the search functions safe.
 */
export function withoutControlCharacters(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, " ");
}

/** Trigrams of the query, each quoted as an FTS5 string (quotes doubled). */
function trigramQuery(q: string): string | null {
  const text = q.toLowerCase().replace(/\s+/g, " ").trim();
  if ([...text].length < 3) return null;
  const chars = [...text];
  const grams = new Set<string>();
  for (let i = 0; i + 3 <= chars.length; i++) grams.add(chars.slice(i, i + 3).join(""));
  return [...grams].map((g) => `"${g.replaceAll('"', '""')}"`).join(" OR ");
}

export async function searchSpecies(env: Bindings, query: string, limit: number): Promise<{ rows: SpeciesRow[]; total: number }> {
  const q = withoutControlCharacters(query);
  const match = trigramQuery(q);
  if (!match) {
    const pattern = `${likeLiteral(q.toLowerCase())}%`;
    const where =
      "WHERE lower(scientific_name) LIKE ? ESCAPE '\\' OR lower(common_names) LIKE ? ESCAPE '\\' OR lower(family) LIKE ? ESCAPE '\\'";
    const [count, rows] = await env.DB.batch([
      env.DB.prepare(`SELECT count(*) AS n FROM species ${where}`).bind(pattern, `%"${likeLiteral(q.toLowerCase())}%`, pattern),
      env.DB.prepare(`SELECT * FROM species ${where} ORDER BY identification_count DESC, scientific_name LIMIT ?`).bind(
        pattern,
        `%"${likeLiteral(q.toLowerCase())}%`,
        pattern,
        limit,
      ),
    ]);
    return { rows: rows!.results as unknown as SpeciesRow[], total: (count!.results[0] as { n: number }).n };
  }
  // A literal substring hit outranks a fuzzy one; then bm25 (lower is better), then popularity.
  // instr, not LIKE: D1 refuses LIKE patterns over 50 bytes, and queries may be 100 characters.
  const substring = q.toLowerCase().trim();
  const [count, rows] = await env.DB.batch([
    env.DB.prepare("SELECT count(*) AS n FROM species_fts WHERE species_fts MATCH ?").bind(match),
    env.DB.prepare(
      `SELECT s.*, (instr(lower(s.scientific_name), ?1) > 0 OR instr(lower(s.common_names), ?1) > 0 OR instr(lower(s.family), ?1) > 0) AS exact
         FROM species_fts f JOIN species s ON s.rowid = f.rowid
        WHERE species_fts MATCH ?2
        ORDER BY exact DESC, CASE WHEN exact THEN s.identification_count ELSE 0 END DESC,
                 bm25(species_fts, 10.0, 5.0, 1.0), s.identification_count DESC, s.scientific_name
        LIMIT ?3`,
    ).bind(substring, match, limit),
  ]);
  return { rows: rows!.results as unknown as SpeciesRow[], total: (count!.results[0] as { n: number }).n };
}

// ---------------------------------------------------------------------------------------------
// Trefle: names and care data for species the catalogue lacks (API.md §4 `species/lookup/`) and
// for enrichment of identification jobs. Answers are cached in KV for 24 h, "unknown to Trefle"
// included, so a name costs Trefle at most one search + one detail call a day.

const TREFLE_CACHE_TTL_S = 24 * 3600;

/** A scientific name as people type it: "monstera  Deliciosa " → "Monstera deliciosa". */
export function normaliseScientificName(name: string): string {
  const words = name.trim().replace(/\s+/g, " ").split(" ");
  return words.map((w, i) => (i === 0 ? w.charAt(0).toUpperCase() + w.slice(1).toLowerCase() : w.toLowerCase())).join(" ");
}

/**
 * What Trefle knows of a species (null: unknown to Trefle), through the 24 h KV cache.
 * Throws ProviderError when Trefle is not configured, down, slow or answers nonsense.
 */
export async function cachedTrefleSpecies(env: Bindings, scientificName: string): Promise<TrefleSpecies | null> {
  const config = getConfig(env);
  if (!config.TREFLE_API_KEY) throw new ProviderError("trefle", "auth", "TREFLE_API_KEY is not configured");
  const cacheKey = `trefle:v1:species:${scientificName.toLowerCase()}`;
  const cached = await env.CACHE.get<{ species: TrefleSpecies | null }>(cacheKey, "json");
  if (cached && "species" in cached) return cached.species;
  const species = await trefleSpeciesFor(
    { baseUrl: config.TREFLE_API_URL, token: config.TREFLE_API_KEY, timeoutMs: config.TREFLE_TIMEOUT_MS },
    scientificName,
  );
  await env.CACHE.put(cacheKey, JSON.stringify({ species }), { expirationTtl: TREFLE_CACHE_TTL_S });
  return species;
}

export type LookupResult =
  | { found: "local"; row: SpeciesRow }
  | { found: "trefle"; row: SpeciesRow }
  | { found: "none"; reason: "unknown" | "catalogue_only" };

/**
 * `species/lookup/`: the catalogue first; else Trefle, whose species is stored as a new,
 * unverified catalogue entry (source "trefle"). Concurrent lookups of one name store it once.
 */
export async function lookupSpecies(env: Bindings, scientificName: string): Promise<LookupResult> {
  const local = await env.DB.prepare("SELECT * FROM species WHERE lower(scientific_name) = lower(?)")
    .bind(scientificName)
    .first<SpeciesRow>();
  if (local) return { found: "local", row: local };
  if (!getConfig(env).TREFLE_API_KEY) return { found: "none", reason: "catalogue_only" };

  const t = await cachedTrefleSpecies(env, scientificName);
  if (!t) return { found: "none", reason: "unknown" };
  const [row] = (
    await env.DB.batch([
      env.DB.prepare(
        `INSERT INTO species (id, scientific_name, common_names, family, genus, trefle_id, light_requirements, water_requirements,
                              soil_ph_min, soil_ph_max, mature_height_min_cm, mature_height_max_cm, bloom_time, flower_color,
                              image_url, source, is_verified)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'trefle', 0)
         ON CONFLICT DO NOTHING`,
      ).bind(
        uuidv7(),
        t.scientificName,
        JSON.stringify(t.commonName ? [t.commonName] : []),
        t.family ?? "",
        t.genus ?? t.scientificName.split(" ")[0] ?? "",
        t.trefleId,
        t.lightRequirements,
        t.waterRequirements,
        t.soilPhMin,
        t.soilPhMax,
        t.matureHeightMinCm,
        t.matureHeightMaxCm,
        t.bloomTime,
        t.flowerColor,
        t.imageUrl,
      ),
      env.DB.prepare("SELECT * FROM species WHERE lower(scientific_name) = lower(?)").bind(t.scientificName),
    ])
  )[1]!.results as SpeciesRow[];
  if (!row) throw new Error(`species ${t.scientificName} vanished right after its insert`);
  return { found: "trefle", row };
}
