/**
 * What every queue job kind shares (API.md §2.3): at most MAX_ATTEMPTS attempts, exponential
 * backoff with jitter (5 s, 10 s, 20 s, 40 s ± 50 %), a provider 429 waits for its Retry-After
 * instead, capped at 300 s; and the shape a job kind plugs into the dispatcher (jobs/queue.ts).
 */
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import type { ProviderError } from "../providers/types";

export const MAX_ATTEMPTS = 5;
const BASE_DELAY_S = 5;
export const MAX_DELAY_S = 300;

export function backoffDelayS(attempt: number, random = Math.random()): number {
  const exponential = BASE_DELAY_S * 2 ** Math.max(0, attempt - 1);
  return Math.min(MAX_DELAY_S, Math.max(1, Math.round(exponential * (0.5 + random))));
}

/** The wait before the next attempt after these provider errors; `rateLimited` when a 429 set it. */
export function retryDelayFor(errors: ProviderError[], attempt: number): { delayS: number; rateLimited: boolean } {
  const rateLimits = errors.filter((e) => e.kind === "rate_limited" && e.retryAfterS !== undefined).map((e) => e.retryAfterS!);
  if (rateLimits.length > 0) return { delayS: Math.min(MAX_DELAY_S, Math.max(1, ...rateLimits)), rateLimited: true };
  return { delayS: backoffDelayS(attempt), rateLimited: false };
}

export type JobResult = { kind: "done" } | { kind: "retry"; delayS: number };

/** A kind of queue job: how to recognise its messages, run one, and clean up after it. */
export interface JobKind<J extends { request_id: string; user_id: string }> {
  /** For logs and error reports. */
  name: string;
  matches(body: unknown): body is J;
  process(job: J, attempt: number, env: Bindings, ctx: ExecutionContext, logger: Logger): Promise<JobResult>;
  /** After a crash of our own infrastructure: put the request back to pending (never left processing). */
  release(env: Bindings, job: J): Promise<void>;
  /** Dead-lettered: end the request failed. Returns true when it changed (so the owner is told once). */
  fail(env: Bindings, job: J, message: string): Promise<boolean>;
  deadLetterMessage: string;
}
