/**
 * A job's progress channel (src/services/progress.ts `progressChannel`, issue 13 item 4): messages
 * arrive in the order said, several to one hub call while an earlier call is in flight, the job
 * never waits for a hub call to say the next thing, `flush()` waits for all of it, and a hub that
 * fails loses only its batch, never the job. Then the real UserHub: `publishAll` records and
 * delivers a batch exactly as the same `publish` calls would.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { UserHub } from "../../durable-objects/user-hub";
import type { HubMessage } from "../../durable-objects/user-hub-protocol";
import type { Bindings } from "../../src/env";
import { progress, progressChannel } from "../../src/services/progress";
import { eventually } from "../helpers/wait";

/**
 * An env whose USER_HUB records each publishAll call; no call answers until `answer()` is called
 * (the test decides when the hub is done, not a timer), and calls listed in `failing` then throw.
 */
function fakeHub(failing: number[] = []) {
  const calls: HubMessage[][] = [];
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => {
    answer = resolve;
  });
  const hub = {
    async publishAll(messages: HubMessage[]) {
      calls.push(messages);
      const n = calls.length;
      await answered;
      if (failing.includes(n)) throw new Error(`hub call ${n} failed`);
      return messages.length;
    },
  };
  const fake = { USER_HUB: { idFromName: (name: string) => name, get: () => hub } } as unknown as Bindings;
  return { fake, calls, answer };
}

const step = (i: number) => progress("req-1", "processing_start", "processing", { attempt: i });
const warnings: unknown[][] = [];
const logger = { warn: (...args: unknown[]) => warnings.push(args) } as never;

describe("progressChannel", () => {
  it("keeps the order, batches what is said during a call, and lets the job go on at once", async () => {
    const { fake, calls, answer } = fakeHub();
    const say = progressChannel(fake, "user-1", logger);
    // Saying never waits for the hub: all eleven are said while its first call has not answered.
    for (let i = 1; i <= 11; i++) await say(step(i));
    expect(calls.length).toBe(1);
    answer();
    await say.flush();
    const sent = calls.flat().map((m) => (m as { data: { attempt: number } }).data.attempt);
    expect(sent).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(calls.length).toBe(2); // the first message alone, then the ten said while it was in flight
    // After a flush the channel starts again with the next message.
    await say(step(12));
    await say.flush();
    expect(calls.length).toBe(3);
    expect(calls[2]!.map((m) => (m as { data: { attempt: number } }).data.attempt)).toEqual([12]);
  });

  it("gives up a hub call that never answers after its deadline, logs it, and still sends what is said next", async () => {
    const calls: HubMessage[][] = [];
    const hub = {
      publishAll(messages: HubMessage[]) {
        calls.push(messages);
        // The first call never answers; later ones do.
        return calls.length === 1 ? new Promise<number>(() => {}) : Promise.resolve(messages.length);
      },
    };
    const fake = { USER_HUB: { idFromName: (name: string) => name, get: () => hub } } as unknown as Bindings;
    warnings.length = 0;
    const say = progressChannel(fake, "user-1", logger, { deadlineMs: 50 });
    await say(step(1));
    await say(step(2));
    const started = Date.now();
    await say.flush(); // would never resolve without the deadline
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(calls.map((c) => c.length)).toEqual([1, 1]); // message 2 went in the next call
    expect(JSON.stringify(warnings)).toContain("did not answer within 50 ms");
    await say(step(3));
    await say.flush();
    expect(calls.length).toBe(3);
  });

  it("hands each sending to waitUntil, so what a job said before it crashed is still sent", async () => {
    const { fake, calls, answer } = fakeHub();
    const kept: Promise<unknown>[] = [];
    const say = progressChannel(fake, "user-1", logger, { waitUntil: (p) => kept.push(p) });
    await say(step(1));
    await say(step(2));
    // The job crashes here: it never flushes. The runtime waits for what waitUntil was given.
    expect(kept.length).toBe(1);
    answer();
    await Promise.all(kept);
    expect(calls.flat().map((m) => (m as { data: { attempt: number } }).data.attempt)).toEqual([1, 2]);
  });

  it("flush with nothing said resolves at once", async () => {
    const { fake, calls } = fakeHub();
    await progressChannel(fake, "user-1", logger).flush();
    expect(calls).toEqual([]);
  });

  it("a failed hub call loses its batch only, is logged, and never throws into the job", async () => {
    warnings.length = 0;
    const { fake, calls, answer } = fakeHub([1]);
    answer();
    const say = progressChannel(fake, "user-1", logger);
    await say(step(1));
    await say(step(2));
    await say.flush();
    expect(calls.length).toBe(2);
    expect(calls[1]!.map((m) => (m as { data: { attempt: number } }).data.attempt)).toEqual([2]);
    expect(warnings.length).toBe(1);
    expect(JSON.stringify(warnings[0])).toContain("hub call 1 failed");
  });
});

