/**
 * Benchmark 6 — the blog's public reads (issue 9 "Performance"):
 * 1. A published post read that the edge cache answers, against `GET /api/v1/health/` in the same
 *    run (target: hit p50 ≤ 1.2× health p50), and the 304 revalidation.
 * 2. The listing at 100 and at 10 000 published posts (target: p99 at 10 000 ≤ 2× p99 at 100),
 *    read with `Cache-Control: no-cache` so every request runs its queries, for the newest-first
 *    page and a category, a tag and a search filter; the query plans are recorded.
 * Posts are generated in the stack's own D1 (`wrangler d1 execute --persist-to`), so part 2 needs
 * a stack this process started. Figures only; every answer must be 200/304 with the right shape.
 */
import { Budget, fmtMs, request, summarize } from "./lib";
import { d1 } from "./stack";
import { row, verdict, type Benchmark } from "./types";

const ROUNDS = 300;
const LIST_ROUNDS = 200;
const TIME_LIMIT_MS = 300_000;

/** SQL generating `count` published posts numbered from `from`, spread over 10 categories and 20 tags. */
function generatePosts(from: number, count: number): string {
  const to = from + count - 1;
  return `
INSERT OR IGNORE INTO blog_categories (id, slug, name, description)
  WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 9)
  SELECT 'bench-cat-' || i, 'bench-category-' || i, 'Bench category ' || i, '' FROM k;
INSERT INTO blog_posts (id, slug, title, introduction, content_blocks, status, reading_time, excerpt, search_text, first_published_at, last_published_at, view_count, revision)
  WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to})
  SELECT 'bench-post-' || i, 'bench-post-' || i, 'Bench post ' || i || ' about ' || CASE i % 4 WHEN 0 THEN 'ferns' WHEN 1 THEN 'cacti' WHEN 2 THEN 'orchids' ELSE 'roses' END,
         '<p>Generated.</p>', '[{"id":"b","type":"paragraph","value":"<p>Water when dry.</p>"}]', 'published', 1, 'Generated.',
         'Generated. Water when dry. Post ' || i, strftime('%Y-%m-%dT%H:%M:%fZ', '2025-01-01', '+' || i || ' minutes'),
         strftime('%Y-%m-%dT%H:%M:%fZ', '2025-01-01', '+' || i || ' minutes'), i % 97, 1
  FROM n;
INSERT INTO blog_post_categories (post_id, category_id)
  WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to})
  SELECT 'bench-post-' || i, 'bench-cat-' || (i % 10) FROM n;
INSERT INTO blog_post_tags (post_id, tag)
  WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to})
  SELECT 'bench-post-' || i, 'bench-tag-' || (i % 20) FROM n;
`;
}

const LIST_QUERIES = [
  ["newest first", "limit=20"],
  ["category", "category_slug=bench-category-3&limit=20"],
  ["tag", "tag=bench-tag-7&limit=20"],
  ["search", "search=orchids&limit=20"],
] as const;

