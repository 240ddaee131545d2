import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { HitCounts } from "../../durable-objects/hit-counter";
import { sha256Hex } from "../../src/lib/hash";
import { countHit, HIT_COUNTER_SHARDS, HIT_FLUSH_MS, readHits, resetHits } from "../../src/services/cache-hits";
import { identifyPlant } from "../../src/services/identification";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";

useEmulators();

/** The real hit counters, with every `add` call recorded (object name and counts). */
function recordedHitCounters() {
  const calls: { name: string; hits: HitCounts }[] = [];
  const names = new Map<string, string>();
  const namespace = {
    idFromName: (name: string) => {
      const id = env.HIT_COUNTER.idFromName(name);
      names.set(id.toString(), name);
      return id;
    },
    get: (id: DurableObjectId) => {
      const real = env.HIT_COUNTER.get(id);
      return {
        add: (hits: HitCounts) => {
          calls.push({ name: names.get(id.toString()) ?? "?", hits });
          return real.add(hits);
        },
        read: () => real.read(),
        reset: () => real.reset(),
      };
    },
  } as unknown as typeof env.HIT_COUNTER;
  return { namespace, calls };
}

async function image(label: string) {
  const bytes = await makePng(64, 48, { seed: `${label}-${Math.random()}` });
  return { bytes, mime: "image/png" as const, sha256: await sha256Hex(bytes) };
}

describe("HitCounter", () => {
  const counter = (name: string) => env.HIT_COUNTER.get(env.HIT_COUNTER.idFromName(name));

  it("adds each provider's hits, keeps them, and forgets them on reset", async () => {
    const c = counter("hc:add");
    await c.add({ plant_id: 2, plantnet: 1 });
    await c.add({ plant_id: 1 });
    expect(await c.read()).toEqual({ plant_id: 3, plantnet: 1 });
    await c.reset();
    expect(await c.read()).toEqual({});
  });

  it("ignores counts that are not whole numbers above zero", async () => {
    const c = counter("hc:bad");
    await c.add({ plant_id: -5, plantnet: 1.5, other: Number.NaN });
    await c.add({ plant_id: 1, plantnet: 0 });
    expect(await c.read()).toEqual({ plant_id: 1 });
  });
});

describe("counting hits", () => {
  const unkeptInto = (errors: unknown[]) => (err: unknown) => errors.push(err);

  it("counts an isolate's hits of one window with one call, after the window", async () => {
    const { namespace, calls } = recordedHitCounters();
    const countedEnv = { ...env, HIT_COUNTER: namespace };
    const background: Promise<unknown>[] = [];
    const errors: unknown[] = [];
    const started = Date.now();
    countHit(countedEnv, (p) => background.push(p), "plant_id", unkeptInto(errors));
    countHit(countedEnv, (p) => background.push(p), "plantnet", unkeptInto(errors));
    countHit(countedEnv, (p) => background.push(p), "plant_id", unkeptInto(errors));
    expect(background).toHaveLength(1); // the first hit scheduled the count; the others joined it
    expect(calls).toEqual([]);
    await Promise.all(background);
    expect(Date.now() - started).toBeGreaterThanOrEqual(HIT_FLUSH_MS);
    expect(calls.map((c) => c.hits)).toEqual([{ plant_id: 2, plantnet: 1 }]);
    expect(calls[0]?.name).toMatch(/^hit-counter:\d+$/);
    expect(Number(calls[0]?.name.split(":")[1])).toBeLessThan(HIT_COUNTER_SHARDS);

    // The next hit opens the next window.
    countHit(countedEnv, (p) => background.push(p), "plantnet", unkeptInto(errors));
    await Promise.all(background);
    expect(calls.map((c) => c.hits)).toEqual([{ plant_id: 2, plantnet: 1 }, { plantnet: 1 }]);
    expect(errors).toEqual([]);
  });

  it("puts the hits back when the count fails, and counts them with the next window's", async () => {
    const { namespace, calls } = recordedHitCounters();
    let failures = 1;
    const flaky = {
      idFromName: (name: string) => namespace.idFromName(name),
      get: (id: DurableObjectId) => {
        const counter = namespace.get(id);
        return {
          add: async (hits: HitCounts) => {
            if (failures-- > 0) throw new Error("hit counter overloaded");
            return counter.add(hits);
          },
        };
      },
    } as unknown as typeof env.HIT_COUNTER;
    const countedEnv = { ...env, HIT_COUNTER: flaky };
    const background: Promise<unknown>[] = [];
    const errors: unknown[] = [];
    countHit(countedEnv, (p) => background.push(p), "plant_id", unkeptInto(errors));
    await Promise.all(background);
    expect(calls).toEqual([]);
    expect(errors.map(String)).toEqual(["Error: hit counter overloaded"]);

    countHit(countedEnv, (p) => background.push(p), "plantnet", unkeptInto(errors));
    await Promise.all(background);
    expect(calls.map((c) => c.hits)).toEqual([{ plant_id: 1, plantnet: 1 }]);
  });

  it("keeps each binding's hits apart", async () => {
    const a = recordedHitCounters();
    const b = recordedHitCounters();
    const background: Promise<unknown>[] = [];
    countHit(
      { ...env, HIT_COUNTER: a.namespace },
      (p) => background.push(p),
      "plant_id",
      () => {},
    );
    countHit(
      { ...env, HIT_COUNTER: b.namespace },
      (p) => background.push(p),
      "plantnet",
      () => {},
    );
    await Promise.all(background);
    expect(a.calls.map((c) => c.hits)).toEqual([{ plant_id: 1 }]);
    expect(b.calls.map((c) => c.hits)).toEqual([{ plantnet: 1 }]);
  });

  it("reads the sum over every object, and a reset clears them all", async () => {
    await resetHits(env);
    for (let n = 0; n < HIT_COUNTER_SHARDS; n++) {
      await env.HIT_COUNTER.get(env.HIT_COUNTER.idFromName(`hit-counter:${n}`)).add({ plant_id: n + 1, plantnet: 1 });
    }
    expect(await readHits(env)).toEqual({ plant_id: (HIT_COUNTER_SHARDS * (HIT_COUNTER_SHARDS + 1)) / 2, plantnet: HIT_COUNTER_SHARDS });
    await resetHits(env);
    expect(await readHits(env)).toEqual({});
  });
});

describe("an identification's cache hits", () => {
  it("are counted once per provider, and a miss adds no hit", async () => {
    const { namespace, calls } = recordedHitCounters();
    const countedEnv = { ...env, HIT_COUNTER: namespace };
    const input = { images: [await image("identify-hits")] };

    const missed: Promise<unknown>[] = [];
    const miss = await identifyPlant(countedEnv, (p) => missed.push(p), input);
    await Promise.all(missed);
    expect(miss.providers.plant_id.cached).toBe(false);
    expect(calls).toEqual([]);

    const later: Promise<unknown>[] = [];
    const hit = await identifyPlant(countedEnv, (p) => later.push(p), input);
    await Promise.all(later);
    expect([hit.providers.plant_id.cached, hit.providers.plantnet.cached]).toEqual([true, true]);
    expect(calls.map((c) => c.hits)).toEqual([{ plant_id: 1, plantnet: 1 }]);
  });
});
