/**
 * Benchmark 8 — search at scale (issue 13 item 6):
 * 1. Species search (`search/plants/`, limit 20) and completions (`search/suggestions/`) with the
 *    catalogue grown to 1 000, 10 000 and 100 000 species (target: species-search p99 at 100 000
 *    ≤ 2× p99 at 1 000), every request with `Cache-Control: no-cache` so each runs its queries.
 * 2. Unified search (all four types) with the forum grown by 10 000 topics and 10 000 posts.
 * The query plans of the searches' statements are recorded at the largest size.
 *
 * Names are generated in the stack's own D1 (`wrangler d1 execute --persist-to`), so this needs a
 * stack this process started. They look like a catalogue's: pseudo-Latin genera of 8 species each
 * with real epithets, in 40 real families; one or two common names of an adjective and a coined
 * noun, one in 40 a real one ("rose", "lily", "fern" …), so a word such as "rose" matches a few
 * hundred species at 100 000 as it would in a real catalogue; generated species are never
 * identified (count 0), the long tail of a real catalogue. Figures only; every answer must be 200
 * with a list, and no query may find fewer species than it found on the seeded catalogue.
 */
import { loadavg } from "node:os";
import { Budget, fmtMs, type JsonResponse, request, summarize, type Summary } from "./lib";
import { SEARCH_BENCH_QUERIES } from "./search";
import { candidateMatch, parseQuery } from "../src/services/species-ranking";
import { d1 } from "./stack";
import { row, verdict, type Benchmark } from "./types";

const SIZES = [1_000, 10_000, 100_000] as const;
/** Rounds of the whole query list per size (15 queries each). */
const ROUNDS = 20;
const SUGGEST_QUERIES = ["mon", "ro", "philo", "peace", "fic", "sansevieria", "golden", "keyboard"] as const;
const FORUM_TOPICS = 10_000;
const UNIFIED_QUERIES = ["yellow leaves", "repotting", "fungus gnats", "monstera", "keyboard"] as const;
const TIME_LIMIT_MS = 900_000;

const values = (list: readonly string[]) => list.map((s, k) => `(${k}, '${s}')`).join(", ");
const SYLLABLES =
  "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi la le li lo lu ma me mi mo na ne ni no pa pe pi po ra re ri ro sa se si so ta te ti to va ve vi tra cle phy stro".split(
    " ",
  );
const EPITHETS = `alba rubra lutea viridis grandiflora parviflora japonica chinensis sinensis americana europaea
 officinalis vulgaris elegans gracilis nana major minor montana sylvestris aquatica repens scandens erecta tomentosa
 variegata aurea argentea purpurea rosea caerulea nigra pallida hirsuta glabra spinosa mollis odorata fragrans
 macrophylla microphylla latifolia angustifolia longifolia rotundifolia cordata lanceolata ovata pendula compacta
 humilis procera robusta splendens speciosa formosa mirabilis nobilis regia imperialis australis borealis orientalis occidentalis`
  .split(/\s+/)
  .filter(Boolean)
  .slice(0, 64);
const FAMILIES = `Araceae Rosaceae Asteraceae Lamiaceae Fabaceae Poaceae Orchidaceae Liliaceae Solanaceae Brassicaceae
 Apiaceae Cactaceae Euphorbiaceae Moraceae Arecaceae Bromeliaceae Crassulaceae Ericaceae Geraniaceae Malvaceae
 Myrtaceae Oleaceae Piperaceae Polypodiaceae Ranunculaceae Rutaceae Saxifragaceae Urticaceae Vitaceae Zingiberaceae
 Amaryllidaceae Asparagaceae Begoniaceae Cucurbitaceae Gesneriaceae Marantaceae Musaceae Nepenthaceae Pinaceae Violaceae`
  .split(/\s+/)
  .filter(Boolean);
const ADJECTIVES = `golden dwarf silver red giant creeping climbing weeping striped spotted velvet hairy mountain
 marsh desert forest tropical alpine purple white blue scarlet early late sweet wild common painted crested trailing`
  .split(/\s+/)
  .filter(Boolean);
const REAL_NOUNS =
  "rose lily fern palm ivy orchid daisy violet pepper bean sage mint thistle poppy aster moss clover iris tulip plant".split(" ");
const NOUN_ENDS = "wort weed bell leaf root berry flower grass vine bush".split(" ");

