/**
 * spendRateLimits counts one hit in several limits for work they all pay for (an identification:
 * the account's and the address's; a care-guide regeneration: per minute and per hour).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/lib/logger";
import { spendRateLimits } from "../../src/services/rate-limits";

const logger = createLogger({}, "error");
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
});
