/**
 * Unified search (API.md §5 "Search"): species, blog posts, forum topics and confirmed diseases, each ranked
 * on its own, plus name/title completions. Reuses each area's own query: `searchSpecies` (FTS5
 * trigram candidates ranked by species-ranking.ts, typo-tolerant, with a relevance floor) and
 * `confirmedDiseasesQuery` (the `disease-database/` rows).
 *
 * Rules the spec leaves open, decided here:
 * - `score` is in 0..1 and comparable only within one type: 1 exact name/title, 0.8 prefix (for
 *   a species also: a name holds the query as whole words), 0.7 a word of a species name starts
 *   with the query (or every query word starts one), 0.6 contains it, 0.4 only the body or
 *   description does, 0.3 a species found only by typo tolerance. Ties keep each area's own
 *   order (edits and popularity, latest activity, confirmations).
 * - Forum: a hit is a topic, found by its title or by a non-deleted post's visible text (tags
 *   are stripped in SQL; entities are matched in their stored, escaped form). Deleted posts
 *   never match and never feed a snippet. All categories are public, so all topics are visible.
 *   A query whose words all have fewer than three characters matches every title, but only the
 *   latest SEARCH_SHORT_WORD_POSTS posts' text (5 000 by default): without a trigram each body
 *   must be read, and that cost must not grow with the forum.
 * - Blog: only published posts, ever — the `blog_fts` index holds nothing else (migration 0014's
 *   triggers keep it so on publish, edit, unpublish and delete). Title, introduction and block
 *   text are searched; queries of 3+ characters use the FTS5 trigram index as one quoted phrase,
 *   shorter ones a substring test over published rows. Newest first within a score.
 * - Diseases have no id of their own (an entry is a name): theirs is a stable UUID of the name.
 * - Matching is literal (`%`, `_` are plain characters) and case-insensitive for ASCII only
 *   (SQLite's lower()), like the rest of the API. It uses instr(), not LIKE: D1 refuses LIKE
 *   patterns longer than 50 bytes, and a query may be 100 characters.
 */
import { and, asc, count, desc, eq, type SQL, sql } from "drizzle-orm";
import { database, runBatch } from "../db/client";
import { blogPosts, forumTopics, species, speciesCommonNames } from "../db/schema";
import { foldedLower, ftsPhrase, searchNeedle, startsWith } from "../db/text-match";
import type { Bindings } from "../env";
import { getConfig } from "../config";
import { stableUuid } from "../lib/ids";
import { EMITTED_MARKUP, escapeHtml, truncateText, visibleText } from "../lib/sanitise";
import { confirmedDiseaseEntries, type DiseaseType } from "./diseases";
import { searchSpecies, withoutControlCharacters } from "./species";

export const SEARCH_TYPES = ["species", "blog", "forum", "diseases"] as const;
export type SearchType = (typeof SEARCH_TYPES)[number];

const SNIPPET_CHARS = 160;
export const MAX_SUGGESTIONS = 10;

interface HitBase {
  id: string;
  title: string;
  snippet: string;
  url: string;
  score: number;
}
export interface SpeciesHit extends HitBase {
  type: "species";
  common_names: string[];
  family: string;
}
export interface ForumHit extends HitBase {
  type: "forum";
  category: string;
  post_id: string | null;
  last_activity_at: string;
}
export interface BlogHit extends HitBase {
  type: "blog";
  slug: string;
  publish_date: string;
}
export interface DiseaseHit extends HitBase {
  type: "diseases";
  disease_type: DiseaseType;
  confirmed_diagnoses: number;
}
export interface Group<T> {
  hits: T[];
  total: number;
}

/** A window of `text` around the first occurrence of `q` (case-insensitive), else its start. */
export function snippetAround(text: string, q: string, max = SNIPPET_CHARS): string {
  const at = text.toLowerCase().indexOf(q.toLowerCase());
  if (at <= max / 3) return truncateText(text, max);
  let start = Math.max(0, at - Math.floor(max / 3));
  const space = text.indexOf(" ", start);
  if (space !== -1 && space < at) start = space + 1;
  return `…${truncateText(text.slice(start), max - 1)}`;
}

