/**
 * ProviderCircuit — one Durable Object per outside provider ("plant_id", "plantnet"), shared by
 * every isolate: the circuit breaker of API.md §2.3, plus the provider cache's exact miss counter
 * (every miss is an upstream call, recorded here anyway). Hits are counted apart, in HitCounter
 * objects; `cache.hits` holds only hits counted before that, until the next reset.
 *
 *   closed ──N consecutive failures──▶ open ──after openMs──▶ half_open
 *   half_open ──M successes──▶ closed        half_open ──any failure──▶ open
 *
 * While open no upstream call is made (callers still serve cached answers); a refused caller is
 * told how long until a call may be allowed, so queued jobs wait for that instead of spending
 * attempts. In half-open a single probe is in flight at a time so a recovering provider is not
 * stampeded. A 429 is rate limiting, not a failure: it never opens the circuit.
 */
import { DurableObject } from "cloudflare:workers";

export type CircuitState = "closed" | "open" | "half_open";

export interface CircuitPolicy {
  failureThreshold: number;
  openMs: number;
  successesToClose: number;
}

export interface CircuitSnapshot {
  state: CircuitState;
  consecutiveFailures: number;
  openedAt: number | null;
  halfOpenSuccesses: number;
}

export interface CacheCounters {
  hits: number;
  misses: number;
  since: string;
}

interface Stored {
  circuit: CircuitSnapshot;
  cache: CacheCounters;
}

/** A probe that never reports back (isolate died) stops blocking others after this. */
const PROBE_LEASE_MS = 60_000;
/** While a half-open probe is in flight, others are told to look again this soon (it settles within a provider timeout). */
const PROBE_RECHECK_MS = 5_000;

/** What one upstream call said about its provider (see ProviderCircuit.recordCall). */
export type CallOutcome = "success" | "failure" | "rate_limited" | "neutral";

export interface CircuitGate {
  allowed: boolean;
  state: CircuitState;
  /** When refused: how long until a call may be allowed (open: until half-open; half-open: until the probe settles). */
  retryAfterMs?: number;
}

