/**
 * The species catalogue: listing (popularity, then name), detail, and typo-tolerant search.
 *
 * Search finds candidates through the FTS5 trigram index (migrations/0004): any trigram of any
 * query word may match — so "monstra" still reaches Monstera (it shares "mon", "ons", "nst").
 * Queries without a three-character word fall back to a prefix LIKE in which `_` and `%` are
 * literal. species-ranking.ts then ranks the candidates and drops those below its relevance floor.
 */
import { apiFields } from "../lib/fields";
import { and, desc, eq, getTableColumns, type SQL, sql } from "drizzle-orm";
import { getConfig } from "../config";
import { database } from "../db/client";
import { type Page, type PageRequest, tablePage } from "../db/pagination";
import { species } from "../db/schema";
import type { Bindings } from "../env";
import { AppError, orNotFound } from "../lib/errors";
import { uuidv7 } from "../lib/ids";
import type { Logger } from "../lib/logger";
import { type TrefleSpecies, trefleSpeciesFor } from "../providers/trefle";
import { ProviderError } from "../providers/types";
import { parseQuery, rankCandidates } from "./species-ranking";
import { purgeStatement } from "./public-cache";

export type SpeciesRow = typeof species.$inferSelect;

export function speciesBody(row: SpeciesRow) {
  return {
    ...apiFields(row, "id scientificName commonNames family genus gbifId trefleId plantType lightRequirements"),
    ...apiFields(row, "waterRequirements hardinessZoneMin hardinessZoneMax soilPhMin soilPhMax matureHeightMinCm"),
    ...apiFields(row, "matureHeightMaxCm bloomTime flowerColor description imageUrl identificationCount isVerified source"),
  };
}

/** The catalogue, most identified first, optionally filtered by a literal substring and a family. */
export function listSpecies(
  env: Bindings,
  filter: { search?: string | undefined; family?: string | undefined },
  page: PageRequest,
): Promise<Page<SpeciesRow>> {
  const s = species;
  const conditions: SQL[] = [];
  if (filter.search) {
    // A literal substring: instr, not LIKE — D1 refuses LIKE patterns over 50 bytes, and `%`
    // and `_` must match themselves anyway.
    const needle = filter.search.toLowerCase();
    conditions.push(sql`(instr(lower(${s.scientificName}), ${needle}) > 0 OR instr(lower(${s.commonNames}), ${needle}) > 0)`);
  }
  if (filter.family) conditions.push(sql`lower(${s.family}) = lower(${filter.family})`);
  return tablePage(database(env), s, and(...conditions), [desc(s.identificationCount), s.scientificName], page);
}

/** One species, or 404. */
export async function getSpecies(env: Bindings, id: string): Promise<SpeciesRow> {
  return orNotFound(await database(env).select().from(species).where(eq(species.id, id)).get(), "Species");
}

