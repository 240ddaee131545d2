/**
 * A queued request's owner is told how it ended by a notification the ending write's own batch
 * stores (services/queued-requests.ts `completionNotice`, `failureNotices`): a job that dies
 * straight after completing or failing a request cannot lose it, since a redelivery finds the
 * request final and does no work; a second ending writes no second one; a "ready" text counts
 * the results that batch left; and a diagnosis is named as one whichever path failed it.
 */
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { completeDiseaseRequest } from "../../src/services/diseases";
import { completeIdentificationRequest } from "../../src/services/identification-requests";
import type { MergedSuggestion } from "../../src/services/merge";
import { DiseaseRequests, failRequest, IdentificationRequests } from "../../src/services/queued-requests";
import { sweepStuckRequests } from "../../src/jobs/stuck-requests";
import { useEmulators } from "../helpers/outbound";
import { registerWeb } from "../helpers/users";

useEmulators(); // registration sends its verification email
afterAll(() => new Promise((resolve) => setTimeout(resolve, 250)));

function suggestion(scientificName: string, rank: number, probability: number): MergedSuggestion {
  return {
    plant_name: scientificName,
    scientific_name: scientificName,
    probability,
    common_names: [],
    description: "",
    family: "Noticeaceae",
    genus: scientificName.split(" ")[0]!,
    similar_images: [],
    sources: ["plant_id"],
    calibration_version: "plant_id:raw,plantnet:raw",
    rank,
  };
}

async function processingRequest(table: "identification_requests" | "disease_requests", userId: string): Promise<string> {
  const id = crypto.randomUUID();
  const sql =
    table === "identification_requests"
      ? "INSERT INTO identification_requests (id, user_id, status, image_hashes, organs) VALUES (?, ?, 'processing', '[]', '[\"auto\"]')"
      : "INSERT INTO disease_requests (id, user_id, status, image_hashes, symptoms_description) VALUES (?, ?, 'processing', '[]', 'spots')";
  await env.DB.prepare(sql).bind(id, userId).run();
  return id;
}

async function storedNotices(requestId: string) {
  const { results } = await env.DB.prepare("SELECT type, title, body, data FROM notifications WHERE json_extract(data, '$.request_id') = ?")
    .bind(requestId)
    .all<{ type: string; title: string; body: string; data: string }>();
  return results.map((r) => ({ ...r, data: JSON.parse(r.data) as unknown }));
}

