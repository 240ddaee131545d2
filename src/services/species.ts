/**
 * The species catalogue: listing (popularity, then name), detail, and typo-tolerant search.
 *
 * Search finds candidates through the FTS5 trigram index (migrations/0004): a row's names must
 * keep what a one-edit misspelling keeps of each query word (species-ranking.ts
 * `candidateMatch`) — so "monstra" still reaches Monstera (it keeps "mon", "ons", "nst"). Queries
 * without a three-character word read name prefixes as index ranges (migration 0026).
 * species-ranking.ts then ranks the candidates and drops those below its relevance floor.
 */
import { apiFields } from "../lib/fields";
import { and, count, desc, eq, inArray, not, or, type SQL, sql } from "drizzle-orm";
import { getConfig } from "../config";
import { type Database, database } from "../db/client";
import { type Page, type PageRequest, tablePage } from "../db/pagination";
import { species, speciesCommonNames } from "../db/schema";
import { foldedLower, searchNeedle, startsWith } from "../db/text-match";
import type { Bindings } from "../env";
import { AppError, orNotFound } from "../lib/errors";
import { sha256Hex } from "../lib/hash";
import { untimedId } from "../lib/ids";
import type { Logger } from "../lib/logger";
import { type TrefleSpecies, trefleSpeciesFor } from "../providers/trefle";
import { ProviderError } from "../providers/types";
import { candidateMatch, MatchTier, parseQuery, type RankCandidate, type RankedMatch, rankTop } from "./species-ranking";
import { purgeStatement } from "./public-cache";
import { enforceRateLimit } from "./rate-limits";

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
    const needle = searchNeedle(filter.search);
    conditions.push(
      sql`(instr(${foldedLower(s.scientificName, needle)}, ${needle}) > 0 OR instr(${foldedLower(s.commonNames, needle)}, ${needle}) > 0)`,
    );
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

/**
 * C0 control characters and DEL become spaces. FTS5's query parser ends a string at a NUL
 * ("unterminated string", a 500), and SQLite's text functions stop at one too. The routes refuse
 * such queries with a 400 first; this keeps every other caller of the search functions safe.
 */
export function withoutControlCharacters(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, " ");
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
 * only narrows the catalogue to rows that could be within a typo of the query (`candidateMatch`;
 * for queries without a trigram, names starting like it); the ranking decides what is a hit, so
 * words naming no plant find nothing. Two reads: the candidates' ranked columns only, packed into a few
 * JSON values (`rankColumnsWhere`), then the listed rows whole — at 100 000 species carrying every
 * candidate's whole row, or each candidate as a row of its own, cost more than the second round trip.
 */
export async function searchSpecies(env: Bindings, query: string, limit: number): Promise<SpeciesSearchResult> {
  const q = parseQuery(withoutControlCharacters(query));
  if (!q) return { rows: [], scores: [], total: 0 };
  const db = database(env);
  const s = species;
  const match = candidateMatch(q);
  let ranked: { top: RankedMatch<SpeciesCandidate>[]; total: number };
  if (match) {
    // FTS5 MATCH is the point: the trigram index narrows the catalogue to possible hits.
    const candidates = await rankColumnsWhere(db, sql`${s}.rowid IN (SELECT rowid FROM species_fts WHERE species_fts MATCH ${match})`);
    ranked = rankTop(q, unpackCandidates(candidates), limit);
  } else {
    // No trigram: names starting like the query's first word, each an index range.
    const first = q.words[0]!;
    const commonName = db
      .select({ id: speciesCommonNames.speciesId })
      .from(speciesCommonNames)
      .where(startsWith(speciesCommonNames.nameLower, first));
    const byName = or(startsWith(sql`lower(${s.scientificName})`, first), inArray(s.id, commonName))!;
    const byFamilyOnly = and(startsWith(sql`lower(${s.family})`, first), not(byName))!;
    // A family prefix ranks below every name match, and "ro" holds the whole of Rosaceae: its
    // rows are only read when the names do not fill the page; otherwise they are counted.
    const [packedNames, [familyOnly]] = await db.batch([
      rankColumnsWhere(db, byName),
      db.select({ n: count() }).from(s).where(byFamilyOnly),
    ]);
    const named = unpackCandidates(packedNames);
    ranked = rankTop(q, named, limit);
    const filled = ranked.top.length === limit && limit > 0 && ranked.top[limit - 1]!.tier < MatchTier.contains;
    if (filled) ranked.total += familyOnly?.n ?? 0;
    else if ((familyOnly?.n ?? 0) > 0) {
      ranked = rankTop(q, [...named, ...unpackCandidates(await rankColumnsWhere(db, byFamilyOnly))], limit);
    }
  }
  const { top, total } = ranked;
  if (top.length === 0) return { rows: [], scores: [], total };
  // The listed rows whole, in one more read: cheaper than carrying every candidate's columns.
  const rows = await db
    .select({ rowid: sql<number>`${s}.rowid`, row: s })
    .from(s)
    .where(
      inArray(
        sql`${s}.rowid`,
        top.map((m) => m.candidate.rowid),
      ),
    );
  const byRowid = new Map(rows.map(({ rowid, row }) => [rowid, row]));
  const listed = top.filter((m) => byRowid.has(m.candidate.rowid)); // a row deleted in between is not listed
  return { rows: listed.map((m) => byRowid.get(m.candidate.rowid)!), scores: listed.map((m) => m.score), total };
}

