// The synchronous identify/'s deadline for the second provider (IDENTIFY_SECOND_PROVIDER_GRACE_MS)
// and the one log line per failed provider call.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app";
import { getConfig } from "../../src/config";
import { makePng, makeWebp } from "../helpers/images";
import { freshIp } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";

const emulators = useEmulators();
const PATH = "/api/v1/plant-identification/identify/";

type Status = { status: "answered" | "failed" | "pending" | "skipped"; error?: string; reason?: string };
interface Body {
  success: boolean;
  code?: string;
  suggestions?: { scientific_name: string; sources: string[] }[];
  cached?: { plant_id: boolean; plantnet: boolean };
  providers?: { plant_id: Status; plantnet: Status };
}

let n = 0;
const photo = () => makePng(320, 240, { seed: `grace-${++n}-${Math.random()}` });

/**
 * One identification with some settings overridden. Returns as soon as the response is there
 * (`elapsedMs`), and `background()` waits for what the Worker left running after it.
 */
async function identify(bytes: Uint8Array, overrides: Record<string, string> = {}) {
  const ctx = createExecutionContext();
  const f = new FormData();
  f.append("image", new File([bytes], "leaf.png", { type: "image/png" }));
  const started = Date.now();
  const res = await createApp().request(
    PATH,
    { method: "POST", body: f, headers: { "CF-Connecting-IP": freshIp() } },
    { ...env, ...overrides },
    ctx,
  );
  const body = (await res.json()) as Body;
  const elapsedMs = Date.now() - started;
  return { res, body, elapsedMs, background: () => waitOnExecutionContext(ctx) };
}

const sourcesOf = (body: Body) => new Set(body.suggestions!.flatMap((s) => s.sources));

let warn: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  warn = vi.spyOn(console, "warn");
});
afterEach(() => warn.mockRestore());

/** The structured "provider call failed" lines written so far. */
function failureLines(): Record<string, unknown>[] {
  return warn.mock.calls
    .map((args: unknown[]) => {
      try {
        return JSON.parse(String(args[0])) as Record<string, unknown>;
      } catch {
        return null;
      }
    })
    .filter((line: Record<string, unknown> | null): line is Record<string, unknown> => line?.msg === "provider call failed");
}

