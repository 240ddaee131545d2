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

  it("counts a sign-in under the account and the name typed in one step, exactly under concurrency", async () => {
    const stub = limiter("test:lockout-names");
    const t0 = Date.now();
    // Twelve guesses at once, split over two names, threshold 5: five reach a password check.
    const burst = await Promise.all(
      Array.from({ length: 12 }, (_, i) => stub.beginAttempt(5, 900_000, 3_600_000, i % 2 ? "name:a" : "name:b", t0 + i)),
    );
    expect(burst.filter((r) => r.allowed)).toHaveLength(5);
    expect(burst.filter((r) => r.justLocked)).toHaveLength(1);
    // Each name counted its own six, whether the account refused them or not: each locked at its fifth.
    expect(burst.filter((r) => r.name?.justLocked)).toHaveLength(2);
    // Locked: another name's attempt is counted on it (allowed there) but refused by the account;
    // a name already locked is refused on both.
    expect(await stub.beginAttempt(5, 900_000, 3_600_000, "name:c", t0 + 20)).toMatchObject({
      allowed: false,
      name: { allowed: true, justLocked: false },
    });
    expect(await stub.beginAttempt(5, 900_000, 3_600_000, "name:a", t0 + 21)).toMatchObject({
      allowed: false,
      name: { allowed: false },
    });
  });

  it("a right password forgets the account's failures and the name's, lifting a lock that attempt set", async () => {
    const stub = limiter("test:lockout-names-success");
    const t0 = Date.now();
    for (let i = 0; i < 2; i++) await stub.beginAttempt(3, 900_000, 3_600_000, "name:a", t0 + i);
    const third = await stub.beginAttempt(3, 900_000, 3_600_000, "name:a", t0 + 2);
    expect(third).toMatchObject({ allowed: true, justLocked: true, name: { allowed: true, justLocked: true } });
    await stub.attemptSucceeded(true, { name: "name:a", liftLock: true });
    // Two more wrong guesses lock nothing: both counts started again.
    for (let i = 3; i < 5; i++)
      expect(await stub.beginAttempt(3, 900_000, 3_600_000, "name:a", t0 + i)).toMatchObject({
        allowed: true,
        justLocked: false,
        name: { allowed: true, justLocked: false },
      });
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
