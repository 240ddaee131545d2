/**
 * Benchmark 3 — queue throughput. Emulators at zero latency; one fresh user (bearer token from
 * `POST /auth/token/`) submits N async requests with distinct images. One `/ws/` socket of the
 * same user records each `completed` message (exact completion times and results_count), and
 * the request list is read until every one is final (identified | needs_help | failed): every
 * 2 s while jobs run, every 250 ms once every `completed` has arrived.
 * Correctness: N distinct ids, all listed exactly once, all final, one `completed` each, no
 * duplicate scientific_name in any request's results, results count = `completed.results_count`.
 * Where the time goes: each submit's Server-Timing stages, and each job's `stages_ms` from the
 * stack log when it was started with BENCH_LOG_LEVEL=info.
 */
import { readFileSync } from "node:fs";
import {
  BenchFailure,
  benchImage,
  bearer,
  Budget,
  closeAll,
  emulatorControl,
  fmtMs,
  openSocket,
  pool,
  registerUser,
  request,
  sleep,
  submitRequest,
  summarize,
  type Summary,
  tokenFor,
  treeCpuMs,
  type WsMessage,
} from "./lib";
import { row, verdict, type Benchmark } from "./types";

const N = 200;
const SUBMIT_CONCURRENCY = 4;
const IMAGE_BYTES = 64 * 1024;
/**
 * How often the list is read while jobs run. The socket tells when each request completes, as it
 * tells a real client; the list is read at a slow cadence meanwhile (a fallback should the socket
 * miss something), and quickly once every `completed` has arrived, to check what it says. Reading
 * two pages of 100 requests every 250 ms, as this benchmark first did, competed with the jobs for
 * the Worker's one thread.
 */
const POLL_INTERVAL_MS = 2_000;
const POLL_INTERVAL_ALL_COMPLETED_MS = 250;
const TIME_LIMIT_MS = 300_000;
const FINAL = new Set(["identified", "needs_help", "failed"]);

interface Page {
  count: number;
  next: string | null;
  results: { request_id: string; status: string }[];
}

interface ResultsBody {
  status: string;
  results: { scientific_name: string; rank: number }[];
}

