/**
 * How species search ranks a catalogue row for what a gardener typed. Pure: no database, so
 * the same rules serve `search/plants/` and the unified search and can be tested on their own.
 *
 * Text is compared normalised: lower case, accents dropped, apostrophes removed ("devil's" =
 * "devils"), every other run of non-letters/digits one space ("fiddle-leaf" = "fiddle leaf").
 * A row's names are its scientific name and each common name; its family counts only as a
 * literal match (never by typo).
 *
 * Match quality, best first (the unified search's `score` in brackets):
 *   1. exact     — a name is the query                                   (1.0)
 *   2. word      — a name holds the query as whole words                 (0.8)
 *                  ("lavender" in "English lavender"); the name's last words before others
 *   3. prefix    — a name starts with the query                          (0.8)
 *   4. word-prefix — a word of a name starts with the query             (0.7)
 *   5. all-words — every query word starts a word of one name, any order (0.7)
 *   6. contains  — a name or the family contains the query               (0.6)
 *   7. typo      — within the typo budget of a name or of its words      (0.3), fewer edits first
 * Queries under three characters only complete names (tiers 1 and 3, and a family prefix).
 * Ties: fewer edits, then popularity (identification count), then a match on the name's last
 * word (its head noun: "dog rose" is a rose, "rose of Sharon" is not), then the shorter matched
 * name, then the scientific name. Anything else is below the relevance floor and not a hit.
 */

import { ftsPhrase } from "../db/text-match";

export interface RankCandidate {
  scientificName: string;
  /**
   * The common names, or their JSON text as the catalogue stores it: a search ranks thousands of
   * rows, and parsing each row's list costs more than ranking it (the parsed, normalised list is
   * kept per isolate, like the names themselves).
   */
  commonNames: readonly string[] | string;
  family: string;
  identificationCount: number;
}

export const MatchTier = {
  exact: 0,
  word: 1,
  prefix: 2,
  wordPrefix: 3,
  allWords: 4,
  contains: 5,
  typo: 6,
} as const;
export type MatchTier = (typeof MatchTier)[keyof typeof MatchTier];

/** The unified search's 0..1 `score` of each tier (documented in docs/api.md). */
const TIER_SCORE: Record<MatchTier, number> = { 0: 1, 1: 0.8, 2: 0.8, 3: 0.7, 4: 0.7, 5: 0.6, 6: 0.3 };
export const tierScore = (tier: MatchTier): number => TIER_SCORE[tier];

export interface RankedMatch<T extends RankCandidate = RankCandidate> {
  candidate: T;
  tier: MatchTier;
  /** Edits (typo tier only; 0 otherwise). */
  edits: number;
  /** The match reaches the end of the matched name (its head word). */
  head: boolean;
  /** Length of the matched name: shorter is more specific. */
  nameLength: number;
  score: number;
}

/** Below this many characters a query only completes names. */
export const SHORT_QUERY = 3;

export function normaliseSearchText(text: string): string {
  // Plain ASCII (nearly every name) needs no Unicode decomposition.
  const folded = /^[\x20-\x7e]*$/.test(text) ? text : text.normalize("NFKD").replace(/\p{M}/gu, "");
  return folded
    .toLowerCase()
    .replace(/['’ʼ`]/g, "")
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

/** Edits allowed for a word or phrase of this many characters. */
export function typoBudget(length: number): number {
  if (length <= 4) return 0;
  if (length <= 8) return 1;
  return 2;
}

/** Rows of the edit-distance table, reused across calls (grown on demand; nothing awaits in between). */
let rows: [Int32Array, Int32Array, Int32Array] = [new Int32Array(64), new Int32Array(64), new Int32Array(64)];

/**
 * Fewest edits (insert, delete, substitute, swap of neighbours) turning `a` into `b` — or into
 * any prefix of `b` when `prefix` — or `limit + 1` once it is sure to exceed `limit`.
 */
export function editDistance(a: string, b: string, limit: number, prefix = false): number {
  const over = limit + 1;
  if (!prefix && Math.abs(a.length - b.length) > limit) return over;
  const n = a.length;
  const m = prefix ? Math.min(b.length, n + limit) : b.length;
  if (m < n - limit) return over;
  if (rows[0].length < m + 1) rows = [new Int32Array(m + 1), new Int32Array(m + 1), new Int32Array(m + 1)];
  let [prev2, prev, row] = rows;
  for (let j = 0; j <= m; j++) prev[j] = j;
  for (let i = 1; i <= n; i++) {
    row[0] = i;
    let best = i;
    const ai = a.charCodeAt(i - 1);
    for (let j = 1; j <= m; j++) {
      const bj = b.charCodeAt(j - 1);
      let v = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (ai === bj ? 0 : 1));
      if (i > 1 && j > 1 && ai === b.charCodeAt(j - 2) && a.charCodeAt(i - 2) === bj) v = Math.min(v, prev2[j - 2]! + 1);
      row[j] = v;
      if (v < best) best = v;
    }
    if (best > limit) return over;
    const spare = prev2;
    prev2 = prev;
    prev = row;
    row = spare;
  }
  let d = prev[m]!;
  if (prefix) for (let j = Math.max(0, n - limit); j < m; j++) d = Math.min(d, prev[j]!);
  return Math.min(d, over);
}

/** Normalised catalogue names, kept across requests: the catalogue changes rarely and slowly. */
const NAME_CACHE_LIMIT = 50_000;
interface NormalisedName {
  text: string;
  words: string[];
}
const nameCache = new Map<string, NormalisedName>();

function normalisedName(raw: string): NormalisedName {
  let hit = nameCache.get(raw);
  if (!hit) {
    const text = normaliseSearchText(raw);
    hit = { text, words: text.split(" ") };
    if (nameCache.size >= NAME_CACHE_LIMIT) nameCache.clear();
    nameCache.set(raw, hit);
  }
  return hit;
}

/** Stored common-name lists (JSON text), parsed and normalised; malformed or non-string entries count as none. */
const storedNamesCache = new Map<string, NormalisedName[]>();

function commonNamesOf(candidate: RankCandidate): NormalisedName[] {
  const names = candidate.commonNames;
  if (typeof names !== "string") return names.map(normalisedName);
  let hit = storedNamesCache.get(names);
  if (!hit) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(names);
    } catch {
      parsed = [];
    }
    hit = Array.isArray(parsed) ? parsed.filter((n): n is string => typeof n === "string").map(normalisedName) : [];
    if (storedNamesCache.size >= NAME_CACHE_LIMIT) storedNamesCache.clear();
    storedNamesCache.set(names, hit);
  }
  return hit;
}

