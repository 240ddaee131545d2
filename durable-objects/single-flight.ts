/**
 * SingleFlight — coordination for provider calls: however many identical uploads arrive at once,
 * from however many isolates, the first caller becomes the leader and makes the one upstream call
 * itself; the others wait here for the leader's answer. No image bytes pass through the object,
 * so coordination costs two small RPCs.
 *
 * One object holds the flights of many cache keys (SHA-256 of the image bytes plus every
 * answer-changing parameter): a key always maps to the same shard of its region
 * (`flightShardName`, in single-flight-shards.ts), so callers of one key still meet in one object. An object per key cost a
 * new object on every cache miss — each with its own storage set up, though none is used —
 * which was the largest single cost of a queued identification on the local stack (BENCHMARKS.md,
 * issue 13 item 4). Regions keep a shard near the callers it serves, as a per-key object created
 * by its first caller was.
 *
 * An answer is also kept here for a minute after it is settled, because KV (the cache the leader
 * writes) is eventually consistent across locations and a follower elsewhere may not see the write
 * yet. At most RECENT_MAX answers are kept per shard (the oldest go first), so memory stays
 * bounded however many keys a shard sees; a caller that arrives after its answer was dropped reads
 * KV or leads a new call. A leader that never settles (its isolate died) loses its lease after
 * `leaseMs`, and the next caller leads instead. No durable storage is used.
 */
import { DurableObject } from "cloudflare:workers";
import type { ProviderAnswer } from "../src/providers/types";

export type FlightOutcome =
  | { ok: true; answer: ProviderAnswer }
  | { ok: false; error: { kind: string; message: string; status?: number; retryAfterS?: number } };

export type JoinResult = { role: "leader"; token: string } | { role: "follower"; outcome: FlightOutcome };

const RECENT_MS = 60_000;
/** Answers kept per shard: a provider answer is 5–15 KB in memory, so about 1 MB at most. */
export const RECENT_MAX = 64;

interface Flight {
  token: string;
  leaseUntil: number;
  settled: Promise<FlightOutcome>;
  settle: (outcome: FlightOutcome) => void;
}

export class SingleFlight extends DurableObject<Env> {
  private flights = new Map<string, Flight>();
  /** Settled answers by key, oldest first (a Map keeps insertion order). */
  private recent = new Map<string, { answer: ProviderAnswer; until: number }>();

  /** Become the leader of `key`'s call, or wait for the current leader's outcome. */
  async join(key: string, leaseMs: number): Promise<JoinResult> {
    for (;;) {
      const now = Date.now();
      const kept = this.recent.get(key);
      if (kept && kept.until > now) return { role: "follower", outcome: { ok: true, answer: kept.answer } };
      if (kept) this.recent.delete(key);
      const flight = this.flights.get(key);
      if (!flight || flight.leaseUntil <= now) return { role: "leader", token: this.lead(key, leaseMs) };
      let timer: ReturnType<typeof setTimeout> | undefined;
      const outcome = await Promise.race([
        flight.settled,
        new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), Math.max(0, flight.leaseUntil - now)))),
      ]).finally(() => clearTimeout(timer));
      if (outcome) return { role: "follower", outcome };
      // The leader's lease ran out (its isolate died): loop, and lead if nobody else has.
    }
  }

  /** The leader reports its outcome; followers waiting on it are released. */
  async settle(key: string, token: string, outcome: FlightOutcome): Promise<void> {
    const flight = this.flights.get(key);
    if (!flight || flight.token !== token) return;
    this.flights.delete(key);
    // Callers already waiting share the outcome, failure included (so five identical uploads
    // to a dead provider cost one timeout, not five in a row). Only answers are remembered for
    // later callers; after a failure the next caller tries again, behind the circuit breaker.
    if (outcome.ok) this.remember(key, outcome.answer);
    flight.settle(outcome);
  }

  /** How many flights are in the air and answers kept (for tests and operators). */
  async size(): Promise<{ flights: number; recent: number }> {
    return { flights: this.flights.size, recent: this.recent.size };
  }

  private remember(key: string, answer: ProviderAnswer): void {
    const now = Date.now();
    this.recent.delete(key);
    this.recent.set(key, { answer, until: now + RECENT_MS });
    // Oldest first: drop what has expired, then whatever is over the cap.
    for (const [k, v] of this.recent) {
      if (v.until > now && this.recent.size <= RECENT_MAX) break;
      this.recent.delete(k);
    }
  }

  private lead(key: string, leaseMs: number): string {
    // A shard lives long and serves many keys: flights whose leader never settled (its isolate
    // died, or its settle failed) and nobody joined again are dropped once their lease is over.
    const now = Date.now();
    for (const [k, f] of this.flights) if (f.leaseUntil <= now) this.flights.delete(k);
    let settle!: (outcome: FlightOutcome) => void;
    const settled = new Promise<FlightOutcome>((resolve) => (settle = resolve));
    const token = crypto.randomUUID();
    this.flights.set(key, { token, leaseUntil: now + leaseMs, settled, settle });
    return token;
  }
}
