/**
 * A job that dies after its request's completion committed (request, results and notification
 * final in D1) but before its owner's sockets heard `completed`: the queue delivers the message
 * again, the redelivery finds nothing to claim, and says the request's `completed` again as D1
 * has it — without calling a provider, writing anything or queueing a notification's email or
 * push a second time — then acks. A socket that heard the end already (a repeat redelivery, or
 * a socket that connected meanwhile and was replayed D1's final) does not hear it twice.
 * Through the Worker: real WebSockets and queue batches.
 */
import { createExecutionContext, createMessageBatch, getQueueResult, runDurableObjectAlarm, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { STUCK_MESSAGE, sweepStuckRequests } from "../../src/jobs/stuck-requests";
import { sha256Hex } from "../../src/lib/hash";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { deliverJobs } from "../helpers/queue";
import { bearerUser } from "../helpers/users";
import { hubOf, openReadySocket, quietFor, type Socket, settled } from "../helpers/ws";
import { eventually } from "../helpers/wait";

const emulators = useEmulators();

type Kind = { type: "identify" | "diagnose"; table: "identification_requests" | "disease_requests"; results: string };
const IDENTIFY: Kind = { type: "identify", table: "identification_requests", results: "identification_results" };
const DIAGNOSE: Kind = { type: "diagnose", table: "disease_requests", results: "disease_results" };

async function pendingRequest(kind: Kind, userId: string): Promise<string> {
  const bytes = await makePng(320, 240, { seed: `redelivered-${Math.random()}` });
  const sha = await sha256Hex(bytes);
  await env.IMAGES.put(`images/${sha}.png`, bytes);
  const id = crypto.randomUUID();
  const sql =
    kind.table === "identification_requests"
      ? "INSERT INTO identification_requests (id, user_id, status, image_hashes, organs) VALUES (?, ?, 'pending', ?, '[\"auto\"]')"
      : "INSERT INTO disease_requests (id, user_id, status, image_hashes, symptoms_description) VALUES (?, ?, 'pending', ?, 'Brown spots.')";
  await env.DB.prepare(sql)
    .bind(id, userId, JSON.stringify([`${sha}.png`]))
    .run();
  return id;
}

const statementText = (st: D1PreparedStatement) => String((st as unknown as { statement?: string }).statement ?? "");

/**
 * Bindings of an isolate that dies as soon as the completion's batch (its results and its "ready"
 * notification) is committed: from then on D1, the user hubs and the notify queue are out of its
 * reach, so nothing it says or sends afterwards arrives.
 */
function dyingAfterCompletion(kind: Kind) {
  const state = { dead: false };
  const gone = () => new Error("the isolate is gone");
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (state.dead) throw gone();
      const value = Reflect.get(target, prop, target);
      if (prop !== "batch") return typeof value === "function" ? value.bind(target) : value;
      return async (statements: D1PreparedStatement[]) => {
        const result = await target.batch(statements);
        const texts = statements.map(statementText);
        if (texts.some((t) => t.includes(kind.results)) && texts.some((t) => /into "?notifications"?/i.test(t))) state.dead = true;
        return result;
      };
    },
  });
  const hubs = new Proxy(env.USER_HUB, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "get") return typeof value === "function" ? value.bind(target) : value;
      return (id: DurableObjectId) => {
        const ref = target.get(id) as unknown as Record<string, (...args: unknown[]) => unknown>;
        return new Proxy(
          {},
          {
            get:
              (_, method: string) =>
              (...args: unknown[]) =>
                state.dead ? Promise.reject(gone()) : ref[method]!(...args),
          },
        );
      };
    },
  });
  const notify = {
    send: async () => {
      if (state.dead) throw gone();
    },
    sendBatch: async () => {
      if (state.dead) throw gone();
    },
  } as unknown as Queue;
  return { bindings: { ...env, DB: db, USER_HUB: hubs, NOTIFY_QUEUE: notify } as typeof env, state };
}

