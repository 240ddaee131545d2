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
import { deliverJobs, NO_QUEUE } from "../helpers/queue";
import { envBeforeBatchInto } from "../helpers/racing-env";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";
import { eventually } from "../helpers/wait";
import { openReadySocket, settled } from "../helpers/ws";

useEmulators();

/** Each kind's tables and the stage its job says just before its completion. */
const KINDS = {
  identify: {
    requests: "identification_requests",
    results: "identification_results",
    lastStage: "merge_done",
  },
  diagnose: { requests: "disease_requests", results: "disease_results", lastStage: "health_start" },
} as const;

/**
 * A job of `type` runs while the sweep fails its request (its lease long run out, put back three
 * times already), just before its completion's batch: what D1 kept and what a socket following
 * the request from the start heard.
 */
async function sweptWhileRunning(type: keyof typeof KINDS) {
  const kind = KINDS[type];
  const u = await bearerUser();
  const id = await pendingRequest(type, u.userId, await makePng(320, 240, { seed: `ended-${type}-${Math.random()}` }));
  const path = `/ws/plant-identification/requests/${id}/`;
  const socket = await openReadySocket(path, { bearer: u.access });
  const racing = envBeforeBatchInto(kind.results, async () => {
    // What the job said before its completion has reached the hub (its channel sends behind it).
    await eventually(() => socket.messages.some((m) => m.stage === kind.lastStage));
    await env.DB.prepare(
      `UPDATE ${kind.requests} SET lease_expires_at = '2000-01-01T00:00:00.000Z', updated_at = '2000-01-01T00:00:00.000Z', requeue_count = 3 WHERE id = ?`,
    )
      .bind(id)
      .run();
    expect(await sweepStuckRequests({ ...env, IDENTIFY_QUEUE: NO_QUEUE })).toMatchObject({ failed: 1 });
  });
  expect((await deliverJobs([{ type, request_id: id, user_id: u.userId }], racing.env)).acked).toHaveLength(1);
  expect(racing.fired()).toBe(true);

  const row = await env.DB.prepare(
    `SELECT status, (SELECT count(*) FROM ${kind.results} r WHERE r.request_id = q.id) AS results FROM ${kind.requests} q WHERE id = ?`,
  )
    .bind(id)
    .first<{ status: string; results: number }>();
  await settled(socket);
  const told = socket.messages.filter((m) => m.request_id === id && m.type !== "init");
  const failedEnd = { type: "completed", request_id: id, status: "failed", results_count: 0, run: 0 };
  return { u, id, path, socket, row, told, failedEnd };
}

describe("a job whose request the sweep failed while it ran", () => {
  it("says nothing after the sweep's end: the owner's sockets, live and replayed, show D1's failed", async () => {
    const { u, id, path, socket, row, told, failedEnd } = await sweptWhileRunning("identify");
    expect(row).toEqual({ status: "failed", results: 0 });
    expect(told.slice(-2)).toEqual([{ type: "error", request_id: id, message: STUCK_MESSAGE, run: 0 }, failedEnd]);
    expect(told.filter((m) => m.type === "completed")).toEqual([failedEnd]);
    const late = await openReadySocket(path, { bearer: u.access });
    await settled(late);
    expect(late.messages.filter((m) => m.request_id === id && m.type !== "init")).toEqual([failedEnd]);
    for (const s of [socket, late]) s.ws.close(1000);
  });

  it("a diagnosis job too: after the sweep's end it says no diagnosed completed of its own", async () => {
    const { socket, row, told, failedEnd } = await sweptWhileRunning("diagnose");
    expect(row).toEqual({ status: "failed", results: 0 });
    expect(told.filter((m) => m.type === "completed")).toEqual([failedEnd]);
    expect(told.at(-1)).toEqual(failedEnd);
    socket.ws.close(1000);
  });
});
