/**
 * `npm start` as a newcomer meets it (issue 12): a few summary lines before the URL and the
 * rest in a log file, no colour codes when the output is not a terminal, a clear message naming
 * the setting when a port is taken, and a non-zero exit when wrangler fails.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../scripts/local-stack";

const root = join(import.meta.dirname, "..");
const stateDirs: string[] = [];

afterAll(() => {
  for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
});

interface Started {
  output: string;
  exitCode: number | null;
  stateDir: string;
}

interface Running {
  output(): string;
  stateDir: string;
  /** Waits until `until(output)` holds or it exits by itself; then stops it if it still runs. */
  stopWhen(until: (output: string) => boolean, timeoutMs?: number): Promise<Started>;
}

/** Starts scripts/start.ts in `stateDir` (its own fresh one unless given). */
function launch(env: Record<string, string>, stateDir = mkdtempSync(join(tmpdir(), "start-test-"))): Running {
  stateDirs.push(stateDir);
  const child = spawn(join(root, "node_modules", ".bin", "tsx"), ["scripts/start.ts"], {
    cwd: root,
    env: { ...process.env, STATE_DIR: stateDir, ...env },
    stdio: ["ignore", "pipe", "pipe"], // not a terminal
    detached: true,
  });
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  // "close", not "exit": the output written as it stops is read too.
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  return {
    output: () => output,
    stateDir,
    async stopWhen(until, timeoutMs = 150_000) {
      const deadline = Date.now() + timeoutMs;
      while (child.exitCode === null && !until(output) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (child.exitCode === null) process.kill(-child.pid!, "SIGTERM");
      const code = await exited;
      return { output, exitCode: code, stateDir };
    },
  };
}

/** Runs scripts/start.ts until `until(output)` holds (then stops it) or it exits by itself. */
function start(env: Record<string, string>, until: (output: string) => boolean, timeoutMs = 150_000, stateDir?: string): Promise<Started> {
  return launch(env, stateDir).stopWhen(until, timeoutMs);
}

function occupy(port: number): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

describe("npm start", () => {
  it.each(["PORT", "EMULATOR_PORT"] as const)(
    "names %s when that port is taken, and exits non-zero",
    { timeout: 90_000 },
    async (setting) => {
      const [port, emulatorPort] = [await freePort(), await freePort()];
      const takenPort = setting === "PORT" ? port : emulatorPort;
      const taken = await occupy(takenPort);
      // As if a stack were running in this state folder: its log must survive the refused start.
      const stateDir = mkdtempSync(join(tmpdir(), "start-test-"));
      writeFileSync(join(stateDir, "start.log"), "the running stack's log\n");
      try {
        const run = await start({ PORT: String(port), EMULATOR_PORT: String(emulatorPort) }, () => false, 60_000, stateDir);
        expect(run.exitCode).not.toBe(0);
        expect(run.output).toMatch(new RegExp(`port ${takenPort} is already in use \\(${setting}\\)`));
        expect(readFileSync(join(stateDir, "start.log"), "utf8")).toBe("the running stack's log\n");
        // The port it suggests is free and is not the stack's other port.
        const suggested = Number(new RegExp(`${setting}=(\\d+) npm start`).exec(run.output)?.[1]);
        expect(suggested, run.output).toBeGreaterThan(takenPort);
        expect(suggested).not.toBe(setting === "PORT" ? emulatorPort : port);
      } finally {
        taken.close();
      }
    },
  );

  it("names both ports when both are taken, and suggests a free one for each", { timeout: 90_000 }, async () => {
    const [port, emulatorPort] = [await freePort(), await freePort()];
    const taken = [await occupy(port), await occupy(emulatorPort)];
    try {
      const run = await start({ PORT: String(port), EMULATOR_PORT: String(emulatorPort) }, () => false, 60_000);
      expect(run.exitCode).not.toBe(0);
      expect(run.output).toContain(`ports ${port} (PORT) and ${emulatorPort} (EMULATOR_PORT) are already in use`);
      const suggested = /PORT=(\d+) EMULATOR_PORT=(\d+) npm start/.exec(run.output);
      expect(suggested, run.output).not.toBeNull();
      const [newPort, newEmulatorPort] = [Number(suggested![1]), Number(suggested![2])];
      expect(new Set([port, emulatorPort, newPort, newEmulatorPort]).size).toBe(4);
    } finally {
      for (const server of taken) server.close();
    }
  });

  it("refuses a second npm start on the same STATE_DIR, even on other ports, naming the running one", { timeout: 250_000 }, async () => {
    const first = launch({ PORT: String(await freePort()), EMULATOR_PORT: String(await freePort()) });
    try {
      const deadline = Date.now() + 150_000;
      while (!first.output().includes("is running at") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(first.output()).toContain("is running at");
      const log = readFileSync(join(first.stateDir, "start.log"), "utf8");
      const second = await start(
        { PORT: String(await freePort()), EMULATOR_PORT: String(await freePort()) },
        (out) => out.includes("is running at"),
        60_000,
        first.stateDir,
      );
      expect(second.exitCode).not.toBe(0);
      expect(second.output).toMatch(/another npm start \(pid \d+\) is already running at http:\/\/127\.0\.0\.1:\d+ on this STATE_DIR/);
      expect(readFileSync(join(first.stateDir, "start.log"), "utf8").startsWith(log)).toBe(true);
    } finally {
      await first.stopWhen(() => true);
    }
    // Once it has stopped, the folder is free again.
    expect(existsSync(join(first.stateDir, "npm-start.json"))).toBe(false);
  });

  it("prints a short summary before its URL, no colour codes when piped, and the rest to its log file", { timeout: 200_000 }, async () => {
    const [port, emulatorPort] = [await freePort(), await freePort()];
    const run = await start({ PORT: String(port), EMULATOR_PORT: String(emulatorPort) }, (out) => out.includes("is running at"));
    const lines = run.output.split("\n");
    const url = lines.findIndex((l) => l.includes(`is running at http://127.0.0.1:${port}`));
    expect(url, run.output).toBeGreaterThan(0);
    expect(url).toBeLessThanOrEqual(30);
    // Where to go next: the pages and the local outbox.
    expect(run.output).toContain(
      `pages: http://127.0.0.1:${port}/identify/ and /editor/; the mail it sends: http://127.0.0.1:${emulatorPort}/email/emails`,
    );
    expect(run.output).not.toMatch(/\u001b\[/);
    const log = readFileSync(join(run.stateDir, "start.log"), "utf8");
    expect(log).toMatch(/Migrations to be applied|No migrations to apply/); // wrangler's own output went there
    expect(log.split("\n").length).toBeGreaterThan(lines.length);
    // Stopped (SIGTERM, as Ctrl-C's SIGINT), it says it is gone.
    expect(run.output).toContain("[start] stopped: everything it started has exited");
  });

  it("exits non-zero, with wrangler's last lines, when wrangler dev fails", { timeout: 200_000 }, async () => {
    const [port, emulatorPort] = [await freePort(), await freePort()];
    // An unknown log level makes wrangler dev refuse to start: a real wrangler failure.
    const run = await start({ PORT: String(port), EMULATOR_PORT: String(emulatorPort), WRANGLER_LOG_LEVEL: "not-a-level" }, (out) =>
      out.includes("is running at"),
    );
    expect(run.output).not.toContain("is running at");
    expect(run.output).toContain("wrangler dev exited with");
    expect(run.exitCode).not.toBe(0);
    expect(existsSync(join(run.stateDir, "start.log"))).toBe(true);
  });
});
