/**
 * Benchmark 5 — search latency over the seeded catalogue. A fixed mix of what gardeners type
 * (exact names, prefixes, typos, scientific names, multi-word names, words that name no plant,
 * two-letter prefixes), sent round-robin, one in flight: N × `GET plant-identification/search/plants/`
 * (limit 20) and N × `GET search/?types=species` (limit 5), interleaved with N `GET /health/` so
 * all three see the same machine state. Figures only; every answer must be 200 with a list.
 */
import { Budget, fmtMs, request, summarize } from "./lib";
import { row, type Benchmark } from "./types";

const N = 300;
const TIME_LIMIT_MS = 180_000;

export const SEARCH_BENCH_QUERIES = [
  "monstera",
  "peace lilly",
  "mildew",
  "snake plant",
  "lavendar",
  "Ficus lyrata",
  "fiddle leaf fig",
  "philo",
  "tomatoe",
  "rose",
  "ro",
  "swiss cheese plant",
  "hydrangia",
  "spider plant",
  "keyboard",
] as const;

export const searchBench: Benchmark = async ({ stack, log }, result) => {
  const budget = new Budget("search", TIME_LIMIT_MS);
  const base = stack.baseUrl;
  const species = (q: string) =>
    request<{ results?: unknown[] }>(`${base}/api/v1/plant-identification/search/plants/?q=${encodeURIComponent(q)}&limit=20`);
  const unified = (q: string) =>
    request<{ results?: { species?: unknown[] } }>(`${base}/api/v1/search/?q=${encodeURIComponent(q)}&types=species&limit=5`);
  const health = () => request(`${base}/api/v1/health/`);

  for (const q of SEARCH_BENCH_QUERIES) {
    await species(q);
    await unified(q);
  }
  const healthMs: number[] = [];
  const speciesMs: number[] = [];
  const unifiedMs: number[] = [];
  const bad: string[] = [];
  for (let i = 0; i < N; i++) {
    budget.check(`round ${i + 1} of ${N}`);
    const q = SEARCH_BENCH_QUERIES[i % SEARCH_BENCH_QUERIES.length]!;
    const h = await health();
    if (h.status === 200) healthMs.push(h.ms);
    else bad.push(`health #${i}: ${h.status}`);
    const s = await species(q);
    if (s.status === 200 && Array.isArray(s.body.results)) speciesMs.push(s.ms);
    else bad.push(`search/plants ${JSON.stringify(q)}: ${s.status} ${JSON.stringify(s.body).slice(0, 200)}`);
    const u = await unified(q);
    if (u.status === 200 && Array.isArray(u.body.results?.species)) unifiedMs.push(u.ms);
    else bad.push(`search ${JSON.stringify(q)}: ${u.status} ${JSON.stringify(u.body).slice(0, 200)}`);
  }
  const hs = summarize(healthMs);
  const ss = summarize(speciesMs);
  const us = summarize(unifiedMs);
  log(`search: species p50 ${fmtMs(ss.p50)}, unified p50 ${fmtMs(us.p50)}, health p50 ${fmtMs(hs.p50)}`);
  result.rows.push(
    row("queries", `${SEARCH_BENCH_QUERIES.length} gardener queries, round-robin, 1 in flight`),
    row(`health p50 / p99 (n=${hs.n})`, `${fmtMs(hs.p50)} / ${fmtMs(hs.p99)}`),
    row(`species search/plants p50 / p99 (n=${ss.n})`, `${fmtMs(ss.p50)} / ${fmtMs(ss.p99)}`),
    row(`unified search?types=species p50 / p99 (n=${us.n})`, `${fmtMs(us.p50)} / ${fmtMs(us.p99)}`),
  );
  result.data = { health: hs, species: ss, unified: us };
  for (const b of bad.slice(0, 10)) result.failures.push(`search: ${b}`);
};
