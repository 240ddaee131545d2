/**
 * `npm start`: the whole service on this machine, with no prompts.
 *   1. copies the docs UI assets into public/vendor,
 *   2. starts the provider emulators (Plant.id, Pl@ntNet, Trefle, OpenAI, email),
 *   3. applies D1 migrations to local storage and loads the species seed,
 *   4. runs `wrangler dev` on PORT (default 8787) with every API.md §7 setting taken from the
 *      process environment when set there, else pointed at the emulators,
 *   5. runs the cron trigger's scheduled handler once when ready and then every 5 minutes
 *      (wrangler dev does not fire cron triggers),
 * and stops everything it started on SIGINT/SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { emulatorBaseUrls, LOCAL_FIREBASE_PROJECT, LOCAL_OAUTH_CLIENT } from "../emulators/index";
import { startEmulatorServer } from "../emulators/server";
import { CONFIG_NAMES } from "../src/config-schema";
import { writeSpeciesSeedSql } from "./seed-sql";
import { groupAlive, killGroup, reaperPidFile, recordReaper } from "./stack-reaper";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const port = Number(process.env.PORT ?? 8787);
const emulatorPort = Number(process.env.EMULATOR_PORT ?? 8790);
/**
 * Local storage (D1, KV, R2, Queues, Durable Objects) and the files this script writes. Give
 * each concurrent stack its own STATE_DIR (tests and benchmarks do) so counters and data of
 * one run never leak into another.
 */
const stateDir = resolve(root, process.env.STATE_DIR ?? join(".wrangler", "state"));
const persist = ["--persist-to", stateDir];
// No prompts, no telemetry, and no fetch of the `Request.cf` sample from the internet.
const childEnv = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", CLOUDFLARE_CF_FETCH_ENABLED: "false" };

/**
 * Settings (API.md §7) that the process environment may override: every name the Worker reads
 * (src/config.ts), but the two that say what this stack is, which a developer's shell may well
 * have set for something else.
 */
const OVERRIDABLE = CONFIG_NAMES.filter((name) => name !== "ENVIRONMENT" && name !== "APP_VERSION");

const children = new Set<ChildProcess>();
let stopping = false;

/**
 * What the terminal shows: one line a step. Everything the tools print (migrations, the seed,
 * wrangler's bindings and request log) goes to the log file instead, named at the start.
 */
const logFile = resolve(root, process.env.START_LOG ?? join(stateDir, "start.log"));

/**
 * A child's output into the log file, without terminal colour codes: wrangler colours some lines
 * (its warnings) even with NO_COLOR set, and a log read in an editor should not carry them.
 */
function toLog(chunk: Buffer) {
  appendFileSync(logFile, chunk.toString().replace(/\u001b\[[0-9;]*[A-Za-z]/g, ""));
}

function log(msg: string) {
  process.stdout.write(`[start] ${msg}\n`);
  appendFileSync(logFile, `[start] ${msg}\n`);
}

/** The last lines of the log file, for when a step fails. */
function logTail(lines = 25): string {
  try {
    return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no output)";
  }
}

/** Null when `port` can be listened on, else the error that refused it. */
function probePort(port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) => resolve(err));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(null)));
  });
}

/**
 * Fails early, naming the setting of every port this stack needs that is taken, and suggests a
 * command with ports that are free now (each unlike the stack's other port), so following it
 * does not meet the next taken port.
 */
