// Stops what scripts/start.ts started when start.ts itself ends without doing it.
//
// `npm start` runs start.ts under the `tsx` command, which runs the script in a child process and
// relays SIGINT/SIGTERM to it: when the child has not acknowledged the signal within 30 ms (a busy
// moment on a loaded machine), tsx kills it with SIGKILL. start.ts then never stops wrangler dev
// and workerd, which run in process groups of their own (so that each can be stopped whole), and
// they keep the stack's ports. start.ts runs this script beside it, in a session of its own (so
// a terminal's Ctrl-C does not reach it), and tells it on stdin the process groups it starts:
// one number a line, "-N" once group N's leader has exited. When stdin ends — start.ts has
// exited, however it ended — every group still alive is sent SIGTERM, and SIGKILL after 5 s.
// Once they are gone it removes its pid file (written by start.ts): whoever deletes STATE_DIR
// after start.ts has ended (scripts/local-stack.ts) waits for that (scripts/stack-reaper.ts).
// Plain JavaScript run by node itself: nothing to compile, nothing loaded but node's own modules.
//
// Arguments: start.ts's pid, its lock file, its log file, the pid file start.ts wrote for it.
import { appendFileSync, readFileSync, rmSync } from "node:fs";

const [parentPid, lockFile, logFile, pidFile] = process.argv.slice(2);
const GRACE_MS = 5000;
const groups = new Set();

/** Whether any process of group `pgid` is still alive. */
function alive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, another user's (it cannot be ours, but it is not gone either).
    return err.code === "EPERM";
  }
}

function signal(pgid, sig) {
  try {
    process.kill(-pgid, sig);
  } catch {}
}

function say(msg) {
  const line = `[start] ${msg}\n`;
  try {
    process.stdout.write(line);
  } catch {}
  try {
    if (logFile) appendFileSync(logFile, line);
  } catch {}
}

let pending = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  pending += chunk;
  const lines = pending.split("\n");
  pending = lines.pop() ?? "";
  for (const line of lines) {
    const n = Number(line);
    if (!Number.isInteger(n) || n === 0) continue;
    // A group whose leader exited is forgotten once it is empty: its number may be reused later
    // by a process group that is none of ours.
    if (n > 0) groups.add(n);
    else if (!alive(-n)) groups.delete(-n);
  }
});
process.stdin.on("end", () => void reap());
process.stdin.on("error", () => void reap());

let reaping = false;
async function reap() {
  if (reaping) return;
  reaping = true;
  const left = [...groups].filter(alive);
  if (left.length > 0) {
    for (const pgid of left) signal(pgid, "SIGTERM");
    const deadline = Date.now() + GRACE_MS;
    while (left.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const killed = left.filter(alive);
    for (const pgid of killed) signal(pgid, "SIGKILL");
    // Gone, not merely killed, when this says so: their ports are free once it has exited.
    const killDeadline = Date.now() + 2000;
    while (killed.some(alive) && Date.now() < killDeadline) await new Promise((r) => setTimeout(r, 50));
    const groupsLeft = `${left.length} process group${left.length === 1 ? "" : "s"}`;
    say(
      `stopped: everything it started has exited (${groupsLeft} of it still ran when the script ended, and ${left.length === 1 ? "was" : "were"} ` +
        `stopped after it${killed.length > 0 ? `; ${killed.length} killed after 5 s` : ""})`,
    );
  }
  // The lock a killed start.ts could not remove (a later npm start would see it is stale anyway).
  try {
    if (JSON.parse(readFileSync(lockFile, "utf8")).pid === Number(parentPid)) rmSync(lockFile);
  } catch {}
  // Last: everything it started is gone, so STATE_DIR may be deleted now.
  try {
    if (pidFile && Number(readFileSync(pidFile, "utf8")) === process.pid) rmSync(pidFile);
  } catch {}
  process.exit(0);
}
