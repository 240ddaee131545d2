/**
 * Starts the whole service exactly as `npm start` does (provider emulators, local D1 migrations
 * and seed, `wrangler dev`) on free ports and with its own fresh local storage, so it can run
 * next to a developer's own `npm start`. Used by the end-to-end tests and the benchmarks.
 * Output goes to a log file under /tmp; when startup fails the error says what it was waiting
 * for, the last step start.ts reached, where the log is, and carries the log's tail.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { killGroup, reaperFinished } from "./stack-reaper";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
/**
 * How long a stack may take to answer its health check. A cold start (vendored assets, ~60
 * migrations, the seed, wrangler's bundle) took about a minute on an idle 2-core machine and more
 * than two under a load of ~12, so the default leaves room; STACK_STARTUP_TIMEOUT_MS sets it.
 */
export const STARTUP_TIMEOUT_MS = 300_000;
export const STARTUP_TIMEOUT_VARIABLE = "STACK_STARTUP_TIMEOUT_MS";
/** Each health check's own limit: a loaded machine may answer slowly, and that is not a failure yet. */
const HEALTH_CHECK_TIMEOUT_MS = 5_000;
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
  /** The start-up limit; without it STACK_STARTUP_TIMEOUT_MS, or STARTUP_TIMEOUT_MS. */
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

/**
 * The start-up limit from the environment: STACK_STARTUP_TIMEOUT_MS in milliseconds (a positive
 * whole number), STARTUP_TIMEOUT_MS when unset or empty. Anything else is refused, not ignored:
 * a limit someone meant to raise must not silently stay at the default.
 */
export function startupTimeoutMs(env: Record<string, string | undefined> = process.env): number {
  const raw = env[STARTUP_TIMEOUT_VARIABLE]?.trim();
  if (!raw) return STARTUP_TIMEOUT_MS;
  if (!/^[1-9][0-9]*$/.test(raw)) {
    throw new Error(
      `${STARTUP_TIMEOUT_VARIABLE} must be a whole number of milliseconds above 0 (e.g. 600000 for 10 minutes), not "${raw}"`,
    );
  }
  return Number(raw);
}

/** The last step start.ts logged ("[start] …"), and whether wrangler dev had said it was ready. */
function lastStep(file: string): string {
  const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n") : [];
  const steps = lines.filter((line) => line.startsWith("[start] "));
  const step = steps.at(-1)?.slice("[start] ".length) ?? "none logged yet";
  const ready = lines.some((line) => /Ready on/i.test(line));
  return `start.ts's last step: "${step}"${ready ? "" : " (wrangler dev had not said it was ready)"}`;
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
  // Read before anything is started: a bad setting fails at once and leaves nothing running.
  const limitMs = options.timeoutMs ?? startupTimeoutMs();
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

  const health = `${baseUrl}/api/v1/health/`;
  const deadline = Date.now() + limitMs;
  let lastError = "no answer yet";
  let exitedEarly: string | null = null;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      exitedEarly = `code ${child.exitCode}, signal ${child.signalCode}`;
      break;
    }
    try {
      const res = await fetch(health, { signal: AbortSignal.timeout(HEALTH_CHECK_TIMEOUT_MS) });
      await res.arrayBuffer();
      if (res.status === 200) {
        return { baseUrl, port, emulatorPort, pid, logFile, stateDir, logTail: (lines = 60) => tail(logFile, lines), stop };
      }
      lastError = `health answered ${res.status}`;
    } catch (err) {
      lastError =
        err instanceof Error && err.name === "TimeoutError"
          ? `health did not answer within ${HEALTH_CHECK_TIMEOUT_MS / 1000} s`
          : err instanceof Error
            ? (err.cause instanceof Error ? err.cause.message : "") || err.message
            : String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  // Read before stopping it: the stop adds its own lines.
  const reached = lastStep(logFile);
  await stop();
  // The reason first, then where to look: a failed run's first line should say why.
  const why =
    exitedEarly !== null
      ? `scripts/start.ts exited (${exitedEarly}) before ${health} answered 200`
      : `The stack did not answer 200 at ${health} within ${limitMs / 1000} s ` +
        `(${STARTUP_TIMEOUT_VARIABLE}; a slow or loaded machine may need more)`;
  throw new Error(
    `${why}. Last health check: ${lastError}; ${reached}. Full log: ${logFile}\n` +
      `Its last lines:\n${tail(logFile, 60)}\nIts terminal output (${terminalFile}):\n${tail(terminalFile, 20)}`,
  );
}
