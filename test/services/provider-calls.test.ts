import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/lib/hash";
import { COORDINATION_TIMEOUT_MS, cachedProviderCall, plantIdJob, plantNetJob } from "../../src/services/provider-calls";
import { makePng } from "../helpers/images";
import { recordingLogger } from "../helpers/logger";
import { useEmulators } from "../helpers/outbound";

useEmulators();

/** The provider circuits' namespace, with objects that are unreachable except for the breaker's gate. */
const unreachableCircuits = {
  idFromName: (name: string) => env.PROVIDER_CIRCUIT.idFromName(name),
  get: () => ({
    check: async () => ({ allowed: true, state: "closed" }),
    acquire: async () => ({ allowed: true, state: "closed" }),
    recordCall: async () => {
      throw new Error("circuit object unreachable");
    },
  }),
} as unknown as typeof env.PROVIDER_CIRCUIT;

/** Hit counters that cannot be reached. */
const unreachableHitCounters = {
  idFromName: (name: string) => env.HIT_COUNTER.idFromName(name),
  get: () => ({
    add: async () => {
      throw new Error("hit counter unreachable");
    },
  }),
} as unknown as typeof env.HIT_COUNTER;

describe("cachedProviderCall's bookkeeping", () => {
  it("keeps the answer when the breaker's bookkeeping fails, and logs the failure instead of dropping it", async () => {
    const job = await plantNetJob(env, [await uniqueImage("bookkeeping")], PLANTNET_OPTIONS);
    const brokenEnv = { ...env, PROVIDER_CIRCUIT: unreachableCircuits, HIT_COUNTER: unreachableHitCounters };

    // A miss: the upstream answer comes back; recording the call fails in the background.
    const miss = recordingLogger();
    const background: Promise<unknown>[] = [];
    const first = await cachedProviderCall(brokenEnv, (p) => background.push(p), job, { logger: miss.logger });
    expect(first.error).toBeNull();
    expect(first.cached).toBe(false);
    expect(first.answer?.suggestions.length).toBeGreaterThan(0);
    await Promise.all(background);
    expect(miss.warnings).toEqual([
      { msg: "provider bookkeeping failed", fields: { provider: "plantnet", what: "circuit", error: "Error: circuit object unreachable" } },
    ]);

    // A hit (the miss cached its answer): counting it fails in the background.
    const hit = recordingLogger();
    const later: Promise<unknown>[] = [];
    const second = await cachedProviderCall(brokenEnv, (p) => later.push(p), job, { logger: hit.logger });
    expect(second.cached).toBe(true);
    expect(second.answer).toEqual(first.answer);
    await Promise.all(later);
    expect(hit.warnings).toEqual([
      {
        msg: "provider bookkeeping failed",
        fields: { provider: "plantnet", what: "cache count", error: "Error: hit counter unreachable" },
      },
    ]);
  });

  it("calls the provider itself when its single-flight shard cannot be reached, and says so in the log", async () => {
    const job = await plantNetJob(env, [await uniqueImage("unreachable-shard")], PLANTNET_OPTIONS);
    let settled = 0;
    const unreachableShards = {
      idFromName: (name: string) => env.SINGLE_FLIGHT.idFromName(name),
      get: () => ({
        join: async () => {
          throw new Error("shard overloaded");
        },
        settle: async () => {
          settled++;
        },
      }),
    } as unknown as typeof env.SINGLE_FLIGHT;
    const { logger, warnings } = recordingLogger();
    const background: Promise<unknown>[] = [];
    const result = await cachedProviderCall({ ...env, SINGLE_FLIGHT: unreachableShards }, (p) => background.push(p), job, { logger });
    await Promise.all(background);
    expect(result.error).toBeNull();
    expect(result.cached).toBe(false);
    expect(result.answer?.suggestions.length).toBeGreaterThan(0);
    expect(settled).toBe(0); // no flight was joined, so there is none to settle
    expect(warnings).toEqual([
      { msg: "provider bookkeeping failed", fields: { provider: "plantnet", what: "single flight", error: "Error: shard overloaded" } },
    ]);
  });

  it("gives up a single-flight shard that never answers, and calls the provider itself", { timeout: 20_000 }, async () => {
    const job = await plantNetJob(env, [await uniqueImage("hung-shard")], PLANTNET_OPTIONS);
    // A follower may rightly wait out its leader's lease (the call's timeout + 5 s); the shard is
    // given up 3 s after that. A short timeout keeps the test short.
    job.settings = { ...job.settings, timeoutMs: 500 };
    const givenUpAfterMs = 500 + 5_000 + COORDINATION_TIMEOUT_MS;
    const hungShards = {
      idFromName: (name: string) => env.SINGLE_FLIGHT.idFromName(name),
      get: () => ({ join: () => new Promise(() => {}), settle: async () => {} }),
    } as unknown as typeof env.SINGLE_FLIGHT;
    const { logger, warnings } = recordingLogger();
    const started = Date.now();
    const result = await cachedProviderCall({ ...env, SINGLE_FLIGHT: hungShards }, () => {}, job, { logger });
    expect(result.error).toBeNull();
    expect(result.answer?.suggestions.length).toBeGreaterThan(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(givenUpAfterMs);
    expect(Date.now() - started).toBeLessThan(givenUpAfterMs + 5_000);
    expect(warnings).toEqual([
      {
        msg: "provider bookkeeping failed",
        fields: { provider: "plantnet", what: "single flight", error: `Error: single flight did not answer within ${givenUpAfterMs} ms` },
      },
    ]);
  });

  it("answers a failed call even when the breaker never records it", { timeout: 20_000 }, async () => {
    const job = await plantNetJob(env, [await uniqueImage("hung-breaker")], PLANTNET_OPTIONS);
    job.settings = { ...job.settings, baseUrl: "http://127.0.0.1:9", timeoutMs: 2_000 }; // nothing listens there
    const hungCircuits = {
      idFromName: (name: string) => env.PROVIDER_CIRCUIT.idFromName(name),
      get: () => ({
        check: async () => ({ allowed: true, state: "closed" }),
        recordCall: () => new Promise(() => {}),
      }),
    } as unknown as typeof env.PROVIDER_CIRCUIT;
    const { logger, warnings } = recordingLogger();
    const result = await cachedProviderCall({ ...env, PROVIDER_CIRCUIT: hungCircuits }, () => {}, job, { logger });
    expect(result.answer).toBeNull();
    expect(result.error?.provider).toBe("plantnet");
    expect(warnings.map((w) => w.fields?.what ?? w.msg)).toContain("circuit");
    expect(JSON.stringify(warnings)).toContain(`circuit breaker did not answer within ${COORDINATION_TIMEOUT_MS} ms`);
  });
  it("fails the call, without hanging, when the breaker answers neither its question nor the probe", { timeout: 20_000 }, async () => {
    const job = await plantNetJob(env, [await uniqueImage("hung-gate")], PLANTNET_OPTIONS);
    const hungGate = {
      idFromName: (name: string) => env.PROVIDER_CIRCUIT.idFromName(name),
      get: () => ({
        check: () => new Promise(() => {}),
        acquire: () => new Promise(() => {}),
        abandon: () => new Promise(() => {}),
        recordCall: async () => {},
      }),
    } as unknown as typeof env.PROVIDER_CIRCUIT;
    // Nothing listens there: a call made anyway would come back as a network error, not reject.
    job.settings = { ...job.settings, baseUrl: "http://127.0.0.1:9" };
    const started = Date.now();
    await expect(cachedProviderCall({ ...env, PROVIDER_CIRCUIT: hungGate }, () => {}, job)).rejects.toThrow(
      `circuit breaker did not answer within ${COORDINATION_TIMEOUT_MS} ms`,
    );
    // The question and then the probe, each given its deadline.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2 * COORDINATION_TIMEOUT_MS);
  });

  it("abandons a half-open probe whose grant came after the deadline, so recovery need not wait for its lease", {
    timeout: 20_000,
  }, async () => {
    const job = await plantNetJob(env, [await uniqueImage("late-probe")], PLANTNET_OPTIONS);
    const asked: (string | null)[] = [];
    const abandoned: string[] = [];
    const lateGate = {
      idFromName: (name: string) => env.PROVIDER_CIRCUIT.idFromName(name),
      get: () => ({
        check: async () => null, // half-open: only acquire may answer
        acquire: (_policy: unknown, _now: unknown, holder: string | null) => {
          asked.push(holder);
          return new Promise((resolve) => setTimeout(() => resolve({ allowed: true, state: "half_open" }), COORDINATION_TIMEOUT_MS + 500));
        },
        abandon: async (holder: string) => {
          abandoned.push(holder);
          return true;
        },
        recordCall: async () => {},
      }),
    } as unknown as typeof env.PROVIDER_CIRCUIT;
    const background: Promise<unknown>[] = [];
    await expect(cachedProviderCall({ ...env, PROVIDER_CIRCUIT: lateGate }, (p) => background.push(p), job)).rejects.toThrow(
      `circuit breaker did not answer within ${COORDINATION_TIMEOUT_MS} ms`,
    );
    await Promise.all(background);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(abandoned).toEqual(asked);
  });
});

const PLANTNET_OPTIONS = { project: "all", organs: ["auto" as const], language: "en", includeRelatedImages: true, maxResults: 10 };

async function uniqueImage(label: string) {
  const bytes = await makePng(64, 48, { seed: `${label}-${Math.random()}` });
  return { bytes, mime: "image/png" as const, sha256: await sha256Hex(bytes) };
}

describe("where a photo was taken, as the provider and the shared cache see it", () => {
  it("is rounded to one decimal (~11 km): points a kilometre apart share one cache key, and Plant.id hears no more", async () => {
    const bytes = await makePng(8, 8);
    const image = { bytes, mime: "image/png" as const, sha256: await sha256Hex(bytes) };
    const at = (latitude: number, longitude: number) => plantIdJob(env, [image], { latitude, longitude, language: "en" });
    const here = await at(52.5183, 13.4049);
    const kmAway = await at(52.5271, 13.4101);
    expect(here.cacheKey).toContain("loc=52.5,13.4");
    expect(kmAway.cacheKey).toBe(here.cacheKey);
    expect(here).toMatchObject({ latitude: 52.5, longitude: 13.4 });
    expect((await at(52.4, 13.4)).cacheKey).not.toBe(here.cacheKey);
    expect((await plantIdJob(env, [image], { latitude: null, longitude: null, language: "en" })).cacheKey).toContain("loc=none,none");
  });
});
