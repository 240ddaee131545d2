/**
 * `npm run bench` — runs the benchmarks against the real local stack with the provider
 * emulators and prints their figures against the issue's targets.
 *
 *   npm run bench                 all eight: cache fanout queue ws search blog load scale
 *   npm run bench -- cache queue  a subset
 *   BENCH_URL=http://127.0.0.1:8787 BENCH_EMULATOR_URL=http://127.0.0.1:8790 npm run bench
 *                                 against an already-running stack (its limits must be raised)
 *
 * Figures never fail the run: PASS/MISS only label them. The exit code is 1 when a correctness
 * check fails (errors, lost or duplicated requests, missing or misrouted socket messages) and 2
 * when the stack cannot start. Results go to bench/results/latest.json.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { blogBench } from "./blog";
import { cacheBench } from "./cache";
import { fanoutBench } from "./fanout";
import { loadBench } from "./load";
import { BenchFailure, RUN_ID } from "./lib";
import { queueBench } from "./queue";
import { scaleBench } from "./scale";
import { searchBench } from "./search";
import { root, SETTINGS, startBenchStack, workerdProcesses, type BenchStack } from "./stack";
import type { BenchContext, Benchmark, BenchResult, Row } from "./types";
import { wsBench } from "./ws";

const BENCHMARKS: Record<string, { title: string; run: Benchmark }> = {
  cache: { title: "1. Cache hit (1 MiB image)", run: cacheBench },
  fanout: { title: "2. Parallel provider fan-out (cache misses)", run: fanoutBench },
  queue: { title: "3. Queue throughput (200 async requests)", run: queueBench },
  ws: { title: "4. WebSockets (1 000 sockets; 200 users × 5)", run: wsBench },
  search: { title: "5. Search latency (seeded catalogue)", run: searchBench },
  blog: { title: "6. Blog public reads (cache hit vs health; listing at 100 and 10 000 posts)", run: blogBench },
  load: { title: "7. Mixed traffic (50 clients, 60 s)", run: loadBench },
  scale: { title: "8. Search at scale (1 000 / 10 000 / 100 000 species; +10 000 forum topics)", run: scaleBench },
};

const t0 = Date.now();
function log(msg: string) {
  process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
}

function machine() {
  const cpuModel = (() => {
    try {
      return (
        readFileSync("/proc/cpuinfo", "utf8")
          .match(/^model name\s*:\s*(.+)$/m)?.[1]
          ?.trim() ??
        cpus()[0]?.model ??
        "unknown"
      );
    } catch {
      return cpus()[0]?.model ?? "unknown";
    }
  })();
  const version = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { cwd: root, encoding: "utf8", timeout: 20_000 }).trim().split("\n")[0] ?? "unknown";
    } catch {
      return "unknown";
    }
  };
  const pkgVersion = (name: string) => {
    try {
      return (JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
    } catch {
      return "unknown";
    }
  };
  return {
    cpus: availableParallelism(),
    cpuModel,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    workerd: version(join(root, "node_modules", ".bin", "workerd"), ["--version"]),
    wrangler: pkgVersion("wrangler"),
    loadavgAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
  };
}

function workerPids(stack: BenchStack): string {
  return workerdProcesses(stack.port)
    .filter((p) => p.role === "worker")
    .map((p) => p.pid)
    .sort()
    .join(",");
}

/** Warnings and errors the stack logged while we ran (owned stacks only). */
function logFindings(file: string | null, fromByte: number) {
  if (!file) return null;
  let text = "";
  try {
    text = readFileSync(file, "utf8").slice(fromByte);
  } catch {
    return null;
  }
  const lines = text.split("\n");
  const errors = lines.filter((l) => /"level":"error"|✘ \[ERROR\]|Uncaught|Unhandled|^Error\b/i.test(l));
  const warnings = lines.filter((l) => /"level":"warn"|▲ \[WARNING\]/.test(l));
  return { errors: errors.length, warnings: warnings.length, errorLines: errors.slice(0, 30), warningLines: warnings.slice(0, 30) };
}

function table(results: BenchResult[]): string {
  const rows: Row[][] = results.map((r) => r.rows);
  const all = rows.flat();
  const w = {
    metric: Math.max(6, ...all.map((r) => r.metric.length)),
    value: Math.max(5, ...all.map((r) => r.value.length)),
    target: Math.max(6, ...all.map((r) => r.target.length)),
  };
  const line = (a: string, b: string, c: string, d: string) =>
    `| ${a.padEnd(w.metric)} | ${b.padEnd(w.value)} | ${c.padEnd(w.target)} | ${d.padEnd(7)} |`;
  const out: string[] = [];
  for (const r of results) {
    out.push(
      "",
      `### ${r.title}  (${(r.durationMs / 1000).toFixed(0)} s${r.failures.length ? `, ${r.failures.length} correctness failure(s)` : ""})`,
      "",
    );
    out.push(
      line("Metric", "Value", "Target", "Verdict"),
      `|${"-".repeat(w.metric + 2)}|${"-".repeat(w.value + 2)}|${"-".repeat(w.target + 2)}|---------|`,
    );
    for (const x of r.rows) out.push(line(x.metric, x.value, x.target, x.verdict === "info" ? "" : x.verdict));
    for (const f of r.failures) out.push(`  FAIL: ${f}`);
    for (const n of r.notes) out.push(`  note: ${n}`);
  }
  return out.join("\n");
}

