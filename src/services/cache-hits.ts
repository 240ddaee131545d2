/**
 * The provider cache's exact hit counts, kept off the hit's path.
 *
 * - An isolate gathers its hits for HIT_FLUSH_MS, then counts them with one call, made in the
 *   background (`waitUntil`) of the request whose hit started the window. So a busy isolate
 *   makes one call a second, whatever its traffic, and a hit itself makes none.
 * - The call goes to one of HIT_COUNTER_SHARDS HitCounter objects, picked at random; a read sums
 *   them all. No object hears every identification (docs/scaling.md).
 * - A call that fails puts its hits back, to be counted with the next window's. Hits are lost
 *   only if the isolate itself dies within the window, as a background call would be.
 * - Misses are counted by each provider's ProviderCircuit, in the call that records the upstream
 *   call's outcome, so they cost no call of their own.
 */
import type { Bindings } from "../env";
import { withinDeadline } from "../lib/deadline";
import type { ProviderName } from "../providers/types";
import type { HitCounts } from "../../durable-objects/hit-counter";

/** How many objects share the hit counts. Each takes about 1 000 calls/s. */
export const HIT_COUNTER_SHARDS = 8;
/** How long an isolate gathers hits before counting them. The statistics lag by at most this. */
export const HIT_FLUSH_MS = 1_000;
/** How long the counting call may take before its hits are put back. */
const COUNT_DEADLINE_MS = 3_000;

function shard(env: Bindings, n: number) {
  return env.HIT_COUNTER.get(env.HIT_COUNTER.idFromName(`hit-counter:${n}`));
}

interface Gathered {
  hits: HitCounts;
  /** When the scheduled count runs; null when none is scheduled. */
  flushAt: number | null;
}

/** This isolate's uncounted hits, per hit-counter binding (a test may bind its own). */
const gathering = new WeakMap<object, Gathered>();

/** Counts one cache hit of `provider` (see the module's comment). */
export function countHit(
  env: Bindings,
  waitUntil: (p: Promise<unknown>) => void,
  provider: ProviderName,
  unkept: (err: unknown) => void,
): void {
  let gathered = gathering.get(env.HIT_COUNTER);
  if (!gathered) gathering.set(env.HIT_COUNTER, (gathered = { hits: {}, flushAt: null }));
  gathered.hits[provider] = (gathered.hits[provider] ?? 0) + 1;
  const now = Date.now();
  // A count is scheduled and will take this hit too — unless it is long overdue (its request
  // was cut off before it ran), in which case this hit schedules another.
  if (gathered.flushAt !== null && now < gathered.flushAt + COUNT_DEADLINE_MS) return;
  gathered.flushAt = now + HIT_FLUSH_MS;
  waitUntil(countLater(env, gathered, unkept));
}

async function countLater(env: Bindings, gathered: Gathered, unkept: (err: unknown) => void): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, HIT_FLUSH_MS));
  const hits = gathered.hits;
  gathered.hits = {};
  gathered.flushAt = null;
  if (Object.keys(hits).length === 0) return;
  const counter = shard(env, Math.floor(Math.random() * HIT_COUNTER_SHARDS));
  try {
    await withinDeadline(counter.add(hits), COUNT_DEADLINE_MS, "hit counter");
  } catch (err) {
    for (const [provider, n] of Object.entries(hits)) gathered.hits[provider] = (gathered.hits[provider] ?? 0) + n;
    unkept(err);
  }
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
