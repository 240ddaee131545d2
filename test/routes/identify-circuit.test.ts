import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { CIRCUIT_POLICIES, circuitFor } from "../../src/services/provider-calls";
import { makePng } from "../helpers/images";
import { call, identifyAnonymously } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";

const emulators = useEmulators();
let n = 0;
const photo = async () => makePng(300, 300, { seed: `circuit-${++n}-${Math.random()}` });

/**
 * One identification, returned once what the Worker left running after the answer is done too:
 * its cache hits are counted a second later (services/cache-hits.ts), and a count left running
 * would land in a later test, after the cache stats test's reset.
 */
async function identify(bytes: Uint8Array) {
  const res = await identifyAnonymously(bytes);
  const body = (await res.json()) as { success: boolean; cached?: { plant_id: boolean }; suggestions?: { sources: string[] }[] };
  return { res, body };
}

async function health() {
  return (await (await call("/api/v1/plant-identification/identify/health/")).json()) as {
    status: string;
    plant_id_available: boolean;
    circuits: { plant_id: string; plantnet: string };
  };
}

describe("circuit breaker through the Worker", () => {
  it("opens Plant.id after 3 consecutive failures; while open no upstream call is made but cached answers are served", async () => {
    const cachedPhoto = await photo();
    expect((await identify(cachedPhoto)).body.success).toBe(true); // warm the cache

    emulators.plantId.setMode({ failure: "500" });
    for (let i = 0; i < 3; i++) await identify(await photo());
    expect(await health()).toMatchObject({
      status: "degraded",
      plant_id_available: false,
      circuits: { plant_id: "open", plantnet: "closed" },
    });

    const callsWhenOpen = emulators.plantId.calls;
    const { body } = await identify(await photo());
    expect(emulators.plantId.calls).toBe(callsWhenOpen); // no upstream call while open
    expect(body.success).toBe(true); // Pl@ntNet still answers
    expect(body.suggestions!.every((s) => s.sources.join() === "plantnet")).toBe(true);

    const cached = await identify(cachedPhoto);
    expect(cached.body.cached?.plant_id).toBe(true);
    expect(cached.body.suggestions![0]!.sources).toContain("plant_id");
  });

  it("half-open: of concurrent identical uploads the leader is the one probe and the others share its answer", async () => {
    const policy = CIRCUIT_POLICIES.plant_id;
    const circuit = circuitFor(env, "plant_id");
    await circuit.resetCircuit();
    // Open long enough ago that the next call is the half-open probe.
    const longAgo = Date.now() - policy.openMs - 1000;
    for (let i = 0; i < policy.failureThreshold; i++) await circuit.recordFailure(policy, longAgo);
    emulators.plantId.setMode({ latencyMs: 150 });
    const before = emulators.plantId.calls;
    const bytes = await photo();
    const results = await Promise.all(Array.from({ length: 4 }, () => identify(bytes)));
    expect(emulators.plantId.calls - before).toBe(1);
    for (const { body } of results) expect(body.suggestions!.some((s) => s.sources.includes("plant_id"))).toBe(true);
    // The probe's success was recorded before its answer: one more success closes the circuit.
    expect((await circuit.snapshot()).state).toBe("half_open");
    expect((await circuit.snapshot()).halfOpenSuccesses).toBe(1);
    expect((await identify(await photo())).body.success).toBe(true);
    expect((await circuit.snapshot()).state).toBe("closed");
  });

  it("Pl@ntNet needs 5 failures; a 404 'no match' is not a failure", async () => {
    emulators.plantnet.setMode({ failure: "500" });
    for (let i = 0; i < 4; i++) await identify(await photo());
    expect((await health()).circuits.plantnet).toBe("closed");
    await identify(await photo());
    expect((await health()).circuits.plantnet).toBe("open");
  });
});

