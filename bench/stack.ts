/**
 * The service for benchmarks: emulators + migrations + seed + `wrangler dev`, exactly as
 * `npm start` runs it (scripts/start.ts), on free ports and with the abuse limits raised so the
 * benchmarks measure the service rather than its rate limiter. Output goes to a log file in /tmp.
 *
 * Set BENCH_URL (e.g. http://127.0.0.1:8787) to measure an already-running stack instead, and
 * BENCH_EMULATOR_URL (e.g. http://127.0.0.1:8790) for its emulator control API; nothing is then
 * started or stopped. Its rate limits must be raised the same way (see SETTINGS below).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startStack } from "../scripts/local-stack";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The process environment scripts/start.ts gets (API.md §7 overrides, and wrangler's own switches). */
export const SETTINGS: Readonly<Record<string, string>> = {
  EDGE_RATE_LIMIT_ENABLED: "false",
  IDENTIFY_RATE_LIMIT: "1000000/3600",
  IDENTIFY_ADDRESS_RATE_LIMIT: "1000000/3600",
  REGISTER_RATE_LIMIT: "100000/3600",
  LOGIN_RATE_LIMIT: "100000/900",
  REFRESH_RATE_LIMIT: "100000/3600",
  // BENCH_LOG_LEVEL=info keeps each queue job's `stages_ms` line in the stack log (wrangler must
  // then be at "log" to pass console.log through). Every request's access line is logged too,
  // which costs the Worker some CPU: headline figures are taken at warn.
  LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "warn",
  WRANGLER_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ? "log" : "warn",
  // wrangler dev (4.15x) traces every invocation into a local trace store for its explorer UI
  // unless X_LOCAL_OBSERVABILITY is false. That collector runs on the Worker's own workerd
  // thread: a CPU profile of the queue benchmark put ~20 % of that thread in its tail-stream
  // reports. It is development tooling that deployed Workers do not run, so benchmarks turn it
  // off; BENCH_LOCAL_OBSERVABILITY=true measures with it (BENCHMARKS.md gives both).
  X_LOCAL_OBSERVABILITY: process.env.BENCH_LOCAL_OBSERVABILITY ?? "false",
};

export interface BenchStack {
  /** e.g. http://127.0.0.1:41234 */
  baseUrl: string;
  /** The emulators' base URL (control API at /__control), or null when unknown (BENCH_URL without BENCH_EMULATOR_URL). */
  emulatorUrl: string | null;
  port: number;
  /** true when this process started the stack (and stop() stops it). */
  owned: boolean;
  /** Log file of the stack's output (owned stacks only). */
  logFile: string | null;
  /** pid of the process group leader (owned stacks only). */
  pid: number | null;
  /** Its local storage (owned stacks only): `wrangler d1 execute --persist-to` reaches its D1. */
  stateDir: string | null;
  stop(): Promise<void>;
}