async function main(): Promise<number> {
  const args = process.argv.slice(2).filter((a) => a !== "--");
  const unknown = args.filter((a) => !(a in BENCHMARKS));
  if (unknown.length > 0) {
    console.error(`unknown benchmark(s): ${unknown.join(", ")}; choose from ${Object.keys(BENCHMARKS).join(", ")}`);
    return 2;
  }
  const selected = args.length > 0 ? Object.keys(BENCHMARKS).filter((k) => args.includes(k)) : Object.keys(BENCHMARKS);
  const info = machine();
  log(
    `machine: ${info.cpus} CPUs (${info.cpuModel}), Node ${info.node}, workerd ${info.workerd}, wrangler ${info.wrangler}; load ${info.loadavgAtStart.join(" ")}`,
  );

  let stack: BenchStack;
  try {
    stack = await startBenchStack(log);
  } catch (err) {
    console.error(`[bench] the stack could not start: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  let interrupted = false;
  const onSignal = (signal: string) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping the stack`);
    void stack.stop().finally(() => process.exit(130));
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));

  let logStart = 0;
  try {
    logStart = stack.logFile ? readFileSync(stack.logFile).length : 0;
  } catch {
    // no log yet
  }
  const ctx: BenchContext = { stack, log };
  const results: BenchResult[] = [];
  try {
    for (const name of selected) {
      const bench = BENCHMARKS[name]!;
      let discarded: string[] = [];
      for (let attempt = 1; attempt <= 2; attempt++) {
        const result: BenchResult = { name, title: bench.title, rows: [], failures: [], notes: [...discarded], data: {}, durationMs: 0 };
        const pidsBefore = workerPids(stack);
        const started = performance.now();
        log(`${name}: start${attempt > 1 ? " (again)" : ""}`);
        try {
          await bench.run(ctx, result);
        } catch (err) {
          const message =
            err instanceof BenchFailure ? err.message : `${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
          result.failures.push(message);
        }
        result.durationMs = performance.now() - started;
        const pidsAfter = workerPids(stack);
        const reloaded = pidsBefore !== "" && pidsBefore !== pidsAfter;
        if (reloaded) {
          result.notes.push(
            `wrangler dev reloaded the Worker during this benchmark (workerd ${pidsBefore} → ${pidsAfter}; someone changed src/?): figures and checks are unreliable`,
          );
        }
        log(
          `${name}: done in ${(result.durationMs / 1000).toFixed(1)} s${result.failures.length ? ` with ${result.failures.length} failure(s)` : ""}${reloaded ? " (Worker reloaded meanwhile)" : ""}`,
        );
        if (reloaded && attempt === 1) {
          log(`${name}: running it again because the Worker reloaded`);
          discarded = [
            `a first attempt was discarded because the Worker reloaded during it${result.failures.length ? `; its failures: ${result.failures.join(" | ")}` : " (no failures)"}`,
          ];
          continue;
        }
        results.push(result);
        break;
      }
    }
  } finally {
    await stack.stop();
  }

  const findings = logFindings(stack.logFile, logStart);
  const loadAtEnd = loadavg().map((v) => Math.round(v * 100) / 100);
  const failures = results.flatMap((r) => r.failures);
  const header = [
    `Plant Community benchmarks — run ${RUN_ID}, ${new Date().toISOString()}`,
    `Machine: ${info.cpus} CPUs (${info.cpuModel}), ${info.memoryGiB} GiB; Node ${info.node}; workerd ${info.workerd}; wrangler ${info.wrangler}; load average at start ${info.loadavgAtStart.join(" ")}, at end ${loadAtEnd.join(" ")}`,
    `Stack: ${stack.owned ? "started by the benchmark (scripts/start.ts, wrangler dev, emulators); settings" : `existing stack at ${stack.baseUrl}; expected settings`} ${Object.entries(
      SETTINGS,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`,
  ].join("\n");
  const output = `${header}\n${table(results)}\n`;
  process.stdout.write(`\n${output}\n`);
  if (findings) {
    process.stdout.write(
      `Stack log (${stack.logFile}): ${findings.errors} error line(s), ${findings.warnings} warning line(s) during the run\n`,
    );
    for (const l of findings.errorLines.slice(0, 5)) process.stdout.write(`  ${l.slice(0, 300)}\n`);
  }
  process.stdout.write(
    failures.length > 0
      ? `\nCORRECTNESS: ${failures.length} failure(s) — exit code 1\n`
      : "\nCORRECTNESS: all checks passed (figures are informational)\n",
  );

  const dir = join(root, "bench", "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "latest.json"),
    `${JSON.stringify(
      {
        runId: RUN_ID,
        finishedAt: new Date().toISOString(),
        machine: { ...info, loadavgAtEnd: loadAtEnd },
        stack: { baseUrl: stack.baseUrl, owned: stack.owned, logFile: stack.logFile, settings: SETTINGS },
        results,
        log: findings,
        table: output,
      },
      null,
      2,
    )}\n`,
  );
  log(`results written to bench/results/latest.json`);
  return failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`[bench] crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