/** SQL adding generated species numbered from..to (inclusive). */
export function generateSpeciesSql(from: number, to: number): string {
  return `
INSERT OR IGNORE INTO species (id, scientific_name, common_names, family, genus, description, identification_count, source, is_verified)
WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to}),
  syl(k, s) AS (VALUES ${values(SYLLABLES)}),
  epi(k, s) AS (VALUES ${values(EPITHETS)}),
  adj(k, s) AS (VALUES ${values(ADJECTIVES)}),
  real(k, s) AS (VALUES ${values(REAL_NOUNS)}),
  tail(k, s) AS (VALUES ${values(NOUN_ENDS)}),
  fam(k, s) AS (VALUES ${values(FAMILIES)}),
  g AS (SELECT i, i / 8 AS gi FROM n),
  named AS (
    SELECT g.i, g.gi,
           upper(substr(s1.s, 1, 1)) || substr(s1.s, 2) || s2.s || s3.s ||
             CASE g.gi % 5 WHEN 0 THEN 'a' WHEN 1 THEN 'um' WHEN 2 THEN 'ia' WHEN 3 THEN 'us' ELSE 'is' END AS genus,
           e.s AS epithet,
           a.s || ' ' || CASE WHEN g.i % 40 = 0 THEN r.s ELSE c1.s || c2.s || t.s END AS common1,
           CASE WHEN g.i % 2 = 0 THEN a2.s || ' ' || c2.s || c1.s || t2.s END AS common2,
           f.s AS family
      FROM g
      JOIN syl s1 ON s1.k = g.gi % ${SYLLABLES.length}
      JOIN syl s2 ON s2.k = (g.gi / ${SYLLABLES.length}) % ${SYLLABLES.length}
      JOIN syl s3 ON s3.k = (g.gi / ${SYLLABLES.length ** 2}) % ${SYLLABLES.length}
      JOIN epi e ON e.k = (g.i % 8) * 8 + (g.gi % 8)
      JOIN adj a ON a.k = (g.i * 7) % ${ADJECTIVES.length}
      JOIN adj a2 ON a2.k = (g.i * 11 + 3) % ${ADJECTIVES.length}
      JOIN real r ON r.k = (g.i / 40) % ${REAL_NOUNS.length}
      JOIN syl c1 ON c1.k = (g.i * 13) % ${SYLLABLES.length}
      JOIN syl c2 ON c2.k = (g.i * 17 + 5) % ${SYLLABLES.length}
      JOIN tail t ON t.k = (g.i * 3) % ${NOUN_ENDS.length}
      JOIN tail t2 ON t2.k = (g.i * 5 + 1) % ${NOUN_ENDS.length}
      JOIN fam f ON f.k = (g.gi / 3) % ${FAMILIES.length}
  )
SELECT printf('00000000-0000-4000-8000-%012d', i), genus || ' ' || epithet,
       CASE WHEN common2 IS NULL THEN json_array(common1) ELSE json_array(common1, common2) END,
       family, genus, 'Generated for the scale benchmark.', 0, 'seed', 0
  FROM named;
`;
}

const FORUM_WORDS = `monstera leaves yellow brown spots repotting soil drainage fungus gnats watering light window
 cutting propagation roots rot humidity fertiliser pruning bloom aphids mealybugs orchid succulent cactus fern
 tomato basil seedlings compost mulch frost shade sunlight pot terracotta peat perlite`
  .split(/\s+/)
  .filter(Boolean);

/** SQL adding a bench author and `count` forum topics, each with its first post (one post per topic). */
function generateForum(count: number): string {
  const w = (expr: string) => `(SELECT s FROM words WHERE k = (${expr}) % ${FORUM_WORDS.length})`;
  return `
INSERT OR IGNORE INTO users (id, username, email) VALUES ('00000000-0000-4000-8000-00000000b0b0', 'scale_bench_author', 'scale-bench@bench.example.com');
INSERT INTO forum_topics (id, category_id, author_id, title, reply_count, last_activity_at, created_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${count}),
  words(k, s) AS (VALUES ${values(FORUM_WORDS)}),
  cats AS (SELECT id, row_number() OVER (ORDER BY position) - 1 AS k FROM forum_categories)
SELECT printf('00000000-0000-4000-9000-%012d', i), (SELECT id FROM cats WHERE k = i % (SELECT count(*) FROM cats)),
       '00000000-0000-4000-8000-00000000b0b0',
       'Help with ' || ${w("i * 7")} || ' and ' || ${w("i * 11 + 3")} || ' ' || i,
       0, strftime('%Y-%m-%dT%H:%M:%fZ', '2025-01-01', '+' || i || ' minutes'),
       strftime('%Y-%m-%dT%H:%M:%fZ', '2025-01-01', '+' || i || ' minutes')
  FROM n;
INSERT INTO forum_posts (id, topic_id, author_id, body, is_first, created_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${count}),
  words(k, s) AS (VALUES ${values(FORUM_WORDS)})
SELECT printf('00000000-0000-4000-a000-%012d', i), printf('00000000-0000-4000-9000-%012d', i),
       '00000000-0000-4000-8000-00000000b0b0',
       '<p>My plant has ' || ${w("i * 5")} || ' and ' || ${w("i * 13 + 1")} || ' since I moved it near the ' || ${w("i * 17 + 2")} ||
         '. I tried <strong>' || ${w("i * 19 + 4")} || '</strong> and less ' || ${w("i * 23 + 6")} ||
         ', but the ' || ${w("i * 29 + 8")} || ' still look wrong. Any idea what to change first?</p>',
       1, strftime('%Y-%m-%dT%H:%M:%fZ', '2025-01-01', '+' || i || ' minutes')
  FROM n;
`;
}

