/**
 * Every message about a request carries the run it belongs to (0, then one more per retry/), also
 * those told outside the job's own channel: a failure (the job's, the stuck-request sweep's), the
 * sweep's `queued` when it puts a lost job back, and a redelivery's retold `completed`. So one
 * that reaches the user's hub after the owner's retry began a later run is dropped there, and
 * never ends the later run on the owner's screen, live or replayed. Each test makes the owner's
 * retry (or the later run's first messages) land just before the earlier run's message reaches
 * the hub, through a hub binding that runs it first. Through the Worker: real WebSockets.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { HubMessage } from "../../durable-objects/user-hub-protocol";
import { sweepStuckRequests } from "../../src/jobs/stuck-requests";
import { createLogger } from "../../src/lib/logger";
import { IdentificationRequests, retryOwnRequest } from "../../src/services/queued-requests";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { deliverJobs, NO_QUEUE } from "../helpers/queue";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";
import { hubOf, openReadySocket, quietFor, type Socket, settled } from "../helpers/ws";

useEmulators();

const logger = createLogger({ test: "late-run-messages" });

/**
 * Bindings whose user hubs run `before(method, args)` ahead of each call (and then make it): the
 * owner's retry landing between a service's write and its message reaching the hub.
 */
function hubsCalling(before: (method: string, args: unknown[]) => Promise<void>) {
  const USER_HUB = new Proxy(env.USER_HUB, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "get") return typeof value === "function" ? value.bind(target) : value;
      return (id: DurableObjectId) => {
        const hub = target.get(id) as unknown as Record<string, (...args: unknown[]) => unknown>;
        return new Proxy(
          {},
          {
            get:
              (_, method: string) =>
              async (...args: unknown[]) => {
                await before(method, args);
                return hub[method]!(...args);
              },
          },
        );
      };
    },
  });
  return { ...env, USER_HUB } as typeof env;
}

/** Bindings whose hubs let the owner retry `id` just before its first `error` reaches the hub; `retried`: whether that happened. */
function retryingOnError(userId: string, id: string) {
  let retried = false;
  const bindings = hubsCalling(async (method, args) => {
    const [message] = args as [HubMessage];
    if (method === "publish" && message.type === "error" && message.request_id === id && !retried) {
      retried = true;
      await retry(userId, id);
    }
  });
  return { bindings, retried: () => retried };
}

/** The owner retries the request (its job's message goes nowhere); `hubs`: the bindings its `queued` is told through. */
const retry = (userId: string, id: string, hubs: Pick<typeof env, "USER_HUB"> = env) =>
  retryOwnRequest({ ...env, ...hubs, IDENTIFY_QUEUE: NO_QUEUE }, IdentificationRequests, { userId, address: "unknown" }, id, logger);

/** What a socket heard of the request, as `stage-or-type:run`. */
const story = (socket: Socket, id: string) =>
  socket.messages.filter((m) => m.request_id === id && m.type !== "init").map((m) => `${m.stage ?? m.type}:${m.run}`);

const following = (id: string, access: string) => openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: access });

const photo = () => makePng(64, 48, { seed: `late-run-${Math.random()}` });

