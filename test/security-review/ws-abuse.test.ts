/**
 * WebSockets, attacked (security review of 2026-12-06). The finding: the coarse per-address limit
 * in front of the API (src/app.ts, the API_RATE_LIMITER binding, 600 requests / 60 s) covered
 * `/api/*` and `/media/*`, not `/ws/*`: every upgrade there verifies a token, reads the account
 * and the session from D1 and wakes a Durable Object, as often as one address likes. The cap on
 * sockets per account is test/durable-objects/user-hub.test.ts's ("pile up sockets").
 */
import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";

const LIMIT = 600;

describe("the coarse edge limit covers WebSocket upgrades", () => {
  it("one address asking /ws/ more than the limit in a minute is refused at least once", async () => {
    const ip = `203.0.113.${1 + Math.floor(Math.random() * 250)}`;
    // Counted per clock-aligned 60 s window (the binding's, as miniflare keeps it), so a slow
    // machine straddling a boundary neither passes nor fails by chance.
    const perWindow = new Map<number, number>();
    const windowOf = () => Math.floor(Date.now() / 60_000);
    const statuses = new Set<number>();
    let limited = 0;
    while (limited === 0 && Math.max(0, ...perWindow.values()) <= LIMIT) {
      const before = windowOf();
      const answers = await Promise.all(
        Array.from({ length: 60 }, (_, i) => call(i % 2 ? "/ws/" : "/ws/plant-identification/requests/x/", { ip })),
      );
      const after = windowOf();
      if (before === after) perWindow.set(after, (perWindow.get(after) ?? 0) + 60);
      for (const r of answers) statuses.add(r.status);
      limited += answers.filter((r) => r.status === 429).length;
    }
    // Plain GETs: the upgrade path answers 426 until the limit, then 429.
    expect(statuses.has(426)).toBe(true);
    expect(limited, `no /ws/ request was rate limited (${Math.max(0, ...perWindow.values())} in one window)`).toBeGreaterThan(0);
    // The path without its slash is the same route, and the same bucket (asked in the same window).
    const window = windowOf();
    const bare = await call("/ws", { ip });
    if (windowOf() === window) expect(bare.status).toBe(429);
  }, 240_000);
});
