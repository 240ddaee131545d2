import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { HitCounts } from "../../durable-objects/hit-counter";
import { sha256Hex } from "../../src/lib/hash";
import { HIT_COUNTER_SHARDS, hitTally, readHits, resetHits } from "../../src/services/cache-hits";
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

describe("hit tally", () => {
  it("counts a whole identification's hits with one call, and a hit after the flush on its own", async () => {
    const { namespace, calls } = recordedHitCounters();
    const background: Promise<unknown>[] = [];
    const errors: unknown[] = [];
    const tally = hitTally(
      { ...env, HIT_COUNTER: namespace },
      (p) => background.push(p),
      (err) => errors.push(err),
    );
    tally.add("plant_id");
    tally.add("plantnet");
    expect(calls).toEqual([]); // nothing is sent before the flush
    tally.flush();
    tally.add("plantnet"); // a provider that answered after the caller stopped waiting
    await Promise.all(background);
    expect(calls.map((c) => c.hits)).toEqual([{ plant_id: 1, plantnet: 1 }, { plantnet: 1 }]);
    for (const c of calls) expect(c.name).toMatch(/^hit-counter:\d+$/);
    for (const c of calls) expect(Number(c.name.split(":")[1])).toBeLessThan(HIT_COUNTER_SHARDS);
    expect(errors).toEqual([]);
  });

  it("sends nothing when there was no hit", async () => {
    const { namespace, calls } = recordedHitCounters();
    const background: Promise<unknown>[] = [];
    hitTally(
      { ...env, HIT_COUNTER: namespace },
      (p) => background.push(p),
      () => {},
    ).flush();
    await Promise.all(background);
    expect(calls).toEqual([]);
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
  it("are counted once per provider, in one call, and a miss adds no hit", async () => {
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
