/**
 * docs/api.md § First steps with curl works as written: its shell block, run by bash against a
 * real `npm start` stack (its ports put in for 8787 and 8790), walks from sign-up to deletion.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../scripts/local-stack";
import { ensureChromium } from "./browser";

const guide = readFileSync(join(import.meta.dirname, "..", "docs", "api.md"), "utf8");

/** The first ```bash block under the section's heading. */
function firstSteps(): string {
  const section = guide.slice(guide.indexOf("## First steps with curl"));
  const block = /```bash\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error("docs/api.md § First steps with curl has no bash block");
  return block[1]!;
}

let stack: Stack | undefined;
const workDir = mkdtempSync(join(tmpdir(), "first-steps-"));

beforeAll(async () => {
  ensureChromium(); // the walk draws its photo with it
  stack = await startStack({ purpose: "first-steps" });
});

afterAll(async () => {
  await stack?.stop();
  rmSync(workDir, { recursive: true, force: true });
});

describe("docs/api.md § First steps with curl", () => {
  it("runs as written, from sign-up to the account's deletion", { timeout: 180_000 }, () => {
    const script = firstSteps()
      .replaceAll("127.0.0.1:8787", `127.0.0.1:${stack!.port}`)
      .replaceAll("127.0.0.1:8790", `127.0.0.1:${stack!.emulatorPort}`);
    // -e: a command that fails (a jq that cannot parse an error page, a missing file) stops the walk.
    const run = spawnSync("bash", ["-e", "-o", "pipefail", "-c", script], { cwd: workDir, encoding: "utf8", timeout: 150_000 });
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.status, output).toBe(0);
    expect(run.stdout).toContain("Registration successful");
    expect(run.stdout).toContain("Your email address is confirmed.");
    expect(run.stdout).toMatch(/"summary": ".+ — \d+% confidence/);
    expect(run.stdout).toContain('"plant_count": 1');
    expect(run.stdout).toContain("BEGIN:VCALENDAR");
    expect(run.stdout).toContain('"title": "Yellow leaves"');
    expect(run.stdout).toContain('"slug": "december-in-the-garden"');
    // The reminder due a minute ago: in the list after the cron run, and pushed.
    expect(run.stdout.match(/"type": "care_reminder"/g)?.length, output).toBe(2);
    expect(run.stdout).toContain('"two_factor"'); // the export's keys
    expect(run.stdout).toContain("Your account was deleted.");
  });
});
