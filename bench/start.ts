/**
 * `npm run bench:start` — how long `npm start` takes to a healthy service (issue 12: a warm start
 * ≤ 10 s), and how many lines it prints before its URL (≤ 30). One cold start (an empty state
 * folder: migrations and the seed from scratch) and three warm ones (the same folder again).
 * Figures never fail the run; the exit code is 1 only when a start does not become healthy.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../scripts/local-stack";

const root = join(import.meta.dirname, "..");

interface StartRun {
  seconds: number;
  linesBeforeUrl: number;
}

async function startOnce(stateDir: string): Promise<StartRun> {
  const [port, emulatorPort] = [await freePort(), await freePort()];
  const started = performance.now();
  const child = spawn(join(root, "node_modules", ".bin", "tsx"), ["scripts/start.ts"], {
    cwd: root,
    env: { ...process.env, PORT: String(port), EMULATOR_PORT: String(emulatorPort), STATE_DIR: stateDir },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${out}`);
      if (performance.now() - started > 180_000) throw new Error(`not healthy after 180 s:\n${out}`);
      const ok = await fetch(`http://127.0.0.1:${port}/api/v1/health/`, { signal: AbortSignal.timeout(2000) })
        .then((r) => r.status === 200)
        .catch(() => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (performance.now() - started) / 1000;
    const lines = out.split("\n");
    const urlLine = lines.findIndex((l) => l.includes("is running at"));
    return { seconds, linesBeforeUrl: urlLine };
  } finally {
    process.kill(-child.pid!, "SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
}

const stateDir = mkdtempSync(join(tmpdir(), "bench-start-"));
try {
  const cold = await startOnce(stateDir);
  const warm: StartRun[] = [];
  for (let i = 0; i < 3; i++) warm.push(await startOnce(stateDir));
  const sorted = warm.map((w) => w.seconds).sort((a, b) => a - b);
  console.log(`cold start to healthy: ${cold.seconds.toFixed(1)} s (${cold.linesBeforeUrl} lines before the URL)`);
  console.log(
    `warm start to healthy: median ${sorted[1]!.toFixed(1)} s, runs ${warm.map((w) => w.seconds.toFixed(1)).join(" / ")} s ` +
      `(target ≤ 10 s; ${Math.max(...warm.map((w) => w.linesBeforeUrl))} lines before the URL, target ≤ 30)`,
  );
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
} finally {
  rmSync(stateDir, { recursive: true, force: true });
}
