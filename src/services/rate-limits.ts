/**
 * Abuse limits (API.md §1). Exact counters live in the RateLimiter Durable Object, one object
 * per bucket, so every isolate in every location sees the same count. Refusals are 429 with
 * Retry-After and code RATE_LIMITED — never 403.
 */
import { type Config, getConfig } from "../config";
import type { Bindings } from "../env";
import { humanDuration } from "../lib/durations";
import { AppError } from "../lib/errors";
import type { Logger } from "../lib/logger";

export interface Rate {
  limit: number;
  windowMs: number;
}

function bucket(env: Bindings, name: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(name));
}

/** Counts one hit in `name`; false when over the limit (for limits the caller must not reveal). */
export async function withinRateLimit(env: Bindings, name: string, rate: Rate): Promise<boolean> {
  return (await bucket(env, name).consume(rate.limit, rate.windowMs)).allowed;
}

/** Counts one hit in `name`; throws 429 RATE_LIMITED with Retry-After when over the limit. */
export async function enforceRateLimit(env: Bindings, name: string, rate: Rate): Promise<void> {
  const refusal = await rateLimitRefusal(env, name, rate);
  if (refusal) throw refusal;
}

/** Counts one hit in `name`; the 429 RATE_LIMITED to answer when over the limit, else undefined. */
export async function rateLimitRefusal(env: Bindings, name: string, rate: Rate): Promise<AppError | undefined> {
  const result = await bucket(env, name).consume(rate.limit, rate.windowMs);
  return result.allowed ? undefined : tooMany(result.retryAfterS);
}

function tooMany(retryAfterS: number): AppError {
  return new AppError("RATE_LIMITED", 429, `Too many requests. Please try again in ${humanDuration(retryAfterS)}.`, undefined, {
    "Retry-After": String(retryAfterS),
  });
}

/** Gives back a hit that paid for work which then did not happen; never throws, and gives back once however often it is called. */
export type Refund = () => Promise<void>;

/**
 * Counts one hit in `name` (429 RATE_LIMITED when over the limit), for a limit that pays for
 * work: the refund gives the hit back when the work does not happen after all. A refund the
 * limiter does not take (unreachable, or failing just then) leaves the hit spent and is logged:
 * the caller's own answer (a 400, 409 or 503) still stands.
 */
export async function spendRateLimit(env: Bindings, name: string, rate: Rate, logger: Logger): Promise<Refund> {
  const result = await bucket(env, name).consume(rate.limit, rate.windowMs);
  if (!result.allowed) throw tooMany(result.retryAfterS);
  const at = result.at!;
  let given = false;
  return async () => {
    if (given) return;
    given = true;
    try {
      await bucket(env, name).refund(at);
    } catch (err) {
      // The bucket's kind, not its key: a key can be the caller's IP address.
      logger.warn("giving back a rate-limit hit failed; it stays spent", {
        limit: name.slice(0, name.lastIndexOf(":")),
        error: String(err),
      });
    }
  };
}

/**
 * Counts one hit in each of `limits` at once, for work they all pay for: when any refuses, the
 * others' hits are given back and a 429 is thrown — the one with the longest wait when several
 * refuse, since the call is refused again until every limit has room. The refund gives back
 * every hit.
 */
export async function spendRateLimits(env: Bindings, limits: [name: string, rate: Rate][], logger: Logger): Promise<Refund> {
  const spent = await Promise.allSettled(limits.map(([name, rate]) => spendRateLimit(env, name, rate, logger)));
  const refunds = spent.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const refundAll: Refund = async () => {
    await Promise.all(refunds.map((refund) => refund()));
  };
  const reasons = spent.flatMap((s) => (s.status === "rejected" ? [s.reason as unknown] : []));
  if (reasons.length > 0) {
    await refundAll();
    // A failure that is no refusal (the limiter unreachable) goes first; else the longest wait.
    const wait = (reason: unknown) =>
      reason instanceof AppError ? Number(reason.headers?.["Retry-After"] ?? 0) : Number.POSITIVE_INFINITY;
    throw reasons.reduce((longest, reason) => (wait(reason) > wait(longest) ? reason : longest));
  }
  return refundAll;
}

/**
 * The allowance a paid identification spends (synchronous, queued or diagnosis): the caller's
 * IDENTIFY_RATE_LIMIT (per account, or per address when anonymous) and its address's
 * IDENTIFY_ADDRESS_RATE_LIMIT, which every account from that address shares. An address
 * Cloudflare did not give ("unknown", never in production) is not one client: only the account's.
 */