export interface Query {
  text: string;
  words: string[];
  short: boolean;
}

export function parseQuery(raw: string): Query | null {
  const text = normaliseSearchText(raw);
  if (!text) return null;
  const words = [...new Set(text.split(" "))];
  return { text, words, short: text.length < SHORT_QUERY };
}

interface NameMatch {
  tier: MatchTier;
  edits: number;
  head: boolean;
}

const better = (a: NameMatch | null, b: NameMatch | null): NameMatch | null => {
  if (!a) return b;
  if (!b) return a;
  return (a.tier - b.tier || a.edits - b.edits || Number(b.head) - Number(a.head)) <= 0 ? a : b;
};

/** Fewest edits matching each query word to a word of the name (complete words cost nothing extra), or null. */
function wordsTypoEdits(q: Query, words: string[]): { edits: number; head: boolean } | null {
  let edits = 0;
  let head = false;
  const last = words.length - 1;
  for (const qw of q.words) {
    const budget = typoBudget(qw.length);
    let best = budget + 1;
    let bestHead = false;
    for (let i = 0; i <= last; i++) {
      const w = words[i]!;
      // A partial word must start like the word it completes; a whole word may be misspelt anywhere.
      const whole = editDistance(qw, w, budget);
      const d = whole <= budget ? whole : w[0] === qw[0] ? editDistance(qw, w, budget, true) : budget + 1;
      if (d < best || (d === best && i === last && !bestHead)) {
        best = d;
        bestHead = i === last;
      }
    }
    if (best > budget) return null;
    edits += best;
    head ||= bestHead;
  }
  return { edits, head };
}

function matchName(q: Query, name: string, words: string[]): NameMatch | null {
  if (!name) return null;
  const t = q.text;
  if (name === t) return { tier: MatchTier.exact, edits: 0, head: true };
  const padded = ` ${name} `;
  const wordAt = padded.lastIndexOf(` ${t} `);
  if (!q.short && wordAt !== -1) return { tier: MatchTier.word, edits: 0, head: wordAt + t.length + 2 === padded.length };
  if (name.startsWith(t)) return { tier: MatchTier.prefix, edits: 0, head: !name.includes(" ", t.length) };
  if (q.short) return null;
  const at = padded.lastIndexOf(` ${t}`);
  if (at !== -1) return { tier: MatchTier.wordPrefix, edits: 0, head: !name.includes(" ", at + t.length) };
  if (q.words.length > 1 && q.words.every((qw) => words.some((w) => w.startsWith(qw)))) {
    return { tier: MatchTier.allWords, edits: 0, head: words.at(-1)!.startsWith(q.words.at(-1)!) };
  }
  if (name.includes(t)) return { tier: MatchTier.contains, edits: 0, head: name.endsWith(t) };
  // Typos: the whole query against the name (or its start, when the query starts like it), or word by word.
  const budget = typoBudget(t.length);
  const whole = editDistance(t, name, budget);
  const start = whole <= budget ? whole : name[0] === t[0] ? editDistance(t, name, budget, true) : budget + 1;
  const phrase: NameMatch | null = start <= budget ? { tier: MatchTier.typo, edits: start, head: whole <= budget } : null;
  const byWord = wordsTypoEdits(q, words);
  return better(phrase, byWord && { tier: MatchTier.typo, ...byWord });
}

