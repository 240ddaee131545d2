// Security review finding, fixed — this test keeps it fixed. The finding: the coarse per-address limit in front of the whole API (src/app.ts, the
// API_RATE_LIMITER binding, 600 requests / 60 s) is keyed by the raw CF-Connecting-IP, not by
// clientIp() (IPv4 as is, IPv6 by /64). An IPv6 client owns a whole /64 and rotates the interface
// id per request: every request lands in a fresh bucket and the limit never fires.
import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";

const LIMIT = 600;

describe("edge rate limit and IPv6", () => {
  it("one /64 sending more than the limit in a minute is refused at least once", async () => {
    const prefix = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:${Math.floor(Math.random() * 0xffff).toString(16)}`;
    let limited = 0;
    for (let batch = 0; batch < (LIMIT + 60) / 60; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          call("/api/v1/auth/csrf/", { ip: `${prefix}:${(batch + 1).toString(16)}:0:0:${(i + 1).toString(16)}` }),
        ),
      );
      limited += answers.filter((r) => r.status === 429).length;
    }
    expect(limited, "no request of the /64 was rate limited").toBeGreaterThan(0);
  }, 120_000);

  it("control: the same single address is refused after the limit (the binding works in tests)", async () => {
    const ip = `2001:db8:ffff:${Math.floor(Math.random() * 0xffff).toString(16)}::1`;
    let limited = 0;
    for (let batch = 0; batch < (LIMIT + 60) / 60; batch++) {
      const answers = await Promise.all(Array.from({ length: 60 }, () => call("/api/v1/auth/csrf/", { ip })));
      limited += answers.filter((r) => r.status === 429).length;
    }
    expect(limited).toBeGreaterThan(0);
  }, 120_000);
});
