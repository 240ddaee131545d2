/**
 * spendRateLimits counts one hit in several limits for work they all pay for (an identification:
 * the account's and the address's; a care-guide regeneration: per minute and per hour).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/lib/logger";
import { spendRateLimits } from "../../src/services/rate-limits";

const logger = createLogger({}, "error");

/** The RATE_LIMITER binding with one bucket unreachable: its object's every call throws. */
function oneBucketDown(down: string) {
  const ids = new Map<unknown, string>();
  const limiter = {
    idFromName(name: string) {
      const id = env.RATE_LIMITER.idFromName(name);
      ids.set(id, name);
      return id;
    },
    get(id: DurableObjectId) {
      if (ids.get(id) !== down) return env.RATE_LIMITER.get(id);
      const unreachable = () => Promise.reject(new Error("Durable Object unreachable"));
      return { consume: unreachable, refund: unreachable };
    },
  };
  return { ...env, RATE_LIMITER: limiter as unknown as typeof env.RATE_LIMITER };
}
const MINUTE = { limit: 1, windowMs: 60_000 };
const HOUR = { limit: 1, windowMs: 3_600_000 };

describe("spendRateLimits", () => {
  it("refused by more than one limit, it says the longest wait: after a shorter one the call would be refused again", async () => {
    // Either order: the first limit listed is not the one whose wait is answered.
    for (const order of [
      ["minute", "hour"],
      ["hour", "minute"],
    ] as const) {
      const names = { minute: `test-minute:${crypto.randomUUID()}`, hour: `test-hour:${crypto.randomUUID()}` };
      const limits = order.map((kind) => [names[kind], kind === "minute" ? MINUTE : HOUR] as [string, typeof MINUTE]);
      await spendRateLimits(env, limits, logger);
      const refused = await spendRateLimits(env, limits, logger).catch((e: unknown) => e);
      expect(refused, order.join(", ")).toMatchObject({ status: 429, code: "RATE_LIMITED" });
      const wait = Number((refused as { headers: Record<string, string> }).headers["Retry-After"]);
      expect(wait, order.join(", ")).toBeGreaterThan(60);
      expect(wait, order.join(", ")).toBeLessThanOrEqual(3600);
      expect((refused as Error).message, order.join(", ")).toMatch(/minutes|hour/);
    }
  });

  it("a limiter that cannot be reached goes ahead of a refusal, and the hit another limit took is given back", async () => {
    for (const refusing of [false, true]) {
      const open = `test-open:${crypto.randomUUID()}`;
      const down = `test-down:${crypto.randomUUID()}`;
      if (refusing) await spendRateLimits(env, [[open, HOUR]], logger);
      const failed = await spendRateLimits(
        oneBucketDown(down),
        [
          [open, HOUR],
          [down, HOUR],
        ],
        logger,
      ).catch((e: unknown) => e);
      // Not a 429 with a wait that means nothing: the caller decides what a limiter failure means (care falls back to its rule-based advice).
      expect(failed, `open limit refusing: ${refusing}`).toBeInstanceOf(Error);
      expect((failed as Error).message).toBe("Durable Object unreachable");
      if (!refusing) {
        // The open limit's hit was given back: its one allowed call is still there.
        await expect(spendRateLimits(env, [[open, HOUR]], logger)).resolves.toBeTypeOf("function");
      }
    }
  });
});