/** A notify queue that records what is sent to it. */
function countingNotifyQueue() {
  const sent: unknown[] = [];
  const queue = {
    send: async (body: unknown) => void sent.push(body),
    sendBatch: async (messages: { body: unknown }[]) => void sent.push(...messages.map((m) => m.body)),
  } as unknown as Queue;
  return { bindings: { ...env, NOTIFY_QUEUE: queue } as typeof env, sent };
}

const completedOf = (socket: Socket, id: string) => socket.messages.filter((m) => m.type === "completed" && m.request_id === id);

async function finalInD1(kind: Kind, id: string) {
  return (await env.DB.prepare(
    `SELECT status, (SELECT count(*) FROM ${kind.results} r WHERE r.request_id = q.id) AS results FROM ${kind.table} q WHERE id = ?`,
  )
    .bind(id)
    .first<{ status: string; results: number }>())!;
}

/** The request's notifications and their deliveries, as rows (what a second send would add to). */
async function noticesAndDeliveries(id: string) {
  const { results } = await env.DB.prepare(
    `SELECT n.type, d.channel, d.status FROM notifications n LEFT JOIN notification_deliveries d ON d.notification_id = n.id
      WHERE json_extract(n.data, '$.request_id') = ? ORDER BY n.type, d.channel`,
  )
    .bind(id)
    .all();
  return results;
}

const providerCalls = () => emulators.plantId.calls + emulators.plantnet.calls + emulators.trefle.calls + emulators.openai.calls;

