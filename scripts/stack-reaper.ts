/**
 * How whoever started scripts/start.ts learns that its reaper (scripts/start-reaper.mjs) is done.
 * start.ts writes the reaper's pid to REAPER_PID_FILE in its STATE_DIR as soon as it has spawned
 * it; the reaper removes that file once every process group it was told of has exited (up to
 * 5 s of SIGTERM, then SIGKILL), which can be well after start.ts itself has ended. Until then
 * wrangler dev and workerd may still be writing into STATE_DIR, so scripts/local-stack.ts waits
 * for it before deleting the folder. Also the process-group calls both scripts use.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const REAPER_PID_FILE = "start-reaper.pid";

/** Whether any process of group `pgid` still runs (its leader may have exited before the rest). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, another user's (not ours, but not gone either).
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Sends `signal` to every process of group `pgid`; a group already gone is left be. */
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is already gone.
  }
}

/** The file in `stateDir` that names the reaper while it runs. */
export function reaperPidFile(stateDir: string): string {
  return join(stateDir, REAPER_PID_FILE);
}

/** Records the reaper `pid` start.ts just spawned for `stateDir`. */
export function recordReaper(stateDir: string, pid: number): void {
  writeFileSync(reaperPidFile(stateDir), String(pid));
}

/** The running reaper's pid, or null: no file (it finished, or never ran) or its process is gone. */
function runningReaper(stateDir: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(reaperPidFile(stateDir), "utf8"));
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: it exists (another user's); ESRCH: it died without removing its file.
    return (err as NodeJS.ErrnoException).code === "EPERM" ? pid : null;
  }
}

/**
 * Waits until `stateDir`'s reaper has finished, at most `timeoutMs`: true when it has (or none
 * ran), false when it still ran at the deadline.
 */
export async function reaperFinished(stateDir: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (runningReaper(stateDir) !== null) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}