export const queueBench: Benchmark = async ({ stack, log }, result) => {
  const budget = new Budget("queue", TIME_LIMIT_MS);
  const base = stack.baseUrl;
  if (stack.emulatorUrl) {
    await emulatorControl(stack.emulatorUrl, "plant-id", { latencyMs: 0 });
    await emulatorControl(stack.emulatorUrl, "plantnet", { latencyMs: 0 });
  }
  const user = await registerUser(base, "queue");
  const token = await tokenFor(base, user.username);
  const monitor = await openSocket(base, token, user.username, 0);
  const completed = new Map<string, WsMessage[]>();
  monitor.onMessage = (m) => {
    if (m.type === "completed" && m.request_id) {
      const list = completed.get(m.request_id) ?? [];
      list.push(m);
      completed.set(m.request_id, list);
    }
  };
  const images = await Promise.all(Array.from({ length: N }, (_, i) => benchImage(`queue-${i}`, IMAGE_BYTES)));
  log(`queue: submitting ${N} requests (${SUBMIT_CONCURRENCY} in flight)`);
  const logStart = stack.logFile ? readFileSync(stack.logFile).length : 0;

  const cpu0 = treeCpuMs(stack.pid);
  const t0 = performance.now();
  const submitted = await pool(N, SUBMIT_CONCURRENCY, budget, async (i) => ({
    ...(await submitRequest(base, token, images[i]!)),
    acceptedAt: performance.now(),
  }));
  const tSubmitted = performance.now();
  const ids = submitted.map((s) => s.id);
  const distinct = new Set(ids);
  if (distinct.size !== N) result.failures.push(`queue: ${N} submissions returned only ${distinct.size} distinct request ids`);

  // Poll the list until every request is final.
  let statuses = new Map<string, string>();
  let listed: string[] = [];
  let listedCount = 0;
  let tAllFinalPolled = NaN;
  let polls = 0;
  let lastPoll = Number.NEGATIVE_INFINITY;
  while (!budget.expired) {
    const interval = ids.every((id) => completed.has(id)) ? POLL_INTERVAL_ALL_COMPLETED_MS : POLL_INTERVAL_MS;
    if (performance.now() - lastPoll < interval) {
      await sleep(50);
      continue;
    }
    lastPoll = performance.now();
    polls++;
    const seen: string[] = [];
    const now = new Map<string, string>();
    for (let page = 1; page <= Math.ceil(N / 100) + 1; page++) {
      const res = await request<Page>(`${base}/api/v1/plant-identification/requests/?page_size=100&page=${page}`, {
        headers: bearer(token),
      });
      if (res.status !== 200)
        throw new BenchFailure(`queue: list page ${page} answered ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      listedCount = res.body.count;
      for (const r of res.body.results) {
        seen.push(r.request_id);
        now.set(r.request_id, r.status);
      }
      if (!res.body.next) break;
    }
    statuses = now;
    listed = seen;
    const finals = ids.filter((id) => FINAL.has(now.get(id) ?? "")).length;
    if (finals === N) {
      tAllFinalPolled = performance.now();
      break;
    }
    if (polls % 5 === 0) log(`queue: ${finals}/${N} final after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  // Give the socket a moment for the last completed messages (they are sent after the status is written).
  const wsDeadline = performance.now() + 5_000;
  while (performance.now() < wsDeadline && ids.some((id) => !completed.has(id))) await sleep(50);
  // The stack's CPU over the queue phase (submits, jobs and this benchmark's polling), per request.
  const cpu1 = treeCpuMs(stack.pid);
  const cpuPerRequest = cpu0 && cpu1 ? { workerd: (cpu1.workerd - cpu0.workerd) / N, other: (cpu1.other - cpu0.other) / N } : null;

  const notFinal = ids.filter((id) => !FINAL.has(statuses.get(id) ?? ""));
  const missingFromList = ids.filter((id) => !statuses.has(id));
  const listedTwice = listed.length - new Set(listed).size;
  const byStatus: Record<string, number> = {};
  for (const id of ids) byStatus[statuses.get(id) ?? "missing"] = (byStatus[statuses.get(id) ?? "missing"] ?? 0) + 1;

  // Results of every request: no duplicates, count consistent with the completed message.
  const dupResults: string[] = [];
  const countMismatch: string[] = [];
  const statusMismatch: string[] = [];
  let resultsTotal = 0;
  await pool(N, 4, budget, async (i) => {
    const id = ids[i]!;
    const res = await request<ResultsBody>(`${base}/api/v1/plant-identification/requests/${id}/results/`, { headers: bearer(token) });
    if (res.status !== 200) {
      dupResults.push(`${id}: results answered ${res.status}`);
      return;
    }
    const names = res.body.results.map((r) => r.scientific_name.trim().toLowerCase());
    resultsTotal += names.length;
    if (new Set(names).size !== names.length) dupResults.push(`${id}: ${names.length} results, ${new Set(names).size} distinct names`);
    const ranks = res.body.results.map((r) => r.rank);
    if (new Set(ranks).size !== ranks.length) dupResults.push(`${id}: duplicate ranks ${JSON.stringify(ranks)}`);
    const done = completed.get(id)?.[0];
    if (done && done.results_count !== names.length)
      countMismatch.push(`${id}: completed.results_count ${done.results_count}, results/ has ${names.length}`);
    if (done && done.status !== res.body.status) statusMismatch.push(`${id}: completed.status ${done.status}, request ${res.body.status}`);
  });

  const noCompleted = ids.filter((id) => !completed.has(id));
  const twiceCompleted = ids.filter((id) => (completed.get(id)?.length ?? 0) > 1);
  const completionTimes = ids.map((id) => completed.get(id)?.[0]?.at).filter((v): v is number => v !== undefined);
  const tLastCompletedWs = completionTimes.length === N ? Math.max(...completionTimes) : NaN;
  const tEnd = Number.isFinite(tLastCompletedWs) ? tLastCompletedWs : tAllFinalPolled;
  const e2eS = (tEnd - t0) / 1000;
  const submitS = (tSubmitted - t0) / 1000;
  const submitMs = summarize(submitted.map((s) => s.ms));
  // Per request: from its 202 to its `completed` message on the socket.
  const latency = summarize(submitted.map((s) => (completed.get(s.id)?.[0]?.at ?? NaN) - s.acceptedAt).filter(Number.isFinite));
  const failed = byStatus.failed ?? 0;
  const closing = await closeAll([monitor]);
  const submitStages = stageSummaries(submitted.map((s) => s.stages));
  const jobStages = stageSummaries(stack.logFile ? jobStageLines(stack.logFile, logStart, new Set(ids)) : []);

  log(`queue: ${N} final in ${e2eS.toFixed(1)} s (${(N / e2eS).toFixed(1)} req/s); ${JSON.stringify(byStatus)}`);
  result.rows.push(
    row("requests / image", `${N}, one ${IMAGE_BYTES} B PNG each, ${SUBMIT_CONCURRENCY} submits in flight`),
    row(
      "submit (202) p50 / p99",
      `${fmtMs(submitMs.p50)} / ${fmtMs(submitMs.p99)}; all ${N} accepted in ${submitS.toFixed(1)} s (${(N / submitS).toFixed(1)}/s)`,
    ),
    row(
      "throughput, first submit → last final",
      Number.isFinite(e2eS) ? `${(N / e2eS).toFixed(2)} req/s (${e2eS.toFixed(1)} s)` : "n/a",
      "report",
    ),
    row("per request, 202 → completed p50 / p99", `${fmtMs(latency.p50)} / ${fmtMs(latency.p99)}`),
    row(
      "stack CPU per request (workerd / emulators + wrangler)",
      cpuPerRequest ? `${fmtMs(cpuPerRequest.workerd)} / ${fmtMs(cpuPerRequest.other)}` : "not measured (BENCH_URL, or not Linux)",
    ),
    row("submit stages inside the Worker, p50 (Server-Timing)", stageText(submitStages)),
    row(
      "job stages, p50 (stack log; BENCH_LOG_LEVEL=info)",
      Object.keys(jobStages).length > 0 ? `${stageText(jobStages)} (${jobStages.total?.n ?? 0} jobs)` : "not logged",
    ),
    row(
      "final statuses",
      Object.entries(byStatus)
        .map(([k, v]) => `${k} ${v}`)
        .join(", "),
    ),
    row("failed", String(failed), "report", "info"),
    row(
      "lost (not listed / not final / no completed msg)",
      `${missingFromList.length} / ${notFinal.length} / ${noCompleted.length}`,
      "0 / 0 / 0",
      verdict(missingFromList.length + notFinal.length + noCompleted.length === 0),
    ),
    row(
      "duplicated (ids / list rows / completed msgs / results)",
      `${N - distinct.size} / ${listedTwice} / ${twiceCompleted.length} / ${dupResults.length}`,
      "0 / 0 / 0 / 0",
      verdict(N - distinct.size + listedTwice + twiceCompleted.length + dupResults.length === 0),
    ),
    row(
      "results_count consistent with results/",
      `${N - countMismatch.length - noCompleted.length} / ${N}`,
      `${N} / ${N}`,
      verdict(countMismatch.length + statusMismatch.length + noCompleted.length === 0),
    ),
  );
  result.data = {
    n: N,
    submitConcurrency: SUBMIT_CONCURRENCY,
    imageBytes: IMAGE_BYTES,
    submitMs,
    submitSeconds: submitS,
    endToEndSeconds: e2eS,
    requestsPerSecond: N / e2eS,
    acceptedToCompletedMs: latency,
    cpuPerRequestMs: cpuPerRequest,
    submitStages,
    jobStages,
    byStatus,
    failed,
    listedCount,
    polls,
    resultsTotal,
    lost: { missingFromList, notFinal, noCompleted },
    duplicated: { ids: N - distinct.size, listRows: listedTwice, completedTwice: twiceCompleted, results: dupResults },
    countMismatch,
    statusMismatch,
    monitorClose: closing,
  };
  if (missingFromList.length > 0)
    result.failures.push(
      `queue: ${missingFromList.length} submitted request(s) missing from the list, e.g. ${missingFromList.slice(0, 3).join(", ")}`,
    );
  if (notFinal.length > 0)
    result.failures.push(
      `queue: ${notFinal.length} request(s) not final at the end, e.g. ${notFinal
        .slice(0, 3)
        .map((id) => `${id}=${statuses.get(id)}`)
        .join(", ")}`,
    );
  if (noCompleted.length > 0)
    result.failures.push(
      `queue: ${noCompleted.length} request(s) never announced "completed" on /ws/, e.g. ${noCompleted.slice(0, 3).join(", ")}`,
    );
  if (listedTwice > 0) result.failures.push(`queue: ${listedTwice} request(s) listed twice across pages`);
  if (twiceCompleted.length > 0)
    result.failures.push(
      `queue: ${twiceCompleted.length} request(s) announced "completed" more than once, e.g. ${twiceCompleted.slice(0, 3).join(", ")}`,
    );
  if (dupResults.length > 0) result.failures.push(`queue: duplicated results: ${dupResults.slice(0, 3).join("; ")}`);
  if (countMismatch.length > 0) result.failures.push(`queue: results_count inconsistent: ${countMismatch.slice(0, 3).join("; ")}`);
  if (statusMismatch.length > 0)
    result.failures.push(`queue: completed status differs from the request: ${statusMismatch.slice(0, 3).join("; ")}`);
};

/** Per stage, the summary of its durations over every sample that has it. */
function stageSummaries(samples: readonly (readonly [string, number][])[]): Record<string, Summary> {
  const byStage: Record<string, number[]> = {};
  for (const stages of samples) for (const [name, ms] of stages) (byStage[name] ??= []).push(ms);
  return Object.fromEntries(Object.entries(byStage).map(([name, values]) => [name, summarize(values)]));
}

function stageText(stages: Record<string, Summary>): string {
  const names = Object.keys(stages);
  if (names.length === 0) return "none";
  return names.map((name) => `${name} ${fmtMs(stages[name]!.p50)}`).join(", ");
}

/** The `stages_ms` of this run's completed jobs (their log lines, from `from` on). */
function jobStageLines(logFile: string, from: number, ids: Set<string>): [string, number][][] {
  const text = readFileSync(logFile).subarray(from).toString("utf8");
  const out: [string, number][][] = [];
  for (const line of text.split("\n")) {
    const start = line.indexOf("{");
    if (start < 0 || !line.includes("stages_ms")) continue;
    try {
      const entry = JSON.parse(line.slice(start)) as { request_id?: string; stages_ms?: Record<string, number> };
      if (entry.request_id && ids.has(entry.request_id) && entry.stages_ms) out.push(Object.entries(entry.stages_ms));
    } catch {
      // not a JSON log line
    }
  }
  return out;
}
