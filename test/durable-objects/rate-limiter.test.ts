import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { RateLimiter } from "../../durable-objects/rate-limiter";

function limiter(name: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(name));
}

describe("RateLimiter", () => {
  it("allows exactly `limit` hits per sliding window and reports Retry-After", async () => {
    const ref = limiter("test:sliding");
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) expect((await ref.consume(3, 60_000, t0 + i * 1000)).allowed).toBe(true);
    const refused = await ref.consume(3, 60_000, t0 + 5000);
    expect(refused).toEqual({ allowed: false, remaining: 0, retryAfterS: 55 });
    // The first hit leaves the window at t0 + 60 s.
    expect((await ref.consume(3, 60_000, t0 + 60_001)).allowed).toBe(true);
    expect((await ref.consume(3, 60_000, t0 + 60_002)).allowed).toBe(false);
  });

  it("a refund takes back only the hit it names, once, even among hits of the same millisecond", async () => {
    const ref = limiter("test:refund-same-ms");
    const t0 = Date.now();
    const first = await ref.consume(2, 60_000, t0);
    const second = await ref.consume(2, 60_000, t0);
    expect(second.at).not.toBe(first.at);
    await ref.refund(first.at!);
    await ref.refund(first.at!);
    // One hit came back, not two: one more passes, the next is refused.
    expect((await ref.consume(2, 60_000, t0 + 1)).allowed).toBe(true);
    expect((await ref.consume(2, 60_000, t0 + 2)).allowed).toBe(false);
  });

  it("a refund of a hit that has left the window gives back nothing of the new one", async () => {
    const ref = limiter("test:refund-rolled-over");
    const t0 = Date.now();
    const old = await ref.consume(1, 1000, t0);
    expect((await ref.consume(1, 1000, t0 + 1500)).allowed).toBe(true);
    await ref.refund(old.at!);
    expect((await ref.consume(1, 1000, t0 + 1600)).allowed).toBe(false);
  });

  it("counts exactly under concurrency", async () => {
    const ref = limiter("test:concurrent");
    const results = await Promise.all(Array.from({ length: 25 }, () => ref.consume(10, 60_000)));
    expect(results.filter((r) => r.allowed)).toHaveLength(10);
  });

  it("locks after the threshold, reports the lock once, and expires", async () => {
    const ref = limiter("test:lockout");
    const t0 = Date.now();
    for (let i = 0; i < 2; i++) expect((await ref.recordFailure(3, 900_000, 3_600_000, t0 + i)).locked).toBe(false);
    const third = await ref.recordFailure(3, 900_000, 3_600_000, t0 + 2);
    expect(third).toMatchObject({ locked: true, justLocked: true, lockedUntil: t0 + 2 + 3_600_000 });
    const again = await ref.recordFailure(3, 900_000, 3_600_000, t0 + 3);
    expect(again.justLocked).toBe(false);
    expect(await ref.lockedUntil(t0 + 10)).toBe(t0 + 2 + 3_600_000);
    expect(await ref.lockedUntil(t0 + 3_600_003)).toBeNull();
  });

  it("counts a sign-in under the account and the name typed in one step, exactly under concurrency", async () => {
    const ref = limiter("test:lockout-names");
    const t0 = Date.now();
    // Twelve guesses at once, split over two names, threshold 5: five reach a password check.
    const burst = await Promise.all(
      Array.from({ length: 12 }, (_, i) => ref.beginAttempt(5, 900_000, 3_600_000, i % 2 ? "name:a" : "name:b", t0 + i)),
    );
    expect(burst.filter((r) => r.allowed)).toHaveLength(5);
    expect(burst.filter((r) => r.justLocked)).toHaveLength(1);
    // Each name counted its own six, whether the account refused them or not: each locked at its fifth.
    expect(burst.filter((r) => r.name?.justLocked)).toHaveLength(2);
    // Locked: another name's attempt is counted on it (allowed there) but refused by the account;
    // a name already locked is refused on both.
    expect(await ref.beginAttempt(5, 900_000, 3_600_000, "name:c", t0 + 20)).toMatchObject({
      allowed: false,
      name: { allowed: true, justLocked: false },
    });
    expect(await ref.beginAttempt(5, 900_000, 3_600_000, "name:a", t0 + 21)).toMatchObject({
      allowed: false,
      name: { allowed: false },
    });
  });

  it("a right password forgets the account's failures and the name's, lifting a lock that attempt set", async () => {
    const ref = limiter("test:lockout-names-success");
    const t0 = Date.now();
    for (let i = 0; i < 2; i++) await ref.beginAttempt(3, 900_000, 3_600_000, "name:a", t0 + i);
    const third = await ref.beginAttempt(3, 900_000, 3_600_000, "name:a", t0 + 2);
    expect(third).toMatchObject({ allowed: true, justLocked: true, name: { allowed: true, justLocked: true } });
    await ref.attemptSucceeded(true, { name: "name:a", liftLock: true });
    // Two more wrong guesses lock nothing: both counts started again.
    for (let i = 3; i < 5; i++)
      expect(await ref.beginAttempt(3, 900_000, 3_600_000, "name:a", t0 + i)).toMatchObject({
        allowed: true,
        justLocked: false,
        name: { allowed: true, justLocked: false },
      });
  });

  // Wrong second-factor codes: threshold 10 in 15 min, a lock of 1 h, capped here at 3 h, kept 30 days.
  const HOUR = 3_600_000;
  const code = (ref: ReturnType<typeof limiter>, at: number) => ref.beginCodeAttempt(10, 900_000, HOUR, 3 * HOUR, 30 * 24 * HOUR, at);
  const password = (ref: ReturnType<typeof limiter>, at: number) => ref.beginAttempt(10, 900_000, HOUR, null, at);
  /** Ten wrong codes from `at` (one a second): the lock the tenth sets, in ms from it. */
  async function tenWrongCodes(ref: ReturnType<typeof limiter>, at: number): Promise<number> {
    for (let i = 0; i < 9; i++) expect(await code(ref, at + i * 1000)).toMatchObject({ allowed: true, locked: false });
    const tenth = await code(ref, at + 9000);
    expect(tenth).toMatchObject({ allowed: true, justLocked: true });
    // Locked until then: nothing more is counted, even the right code is not looked at.
    expect(await code(ref, tenth.lockedUntil! - 1)).toMatchObject({ allowed: false });
    return tenth.lockedUntil! - (at + 9000);
  }

  it("each lock wrong codes set lasts twice the one before, up to the cap; a proven code starts again from one", async () => {
    const ref = limiter("test:codes-grow");
    let t = Date.now();
    const locks: number[] = [];
    for (let period = 0; period < 4; period++) {
      locks.push(await tenWrongCodes(ref, t));
      t += 9000 + locks.at(-1)!;
    }
    expect(locks).toEqual([HOUR, 2 * HOUR, 3 * HOUR, 3 * HOUR]);
    // The owner signs in: a right code forgets the wrong ones and the growth.
    expect((await code(ref, t)).allowed).toBe(true);
    await ref.attemptSucceeded(false, null, true);
    expect(await tenWrongCodes(ref, t + 1000)).toBe(HOUR);
  });

  it("wrong passwords lock for the base time however often, even after wrong codes made their locks grow", async () => {
    const ref = limiter("test:codes-passwords");
    let t = Date.now();
    t += (await tenWrongCodes(ref, t)) + 9000;
    t += (await tenWrongCodes(ref, t)) + 9000; // the codes' next lock would last 4 h
    for (let period = 0; period < 3; period++) {
      for (let i = 0; i < 9; i++) expect(await password(ref, t + i)).toMatchObject({ allowed: true, locked: false });
      const tenth = await password(ref, t + 9);
      expect(tenth).toMatchObject({ justLocked: true, lockedUntil: t + 9 + HOUR });
      t += 9 + HOUR;
    }
    // A right password (a password step, or one given inside a session) forgets no wrong code.
    expect((await password(ref, t)).allowed).toBe(true);
    await ref.attemptSucceeded(false);
    expect(await tenWrongCodes(ref, t + 1000)).toBe(3 * HOUR);
  });

  it("wrong codes lock however slowly they come (ten in 15 min or not), and are forgotten 30 days after the last", async () => {
    const ref = limiter("test:codes-slow");
    const t0 = Date.now();
    // One every 20 minutes: never two in one window, and still the tenth locks.
    for (let i = 0; i < 9; i++) expect(await code(ref, t0 + i * 20 * 60_000)).toMatchObject({ allowed: true, locked: false });
    expect(await code(ref, t0 + 9 * 20 * 60_000)).toMatchObject({ justLocked: true, lockedUntil: t0 + 9 * 20 * 60_000 + HOUR });
    // Wrong passwords at that pace never lock.
    const other = limiter("test:passwords-slow");
    for (let i = 0; i < 20; i++) expect(await password(other, t0 + i * 20 * 60_000)).toMatchObject({ allowed: true, locked: false });
    // A second lock would last 2 h; 30 days after the last wrong code the growth is forgotten.
    const later = t0 + 9 * 20 * 60_000 + 30 * 24 * HOUR + 1;
    expect(await tenWrongCodes(ref, later)).toBe(HOUR);
  });

  it("clears its storage with an alarm once the window has passed", async () => {
    const ref = limiter("test:alarm");
    await ref.consume(1, 200, Date.now());
    await runInDurableObject(ref, async (_instance: RateLimiter, state) => {
      expect(await state.storage.get("state")).toBeDefined();
      expect(await state.storage.getAlarm()).not.toBeNull();
    });
    await new Promise((r) => setTimeout(r, 300));
    await runDurableObjectAlarm(ref); // runs it now if the runtime has not yet
    await runInDurableObject(ref, async (_instance: RateLimiter, state) => {
      expect(await state.storage.get("state")).toBeUndefined();
    });
    expect((await ref.consume(1, 200)).allowed).toBe(true);
  });

  it("keeps a bucket whose window later hits moved on, and clears it once the last hit's window has passed", async () => {
    // The object's clock is the test's (fake Date, a day ahead: the runtime's own alarm, set for
    // then, never fires here and the test runs it). With real time the first alarm had to run
    // after the first hit's window and before the second's, a 200 ms slot a loaded machine misses.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      let t = Date.now() + 86_400_000;
      const at = (ms: number) => vi.setSystemTime((t += ms));
      at(0);
      const ref = limiter("test:alarm-moved");
      await ref.consume(5, 600, Date.now()); // the alarm is set for t + 600
      at(400);
      await ref.consume(5, 600, Date.now()); // the bucket now lives until t + 1 000
      at(400);
      await runDurableObjectAlarm(ref); // the first alarm (t + 600) is early: it must set itself again
      await runInDurableObject(ref, async (_instance: RateLimiter, state) => {
        expect(await state.storage.get("state")).toBeDefined();
        expect(await state.storage.getAlarm()).not.toBeNull();
      });
      expect((await ref.consume(1, 600, Date.now())).allowed).toBe(false); // the second hit still counts
      at(400);
      await runDurableObjectAlarm(ref);
      await runInDurableObject(ref, async (_instance: RateLimiter, state) => {
        expect(await state.storage.get("state")).toBeUndefined();
      });
    } finally {
      vi.useRealTimers();
    }
  });
});