const sqlText = (text: string) => `'${text.replaceAll("'", "''")}'`;
/** The FTS5 query bounding a species search's candidates, as src/services/species.ts builds it. */
const speciesCandidateMatch = (q: string) => {
  const parsed = parseQuery(q);
  return parsed ? candidateMatch(parsed) : null;
};

/** The statements the searches run, for EXPLAIN QUERY PLAN (kept in step with src/services by hand). */
const PLANS: [string, string][] = [
  [
    'species candidates ("mildew")',
    `SELECT json_group_array(json_array(s.rowid, s.identification_count, s.scientific_name, s.common_names, s.family)) FROM species s
      WHERE s.rowid IN (SELECT rowid FROM species_fts WHERE species_fts MATCH ${sqlText(speciesCandidateMatch("mildew")!)})`,
  ],
  [
    'species candidates, short query ("ro")',
    `SELECT s.id FROM species s WHERE (lower(s.scientific_name) >= 'ro' AND lower(s.scientific_name) < 'ro' || char(1114111))
       OR s.id IN (SELECT species_id FROM species_common_names WHERE name_lower >= 'ro' AND name_lower < 'ro' || char(1114111))
       OR (lower(s.family) >= 'ro' AND lower(s.family) < 'ro' || char(1114111))`,
  ],
  ["species rows of the page", "SELECT rowid, * FROM species WHERE rowid IN (1, 2, 3)"],
  [
    'unified search: forum topics matching by a post ("repotting")',
    `SELECT t.id, count(*) OVER () FROM forum_topics t JOIN forum_categories c ON c.id = t.category_id
      WHERE instr(lower(t.title), 'repotting') > 0 OR t.id IN (SELECT p.topic_id FROM forum_posts p WHERE p.is_deleted = 0
        AND p.rowid IN (SELECT rowid FROM forum_posts_fts WHERE forum_posts_fts MATCH '"repotting"') AND instr(lower(p.body), 'repotting') > 0)
      ORDER BY t.last_activity_at DESC LIMIT 5`,
  ],
  [
    "suggestions: scientific names",
    `SELECT scientific_name FROM species WHERE lower(scientific_name) >= 'phil' AND lower(scientific_name) < 'phil' || char(1114111)
      ORDER BY identification_count DESC, scientific_name LIMIT 10`,
  ],
  [
    "suggestions: common names",
    `SELECT n.name FROM species_common_names n JOIN species s ON s.id = n.species_id
      WHERE n.name_lower >= 'peace' AND n.name_lower < 'peace' || char(1114111)
      ORDER BY s.identification_count DESC, n.name LIMIT 10`,
  ],
  [
    "suggestions: forum titles",
    `SELECT title FROM forum_topics WHERE lower(title) >= 'help' AND lower(title) < 'help' || char(1114111)
      ORDER BY last_activity_at DESC, id DESC LIMIT 10`,
  ],
];

/** The generators' rows, by their id prefixes (species, topics, posts; the posts go with their topics too). */
const GENERATED_ROWS_CLEANUP = `
DELETE FROM forum_posts WHERE id LIKE '00000000-0000-4000-a000-%';
DELETE FROM forum_topics WHERE id LIKE '00000000-0000-4000-9000-%';
DELETE FROM species WHERE id LIKE '00000000-0000-4000-8000-%';
`;

