/**
 * scripts/local-stack.ts deletes a stack's STATE_DIR only once start.ts's reaper
 * (scripts/start-reaper.mjs) has stopped what start.ts left running — wrangler dev and workerd
 * may take seconds to stop after start.ts has ended, writing into the folder as they go. Played
 * with plain Node processes instead of the stack: a stand-in for start.ts spawns the real reaper
 * the way start.ts does, and a "wrangler" that takes a second to stop and writes into STATE_DIR
 * as it stops; the stand-in ends without stopping it, as start.ts does when `tsx` kills it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { stopStack } from "../scripts/local-stack";
import { groupAlive, reaperFinished, reaperPidFile } from "../scripts/stack-reaper";

const REAPER = join(import.meta.dirname, "..", "scripts", "start-reaper.mjs");

/** A "wrangler" that, told to stop, takes a second and writes into STATE_DIR before it exits. */
const SLOW_WRANGLER = `
const { mkdirSync, writeFileSync } = require("node:fs");
const dir = process.argv[1] + "/v3";
process.on("SIGTERM", () => setTimeout(() => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(dir + "/last-write", "flushed on exit");
  process.exit(0);
}, 1000));
setInterval(() => {}, 1000);
`;

/** start.ts's part: the reaper spawned in a session of its own, its pid recorded, told of the group. */
const START_STAND_IN = `
const { spawn } = require("node:child_process");
const { writeFileSync } = require("node:fs");
const [reaperScript, stateDir, pidFile, slow] = process.argv.slice(1);
const reaper = spawn(process.execPath, [reaperScript, String(process.pid), stateDir + "/npm-start.json", stateDir + "/start.log", pidFile], {
  stdio: ["pipe", "ignore", "ignore"],
  detached: true,
});
writeFileSync(pidFile, String(reaper.pid));
const wrangler = spawn(process.execPath, ["-e", slow, stateDir], { stdio: "ignore", detached: true });
reaper.stdin.write(wrangler.pid + "\\n");
process.stdout.write("ready " + wrangler.pid + "\\n");
// Ends at once on SIGTERM, without stopping its child: only the reaper stops it.
process.on("SIGTERM", () => process.exit(0));
setInterval(() => {}, 1000);
`;

const leftovers: number[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const pgid of leftovers.splice(0)) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {}
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "stack-reaper-test-"));
  dirs.push(dir);
  return dir;
}

/** The stand-in for start.ts on `dir`, once it has started its reaper and "wrangler". */
async function startStandIn(dir: string): Promise<{ child: ChildProcess; wrangler: number }> {
  const child = spawn(process.execPath, ["-e", START_STAND_IN, REAPER, dir, reaperPidFile(dir), SLOW_WRANGLER], {
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  leftovers.push(child.pid!);
  const wrangler = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", () => reject(new Error(`the stand-in exited early: ${out}`)));
  });
  leftovers.push(wrangler);
  return { child, wrangler };
}

describe("stopping a local stack", () => {
  it("deletes STATE_DIR only after the reaper has stopped what start.ts left running", async () => {
    const dir = stateDir();
    const { child, wrangler } = await startStandIn(dir);
    expect(existsSync(reaperPidFile(dir))).toBe(true);

    const began = Date.now();
    await stopStack(child, dir, 5_000, 10_000);
    // The stand-in ended at once; the stop waited for the reaper, which waited for "wrangler".
    expect(Date.now() - began).toBeGreaterThanOrEqual(900);
    expect(groupAlive(wrangler)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    // Nothing is left to write into the folder (or make it again) afterwards.
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(dir)).toBe(false);
  });

  it("waits for a reaper that does not finish no longer than its bound", async () => {
    const dir = stateDir();
    // A "reaper" that never ends and never removes its file.
    const stuck = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore", detached: true });
    leftovers.push(stuck.pid!);
    writeFileSync(reaperPidFile(dir), String(stuck.pid));
    const began = Date.now();
    expect(await reaperFinished(dir, 300)).toBe(false);
    expect(Date.now() - began).toBeGreaterThanOrEqual(300);
    expect(Date.now() - began).toBeLessThan(2_000);
  });

  it("does not wait for a reaper that died without removing its file, or for none", async () => {
    const dir = stateDir();
    expect(await reaperFinished(dir, 5_000)).toBe(true);
    const gone = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    await new Promise((r) => gone.once("exit", r));
    writeFileSync(reaperPidFile(dir), String(gone.pid));
    const began = Date.now();
    expect(await reaperFinished(dir, 5_000)).toBe(true);
    expect(Date.now() - began).toBeLessThan(1_000);
  });
});
