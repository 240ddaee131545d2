/**
 * A job whose request was ended by another path while it ran — here the stuck-request sweep
 * failing it (the job outlived its lease and the margin, as a hung isolate does) — finds its
 * completion writes nothing. It then says nothing more: before, it said its own `completed`
 * (identified) and its care advice after the sweep's `failed`, so the owner's screen, and every
 * socket replayed the request later, showed it identified while D1 had it failed with no results.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { STUCK_MESSAGE, sweepStuckRequests } from "../../src/jobs/stuck-requests";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { deliverJobs } from "../helpers/queue";
import { envBeforeBatchInto } from "../helpers/racing-env";
import { pendingDiseaseRequest, pendingIdentificationRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";
import { eventually } from "../helpers/wait";
import { openReadySocket, settled } from "../helpers/ws";

useEmulators();

const noQueue = { send: async () => {}, sendBatch: async () => {} } as unknown as Queue;

describe("a job whose request the sweep failed while it ran", () => {
  it("says nothing after the sweep's end: the owner's sockets, live and replayed, show D1's failed", async () => {
    const u = await bearerUser();
    const id = await pendingIdentificationRequest(u.userId, await makePng(320, 240, { seed: `ended-${Math.random()}` }));
    const path = `/ws/plant-identification/requests/${id}/`;
    const socket = await openReadySocket(path, { bearer: u.access });
    const racing = envBeforeBatchInto("identification_results", async () => {
      // What the job said before its completion has reached the hub (its channel sends behind it).
      await eventually(() => socket.messages.some((m) => m.stage === "merge_done"));
      // The job's lease ran out long ago, and the sweep had put it back three times already.
      await env.DB.prepare(
        "UPDATE identification_requests SET lease_expires_at = '2000-01-01T00:00:00.000Z', updated_at = '2000-01-01T00:00:00.000Z', requeue_count = 3 WHERE id = ?",
      )
        .bind(id)
        .run();
      expect(await sweepStuckRequests({ ...env, IDENTIFY_QUEUE: noQueue })).toMatchObject({ failed: 1 });
    });
    expect((await deliverJobs([{ type: "identify", request_id: id, user_id: u.userId }], racing.env)).acked).toHaveLength(1);
    expect(racing.fired()).toBe(true);

    const row = await env.DB.prepare(
      "SELECT status, (SELECT count(*) FROM identification_results r WHERE r.request_id = q.id) AS results FROM identification_requests q WHERE id = ?",
    )
      .bind(id)
      .first<{ status: string; results: number }>();
    expect(row).toEqual({ status: "failed", results: 0 });
    const failedEnd = { type: "completed", request_id: id, status: "failed", results_count: 0, run: 0 };
    await settled(socket);
    const told = socket.messages.filter((m) => m.request_id === id && m.type !== "init");
    expect(told.slice(-2)).toEqual([{ type: "error", request_id: id, message: STUCK_MESSAGE, run: 0 }, failedEnd]);
    expect(told.filter((m) => m.type === "completed")).toEqual([failedEnd]);
    const late = await openReadySocket(path, { bearer: u.access });
    await settled(late);
    expect(late.messages.filter((m) => m.request_id === id && m.type !== "init")).toEqual([failedEnd]);
    for (const s of [socket, late]) s.ws.close(1000);
  });

  it("a diagnosis job too: after the sweep's end it says no diagnosed completed of its own", async () => {
    const u = await bearerUser();
    const id = await pendingDiseaseRequest(u.userId, await makePng(320, 240, { seed: `ended-dx-${Math.random()}` }));
    const path = `/ws/plant-identification/requests/${id}/`;
    const socket = await openReadySocket(path, { bearer: u.access });
    const racing = envBeforeBatchInto("disease_results", async () => {
      await eventually(() => socket.messages.some((m) => m.stage === "health_start"));
      await env.DB.prepare(
        "UPDATE disease_requests SET lease_expires_at = '2000-01-01T00:00:00.000Z', updated_at = '2000-01-01T00:00:00.000Z', requeue_count = 3 WHERE id = ?",
      )
        .bind(id)
        .run();
      expect(await sweepStuckRequests({ ...env, IDENTIFY_QUEUE: noQueue })).toMatchObject({ failed: 1 });
    });
    expect((await deliverJobs([{ type: "diagnose", request_id: id, user_id: u.userId }], racing.env)).acked).toHaveLength(1);
    expect(racing.fired()).toBe(true);

    const row = await env.DB.prepare(
      "SELECT status, (SELECT count(*) FROM disease_results r WHERE r.request_id = q.id) AS results FROM disease_requests q WHERE id = ?",
    )
      .bind(id)
      .first<{ status: string; results: number }>();
    expect(row).toEqual({ status: "failed", results: 0 });
    const failedEnd = { type: "completed", request_id: id, status: "failed", results_count: 0, run: 0 };
    await settled(socket);
    const told = socket.messages.filter((m) => m.request_id === id && m.type !== "init");
    expect(told.filter((m) => m.type === "completed")).toEqual([failedEnd]);
    expect(told.at(-1)).toEqual(failedEnd);
    socket.ws.close(1000);
  });
});