async function assertPortsFree(): Promise<void> {
  const wanted = [
    { port, setting: "PORT" },
    { port: emulatorPort, setting: "EMULATOR_PORT" },
  ] as const;
  const taken: { port: number; setting: string }[] = [];
  for (const want of wanted) {
    const err = await probePort(want.port);
    if (!err) continue;
    if (err.code !== "EADDRINUSE") throw new Error(`cannot listen on port ${want.port} (${want.setting}): ${err.message}`);
    taken.push(want);
  }
  if (taken.length === 0) return;
  const avoid = wanted.map((w) => w.port);
  const picks: string[] = [];
  for (const t of taken) {
    let free: number | null = null;
    for (let candidate = t.port + 1; candidate <= t.port + 100 && free === null; candidate++) {
      if (!avoid.includes(candidate) && (await probePort(candidate)) === null) free = candidate;
    }
    if (free === null) break;
    avoid.push(free);
    picks.push(`${t.setting}=${free}`);
  }
  const what =
    taken.length === 1
      ? `port ${taken[0]!.port} is already in use (${taken[0]!.setting})`
      : `ports ${taken.map((t) => `${t.port} (${t.setting})`).join(" and ")} are already in use`;
  const pick =
    picks.length < taken.length ? "or pick others" : `or pick ${taken.length === 1 ? "another" : "others"}: ${picks.join(" ")} npm start`;
  throw new Error(`${what}; stop what uses ${taken.length === 1 ? "it" : "them"} (another npm start?), ${pick}`);
}

/**
 * Marks the state folder as in use while this stack runs: a second `npm start` on the same
 * folder, even on other ports, would run a second workerd on the same local database and empty
 * the running stack's log. Holds this process's pid and where it answers.
 */
const lockFile = join(stateDir, "npm-start.json");

interface Lock {
  pid: number;
  port: number;
}

/** The stack that holds this state folder now, or null (none, or one that died without cleaning up). */
function runningStack(): Lock | null {
  let lock: Lock;
  try {
    lock = JSON.parse(readFileSync(lockFile, "utf8")) as Lock;
  } catch {
    return null;
  }
  try {
    process.kill(lock.pid, 0);
  } catch (err) {
    // EPERM: alive, another user's; ESRCH: it died without cleaning up.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return null;
  }
  // A pid reused since by something else is not a stack (where /proc can tell).
  try {
    if (!readFileSync(`/proc/${lock.pid}/cmdline`, "utf8").includes("start.ts")) return null;
  } catch {}
  return lock;
}

function assertStateDirFree(): void {
  const other = runningStack();
  if (!other) return;
  throw new Error(
    `another npm start (pid ${other.pid}) is already running at http://127.0.0.1:${other.port} on this STATE_DIR (${stateDir}); ` +
      `use that one, or stop it first (Ctrl-C in its terminal, or kill ${other.pid}). ` +
      "A second stack beside it needs its own folder and ports, e.g. STATE_DIR=/tmp/plant-community-2 PORT=8788 EMULATOR_PORT=8791 npm start",
  );
}

function takeStateDir(): void {
  writeFileSync(lockFile, JSON.stringify({ pid: process.pid, port } satisfies Lock));
  process.on("exit", () => {
    try {
      if ((JSON.parse(readFileSync(lockFile, "utf8")) as Lock).pid === process.pid) rmSync(lockFile);
    } catch {}
  });
}

const wrangler = join(root, "node_modules", ".bin", "wrangler");

/**
 * scripts/start-reaper.mjs, in a session of its own: it stops the process groups this script
 * started if this script ends without stopping them. The `tsx` command that `npm start` runs
 * kills this script with SIGKILL when it is slow to acknowledge Ctrl-C (30 ms; a busy moment on
 * a loaded machine), and nothing in this process runs after that.
 */
let reaper: ChildProcess | null = null;

function startReaper(): void {
  const pidFile = reaperPidFile(stateDir);
  reaper = spawn(process.execPath, [join(root, "scripts", "start-reaper.mjs"), String(process.pid), lockFile, logFile, pidFile], {
    cwd: root,
    // Its stdout is this script's: what it says reaches the same terminal (or pipe).
    stdio: ["pipe", "inherit", "inherit"],
    detached: true,
  });
  // Whoever deletes STATE_DIR after this script (scripts/local-stack.ts) waits until it is gone.
  if (reaper.pid !== undefined) recordReaper(stateDir, reaper.pid);
  reaper.on("error", (err) =>
    log(`cannot start scripts/start-reaper.mjs (${err.message}): if this script is killed, stop wrangler yourself`),
  );
  // Nothing to tell it once it is gone (a write would fail with EPIPE).
  reaper.stdin?.on("error", () => {});
}