describe.each([IDENTIFY, DIAGNOSE])("a redelivered $type job whose request is final already", (kind) => {
  it("says `completed` again from D1 to the sockets that missed it, calls and writes nothing, and acks", async () => {
    const u = await bearerUser();
    // A device, so the "ready" notification has a push delivery to be sent exactly once.
    await env.DB.prepare("INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth) VALUES (?, ?, ?, 'p', 'a')")
      .bind(crypto.randomUUID(), u.userId, `https://push.example/${crypto.randomUUID()}`)
      .run();
    const id = await pendingRequest(kind, u.userId);
    const following = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    const all = await openReadySocket("/ws/", { bearer: u.access });
    const job = { type: kind.type, request_id: id, user_id: u.userId };

    // The first delivery completes the request, then its isolate dies.
    const dying = dyingAfterCompletion(kind);
    const first = await deliverJobs([job], dying.bindings);
    expect(dying.state.dead, "the completion's batch was committed").toBe(true);
    expect(first.acked.length + first.retried.length).toBe(1);
    const final = await finalInD1(kind, id);
    expect(final.status).toMatch(/identified|needs_help/);
    await settled(following);
    expect(
      following.messages.some((m) => m.stage === "processing_start"),
      "the job ran while the sockets listened",
    ).toBe(true);
    expect(completedOf(following, id), "the dying job's `completed` never arrived").toEqual([]);
    const stored = await noticesAndDeliveries(id);
    expect(stored.filter((r) => r.type === "identification_completed").length).toBeGreaterThan(0);
    const calls = providerCalls();

    // A minute passes: nothing more comes from the dead job. A socket that connects now is replayed D1's final at once.
    await quietFor(u.userId, id);
    const late = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    const expected = { type: "completed", request_id: id, status: final.status, results_count: final.results, run: 0 };
    expect(completedOf(late, id)).toEqual([expected]);

    // The queue delivers the message again.
    const notify = countingNotifyQueue();
    const again = await deliverJobs([job], notify.bindings, 2);
    expect(again).toEqual({ acked: [expect.any(String)], retried: [] });
    await Promise.all([settled(following), settled(all), settled(late)]);
    expect(completedOf(following, id), "the socket open through the crash hears the end, once").toEqual([expected]);
    expect(completedOf(all, id)).toEqual([expected]);
    expect(completedOf(late, id), "a socket replayed D1's final is not told it twice").toEqual([expected]);

    // Nothing was redone or sent again: no provider call, no notification or delivery, no push.
    expect(providerCalls()).toBe(calls);
    expect(await noticesAndDeliveries(id)).toEqual(stored);
    expect(notify.sent).toEqual([]);
    expect(all.messages.filter((m) => m.type === "notification")).toEqual([]);
    expect(await finalInD1(kind, id)).toEqual(final);

    // Yet another delivery: every socket heard the end already, and the hub says nothing.
    const third = await deliverJobs([job], notify.bindings, 3);
    expect(third.acked).toHaveLength(1);
    await Promise.all([settled(following), settled(all), settled(late)]);
    expect([completedOf(following, id), completedOf(all, id), completedOf(late, id)]).toEqual([[expected], [expected], [expected]]);
    expect(providerCalls()).toBe(calls);
    expect(notify.sent).toEqual([]);
    for (const s of [following, all, late]) s.ws.close(1000);
  });

  it("acks without a retry or a write when the user's hub cannot be reached (the retelling is best effort)", async () => {
    const u = await bearerUser();
    const id = await pendingRequest(kind, u.userId);
    await env.DB.prepare(`UPDATE ${kind.table} SET status = 'needs_help' WHERE id = ?`).bind(id).run();
    const before = await finalInD1(kind, id);
    const stored = await noticesAndDeliveries(id);
    const calls = providerCalls();
    // Every hub call fails, as during a Durable Object outage.
    const hubs = new Proxy(env.USER_HUB, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (prop !== "get") return typeof value === "function" ? value.bind(target) : value;
        return () => new Proxy({}, { get: () => () => Promise.reject(new Error("user hub unreachable")) });
      },
    });
    const dup = await deliverJobs([{ type: kind.type, request_id: id, user_id: u.userId }], { ...env, USER_HUB: hubs } as typeof env, 2);
    expect(dup).toEqual({ acked: [expect.any(String)], retried: [] });
    expect(await finalInD1(kind, id)).toEqual(before);
    expect(await noticesAndDeliveries(id)).toEqual(stored);
    expect(providerCalls()).toBe(calls);
  });

  it("tells nothing while another delivery holds the request, nor for another user's message", async () => {
    const u = await bearerUser();
    const id = await pendingRequest(kind, u.userId);
    const following = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    // Another delivery holds it (processing, its lease live): the duplicate acks without a word.
    await env.DB.prepare(
      `UPDATE ${kind.table} SET status = 'processing', attempts = 1, lease_expires_at = ?, claim_token = 'other' WHERE id = ?`,
    )
      .bind(new Date(Date.now() + 60_000).toISOString(), id)
      .run();
    const calls = providerCalls();
    const dup = await deliverJobs([{ type: kind.type, request_id: id, user_id: u.userId }]);
    expect(dup.acked).toHaveLength(1);
    // Final now, but the message names someone else as its owner: not theirs to hear of.
    await env.DB.prepare(`UPDATE ${kind.table} SET status = 'needs_help' WHERE id = ?`).bind(id).run();
    const other = await bearerUser();
    const theirs = await openReadySocket("/ws/", { bearer: other.access });
    const stray = await deliverJobs([{ type: kind.type, request_id: id, user_id: other.userId }]);
    expect(stray.acked).toHaveLength(1);
    await Promise.all([settled(following), settled(theirs)]);
    expect(following.messages.filter((m) => m.request_id === id && m.type !== "init")).toEqual([]);
    expect(theirs.messages.filter((m) => m.request_id === id)).toEqual([]);
    expect(providerCalls()).toBe(calls);
    for (const s of [following, theirs]) s.ws.close(1000);
  });
});

