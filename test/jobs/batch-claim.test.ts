/**
 * The jobs of one queue batch claim their requests together, in one D1 round trip, a lone job
 * the same way
 * (jobs/queue.ts `claimBatch`). Each message is still acked or retried on its own; a message
 * delivered twice in one batch does its work once; and a batch claim that fails leaves every
 * request pending and every message retried, as a job whose own claim crashed.
 */
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_ATTEMPTS } from "../../src/jobs/job-policy";
import worker from "../../src/index";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { NO_QUEUE } from "../helpers/queue";
import { bearerUser } from "../helpers/users";
import { pendingRequest } from "../helpers/requests";

useEmulators();

type Body = { type: string; request_id: string; user_id: string };

function pendingIdentification(userId: string): Promise<string> {
  return makePng(320, 240, { seed: `batch-claim-${Math.random()}` }).then((bytes) => pendingRequest("identify", userId, bytes));
}

const row = async (id: string) =>
  (await env.DB.prepare(
    "SELECT status, attempts, (SELECT count(*) FROM identification_results r WHERE r.request_id = q.id) AS results FROM identification_requests q WHERE id = ?",
  )
    .bind(id)
    .first<{ status: string; attempts: number; results: number }>())!;

/** Delivers the bodies as one batch; returns the ids of acked and retried messages. */
async function deliverBatch(bodies: Body[], db: D1Database = env.DB, attempts = 1) {
  const batch = createMessageBatch(
    "plant-identify",
    bodies.map((body, i) => ({ id: `m-${i}-${crypto.randomUUID()}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, DB: db, IDENTIFY_QUEUE: NO_QUEUE }, ctx);
  await waitOnExecutionContext(ctx);
  const result = await getQueueResult(batch, ctx);
  return { ids: batch.messages.map((m) => m.id), acked: result.explicitAcks, retried: result.retryMessages.map((m) => m.msgId) };
}

/** D1 that refuses the first batch it is sent (the claim), or every batch (`all`); everything else goes through. */
function refusingFirstBatch(all = false) {
  let refused = false;
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "batch" && (all || !refused)) {
        refused = true;
        return async () => {
          throw new Error("D1_ERROR: simulated outage");
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db, refused: () => refused };
}

describe("claiming a queue batch's requests together", () => {
  it("runs every job of the batch once, acks each message, and a duplicate delivery does no work", async () => {
    const u = await bearerUser();
    const [a, b, c] = [await pendingIdentification(u.userId), await pendingIdentification(u.userId), await pendingIdentification(u.userId)];
    const job = (id: string) => ({ type: "identify", request_id: id, user_id: u.userId });
    const result = await deliverBatch([job(a), job(b), job(a), job(c)]);
    expect(result.retried).toEqual([]);
    expect(result.acked.sort()).toEqual([...result.ids].sort());
    for (const id of [a, b, c]) {
      const r = await row(id);
      expect(r.status).toBe("identified");
      expect(r.attempts).toBe(1); // the duplicate of `a` claimed nothing
      expect(r.results).toBeGreaterThan(0);
    }
  });

  it("claims a lone job the same way: one statement of one batch, then its work once", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    const batches: string[][] = [];
    const db = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch") {
          return (statements: D1PreparedStatement[]) => {
            batches.push(statements.map((st) => String((st as unknown as { statement?: string }).statement ?? "")));
            return target.batch(statements);
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const result = await deliverBatch([{ type: "identify", request_id: id, user_id: u.userId }], db);
    expect(result.acked).toEqual(result.ids);
    expect(await row(id)).toMatchObject({ status: "identified", attempts: 1 });
    // The first batch is the claim: one statement, the lease taken.
    expect(batches[0]).toHaveLength(1);
    expect(batches[0]![0]).toMatch(/^update "identification_requests" set "status" = \?, "attempts"/);
  });

  // API.md §2.3: at most 5 attempts. A crash on the last ends the request failed at once instead
  // of a sixth try; when D1 refuses that too (an outage), the message is retried for the queue's
  // dead-letter consumer to end, and nothing is lost or half-written.
  it.each([
    { d1: "refuses only the claim", everyBatch: false, acked: true, status: "failed" },
    { d1: "refuses the failing too", everyBatch: true, acked: false, status: "pending" },
  ])("a crash on a job's last attempt when D1 $d1 ends $status", async ({ everyBatch, acked, status }) => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    const result = await deliverBatch(
      [{ type: "identify", request_id: id, user_id: u.userId }],
      refusingFirstBatch(everyBatch).db,
      MAX_ATTEMPTS,
    );
    expect(result.acked).toEqual(acked ? result.ids : []);
    expect(result.retried).toEqual(acked ? [] : result.ids);
    expect(await row(id)).toMatchObject({ status, results: 0 });
  });

  it("a crash on the last attempt of a duplicate that claimed nothing leaves the request to the delivery running it", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    // Another delivery of the job holds the request: processing, its own token, a live lease.
    const lease = new Date(Date.now() + 4 * 60_000).toISOString();
    await env.DB.prepare(
      "UPDATE identification_requests SET status = 'processing', claim_token = 'the-runner', lease_expires_at = ? WHERE id = ?",
    )
      .bind(lease, id)
      .run();
    // This one's claim crashes (D1 refuses it) on the job's last attempt.
    await deliverBatch([{ type: "identify", request_id: id, user_id: u.userId }], refusingFirstBatch().db, MAX_ATTEMPTS);
    // The runner's work is not thrown away: the request is still its to finish.
    expect(await row(id)).toMatchObject({ status: "processing" });
    const told = await env.DB.prepare("SELECT count(*) AS n FROM notifications WHERE user_id = ? AND type = 'identification_failed'")
      .bind(u.userId)
      .first<{ n: number }>();
    expect(told!.n).toBe(0);
  });

  it.each([1, 2])("when the claim of a batch of %i fails, every message is retried and every request stays pending", async (n) => {
    const u = await bearerUser();
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(await pendingIdentification(u.userId));
    const d1 = refusingFirstBatch();
    const result = await deliverBatch(
      ids.map((id) => ({ type: "identify", request_id: id, user_id: u.userId })),
      d1.db,
    );
    expect(d1.refused()).toBe(true);
    expect(result.acked).toEqual([]);
    expect(result.retried.sort()).toEqual([...result.ids].sort());
    for (const id of ids) expect(await row(id)).toMatchObject({ status: "pending", attempts: 0, results: 0 });
  });
});