/** Tells the reaper about a child's process group: started (its pgid), or its leader exited (-pgid). */
function tellReaper(pgid: number | undefined, exited = false): void {
  if (pgid !== undefined && reaper?.stdin?.writable) reaper.stdin.write(`${exited ? -pgid : pgid}\n`);
}

/** Runs `child` as one of this script's children: stopped with it, and by the reaper if it dies first. */
function adopt(child: ChildProcess): void {
  children.add(child);
  tellReaper(child.pid);
  child.on("exit", () => {
    children.delete(child);
    tellReaper(child.pid, true);
  });
}

/** Stops a child and everything it started (each child leads its own process group). */
function stop(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM") {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env: childEnv, stdio: ["ignore", "pipe", "pipe"], detached: true });
    adopt(child);
    child.stdout?.on("data", toLog);
    child.stderr?.on("data", toLog);
    child.on("error", reject);
    child.on("exit", (code) => {
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}; its last lines:\n${logTail()}`));
    });
  });
}

/** Sign-up, sign-in and identification limits under `npm start` (wrangler.toml keeps production's for the tests). */
const LOCAL_LIMITS = {
  REGISTER_RATE_LIMIT: "100/3600",
  LOGIN_RATE_LIMIT: "100/900",
  REFRESH_RATE_LIMIT: "200/3600",
  REFRESH_SESSION_RATE_LIMIT: "200/3600",
  IDENTIFY_RATE_LIMIT: "1000/3600",
  IDENTIFY_ADDRESS_RATE_LIMIT: "10000/3600",
};

function localSettings(emulatorUrl: string): Record<string, string> {
  const defaults: Record<string, string> = {
    ...emulatorBaseUrls(emulatorUrl),
    GOOGLE_CLIENT_ID: LOCAL_OAUTH_CLIENT.clientId,
    GOOGLE_CLIENT_SECRET: LOCAL_OAUTH_CLIENT.clientSecret,
    GOOGLE_AUTH_URL: `${emulatorUrl}/google/o/oauth2/v2/auth`,
    GOOGLE_TOKEN_URL: `${emulatorUrl}/google/token`,
    GOOGLE_JWKS_URL: `${emulatorUrl}/google/oauth2/v3/certs`,
    GOOGLE_ISSUER: `${emulatorUrl}/google`,
    FIREBASE_PROJECT_ID: LOCAL_FIREBASE_PROJECT,
    FIREBASE_JWKS_URL: `${emulatorUrl}/firebase/jwks`,
    GITHUB_CLIENT_ID: LOCAL_OAUTH_CLIENT.clientId,
    GITHUB_CLIENT_SECRET: LOCAL_OAUTH_CLIENT.clientSecret,
    GITHUB_AUTHORIZE_URL: `${emulatorUrl}/github/login/oauth/authorize`,
    GITHUB_TOKEN_URL: `${emulatorUrl}/github/login/oauth/access_token`,
    GITHUB_API_URL: `${emulatorUrl}/github`,
    PLANT_ID_API_KEY: "emulator-key",
    PLANTNET_API_KEY: "emulator-key",
    TREFLE_API_KEY: "emulator-key",
    OPENAI_API_KEY: "emulator-key",
    EMAIL_API_KEY: "emulator-key",
    CORS_ORIGINS: `http://localhost:5173,http://127.0.0.1:5173,http://localhost:${port},http://127.0.0.1:${port}`,
    // The URL this stack really answers on (links and OAuth redirect URIs are built on it).
    PUBLIC_API_URL: `http://127.0.0.1:${port}`,
    // Limits that fit a developer trying things out (production's 3 sign-ups an hour per address
    // locked a local tester out after three tries). Lockout itself keeps its production rules, so
    // it can be tried locally; the process environment can set any of these back.
    ...LOCAL_LIMITS,
  };
  const settings: Record<string, string> = {};
  for (const name of OVERRIDABLE) {
    const value = process.env[name] ?? defaults[name];
    if (value !== undefined) settings[name] = value;
  }
  return settings;
}

