/**
 * The provider cache's exact hit counts. A hit is counted in one of HIT_COUNTER_SHARDS HitCounter
 * objects, picked at random per call, and read as the sum of all of them: no object hears every
 * identification, so the counters do not bound the service's throughput (docs/scaling.md).
 * An identification counts both providers' hits in one call, after the response.
 * (Misses are counted by each provider's ProviderCircuit, in the call that records the upstream
 * call's outcome, so they cost no call of their own.)
 */
import type { Bindings } from "../env";
import type { ProviderName } from "../providers/types";
import type { HitCounts } from "../../durable-objects/hit-counter";

/** How many objects share the hit counts. Each takes about 1 000 calls/s. */
export const HIT_COUNTER_SHARDS = 8;

function shard(env: Bindings, n: number) {
  return env.HIT_COUNTER.get(env.HIT_COUNTER.idFromName(`hit-counter:${n}`));
}

/**
 * Collects the hits of one identification's provider calls and counts them with one call, in
 * the background, when `flush` is called. A hit added after the flush (a provider that answered
 * after the caller stopped waiting) is counted on its own, so none is lost.
 */
export interface HitTally {
  add(provider: ProviderName): void;
  flush(): void;
}

export function hitTally(env: Bindings, waitUntil: (p: Promise<unknown>) => void, unkept: (err: unknown) => void): HitTally {
  let pending: HitCounts = {};
  let flushed = false;
  const send = (hits: HitCounts) => {
    if (Object.keys(hits).length === 0) return;
    waitUntil(
      shard(env, Math.floor(Math.random() * HIT_COUNTER_SHARDS))
        .add(hits)
        .catch(unkept),
    );
  };
  return {
    add(provider) {
      if (flushed) send({ [provider]: 1 });
      else pending[provider] = (pending[provider] ?? 0) + 1;
    },
    flush() {
      flushed = true;
      send(pending);
      pending = {};
    },
  };
}

/** Every shard's hits, summed per provider. */
export async function readHits(env: Bindings): Promise<HitCounts> {
  const all = await Promise.all(Array.from({ length: HIT_COUNTER_SHARDS }, (_, n) => shard(env, n).read()));
  const total: HitCounts = {};
  for (const counts of all) for (const [provider, hits] of Object.entries(counts)) total[provider] = (total[provider] ?? 0) + hits;
  return total;
}

export async function resetHits(env: Bindings): Promise<void> {
  await Promise.all(Array.from({ length: HIT_COUNTER_SHARDS }, (_, n) => shard(env, n).reset()));
}
