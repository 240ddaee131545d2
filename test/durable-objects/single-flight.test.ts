import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("SingleFlight", () => {
  const flight = (key: string) => env.SINGLE_FLIGHT.get(env.SINGLE_FLIGHT.idFromName(key));
  const answer = { provider: "plant_id" as const, isPlant: true, suggestions: [], health: null };

  it("makes the first caller the leader and hands its outcome to the others", async () => {
    const stub = flight("sf:share");
    const leader = await stub.join(5000);
    expect(leader.role).toBe("leader");
    const followers = Promise.all([stub.join(5000), stub.join(5000)]);
    await stub.settle((leader as { token: string }).token, { ok: true, answer });
    expect(await followers).toEqual([
      { role: "follower", outcome: { ok: true, answer } },
      { role: "follower", outcome: { ok: true, answer } },
    ]);
    // Remembered for a minute (KV may lag elsewhere).
    expect(await stub.join(5000)).toEqual({ role: "follower", outcome: { ok: true, answer } });
  });

  it("lets the next caller lead when a leader never settles, and forgets failures", async () => {
    const stub = flight("sf:lease");
    const first = await stub.join(100);
    expect(first.role).toBe("leader");
    // Waits out the first lease, then leads with a lease long enough that the follower below
    // meets it alive even on a loaded machine (a 100 ms one could lapse first and fail the test).
    const second = await stub.join(5000);
    expect(second.role).toBe("leader");
    await stub.settle((first as { token: string }).token, { ok: true, answer }); // stale token: ignored
    const waiting = stub.join(5000);
    await stub.settle((second as { token: string }).token, { ok: false, error: { kind: "server", message: "down" } });
    expect(await waiting).toEqual({ role: "follower", outcome: { ok: false, error: { kind: "server", message: "down" } } });
    expect((await stub.join(5000)).role).toBe("leader");
  });
});