describe("UserHub.publishAll", () => {
  it("records and delivers a batch in order, as the same publish calls would", async () => {
    const ref = env.USER_HUB.get(env.USER_HUB.idFromName("hub-batch-user"));
    const res = await ref.fetch("https://user-hub/connect", { headers: { Upgrade: "websocket" } });
    const ws = res.webSocket!;
    const received: { type: string; stage?: string }[] = [];
    ws.addEventListener("message", (e) => received.push(JSON.parse(e.data as string)));
    ws.accept();
    const batch: HubMessage[] = [
      progress("req-b", "queued", "pending", {}),
      progress("req-b", "processing_start", "processing", { attempt: 1 }),
      { type: "completed", request_id: "req-b", status: "identified", results_count: 2 },
    ];
    expect(await ref.publishAll(batch)).toBe(3);
    await eventually(
      () => received.length >= 4,
      10_000,
      () => JSON.stringify(received),
    );
    expect(received.map((m) => m.stage ?? m.type)).toEqual(["init", "queued", "processing_start", "completed"]);
    // A socket joining now is replayed the whole run, in order.
    const late = await ref.fetch("https://user-hub/connect", { headers: { Upgrade: "websocket", "X-Hub-Request-Id": "req-b" } });
    const lateWs = late.webSocket!;
    const replayed: { type: string; stage?: string }[] = [];
    lateWs.addEventListener("message", (e) => replayed.push(JSON.parse(e.data as string)));
    lateWs.accept();
    await eventually(
      () => replayed.length >= 2,
      10_000,
      () => JSON.stringify(replayed),
    );
    expect(replayed.at(-1)).toEqual({ type: "completed", request_id: "req-b", status: "identified", results_count: 2 });
    ws.close();
    lateWs.close();
  });
});

describe("a hub call given up on", () => {
  it("is dropped by the hub when it runs after the caller's deadline, so it cannot land after what was said next", async () => {
    const ref = env.USER_HUB.get(env.USER_HUB.idFromName("hub-late-user"));
    await ref.publish(progress("req-late", "queued", "pending", {}));
    // The hub is busy until the test lets it go: the channel's call waits in its queue past the
    // 50 ms deadline however slowly the machine runs (no timer decides who comes first). Plain
    // flags, polled: a promise resolved across the object's context and the test's is refused.
    let busyNow = false;
    let letGo = false;
    const busy = runInDurableObject(ref, (_hub, state) =>
      state.blockConcurrencyWhile(async () => {
        busyNow = true;
        while (!letGo) await new Promise((resolve) => setTimeout(resolve, 5));
      }),
    );
    await eventually(() => busyNow);
    warnings.length = 0;
    const say = progressChannel(env, "hub-late-user", logger, { deadlineMs: 50 });
    await say(progress("req-late", "processing_start", "processing", { attempt: 1 }));
    await say.flush();
    expect(JSON.stringify(warnings)).toContain("did not answer within 50 ms");
    letGo = true;
    await busy;
    // The given-up call has now run (calls reach an object in order); it recorded nothing.
    await runInDurableObject(ref, async (hub: UserHub) => {
      expect(hub.lastState("req-late")).toMatchObject({ stage: "queued" });
    });
    // A call in time is recorded as before.
    expect(await ref.publishAll([progress("req-late", "processing_start", "processing", { attempt: 1 })], Date.now() + 5_000)).toBe(0);
    await runInDurableObject(ref, async (hub: UserHub) => {
      expect(hub.lastState("req-late")).toMatchObject({ stage: "processing_start" });
    });
  });

  it("is reported with -1, and of its messages only a completed is kept: a run's last word is kept late rather than lost", async () => {
    const ref = env.USER_HUB.get(env.USER_HUB.idFromName("hub-late-user-2"));
    const past = Date.now() - 1;
    expect(
      await ref.publishAll(
        [progress("req-x", "queued", "pending", {}), progress("req-x", "processing_start", "processing", { attempt: 1 })],
        past,
      ),
    ).toBe(-1);
    await runInDurableObject(ref, async (hub: UserHub) => {
      expect(hub.lastState("req-x")).toBeNull();
    });
    expect(await ref.publish({ type: "completed", request_id: "req-x", status: "identified", results_count: 1 }, past)).toBe(-1);
    await runInDurableObject(ref, async (hub: UserHub) => {
      expect(hub.lastState("req-x")).toMatchObject({ type: "completed", status: "identified" });
    });
  });
});