describe("ProviderCircuit state machine (time injected)", () => {
  it("closed → open → half_open after the wait → closed after 2 successes; a half-open failure reopens", async () => {
    const policy = CIRCUIT_POLICIES.plant_id;
    const circuit = env.PROVIDER_CIRCUIT.get(env.PROVIDER_CIRCUIT.idFromName("state-machine-test"));
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) await circuit.recordFailure(policy, t0);
    expect((await circuit.acquire(policy, t0 + 1000)).allowed).toBe(false);
    expect((await circuit.snapshot(policy, t0 + 59_000)).state).toBe("open");
    expect((await circuit.snapshot(policy, t0 + 60_000)).state).toBe("half_open");

    // Half-open admits one probe at a time.
    expect(await circuit.acquire(policy, t0 + 60_000)).toEqual({ allowed: true, state: "half_open" });
    expect((await circuit.acquire(policy, t0 + 60_001)).allowed).toBe(false);
    expect(await circuit.recordFailure(policy, t0 + 60_002)).toBe("open");

    expect((await circuit.acquire(policy, t0 + 120_002)).allowed).toBe(true);
    expect(await circuit.recordSuccess(policy)).toBe("half_open");
    expect((await circuit.acquire(policy, t0 + 120_003)).allowed).toBe(true);
    expect(await circuit.recordSuccess(policy)).toBe("closed");
    expect((await circuit.acquire(policy, t0 + 120_004)).allowed).toBe(true);
  });

  it("check() answers only what reserves nothing, and never takes the half-open probe", async () => {
    const policy = CIRCUIT_POLICIES.plant_id;
    const circuit = env.PROVIDER_CIRCUIT.get(env.PROVIDER_CIRCUIT.idFromName("check-test"));
    const t0 = Date.now();
    expect(await circuit.check(policy, t0)).toEqual({ allowed: true, state: "closed" });
    for (let i = 0; i < 3; i++) await circuit.recordFailure(policy, t0);
    expect(await circuit.check(policy, t0 + 1000)).toEqual({ allowed: false, state: "open", retryAfterMs: 59_000 });
    // Due to turn half-open, and half-open: only acquire may answer, and the probe is still free.
    expect(await circuit.check(policy, t0 + 60_000)).toBeNull();
    expect((await circuit.snapshot()).state).toBe("open");
    expect(await circuit.acquire(policy, t0 + 60_000)).toEqual({ allowed: true, state: "half_open" });
    expect(await circuit.check(policy, t0 + 60_001)).toBeNull();
    expect((await circuit.acquire(policy, t0 + 60_001)).allowed).toBe(false);
  });

  it("a half-open probe is freed by its own holder's abandon, and by nobody else's", async () => {
    const policy = CIRCUIT_POLICIES.plant_id;
    const circuit = env.PROVIDER_CIRCUIT.get(env.PROVIDER_CIRCUIT.idFromName("abandon-test"));
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) await circuit.recordFailure(policy, t0);
    expect(await circuit.acquire(policy, t0 + 60_000, "late-caller")).toEqual({ allowed: true, state: "half_open" });
    expect(await circuit.abandon("someone-else")).toBe(false);
    expect((await circuit.acquire(policy, t0 + 60_001, "next")).allowed).toBe(false);
    // The caller that stopped waiting lets its probe go: the next caller may probe at once.
    expect(await circuit.abandon("late-caller")).toBe(true);
    expect(await circuit.abandon("late-caller")).toBe(false);
    expect(await circuit.acquire(policy, t0 + 60_002, "next")).toEqual({ allowed: true, state: "half_open" });
    // A probe that reported back is no longer anyone's to abandon.
    expect(await circuit.recordSuccess(policy)).toBe("half_open");
    expect(await circuit.abandon("next")).toBe(false);
  });

  it("recordCall counts the miss with the outcome in one call", async () => {
    const policy = CIRCUIT_POLICIES.plant_id;
    const circuit = env.PROVIDER_CIRCUIT.get(env.PROVIDER_CIRCUIT.idFromName("record-call-test"));
    await circuit.recordFailure(policy);
    expect(await circuit.recordCall("rate_limited", policy)).toBe("closed");
    expect(await circuit.recordCall("neutral", policy)).toBe("closed");
    expect((await circuit.snapshot()).consecutiveFailures).toBe(1); // neither a 429 nor a bad request counts
    expect(await circuit.recordCall("success", policy)).toBe("closed");
    expect((await circuit.snapshot()).consecutiveFailures).toBe(0);
    for (let i = 0; i < 3; i++) await circuit.recordCall("failure", policy);
    expect((await circuit.snapshot()).state).toBe("open");
    expect(await circuit.cacheCounters()).toMatchObject({ hits: 0, misses: 6 });
  });

  it("a success in closed state resets the consecutive-failure count", async () => {
    const policy = CIRCUIT_POLICIES.plant_id;
    const circuit = circuitFor(env, "plant_id");
    await circuit.resetCircuit();
    await circuit.recordFailure(policy);
    await circuit.recordFailure(policy);
    await circuit.recordSuccess(policy);
    await circuit.recordFailure(policy);
    await circuit.recordFailure(policy);
    expect((await circuit.snapshot()).state).toBe("closed");
  });
});

describe("cache stats", () => {
  it("counts exact hits and misses per provider (staff only)", async () => {
    const { bearerUser } = await import("../helpers/users");
    const staff = await bearerUser();
    await env.DB.prepare("UPDATE users SET role = 'moderator' WHERE id = ?").bind(staff.userId).run();
    type Stats = Record<string, { hits: number; misses: number; hit_rate: number }>;
    const readStats = async () =>
      (await (await call("/api/v1/plant-identification/cache/stats/", { bearer: staff.access })).json()) as Stats;
    // Every identification of this file returns once its counts are written (identify above),
    // so nothing of an earlier test is still counting: the reset is the last word.
    await call("/api/v1/plant-identification/cache/stats/?reset=true", { bearer: staff.access });
    const bytes = await photo();
    await identify(bytes);
    await identify(bytes);
    await identify(bytes);
    // All six lookups are counted by now; the exact split (a seventh count would fail the test).
    const stats = await readStats();
    expect(stats.plant_id).toMatchObject({ hits: 2, misses: 1, hit_rate: 0.6667 });
    expect(stats.plantnet).toMatchObject({ hits: 2, misses: 1 });
    expect(stats.total).toMatchObject({ hits: 4, misses: 2 });
    const plain = await bearerUser();
    expect((await call("/api/v1/plant-identification/cache/stats/", { bearer: plain.access })).status).toBe(403);
  });
});