/** Species in searchSpecies' order (match quality, then popularity), scored by match quality. */
export async function searchSpeciesGroup(env: Bindings, q: string, limit: number): Promise<Group<SpeciesHit>> {
  const { rows, scores, total } = await searchSpecies(env, q, limit);
  const hits = rows.map((row, i): SpeciesHit => {
    const commonNames = row.commonNames;
    const about = [commonNames.slice(0, 3).join(", "), row.family].filter(Boolean).join(" · ");
    return {
      type: "species",
      id: row.id,
      title: row.scientificName,
      snippet: truncateText(about, SNIPPET_CHARS),
      url: `/api/v1/plant-identification/species/${row.id}/`,
      score: scores[i]!,
      common_names: commonNames,
      family: row.family,
    };
  });
  return { hits, total };
}

/**
 * A post body as visible text, lower-cased (SQL): the sanitiser's tags become spaces and runs of
 * up to 8 spaces collapse, as visibleText does. Entities stay escaped; the query is escaped to match.
 */
const STRIPPED_BODY = (() => {
  // Closing tags first become opening ones, which keeps the expression within SQLite's depth limit.
  let expr = EMITTED_MARKUP.filter((markup) => !markup.startsWith("</")).reduce((inner, markup) => {
    if (markup.includes("'")) throw new Error("markup with a quote cannot be inlined");
    return `replace(${inner}, '${markup}', ' ')`;
  }, "replace(p.body, '</', '<')");
  for (let i = 0; i < 3; i++) expr = `replace(${expr}, '  ', ' ')`;
  return `lower(${expr})`;
})();
/**
 * Whether a topic matches: its title contains `ql`, or one of its live posts does — `stored` is
 * the query as stored text (HTML-escaped), `longestWord` its longest word, which the raw body of
 * every match contains too, so the costly tag stripping only runs on candidates. A word of three
 * or more characters finds those candidates through the trigram index (migration 0027), which
 * holds every substring match of `instr(lower(body), word)` and more (it folds all cases, not
 * only ASCII); the exact test then decides. A shorter word has no trigram, so each body must be
 * tested: only the latest `shortWordPosts` posts are (a rowid range, so the cost has a bound
 * however large the forum grows; titles are still searched in full).
 */
function postMatches(stored: string, longestWord: string, shortWordPosts: number): SQL {
  const candidates =
    [...longestWord].length >= 3
      ? sql`p.rowid IN (SELECT rowid FROM forum_posts_fts WHERE forum_posts_fts MATCH ${ftsPhrase(longestWord)})`
      : sql`p.rowid > (SELECT coalesce(max(rowid), 0) FROM forum_posts) - ${shortWordPosts} AND instr(lower(p.body), ${longestWord}) > 0`;
  return sql`p.is_deleted = 0 AND ${candidates} AND instr(${sql.raw(STRIPPED_BODY)}, ${stored}) > 0`;
}
function topicMatches(title: SQL, ql: string, stored: string, longestWord: string, shortWordPosts: number): SQL {
  return sql`(instr(${title}, ${ql}) > 0 OR t.id IN (SELECT p.topic_id FROM forum_posts p WHERE ${postMatches(stored, longestWord, shortWordPosts)}))`;
}

interface ForumRow {
  id: string;
  title: string;
  category_slug: string;
  last_activity_at: string;
  score: number;
  /** Every matching topic, not only the page's. */
  total: number;
  post_id: string | null;
  post_body: string | null;
  first_body: string | null;
}

export async function searchForumGroup(env: Bindings, q: string, limit: number): Promise<Group<ForumHit>> {
  const ql = searchNeedle(q).replace(/\s+/g, " ");
  const title = foldedLower(sql`t.title`, ql);
  const stored = escapeHtml(ql);
  const longestWord = stored.split(" ").reduce((a, b) => (b.length > a.length ? b : a), "");
  const shortWordPosts = getConfig(env).SEARCH_SHORT_WORD_POSTS;
  const matches = topicMatches(title, ql, stored, longestWord, shortWordPosts);
  // Text search over sanitised HTML: SQL is the point (tag stripping and substring tests in one
  // pass). One statement: the window count is every match, taken before the page's LIMIT, so the
  // costly test runs once per topic rather than once for the count and once for the page.
  const [page] = (await runBatch(database(env), [
    sql`SELECT h.*, mp.id AS post_id, mp.body AS post_body, fp.body AS first_body
          FROM (SELECT t.id, t.title, c.slug AS category_slug, t.last_activity_at,
                       CASE WHEN ${title} = ${ql} THEN 1.0 WHEN instr(${title}, ${ql}) = 1 THEN 0.8
                            WHEN instr(${title}, ${ql}) > 0 THEN 0.6 ELSE 0.4 END AS score,
                       count(*) OVER () AS total
                  FROM forum_topics t JOIN forum_categories c ON c.id = t.category_id
                 WHERE ${matches}
                 ORDER BY score DESC, t.last_activity_at DESC, t.id DESC
                 LIMIT ${limit}) h
          LEFT JOIN forum_posts mp ON mp.id = (
               SELECT p.id FROM forum_posts p WHERE p.topic_id = h.id AND ${postMatches(stored, longestWord, shortWordPosts)}
                ORDER BY p.is_first DESC, p.created_at, p.id LIMIT 1)
          LEFT JOIN forum_posts fp ON fp.topic_id = h.id AND fp.is_first = 1 AND fp.is_deleted = 0
         ORDER BY h.score DESC, h.last_activity_at DESC, h.id DESC`,
  ])) as { results: unknown[] }[];
  const rows = page!.results as ForumRow[];
  return {
    total: rows[0]?.total ?? 0,
    hits: rows.map((row) => ({
      type: "forum",
      id: row.id,
      title: row.title,
      snippet:
        row.post_body !== null
          ? snippetAround(visibleText(row.post_body), q)
          : row.first_body !== null
            ? truncateText(visibleText(row.first_body), SNIPPET_CHARS)
            : "",
      url: `/api/v1/forum/topics/${row.id}/`,
      score: row.score,
      category: row.category_slug,
      post_id: row.post_id,
      last_activity_at: row.last_activity_at,
    })),
  };
}