interface SpeciesPage {
  results?: { scientific_name?: string }[];
  total?: number;
}

export const scaleBench: Benchmark = async ({ stack, log }, result) => {
  const budget = new Budget("scale", TIME_LIMIT_MS);
  const base = stack.baseUrl;
  const stateDir = stack.stateDir;
  if (!stateDir) {
    result.notes.push("scale: generating data needs a stack this run started (BENCH_URL given): skipped.");
    return;
  }
  // A second attempt (the Worker reloaded during the first) starts from the seeded data again:
  // every size is measured as itself, and the forum's rows can be generated anew.
  const leftover = JSON.parse(d1(stateDir, "SELECT count(*) AS n FROM species WHERE id LIKE '00000000-0000-4000-8000-%';", true)) as {
    results: { n: number }[];
  }[];
  if ((leftover[0]?.results[0]?.n ?? 0) > 0) {
    log("scale: removing the rows an earlier attempt generated");
    d1(stateDir, GENERATED_ROWS_CLEANUP);
  }
  const bad: string[] = [];
  const fresh = { headers: { "Cache-Control": "no-cache" } };
  /** A request that failed to connect is an answer with status 0 (reported), not the end of the run. */
  const get = async <T>(url: string, init?: RequestInit): Promise<JsonResponse<Partial<T>>> => {
    try {
      return await request<T>(url, init);
    } catch (err) {
      return { status: 0, body: { error: String(err) } as unknown as Partial<T>, headers: new Headers(), ms: Number.NaN };
    }
  };
  const searchPlants = (q: string) =>
    get<SpeciesPage>(`${base}/api/v1/plant-identification/search/plants/?q=${encodeURIComponent(q)}&limit=20`, fresh);
  const suggest = (q: string) => get<{ suggestions: unknown[] }>(`${base}/api/v1/search/suggestions/?q=${encodeURIComponent(q)}`);
  const unified = (q: string) => get<{ counts: Record<string, number> }>(`${base}/api/v1/search/?q=${encodeURIComponent(q)}&limit=5`);
  const count = (table: string) => {
    const out = JSON.parse(d1(stateDir, `SELECT count(*) AS n FROM ${table};`, true)) as { results: { n: number }[] }[];
    return out[0]!.results[0]!.n;
  };

  /** Each query's matches on the seeded catalogue: adding species can never lose one. */
  const seededTotal = new Map<string, number>();
  for (const q of SEARCH_BENCH_QUERIES) seededTotal.set(q, (await searchPlants(q)).body.total ?? 0);

  const measure = async (label: string) => {
    // Warm the isolate (JIT, the per-isolate name cache) so the first size is not measured cold.
    for (let r = 0; r < 3; r++) for (const q of SEARCH_BENCH_QUERIES) await searchPlants(q);
    const searchMs: number[] = [];
    const suggestMs: number[] = [];
    const totals: Record<string, number> = {};
    const perQuery: Record<string, number[]> = {};
    for (let r = 0; r < ROUNDS; r++) {
      for (const q of SEARCH_BENCH_QUERIES) {
        budget.check(`${label} search round ${r + 1}`);
        const s = await searchPlants(q);
        if (s.status === 200 && Array.isArray(s.body.results)) {
          searchMs.push(s.ms);
          (perQuery[q] ??= []).push(s.ms);
          totals[q] = s.body.total ?? -1;
          const was = seededTotal.get(q) ?? 0;
          if (r === 0 && (s.body.total ?? 0) < was)
            bad.push(`${label}: "${q}" finds ${s.body.total}, fewer than its ${was} on the seeded catalogue`);
        } else bad.push(`${label} search/plants "${q}": ${s.status} ${JSON.stringify(s.body).slice(0, 160)}`);
      }
      for (const q of SUGGEST_QUERIES) {
        const s = await suggest(q);
        if (s.status === 200 && Array.isArray(s.body.suggestions)) suggestMs.push(s.ms);
        else bad.push(`${label} suggestions "${q}": ${s.status}`);
      }
    }
    const slowest = Object.entries(perQuery)
      .map(([q, ms]) => [q, summarize(ms).p50] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5);
    result.notes.push(`slowest queries at ${label} (p50): ${slowest.map(([q, ms]) => `"${q}" ${fmtMs(ms)}`).join(", ")}`);
    return { search: summarize(searchMs), suggest: summarize(suggestMs), totals };
  };

  const bySize: Record<number, { search: Summary; suggest: Summary; totals: Record<string, number> }> = {};
  for (const size of SIZES) {
    const have = count("species");
    if (have < size) {
      log(`scale: generating species ${have + 1}..${size}`);
      d1(stateDir, generateSpeciesSql(have + 1, size));
    }
    const now = count("species");
    log(`scale: ${now} species; counting candidates and measuring`);
    const candidates = SEARCH_BENCH_QUERIES.map((q) => {
      const match = speciesCandidateMatch(q);
      if (!match) return `"${q}" (prefix ranges)`;
      const out = JSON.parse(d1(stateDir, `SELECT count(*) AS n FROM species_fts WHERE species_fts MATCH ${sqlText(match)};`, true)) as {
        results: { n: number }[];
      }[];
      return `"${q}" ${out[0]!.results[0]!.n}`;
    });
    result.notes.push(`candidates the index admits at ${now} species: ${candidates.join(", ")}`);
    // The machine's load during each size: a p99 is one of the slowest few requests, so another
    // process busy during one size moves the ratio; the load says whether sizes were alike.
    const loadBefore = loadavg()[0]!;
    bySize[size] = await measure(`${size} species`);
    const loadAfter = loadavg()[0]!;
    const m = bySize[size]!;
    result.rows.push(
      row(
        `species search p50 / p99 at ${now.toLocaleString("en")} species (n=${m.search.n})`,
        `${fmtMs(m.search.p50)} / ${fmtMs(m.search.p99)} (load ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)})`,
      ),
      row(
        `suggestions p50 / p99 at ${now.toLocaleString("en")} species (n=${m.suggest.n})`,
        `${fmtMs(m.suggest.p50)} / ${fmtMs(m.suggest.p99)}`,
      ),
    );
  }
  const small = bySize[SIZES[0]]!.search;
  const large = bySize[SIZES[SIZES.length - 1]!]!.search;
  const ratio = large.p99 / small.p99;
  result.rows.push(row("species search p99 at 100 000 ÷ p99 at 1 000", `${ratio.toFixed(2)}×`, "≤ 2×", verdict(ratio <= 2)));
  const largest = bySize[SIZES[SIZES.length - 1]!]!.totals;
  result.notes.push(
    `matches per query at 100 000 species: ${Object.entries(largest)
      .map(([q, n]) => `"${q}" ${n}`)
      .join(", ")}`,
  );

  // ---- 2. Unified search over the forum grown by 10 000 topics and 10 000 posts
  const measureUnified = async (label: string) => {
    for (const q of UNIFIED_QUERIES) await unified(q);
    const ms: number[] = [];
    const counts: Record<string, unknown> = {};
    for (let r = 0; r < ROUNDS * 2; r++) {
      for (const q of UNIFIED_QUERIES) {
        budget.check(`${label} unified round ${r + 1}`);
        const u = await unified(q);
        if (u.status === 200 && u.body.counts) {
          ms.push(u.ms);
          counts[q] = u.body.counts;
        } else bad.push(`${label} search "${q}": ${u.status}`);
      }
    }
    return { all: summarize(ms), counts };
  };
  const topicsBefore = count("forum_topics");
  const before = await measureUnified("seeded forum");
  log(`scale: generating ${FORUM_TOPICS} forum topics and posts`);
  d1(stateDir, generateForum(FORUM_TOPICS));
  const after = await measureUnified("10 000 more topics");
  result.rows.push(
    row(`unified search p50 / p99, ${topicsBefore} topics (n=${before.all.n})`, `${fmtMs(before.all.p50)} / ${fmtMs(before.all.p99)}`),
    row(
      `unified search p50 / p99, +${FORUM_TOPICS.toLocaleString("en")} topics and posts (n=${after.all.n})`,
      `${fmtMs(after.all.p50)} / ${fmtMs(after.all.p99)}`,
    ),
  );

  // ---- Query plans at the largest size
  const plans: string[] = [];
  for (const [name, query] of PLANS) {
    try {
      const out = JSON.parse(d1(stateDir, `EXPLAIN QUERY PLAN ${query};`, true)) as { results: { detail: string }[] }[];
      plans.push(`${name}: ${out[0]!.results.map((r) => r.detail).join(" | ")}`);
    } catch (err) {
      plans.push(`${name}: (no plan: ${String(err).split("\n")[0]})`);
    }
  }
  for (const plan of plans) result.notes.push(`plan — ${plan}`);
  result.data = { bySize, ratio, unified: { before, after }, plans };
  for (const b of bad.slice(0, 10)) result.failures.push(`scale: ${b}`);
};