describe("a message of an earlier run reaching the hub after the owner's retry began the next", () => {
  it("the job's failure (its photos are gone): its error and completed are dropped, not the new run's end", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await photo(), { keepPhoto: false });
    const socket = await following(id, u.access);
    const { bindings, retried } = retryingOnError(u.userId, id);
    expect((await deliverJobs([{ type: "identify", request_id: id, user_id: u.userId }], bindings)).acked).toHaveLength(1);
    expect(retried(), "the failure was committed, so the owner could retry").toBe(true);
    await settled(socket);
    expect(story(socket, id)).toEqual(["processing_start:0", "queued:1"]);
    const late = await following(id, u.access);
    await settled(late);
    expect(story(late, id), "a socket joining now follows the new run").toEqual(["queued:1"]);
    for (const s of [socket, late]) s.ws.close(1000);
  });

  it("the sweep's failure of a request lost too often: its error and completed are dropped", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await photo());
    await env.DB.prepare(
      "UPDATE identification_requests SET status = 'processing', lease_expires_at = '2000-01-01T00:00:00.000Z', updated_at = '2000-01-01T00:00:00.000Z', requeue_count = 3 WHERE id = ?",
    )
      .bind(id)
      .run();
    const socket = await following(id, u.access);
    const { bindings, retried } = retryingOnError(u.userId, id);
    expect(await sweepStuckRequests({ ...bindings, IDENTIFY_QUEUE: NO_QUEUE })).toMatchObject({ failed: 1 });
    expect(retried()).toBe(true);
    await settled(socket);
    expect(story(socket, id)).toEqual(["queued:1"]);
    const late = await following(id, u.access);
    await settled(late);
    expect(story(late, id)).toEqual(["queued:1"]);
    for (const s of [socket, late]) s.ws.close(1000);
  });

  it("the sweep's `queued` for a lost job of the later run keeps its run: the earlier run's late `completed` after it is dropped", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await photo());
    const hub = hubOf(u.userId);
    // Run 0 was saying its care advice when its owner retried; run 1's job message was then lost.
    const stage = (run: number, name: "queued" | "processing_start" | "care_start", data: object) =>
      hub.publish({ type: "progress", request_id: id, stage: name, status: "processing", data, run } as HubMessage);
    await stage(0, "queued", {});
    await stage(0, "processing_start", { attempt: 1 });
    await stage(0, "care_start", { scientific_name: "Monstera deliciosa" });
    await stage(1, "queued", {});
    await env.DB.prepare(
      "UPDATE identification_requests SET status = 'pending', run = 1, lease_expires_at = '2000-01-01T00:00:00.000Z', updated_at = '2000-01-01T00:00:00.000Z' WHERE id = ?",
    )
      .bind(id)
      .run();
    const socket = await following(id, u.access);
    await settled(socket);
    expect(await sweepStuckRequests({ ...env, IDENTIFY_QUEUE: NO_QUEUE })).toMatchObject({ requeued: 1 });
    // Run 0's `completed`, held up on its way (a late one is kept rather than lost), arrives now.
    await hub.publish({ type: "completed", request_id: id, status: "identified", results_count: 2, run: 0 });
    await settled(socket);
    expect(story(socket, id).slice(-1), "run 0's completed is not told after the re-queue").toEqual(["queued:1"]);
    const late = await following(id, u.access);
    await settled(late);
    expect(story(late, id), "the re-queued run is replayed, not run 0's end").toEqual(["queued:1"]);
    expect(late.messages.find((m) => m.stage === "queued")?.data).toEqual({ requeued: true, requeue_count: 1 });
    for (const s of [socket, late]) s.ws.close(1000);
  });

  it("a redelivery's retold `completed`: dropped when the later run's `queued` was lost and its job is waiting to retry", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await photo());
    // Run 0 failed, and the hub has nothing of it (its messages were lost).
    await env.DB.prepare("UPDATE identification_requests SET status = 'failed', error_message = 'x' WHERE id = ?").bind(id).run();
    const all = await openReadySocket("/ws/", { bearer: u.access });
    const unreachable = new Proxy(env.USER_HUB, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (prop !== "get") return typeof value === "function" ? value.bind(target) : value;
        return () => new Proxy({}, { get: () => () => Promise.reject(new Error("user hub unreachable")) });
      },
    });
    let retried = false;
    const bindings = hubsCalling(async (method) => {
      if (method !== "retellCompleted" || retried) return;
      retried = true;
      // The owner retries while the redelivery (its mark and D1's end read) is on its way; the
      // retry's `queued` is lost, and run 1's job starts and waits to try again.
      await retry(u.userId, id, { USER_HUB: unreachable as typeof env.USER_HUB });
      const hub = hubOf(u.userId);
      await hub.publish({
        type: "progress",
        request_id: id,
        stage: "processing_start",
        status: "processing",
        data: { attempt: 1 },
        run: 1,
      });
      await hub.publish({
        type: "progress",
        request_id: id,
        stage: "retry_scheduled",
        status: "pending",
        data: { delay_seconds: 120, attempt: 1, max_attempts: 3 },
        run: 1,
      });
    });
    expect((await deliverJobs([{ type: "identify", request_id: id, user_id: u.userId }], bindings, 2)).acked).toHaveLength(1);
    expect(retried).toBe(true);
    // A minute of quiet while run 1 waits: the hub's alarm would tell a held end now.
    await quietFor(u.userId, id);
    await runDurableObjectAlarm(hubOf(u.userId));
    await settled(all);
    expect(story(all, id)).toEqual(["processing_start:1", "retry_scheduled:1"]);
    const late = await following(id, u.access);
    await settled(late);
    expect(story(late, id), "run 1 is still waiting, not failed").toEqual(["processing_start:1", "retry_scheduled:1"]);
    for (const s of [all, late]) s.ws.close(1000);
  });
});