export const blogBench: Benchmark = async ({ stack, log }, result) => {
  const budget = new Budget("blog", TIME_LIMIT_MS);
  const base = stack.baseUrl;
  const bad: string[] = [];

  // ---- 1. Cached read vs health
  const listing = await request<{ items?: { id: string }[] }>(`${base}/api/v2/blog-posts/?limit=1`);
  const postId = listing.body.items?.[0]?.id;
  if (listing.status !== 200 || !postId) {
    result.failures.push(`blog: no published post to read (${listing.status} ${JSON.stringify(listing.body).slice(0, 200)})`);
    return;
  }
  const detailUrl = `${base}/api/v2/blog-posts/${postId}/`;
  const warm = await fetch(detailUrl);
  const etag = warm.headers.get("ETag") ?? "";
  await warm.arrayBuffer();
  const healthMs: number[] = [];
  const hitMs: number[] = [];
  const notModifiedMs: number[] = [];
  let misses = 0;
  for (let i = 0; i < ROUNDS; i++) {
    budget.check(`read round ${i + 1}`);
    const h = await request(`${base}/api/v1/health/`);
    if (h.status === 200) healthMs.push(h.ms);
    else bad.push(`health: ${h.status}`);
    const started = performance.now();
    const hit = await fetch(detailUrl);
    await hit.arrayBuffer();
    if (hit.status === 200) hitMs.push(performance.now() - started);
    else bad.push(`detail: ${hit.status}`);
    if (hit.headers.get("X-Cache") !== "HIT") misses++;
    const t304 = performance.now();
    const revalidated = await fetch(detailUrl, { headers: { "If-None-Match": hit.headers.get("ETag") ?? etag } });
    await revalidated.arrayBuffer();
    if (revalidated.status === 304) notModifiedMs.push(performance.now() - t304);
    else bad.push(`304 expected, got ${revalidated.status}`);
  }
  const hs = summarize(healthMs);
  const ht = summarize(hitMs);
  const nm = summarize(notModifiedMs);
  const ratio = ht.p50 / hs.p50;
  log(`blog: hit p50 ${fmtMs(ht.p50)} vs health ${fmtMs(hs.p50)} (${ratio.toFixed(2)}×), 304 p50 ${fmtMs(nm.p50)}`);
  result.rows.push(
    row(`health p50 / p99 (n=${hs.n})`, `${fmtMs(hs.p50)} / ${fmtMs(hs.p99)}`),
    row(`published post, cache hit p50 / p99 (n=${ht.n}; ${misses} not from the cache)`, `${fmtMs(ht.p50)} / ${fmtMs(ht.p99)}`),
    row("hit p50 ÷ health p50", `${ratio.toFixed(2)}×`, "≤ 1.2×", verdict(ratio <= 1.2)),
    row(`304 revalidation p50 / p99 (n=${nm.n})`, `${fmtMs(nm.p50)} / ${fmtMs(nm.p99)}`),
  );

  // ---- 2. The listing at 100 and 10 000 posts
  if (!stack.stateDir) {
    result.notes.push("blog: the listing scale part needs a stack this run started (BENCH_URL given): skipped.");
    return;
  }
  const measureLists = async (label: string) => {
    const out: Record<string, ReturnType<typeof summarize>> = {};
    for (const [name, query] of LIST_QUERIES) {
      const ms: number[] = [];
      for (let i = 0; i < LIST_ROUNDS; i++) {
        budget.check(`${label} ${name} ${i + 1}`);
        const r = await request<{ items?: unknown[] }>(`${base}/api/v2/blog-posts/?${query}`, { headers: { "Cache-Control": "no-cache" } });
        if (r.status === 200 && Array.isArray(r.body.items)) ms.push(r.ms);
        else bad.push(`${label} ${name}: ${r.status}`);
      }
      out[name] = summarize(ms);
    }
    return out;
  };
  log("blog: generating 100 posts");
  d1(stack.stateDir, generatePosts(1, 100));
  const at100 = await measureLists("100 posts");
  log("blog: generating 9 900 more posts");
  d1(stack.stateDir, generatePosts(101, 9_900));
  const at10k = await measureLists("10 000 posts");
  for (const [name] of LIST_QUERIES) {
    const a = at100[name]!;
    const b = at10k[name]!;
    const r = b.p99 / a.p99;
    result.rows.push(
      row(`listing "${name}" p50 / p99 at 100 posts`, `${fmtMs(a.p50)} / ${fmtMs(a.p99)}`),
      row(
        `listing "${name}" p50 / p99 at 10 000 posts`,
        `${fmtMs(b.p50)} / ${fmtMs(b.p99)}`,
        `p99 ≤ 2× (${fmtMs(2 * a.p99)})`,
        verdict(r <= 2),
      ),
    );
  }
  // The plans of the listing's queries at 10 000 posts.
  const plans: string[] = [];
  for (const [name, where] of [
    ["newest first", "p.status = 'published' ORDER BY p.first_published_at DESC, p.id DESC LIMIT 20"],
    [
      "category",
      "p.status = 'published' AND p.id IN (SELECT pc.post_id FROM blog_post_categories pc WHERE pc.category_id = (SELECT c.id FROM blog_categories c WHERE c.slug = 'bench-category-3')) ORDER BY p.first_published_at DESC, p.id DESC LIMIT 20",
    ],
    [
      "tag",
      "p.status = 'published' AND p.id IN (SELECT t.post_id FROM blog_post_tags t WHERE t.tag = 'bench-tag-7') ORDER BY p.first_published_at DESC, p.id DESC LIMIT 20",
    ],
  ] as const) {
    const out = JSON.parse(d1(stack.stateDir, `EXPLAIN QUERY PLAN SELECT p.id FROM blog_posts p WHERE ${where};`, true)) as {
      results: { detail: string }[];
    }[];
    plans.push(`${name}: ${out[0]!.results.map((r) => r.detail).join(" | ")}`);
  }
  result.data = { health: hs, hit: ht, notModified: nm, at100, at10k, plans };
  for (const plan of plans) result.notes.push(`plan — ${plan}`);
  for (const b of bad.slice(0, 10)) result.failures.push(`blog: ${b}`);
};
