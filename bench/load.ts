/**
 * Benchmark 7 — mixed traffic (issue 13 item 6): 50 concurrent clients for 60 s on the loopback,
 * each looping over a weighted mix of what the apps do: anonymous catalogue reads (a page, a
 * species), species and unified searches, cached identifications (one 1 MiB photo identified
 * once beforehand, then again and again) and signed-in writes (a new collection, each with an
 * Idempotency-Key). Reports requests/s overall and per kind, p50/p99 per kind, and the status
 * classes. Correctness (exit 1): no 5xx, every answer the status its kind expects, and the answer
 * itself right under load: the species asked for, the same match counts a quiet search gave, an
 * identification that is a cache hit on both providers with the warm-up's top suggestion and no
 * upstream call during the run, and a write that returns what was sent.
 */
import { benchImage, Budget, emulatorCalls, fmtMs, imageForm, type JsonResponse, registerUser, request, summarize, tokenFor } from "./lib";
import { row, verdict, type Benchmark } from "./types";

const CLIENTS = 50;
const DURATION_MS = 60_000;
const TIME_LIMIT_MS = 150_000;
const WRITERS = 10;
const QUERIES = ["monstera", "peace lily", "lavendar", "fern", "ficus", "rose", "snake plant", "orchid"];

type Kind = "read" | "search" | "identify" | "write";
/** Out of 20 requests: 8 reads, 6 searches, 3 cached identifications, 3 writes. */
const MIX: Kind[] = [...Array(8).fill("read"), ...Array(6).fill("search"), ...Array(3).fill("identify"), ...Array(3).fill("write")];

