/**
 * Abuse limits (API.md §1). Exact counters live in the RateLimiter Durable Object, one object
 * per bucket, so every isolate in every location sees the same count. Refusals are 429 with
 * Retry-After and code RATE_LIMITED — never 403.
 */
import type { Config } from "../config";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";

export interface Rate {
  limit: number;
  windowMs: number;
}

function bucket(env: Bindings, name: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(name));
}

/** Counts one hit in `name`; throws 429 RATE_LIMITED with Retry-After when over the limit. */
export async function enforceRateLimit(env: Bindings, name: string, rate: Rate): Promise<void> {
  const result = await bucket(env, name).consume(rate.limit, rate.windowMs);
  if (!result.allowed) {
    throw new AppError(
      "RATE_LIMITED",
      429,
      `Too many requests. Please try again in ${result.retryAfterS} seconds.`,
      undefined,
      { "Retry-After": String(result.retryAfterS) },
    );
  }
}

/** The client's address as Cloudflare saw it; one shared bucket only when it is truly unknown. */
export function clientIp(request: Request): string {
  return request.headers.get("CF-Connecting-IP") ?? "unknown";
}

// ---- Account lockout: N failed sign-ins for one account (or unknown name) lock it. ----

export function lockoutBucketName(accountKey: string): string {
  return `lockout:${accountKey}`;
}

export async function assertNotLocked(env: Bindings, accountKey: string): Promise<void> {
  const until = await bucket(env, lockoutBucketName(accountKey)).lockedUntil();
  if (until !== null) throw lockedError(until);
}

export async function recordLoginFailure(env: Bindings, config: Config, accountKey: string) {
  return bucket(env, lockoutBucketName(accountKey)).recordFailure(
    config.LOCKOUT_THRESHOLD,
    config.LOCKOUT_WINDOW_S * 1000,
    config.LOCKOUT_DURATION_S * 1000,
  );
}

export async function clearLoginFailures(env: Bindings, accountKey: string): Promise<void> {
  await bucket(env, lockoutBucketName(accountKey)).clearFailures();
}

export function lockedError(until: number): AppError {
  const retryAfter = Math.max(1, Math.ceil((until - Date.now()) / 1000));
  return new AppError(
    "ACCOUNT_LOCKED",
    429,
    "This account is temporarily locked after too many failed sign-in attempts. Please try again later.",
    undefined,
    { "Retry-After": String(retryAfter) },
  );
}