describe("the completion notification", () => {
  it("comes with its queued push delivery, read in the same batch; a redelivery's batch queues nothing", async () => {
    const { userId } = await registerWeb();
    // A device (written directly: the subscription's own API is tested elsewhere): the
    // notification's insert trigger writes a push delivery for it.
    await env.DB.prepare("INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth) VALUES (?, ?, ?, 'p', 'a')")
      .bind(crypto.randomUUID(), userId, `https://push.example/${crypto.randomUUID()}`)
      .run();
    const requestId = await processingRequest("identification_requests", userId);
    const done = await completeIdentificationRequest(env, requestId, userId, [suggestion("Noticea prima", 1, 0.9)], null, userId);
    const { results: queued } = await env.DB.prepare(
      "SELECT d.id, d.channel FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id WHERE n.dedupe_key = ? AND d.status = 'queued'",
    )
      .bind(`identification_completed:${requestId}:0`)
      .all<{ id: string; channel: string }>();
    expect(queued.map((d) => d.channel)).toEqual(["push"]);
    expect(done.deliveryIds).toEqual(queued.map((d) => d.id));
    const again = await completeIdentificationRequest(env, requestId, userId, [suggestion("Noticea prima", 1, 0.9)], null, userId);
    expect(again.deliveryIds).toEqual([]);
    // Without an owner to tell, nothing is read.
    const quiet = await processingRequest("identification_requests", userId);
    expect((await completeIdentificationRequest(env, quiet, userId, [suggestion("Noticea prima", 1, 0.9)])).deliveryIds).toEqual([]);
  });

  it("is written by the completion's batch, once, counting its results", async () => {
    const { userId } = await registerWeb();
    const requestId = await processingRequest("identification_requests", userId);
    const suggestions = [suggestion("Noticea prima", 1, 0.9), suggestion("Noticea secunda", 2, 0.3)];

    const done = await completeIdentificationRequest(env, requestId, userId, suggestions, null, userId);

    // Nothing after the batch has run (the job could die here): the notification is stored already.
    const expected = {
      type: "identification_completed",
      title: "Your identification is ready",
      body: "2 suggestions to look at.",
      data: { request_id: requestId, kind: "identification", results_count: 2 },
    };
    expect(await storedNotices(requestId)).toEqual([expected]);
    expect(done.results).toBe(2);
    expect(done.notices).toHaveLength(1);
    expect(done.notices[0]).toMatchObject({ ...expected, userId, inApp: true, isRead: false });

    // A second completion (a redelivery that got this far) finds the request final: nothing new.
    const again = await completeIdentificationRequest(env, requestId, userId, suggestions, null, userId);
    expect(again.written).toBe(false);
    expect(again.notices).toEqual([]);
    expect(await storedNotices(requestId)).toHaveLength(1);
    // Not only by the dedupe key: a batch that does not complete the request writes no notice.
    await env.DB.prepare("DELETE FROM notifications WHERE dedupe_key = ?").bind(`identification_completed:${requestId}:0`).run();
    const stale = await completeIdentificationRequest(env, requestId, userId, suggestions, null, userId);
    expect(stale).toMatchObject({ written: false, notices: [] });
    expect(await storedNotices(requestId)).toEqual([]);
  });

  it("says one suggestion, and no match, in words", async () => {
    const { userId } = await registerWeb();
    const one = await processingRequest("identification_requests", userId);
    await completeIdentificationRequest(env, one, userId, [suggestion("Noticea unica", 1, 0.8)], null, userId);
    expect((await storedNotices(one))[0]?.body).toBe("1 suggestion to look at.");

    const none = await processingRequest("identification_requests", userId);
    await completeIdentificationRequest(env, none, userId, [], null, userId);
    expect(await storedNotices(none)).toEqual([
      expect.objectContaining({
        body: "No match was found this time.",
        data: { request_id: none, kind: "identification", results_count: 0 },
      }),
    ]);
  });

  it("names a plant health check for a diagnosis", async () => {
    const { userId } = await registerWeb();
    const requestId = await processingRequest("disease_requests", userId);
    const health = { isHealthy: true, isHealthyProbability: 0.97, diseases: [] };
    const done = await completeDiseaseRequest(env, requestId, health, true, userId);
    expect(done.notices.map((n) => n.title)).toEqual(["Your plant health check is ready"]);
    expect(await storedNotices(requestId)).toEqual([
      {
        type: "identification_completed",
        title: "Your plant health check is ready",
        body: "No match was found this time.",
        data: { request_id: requestId, kind: "diagnosis", results_count: 0 },
      },
    ]);
  });

  it("is not written without an owner to tell, or for a request that was not completed", async () => {
    const { userId } = await registerWeb();
    // The synchronous endpoint's record: it answers its caller itself.
    const quiet = await processingRequest("identification_requests", userId);
    const unasked = await completeIdentificationRequest(env, quiet, userId, [suggestion("Noticea tacita", 1, 0.9)], null);
    expect(unasked.notices).toEqual([]);
    expect(await storedNotices(quiet)).toEqual([]);

    // A request another delivery failed meanwhile is not completed, and nobody hears it is ready.
    const failed = await processingRequest("identification_requests", userId);
    await env.DB.prepare("UPDATE identification_requests SET status = 'failed' WHERE id = ?").bind(failed).run();
    const late = await completeIdentificationRequest(env, failed, userId, [suggestion("Noticea sera", 1, 0.9)], null, userId);
    expect(late.written).toBe(false);
    expect(late.notices).toEqual([]);
    expect(await storedNotices(failed)).toEqual([]);
  });
});

describe("the failure notification", () => {
  it("is written by the failing batch, once, naming the kind of request", async () => {
    const { userId } = await registerWeb();
    const id = await processingRequest("identification_requests", userId);
    const first = await failRequest(env, IdentificationRequests, id, "Plant identification services are unavailable.");
    const expected = {
      type: "identification_failed",
      title: "Your identification failed",
      body: "Plant identification services are unavailable.",
      data: { request_id: id, kind: "identification", message: "Plant identification services are unavailable." },
    };
    expect(first.failedRun, "the run it ended").toBe(0);
    expect(await storedNotices(id)).toEqual([expected]);
    expect(first.notices).toEqual([expect.objectContaining({ ...expected, userId, inApp: true })]);

    const again = await failRequest(env, IdentificationRequests, id, "Plant identification services are unavailable.");
    expect(again).toEqual({ failedRun: null, notices: [] });
    expect(await storedNotices(id)).toHaveLength(1);

    const diagnosis = await processingRequest("disease_requests", userId);
    await failRequest(env, DiseaseRequests, diagnosis, "The plant health service is unavailable.");
    expect((await storedNotices(diagnosis)).map((n) => [n.title, (n.data as { kind: string }).kind])).toEqual([
      ["Your plant health check failed", "diagnosis"],
    ]);
  });

  it("is written with the sweep's failures, for each owner, and not for a request that stays open", async () => {
    const { userId } = await registerWeb();
    const tooOften = await processingRequest("disease_requests", userId);
    const lively = await processingRequest("identification_requests", userId);
    // Stuck (its lease ran out long ago) and re-queued too often: the sweep gives up on it.
    await env.DB.prepare(
      "UPDATE disease_requests SET lease_expires_at = '2000-01-01T00:00:00.000Z', updated_at = '2000-01-01T00:00:00.000Z', requeue_count = 99 WHERE id = ?",
    )
      .bind(tooOften)
      .run();
    await sweepStuckRequests(env);
    expect(await storedNotices(tooOften)).toEqual([
      expect.objectContaining({
        type: "identification_failed",
        title: "Your plant health check failed",
        data: expect.objectContaining({ kind: "diagnosis" }),
      }),
    ]);
    expect(await storedNotices(lively)).toEqual([]);
    await sweepStuckRequests(env);
    expect(await storedNotices(tooOften)).toHaveLength(1);
  });
});
