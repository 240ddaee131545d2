/**
 * Starts the whole service exactly as `npm start` does (provider emulators, local D1 migrations
 * and seed, `wrangler dev`) on free ports and with its own fresh local storage, so it can run
 * next to a developer's own `npm start`. Used by the end-to-end tests and the benchmarks.
 * Output goes to a log file under /tmp; when startup fails the error carries the log's tail.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { killGroup, reaperFinished } from "./stack-reaper";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const STARTUP_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 10_000;
/** The reaper's own bound (5 s of SIGTERM, 2 s after SIGKILL) and some slack. */
const REAPER_WAIT_MS = 10_000;

export interface Stack {
  /** e.g. http://127.0.0.1:41234 */
  baseUrl: string;
  port: number;
  emulatorPort: number;
  /** The process group leader (scripts/start.ts). */
  pid: number;
  logFile: string;
  /** Its local storage (STATE_DIR): `npm run admin` with this STATE_DIR changes its data. */
  stateDir: string;
  /** The last `lines` lines of the stack's output. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

export interface StartStackOptions {
  /** Extra environment for scripts/start.ts (e.g. API.md §7 overrides). */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Names the log file: /tmp/plant-community-<purpose>-<port>.log. */
  purpose?: string;
}

/** A port nobody listens on right now (the OS picks it; we release it at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("could not find a free port"))));
    });
  });
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return "(no output)";
  return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
}

/**
 * Stops the stack `child` leads (its process group: SIGTERM, SIGKILL after `graceMs`), then
 * deletes `stateDir` — once start.ts's reaper has stopped whatever start.ts left running (it may
 * take up to 7 s after start.ts has ended; bounded by `reaperMs`), so nothing is still writing
 * into the folder, or re-creating it, as it goes.
 */
export async function stopStack(child: ChildProcess, stateDir: string, graceMs = STOP_GRACE_MS, reaperMs = REAPER_WAIT_MS) {
  const pid = child.pid;
  if (pid !== undefined && child.exitCode === null && child.signalCode === null) {
    killGroup(pid, "SIGTERM");
    const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs).unref());
    if ((await Promise.race([exited(child), timer])) === "timeout") {
      killGroup(pid, "SIGKILL");
      await exited(child);
    }
  }
  await reaperFinished(stateDir, reaperMs);
  rmSync(stateDir, { recursive: true, force: true });
}

export async function startStack(options: StartStackOptions = {}): Promise<Stack> {
  const port = await freePort();
  let emulatorPort = await freePort();
  while (emulatorPort === port) emulatorPort = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const logFile = join(tmpdir(), `plant-community-${options.purpose ?? "stack"}-${port}.log`);
  // Fresh local storage per stack: no rate-limit counters or data from earlier runs.
  const stateDir = mkdtempSync(join(tmpdir(), "plant-community-state-"));
  // start.ts writes every tool's output to START_LOG; its own terminal output (and anything
  // printed before it could open the log) is kept beside it.
  const terminalFile = `${logFile}.terminal`;
  const out = openSync(terminalFile, "w");

  // node_modules/.bin first: wrangler needs the project's Node 22 (the `node` devDependency),
  // whatever `node` the machine has on its PATH.
  const bin = join(root, "node_modules", ".bin");
  const child = spawn(join(bin, "tsx"), ["scripts/start.ts"], {
    cwd: root,
    env: {
      ...process.env,
      PATH: `${bin}${delimiter}${process.env.PATH ?? ""}`,
      PORT: String(port),
      EMULATOR_PORT: String(emulatorPort),
      STATE_DIR: stateDir,
      START_LOG: logFile,
      ...options.env,
    },
    stdio: ["ignore", out, out],
    // Its own process group, so stopping it reaches tsx and the script it runs.
    detached: true,
  });
  closeSync(out);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn scripts/start.ts (see ${logFile})`);

  let stopped: Promise<void> | null = null;
  const stop = () => (stopped ??= stopStack(child, stateDir));

  const deadline = Date.now() + (options.timeoutMs ?? STARTUP_TIMEOUT_MS);
  let lastError = "no answer yet";
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      lastError = `scripts/start.ts exited early (code ${child.exitCode}, signal ${child.signalCode})`;
      break;
    }
    try {
      const res = await fetch(`${baseUrl}/api/v1/health/`, { signal: AbortSignal.timeout(5_000) });
      await res.arrayBuffer();
      if (res.status === 200) {
        return { baseUrl, port, emulatorPort, pid, logFile, stateDir, logTail: (lines = 60) => tail(logFile, lines), stop };
      }
      lastError = `health answered ${res.status}`;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await stop();
  throw new Error(
    `The stack did not become healthy at ${baseUrl}/api/v1/health/ (${lastError}). Last lines of ${logFile}:\n${tail(logFile, 60)}\n` +
      `Its terminal output (${terminalFile}):\n${tail(terminalFile, 20)}`,
  );
}
