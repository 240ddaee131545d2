/**
 * A copy of a job's message that the queue gave up on (its deliveries crashed, say while D1 was
 * flaky) reaches the dead-letter queue while another delivery of the same job holds the request
 * and is running it. The dead-letter consumer leaves a request another delivery holds (processing,
 * its lease live) to that delivery, as a delivery giving up on its last attempt does: failing it
 * under the running job made the job's completion write nothing, so the owner heard `failed`,
 * then the job's own `completed` (identified), while D1 kept the request failed with no results.
 */
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { deliverJobs, type JobBody } from "../helpers/queue";
import { envBeforeBatchInto } from "../helpers/racing-env";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";
import { openReadySocket, settled } from "../helpers/ws";

useEmulators();

async function deadLetter(body: JobBody) {
  const batch = createMessageBatch("plant-identify-dlq", [{ id: `dlq-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body }]);
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  await waitOnExecutionContext(ctx);
  return (await getQueueResult(batch, ctx)).explicitAcks;
}

describe("a dead-lettered copy of a job while another delivery runs it", () => {
  it("fails nothing: the running delivery completes the request, and its owner hears one end, D1's", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await makePng(320, 240, { seed: `dlq-dup-${Math.random()}` }));
    const socket = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    const job = { type: "identify", request_id: id, user_id: u.userId };
    const racing = envBeforeBatchInto("identification_results", async () => {
      expect(await deadLetter(job)).toHaveLength(1);
    });
    expect((await deliverJobs([job], racing.env)).acked).toHaveLength(1);
    expect(racing.fired(), "the dead letter landed while the delivery held the request").toBe(true);

    const row = await env.DB.prepare(
      "SELECT status, (SELECT count(*) FROM identification_results r WHERE r.request_id = q.id) AS results FROM identification_requests q WHERE id = ?",
    )
      .bind(id)
      .first<{ status: string; results: number }>();
    expect(row!.status).toMatch(/identified|needs_help/);
    expect(row!.results).toBeGreaterThan(0);
    await settled(socket);
    const ends = socket.messages.filter((m) => m.request_id === id && (m.type === "completed" || m.type === "error"));
    expect(ends).toEqual([{ type: "completed", request_id: id, status: row!.status, results_count: row!.results, run: 0 }]);
    const failures = await env.DB.prepare(
      "SELECT count(*) AS n FROM notifications WHERE type = 'identification_failed' AND json_extract(data, '$.request_id') = ?",
    )
      .bind(id)
      .first<{ n: number }>();
    expect(failures!.n).toBe(0);
    socket.ws.close(1000);
  });

  it("still fails a request nobody holds (pending, or processing past its lease)", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await makePng(64, 48, { seed: `dlq-open-${Math.random()}` }));
    await env.DB.prepare(
      "UPDATE identification_requests SET status = 'processing', claim_token = 'gone', lease_expires_at = '2000-01-01T00:00:00.000Z' WHERE id = ?",
    )
      .bind(id)
      .run();
    expect(await deadLetter({ type: "identify", request_id: id, user_id: u.userId })).toHaveLength(1);
    const row = await env.DB.prepare("SELECT status FROM identification_requests WHERE id = ?").bind(id).first<{ status: string }>();
    expect(row!.status).toBe("failed");
  });

  it("leaves alone a later run its owner's retry began: only that run's job ends it", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await makePng(64, 48, { seed: `dlq-run-${Math.random()}` }));
    // Run 0's job was lost; the owner retried (run 1, pending, its message not yet delivered).
    await env.DB.prepare("UPDATE identification_requests SET run = 1 WHERE id = ?").bind(id).run();
    const status = async () =>
      (await env.DB.prepare("SELECT status FROM identification_requests WHERE id = ?").bind(id).first<{ status: string }>())!.status;

    expect(await deadLetter({ type: "identify", request_id: id, user_id: u.userId, run: 0 })).toHaveLength(1);
    expect(await status(), "run 0's dead letter does not end run 1").toBe("pending");
    const failures = await env.DB.prepare(
      "SELECT count(*) AS n FROM notifications WHERE type = 'identification_failed' AND json_extract(data, '$.request_id') = ?",
    )
      .bind(id)
      .first<{ n: number }>();
    expect(failures!.n).toBe(0);

    expect(await deadLetter({ type: "identify", request_id: id, user_id: u.userId, run: 1 })).toHaveLength(1);
    expect(await status()).toBe("failed");
  });
});
