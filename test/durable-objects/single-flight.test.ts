import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RECENT_MAX } from "../../durable-objects/single-flight";
import { FLIGHT_SHARDS, flightShardName } from "../../durable-objects/single-flight-shards";

describe("SingleFlight", () => {
  const shard = (name: string) => env.SINGLE_FLIGHT.get(env.SINGLE_FLIGHT.idFromName(name));
  const answer = { provider: "plant_id" as const, isPlant: true, suggestions: [], health: null };
  const other = { provider: "plantnet" as const, isPlant: true, suggestions: [], health: null };

  it("makes the first caller the leader and hands its outcome to the others", async () => {
    const ref = shard("sf:share");
    const leader = await ref.join("k", 5000);
    expect(leader.role).toBe("leader");
    const followers = Promise.all([ref.join("k", 5000), ref.join("k", 5000)]);
    await ref.settle("k", (leader as { token: string }).token, { ok: true, answer });
    expect(await followers).toEqual([
      { role: "follower", outcome: { ok: true, answer } },
      { role: "follower", outcome: { ok: true, answer } },
    ]);
    // Remembered for a minute (KV may lag elsewhere).
    expect(await ref.join("k", 5000)).toEqual({ role: "follower", outcome: { ok: true, answer } });
  });

  it("lets the next caller lead when a leader never settles, and forgets failures", async () => {
    const ref = shard("sf:lease");
    const first = await ref.join("k", 100);
    expect(first.role).toBe("leader");
    // Waits out the first lease, then leads with a lease long enough that the follower below
    // meets it alive even on a loaded machine (a 100 ms one could lapse first and fail the test).
    const second = await ref.join("k", 5000);
    expect(second.role).toBe("leader");
    await ref.settle("k", (first as { token: string }).token, { ok: true, answer }); // stale token: ignored
    const waiting = ref.join("k", 5000);
    await ref.settle("k", (second as { token: string }).token, { ok: false, error: { kind: "server", message: "down" } });
    expect(await waiting).toEqual({ role: "follower", outcome: { ok: false, error: { kind: "server", message: "down" } } });
    expect((await ref.join("k", 5000)).role).toBe("leader");
  });

  it("keeps the flights of different keys in one shard apart", async () => {
    const ref = shard("sf:keys");
    const a = await ref.join("a", 5000);
    const b = await ref.join("b", 5000);
    // A leader of one key does not make the other key's first caller wait: both lead.
    expect([a.role, b.role]).toEqual(["leader", "leader"]);
    const waitingA = ref.join("a", 5000);
    const waitingB = ref.join("b", 5000);
    // A token is only good for its own key.
    await ref.settle("a", (b as { token: string }).token, { ok: true, answer: other });
    await ref.settle("b", (b as { token: string }).token, { ok: true, answer: other });
    expect(await waitingB).toEqual({ role: "follower", outcome: { ok: true, answer: other } });
    await ref.settle("a", (a as { token: string }).token, { ok: true, answer });
    expect(await waitingA).toEqual({ role: "follower", outcome: { ok: true, answer } });
    expect(await ref.size()).toEqual({ flights: 0, recent: 2 });
  });

  it("forgets flights whose leader never settled once their lease is over, though nobody joins that key again", async () => {
    const ref = shard("sf:abandoned");
    expect((await ref.join("gone-1", 50)).role).toBe("leader");
    expect((await ref.join("gone-2", 50)).role).toBe("leader");
    expect(await ref.size()).toEqual({ flights: 2, recent: 0 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The next flight of any key in the shard sweeps them.
    expect((await ref.join("live", 5000)).role).toBe("leader");
    expect(await ref.size()).toEqual({ flights: 1, recent: 0 });
  });

  it(`keeps at most ${RECENT_MAX} answers per shard, dropping the oldest`, async () => {
    const ref = shard("sf:cap");
    const extra = 5;
    for (let i = 0; i < RECENT_MAX + extra; i++) {
      const led = await ref.join(`key-${i}`, 5000);
      expect(led.role).toBe("leader");
      await ref.settle(`key-${i}`, (led as { token: string }).token, { ok: true, answer });
    }
    expect(await ref.size()).toEqual({ flights: 0, recent: RECENT_MAX });
    // The oldest were dropped (their next caller leads a new call); the newest are still kept.
    expect((await ref.join("key-0", 5000)).role).toBe("leader");
    expect((await ref.join(`key-${extra - 1}`, 5000)).role).toBe("leader");
    expect(await ref.join(`key-${extra}`, 5000)).toEqual({ role: "follower", outcome: { ok: true, answer } });
    expect(await ref.join(`key-${RECENT_MAX + extra - 1}`, 5000)).toEqual({ role: "follower", outcome: { ok: true, answer } });
  });
});

describe("flightShardName", () => {
  const key = (i: number) => `plant_id:v3:${i.toString(16).padStart(64, "0")}:health=all:lang=en:loc=none,none`;

  it("sends a key to the same shard every time, per region", () => {
    expect(flightShardName(key(1), "EU")).toBe(flightShardName(key(1), "EU"));
    expect(flightShardName(key(1), "eu")).toBe(flightShardName(key(1), "EU"));
    expect(flightShardName(key(1), "EU")).toMatch(/^flight:EU:\d+$/);
    expect(flightShardName(key(1), "NA").replace(":NA:", ":EU:")).toBe(flightShardName(key(1), "EU"));
  });

  it("puts callers without a usable region in the shared shards", () => {
    for (const region of [undefined, null, "", "T1", "Europe", "E", "../x"]) {
      expect(flightShardName(key(7), region)).toBe(flightShardName(key(7), null));
      expect(flightShardName(key(7), region)).toMatch(/^flight:any:\d+$/);
    }
  });

  it(`spreads keys over all ${FLIGHT_SHARDS} shards`, () => {
    const counts = new Map<string, number>();
    const n = FLIGHT_SHARDS * 100;
    for (let i = 0; i < n; i++) {
      const name = flightShardName(key(i), "EU");
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    expect(counts.size).toBe(FLIGHT_SHARDS);
    expect(Math.max(...counts.values())).toBeLessThan(200); // mean 100
    expect(Math.min(...counts.values())).toBeGreaterThan(40);
  });
});
