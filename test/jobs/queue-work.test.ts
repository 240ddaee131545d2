/**
 * The harness's wait for a file's queue work (helpers/queue-work.ts, test/setup.ts): when it
 * returns, what the file sent to a real queue has run to its end, dead letter included, so
 * nothing of it runs as vitest closes the file. Nothing routes fetches to the emulators here: the
 * job's provider calls fail at once (test/setup.ts), which the job takes as an outage to retry.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { makePng } from "../helpers/images";
import { deliverJobs } from "../helpers/queue";
import { queueWorkDone } from "../helpers/queue-work";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";

const statusOf = async (id: string) =>
  (await env.DB.prepare("SELECT status FROM identification_requests WHERE id = ?").bind(id).first<{ status: string }>())?.status;

describe("the wait for a file's queue work", () => {
  it("returns once a job sent to the real queue has failed, been dead-lettered and ended its request", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await makePng(64, 48, { seed: `queue-work-${Math.random()}` }));
    await env.IDENTIFY_QUEUE.send({ type: "identify", request_id: id, user_id: u.userId }, { contentType: "json" });
    await queueWorkDone(15_000);
    // Read once, no polling: the wait itself must have covered the delivery, the retry the
    // job asked for (no retries in tests: straight to the dead-letter queue) and its consumer.
    expect(await statusOf(id)).toBe("failed");
  });

  it("has nothing to wait for after a batch the test delivered itself, whatever its outcome", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await makePng(64, 48, { seed: `queue-work-${Math.random()}` }));
    const { retried } = await deliverJobs([{ type: "identify", request_id: id, user_id: u.userId }]);
    expect(retried).toHaveLength(1);
    const started = Date.now();
    await queueWorkDone(3_000);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