/** Runs SQL (a file's worth) against the local D1 of a stack this process started; `--json` output when asked. */
export function d1(stateDir: string, sql: string, json = false): string {
  const dir = mkdtempSync(join(tmpdir(), "bench-d1-"));
  const file = join(dir, "q.sql");
  writeFileSync(file, sql);
  try {
    return execFileSync(
      join(root, "node_modules", ".bin", "wrangler"),
      ["d1", "execute", "DB", "--local", "--persist-to", stateDir, `--file=${file}`, ...(json ? ["--json"] : [])],
      {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
        timeout: 600_000,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
  } finally {
    // The SQL can be tens of megabytes (generated species): it does not stay behind in /tmp.
    rmSync(dir, { recursive: true, force: true });
  }
}

export function logTail(file: string | null, lines = 40): string {
  if (!file || !existsSync(file)) return "(no log)";
  return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
}

async function healthy(baseUrl: string): Promise<string | null> {
  try {
    const res = await fetch(`${baseUrl}/api/v1/health/`, { signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    return res.status === 200 ? null : `health answered ${res.status}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export async function startBenchStack(log: (msg: string) => void = () => {}): Promise<BenchStack> {
  const external = process.env.BENCH_URL;
  if (external) {
    const baseUrl = external.replace(/\/+$/, "");
    const problem = await healthy(baseUrl);
    if (problem) throw new Error(`BENCH_URL ${baseUrl} is not healthy: ${problem}`);
    const emulatorUrl = process.env.BENCH_EMULATOR_URL?.replace(/\/+$/, "") ?? null;
    log(
      `using the running stack at ${baseUrl}${emulatorUrl ? ` (emulators ${emulatorUrl})` : " (no BENCH_EMULATOR_URL: fan-out is skipped)"}`,
    );
    return {
      baseUrl,
      emulatorUrl,
      port: Number(new URL(baseUrl).port || 80),
      owned: false,
      logFile: null,
      pid: null,
      stateDir: null,
      stop: async () => {},
    };
  }
  const started = Date.now();
  log("starting the stack (emulators, migrations, seed, wrangler dev) with fresh local storage");
  const stack = await startStack({ purpose: "bench", env: { ...SETTINGS } });
  log(`stack healthy on ${stack.baseUrl} after ${((Date.now() - started) / 1000).toFixed(1)} s (log ${stack.logFile})`);
  return {
    baseUrl: stack.baseUrl,
    emulatorUrl: `http://127.0.0.1:${stack.emulatorPort}`,
    port: stack.port,
    owned: true,
    logFile: stack.logFile,
    pid: stack.pid,
    stateDir: stack.stateDir,
    stop: stack.stop,
  };
}

// ---------------------------------------------------------------------------------------------
// workerd processes and their memory

export interface WorkerdProcess {
  pid: number;
  /** "proxy": wrangler's entry workerd listening on PORT; "worker": the one running the Worker and its Durable Objects. */
  role: "proxy" | "worker";
  rssKiB: number;
}

function readProc(pid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return null;
  }
}

function ppidOf(pid: number): number | null {
  const status = readProc(pid, "status");
  const m = status?.match(/^PPid:\s+(\d+)/m);
  return m ? Number(m[1]) : null;
}

export function rssKiB(pid: number): number {
  const m = readProc(pid, "status")?.match(/^VmRSS:\s+(\d+)\s+kB/m);
  return m ? Number(m[1]) : 0;
}

/**
 * The workerd processes serving the stack on `port`: wrangler dev runs two, both children of
 * the wrangler CLI process — the proxy whose entry socket is PORT, and the Worker's own (which
 * wrangler replaces when it reloads after a source change). Found through /proc/<pid>/cmdline.
 */
export function workerdProcesses(port: number): WorkerdProcess[] {
  const all: { pid: number; argv: string[] }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = readProc(Number(entry), "cmdline");
    if (!cmdline?.includes("workerd")) continue;
    const argv = cmdline.split("\0").filter(Boolean);
    if (argv[0] && basename(argv[0]) === "workerd") all.push({ pid: Number(entry), argv });
  }
  const proxy = all.find((p) => p.argv.some((a) => a === `--socket-addr=entry=127.0.0.1:${port}`));
  if (!proxy) return [];
  const parent = ppidOf(proxy.pid);
  return all
    .filter((p) => p.pid === proxy.pid || (parent !== null && ppidOf(p.pid) === parent))
    .map((p) => ({ pid: p.pid, role: p.pid === proxy.pid ? ("proxy" as const) : ("worker" as const), rssKiB: rssKiB(p.pid) }));
}

/** "worker 12345: 180.2 MiB, proxy 12340: 95.1 MiB; sum 275.3 MiB" */
export function describeMemory(procs: WorkerdProcess[]): string {
  if (procs.length === 0) return "(no workerd process found)";
  const mib = (k: number) => `${(k / 1024).toFixed(1)} MiB`;
  return `${procs.map((p) => `${p.role} ${p.pid}: ${mib(p.rssKiB)}`).join(", ")}; sum ${mib(procs.reduce((s, p) => s + p.rssKiB, 0))}`;
}
