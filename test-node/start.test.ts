/**
 * `npm start` as a newcomer meets it (issue 12): a few summary lines before the URL and the
 * rest in a log file, no colour codes when the output is not a terminal, a clear message naming
 * the setting when a port is taken, a non-zero exit when wrangler fails, and Ctrl-C stopping
 * everything it started even when the script is too busy to do it itself. And the launcher tests
 * and benchmarks start it with (scripts/local-stack.ts): its start-up limit and what its failure says.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, STARTUP_TIMEOUT_MS, startStack, startupTimeoutMs } from "../scripts/local-stack";

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

/** Whether `port` is free to listen on (false: something still holds it). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Processes whose command line names `stateDir` (wrangler runs with --persist-to it), with their process groups. */
function processesOf(stateDir: string): { pid: number; pgid: number; args: string }[] {
  const found: { pid: number; pgid: number; args: string }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ");
      if (!args.includes(stateDir)) continue;
      // /proc/<pid>/stat: "pid (comm) state ppid pgrp …"; comm may hold spaces, so read after its ")".
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      found.push({ pid: Number(entry), pgid: Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]), args });
    } catch {} // exited meanwhile
  }
  return found;
}

/** Waits up to `ms` for `check` to hold; its last answer. */
async function eventually(check: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await check()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  return check();
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
    // Stopped (SIGTERM, as Ctrl-C's SIGINT), it says it is gone — and it is: wrangler's workerd,
    // in wrangler's process group, outlives wrangler itself, so the reaper found it still running.
    expect(run.output).toContain("[start] stopped: everything it started has exited");
    expect(run.output).not.toContain("still ran when the script ended");
  });

  it.each(["the terminal's Ctrl-C (its process group)", "npm alone"] as const)(
    "stops everything it started when the script is too busy to answer the signal: %s",
    { timeout: 330_000 },
    async (target) => {
      // `npm start` exactly as the README runs it, in a process group of its own like a terminal's
      // foreground job.
      const [port, emulatorPort] = [await freePort(), await freePort()];
      const stateDir = mkdtempSync(join(tmpdir(), "start-test-"));
      stateDirs.push(stateDir);
      const npm = spawn("npm", ["start"], {
        cwd: root,
        env: { ...process.env, STATE_DIR: stateDir, PORT: String(port), EMULATOR_PORT: String(emulatorPort) },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      let output = "";
      npm.stdout.on("data", (c: Buffer) => (output += c.toString()));
      npm.stderr.on("data", (c: Buffer) => (output += c.toString()));
      // "close": every process holding its output (npm's children and theirs) has ended.
      const closed = new Promise<void>((resolve) => npm.once("close", () => resolve()));
      try {
        expect(await eventually(() => output.includes("is running at") || npm.exitCode !== null, 240_000), output).toBe(true);
        expect(output).toContain("is running at");
        // The script (its pid is in the lock file) is busy — here, stopped — for half a second while
        // the signal arrives: under `tsx`, which kills a script that does not acknowledge a signal
        // within 30 ms, that is what a loaded machine does to it.
        const script = (JSON.parse(readFileSync(join(stateDir, "npm-start.json"), "utf8")) as { pid: number }).pid;
        process.kill(script, "SIGSTOP");
        process.kill(target === "npm alone" ? npm.pid! : -npm.pid!, "SIGINT");
        await new Promise((r) => setTimeout(r, 500));
        try {
          process.kill(script, "SIGCONT");
        } catch {} // killed meanwhile
        await Promise.race([closed, new Promise((r) => setTimeout(r, 60_000))]);
        expect(await eventually(() => processesOf(stateDir).length === 0, 15_000), JSON.stringify(processesOf(stateDir))).toBe(true);
        for (const p of [port, emulatorPort]) expect(await eventually(() => canListen(p), 15_000), `port ${p} is still in use`).toBe(true);
        expect(output).toContain("[start] stopped: everything it started has exited");
        expect(existsSync(join(stateDir, "npm-start.json"))).toBe(false);
      } finally {
        for (const left of processesOf(stateDir)) {
          try {
            process.kill(-left.pgid, "SIGKILL");
          } catch {}
        }
        try {
          process.kill(-npm.pid!, "SIGKILL");
        } catch {}
      }
    },
  );

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

describe("the stack launcher (scripts/local-stack.ts)", () => {
  /** Runs `body` with STACK_STARTUP_TIMEOUT_MS set to `value`, then restores it. */
  async function withLimit<T>(value: string, body: () => Promise<T>): Promise<T> {
    const before = process.env.STACK_STARTUP_TIMEOUT_MS;
    process.env.STACK_STARTUP_TIMEOUT_MS = value;
    try {
      return await body();
    } finally {
      if (before === undefined) delete process.env.STACK_STARTUP_TIMEOUT_MS;
      else process.env.STACK_STARTUP_TIMEOUT_MS = before;
    }
  }

  it("takes its start-up limit from STACK_STARTUP_TIMEOUT_MS, and the default when it is unset or empty", () => {
    expect(startupTimeoutMs({})).toBe(STARTUP_TIMEOUT_MS);
    expect(startupTimeoutMs({ STACK_STARTUP_TIMEOUT_MS: "" })).toBe(STARTUP_TIMEOUT_MS);
    expect(startupTimeoutMs({ STACK_STARTUP_TIMEOUT_MS: " 600000 " })).toBe(600_000);
    // Room for a cold start on a loaded 2-core machine (more than two minutes under a load of ~12).
    expect(STARTUP_TIMEOUT_MS).toBeGreaterThanOrEqual(300_000);
  });

  it.each(["0", "-1", "1.5", "10m", "1e6", "soon"])("refuses STACK_STARTUP_TIMEOUT_MS=%s, naming the variable", (value) => {
    expect(() => startupTimeoutMs({ STACK_STARTUP_TIMEOUT_MS: value })).toThrow(
      `STACK_STARTUP_TIMEOUT_MS must be a whole number of milliseconds above 0 (e.g. 600000 for 10 minutes), not "${value}"`,
    );
  });

  it("refuses a bad limit before it starts anything", { timeout: 10_000 }, async () => {
    const started = Date.now();
    await expect(withLimit("soon", () => startStack({ purpose: "launcher-test" }))).rejects.toThrow("STACK_STARTUP_TIMEOUT_MS must be");
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("fails at the limit set in STACK_STARTUP_TIMEOUT_MS, saying what it waited for, the last step and where the log is", {
    timeout: 90_000,
  }, async () => {
    const started = Date.now();
    const error = await withLimit("3000", () => startStack({ purpose: "launcher-test" })).then(
      () => null,
      (err: Error) => err,
    );
    expect(error).toBeInstanceOf(Error);
    const message = error!.message;
    const health =
      /^The stack did not answer 200 at http:\/\/127\.0\.0\.1:(\d+)\/api\/v1\/health\/ within 3 s \(STACK_STARTUP_TIMEOUT_MS; a slow or loaded machine may need more\)\. /.exec(
        message,
      );
    expect(health, message).not.toBeNull();
    expect(message).toMatch(/Last health check: [^;]+; start\.ts's last step: "[^"]+" \(wrangler dev had not said it was ready\)\./);
    // The step it was at when the limit came, not the stop that followed it.
    expect(message).not.toMatch(/last step: "[^"]*stop/);
    const log = /Full log: (\S+\/plant-community-launcher-test-\d+\.log)\n/.exec(message)?.[1];
    expect(log, message).toBeDefined();
    expect(existsSync(log!)).toBe(true);
    rmSync(log!, { force: true });
    rmSync(`${log}.terminal`, { force: true });
    // Stopped at the limit (plus the stop's own bounded wait), not at a default it ignored.
    expect(Date.now() - started).toBeLessThan(40_000);
    expect(await eventually(() => canListen(Number(health![1])), 15_000)).toBe(true);
  });

  it("says start.ts exited, with its own reason, when the stack cannot start at all", { timeout: 90_000 }, async () => {
    const port = await freePort();
    const taken = await occupy(port);
    try {
      // start.ts itself is told to use a port that is taken: it stops at once.
      const error = await startStack({ purpose: "launcher-test", env: { PORT: String(port) } }).then(
        () => null,
        (err: Error) => err,
      );
      expect(error).toBeInstanceOf(Error);
      expect(error!.message).toMatch(
        /^scripts\/start\.ts exited \(code 1, signal null\) before http:\/\/127\.0\.0\.1:\d+\/api\/v1\/health\/ answered 200\./,
      );
      expect(error!.message).not.toContain("STACK_STARTUP_TIMEOUT_MS");
      expect(error!.message).toContain(`port ${port} is already in use (PORT)`);
      for (const file of error!.message.match(/\S+\/plant-community-launcher-test-\d+\.log(\.terminal)?/g) ?? [])
        rmSync(file, { force: true });
    } finally {
      taken.close();
    }
  });
});
