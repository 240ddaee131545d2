import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { RateLimiter } from "../../durable-objects/rate-limiter";

function limiter(name: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(name));
}

describe("RateLimiter", () => {
  it("allows exactly `limit` hits per sliding window and reports Retry-After", async () => {
    const stub = limiter("test:sliding");
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) expect((await stub.consume(3, 60_000, t0 + i * 1000)).allowed).toBe(true);
    const refused = await stub.consume(3, 60_000, t0 + 5000);
    expect(refused).toEqual({ allowed: false, remaining: 0, retryAfterS: 55 });
    // The first hit leaves the window at t0 + 60 s.
    expect((await stub.consume(3, 60_000, t0 + 60_001)).allowed).toBe(true);
    expect((await stub.consume(3, 60_000, t0 + 60_002)).allowed).toBe(false);
  });

  it("counts exactly under concurrency", async () => {
    const stub = limiter("test:concurrent");
    const results = await Promise.all(Array.from({ length: 25 }, () => stub.consume(10, 60_000)));
    expect(results.filter((r) => r.allowed)).toHaveLength(10);
  });

  it("locks after the threshold, reports the lock once, and expires", async () => {
    const stub = limiter("test:lockout");
    const t0 = Date.now();
    for (let i = 0; i < 2; i++) expect((await stub.recordFailure(3, 900_000, 3_600_000, t0 + i)).locked).toBe(false);
    const third = await stub.recordFailure(3, 900_000, 3_600_000, t0 + 2);
    expect(third).toMatchObject({ locked: true, justLocked: true, lockedUntil: t0 + 2 + 3_600_000 });
    const again = await stub.recordFailure(3, 900_000, 3_600_000, t0 + 3);
    expect(again.justLocked).toBe(false);
    expect(await stub.lockedUntil(t0 + 10)).toBe(t0 + 2 + 3_600_000);
    expect(await stub.lockedUntil(t0 + 3_600_003)).toBeNull();
  });

  it("clears its storage with an alarm once the window has passed", async () => {
    const stub = limiter("test:alarm");
    await stub.consume(1, 200, Date.now());
    await runInDurableObject(stub, async (_instance: RateLimiter, state) => {
      expect(await state.storage.get("state")).toBeDefined();
      expect(await state.storage.getAlarm()).not.toBeNull();
    });
    await new Promise((r) => setTimeout(r, 300));
    await runDurableObjectAlarm(stub); // runs it now if the runtime has not yet
    await runInDurableObject(stub, async (_instance: RateLimiter, state) => {
      expect(await state.storage.get("state")).toBeUndefined();
    });
    expect((await stub.consume(1, 200)).allowed).toBe(true);
  });

  it("keeps a bucket whose window later hits moved on, and clears it once the last hit's window has passed", async () => {
    const stub = limiter("test:alarm-moved");
    await stub.consume(5, 600, Date.now());
    await new Promise((r) => setTimeout(r, 400));
    await stub.consume(5, 600, Date.now()); // the bucket now lives until ~1 000 ms
    await new Promise((r) => setTimeout(r, 400));
    await runDurableObjectAlarm(stub); // the first alarm (~600 ms) is early: it must set itself again
    await runInDurableObject(stub, async (_instance: RateLimiter, state) => {
      expect(await state.storage.get("state")).toBeDefined();
      expect(await state.storage.getAlarm()).not.toBeNull();
    });
    expect((await stub.consume(1, 600, Date.now())).allowed).toBe(false); // the second hit still counts
    await new Promise((r) => setTimeout(r, 400));
    await runDurableObjectAlarm(stub);
    await runInDurableObject(stub, async (_instance: RateLimiter, state) => {
      expect(await state.storage.get("state")).toBeUndefined();
    });
  });
});