export function spendIdentifyBudget(env: Bindings, caller: { userId: string | null; address: string }, logger: Logger): Promise<Refund> {
  const config = getConfig(env);
  const own = caller.userId ? `identify:user:${caller.userId}` : `identify:ip:${caller.address}`;
  const limits: [string, Rate][] = [[own, config.IDENTIFY_RATE_LIMIT]];
  if (caller.address !== "unknown") limits.push([`identify-address:ip:${caller.address}`, config.IDENTIFY_ADDRESS_RATE_LIMIT]);
  return spendRateLimits(env, limits, logger);
}

/** Runs `work` paid for by an already spent hit: when it throws, the hit is given back and the error still goes to the caller. */
export async function refundingOnFailure<R>(refund: Refund, work: () => Promise<R>): Promise<R> {
  try {
    return await work();
  } catch (err) {
    await refund();
    throw err;
  }
}

/**
 * The bucket of account mail to one inbox. Spellings that reach the same inbox share it: case,
 * surrounding space, a `+tag` (sub-addressing, RFC 5233), a trailing dot or a Unicode domain
 * (counted as its punycode), and Gmail's dots and googlemail.com. Erring towards one bucket
 * only limits harder: two inboxes that merge here share a limit.
 */
export function mailBucketName(address: string): string {
  const lower = address.trim().toLowerCase();
  const at = lower.lastIndexOf("@");
  if (at <= 0) return `account-mail:${lower}`;
  let local = lower.slice(0, at).split("+")[0]!;
  let domain = lower.slice(at + 1).replace(/\.+$/, "");
  try {
    domain = new URL(`http://${domain}`).hostname;
  } catch {
    // Not a host name: kept as written.
  }
  if (domain === "googlemail.com") domain = "gmail.com";
  if (domain === "gmail.com") local = local.replaceAll(".", "");
  return `account-mail:${local}@${domain}`;
}

/**
 * The rate-limit key for the client's address as Cloudflare saw it: an IPv4 address as is, an
 * IPv6 address as its /64 — one subscriber usually gets a whole /64, so keying by the full
 * address would hand an attacker 2^64 fresh buckets. One shared bucket only when truly unknown.
 */
export function clientIp(request: Request): string {
  const address = request.headers.get("CF-Connecting-IP")?.trim();
  if (!address) return "unknown";
  if (!address.includes(":")) return address;
  // An IPv4 client written as IPv6 (::ffff:192.0.2.1) is that IPv4 address: its /64 would be
  // ::/64, one bucket shared by every such client.
  return ipv4Mapped(address) ?? ipv6Prefix64(address) ?? "unknown";
}

/** `::ffff:192.0.2.1` (or `::ffff:c000:201`) → `192.0.2.1`; null for any other address. */
export function ipv4Mapped(address: string): string | null {
  const text = address.toLowerCase().replace(/^\[|\]$/g, "");
  const dotted = /^(?:0{1,4}:){0,4}:?(?:0{1,4}:)?:?ffff:(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  const parts = dotted
    ? dotted.slice(1).map(Number)
    : (() => {
        const hex = /^(?:0{1,4}:){0,4}:?(?:0{1,4}:)?:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(text);
        if (!hex) return null;
        const [hi, lo] = [parseInt(hex[1]!, 16), parseInt(hex[2]!, 16)];
        return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff];
      })();
  if (!parts || parts.some((n) => n > 255)) return null;
  return parts.join(".");
}

/** `2001:db8:a:b:1:2:3:4` → `2001:db8:a:b::/64`; null for something that is not IPv6. */
export function ipv6Prefix64(address: string): string | null {
  let text = address
    .toLowerCase()
    .replace(/^\[|\]$/g, "")
    .replace(/%.*$/, "");
  // An embedded IPv4 tail (::ffff:192.0.2.1) is two hextets.
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    if ([a, b, c, d].some((n) => n > 255)) return null;
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return null;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}

// ---- Account lockout: N failed sign-ins for one account (or unknown name) lock it. ----

export function lockoutBucketName(accountKey: string): string {
  return `lockout:${accountKey}`;
}

/** A reserved sign-in attempt: whether it set the lock, and the part of the name it was typed under. */
export interface LoginAttempt {
  justLocked: boolean;
  /** The name typed (`nameKey`), while its own count allowed it; null otherwise. */
  name: { key: string; justLocked: boolean } | null;
}

/**
 * Reserves a sign-in attempt for `accountKey` before the password is checked (the attempt counts
 * as a failure until `loginAttemptSucceeded`). One Durable Object call, so concurrent guesses
 * cannot slip past the threshold. With `nameKey` (the name typed for an existing account), the
 * same call counts the attempt under that name too, in the account's object: the name's count
 * decides only what a refusal says. Throws 429 ACCOUNT_LOCKED while the account is locked and
 * the name typed is too (or none was given); null while the account is locked but that name is
 * not, for the caller to answer as a wrong password (services/accounts.ts reserveSignIn).
 */