interface BlogRow {
  id: string;
  slug: string;
  title: string;
  search_text: string;
  first_published_at: string;
  score: number;
}

export async function searchBlogGroup(env: Bindings, q: string, limit: number): Promise<Group<BlogHit>> {
  const ql = q.toLowerCase().replace(/\s+/g, " ");
  // FTS5 (trigram) is the point: it finds substrings of 3+ characters without a scan, and holds
  // published posts only; shorter queries cannot use trigrams and test published rows directly.
  const matches =
    [...ql].length >= 3
      ? sql`p.rowid IN (SELECT rowid FROM blog_fts WHERE blog_fts MATCH ${ftsPhrase(ql)})`
      : sql`p.status = 'published' AND (instr(lower(p.title), ${ql}) > 0 OR instr(lower(p.search_text), ${ql}) > 0)`;
  const [counted, page] = (await runBatch(database(env), [
    sql`SELECT count(*) AS n FROM blog_posts p WHERE ${matches} AND p.status = 'published'`,
    sql`SELECT p.id, p.slug, p.title, p.search_text, p.first_published_at,
               CASE WHEN lower(p.title) = ${ql} THEN 1.0 WHEN instr(lower(p.title), ${ql}) = 1 THEN 0.8
                    WHEN instr(lower(p.title), ${ql}) > 0 THEN 0.6 ELSE 0.4 END AS score
          FROM blog_posts p
         WHERE ${matches} AND p.status = 'published'
         ORDER BY score DESC, p.first_published_at DESC, p.id DESC
         LIMIT ${limit}`,
  ])) as { results: unknown[] }[];
  const rows = page!.results as BlogRow[];
  return {
    total: (counted!.results[0] as { n: number }).n,
    hits: rows.map((row) => ({
      type: "blog",
      id: row.id,
      title: row.title,
      snippet: snippetAround(row.search_text.replace(/\s+/g, " "), q),
      url: `/api/v2/blog-posts/${row.id}/`,
      score: row.score,
      slug: row.slug,
      publish_date: row.first_published_at.slice(0, 10),
    })),
  };
}

export async function searchDiseasesGroup(env: Bindings, q: string, limit: number): Promise<Group<DiseaseHit>> {
  const ql = q.toLowerCase();
  const quoted = JSON.stringify(ql); // common_names is a JSON array of strings
  const db = database(env);
  const ranked = confirmedDiseaseEntries(db, { search: q });
  const name = sql`lower(${ranked.name})`;
  const names = sql`lower(${ranked.commonNames})`;
  const score = sql<number>`CASE WHEN ${name} = ${ql} OR instr(${names}, ${quoted}) > 0 THEN 1.0
                      WHEN instr(${name}, ${ql}) = 1 OR instr(${names}, ${quoted.slice(0, -1)}) > 0 THEN 0.8
                      WHEN instr(${name}, ${ql}) > 0 OR instr(${names}, ${ql}) > 0 THEN 0.6 ELSE 0.4 END`;
  const [counted, rows] = await db.batch([
    db.select({ n: count() }).from(ranked).where(eq(ranked.latest, 1)),
    db
      .select({
        name: ranked.name,
        commonNames: ranked.commonNames,
        description: ranked.description,
        diseaseType: ranked.diseaseType,
        confirmations: ranked.confirmations,
        score,
      })
      .from(ranked)
      .where(eq(ranked.latest, 1))
      .orderBy(desc(score), desc(ranked.confirmations), asc(name))
      .limit(limit),
  ]);
  const hits = await Promise.all(
    rows.map(async (row): Promise<DiseaseHit> => {
      const commonNames = row.commonNames;
      const text = visibleText(row.description) || commonNames.join(", ");
      return {
        type: "diseases",
        id: await stableUuid(`disease:${row.name.toLowerCase()}`),
        title: row.name,
        snippet: snippetAround(text, q),
        url: `/api/v1/plant-identification/disease-database/?search=${encodeURIComponent(row.name)}`,
        score: row.score,
        disease_type: row.diseaseType,
        confirmed_diagnoses: row.confirmations,
      };
    }),
  );
  return { hits, total: counted[0]?.n ?? 0 };
}