/**
 * What this state folder's local D1 already holds: the migrations applied and the seed loaded,
 * recorded next to the database files (so deleting the database forgets it too). A warm start
 * skips both steps when nothing changed; any change in migrations/ or the seed redoes them.
 */
const setupRecord = join(stateDir, "v3", "d1", "plant-community-setup.json");

interface SetupRecord {
  migrations?: string[];
  seed?: string;
}

function readSetup(): SetupRecord {
  try {
    return JSON.parse(readFileSync(setupRecord, "utf8")) as SetupRecord;
  } catch {
    return {};
  }
}

function recordSetup(change: SetupRecord): void {
  mkdirSync(dirname(setupRecord), { recursive: true });
  writeFileSync(setupRecord, JSON.stringify({ ...readSetup(), ...change }));
}

async function migrate(): Promise<void> {
  const migrations = readdirSync(join(root, "migrations"))
    .filter((f) => f.endsWith(".sql"))
    .sort();
  if (JSON.stringify(readSetup().migrations) === JSON.stringify(migrations)) {
    log(`database up to date (${migrations.length} migrations, local D1 under ${stateDir})`);
    return;
  }
  await run(wrangler, ["d1", "migrations", "apply", "DB", "--local", ...persist]);
  recordSetup({ migrations });
  log(`database migrated (${migrations.length} migrations in migrations/, local D1 under ${stateDir})`);
}

async function seedSpecies(): Promise<void> {
  const { file, count, posts } = await writeSpeciesSeedSql(join(stateDir, "seed-species.sql"));
  const seed = createHash("sha256").update(readFileSync(file)).digest("hex");
  if (readSetup().seed === seed) {
    log(`seed already loaded (${count} species, ${posts} blog posts)`);
    return;
  }
  await run(wrangler, ["d1", "execute", "DB", "--local", ...persist, `--file=${file}`]);
  recordSetup({ seed });
  log(`seed loaded (${count} species, ${posts} blog posts)`);
}

/**
 * wrangler.toml's cron trigger. `wrangler dev` never fires cron triggers, so the Worker's
 * scheduled handler (housekeeping: the stuck-request sweep, due reminders, token purge) is run
 * through wrangler's /__scheduled endpoint instead: once as soon as the Worker is ready — so a
 * restart recovers requests whose queue messages were lost with the previous process — and then
 * on the trigger's schedule.
 */
const CRON = "*/5 * * * *";
const CRON_INTERVAL_MS = 5 * 60_000;

async function runCron(): Promise<void> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/__scheduled?cron=${encodeURIComponent(CRON)}`, {
      signal: AbortSignal.timeout(60_000),
    });
    await res.arrayBuffer();
    if (!res.ok) log(`cron: /__scheduled answered ${res.status}`);
  } catch (err) {
    if (!stopping) log(`cron: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function startCron(): void {
  log(`running the cron trigger (${CRON}) now and every ${CRON_INTERVAL_MS / 60_000} minutes`);
  void runCron();
  setInterval(() => void runCron(), CRON_INTERVAL_MS).unref();
}