/** How `candidate` matches the query at its best, or null when below the relevance floor. */
export function matchCandidate<T extends RankCandidate>(q: Query, candidate: T): RankedMatch<T> | null {
  const scientific = normalisedName(candidate.scientificName);
  let best = withName(candidate, matchName(q, scientific.text, scientific.words), scientific.text.length, null);
  for (const name of commonNamesOf(candidate)) best = withName(candidate, matchName(q, name.text, name.words), name.text.length, best);
  const family = normalisedName(candidate.family).text;
  if (family && (q.short ? family.startsWith(q.text) : family.includes(q.text))) {
    best = withName(candidate, { tier: MatchTier.contains, edits: 0, head: false }, family.length, best);
  }
  return best;
}

/** The better of `best` and a name's match (no closure per candidate: this runs thousands of times a search). */
function withName<T extends RankCandidate>(
  candidate: T,
  m: NameMatch | null,
  nameLength: number,
  best: RankedMatch<T> | null,
): RankedMatch<T> | null {
  if (!m) return best;
  const next: RankedMatch<T> = { candidate, tier: m.tier, edits: m.edits, head: m.head, nameLength, score: tierScore(m.tier) };
  return !best || compareMatches(next, best) < 0 ? next : best;
}

export function compareMatches(a: RankedMatch, b: RankedMatch): number {
  return (
    a.tier - b.tier ||
    a.edits - b.edits ||
    b.candidate.identificationCount - a.candidate.identificationCount ||
    Number(b.head) - Number(a.head) ||
    a.nameLength - b.nameLength ||
    (a.candidate.scientificName < b.candidate.scientificName ? -1 : a.candidate.scientificName > b.candidate.scientificName ? 1 : 0)
  );
}

/**
 * The best `limit` matches, best first, and how many candidates match in all: the same order as
 * `rankCandidates(…).slice(0, limit)` without sorting every match (a broad query such as "ro"
 * matches thousands of rows at 100 000 species, and only a page is listed).
 */
export function rankTop<T extends RankCandidate>(
  query: Query,
  candidates: readonly T[],
  limit: number,
): { top: RankedMatch<T>[]; total: number } {
  const top: RankedMatch<T>[] = [];
  let total = 0;
  for (const c of candidates) {
    const m = matchCandidate(query, c);
    if (!m) continue;
    total++;
    if (top.length >= limit && (limit === 0 || compareMatches(m, top[limit - 1]!) >= 0)) continue;
    // Binary search for the first listed match that m comes before.
    let lo = 0;
    let hi = top.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareMatches(m, top[mid]!) < 0) hi = mid;
      else lo = mid + 1;
    }
    top.splice(lo, 0, m);
    if (top.length > limit) top.pop();
  }
  return { top, total };
}

/** The candidates that match, best first. */
export function rankCandidates<T extends RankCandidate>(query: string | Query, candidates: readonly T[]): RankedMatch<T>[] {
  const q = typeof query === "string" ? parseQuery(query) : query;
  if (!q) return [];
  const out: RankedMatch<T>[] = [];
  for (const c of candidates) {
    const m = matchCandidate(q, c);
    if (m) out.push(m);
  }
  return out.sort(compareMatches);
}

// ---------------------------------------------------------------------------------------------
// Candidates: what the trigram index must admit for the rules above to see every hit.

/** The trigrams of a word (quoted FTS5 strings, quotes doubled), none under three characters. */
function trigramsOf(word: string): string[] {
  const chars = [...word];
  const grams = new Set<string>();
  for (let i = 0; i + 3 <= chars.length; i++) grams.add(chars.slice(i, i + 3).join(""));
  return [...grams].map(ftsPhrase);
}

/** FTS5: at least `m` of these phrases (`(a AND (b OR c)) OR (b AND c)` for 2 of 3). */
function atLeast(m: number, grams: readonly string[]): string {
  if (m <= 1) return grams.length === 1 ? grams[0]! : `(${grams.join(" OR ")})`;
  if (grams.length === m) return `(${grams.join(" AND ")})`;
  const [first, ...rest] = grams;
  const withFirst = `(${first} AND ${atLeast(m - 1, rest)})`;
  return rest.length >= m ? `(${withFirst} OR ${atLeast(m, rest)})` : withFirst;
}

