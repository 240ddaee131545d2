import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseClientMessage, RETELL_QUIET_MS, type UserHub } from "../../durable-objects/user-hub";
import { CLOSE_CODES, MAX_CLIENT_MESSAGES_PER_MINUTE, MAX_SOCKETS_PER_USER } from "../../durable-objects/user-hub-protocol";
import { eventually } from "../helpers/wait";

function hub(name: string) {
  return env.USER_HUB.get(env.USER_HUB.idFromName(name));
}

async function connect(ref: ReturnType<typeof hub>, requestId?: string, sessionId?: string, finalFromD1?: unknown) {
  const headers: Record<string, string> = { Upgrade: "websocket" };
  if (requestId) headers["X-Hub-Request-Id"] = requestId;
  if (sessionId) headers["X-Hub-Session-Id"] = sessionId;
  if (finalFromD1) headers["X-Hub-Final-State"] = JSON.stringify(finalFromD1);
  const res = await ref.fetch("https://user-hub/connect", { headers });
  const ws = res.webSocket!;
  const messages: { type: string; request_id?: string; stage?: string }[] = [];
  ws.addEventListener("message", (e) => {
    messages.push(JSON.parse(e.data as string));
  });
  ws.accept();
  return { ws, messages };
}

/** As if nothing had been recorded for the request for RETELL_QUIET_MS: its events move back in time. */
async function quietFor(ref: ReturnType<typeof hub>, requestId: string) {
  await runInDurableObject(ref, async (_instance: UserHub, state) => {
    state.storage.sql.exec("UPDATE request_events SET created_at = created_at - ? WHERE request_id = ?", RETELL_QUIET_MS, requestId);
  });
}

/** Waits until `messages` holds at least `count` messages (socket delivery is asynchronous). */
/** The job's care step beginning: its extras, said after the request is final in D1. */
function careStarts(ref: ReturnType<typeof hub>, requestId: string) {
  return ref.publish({
    type: "progress",
    request_id: requestId,
    stage: "care_start",
    status: "processing",
    data: { scientific_name: "Ficus" },
  });
}

async function received(messages: unknown[], count: number, timeoutMs = 10_000) {
  await eventually(
    () => messages.length >= count,
    timeoutMs,
    () => `expected ${count} messages, got ${messages.length}: ${JSON.stringify(messages)}`,
  );
}

