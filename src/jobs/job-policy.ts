/**
 * What every queue job kind shares (API.md §2.3): at most MAX_ATTEMPTS attempts, exponential
 * backoff with jitter (5 s, 10 s, 20 s, 40 s ± 50 %), a provider 429 waits for its Retry-After
 * instead, capped at 300 s; an open circuit breaker makes the job wait until it may half-open
 * without spending an attempt; and the shape a job kind plugs into the dispatcher (jobs/queue.ts).
 */
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import type { ProviderError } from "../providers/types";
import { progress } from "../services/progress";

export const MAX_ATTEMPTS = 5;
const BASE_DELAY_S = 5;
export const MAX_DELAY_S = 300;

export function backoffDelayS(attempt: number, random = Math.random()): number {
  const exponential = BASE_DELAY_S * 2 ** Math.max(0, attempt - 1);
  return Math.min(MAX_DELAY_S, Math.max(1, Math.round(exponential * (0.5 + random))));
}

/**
 * The wait before the next attempt after these provider errors; `rateLimited` when a 429 set it.
 * An open circuit among them is a floor: retrying before it may half-open would only meet it
 * again and spend an attempt.
 */
export function retryDelayFor(errors: ProviderError[], attempt: number): { delayS: number; rateLimited: boolean } {
  const rateLimits = errors.filter((e) => e.kind === "rate_limited" && e.retryAfterS !== undefined).map((e) => e.retryAfterS!);
  const circuitFloor = Math.max(
    0,
    ...errors.filter((e) => e.kind === "circuit_open" && e.retryAfterS !== undefined).map((e) => e.retryAfterS!),
  );
  if (rateLimits.length > 0) return { delayS: Math.min(MAX_DELAY_S, Math.max(1, circuitFloor, ...rateLimits)), rateLimited: true };
  return { delayS: Math.min(MAX_DELAY_S, Math.max(backoffDelayS(attempt), circuitFloor)), rateLimited: false };
}

/**
 * Circuit waits (API.md §2.3 with the breaker): when every provider a job needed refused because
 * its circuit is open, nothing was tried and nothing failed, so the job waits until the first
 * circuit may half-open (plus jitter, so waiting jobs do not all arrive for the one probe at
 * once) without spending an attempt. Bounded, so a provider that never recovers cannot keep a
 * job waiting forever: after MAX_CIRCUIT_WAITS an open circuit counts as a failed attempt again.
 */
export const MAX_CIRCUIT_WAITS = 30;
const CIRCUIT_JITTER_S = 5;

/** Counters a job message carries across re-sends (see jobs/queue.ts). */
export interface JobCounters {
  /** Failed attempts (real provider failures, crashes) before this message was sent. */
  failures?: number;
  /** Circuit waits so far. */
  circuit_waits?: number;
}

/** The delay of a circuit wait, or null when these errors are not all open circuits (or the job waited enough). */
export function circuitWaitDelayS(errors: ProviderError[], waitsSoFar: number, random = Math.random()): number | null {
  if (errors.length === 0 || waitsSoFar >= MAX_CIRCUIT_WAITS || !errors.every((e) => e.kind === "circuit_open")) return null;
  // The earliest moment any of them may let a call through (one provider answering is enough).
  const untilHalfOpenS = Math.min(...errors.map((e) => e.retryAfterS ?? BASE_DELAY_S));
  return Math.min(MAX_DELAY_S, Math.max(1, untilHalfOpenS) + 1 + Math.floor(random * CIRCUIT_JITTER_S));
}

/**
 * An open circuit on every provider the job needed means nothing was tried: the request goes
 * back to `pending` with the half-open as its deadline, the owner hears `retry_scheduled`, and
 * the job is re-sent carrying its counters, so the wait spends no attempt (even on the last
 * one). Null when the job must retry or fail the ordinary way.
 */