describe("the second provider's deadline", () => {
  it("answers with Pl@ntNet when Plant.id hangs, marks Plant.id pending, and the hang ends in a logged timeout", async () => {
    emulators.plantId.setMode({ failure: "hang" });
    // Plant.id's timeout shortened from 35 s to 8 s so the background call ends inside the test;
    // the answer must still come from the 2.5 s grace (wrangler.toml's default), long before it.
    const { res, body, elapsedMs, background } = await identify(await photo(), { PLANT_ID_TIMEOUT_MS: "8000" });
    expect(res.status).toBe(200);
    expect(body.success).toBe(true);
    expect(body.providers).toEqual({ plant_id: { status: "pending" }, plantnet: { status: "answered" } });
    expect([...sourcesOf(body)]).toEqual(["plantnet"]);
    // "pending" (not "failed") proves it answered before Plant.id's 8 s timeout, on any machine.
    expect(elapsedMs).toBeGreaterThanOrEqual(2_400);

    await background();
    const [line, ...more] = failureLines();
    expect(more).toEqual([]);
    expect(line).toMatchObject({ level: "warn", provider: "plant_id", kind: "timeout", request_id: expect.any(String) });
    expect(line!.latency_ms).toBeGreaterThanOrEqual(7_500);
  }, 30_000);

  it("lets a slow Plant.id finish in the background so the same photo is complete the next time", async () => {
    const bytes = await photo();
    emulators.plantId.setMode({ latencyMs: 3_000 });
    const first = await identify(bytes, { IDENTIFY_SECOND_PROVIDER_GRACE_MS: "300" });
    expect(first.body.providers?.plant_id).toEqual({ status: "pending" });
    expect([...sourcesOf(first.body)]).toEqual(["plantnet"]);
    // "pending" proves it did not wait the 3 s for Plant.id (that would be "answered").
    // Nothing cached yet: Plant.id is still answering.
    await first.background();
    expect(emulators.plantId.calls).toBe(1);

    emulators.plantId.setMode({ latencyMs: 0 });
    const second = await identify(bytes, { IDENTIFY_SECOND_PROVIDER_GRACE_MS: "300" });
    await second.background();
    expect(second.body.providers).toEqual({ plant_id: { status: "answered" }, plantnet: { status: "answered" } });
    expect(second.body.cached).toEqual({ plant_id: true, plantnet: true });
    expect(sourcesOf(second.body)).toEqual(new Set(["plant_id", "plantnet"]));
    expect(emulators.plantId.calls).toBe(1);
    expect(failureLines()).toEqual([]);
  }, 30_000);

  it("waits for both when both are fast", async () => {
    const { body } = await identify(await photo());
    expect(body.providers).toEqual({ plant_id: { status: "answered" }, plantnet: { status: "answered" } });
    expect(body.suggestions![0]!.sources).toEqual(["plant_id", "plantnet"]);
  });

  it("respects the setting: a grace longer than the slower provider gets both answers", async () => {
    emulators.plantId.setMode({ latencyMs: 1_500 });
    const { body, elapsedMs } = await identify(await photo(), { IDENTIFY_SECOND_PROVIDER_GRACE_MS: "6000" });
    expect(body.providers).toEqual({ plant_id: { status: "answered" }, plantnet: { status: "answered" } });
    expect(elapsedMs).toBeGreaterThanOrEqual(1_400);
  });

  it("starts no grace on a failure: the provider left is the only hope and keeps its own timeout", async () => {
    emulators.plantnet.setMode({ failure: "500" });
    emulators.plantId.setMode({ latencyMs: 1_500 });
    const { body } = await identify(await photo(), { IDENTIFY_SECOND_PROVIDER_GRACE_MS: "100" });
    expect(body.success).toBe(true);
    expect(body.providers).toEqual({ plant_id: { status: "answered" }, plantnet: { status: "failed", error: "server" } });
    expect([...sourcesOf(body)]).toEqual(["plant_id"]);
  });

  it("says a provider that was not asked was skipped", async () => {
    const webp = makeWebp("VP8L", 320, 240);
    const ctx = createExecutionContext();
    const f = new FormData();
    f.append("image", new File([webp], "leaf.webp", { type: "image/webp" }));
    const res = await createApp().request(PATH, { method: "POST", body: f, headers: { "CF-Connecting-IP": freshIp() } }, env, ctx);
    await waitOnExecutionContext(ctx);
    const body = (await res.json()) as Body;
    expect(body.providers?.plantnet).toEqual({ status: "skipped", reason: expect.stringContaining("JPEG and PNG") });
    expect(body.providers?.plant_id).toEqual({ status: "answered" });
  });

  it("reads the setting strictly: default 2500, 0 allowed, anything else refused by name", () => {
    const { IDENTIFY_SECOND_PROVIDER_GRACE_MS: _, ...without } = env;
    expect(getConfig({ ...without } as typeof env).IDENTIFY_SECOND_PROVIDER_GRACE_MS).toBe(2_500);
    expect(getConfig({ ...env, IDENTIFY_SECOND_PROVIDER_GRACE_MS: "0" }).IDENTIFY_SECOND_PROVIDER_GRACE_MS).toBe(0);
    for (const bad of ["soon", "-1", "2.5"]) {
      expect(() => getConfig({ ...env, IDENTIFY_SECOND_PROVIDER_GRACE_MS: bad })).toThrow(/IDENTIFY_SECOND_PROVIDER_GRACE_MS/);
    }
  });
});

describe("provider failure logs", () => {
  it.each([
    { mode: { failure: "429" as const, retryAfterSeconds: 9 }, kind: "429", extra: { status: 429, retry_after_s: 9 } },
    { mode: { failure: "500" as const }, kind: "5xx", extra: { status: 500 } },
    { mode: { failure: "malformed" as const }, kind: "malformed", extra: {} },
  ])("logs a Pl@ntNet $kind with provider, kind and latency in one line", async ({ mode, kind, extra }) => {
    emulators.plantnet.setMode({ ...mode, latencyMs: 50 });
    const { body, background } = await identify(await photo());
    await background();
    expect(body.providers?.plantnet).toMatchObject({ status: "failed" });
    const lines = failureLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ provider: "plantnet", kind, ...extra });
    expect(lines[0]!.latency_ms).toBeGreaterThanOrEqual(40);
  });

  it("logs a network failure and a circuit that refused the call", async () => {
    emulators.overrides["plant-id.emulator.test"] = async () => {
      throw new TypeError("connection refused");
    };
    const { body, background } = await identify(await photo());
    await background();
    expect(body.providers?.plant_id).toEqual({ status: "failed", error: "network" });
    expect(failureLines()).toEqual([expect.objectContaining({ provider: "plant_id", kind: "network", latency_ms: expect.any(Number) })]);

    // Two more failures open Plant.id's circuit (3 failures); the next call is refused unasked.
    for (let i = 0; i < 2; i++) await (await identify(await photo())).background();
    warn.mockClear();
    const refused = await identify(await photo());
    await refused.background();
    expect(refused.body.providers?.plant_id).toEqual({ status: "failed", error: "circuit_open" });
    expect(failureLines()).toEqual([expect.objectContaining({ provider: "plant_id", kind: "circuit_open", latency_ms: 0 })]);
  });
});
