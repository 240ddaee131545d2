/**
 * RateLimiter — one Durable Object per bucket (e.g. `login:ip:203.0.113.7`,
 * `lockout:user:alice`). A Durable Object processes one call at a time, so counts are exact
 * across every isolate and location, which KV (eventually consistent) cannot give.
 *
 * Sliding-window log: the timestamps of the hits inside the window are kept (at most `limit`
 * of them), so the limit triggers exactly at the threshold and Retry-After is exact too.
 *
 * An account's lockout bucket also counts, per name typed for it (its username or email), the
 * same sign-in attempts: the name's lock decides only what a refusal says (services/accounts.ts
 * reserveSignIn). Kept in the account's object, both are counted by one call, together.
 * It also keeps the account's wrong second-factor codes apart (`beginCodeAttempt`): the locks they
 * set grow, the locks wrong passwords set do not.
 * An alarm clears the storage once the window has passed, so idle buckets cost nothing.
 */
import { DurableObject } from "cloudflare:workers";

export interface ConsumeResult {
  allowed: boolean;
  remaining: number;
  /** Seconds until the next hit would be allowed (0 when allowed). */
  retryAfterS: number;
  /** The counted hit's time (epoch ms), which `refund` takes back; absent when refused. */
  at?: number;
}

export interface FailureResult {
  locked: boolean;
  /** Epoch ms; null when not locked. */
  lockedUntil: number | null;
  /** True only for the failure that caused the lock (to notify the owner once). */
  justLocked: boolean;
  failures: number;
}

/** Failures inside the window, and the lock they set. */
interface FailureLog {
  failures: number[];
  lockedUntil: number | null;
}

/** What one sign-in attempt reserved on the name typed; `allowed` is false while the name was locked. */
export interface NameAttempt {
  allowed: boolean;
  justLocked: boolean;
}

/**
 * An account's wrong second-factor codes (services/two-factor.ts). Only someone past the password
 * (or signed in) gets to enter one, so the locks they set grow; a stranger's wrong passwords never
 * touch this.
 */
interface CodeLog {
  /** Wrong codes since the last lock they set (or the last code proven), however slowly they came. */
  failures: number;
  /** Locks wrong codes set since a code was last proven: the next lasts 2^locks times the base. */
  locks: number;
  /** Epoch ms of the last wrong code; all of it is forgotten `memoryMs` later. */
  lastAt: number;
  /** A password reset lifted a lock since a code was last proven (`liftLockForReset`): the next will not. */
  liftedByReset?: boolean;
}

interface BucketState extends FailureLog {
  hits: number[];
  /**
   * An account's names (`name:<username or email>`, lower case) and their own failure logs. Only
   * names that find this account get here, so there are a few (two, and old ones after a change).
   */
  names?: Record<string, FailureLog>;
  codes?: CodeLog;
  /** Epoch ms after which nothing stored here matters any more. */
  expiresAt: number;
}

const EMPTY: BucketState = { hits: [], failures: [], lockedUntil: null, expiresAt: 0 };