describe("a duplicate delivery while the first is still saying its extras", () => {
  it("the first delivery's care advice comes before its `completed`, which is said once", async () => {
    const u = await bearerUser();
    const id = await pendingRequest(IDENTIFY, u.userId);
    const following = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    const job = { type: IDENTIFY.type, request_id: id, user_id: u.userId };
    // The first delivery's extras (after the request is final in D1) wait at their first provider call.
    let entered!: () => void;
    const inExtras = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    for (const [host, emulator] of [
      ["trefle.emulator.test", emulators.trefle],
      ["openai.emulator.test", emulators.openai],
    ] as const) {
      emulators.overrides[host] = async (request) => {
        entered();
        await released;
        return emulator.handle(request);
      };
    }
    const first = deliverJobs([job]);
    await inExtras;
    expect((await finalInD1(IDENTIFY, id)).status).toMatch(/identified|needs_help/);
    // The hub has what the extras said so far: nothing more is said until the provider answers.
    await eventually(() => following.messages.some((m) => m.stage === "enrich_start" || m.stage === "care_start"));

    // The queue delivers the message again meanwhile: the request is final, so it retells D1's end.
    expect(await deliverJobs([job], env, 2)).toEqual({ acked: [expect.any(String)], retried: [] });
    // And a socket joins: D1 says final, but the story is still being told; it follows it.
    const joined = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    await Promise.all([settled(following), settled(joined)]);
    expect(completedOf(following, id), "not before the first delivery's extras").toEqual([]);
    expect(completedOf(joined, id), "not replayed ahead of the extras").toEqual([]);

    release();
    expect((await first).acked).toHaveLength(1);
    // A minute later the hub's alarm finds the end said by the first delivery: the held retelling adds nothing.
    await quietFor(u.userId, id);
    await runDurableObjectAlarm(hubOf(u.userId));
    await Promise.all([settled(following), settled(joined)]);
    for (const socket of [following, joined]) {
      const story = socket.messages.filter((m) => m.request_id === id && m.type !== "init").map((m) => m.stage ?? m.type);
      expect(story.filter((m) => m === "completed").length, "said once, by the first delivery").toBe(1);
      expect(story.at(-1)).toBe("completed");
      expect(story).toContain("care_done");
    }
    for (const s of [following, joined]) s.ws.close(1000);
  });
});

describe("the paths that end a request themselves say `completed` as before", () => {
  async function deadLetter(body: { type: string; request_id: string; user_id: string }) {
    const batch = createMessageBatch("plant-identify-dlq", [
      { id: `dlq-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    await waitOnExecutionContext(ctx);
    return (await getQueueResult(batch, ctx)).explicitAcks;
  }
  const told = (socket: Socket, id: string) =>
    socket.messages.filter((m) => m.request_id === id && m.type !== "init").map((m) => ({ ...m, message: undefined }));
  const failedEnd = (id: string, message?: string) => [
    { type: "error", request_id: id, message, run: 0 },
    { type: "completed", request_id: id, status: "failed", results_count: 0, message: undefined, run: 0 },
  ];

  it.each([IDENTIFY, DIAGNOSE])("dead letter ($type): error then completed (failed), once; a later delivery adds nothing", async (kind) => {
    const u = await bearerUser();
    const id = await pendingRequest(kind, u.userId);
    const socket = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    const job = { type: kind.type, request_id: id, user_id: u.userId };
    expect(await deadLetter(job)).toHaveLength(1);
    await settled(socket);
    expect(told(socket, id)).toEqual(failedEnd(id));
    expect(socket.messages.find((m) => m.type === "error")?.message).toMatch(/failed after several attempts/);
    // Dead-lettered again, and the job's own message delivered again: nothing more is said.
    await deadLetter(job);
    expect((await deliverJobs([job], env, 2)).acked).toHaveLength(1);
    await settled(socket);
    expect(told(socket, id)).toEqual(failedEnd(id));
    socket.ws.close(1000);
  });

  it.each([IDENTIFY, DIAGNOSE])(
    "stuck-request sweep ($type): error then completed (failed), once; the lost message turning up adds nothing",
    async (kind) => {
      const u = await bearerUser();
      const id = await pendingRequest(kind, u.userId);
      const socket = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
      // Its message was lost three times already: the sweep gives up on it.
      await env.DB.prepare(
        `UPDATE ${kind.table} SET status = 'processing', lease_expires_at = '2000-01-01T00:00:00.000Z', updated_at = '2000-01-01T00:00:00.000Z', requeue_count = 3 WHERE id = ?`,
      )
        .bind(id)
        .run();
      await sweepStuckRequests(env);
      await settled(socket);
      expect(told(socket, id)).toEqual(failedEnd(id));
      expect(socket.messages.find((m) => m.type === "error")?.message).toBe(STUCK_MESSAGE);
      expect((await deliverJobs([{ type: kind.type, request_id: id, user_id: u.userId }], env, 2)).acked).toHaveLength(1);
      await settled(socket);
      expect(told(socket, id)).toEqual(failedEnd(id));
      socket.ws.close(1000);
    },
  );
});
