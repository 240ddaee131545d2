/**
 * `npm start`: the whole service on this machine, with no prompts.
 *   1. copies the docs UI assets into public/vendor,
 *   2. starts the provider emulators (Plant.id, Pl@ntNet, Trefle, OpenAI, email),
 *   3. applies D1 migrations to local storage and loads the species seed,
 *   4. runs `wrangler dev` on PORT (default 8787) with every API.md §7 setting taken from the
 *      process environment when set there, else pointed at the emulators,
 * and stops everything it started on SIGINT/SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startEmulatorServer } from "../emulators/server";
import { speciesSeedStatements, type SeedSpecies } from "../src/db/seed";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const port = Number(process.env.PORT ?? 8787);
const emulatorPort = Number(process.env.EMULATOR_PORT ?? 8790);
const stateDir = join(root, ".wrangler");
const childEnv = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" };

/** Settings of API.md §7 that the process environment may override. */
const OVERRIDABLE = [
  "PLANT_ID_API_URL", "PLANT_ID_API_KEY", "PLANTNET_API_URL", "PLANTNET_API_KEY",
  "TREFLE_API_URL", "TREFLE_API_KEY", "OPENAI_API_URL", "OPENAI_API_KEY", "OPENAI_MODEL",
  "PLANT_ID_TIMEOUT_MS", "PLANTNET_TIMEOUT_MS", "TREFLE_TIMEOUT_MS", "OPENAI_TIMEOUT_MS",
  "PLANT_ID_CACHE_TTL_S", "PLANTNET_CACHE_TTL_S", "ALLOW_ANONYMOUS_IDENTIFY", "CORS_ORIGINS",
  "FRONTEND_URL", "JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_ACCESS_TTL_S", "JWT_REFRESH_TTL_S",
  "COOKIE_SAMESITE", "SENTRY_DSN", "EMAIL_API_URL", "EMAIL_API_KEY", "EMAIL_FROM", "LOG_LEVEL",
  "MAX_JSON_BODY_BYTES", "MAX_UPLOAD_BODY_BYTES", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET",
  "GOOGLE_OAUTH_URL", "GOOGLE_TOKEN_URL", "GOOGLE_JWKS_URL", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET",
  "GITHUB_OAUTH_URL", "GITHUB_TOKEN_URL", "GITHUB_API_URL",
] as const;

const children = new Set<ChildProcess>();
let stopping = false;

function log(msg: string) {
  process.stdout.write(`[start] ${msg}\n`);
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env: childEnv, stdio: ["ignore", "inherit", "inherit"] });
    children.add(child);
    child.on("error", reject);
    child.on("exit", (code) => {
      children.delete(child);
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}`));
    });
  });
}

function localSettings(emulatorUrl: string): Record<string, string> {
  const defaults: Record<string, string> = {
    PLANT_ID_API_URL: `${emulatorUrl}/plant-id/v3`,
    PLANTNET_API_URL: `${emulatorUrl}/plantnet`,
    TREFLE_API_URL: `${emulatorUrl}/trefle/api/v1`,
    OPENAI_API_URL: `${emulatorUrl}/openai/v1`,
    EMAIL_API_URL: `${emulatorUrl}/email`,
    PLANT_ID_API_KEY: "emulator-key",
    PLANTNET_API_KEY: "emulator-key",
    TREFLE_API_KEY: "emulator-key",
    OPENAI_API_KEY: "emulator-key",
    EMAIL_API_KEY: "emulator-key",
    CORS_ORIGINS: `http://localhost:5173,http://127.0.0.1:5173,http://localhost:${port},http://127.0.0.1:${port}`,
  };
  const settings: Record<string, string> = {};
  for (const name of OVERRIDABLE) {
    const value = process.env[name] ?? defaults[name];
    if (value !== undefined) settings[name] = value;
  }
  return settings;
}

async function seedSpecies(): Promise<void> {
  const entries = JSON.parse(readFileSync(join(root, "seed", "species.json"), "utf8")) as SeedSpecies[];
  const file = join(stateDir, "seed-species.sql");
  writeFileSync(file, (await speciesSeedStatements(entries)).join("\n") + "\n");
  await run("npx", ["wrangler", "d1", "execute", "DB", "--local", `--file=${file}`]);
  log(`species catalogue seeded (${entries.length} species)`);
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
    for (const child of children) child.kill("SIGTERM");
    await emulators.close();
    setTimeout(() => process.exit(0), 3000).unref();
    await Promise.all(
      [...children].map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.on("exit", resolve)))),
    );
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));

  await run("npx", ["wrangler", "d1", "migrations", "apply", "DB", "--local"]);
  await seedSpecies();

  // Settings go through an env file (not --var) so values with colons and commas survive.
  const envFile = join(stateDir, "local.env");
  const settings = localSettings(emulators.url);
  writeFileSync(
    envFile,
    Object.entries(settings)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join("\n") + "\n",
  );
  const overridden = OVERRIDABLE.filter((n) => process.env[n] !== undefined);
  if (overridden.length > 0) log(`from the environment: ${overridden.join(", ")}`);

  const dev = spawn(
    "npx",
    ["wrangler", "dev", "--port", String(port), "--ip", "127.0.0.1", "--env-file", envFile,
      "--show-interactive-dev-session=false", "--log-level", process.env.WRANGLER_LOG_LEVEL ?? "info"],
    { cwd: root, env: childEnv, stdio: ["ignore", "pipe", "inherit"] },
  );
  children.add(dev);
  let announced = false;
  dev.stdout.on("data", (chunk: Buffer) => {
    process.stdout.write(chunk);
    if (!announced && /Ready on/i.test(chunk.toString())) {
      announced = true;
      log(`Plant Community is running at http://127.0.0.1:${port} (health: http://127.0.0.1:${port}/api/v1/health/, docs: http://127.0.0.1:${port}/api/docs)`);
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
  for (const child of children) child.kill("SIGTERM");
  process.exit(1);
});
