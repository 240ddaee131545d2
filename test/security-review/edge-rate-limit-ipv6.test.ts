// Security review finding, fixed — this test keeps it fixed. The finding: the coarse per-address limit in front of the whole API (src/app.ts, the
// API_RATE_LIMITER binding, 600 requests / 60 s) is keyed by the raw CF-Connecting-IP, not by
// clientIp() (IPv4 as is, IPv6 by /64). An IPv6 client owns a whole /64 and rotates the interface
// id per request: every request lands in a fresh bucket and the limit never fires.
import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";

const LIMIT = 600;

/**
 * Sends batches of 60 requests (`ipFor(batch, i)` gives each one's address) until one is refused
 * or one clock-aligned 60 s window (the binding's, as miniflare keeps it) has received more than
 * the limit — then a refusal was due. Counting per window keeps a slow machine, whose requests
 * straddle a window boundary, from passing or failing by chance.
 */
async function sendUntilLimited(ipFor: (batch: number, i: number) => string): Promise<{ limited: number; fullestWindow: number }> {
  const perWindow = new Map<number, number>();
  const windowOf = () => Math.floor(Date.now() / 60_000);
  let limited = 0;
  for (let batch = 0; limited === 0 && Math.max(0, ...perWindow.values()) <= LIMIT; batch++) {
    const before = windowOf();
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => call("/api/v1/auth/csrf/", { ip: ipFor(batch, i) })));
    const after = windowOf();
    if (before === after) perWindow.set(after, (perWindow.get(after) ?? 0) + 60);
    limited += answers.filter((r) => r.status === 429).length;
  }
  return { limited, fullestWindow: Math.max(0, ...perWindow.values()) };
}

describe("edge rate limit and IPv6", () => {
  it("one /64 sending more than the limit in a minute is refused at least once", async () => {
    const prefix = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:${Math.floor(Math.random() * 0xffff).toString(16)}`;
    const { limited, fullestWindow } = await sendUntilLimited(
      (batch, i) => `${prefix}:${(batch + 1).toString(16)}:0:0:${(i + 1).toString(16)}`,
    );
    expect(limited, `no request of the /64 was rate limited (${fullestWindow} in one window)`).toBeGreaterThan(0);
  }, 240_000);

  it("control: the same single address is refused after the limit (the binding works in tests)", async () => {
    const ip = `2001:db8:ffff:${Math.floor(Math.random() * 0xffff).toString(16)}::1`;
    const { limited } = await sendUntilLimited(() => ip);
    expect(limited).toBeGreaterThan(0);
  }, 240_000);
});