export async function waitForCircuit<J extends JobCounters>(
  job: J & { request_id: string },
  errors: ProviderError[],
  attempt: number,
  hooks: {
    release: (delayS: number, reason: string) => Promise<void>;
    say: (m: ReturnType<typeof progress>) => Promise<void>;
    logger: Logger;
    what: string;
  },
): Promise<JobResult | null> {
  const waits = counter(job.circuit_waits);
  const waitS = circuitWaitDelayS(errors, waits);
  if (waitS === null) return null;
  await hooks.release(waitS, `${hooks.what} unavailable (circuit open); retrying in ${waitS} s`);
  await hooks.say(
    progress(job.request_id, "retry_scheduled", "pending", {
      delay_seconds: waitS,
      attempt,
      max_attempts: MAX_ATTEMPTS,
      reason: "circuit_open",
    }),
  );
  hooks.logger.info("circuit open; job waits", { delay_s: waitS, circuit_waits: waits + 1 });
  return { kind: "wait", delayS: waitS, body: { ...job, failures: attempt - 1, circuit_waits: waits + 1 } };
}

/** A counter from a message body: a non-negative integer, else 0 (old or hand-made messages). */
export function counter(value: unknown): number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : 0;
}

/**
 * Leases (migration 0012). A consumer's claim on a request (`processing`) lasts JOB_LEASE_MS,
 * well beyond the longest job (both providers in parallel ≤ 35 s, a single-flight wait ≤ 40 s,
 * Trefle 8 s, OpenAI 45 s: about 2 minutes at worst), so a live job is never taken over. While
 * the lease is live another delivery of the same job is acked without work (the one holding it,
 * its retry message or the sweep carries the job on); once it has run out the job can be claimed
 * again. A `pending` request's deadline is when its message becomes deliverable.
 */
export const JOB_LEASE_MS = 5 * 60_000;

/**
 * A `pending`/`processing` request whose deadline passed more than this long ago has no live
 * queue message: twice the longest delay any message is ever given (MAX_DELAY_S, the Retry-After
 * cap; backoff and circuit waits are shorter, wrangler.toml's retry_delay is 5–10 s), which also
 * covers delivery latency and a modest backlog. A request wrongly judged stuck costs one more
 * delivery, which the exclusive claim and the status-guarded completion make harmless.
 */
export const STUCK_MARGIN_MS = 2 * MAX_DELAY_S * 1000;

export function stuckCutoff(now = Date.now()): string {
  return new Date(now - STUCK_MARGIN_MS).toISOString();
}

/** An ISO timestamp `ms` from `now`, in the format D1 rows use (strftime %f). */
export function isoIn(ms: number, now = Date.now()): string {
  return new Date(now + ms).toISOString();
}

/**
 * done: ack. retry: the queue retries this message (counts in message.attempts). wait: ack and
 * send `body` again after `delayS` (a circuit wait that must not count; see jobs/queue.ts).
 */
export type JobResult = { kind: "done" } | { kind: "retry"; delayS: number } | { kind: "wait"; delayS: number; body: unknown };

/** A job's request, claimed for it with the rest of its queue batch (`row` undefined: nothing to take), and how long that took. */
export interface Claimed {
  row: unknown;
  ms: number;
}

/** A kind of queue job: how to recognise its messages, run one, and clean up after it. */
export interface JobKind<J extends { request_id: string; user_id: string }> {
  /** For logs and error reports. */
  name: string;
  matches(body: unknown): body is J;
  /** `claimed`: the job's request as `claim` claimed it with the rest of its batch. */
  process(job: J, attempt: number, env: Bindings, ctx: ExecutionContext, logger: Logger, claimed: Claimed): Promise<JobResult>;
  /**
   * Claims the requests of a batch's jobs of this kind in one round trip (a lone job's too): one
   * entry per job, in order, the request's row or undefined (nothing to take: finished, leased
   * by another delivery, deleted). Each claim writes its job's token from `tokens`. All or none:
   * it throws when it claimed nothing (or when D1 committed it but the answer was lost).
   */
  claim(env: Bindings, jobs: J[], tokens: string[]): Promise<unknown[]>;
  /**
   * After a crash of our own infrastructure: put the request this delivery claimed (its claim
   * wrote `token`) back to pending (never left processing), deliverable again in `delayS` (its
   * retry's delay). A request it did not claim is left alone.
   */
  release(env: Bindings, job: J, token: string, delayS: number): Promise<void>;
  /**
   * Dead-lettered: end the request failed and tell its owner. Returns false when it was final
   * already, or another delivery holds it (nothing is told). `token`: the failing delivery's claim
   * token, for a delivery that gives up itself, or null for the dead-letter queue, which holds no
   * claim: a request another delivery holds (processing, its lease live) is left to it.
   */
  fail(env: Bindings, job: J, message: string, logger: Logger, token: string | null): Promise<boolean>;
  deadLetterMessage: string;
}