export class ProviderCircuit extends DurableObject<Env> {
  private data: Stored = {
    circuit: { state: "closed", consecutiveFailures: 0, openedAt: null, halfOpenSuccesses: 0 },
    cache: { hits: 0, misses: 0, since: new Date().toISOString() },
  };
  private probeUntil = 0;
  /** Who holds the half-open probe (the `holder` its `acquire` gave), so only they can `abandon` it. */
  private probeHolder: string | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      const stored = await ctx.storage.get<Stored>("data");
      if (stored) this.data = stored;
    });
  }

  /**
   * `acquire`'s answer when giving it changes nothing — closed: allowed; open and not yet due:
   * refused — or null when the circuit is half-open or due to turn half-open, where only
   * `acquire` may answer (it reserves the one probe). So a caller can ask this before it knows
   * whether it will call at all (a single-flight follower never does) without taking a probe.
   */
  async check(policy: CircuitPolicy, now = Date.now()): Promise<CircuitGate | null> {
    const c = this.data.circuit;
    if (c.state === "closed") return { allowed: true, state: c.state };
    if (c.state === "open" && !(c.openedAt !== null && now - c.openedAt >= policy.openMs)) {
      return { allowed: false, state: c.state, retryAfterMs: Math.max(0, (c.openedAt ?? now) + policy.openMs - now) };
    }
    return null;
  }

  /**
   * May the caller make an upstream call now? Moves open → half_open when the time is up.
   * `holder`: the caller's own id for this attempt, so that if it stops waiting for this answer it
   * can `abandon` a probe the answer reserved.
   */
  async acquire(policy: CircuitPolicy, now = Date.now(), holder: string | null = null): Promise<CircuitGate> {
    const c = this.data.circuit;
    if (c.state === "open" && c.openedAt !== null && now - c.openedAt >= policy.openMs) {
      c.state = "half_open";
      c.halfOpenSuccesses = 0;
      this.freeProbe();
      await this.save();
    }
    if (c.state === "open") return { allowed: false, state: c.state, retryAfterMs: Math.max(0, (c.openedAt ?? now) + policy.openMs - now) };
    if (c.state === "half_open") {
      if (now < this.probeUntil) return { allowed: false, state: c.state, retryAfterMs: Math.min(this.probeUntil - now, PROBE_RECHECK_MS) };
      this.probeUntil = now + PROBE_LEASE_MS;
      this.probeHolder = holder;
    }
    return { allowed: true, state: c.state };
  }

  /**
   * The caller that asked `acquire` as `holder` gave up waiting for the answer: if that answer
   * reserved the half-open probe, the probe is free again at once, instead of after its lease.
   * A Durable Object receives one caller's calls in the order they were made (E-order), so this
   * arrives after the `acquire` it cancels.
   */
  async abandon(holder: string): Promise<boolean> {
    if (this.probeUntil === 0 || this.probeHolder !== holder) return false;
    this.freeProbe();
    return true;
  }

  private freeProbe(): void {
    this.probeUntil = 0;
    this.probeHolder = null;
  }

  async recordSuccess(policy: CircuitPolicy): Promise<CircuitState> {
    const c = this.data.circuit;
    c.consecutiveFailures = 0;
    if (c.state === "half_open") {
      this.freeProbe();
      c.halfOpenSuccesses++;
      if (c.halfOpenSuccesses >= policy.successesToClose) {
        c.state = "closed";
        c.openedAt = null;
        c.halfOpenSuccesses = 0;
      }
    }
    await this.save();
    return c.state;
  }

  async recordFailure(policy: CircuitPolicy, now = Date.now()): Promise<CircuitState> {
    const c = this.data.circuit;
    c.consecutiveFailures++;
    if (c.state === "half_open" || (c.state === "closed" && c.consecutiveFailures >= policy.failureThreshold)) {
      c.state = "open";
      c.openedAt = now;
      c.halfOpenSuccesses = 0;
      this.freeProbe();
    }
    await this.save();
    return c.state;
  }

  /**
   * The provider answered 429 (rate limiting): it is up and telling us to slow down, which the
   * caller honours through Retry-After. Neither a failure (it must not open the circuit) nor a
   * success (it proves nothing about recovery); a half-open probe's slot is freed for the next.
   */
  async recordRateLimited(): Promise<CircuitState> {
    this.freeProbe();
    return this.data.circuit.state;
  }

  /**
   * One upstream call's bookkeeping in one round trip: what it says about the provider's health
   * (as recordSuccess, recordFailure or recordRateLimited; "neutral" for a request we got wrong,
   * which says nothing) and the cache miss that caused it.
   */
  async recordCall(outcome: CallOutcome, policy: CircuitPolicy, now = Date.now()): Promise<CircuitState> {
    this.data.cache.misses++;
    if (outcome === "success") return this.recordSuccess(policy);
    if (outcome === "failure") return this.recordFailure(policy, now);
    if (outcome === "rate_limited") await this.recordRateLimited();
    await this.save(); // the miss
    return this.data.circuit.state;
  }

  async snapshot(policy?: CircuitPolicy, now = Date.now()): Promise<CircuitSnapshot> {
    const c = { ...this.data.circuit };
    // Report half_open as soon as it is due, even before the next call moves it.
    if (policy && c.state === "open" && c.openedAt !== null && now - c.openedAt >= policy.openMs) c.state = "half_open";
    return c;
  }

  /** Closes the circuit and forgets failures (operators, after fixing a provider key). */
  async resetCircuit(): Promise<void> {
    this.data.circuit = { state: "closed", consecutiveFailures: 0, openedAt: null, halfOpenSuccesses: 0 };
    this.freeProbe();
    await this.save();
  }

  async cacheCounters(): Promise<CacheCounters> {
    return { ...this.data.cache };
  }

  async resetCacheCounters(): Promise<void> {
    this.data.cache = { hits: 0, misses: 0, since: new Date().toISOString() };
    await this.save();
  }

  private async save(): Promise<void> {
    await this.ctx.storage.put("data", this.data);
  }
}