export async function beginLoginAttempt(env: Bindings, config: Config, accountKey: string): Promise<LoginAttempt>;
export async function beginLoginAttempt(env: Bindings, config: Config, accountKey: string, nameKey: string): Promise<LoginAttempt | null>;
export async function beginLoginAttempt(env: Bindings, config: Config, accountKey: string, nameKey?: string): Promise<LoginAttempt | null> {
  const attempt = await bucket(env, lockoutBucketName(accountKey)).beginAttempt(
    config.LOCKOUT_THRESHOLD,
    config.LOCKOUT_WINDOW_S * 1000,
    config.LOCKOUT_DURATION_S * 1000,
    nameKey ?? null,
  );
  const name = nameKey !== undefined && attempt.name?.allowed ? { key: nameKey, justLocked: attempt.name.justLocked } : null;
  if (attempt.allowed) return { justLocked: attempt.justLocked, name };
  if (name) return null;
  throw lockedError(attempt.lockedUntil ?? Date.now());
}

/** The longest a lock set by wrong second-factor codes lasts (each lasts twice the one before). */
export const CODE_LOCK_MAX_S = 24 * 3600;
/** How long an account's wrong second-factor codes are remembered after the last one, unless a code is proven first. */
export const CODE_MEMORY_S = 30 * 24 * 3600;

/**
 * Reserves an attempt at a second factor for `accountKey` (durable-objects/rate-limiter.ts
 * beginCodeAttempt): counted as a sign-in attempt, and as a wrong code until it is proven. The
 * locks wrong codes set grow — LOCKOUT_DURATION_S, then twice that, and so on up to
 * CODE_LOCK_MAX_S — and every LOCKOUT_THRESHOLD-th wrong code locks, however slowly they came;
 * until a code is proven. Wrong passwords never make a lock grow: anyone can send them. Throws 429
 * ACCOUNT_LOCKED while locked. `lockedUntil` is set when this attempt set the lock.
 */
export async function beginCodeAttempt(
  env: Bindings,
  config: Config,
  accountKey: string,
): Promise<LoginAttempt & { lockedUntil: number | null }> {
  const attempt = await bucket(env, lockoutBucketName(accountKey)).beginCodeAttempt(
    config.LOCKOUT_THRESHOLD,
    config.LOCKOUT_WINDOW_S * 1000,
    config.LOCKOUT_DURATION_S * 1000,
    CODE_LOCK_MAX_S * 1000,
    CODE_MEMORY_S * 1000,
  );
  if (!attempt.allowed) throw lockedError(attempt.lockedUntil ?? Date.now());
  return { justLocked: attempt.justLocked, name: null, lockedUntil: attempt.justLocked ? attempt.lockedUntil : null };
}

/**
 * The reserved attempt had the right password (or code): one call forgets its failures, the
 * account's and its name's; with `codeProven`, the wrong codes and the growth of their locks too.
 */
export async function loginAttemptSucceeded(env: Bindings, accountKey: string, attempt: LoginAttempt, codeProven = false): Promise<void> {
  const name = attempt.name && { name: attempt.name.key, liftLock: attempt.name.justLocked };
  await bucket(env, lockoutBucketName(accountKey)).attemptSucceeded(attempt.justLocked, name, codeProven);
}

/** Lifts the account's lockout and forgets its failures: its owner has just proven the address (a password reset). */
export async function liftLockout(env: Bindings, accountKey: string): Promise<void> {
  await bucket(env, lockoutBucketName(accountKey)).attemptSucceeded(true);
}

/**
 * After a password reset on an account with a second factor: lifts its lock once until a code is
 * proven; the next wrong code locks again (RateLimiter.liftLockForReset). True when it lifted one.
 */
export async function liftCodeLockForReset(env: Bindings, config: Config, accountKey: string): Promise<boolean> {
  return bucket(env, lockoutBucketName(accountKey)).liftLockForReset(config.LOCKOUT_THRESHOLD, CODE_MEMORY_S * 1000);
}

export function lockedError(until: number): AppError {
  const retryAfter = Math.max(1, Math.ceil((until - Date.now()) / 1000));
  return new AppError(
    "ACCOUNT_LOCKED",
    429,
    `This account is temporarily locked after too many failed sign-in attempts. Please try again in ${humanDuration(retryAfter)}.`,
    undefined,
    { "Retry-After": String(retryAfter) },
  );
}