export interface SearchResult {
  species?: Group<SpeciesHit>;
  blog?: Group<BlogHit>;
  forum?: Group<ForumHit>;
  diseases?: Group<DiseaseHit>;
}

/** The requested groups, their queries run concurrently. */
export async function unifiedSearch(env: Bindings, query: string, types: SearchType[], limit: number): Promise<SearchResult> {
  const q = withoutControlCharacters(query); // the route refuses them; never let one reach SQL anyway
  const run = { species: searchSpeciesGroup, blog: searchBlogGroup, forum: searchForumGroup, diseases: searchDiseasesGroup } as const;
  const groups = await Promise.all(types.map(async (type) => [type, await run[type](env, q, limit)] as const));
  return Object.fromEntries(groups) as SearchResult;
}

// ---------------------------------------------------------------------------------------------
// Suggestions

export interface Suggestion {
  text: string;
  type: "species" | "blog" | "forum";
}

/**
 * Up to MAX_SUGGESTIONS names and titles that start with `q` (case-insensitive): species'
 * scientific names, their common names (most identified species first), published blog post titles
 * (newest first) and forum topic titles (most recently active first), taken in turn so one kind cannot crowd out the others, without
 * duplicates (case-insensitive).
 */
export async function searchSuggestions(env: Bindings, q: string): Promise<Suggestion[]> {
  const ql = withoutControlCharacters(q).toLowerCase();
  const db = database(env);
  const sp = species;
  const names = speciesCommonNames;
  const t = forumTopics;
  const b = blogPosts;
  // Each "starts with" is a range over an index of the lower-cased name or title (migration 0026).
  const [scientific, common, posts, topics] = await db.batch([
    db
      .select({ text: sp.scientificName })
      .from(sp)
      .where(startsWith(sql`lower(${sp.scientificName})`, ql))
      .orderBy(desc(sp.identificationCount), asc(sp.scientificName))
      .limit(MAX_SUGGESTIONS),
    db
      .select({ text: names.name })
      .from(names)
      .innerJoin(sp, eq(sp.id, names.speciesId))
      .where(startsWith(names.nameLower, ql))
      .orderBy(desc(sp.identificationCount), asc(names.name))
      .limit(MAX_SUGGESTIONS),
    db
      .select({ text: b.title })
      .from(b)
      .where(and(eq(b.status, "published"), startsWith(sql`lower(${b.title})`, ql)))
      .orderBy(desc(b.firstPublishedAt), desc(b.id))
      .limit(MAX_SUGGESTIONS),
    db
      .select({ text: t.title })
      .from(t)
      .where(startsWith(sql`lower(${t.title})`, ql))
      .orderBy(desc(t.lastActivityAt), desc(t.id))
      .limit(MAX_SUGGESTIONS),
  ]);
  const lists: Suggestion[][] = [
    scientific.map((r) => ({ text: r.text, type: "species" as const })),
    common.map((r) => ({ text: r.text, type: "species" as const })),
    posts.map((r) => ({ text: r.text, type: "blog" as const })),
    topics.map((r) => ({ text: r.text, type: "forum" as const })),
  ];
  const out: Suggestion[] = [];
  const seen = new Set<string>();
  for (let i = 0; out.length < MAX_SUGGESTIONS && lists.some((l) => i < l.length); i++) {
    for (const list of lists) {
      const s = list[i];
      if (!s || out.length >= MAX_SUGGESTIONS || seen.has(s.text.toLowerCase())) continue;
      seen.add(s.text.toLowerCase());
      out.push(s);
    }
  }
  return out;
}
