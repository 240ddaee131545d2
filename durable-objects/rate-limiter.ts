/**
 * RateLimiter — one Durable Object per bucket (e.g. `login:ip:203.0.113.7`,
 * `lockout:user:alice`). A Durable Object processes one call at a time, so counts are exact
 * across every isolate and location, which KV (eventually consistent) cannot give.
 *
 * Sliding-window log: the timestamps of the hits inside the window are kept (at most `limit`
 * of them), so the limit triggers exactly at the threshold and Retry-After is exact too.
 * An alarm clears the storage once the window has passed, so idle buckets cost nothing.
 */
import { DurableObject } from "cloudflare:workers";

export interface ConsumeResult {
  allowed: boolean;
  remaining: number;
  /** Seconds until the next hit would be allowed (0 when allowed). */
  retryAfterS: number;
}

export interface FailureResult {
  locked: boolean;
  /** Epoch ms; null when not locked. */
  lockedUntil: number | null;
  /** True only for the failure that caused the lock (to notify the owner once). */
  justLocked: boolean;
  failures: number;
}

interface BucketState {
  hits: number[];
  failures: number[];
  lockedUntil: number | null;
  /** Epoch ms after which nothing stored here matters any more. */
  expiresAt: number;
}

const EMPTY: BucketState = { hits: [], failures: [], lockedUntil: null, expiresAt: 0 };

export class RateLimiter extends DurableObject<Env> {
  private state: BucketState = { ...EMPTY };
  /** Whether an alarm is set (null: not known yet, e.g. after the object was evicted). */
  private alarmSet: boolean | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.state = { ...EMPTY, ...(await ctx.storage.get<BucketState>("state")) };
    });
  }

  /** Counts one hit against `limit` per `windowMs`; a refused hit is not counted. */
  async consume(limit: number, windowMs: number, now = Date.now()): Promise<ConsumeResult> {
    const hits = this.state.hits.filter((t) => t > now - windowMs);
    if (hits.length >= limit) {
      const oldest = hits[hits.length - limit]!;
      this.state.hits = hits;
      return { allowed: false, remaining: 0, retryAfterS: Math.max(1, Math.ceil((oldest + windowMs - now) / 1000)) };
    }
    hits.push(now);
    this.state.hits = hits;
    await this.save(now + windowMs);
    return { allowed: true, remaining: limit - hits.length, retryAfterS: 0 };
  }

  /** Epoch ms until which the bucket is locked, or null. */
  async lockedUntil(now = Date.now()): Promise<number | null> {
    const until = this.state.lockedUntil;
    return until !== null && until > now ? until : null;
  }

  /**
   * Records a failure; `threshold` failures within `windowMs` lock the bucket for `lockMs`.
   */
  async recordFailure(threshold: number, windowMs: number, lockMs: number, now = Date.now()): Promise<FailureResult> {
    const current = await this.lockedUntil(now);
    if (current !== null) return { locked: true, lockedUntil: current, justLocked: false, failures: this.state.failures.length };
    const failures = this.state.failures.filter((t) => t > now - windowMs);
    failures.push(now);
    let justLocked = false;
    if (failures.length >= threshold) {
      this.state.lockedUntil = now + lockMs;
      this.state.failures = [];
      justLocked = true;
    } else {
      this.state.failures = failures;
    }
    await this.save(Math.max(now + windowMs, this.state.lockedUntil ?? 0));
    return { locked: justLocked, lockedUntil: justLocked ? this.state.lockedUntil : null, justLocked, failures: failures.length };
  }

  /**
   * Reserves one sign-in attempt before its password is checked, counting it as a failure up
   * front: the check and the count are one step, so a burst of concurrent guesses cannot all
   * pass "not locked yet" before any failure is recorded. `allowed` is false while locked.
   * A correct password then calls `attemptSucceeded`, which forgets the failures (and lifts the
   * lock if this very attempt set it).
   */
  async beginAttempt(threshold: number, windowMs: number, lockMs: number, now = Date.now()): Promise<FailureResult & { allowed: boolean }> {
    const current = await this.lockedUntil(now);
    if (current !== null)
      return { allowed: false, locked: true, lockedUntil: current, justLocked: false, failures: this.state.failures.length };
    return { allowed: true, ...(await this.recordFailure(threshold, windowMs, lockMs, now)) };
  }

  /** The reserved attempt had the right password: failures are forgotten, and a lock it set is lifted. */
  async attemptSucceeded(liftLock: boolean): Promise<void> {
    this.state.failures = [];
    if (liftLock) this.state.lockedUntil = null;
    await this.ctx.storage.put("state", this.state);
  }

  /** Forgets failures (after a successful login). A running lock stays. */
  async clearFailures(): Promise<void> {
    if (this.state.failures.length === 0) return;
    this.state.failures = [];
    await this.ctx.storage.put("state", this.state);
  }

  override async alarm(): Promise<void> {
    if (Date.now() < this.state.expiresAt) {
      // Hits since the alarm was set moved the expiry on: wait for the new one.
      await this.ctx.storage.setAlarm(this.state.expiresAt);
      this.alarmSet = true;
      return;
    }
    this.state = { ...EMPTY };
    await this.ctx.storage.deleteAll();
    this.alarmSet = false;
  }

  /**
   * Stores the state, and makes sure an alarm will clear it after `expiresAt`. One alarm is
   * enough however far later hits move the expiry: an alarm that fires early sets itself again
   * (above). So a hit costs one storage write, not a write plus reading and moving the alarm.
   */
  private async save(expiresAt: number): Promise<void> {
    this.state.expiresAt = Math.max(this.state.expiresAt, expiresAt);
    await this.ctx.storage.put("state", this.state);
    if (this.alarmSet) return;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(this.state.expiresAt);
    this.alarmSet = true;
  }
}