describe("UserHub (RPC and hibernatable sockets)", () => {
  it("delivers a request's messages to its followers and to all-events sockets only", async () => {
    const ref = hub("hub-user-1");
    const all = await connect(ref);
    const followA = await connect(ref, "req-a");
    const followB = await connect(ref, "req-b");
    expect(await ref.connectionCount()).toBe(3);

    const delivered = await ref.publish({ type: "progress", request_id: "req-a", stage: "queued", status: "pending", data: {} });
    expect(delivered).toBe(2);
    await received(all.messages, 2);
    await received(followA.messages, 2);
    await received(followB.messages, 1);
    expect(all.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued"]);
    expect(followA.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued"]);
    expect(followB.messages.map((m) => m.type)).toEqual(["init"]);
  });

  it("replays the last state to a late subscriber and forgets a deleted request", async () => {
    const ref = hub("hub-user-2");
    await ref.publish({ type: "completed", request_id: "req-done", status: "identified", results_count: 4 });
    const late = await connect(ref, "req-done");
    await received(late.messages, 2);
    expect(late.messages).toEqual([
      { type: "init", request_id: "req-done", message: "connected" },
      { type: "completed", request_id: "req-done", status: "identified", results_count: 4 },
    ]);
    const closed = new Promise<number>((resolve) => late.ws.addEventListener("close", (e) => resolve(e.code)));
    await ref.closeRequest("req-done", 4404, "request deleted");
    expect(await closed).toBe(4404);
    await runInDurableObject(ref, async (instance: UserHub) => {
      expect(instance.lastState("req-done")).toBeNull();
    });
  });

  it("records and sends nothing more for a deleted request: a job still running says on, and its species stay unsaid", async () => {
    const ref = hub("hub-user-deleted-mid-run");
    await ref.publish({ type: "progress", request_id: "req-gone", stage: "queued", status: "pending", data: {}, run: 0 });
    const all = await connect(ref);
    await ref.closeRequest("req-gone", 4404, "request deleted");
    // The job that was running when its owner deleted the request reports on.
    expect(
      await ref.publish({
        type: "progress",
        request_id: "req-gone",
        stage: "care_start",
        status: "processing",
        data: { scientific_name: "Monstera deliciosa" },
        run: 0,
      }),
    ).toBe(0);
    expect(await ref.publish({ type: "completed", request_id: "req-gone", status: "identified", results_count: 3, run: 0 })).toBe(0);
    await runInDurableObject(ref, async (instance: UserHub, state) => {
      expect(instance.lastState("req-gone")).toBeNull();
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM request_events WHERE request_id = 'req-gone'").one().n).toBe(0);
    });
    // Another request of the user's goes on as ever.
    expect(await ref.publish({ type: "progress", request_id: "req-other", stage: "queued", status: "pending", data: {}, run: 0 })).toBe(1);
    await received(all.messages, 2);
    expect(all.messages.map((m) => m.request_id ?? m.type)).toEqual(["init", "req-other"]);
  });

  it("replays every message so far to a socket that joins a running request", async () => {
    const ref = hub("hub-user-5");
    await ref.publish({ type: "progress", request_id: "req-run", stage: "queued", status: "pending", data: {} });
    await ref.publish({ type: "progress", request_id: "req-run", stage: "processing_start", status: "processing", data: { attempt: 1 } });
    const late = await connect(ref, "req-run");
    await ref.publish({ type: "progress", request_id: "req-run", stage: "plant_id_start", status: "processing", data: {} });
    await received(late.messages, 4);
    expect(late.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued", "processing_start", "plant_id_start"]);
  });

  it("replays D1's final state to a late subscriber when the hub never heard the request's completed", async () => {
    const ref = hub("hub-user-missed-final");
    await ref.publishAll([
      { type: "progress", request_id: "req-missed", stage: "queued", status: "pending", data: {} },
      { type: "progress", request_id: "req-missed", stage: "processing_start", status: "processing", data: { attempt: 1 } },
    ]);
    const final = { type: "completed", request_id: "req-missed", status: "identified", results_count: 2 };
    // Nothing more arrives for it: the job that ended it is gone.
    await quietFor(ref, "req-missed");
    const late = await connect(ref, "req-missed", undefined, final);
    await received(late.messages, 2);
    expect(late.messages).toEqual([{ type: "init", request_id: "req-missed", message: "connected" }, final]);
    late.ws.close();
  });

  it("a socket joining while D1's final request is still getting its job's extras follows the story; D1's end waits for the job's", async () => {
    const ref = hub("hub-user-join-extras");
    await ref.publishAll([
      { type: "progress", request_id: "req-join", stage: "queued", status: "pending", data: {} },
      { type: "progress", request_id: "req-join", stage: "care_start", status: "processing", data: { scientific_name: "Ficus" } },
    ]);
    const final = { type: "completed", request_id: "req-join", status: "identified", results_count: 2 } as const;
    const joined = await connect(ref, "req-join", undefined, final);
    await received(joined.messages, 3);
    expect(joined.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued", "care_start"]);
    await ref.publish({
      type: "progress",
      request_id: "req-join",
      stage: "care_done",
      status: "processing",
      data: { source: "rules", language: "en" },
    });
    await ref.publish(final);
    await runDurableObjectAlarm(ref);
    // A new run's first message: everything said before it has arrived when it does.
    await ref.publish({ type: "progress", request_id: "req-join", stage: "queued", status: "pending", data: {} });
    await received(joined.messages, 6);
    expect(joined.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued", "care_start", "care_done", "completed", "queued"]);

    // Had the job died in its extras, the socket would still hear D1's end, once the request went quiet.
    await careStarts(ref, "req-join");
    const orphan = await connect(ref, "req-join", undefined, final);
    await received(orphan.messages, 3);
    await quietFor(ref, "req-join");
    await runDurableObjectAlarm(ref);
    await received(orphan.messages, 4);
    expect(orphan.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued", "care_start", "completed"]);
    for (const s of [joined, orphan]) s.ws.close();
  });

  it("retells a redelivery's completed only while no new run began since its mark: a retry's queued meanwhile drops it", async () => {
    const ref = hub("hub-user-retell");
    const follow = await connect(ref, "req-retold");
    await ref.publishAll([
      { type: "progress", request_id: "req-retold", stage: "queued", status: "pending", data: {} },
      { type: "progress", request_id: "req-retold", stage: "processing_start", status: "processing", data: { attempt: 1 } },
    ]);
    const final = { type: "completed", request_id: "req-retold", status: "needs_help", results_count: 1 } as const;
    // The redelivery takes the mark, reads D1 (final: the run's job died before saying so)…
    const stale = await ref.requestMark("req-retold");
    // …while the owner retries it: the new run's `queued` lands first.
    await ref.publish({ type: "progress", request_id: "req-retold", stage: "queued", status: "pending", data: {} });
    expect(await ref.retellCompleted(final, stale)).toBe(0);
    await runInDurableObject(ref, async (instance: UserHub) => {
      expect(instance.lastState("req-retold")).toMatchObject({ type: "progress", stage: "queued" });
    });
    // With nothing in between, on a request gone quiet, it is told, once: a second retell finds
    // the end recorded already.
    await quietFor(ref, "req-retold");
    expect(await ref.retellCompleted(final, await ref.requestMark("req-retold"))).toBe(1);
    expect(await ref.retellCompleted(final, await ref.requestMark("req-retold"))).toBe(0);
    await received(follow.messages, 5);
    expect(follow.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued", "processing_start", "queued", "completed"]);
    follow.ws.close();
  });

  it("holds a redelivery's completed while the job that ended the request is still saying its extras: its own completed comes last", async () => {
    const ref = hub("hub-user-retell-extras");
    const follow = await connect(ref, "req-extras");
    const all = await connect(ref);
    const say = (stage: "merge_done" | "care_start" | "care_done", data: object) =>
      ref.publish({ type: "progress", request_id: "req-extras", stage, status: "processing", data } as never);
    await ref.publish({ type: "progress", request_id: "req-extras", stage: "queued", status: "pending", data: {} });
    await say("merge_done", { suggestions: 2 });
    // The request is final in D1 and its job goes on to the care advice, when a duplicate
    // delivery of its message finds the request final and retells D1's end.
    const final = { type: "completed", request_id: "req-extras", status: "identified", results_count: 2 } as const;
    expect(await ref.retellCompleted(final, await ref.requestMark("req-extras"))).toBe(0);
    await say("care_start", { scientific_name: "Monstera deliciosa" });
    await say("care_done", { source: "rules" });
    await ref.publish(final);
    // The alarm finds the end told by the job itself: the held retell adds nothing.
    await runDurableObjectAlarm(ref);
    await received(follow.messages, 6);
    await received(all.messages, 6);
    await ref.publish({ type: "progress", request_id: "req-other", stage: "queued", status: "pending", data: {} });
    await received(all.messages, 7);
    const story = ["init", "queued", "merge_done", "care_start", "care_done", "completed"];
    expect(follow.messages.map((m) => m.stage ?? m.type)).toEqual(story);
    expect(all.messages.map((m) => m.stage ?? m.type)).toEqual([...story, "queued"]);
    for (const s of [follow, all]) s.ws.close();
  });

  it("tells a held completed once the request has gone quiet without its job's end (it died in its extras), and never after a new run began", async () => {
    const ref = hub("hub-user-retell-died");
    const follow = await connect(ref, "req-died");
    await ref.publish({ type: "progress", request_id: "req-died", stage: "queued", status: "pending", data: {} });
    const final = { type: "completed", request_id: "req-died", status: "needs_help", results_count: 1 } as const;
    expect(await ref.retellCompleted(final, await ref.requestMark("req-died"))).toBe(0);
    await careStarts(ref, "req-died");
    // Still saying things: the alarm keeps holding it.
    await runDurableObjectAlarm(ref);
    await runInDurableObject(ref, async (instance: UserHub) => {
      expect(instance.lastState("req-died")).toMatchObject({ stage: "care_start" });
    });
    // Then nothing more comes: the job died. Once the request has been quiet long enough, it is told.
    await quietFor(ref, "req-died");
    await runInDurableObject(ref, async (_instance: UserHub, state) => {
      // The alarm the hold set is still due (the held retell re-armed it for later).
      expect(await state.storage.getAlarm()).not.toBeNull();
    });
    await runDurableObjectAlarm(ref);
    await received(follow.messages, 4);
    expect(follow.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued", "care_start", "completed"]);

    // A hold overtaken by the owner's retry (a new run's `queued`) is dropped: the old end never follows the new run.
    await ref.publish({ type: "progress", request_id: "req-died", stage: "queued", status: "pending", data: {} });
    expect(await ref.retellCompleted(final, await ref.requestMark("req-died"))).toBe(0);
    await ref.publish({ type: "progress", request_id: "req-died", stage: "queued", status: "pending", data: {} });
    await quietFor(ref, "req-died");
    await runDurableObjectAlarm(ref);
    await received(follow.messages, 6);
    await ref.publish({ type: "progress", request_id: "req-died", stage: "processing_start", status: "processing", data: { attempt: 1 } });
    await received(follow.messages, 7);
    expect(follow.messages.slice(4).map((m) => m.stage ?? m.type)).toEqual(["queued", "queued", "processing_start"]);
    follow.ws.close();
  });

  it("starts a fresh story when a finished request is queued again (a retry): no stale completed is replayed", async () => {
    const ref = hub("hub-user-retry");
    await ref.publish({ type: "progress", request_id: "req-again", stage: "queued", status: "pending", data: {} });
    await ref.publish({ type: "error", request_id: "req-again", message: "Providers unavailable." });
    await ref.publish({ type: "completed", request_id: "req-again", status: "failed", results_count: 0 });
    await ref.publish({ type: "progress", request_id: "req-again", stage: "queued", status: "pending", data: {} });
    await ref.publish({
      type: "progress",
      request_id: "req-again",
      stage: "processing_start",
      status: "processing",
      data: { attempt: 1 },
    });
    const late = await connect(ref, "req-again");
    await received(late.messages, 3);
    expect(late.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued", "processing_start"]);
  });

  it("a run's progress arriving after that run's completed (another path ended it) is dropped: the end stays the last word", async () => {
    const ref = hub("hub-user-run-ended");
    const id = "req-run-ended";
    const following = await connect(ref, id);
    await ref.publish({ type: "progress", request_id: id, stage: "processing_start", status: "processing", data: { attempt: 1 }, run: 0 });
    // The sweep fails the request (its error and end) while the job's merge_done is on its way.
    await ref.publish({ type: "error", request_id: id, message: "Processing timed out. Please retry.", run: 0 });
    const end = { type: "completed", request_id: id, status: "failed", results_count: 0, run: 0 } as const;
    await ref.publish(end);
    expect(
      await ref.publish({ type: "progress", request_id: id, stage: "merge_done", status: "processing", data: { suggestions: 3 }, run: 0 }),
    ).toBe(0);
    await received(following.messages, 4);
    expect(following.messages.at(-1)).toEqual(end);
    expect(await ref.lastState(id)).toEqual(end);
    // A later run's progress is not held back by the earlier run's end.
    expect(
      await ref.publish({
        type: "progress",
        request_id: id,
        stage: "processing_start",
        status: "processing",
        data: { attempt: 1 },
        run: 1,
      }),
    ).toBe(1);
  });

  it("an earlier run's retold end is dropped, not held in the place of the later run's held end", async () => {
    const ref = hub("hub-user-run-retells");
    const id = "req-run-retells";
    const following = await connect(ref, id);
    const end = (run: number, status: "identified" | "failed") =>
      ({ type: "completed", request_id: id, status, results_count: status === "failed" ? 0 : 2, run }) as const;
    // Run 1's job is saying its care advice; a redelivery of run 1 retells its end, held meanwhile.
    await ref.publish({
      type: "progress",
      request_id: id,
      stage: "care_start",
      status: "processing",
      data: { scientific_name: "Ficus" },
      run: 1,
    });
    expect(await ref.retellCompleted(end(1, "identified"), await ref.requestMark(id))).toBe(0);
    // A delivery of run 0, late, retells run 0's end.
    expect(await ref.retellCompleted(end(0, "failed"), await ref.requestMark(id))).toBe(0);
    // Run 1's job dies in its extras: once the request is quiet, its held end is told.
    await quietFor(ref, id);
    await runDurableObjectAlarm(ref);
    await received(following.messages, 3);
    expect(following.messages.slice(1)).toEqual([
      { type: "progress", request_id: id, stage: "care_start", status: "processing", data: { scientific_name: "Ficus" }, run: 1 },
      end(1, "identified"),
    ]);
  });

  it("a retry during the first run's extras: the first run's care messages and completed never follow the new run's start", async () => {
    const ref = hub("hub-user-run-tags");
    const id = "req-runs";
    const following = await connect(ref, id);
    const all = await connect(ref);
    const say = (run: number, message: Record<string, unknown>) =>
      ref.publish({ request_id: id, run, ...message } as Parameters<typeof ref.publish>[0]);
    const stage = (run: number, name: string, data: Record<string, unknown> = {}) =>
      say(run, { type: "progress", stage: name, status: name === "queued" ? "pending" : "processing", data });
    await stage(0, "queued");
    await stage(0, "processing_start", { attempt: 1 });
    await stage(0, "care_start", { scientific_name: "Monstera deliciosa" });
    // The request is final in D1 (its job is saying its extras) and its owner retries it.
    await stage(1, "queued");
    await stage(1, "processing_start", { attempt: 1 });
    expect(await stage(0, "care_done", { source: "openai" })).toBe(0);
    expect(await say(0, { type: "completed", status: "identified", results_count: 3 })).toBe(0);
    await stage(1, "merge_done", { suggestions: 2 });

    const expected = ["init", "queued", "processing_start", "care_start", "queued", "processing_start", "merge_done"];
    for (const socket of [following, all]) {
      await received(socket.messages, expected.length);
      expect(socket.messages.map((m) => m.stage ?? m.type)).toEqual(expected);
      expect(socket.messages.slice(1).map((m) => (m as { run?: number }).run)).toEqual([0, 0, 0, 1, 1, 1]);
    }
    // A socket joining now is replayed the new run only.
    const late = await connect(ref, id);
    await received(late.messages, 4);
    expect(late.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued", "processing_start", "merge_done"]);

    // A later run's first message starts its story even when its `queued` was lost.
    await stage(2, "processing_start", { attempt: 1 });
    await stage(1, "care_done", { source: "rules" });
    const later = await connect(ref, id);
    await received(later.messages, 2);
    expect(later.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "processing_start"]);
  });

  it("keeps a request's story for 7 days: a finished request prunes older events, and each request's state is its newest event", async () => {
    const ref = hub("hub-user-retention");
    const day = 24 * 60 * 60 * 1000;
    await runInDurableObject(ref, async (_instance: UserHub, state) => {
      // Older hubs kept each state a second time; a new instance drops that table.
      expect(state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'request_state'").toArray()).toEqual([]);
      // Written as if 8 days and 6 days ago (oldest first, as the hub writes them).
      const insert = (id: string, message: object, at: number) =>
        state.storage.sql.exec(
          "INSERT INTO request_events (request_id, message, created_at) VALUES (?, ?, ?)",
          id,
          JSON.stringify(message),
          at,
        );
      insert("req-old", { type: "progress", request_id: "req-old", stage: "queued", status: "pending", data: {} }, Date.now() - 8 * day);
      insert("req-old", { type: "completed", request_id: "req-old", status: "identified", results_count: 1 }, Date.now() - 8 * day);
      insert("req-week", { type: "completed", request_id: "req-week", status: "needs_help", results_count: 0 }, Date.now() - 6 * day);
    });
    await ref.publish({ type: "progress", request_id: "req-new", stage: "queued", status: "pending", data: {} });
    await runInDurableObject(ref, async (instance: UserHub, state) => {
      // Nothing is pruned until a request finishes.
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM request_events").one().n).toBe(4);
      expect(instance.lastState("req-old")).toMatchObject({ type: "completed", status: "identified" });
      expect(instance.lastState("req-new")).toMatchObject({ type: "progress", stage: "queued" });
    });
    await ref.publish({ type: "completed", request_id: "req-new", status: "identified", results_count: 2 });
    await runInDurableObject(ref, async (instance: UserHub, state) => {
      expect(instance.lastState("req-old")).toBeNull();
      expect(instance.lastState("req-week")).toMatchObject({ type: "completed", status: "needs_help" });
      expect(instance.lastState("req-new")).toMatchObject({ type: "completed", results_count: 2 });
      expect(
        state.storage.sql
          .exec<{ request_id: string }>("SELECT request_id FROM request_events ORDER BY seq")
          .toArray()
          .map((r) => r.request_id),
      ).toEqual(["req-week", "req-new", "req-new"]);
    });
    // A late subscriber to the pruned request gets the final state D1 holds, if the Worker sends it.
    const late = await connect(ref, "req-week");
    await received(late.messages, 2);
    expect(late.messages[1]).toMatchObject({ type: "completed", request_id: "req-week", status: "needs_help" });
  });

  it("prunes every earlier event when all of them have expired", async () => {
    const ref = hub("hub-user-retention-all");
    await ref.publish({ type: "progress", request_id: "req-a", stage: "queued", status: "pending", data: {} });
    await runInDurableObject(ref, async (_instance: UserHub, state) => {
      state.storage.sql.exec("UPDATE request_events SET created_at = created_at - ?", 8 * 24 * 60 * 60 * 1000);
    });
    await ref.publish({ type: "completed", request_id: "req-b", status: "failed", results_count: 0 });
    await runInDurableObject(ref, async (instance: UserHub, state) => {
      expect(instance.lastState("req-a")).toBeNull();
      // The event that triggered the pruning is new, so it stays.
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM request_events").one().n).toBe(1);
    });
  });

  it("uses the hibernation API: sockets are tracked by the runtime with tags and attachments", async () => {
    const ref = hub("hub-user-3");
    await connect(ref, "req-x");
    await runInDurableObject(ref, async (_instance: UserHub, state) => {
      const sockets = state.getWebSockets("req:req-x");
      expect(sockets).toHaveLength(1);
      expect(sockets[0]!.deserializeAttachment()).toMatchObject({ requestId: "req-x" });
      expect(state.getWebSocketAutoResponse()).not.toBeNull();
    });
  });

  it("refuses a plain HTTP request", async () => {
    expect((await hub("hub-user-4").fetch("https://user-hub/connect")).status).toBe(426);
  });

  it("sockets survive hibernation: after the hub is evicted from memory they still get messages and still end with their session", async () => {
    const ref = hub("hub-user-evicted");
    const follower = await connect(ref, "req-h", "session-1");
    const other = await connect(ref, undefined, "session-2");
    await received(follower.messages, 1);
    await evictDurableObject(ref);
    // A new instance: the runtime kept the sockets, their tags and attachments.
    expect(await ref.publish({ type: "progress", request_id: "req-h", stage: "queued", status: "pending", data: {} })).toBe(2);
    await received(follower.messages, 2);
    await received(other.messages, 2);
    expect(follower.messages.at(-1)).toMatchObject({ type: "progress", request_id: "req-h", stage: "queued" });
    const closed = new Promise<number>((resolve) => follower.ws.addEventListener("close", (e) => resolve(e.code)));
    await evictDurableObject(ref);
    expect(await ref.closeSessions({ sessionId: "session-1" })).toBe(1);
    expect(await closed).toBe(CLOSE_CODES.SESSION_ENDED);
    expect(await ref.connectionCount()).toBe(1);
  });

  it("answers a JSON ping (parsed, not substring-matched) with pong, and ignores other text", async () => {
    const ref = hub("hub-user-ping");
    const socket = await connect(ref);
    await received(socket.messages, 1);
    socket.ws.send('this mentions "ping" but is not one');
    socket.ws.send('{"type":"pinged"}');
    socket.ws.send('  { "type" : "ping", "id": 7 }  ');
    await received(socket.messages, 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(socket.messages.slice(1)).toEqual([{ type: "pong" }]);
  });

  it.each([
    ['{"type":"ping"}', { type: "ping" }],
    [' {"type": "ping", "extra": true} ', { type: "ping" }],
    ['"ping"', null],
    ['{"type":"PING"}', null],
    ['{"message":"ping"}', null],
    ["ping", null],
    ["{not json", null],
    [`{"type":"ping","pad":"${"x".repeat(2000)}"}`, null],
  ])("reads the client frame %j as %j", (frame, expected) => {
    expect(parseClientMessage(frame)).toEqual(expected);
  });

  it("sends only to open sockets, and closes a socket whose send fails with 1011", async () => {
    const ref = hub("hub-user-broken");
    await runInDurableObject(ref, async (instance: UserHub) => {
      const fake = (readyState: number, fails: boolean) => ({
        readyState,
        sent: [] as string[],
        closedWith: null as number | null,
        send(text: string) {
          if (fails) throw new Error("socket broken");
          this.sent.push(text);
        },
        close(code: number) {
          this.closedWith = code;
        },
      });
      const send = (instance as unknown as { send(ws: unknown, text: string): boolean }).send.bind(instance);
      const open = fake(WebSocket.OPEN, false);
      const closing = fake(WebSocket.CLOSING, false);
      const broken = fake(WebSocket.OPEN, true);
      expect(send(open, "hello")).toBe(true);
      expect(open.sent).toEqual(["hello"]);
      expect(send(closing, "hello")).toBe(false);
      expect(closing.sent).toEqual([]);
      expect(closing.closedWith).toBeNull();
      expect(send(broken, "hello")).toBe(false);
      expect(broken.closedWith).toBe(CLOSE_CODES.SEND_FAILED);
    });
  });

  it("one account cannot pile up sockets: past the cap the oldest close with 4429 and the newest works", async () => {
    const owner = hub(`hub-cap-${crypto.randomUUID()}`);
    const closes: number[] = [];
    const sockets = [];
    for (let i = 0; i <= MAX_SOCKETS_PER_USER; i++) {
      const socket = await connect(owner, i % 2 ? "req-cap" : undefined);
      socket.ws.addEventListener("close", (e) => closes.push(e.code));
      sockets.push(socket);
    }
    await eventually(
      () => closes.length === 1,
      10_000,
      () => `closes: ${JSON.stringify(closes)}`,
    );
    expect(closes).toEqual([CLOSE_CODES.REPLACED]);
    expect(await owner.connectionCount()).toBeLessThanOrEqual(MAX_SOCKETS_PER_USER);
    // The newest socket is one that stays, and hears what comes.
    const newest = sockets.at(-1)!;
    await owner.publish({ type: "progress", request_id: "req-cap", stage: "queued", status: "pending", data: {} });
    await received(newest.messages, 2);
    for (const s of sockets) s.ws.close();
  });

  it("a socket that sends without pause is closed (1008), and the other sockets go on", async () => {
    const owner = hub(`hub-chatty-${crypto.randomUUID()}`);
    const chatty = await connect(owner);
    const calm = await connect(owner);
    const closed = new Promise<number>((resolve) => chatty.ws.addEventListener("close", (e) => resolve(e.code)));
    for (let i = 0; i < MAX_CLIENT_MESSAGES_PER_MINUTE; i++) chatty.ws.send('{"type":"ping"}');
    await received(chatty.messages, 1 + MAX_CLIENT_MESSAGES_PER_MINUTE);
    expect(chatty.messages.filter((m) => m.type === "pong")).toHaveLength(MAX_CLIENT_MESSAGES_PER_MINUTE);
    chatty.ws.send('{"type":"ping"}');
    expect(await closed).toBe(CLOSE_CODES.TOO_MANY_MESSAGES);
    calm.ws.send('{"type":"ping"}');
    await received(calm.messages, 2);
    expect(calm.messages.at(-1)).toEqual({ type: "pong" });
    calm.ws.close();
  });
});