async function main() {
  // Before the log is started afresh: a second `npm start` beside a running one must not empty
  // the running stack's log.
  assertStateDirFree();
  await assertPortsFree();
  mkdirSync(stateDir, { recursive: true });
  takeStateDir();
  mkdirSync(dirname(logFile), { recursive: true });
  writeFileSync(logFile, "");
  log(`full output of every step: ${logFile}`);
  startReaper();
  await run("node", ["scripts/vendor-assets.mjs"]);

  // Push subscriptions are kept under the same STATE_DIR as the devices D1 holds for them.
  const emulators = await startEmulatorServer({ port: emulatorPort, stateDir });
  log(`provider emulators on ${emulators.url}`);

  const shutdown = async (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    // Each child leads a process group (wrangler's holds workerd): gone is every member gone, not
    // only the leader, which may exit first.
    const groups = [...children].flatMap((c) => (c.pid === undefined ? [] : [c.pid]));
    for (const child of children) stop(child);
    await emulators.close();
    // Anything still alive after 5 s is killed outright.
    setTimeout(() => {
      for (const pgid of groups.filter(groupAlive)) killGroup(pgid, "SIGKILL");
      log("stopped (what had not exited within 5 s was killed)");
      process.exit(exitCode);
    }, 5000).unref();
    await Promise.all([...children].map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.on("exit", resolve)))));
    while (groups.some(groupAlive)) await new Promise((resolve) => setTimeout(resolve, 50));
    // Said, so a terminal shows the stack is gone and not merely asked to go.
    log("stopped: everything it started has exited");
    process.exit(exitCode);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGHUP", () => void shutdown("SIGHUP"));
  // If whatever started us (npm, a terminal) dies without passing a signal on, we are
  // re-parented; stop too rather than leave a server running nobody owns.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void shutdown("parent exited");
  }, 1000).unref();

  await migrate();
  await seedSpecies();

  // Settings go through an env file (not --var) so values with colons and commas survive.
  const envFile = join(stateDir, "local.env");
  const settings = localSettings(emulators.url);
  writeFileSync(
    envFile,
    `${Object.entries(settings)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join("\n")}\n`,
  );
  const overridden = OVERRIDABLE.filter((n) => process.env[n] !== undefined);
  if (overridden.length > 0) log(`from the environment: ${overridden.join(", ")}`);

  const dev = spawn(
    wrangler,
    // --test-scheduled: cron triggers do not fire under `wrangler dev`; /__scheduled runs them (runCron).
    [
      "dev",
      "--port",
      String(port),
      "--ip",
      "127.0.0.1",
      "--env-file",
      envFile,
      ...persist,
      "--test-scheduled",
      "--show-interactive-dev-session=false",
      "--log-level",
      process.env.WRANGLER_LOG_LEVEL ?? "log",
    ],
    { cwd: root, env: childEnv, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  adopt(dev);
  let announced = false;
  const bindings = new Set<string>();
  const watch = (chunk: Buffer) => {
    toLog(chunk);
    const text = chunk.toString();
    // wrangler lists the Worker's bindings as "env.NAME (…)  Kind  local" before it is ready.
    for (const m of text.matchAll(/env\.(\w+)\s/g)) bindings.add(m[1]!);
    if (!announced && /Ready on/i.test(text)) {
      announced = true;
      log(`bindings: ${bindings.size} (D1, KV, R2, Queues, Durable Objects, rate limiters and settings), all local`);
      log(
        `Plant Community is running at http://127.0.0.1:${port} (health: http://127.0.0.1:${port}/api/v1/health/, docs: http://127.0.0.1:${port}/api/docs)`,
      );
      log(
        `pages: http://127.0.0.1:${port}/identify/ and /editor/; the mail it sends: ${emulators.url}/email/emails ` +
          "(Authorization: Bearer emulator-key); a first walk with curl: docs/api.md § First steps",
      );
      log("requests and the Worker's logs: the log file above; Ctrl-C stops everything");
      startCron();
    }
  };
  dev.stdout?.on("data", watch);
  dev.stderr?.on("data", watch);
  dev.on("exit", (code) => {
    if (!stopping) {
      log(`wrangler dev exited with ${code}; its last lines:\n${logTail()}`);
      void shutdown("wrangler exit", code || 1);
    }
  });
}

main().catch(async (err) => {
  console.error(`[start] failed: ${err instanceof Error ? err.message : String(err)}`);
  for (const child of children) stop(child);
  process.exit(1);
});