export const loadBench: Benchmark = async ({ stack, log }, result) => {
  const budget = new Budget("load", TIME_LIMIT_MS);
  const base = stack.baseUrl;

  // Setup: writers with bearer tokens, a species id, one photo identified once (a miss).
  const writers: string[] = [];
  for (let i = 0; i < WRITERS; i++) {
    const user = await registerUser(base, `load${i}`);
    writers.push(await tokenFor(base, user.username));
  }
  const page = await request<{ results?: { id: string }[] }>(`${base}/api/v1/plant-identification/species/?page_size=50`);
  const speciesIds = (page.body.results ?? []).map((s) => s.id);
  if (speciesIds.length === 0) {
    result.failures.push("load: the catalogue is empty (is the seed loaded?)");
    return;
  }
  const photo = await benchImage(`load-${Date.now()}`, 1024 * 1024);
  const identify = () => request(`${base}/api/v1/plant-identification/identify/`, { method: "POST", body: imageForm("image", photo) });
  const warm = await identify();
  if (warm.status !== 200) {
    result.failures.push(`load: warm-up identify answered ${warm.status}`);
    return;
  }
  const topName = (warm.body as IdentifyBody).scientific_name;
  // What each search finds on a quiet stack: under load it must find the same (counts do not
  // depend on ranking, so they cannot move while identification counters do).
  const quietCounts = new Map<string, string>();
  for (let n = 0; n < 2 * QUERIES.length; n++) {
    const res = await searchOnce(base, n);
    if (res.status !== 200) {
      result.failures.push(`load: quiet search ${searchKey(n)} answered ${res.status}`);
      return;
    }
    quietCounts.set(searchKey(n), searchCounts(res, n));
  }
  const callsBefore = stack.emulatorUrl ? await emulatorCalls(stack.emulatorUrl) : null;

  const samples: Record<Kind, number[]> = { read: [], search: [], identify: [], write: [] };
  const statuses: Record<string, number> = {};
  const bad: string[] = [];
  let seq = 0;
  let wrongAnswers = 0;
  const runTag = Date.now().toString(36);
  const writeName = (n: number) => `Load ${runTag} ${n}`;
  /** Why an answer with the expected status is still wrong, or null. */
  const wrongAnswer = (kind: Kind, n: number, res: JsonResponse): string | null => {
    const body = res.body as Record<string, unknown> | null;
    switch (kind) {
      case "read":
        if (n % 2 === 0) return Array.isArray(body?.results) && body.results.length > 0 ? null : "an empty catalogue page";
        return body?.id === speciesIds[n % speciesIds.length]
          ? null
          : `species ${String(body?.id)} instead of ${speciesIds[n % speciesIds.length]}`;
      case "search": {
        const counts = searchCounts(res, n);
        const quiet = quietCounts.get(searchKey(n));
        return counts === quiet ? null : `matches ${counts}, quiet ${quiet}`;
      }
      case "identify": {
        const b = body as IdentifyBody | null;
        if (b?.cached?.plant_id !== true || b.cached.plantnet !== true)
          return `not a cache hit on both providers: ${JSON.stringify(b?.cached)}`;
        return b.scientific_name === topName ? null : `top suggestion ${b.scientific_name}, warm-up ${topName}`;
      }
      case "write":
        return typeof body?.id === "string" && body.name === writeName(n) ? null : `answered ${JSON.stringify(body).slice(0, 160)}`;
    }
  };
  const expected: Record<Kind, number> = { read: 200, search: 200, identify: 200, write: 201 };

  const once = async (kind: Kind, n: number) => {
    switch (kind) {
      case "read":
        return n % 2 === 0
          ? request(`${base}/api/v1/plant-identification/species/?page=${(n % 5) + 1}&page_size=20`)
          : request(`${base}/api/v1/plant-identification/species/${speciesIds[n % speciesIds.length]}/`);
      case "search":
        return searchOnce(base, n);
      case "identify":
        return identify();
      case "write": {
        const token = writers[n % writers.length]!;
        return request(`${base}/api/v1/plant-identification/collections/`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": `load-${Date.now()}-${n}` },
          body: JSON.stringify({ name: writeName(n) }),
        });
      }
    }
  };

  log(`load: ${CLIENTS} clients for ${DURATION_MS / 1000} s`);
  const started = performance.now();
  const deadline = started + DURATION_MS;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      let i = client;
      while (performance.now() < deadline) {
        budget.check("mixed traffic");
        const n = seq++;
        const kind = MIX[i++ % MIX.length]!;
        try {
          const res = await once(kind, n);
          const cls = `${Math.floor(res.status / 100)}xx`;
          statuses[cls] = (statuses[cls] ?? 0) + 1;
          if (res.status !== expected[kind]) bad.push(`${kind}: ${res.status} ${JSON.stringify(res.body).slice(0, 160)}`);
          else {
            samples[kind].push(res.ms);
            const wrong = wrongAnswer(kind, n, res);
            if (wrong) {
              wrongAnswers++;
              bad.push(`${kind} #${n}: ${wrong}`);
            }
          }
        } catch (err) {
          statuses.error = (statuses.error ?? 0) + 1;
          bad.push(`${kind}: ${String(err).slice(0, 160)}`);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const callsAfter = stack.emulatorUrl ? await emulatorCalls(stack.emulatorUrl) : null;
  const upstream =
    callsBefore && callsAfter
      ? (callsAfter["plant-id"] ?? 0) - (callsBefore["plant-id"] ?? 0) + (callsAfter.plantnet ?? 0) - (callsBefore.plantnet ?? 0)
      : null;
  const total = Object.values(statuses).reduce((a, b) => a + b, 0);
  const fiveXx = statuses["5xx"] ?? 0;

  result.rows.push(
    row("clients / duration", `${CLIENTS} concurrent, ${seconds.toFixed(1)} s`),
    row("mix (of 20)", "8 catalogue reads, 6 searches, 3 cached 1 MiB identifications, 3 signed-in writes (Idempotency-Key)"),
    row("requests / s (all)", `${(total / seconds).toFixed(1)} (${total} requests)`, "report"),
    ...(Object.keys(samples) as Kind[]).map((kind) => {
      const s = summarize(samples[kind]);
      return row(`${kind}: req/s, p50 / p99`, `${(s.n / seconds).toFixed(1)}/s, ${fmtMs(s.p50)} / ${fmtMs(s.p99)}`);
    }),
    row(
      "status classes",
      Object.entries(statuses)
        .map(([k, v]) => `${k} ${v}`)
        .join(", "),
    ),
    row("5xx", String(fiveXx), "0", verdict(fiveXx === 0)),
    row("wrong answers (right status)", String(wrongAnswers), "0", verdict(wrongAnswers === 0)),
    row(
      "upstream provider calls during the run",
      upstream === null ? "n/a (external stack)" : String(upstream),
      "0",
      verdict(upstream === null || upstream === 0),
    ),
  );
  result.data = {
    clients: CLIENTS,
    seconds,
    statuses,
    wrongAnswers,
    upstreamCalls: upstream,
    perKind: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v)])),
  };
  if (bad.length > 0) result.failures.push(`load: ${bad.length} unexpected answer(s), e.g. ${bad.slice(0, 3).join("; ")}`);
  if (upstream) result.failures.push(`load: ${upstream} upstream provider call(s) while every identification should have been a cache hit`);
};

interface IdentifyBody {
  cached?: { plant_id?: boolean; plantnet?: boolean };
  scientific_name?: string;
}

/** Even n: species search; odd n: unified search; each over every query in turn. */
const queryOf = (n: number) => QUERIES[Math.floor(n / 2) % QUERIES.length]!;

function searchOnce(base: string, n: number) {
  const q = encodeURIComponent(queryOf(n));
  return n % 2 === 0
    ? request(`${base}/api/v1/plant-identification/search/plants/?q=${q}&limit=20`)
    : request(`${base}/api/v1/search/?q=${q}&limit=5`);
}

const searchKey = (n: number) => `${n % 2 === 0 ? "species" : "unified"}:${queryOf(n)}`;

/** The match counts of a search answer: `total` for species search, per-type `counts` for unified. */
function searchCounts(res: JsonResponse, n: number): string {
  const body = res.body as { total?: unknown; counts?: unknown } | null;
  return JSON.stringify(n % 2 === 0 ? body?.total : body?.counts);
}