/** The catalogue's species of this name (case-insensitive), if any. */
export function speciesNamed(env: Bindings, scientificName: string): Promise<SpeciesRow | undefined> {
  return database(env).select().from(species).where(sql`lower(${species.scientificName}) = lower(${scientificName})`).get();
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

/**
 * The FTS5 query that finds every row the ranking could accept, or null when no query word has
 * three characters: a name sharing any trigram of any query word (typo tolerance), or a family
 * holding all of them (families only match literally — every family ends in "-aceae", so a
 * trigram such as "ace" alone would select the whole catalogue). Trigrams are quoted FTS5
 * strings (quotes doubled).
 */
function trigramQuery(words: readonly string[]): string | null {
  const grams = new Set<string>();
  for (const word of words) {
    const chars = [...word];
    for (let i = 0; i + 3 <= chars.length; i++) grams.add(chars.slice(i, i + 3).join(""));
  }
  if (grams.size === 0) return null;
  const quoted = [...grams].map((g) => `"${g.replaceAll('"', '""')}"`);
  return `{scientific_name common_names} : (${quoted.join(" OR ")}) OR family : (${quoted.join(" AND ")})`;
}

export interface SpeciesSearchResult {
  /** Best first (see species-ranking.ts), at most `limit`. */
  rows: SpeciesRow[];
  /** The unified search's 0..1 score of each row, by match quality. */
  scores: number[];
  /** Every row above the relevance floor, not only those listed. */
  total: number;
}

/**
 * Species ranked like a gardener thinks (src/services/species-ranking.ts): exact name, whole
 * words, prefix, word prefix, contained, then typos by edit count; then popularity. The index
 * only narrows the catalogue to rows sharing a trigram with the query (or, for queries without
 * one, starting like it); the ranking decides what is a hit, so words naming no plant find nothing.
 * One read, whole rows: a second round trip for the listed rows cost more than the extra bytes.
 */
export async function searchSpecies(env: Bindings, query: string, limit: number): Promise<SpeciesSearchResult> {
  const q = parseQuery(withoutControlCharacters(query));
  if (!q) return { rows: [], scores: [], total: 0 };
  const db = database(env);
  const s = species;
  const match = trigramQuery(q.words);
  let candidates: SpeciesRow[];
  if (match) {
    // FTS5 MATCH is the point: the trigram index narrows the catalogue to possible hits.
    candidates = await db
      .select(getTableColumns(s))
      .from(s)
      .innerJoin(sql`species_fts`, sql`species_fts.rowid = ${s}.rowid`)
      .where(sql`species_fts MATCH ${match}`);
  } else {
    // No trigram: names starting like the query's first word (LIKE with `%` and `_` literal; ESCAPE is the point).
    const first = likeLiteral(q.words[0]!);
    const prefix = `${first}%`;
    const word = `%"${first}%`;
    candidates = await db
      .select(getTableColumns(s))
      .from(s)
      .where(
        sql`lower(${s.scientificName}) LIKE ${prefix} ESCAPE '\\' OR lower(${s.commonNames}) LIKE ${word} ESCAPE '\\'
            OR lower(${s.family}) LIKE ${prefix} ESCAPE '\\'`,
      );
  }
  const ranked = rankCandidates(q, candidates);
  const top = ranked.slice(0, limit);
  return { rows: top.map((m) => m.candidate), scores: top.map((m) => m.score), total: ranked.length };
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
  const local = await speciesNamed(env, scientificName);
  if (local) return { found: "local", row: local };
  if (!getConfig(env).TREFLE_API_KEY) return { found: "none", reason: "catalogue_only" };

  const t = await cachedTrefleSpecies(env, scientificName);
  if (!t) return { found: "none", reason: "unknown" };
  const db = database(env);
  const [, stored] = await db.batch([
    db
      .insert(species)
      .values({
        id: uuidv7(),
        scientificName: t.scientificName,
        commonNames: t.commonName ? [t.commonName] : [],
        family: t.family ?? "",
        genus: t.genus ?? t.scientificName.split(" ")[0] ?? "",
        trefleId: t.trefleId,
        lightRequirements: t.lightRequirements as SpeciesRow["lightRequirements"],
        waterRequirements: t.waterRequirements as SpeciesRow["waterRequirements"],
        soilPhMin: t.soilPhMin,
        soilPhMax: t.soilPhMax,
        matureHeightMinCm: t.matureHeightMinCm,
        matureHeightMaxCm: t.matureHeightMaxCm,
        bloomTime: t.bloomTime,
        flowerColor: t.flowerColor,
        imageUrl: t.imageUrl,
        source: "trefle",
        isVerified: false,
      })
      .onConflictDoNothing(),
    db.select().from(species).where(sql`lower(${species.scientificName}) = lower(${t.scientificName})`),
    // A new catalogue entry: cached catalogue pages and searches go with it.
    purgeStatement(db, "species"),
  ]);
  const row = stored[0];
  if (!row) throw new Error(`species ${t.scientificName} vanished right after its insert`);
  return { found: "trefle", row };
}

/**
 * `lookupSpecies` for the API: a Trefle outage while the catalogue lacks the name is a 503 with
 * Retry-After (Trefle's own, within 1–300 s), never a 500.
 */
export async function lookupSpeciesOrUnavailable(env: Bindings, scientificName: string, logger?: Logger): Promise<LookupResult> {
  try {
    return await lookupSpecies(env, scientificName);
  } catch (err) {
    if (!(err instanceof ProviderError)) throw err;
    logger?.warn("trefle lookup failed", { species: scientificName, error: String(err) });
    const retryAfter = String(Math.min(Math.max(err.retryAfterS ?? 30, 1), 300));
    throw new AppError(
      "SPECIES_LOOKUP_UNAVAILABLE",
      503,
      `${scientificName} is not in our catalogue and the botanical database is unavailable right now. Please try again later.`,
      undefined,
      { "Retry-After": retryAfter },
    );
  }
}
