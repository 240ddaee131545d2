/**
 * A queued request's "ready" notification is written by its completion's own batch
 * (services/queued-requests.ts `completionNotice`): a job that dies straight after completing
 * cannot lose it, since a redelivery finds the request final and does no work; a second
 * completion writes no second one; and its text counts the results that batch left.
 */
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { completeDiseaseRequest } from "../../src/services/diseases";
import { completeIdentificationRequest } from "../../src/services/identification-requests";
import type { MergedSuggestion } from "../../src/services/merge";
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