/**
 * At least `m` of these phrases, or a superset when the exact expression would be large: past six
 * phrases, split in two halves, each needing at least ⌈m/2⌉ (a row with fewer in both halves has
 * at most m − 1), and so on down. Exact "3 of 10" would be 120 conjunctions; this is 20.
 */
function atLeastBounded(m: number, grams: readonly string[]): string {
  if (grams.length <= 6 || m <= 1) return atLeast(m, grams);
  const mid = Math.ceil(grams.length / 2);
  const need = Math.ceil(m / 2);
  return `(${atLeastBounded(need, grams.slice(0, mid))} OR ${atLeastBounded(need, grams.slice(mid))})`;
}

/**
 * What every single-edit misspelling of a word (and most with two edits) keeps of its trigrams.
 * A substitution, insertion or deletion takes at most 3 consecutive ones: of a word of 5–6
 * letters, two remain or else its first or its last; of 7–8 letters, n − 3; of longer words,
 * which may hold two edits, half. A transposition takes up to 4, but leaves whole the trigrams
 * before it or after it: the first and the last, or all from the fifth on, or all but the last
 * four. So "mildew" admits names with "mil" or "dew" or two of its trigrams, not every "wild".
 */
function wordBound(grams: readonly string[]): string {
  const n = grams.length;
  if (n <= 2) return atLeast(1, grams);
  if (n <= 4) return `(${atLeast(2, grams)} OR ${grams[0]} OR ${grams[n - 1]})`;
  const most = atLeastBounded(n === 5 || n === 6 ? n - 3 : Math.ceil(n / 2), grams);
  const all = (run: readonly string[]) => (run.length === 1 ? run[0]! : `(${run.join(" AND ")})`);
  return `(${most} OR (${grams[0]} AND ${grams[n - 1]}) OR ${all(grams.slice(4))} OR ${all(grams.slice(0, n - 4))})`;
}

/**
 * All but one of a word's trigrams. Past four trigrams a superset that stays small: split in
 * three runs, one missing trigram leaves two runs whole.
 */
function nearlyAllOf(grams: readonly string[]): string {
  if (grams.length <= 4) return atLeast(Math.max(1, grams.length - 1), grams);
  const third = Math.ceil(grams.length / 3);
  const runs = [grams.slice(0, third), grams.slice(third, 2 * third), grams.slice(2 * third)].map((run) => `(${run.join(" AND ")})`);
  return `((${runs[0]} AND ${runs[1]}) OR (${runs[0]} AND ${runs[2]}) OR (${runs[1]} AND ${runs[2]}))`;
}

/** Above this many words the bound is simpler (one trigram of each word but one): the query is already narrow. */
const FEW_WORDS = 4;

/**
 * The FTS5 query (over migration 0004's `species_fts`) that bounds the rows the ranking may
 * accept, or null when no query word has three characters. Admitting a row for any one trigram
 * of any word made the candidates grow with the catalogue — at 100 000 species "monstera"
 * admitted 10 213 rows through "ter" and "era", for 3 hits — and each is fetched and ranked.
 * Now a row's names must, for every query word of three or more characters,
 * - keep what any single-edit misspelling of the word keeps (`wordBound`), or
 * - (two to four words) hold all trigrams but one of every word but one, which may share none:
 *   a transposition in a short word can take all its trigrams ("fren" shares none with "fern"),
 *   and "boston fren" is still found;
 * with more than four words, one trigram of every word but one. Every tier above but the typo
 * tier holds each query word whole, so all its trigrams. What is lost: a short word misspelt in
 * its middle when the query has no other word (the old bound lost most of these too), and two
 * words each misspelt so in one query. The labelled queries of test/helpers/gardener-queries.ts
 * and 344 generated one-edit typos of seeded names (BENCHMARKS.md) measure it. Families match
 * only literally, so a family must hold every trigram (each ends in "-aceae": "ace" alone would
 * select the whole catalogue).
 */
export function candidateMatch(q: Query): string | null {
  const perWord = q.words.map(trigramsOf).filter((grams) => grams.length > 0);
  if (perWord.length === 0) return null;
  let names: string;
  if (perWord.length === 1) {
    const grams = perWord[0]!;
    names = wordBound(grams);
  } else if (perWord.length <= FEW_WORDS) {
    const each = perWord.map(wordBound).join(" AND ");
    const nearly = perWord.map(nearlyAllOf);
    const allButOne = nearly.map((_, skip) => `(${nearly.filter((__, i) => i !== skip).join(" AND ")})`);
    names = `(${each}) OR ${allButOne.join(" OR ")}`;
  } else {
    const any = perWord.map((grams) => atLeast(1, grams));
    names = any.map((_, skip) => `(${any.filter((__, i) => i !== skip).join(" AND ")})`).join(" OR ");
  }
  const all = [...new Set(perWord.flat())];
  return `{scientific_name common_names} : (${names}) OR family : (${all.join(" AND ")})`;
}
