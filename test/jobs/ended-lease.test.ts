/**
 * A request that ends — completed (identified / needs help) or failed — keeps no lease: no
 * delivery holds it any more, so its row says so (`lease_expires_at` null), whichever path ended
 * it: its job's completion, its job's last failed attempt, the dead-letter queue, or the queue
 * refusing the job its owner's retry queued. (The stuck-request sweep already cleared it.)
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_ATTEMPTS } from "../../src/jobs/job-policy";
import { createApp } from "../../src/app";
import { makePng } from "../helpers/images";
import { expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { deliverBatch, deliverJob, NO_QUEUE } from "../helpers/queue";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();

const KINDS = [
  { kind: "identify", table: "identification_requests" },
  { kind: "diagnose", table: "disease_requests" },
] as const;

type Row = { status: string; lease_expires_at: string | null; processed_at: string | null };

describe.each(KINDS)("a $kind request that ends has no lease", ({ kind, table }) => {
  const row = async (id: string) =>
    (await env.DB.prepare(`SELECT status, lease_expires_at, processed_at FROM ${table} WHERE id = ?`).bind(id).first<Row>())!;

  async function pending() {
    const u = await bearerUser();
    const id = await pendingRequest(kind, u.userId, await makePng(320, 240, { seed: `ended-lease-${kind}-${Math.random()}` }));
    return { id, body: { type: kind, request_id: id, user_id: u.userId } };
  }

  it("after its job completes it", async () => {
    const { id, body } = await pending();
    expect(await deliverJob(body)).toMatchObject({ acked: 1, retried: 0 });
    const ended = await row(id);
    expect(["identified", "needs_help"]).toContain(ended.status);
    expect(ended).toMatchObject({ lease_expires_at: null, processed_at: expect.any(String) });
  });

  it("after its job's last attempt fails", async () => {
    const { id, body } = await pending();
    emulators.plantId.setMode({ failure: "500" });
    emulators.plantnet.setMode({ failure: "500" });
    // An earlier attempt released it with a deadline: the lease is set while it waits.
    expect(await deliverJob(body, MAX_ATTEMPTS - 1)).toMatchObject({ retried: 1 });
    expect(await row(id)).toMatchObject({ status: "pending", lease_expires_at: expect.any(String) });
    expect(await deliverJob(body, MAX_ATTEMPTS)).toMatchObject({ acked: 1, retried: 0 });
    expect(await row(id)).toMatchObject({ status: "failed", lease_expires_at: null, processed_at: expect.any(String) });
  });

  it("after its message is dead-lettered while it waits for a retry", async () => {
    const { id, body } = await pending();
    const due = new Date(Date.now() + 60_000).toISOString();
    await env.DB.prepare(`UPDATE ${table} SET lease_expires_at = ? WHERE id = ?`).bind(due, id).run();
    const result = await deliverBatch("plant-identify-dlq", [body], { ...env, IDENTIFY_QUEUE: NO_QUEUE });
    expect(result.explicitAcks).toHaveLength(1);
    expect(await row(id)).toMatchObject({ status: "failed", lease_expires_at: null });
  });
});

describe("an identification its owner retried", () => {
  it("has no lease once the queue refuses the retry's job and it fails again", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await makePng(320, 240, { seed: `ended-lease-retry-${Math.random()}` }));
    await env.DB.prepare("UPDATE identification_requests SET status = 'failed' WHERE id = ?").bind(id).run();
    const refusing = { send: () => Promise.reject(new Error("queue down")) } as unknown as Queue;
    const ctx = createExecutionContext();
    const res = await createApp().request(
      `/api/v1/plant-identification/requests/${id}/retry/`,
      { method: "POST", headers: { Authorization: `Bearer ${u.access}` } },
      { ...env, IDENTIFY_QUEUE: refusing },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    await expectError(res, 503, "QUEUE_UNAVAILABLE");
    const row = await env.DB.prepare("SELECT status, lease_expires_at FROM identification_requests WHERE id = ?")
      .bind(id)
      .first<{ status: string; lease_expires_at: string | null }>();
    expect(row).toEqual({ status: "failed", lease_expires_at: null });
  });
});
