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
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { emulatorBaseUrls, LOCAL_OAUTH_CLIENT } from "../emulators/index";
import { startEmulatorServer } from "../emulators/server";
import { writeSpeciesSeedSql } from "./seed-sql";

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

/** Settings of API.md §7 that the process environment may override. */
const OVERRIDABLE = [
  "PLANT_ID_API_URL",
  "PLANT_ID_API_KEY",
  "PLANTNET_API_URL",
  "PLANTNET_API_KEY",
  "TREFLE_API_URL",
  "TREFLE_API_KEY",
  "OPENAI_API_URL",
  "OPENAI_API_KEY",
  "OPENAI_MODEL",
  "PLANT_ID_TIMEOUT_MS",
  "PLANTNET_TIMEOUT_MS",
  "TREFLE_TIMEOUT_MS",
  "OPENAI_TIMEOUT_MS",
  "IDENTIFY_SECOND_PROVIDER_GRACE_MS",
  "PLANT_ID_CACHE_TTL_S",
  "PLANTNET_CACHE_TTL_S",
  "ALLOW_ANONYMOUS_IDENTIFY",
  "CORS_ORIGINS",
  "FRONTEND_URL",
  "PUBLIC_API_URL",
  "JWT_SECRET",
  "JWT_ISSUER",
  "JWT_AUDIENCE",
  "JWT_ACCESS_TTL_S",
  "JWT_REFRESH_TTL_S",
  "COOKIE_SAMESITE",
  "SENTRY_DSN",
  "EDGE_RATE_LIMIT_ENABLED",
  "PASSWORD_RESET_TTL_S",
  "EMAIL_API_URL",
  "EMAIL_API_KEY",
  "EMAIL_FROM",
  "LOG_LEVEL",
  "MAX_JSON_BODY_BYTES",
  "MAX_UPLOAD_BODY_BYTES",
  "GOOGLE_CLIENT_ID",
  "GOOGLE_CLIENT_SECRET",
  "GOOGLE_AUTH_URL",
  "GOOGLE_TOKEN_URL",
  "GOOGLE_JWKS_URL",
  "GOOGLE_ISSUER",
  "GITHUB_CLIENT_ID",
  "GITHUB_CLIENT_SECRET",
  "GITHUB_AUTHORIZE_URL",
  "GITHUB_TOKEN_URL",
  "GITHUB_API_URL",
  "LOGIN_RATE_LIMIT",
  "REGISTER_RATE_LIMIT",
  "REFRESH_RATE_LIMIT",
  "IDENTIFY_RATE_LIMIT",
  "CARE_REGENERATE_RATE_LIMIT",
  "FORUM_POST_RATE_LIMIT",
  "LOCKOUT_THRESHOLD",
  "LOCKOUT_WINDOW_S",
  "LOCKOUT_DURATION_S",
] as const;

const children = new Set<ChildProcess>();
let stopping = false;

function log(msg: string) {
  process.stdout.write(`[start] ${msg}\n`);
}

const wrangler = join(root, "node_modules", ".bin", "wrangler");

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
    const child = spawn(cmd, args, { cwd: root, env: childEnv, stdio: ["ignore", "inherit", "inherit"], detached: true });
    children.add(child);
    child.on("error", reject);
    child.on("exit", (code) => {
      children.delete(child);
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}`));
    });
  });
}

/** Sign-up, sign-in and identification limits under `npm start` (wrangler.toml keeps production's for the tests). */
const LOCAL_LIMITS = {
  REGISTER_RATE_LIMIT: "100/3600",
  LOGIN_RATE_LIMIT: "100/900",
  REFRESH_RATE_LIMIT: "200/3600",
  IDENTIFY_RATE_LIMIT: "1000/3600",
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

async function seedSpecies(): Promise<void> {
  const { file, count } = await writeSpeciesSeedSql(join(stateDir, "seed-species.sql"));
  await run(wrangler, ["d1", "execute", "DB", "--local", ...persist, `--file=${file}`]);
  log(`species catalogue seeded (${count} species)`);
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
  mkdirSync(stateDir, { recursive: true });
  await run("node", ["scripts/vendor-assets.mjs"]);

  const emulators = await startEmulatorServer({ port: emulatorPort });
  log(`provider emulators on ${emulators.url}`);

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    for (const child of children) stop(child);
    await emulators.close();
    // Anything still alive after 5 s is killed outright.
    setTimeout(() => {
      for (const child of children) stop(child, "SIGKILL");
      process.exit(0);
    }, 5000).unref();
    await Promise.all([...children].map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.on("exit", resolve)))));
    process.exit(0);
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

  await run(wrangler, ["d1", "migrations", "apply", "DB", "--local", ...persist]);
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
    { cwd: root, env: childEnv, stdio: ["ignore", "pipe", "inherit"], detached: true },
  );
  children.add(dev);
  let announced = false;
  dev.stdout.on("data", (chunk: Buffer) => {
    process.stdout.write(chunk);
    if (!announced && /Ready on/i.test(chunk.toString())) {
      announced = true;
      log(
        `Plant Community is running at http://127.0.0.1:${port} (health: http://127.0.0.1:${port}/api/v1/health/, docs: http://127.0.0.1:${port}/api/docs)`,
      );
      startCron();
    }
  });
  dev.on("exit", (code) => {
    children.delete(dev);
    if (!stopping) {
      log(`wrangler dev exited with ${code}`);
      void shutdown("wrangler exit").then(() => process.exit(code ?? 1));
    }
  });
}

main().catch(async (err) => {
  console.error(`[start] failed: ${err instanceof Error ? err.message : String(err)}`);
  for (const child of children) stop(child);
  process.exit(1);
});