/** Counts a failure in `log` (nothing while it is locked); `threshold` within `windowMs` locks it for `lockMs`. */
function countFailure(log: FailureLog, threshold: number, windowMs: number, lockMs: number, now: number): FailureResult {
  if (log.lockedUntil !== null && log.lockedUntil > now)
    return { locked: true, lockedUntil: log.lockedUntil, justLocked: false, failures: log.failures.length };
  const failures = log.failures.filter((t) => t > now - windowMs);
  failures.push(now);
  if (failures.length >= threshold) {
    log.lockedUntil = now + lockMs;
    log.failures = [];
    return { locked: true, lockedUntil: log.lockedUntil, justLocked: true, failures: failures.length };
  }
  log.failures = failures;
  return { locked: false, lockedUntil: null, justLocked: false, failures: failures.length };
}

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
    // Each hit's time is its own (one after another in the same millisecond is counted a
    // millisecond later), so `refund` takes back the hit it names and never a neighbour's.
    const at = Math.max(now, (hits.at(-1) ?? Number.NEGATIVE_INFINITY) + 1);
    hits.push(at);
    this.state.hits = hits;
    await this.save(at + windowMs);
    return { allowed: true, remaining: limit - hits.length, retryAfterS: 0, at };
  }

  /**
   * Takes back the hit `consume` counted at `at`: nothing when it is not in the log (given back
   * already, or left the window), so a refund never gives back more than its own hit.
   */
  async refund(at: number): Promise<void> {
    const i = this.state.hits.indexOf(at);
    if (i === -1) return;
    this.state.hits.splice(i, 1);
    await this.ctx.storage.put("state", this.state);
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
    const result = countFailure(this.state, threshold, windowMs, lockMs, now);
    if (!result.locked || result.justLocked) await this.save(Math.max(now + windowMs, this.state.lockedUntil ?? 0));
    return result;
  }

  /**
   * Reserves one sign-in attempt before its password is checked, counting it as a failure up
   * front: the check and the count are one step, so a burst of concurrent guesses cannot all
   * pass "not locked yet" before any failure is recorded. `allowed` is false while locked.
   * A correct password then calls `attemptSucceeded`, which forgets the failures (and lifts the
   * lock if this very attempt set it). With `name` (an account's bucket), the attempt is counted
   * in that name's log too, by its own rule and in the same step, whether or not the account is
   * locked (a name tried ten times more locks as an unknown name's bucket would).
   */
  async beginAttempt(
    threshold: number,
    windowMs: number,
    lockMs: number,
    name: string | null = null,
    now = Date.now(),
  ): Promise<FailureResult & { allowed: boolean; name: NameAttempt | null }> {
    let named: NameAttempt | null = null;
    if (name !== null) {
      const names = this.liveNames(windowMs, now);
      const log = names[name] ?? { failures: [], lockedUntil: null };
      names[name] = log;
      const result = countFailure(log, threshold, windowMs, lockMs, now);
      named = { allowed: !result.locked || result.justLocked, justLocked: result.justLocked };
    }
    const current = await this.lockedUntil(now);
    const account =
      current !== null
        ? { allowed: false, locked: true, lockedUntil: current, justLocked: false, failures: this.state.failures.length }
        : { allowed: true, ...countFailure(this.state, threshold, windowMs, lockMs, now) };
    const locks = [this.state.lockedUntil ?? 0, ...Object.values(this.state.names ?? {}).map((n) => n.lockedUntil ?? 0)];
    if (account.allowed || named !== null) await this.save(Math.max(now + windowMs, ...locks));
    return { ...account, name: named };
  }

  /**
   * Reserves one attempt at a second factor (an authenticator or recovery code) before it is
   * checked: counted as `beginAttempt` counts a sign-in (the same window and threshold, no name),
   * and also as a wrong code until `attemptSucceeded` says a code was proven. Wrong codes are also
   * counted apart, without a window, so that guessing slowly does not escape: every
   * `threshold`-th since the last lock they set locks the account too. A lock a wrong code sets
   * (by either count) lasts `lockMs` times 2 for each lock wrong codes set before it — 1×, 2×,
   * 4×… — up to `maxLockMs`. They are forgotten `memoryMs` after the last one, or once a code is
   * proven. `allowed` is false while locked (and nothing is counted).
   */
  async beginCodeAttempt(
    threshold: number,
    windowMs: number,
    lockMs: number,
    maxLockMs: number,
    memoryMs: number,
    now = Date.now(),
  ): Promise<FailureResult & { allowed: boolean }> {
    const current = await this.lockedUntil(now);
    if (current !== null)
      return { allowed: false, locked: true, lockedUntil: current, justLocked: false, failures: this.state.failures.length };
    const kept = this.state.codes;
    const codes = kept && kept.lastAt > now - memoryMs ? kept : { failures: 0, locks: 0, lastAt: now };
    codes.failures += 1;
    codes.lastAt = now;
    const grownMs = Math.min(lockMs * 2 ** Math.min(codes.locks, 32), Math.max(maxLockMs, lockMs));
    let result = countFailure(this.state, threshold, windowMs, grownMs, now);
    if (!result.locked && codes.failures >= threshold) {
      this.state.lockedUntil = now + grownMs;
      this.state.failures = [];
      result = { locked: true, lockedUntil: this.state.lockedUntil, justLocked: true, failures: result.failures };
    }
    if (result.justLocked) {
      codes.locks += 1;
      codes.failures = 0;
    }
    this.state.codes = codes;
    await this.save(Math.max(now + windowMs, now + memoryMs, this.state.lockedUntil ?? 0));
    return { allowed: true, ...result };
  }

  /**
   * The reserved attempt had the right password (or code): failures are forgotten, and a lock it
   * set is lifted; the same for the name it was reserved under, when that name's part was allowed.
   * With `codeProven` (a second factor was proven: its owner is signing in), the wrong codes and
   * the locks they set are forgotten too, so the next lock they set is short again.
   */
  async attemptSucceeded(liftLock: boolean, name: { name: string; liftLock: boolean } | null = null, codeProven = false): Promise<void> {
    this.state.failures = [];
    if (liftLock) this.state.lockedUntil = null;
    if (codeProven) delete this.state.codes;
    const log = name ? this.state.names?.[name.name] : undefined;
    if (log) {
      log.failures = [];
      if (name?.liftLock) log.lockedUntil = null;
    }
    await this.ctx.storage.put("state", this.state);
  }

  /**
   * A password reset on an account with a second factor (its owner proved the inbox, and whoever
   * guessed codes had the old password, which the reset replaced): lifts a running lock once until
   * a code is proven (or the wrong codes are forgotten), and the next wrong code locks again, for
   * as long as the grown lock it would have set. So the owner locked out by someone else's guesses
   * signs in at once with a right code, and whoever holds the inbox buys one guess, not a round:
   * another reset lifts nothing. False when nothing was lifted (not locked, or lifted already).
   */
  async liftLockForReset(threshold: number, memoryMs: number, now = Date.now()): Promise<boolean> {
    if ((await this.lockedUntil(now)) === null) return false;
    const kept = this.state.codes && this.state.codes.lastAt > now - memoryMs ? this.state.codes : undefined;
    if (kept?.liftedByReset) return false;
    this.state.lockedUntil = null;
    this.state.failures = [];
    this.state.codes = { failures: Math.max(threshold - 1, 0), locks: kept?.locks ?? 0, lastAt: now, liftedByReset: true };
    await this.save(now + memoryMs);
    return true;
  }

  /** The names whose log still matters (a running lock, or a failure inside the window). */
  private liveNames(windowMs: number, now: number): Record<string, FailureLog> {
    const live: Record<string, FailureLog> = {};
    for (const [key, log] of Object.entries(this.state.names ?? {}))
      if ((log.lockedUntil ?? 0) > now || log.failures.some((t) => t > now - windowMs)) live[key] = log;
    this.state.names = live;
    return live;
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