/** What the ranking reads of a row, and its rowid to read the row whole if it is listed. */
interface SpeciesCandidate extends RankCandidate {
  rowid: number;
}

/**
 * How many bytes of packed candidates one JSON value may hold. D1 refuses a string over
 * 2 000 000 bytes, the value `json_group_array` builds included, and a query that matches a whole
 * family ("aceae") selects the whole catalogue: 7.7 MB in one value at 100 000 species. A value
 * holds candidates up to 1 000 000 bytes, separators counted, plus the one that crosses the line;
 * catalogue writes keep a row's names short (`catalogueCommonNames`), so that one is small.
 */
export const PACKED_BYTES_PER_VALUE = 1_000_000;

/**
 * The ranked columns of every row `where` selects, packed by SQLite into JSON arrays of about
 * `bytesPerValue` bytes each: one row per chunk, cut by a running sum of the candidates' sizes.
 * At 100 000 species a broad query ("rose") has thousands of candidates, and D1 carries one value
 * far more cheaply than thousands of rows of five cells. The common names stay the JSON text the
 * catalogue stores (the ranking parses each distinct list once per isolate).
 */
export function rankColumnsWhere(db: Database, where: SQL, bytesPerValue = PACKED_BYTES_PER_VALUE) {
  const s = species;
  const packed = db
    .select({
      c: sql<string>`json_array(${s}.rowid, ${s.identificationCount}, ${s.scientificName}, ${s.commonNames}, ${s.family})`.as("c"),
    })
    .from(s)
    .where(where)
    .as("packed");
  const running = db
    .select({ c: packed.c, upto: sql<number>`sum(length(CAST(${packed.c} AS BLOB)) + 1) OVER (ROWS UNBOUNDED PRECEDING)`.as("upto") })
    .from(packed)
    .as("running");
  // D1 binds a JavaScript number as a REAL, and a REAL divisor would put every row in a group of its own.
  const chunk = sql`${running.upto} / CAST(${bytesPerValue} AS INTEGER)`;
  // json(): a value read back from a subquery is text to json_group_array, which would quote it.
  return db
    .select({ list: sql<string | null>`json_group_array(json(${running.c}))` })
    .from(running)
    .groupBy(chunk);
}

/** At most this many common names, of at most this many characters, join the catalogue per species. */
const CATALOGUE_NAMES_MAX = 50;
const CATALOGUE_NAME_CHARS_MAX = 120;

/**
 * A provider's common names as the catalogue keeps them: providers' lists are unbounded, and a
 * row's names travel in every search that admits it (`rankColumnsWhere`), so a new entry keeps the
 * first 50 names, each cut to 120 characters (about 6 KB). The identification result keeps the
 * provider's list whole.
 */
export function catalogueCommonNames(names: readonly string[]): string[] {
  // Cut by code points, so a name never ends in half a surrogate pair.
  return names.slice(0, CATALOGUE_NAMES_MAX).map((name) => Array.from(name).slice(0, CATALOGUE_NAME_CHARS_MAX).join(""));
}

type PackedCandidate = [
  rowid: number,
  identificationCount: number | null,
  scientificName: string,
  commonNames: string | null,
  family: string | null,
];

function unpackCandidates(packed: { list: string | null }[]): SpeciesCandidate[] {
  return packed.flatMap(({ list }) =>
    list
      ? (JSON.parse(list) as PackedCandidate[]).map(([rowid, identificationCount, scientificName, commonNames, family]) => ({
          rowid,
          identificationCount: identificationCount ?? 0,
          scientificName,
          commonNames: commonNames ?? "[]",
          family: family ?? "",
        }))
      : [],
  );
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
  // Hashed: a name can come from a provider's answer, and KV refuses keys over 512 bytes or
  // that are not well-formed text.
  const cacheKey = `trefle:v2:species:${await sha256Hex(scientificName.toLowerCase())}`;
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
 * `budget` (`user:<id>` or `ip:<address>`) names who pays for a name the catalogue lacks, out of
 * SPECIES_LOOKUP_RATE_LIMIT (429 past it): such a lookup may call Trefle, whose quota is the
 * deployment's, and store a species, which purges the cached catalogue for every reader.
 */
export async function lookupSpecies(env: Bindings, scientificName: string, budget?: string): Promise<LookupResult> {
  const local = await speciesNamed(env, scientificName);
  if (local) return { found: "local", row: local };
  const config = getConfig(env);
  if (!config.TREFLE_API_KEY) return { found: "none", reason: "catalogue_only" };
  if (budget) await enforceRateLimit(env, `species-lookup:${budget}`, config.SPECIES_LOOKUP_RATE_LIMIT);

  const t = await cachedTrefleSpecies(env, scientificName);
  if (!t) return { found: "none", reason: "unknown" };
  const db = database(env);
  const [, stored] = await db.batch([
    db
      .insert(species)
      .values({
        id: untimedId(), // public: no moment of whoever looked it up first
        scientificName: t.scientificName,
        commonNames: catalogueCommonNames(t.commonName ? [t.commonName] : []),
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
export async function lookupSpeciesOrUnavailable(
  env: Bindings,
  scientificName: string,
  logger?: Logger,
  budget?: string,
): Promise<LookupResult> {
  try {
    return await lookupSpecies(env, scientificName, budget);
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
