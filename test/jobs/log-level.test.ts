/**
 * LOG_LEVEL governs the queue consumers as it governs requests. They made their loggers at the
 * default level, so a deployment set to `warn` still wrote an `info` line for every job; and in
 * the tests (LOG_LEVEL `warn`), a job that ran after its file's last test logged while vitest
 * closed the file, which failed a run with every test green.
 */
import { createExecutionContext, createMessageBatch, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";

/** The lines the queue consumer writes to the console for one job whose request does not exist. */
async function linesForUnknownRequest(logLevel: string): Promise<string[]> {
  const lines: string[] = [];
  for (const method of ["log", "info", "warn", "error"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
  }
  const body = { type: "identify", request_id: crypto.randomUUID(), user_id: crypto.randomUUID() };
  const batch = createMessageBatch("plant-identify", [{ id: `m-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body }]);
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, LOG_LEVEL: logLevel }, ctx);
  await waitOnExecutionContext(ctx);
  return lines;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("the queue consumer's logger", () => {
  it("writes its info line (a job for an unknown request, acked) at LOG_LEVEL info", async () => {
    const lines = await linesForUnknownRequest("info");
    expect(lines.some((l) => l.includes('"level":"info"') && l.includes("acking"))).toBe(true);
  });

  it("writes nothing below warn at LOG_LEVEL warn", async () => {
    expect(await linesForUnknownRequest("warn")).toEqual([]);
  });
});
