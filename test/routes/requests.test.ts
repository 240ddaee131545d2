import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { makePng } from "../helpers/images";
import { call, expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { eventually } from "../helpers/wait";
import { bearerUser } from "../helpers/users";
import { openSocket } from "../helpers/ws";
import { deliverBatch } from "../helpers/queue";
import { pendingRequest } from "../helpers/requests";

const emulators = useEmulators();
let seed = 0;
const photo = (text?: string) => makePng(320, 240, { seed: `req-${++seed}-${Math.random()}`, ...(text ? { text } : {}) });

async function upload(bearer: string, files: Uint8Array[], extra: Record<string, string> = {}) {
  const form = new FormData();
  files.forEach((bytes, i) => form.append(`image_${i + 1}`, new File([bytes], `p${i}.png`, { type: "image/png" })));
  for (const [k, v] of Object.entries(extra)) form.append(k, v);
  return call("/api/v1/plant-identification/requests/", { method: "POST", body: form, bearer });
}

describe("async requests: upload → queue → live progress → results", () => {
  it("streams the whole progress sequence over the user's socket and stores the results", async () => {
    const u = await bearerUser();
    const socket = await openSocket("/ws/", { bearer: u.access });
    await eventually(() => socket.messages.find((m) => m.type === "init"));

    const res = await upload(u.access, [await photo()], { organs: "leaf", latitude: "48.85", longitude: "2.35" });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { request_id: string; status: string; ws_url: string; images: { url: string }[] };
    expect(body.status).toBe("pending");
    expect(body.ws_url).toBe(`/ws/plant-identification/requests/${body.request_id}/`);

    const completed = await eventually(
      () => socket.messages.find((m) => m.type === "completed" && m.request_id === body.request_id),
      30_000,
    );
    const stages = socket.messages.filter((m) => m.type === "progress").map((m) => m.stage);
    expect(stages[0]).toBe("queued");
    for (const stage of ["processing_start", "plant_id_start", "plant_id_done", "plantnet_start", "plantnet_done", "merge_done"]) {
      expect(stages).toContain(stage);
    }
    expect(stages.some((s) => String(s).startsWith("enrich_"))).toBe(true);
    expect(stages).toContain("care_start");
    expect(stages).toContain("care_done");
    expect(stages.indexOf("merge_done")).toBeGreaterThan(stages.indexOf("processing_start"));
    // Sent through the job's batching channel, the messages still arrive in the order said:
    // processing_start before every provider stage, merge after both, care after merge, completed last.
    const ofRequest = socket.messages.filter((m) => m.request_id === body.request_id).map((m) => m.stage ?? m.type);
    const at = (name: string) => ofRequest.indexOf(name);
    for (const stage of ["plant_id_start", "plant_id_done", "plantnet_start", "plantnet_done"]) {
      expect(at(stage)).toBeGreaterThan(at("processing_start"));
      expect(at(stage)).toBeLessThan(at("merge_done"));
    }
    expect(at("care_start")).toBeGreaterThan(at("merge_done"));
    expect(at("care_done")).toBeGreaterThan(at("care_start"));
    expect(ofRequest.at(-1)).toBe("completed");
    expect(ofRequest.filter((m) => m === "completed")).toHaveLength(1);
    expect(["identified", "needs_help"]).toContain(completed.status);
    expect(completed.results_count).toBeGreaterThan(0);

    // Location chose the regional Pl@ntNet project and reached Plant.id.
    expect(emulators.plantnet.requests.at(-1)!.path).toBe("/v2/identify/weurope");

    const results = await call(`/api/v1/plant-identification/requests/${body.request_id}/results/`, { bearer: u.access });
    const r = (await results.json()) as {
      status: string;
      results: { confidence_score: number; rank: number; sources: string[]; scientific_name: string }[];
      disease_detection: unknown;
      care_instructions: { source: string } | null;
    };
    // The job wrote an AI care guide for the best suggestion, served with the results; the
    // socket's care_done said its source and language as the results do.
    expect(r.care_instructions).toMatchObject({ source: "openai", language: "en" });
    const careDone = socket.messages.find((m) => m.request_id === body.request_id && m.stage === "care_done");
    expect(careDone?.data).toEqual({ source: "openai", language: "en" });
    // Trefle filled in the new species' light and water needs.
    const enriched = await env.DB.prepare("SELECT trefle_id, light_requirements FROM species WHERE lower(scientific_name) = lower(?)")
      .bind(r.results[0]!.scientific_name)
      .first<{ trefle_id: number | null; light_requirements: string | null }>();
    expect(enriched?.trefle_id).not.toBeNull();
    expect(r.status).toBe(completed.status);
    expect(r.results).toHaveLength(completed.results_count as number);
    expect(r.results.map((x) => x.confidence_score)).toEqual([...r.results.map((x) => x.confidence_score)].sort((a, b) => b - a));

    // A socket opened after the end gets init then completed at once (late subscriber).
    const late = await openSocket(body.ws_url, { bearer: u.access });
    await eventually(() => late.messages.find((m) => m.type === "completed"));
    expect(late.messages[0]).toMatchObject({ type: "init", request_id: body.request_id });
    expect(late.messages[1]).toMatchObject({ type: "completed", request_id: body.request_id, status: completed.status });

    // History shows it with the best result.
    const history = (await (await call("/api/v1/plant-identification/history/", { bearer: u.access })).json()) as {
      results: { id: string; scientific_name: string; image_url: string }[];
    };
    expect(history.results[0]).toMatchObject({ id: body.request_id });
    expect(history.results[0]!.image_url).toBe(body.images[0]!.url);
    socket.ws.close(1000, "done");
    late.ws.close(1000, "done");
  }, 60_000); // a real queue round trip (1 s batching) plus the whole job: generous for a loaded CI box

  it("answers ping with pong", async () => {
    const u = await bearerUser();
    const socket = await openSocket("/ws/", { bearer: u.access });
    socket.ws.send("ping");
    await eventually(() => socket.messages.find((m) => m.type === "pong"));
    socket.ws.close(1000);
  });
});

describe("WebSocket authentication and close codes", () => {
  it("4401 without credentials; 4404 for another user's request, the same code and reason as for an unknown one", async () => {
    const owner = await bearerUser();
    const other = await bearerUser();
    // A request row without a queued job: an upload here would leave a real job running in the
    // background, calling the shared emulators (and their circuit breakers) during later tests.
    const request_id = await pendingIdentification(owner.userId);

    const anon = await openSocket(`/ws/plant-identification/requests/${request_id}/`);
    expect((await anon.closed).code).toBe(4401);
    const forged = await openSocket(`/ws/`, { bearer: "not-a-token" });
    expect((await forged.closed).code).toBe(4401);
    // A stranger cannot tell that the request exists: the same close as for an id nobody has.
    const stranger = await openSocket(`/ws/plant-identification/requests/${request_id}/`, { bearer: other.access });
    const unknown = await openSocket(`/ws/plant-identification/requests/00000000-0000-4000-8000-000000000000/`, { bearer: owner.access });
    const malformed = await openSocket(`/ws/plant-identification/requests/not-a-uuid/`, { bearer: owner.access });
    const refused = { code: 4404, reason: "unknown request" };
    expect(await stranger.closed).toEqual(refused);
    expect(await unknown.closed).toEqual(refused);
    expect(await malformed.closed).toEqual(refused);
    const notUpgrade = await call(`/ws/`, { bearer: owner.access });
    expect(notUpgrade.status).toBe(426);
  });

  it("accepts a single-use ticket exactly once", async () => {
    const u = await bearerUser();
    const { ticket } = (await (await call("/api/v1/auth/ws-ticket/", { method: "POST", bearer: u.access })).json()) as { ticket: string };
    const first = await openSocket(`/ws/?ticket=${ticket}`);
    await eventually(() => first.messages.find((m) => m.type === "init"));
    const replay = await openSocket(`/ws/?ticket=${ticket}`);
    expect((await replay.closed).code).toBe(4401);
    first.ws.close(1000);
  });

  it("authenticates by the access_token cookie", async () => {
    const { registerWeb } = await import("../helpers/users");
    const s = await registerWeb();
    const socket = await openSocket("/ws/", { cookie: `access_token=${s.cookies.access_token}` });
    await eventually(() => socket.messages.find((m) => m.type === "init"));
    socket.ws.close(1000);
  });
});

describe("bad uploads to requests/", () => {
  it("rejects invalid input with field errors and writes nothing", async () => {
    const u = await bearerUser();
    const before = (await env.DB.prepare("SELECT count(*) AS n FROM identification_requests").first<{ n: number }>())!.n;
    const cases: [Promise<Response>, number, string][] = [
      [upload(u.access, []), 400, "image_1"],
      [upload(u.access, [await photo(), new TextEncoder().encode("not an image at all, really")]), 400, "image_2"],
      [upload(u.access, [await photo()], { organs: "leaf,flower" }), 400, "organs"],
      [upload(u.access, [await photo()], { organs: "root" }), 400, "organs"],
      [upload(u.access, [await photo()], { latitude: "123", longitude: "2" }), 400, "latitude"],
      [upload(u.access, [await photo()], { latitude: "12" }), 400, "latitude"],
    ];
    for (const [pending, status, field] of cases) {
      const body = await expectError(await pending, status, "VALIDATION_ERROR");
      expect(Object.keys(body.errors ?? {}), field).toContain(field);
    }
    await expectError(await upload("", [await photo()]), 401, "AUTHENTICATION_REQUIRED");

    // A photo under a name the route does not read (identify/'s `image`, a sixth one) is named,
    // not dropped in silence (which answered "No image file provided" to someone who sent one).
    const misnamed = new FormData();
    misnamed.append("image", new File([await photo()], "p.png", { type: "image/png" }));
    const misnamedBody = await expectError(
      await call("/api/v1/plant-identification/requests/", { method: "POST", body: misnamed, bearer: u.access }),
      400,
      "VALIDATION_ERROR",
    );
    expect(misnamedBody.errors?.image?.[0]).toMatch(/image_1 … image_5/);
    const six = await Promise.all([1, 2, 3, 4, 5, 6].map(() => photo()));
    const sixthBody = await expectError(await upload(u.access, six), 400, "VALIDATION_ERROR");
    expect(Object.keys(sixthBody.errors ?? {})).toEqual(["image_6"]);
    // A misspelt text field is refused, naming the ones the route takes, not an identification without it.
    const misspelt = await expectError(await upload(u.access, [await photo()], { organ: "flower" }), 400, "VALIDATION_ERROR");
    expect(misspelt.errors?.non_field_errors).toEqual([
      'Unrecognized key: "organ". Accepted fields: organs, latitude, longitude, location, description, plant_size, habitat, language.',
    ]);
    const after = (await env.DB.prepare("SELECT count(*) AS n FROM identification_requests").first<{ n: number }>())!.n;
    expect(after).toBe(before);
  });
});

// ---- The queue consumer, driven directly with message batches ------------------------------

async function pendingIdentification(userId: string, bytes?: Uint8Array) {
  return pendingRequest("identify", userId, bytes ?? (await photo()));
}

/** Delivers the job for `requestId` (`times` copies in one batch) with the real bindings; retries carry their delay. */
const deliver = (requestId: string, userId: string, attempts = 1, queue = "plant-identify", times = 1) =>
  deliverBatch(
    queue,
    Array.from({ length: times }, () => ({ type: "identify", request_id: requestId, user_id: userId })),
    env,
    attempts,
  );

/** The notifications a request caused its owner (type and title). */
async function notificationsOf(userId: string, requestId: string) {
  const rows = await env.DB.prepare(
    "SELECT type, title FROM notifications WHERE user_id = ? AND json_extract(data, '$.request_id') = ? ORDER BY created_at",
  )
    .bind(userId, requestId)
    .all<{ type: string; title: string }>();
  return rows.results;
}

async function status(id: string) {
  return (await env.DB.prepare("SELECT status, attempts, error_message FROM identification_requests WHERE id = ?").bind(id).first<{
    status: string;
    attempts: number;
    error_message: string | null;
  }>())!;
}

describe("queue consumer", () => {
  it("is idempotent: duplicate delivery never duplicates results or counts", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    const first = await deliver(id, u.userId, 1, "plant-identify", 2); // the same job twice in one batch
    expect(first.explicitAcks.length).toBe(2);
    const again = await deliver(id, u.userId); // and re-delivered later
    expect(again.explicitAcks.length).toBe(1);
    const rows = await env.DB.prepare("SELECT scientific_name FROM identification_results WHERE request_id = ?")
      .bind(id)
      .all<{ scientific_name: string }>();
    const names = rows.results.map((r) => r.scientific_name.toLowerCase());
    expect(new Set(names).size).toBe(names.length);
    const top = rows.results[0]!.scientific_name;
    const { n } = (await env.DB.prepare(
      "SELECT count(*) AS n FROM identification_results WHERE request_id = ? AND lower(scientific_name) = lower(?)",
    )
      .bind(id, top)
      .first<{ n: number }>())!;
    expect(n).toBe(1);
    expect(["identified", "needs_help"]).toContain((await status(id)).status);
    const user = await env.DB.prepare("SELECT plants_identified FROM users WHERE id = ?")
      .bind(u.userId)
      .first<{ plants_identified: number }>();
    expect(user!.plants_identified).toBeLessThanOrEqual(1);
    // One "ready" notification for the three deliveries.
    const notes = await notificationsOf(u.userId, id);
    expect(notes).toEqual([{ type: "identification_completed", title: "Your identification is ready" }]);
  });

  it("retries with backoff when both providers are down, back to pending (never stuck processing)", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    emulators.plantId.setMode({ failure: "500" });
    emulators.plantnet.setMode({ failure: "500" });
    const result = await deliver(id, u.userId, 1);
    expect(result.retryMessages).toHaveLength(1);
    const delay = result.retryMessages[0]!.delaySeconds!;
    expect(delay).toBeGreaterThanOrEqual(2);
    expect(delay).toBeLessThanOrEqual(8);
    expect((await status(id)).status).toBe("pending");
    const later = await deliver(id, u.userId, 3);
    expect(later.retryMessages[0]!.delaySeconds).toBeGreaterThanOrEqual(10);
  });

  it("honours a provider's Retry-After on 429, capped at 300 s", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    const socket = await openSocket("/ws/", { bearer: u.access });
    emulators.plantId.setMode({ failure: "429", retryAfterSeconds: 42 });
    emulators.plantnet.setMode({ failure: "500" });
    const result = await deliver(id, u.userId);
    expect(result.retryMessages[0]!.delaySeconds).toBe(42);
    await eventually(() => socket.messages.find((m) => m.stage === "rate_limited"));
    await eventually(() => socket.messages.find((m) => m.stage === "retry_scheduled"));

    const id2 = await pendingIdentification(u.userId);
    emulators.plantId.setMode({ failure: "429", retryAfterSeconds: 4000 });
    expect((await deliver(id2, u.userId)).retryMessages[0]!.delaySeconds).toBe(300);
    socket.ws.close(1000);
  });

  it("fails the request after the last attempt and tells the owner", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    const socket = await openSocket("/ws/", { bearer: u.access });
    emulators.plantId.setMode({ failure: "hang" });
    emulators.plantnet.setMode({ failure: "500" });
    const ctx = createExecutionContext();
    const batch = createMessageBatch("plant-identify", [
      { id: "last", timestamp: new Date(), attempts: 5, body: { type: "identify", request_id: id, user_id: u.userId } },
    ]);
    await worker.queue(batch, { ...env, PLANT_ID_TIMEOUT_MS: "200" }, ctx);
    await waitOnExecutionContext(ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toHaveLength(1);
    expect((await status(id)).status).toBe("failed");
    await eventually(() => socket.messages.find((m) => m.type === "error" && m.request_id === id));
    await eventually(() => socket.messages.find((m) => m.type === "completed" && m.status === "failed"));
    expect(await notificationsOf(u.userId, id)).toEqual([{ type: "identification_failed", title: "Your identification failed" }]);
    // The job's own progress (through its channel) reaches the socket before the error, and the
    // final `completed` comes last.
    const ofRequest = socket.messages.filter((m) => m.request_id === id).map((m) => m.stage ?? m.type);
    expect(ofRequest.indexOf("processing_start")).toBeGreaterThanOrEqual(0);
    expect(ofRequest.indexOf("plantnet_done")).toBeGreaterThanOrEqual(0);
    expect(ofRequest.indexOf("plantnet_done")).toBeLessThan(ofRequest.indexOf("error"));
    expect(ofRequest.indexOf("processing_start")).toBeLessThan(ofRequest.indexOf("error"));
    expect(ofRequest.at(-1)).toBe("completed");
    socket.ws.close(1000);
  });

  it("dead-lettered jobs end failed and the owner is told", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    await env.DB.prepare("UPDATE identification_requests SET status = 'processing' WHERE id = ?").bind(id).run();
    const socket = await openSocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    const result = await deliver(id, u.userId, 1, "plant-identify-dlq");
    expect(result.explicitAcks).toHaveLength(1);
    expect((await status(id)).status).toBe("failed");
    await eventually(() => socket.messages.find((m) => m.type === "error"));
    expect(await notificationsOf(u.userId, id)).toEqual([{ type: "identification_failed", title: "Your identification failed" }]);
    // Delivered to the dead-letter queue again: still one notification.
    await deliver(id, u.userId, 2, "plant-identify-dlq");
    expect(await notificationsOf(u.userId, id)).toHaveLength(1);
    socket.ws.close(1000);
  });

  it("acks malformed messages and jobs for deleted requests without work", async () => {
    const batch = createMessageBatch("plant-identify", [
      { id: "junk", timestamp: new Date(), attempts: 1, body: { hello: "world" } },
      {
        id: "gone",
        timestamp: new Date(),
        attempts: 1,
        body: { type: "identify", request_id: crypto.randomUUID(), user_id: crypto.randomUUID() },
      },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    await waitOnExecutionContext(ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks.sort()).toEqual(["gone", "junk"]);
    expect(emulators.plantId.calls).toBe(0);
  });
});

describe("unhappy paths around the job", () => {
  it("a queue that refuses the job fails the request (never left pending) and answers 503", async () => {
    const u = await bearerUser();
    const { createApp } = await import("../../src/app");
    const brokenQueue = { send: () => Promise.reject(new Error("queue down")) } as unknown as Queue;
    const form = new FormData();
    form.append("image_1", new File([await photo()], "p.png", { type: "image/png" }));
    const ctx = createExecutionContext();
    const res = await createApp().request(
      "/api/v1/plant-identification/requests/",
      { method: "POST", body: form, headers: { Authorization: `Bearer ${u.access}`, "CF-Connecting-IP": "203.0.113.9" } },
      { ...env, IDENTIFY_QUEUE: brokenQueue },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    await expectError(res, 503, "QUEUE_UNAVAILABLE");
    expect(res.headers.get("Retry-After")).toBeTruthy();
    const rows = await env.DB.prepare("SELECT status FROM identification_requests WHERE user_id = ?")
      .bind(u.userId)
      .all<{ status: string }>();
    expect(rows.results).toEqual([{ status: "failed" }]);
  });

  it("a job whose images vanished from R2 ends failed and tells the owner, without calling providers", async () => {
    const u = await bearerUser();
    const bytes = await photo();
    const id = await pendingIdentification(u.userId, bytes);
    const { sha256Hex } = await import("../../src/lib/hash");
    await env.IMAGES.delete(`images/${await sha256Hex(bytes)}.png`);
    const socket = await openSocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    const result = await deliver(id, u.userId);
    expect(result.explicitAcks).toHaveLength(1);
    expect(await status(id)).toMatchObject({ status: "failed", error_message: expect.stringMatching(/no longer available/) });
    await eventually(() => socket.messages.find((m) => m.type === "completed" && m.status === "failed"));
    expect(emulators.plantId.calls + emulators.plantnet.calls).toBe(0);
    socket.ws.close(1000);
  });

  it("Trefle and OpenAI being down never fail a job: enrichment is skipped, care falls back to rules", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    // Earlier jobs in this file may have enriched whichever species the photo turns out to be:
    // care data in D1 (the job would skip Trefle "already has care data"), Trefle's answer in the
    // KV cache (the job would not call Trefle at all) and an AI care guide (served as "openai"
    // without calling OpenAI). Forget all three so the outage is what the job meets.
    await env.DB.batch([
      env.DB.prepare("UPDATE species SET light_requirements = NULL, water_requirements = NULL"),
      env.DB.prepare("DELETE FROM care_guides"),
    ]);
    const trefleCache = await env.CACHE.list({ prefix: "trefle:" });
    await Promise.all(trefleCache.keys.map((k) => env.CACHE.delete(k.name)));
    emulators.trefle.setMode({ failure: "500" });
    emulators.openai.setMode({ failure: "500" });
    const socket = await openSocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    const result = await deliver(id, u.userId);
    expect(result.explicitAcks).toHaveLength(1);
    expect(["identified", "needs_help"]).toContain((await status(id)).status);
    const skipped = await eventually(() => socket.messages.find((m) => m.stage === "enrich_skipped"));
    expect(skipped.data).toMatchObject({ reason: "Trefle unavailable" });
    await eventually(() => socket.messages.find((m) => m.type === "completed"));
    expect(socket.messages.find((m) => m.stage === "care_done")?.data).not.toMatchObject({ source: "openai" });
    socket.ws.close(1000);
  });
});

describe("request management", () => {
  it("lists, reads, retries, votes, accepts, adds to a collection and deletes — and hides other users' requests", async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    const bytes = await photo();
    const id = await pendingIdentification(u.userId, bytes);
    await deliver(id, u.userId);

    const list = (await (await call("/api/v1/plant-identification/requests/?page_size=1", { bearer: u.access })).json()) as {
      count: number;
      results: { request_id: string }[];
    };
    expect(list.count).toBe(1);
    expect(list.results[0]!.request_id).toBe(id);
    await expectError(await call(`/api/v1/plant-identification/requests/${id}/`, { bearer: other.access }), 404, "NOT_FOUND");
    await expectError(await call(`/api/v1/plant-identification/requests/${id}/results/`, { bearer: other.access }), 404, "NOT_FOUND");
    await expectError(await call(`/api/v1/plant-identification/requests/not-a-uuid/`, { bearer: u.access }), 400, "VALIDATION_ERROR");

    const results = (await (await call(`/api/v1/plant-identification/requests/${id}/results/`, { bearer: u.access })).json()) as {
      results: { id: string }[];
    };
    const resultId = results.results[0]!.id;

    // Votes: toggle and switch; strangers cannot vote on private requests.
    const vote = (bearer: string, vote_type: string) =>
      call(`/api/v1/plant-identification/results/${resultId}/vote/`, { bearer, json: { vote_type } });
    expect(await (await vote(u.access, "upvote")).json()).toMatchObject({ vote: "upvote", upvotes: 1, downvotes: 0 });
    expect(await (await vote(u.access, "downvote")).json()).toMatchObject({ vote: "downvote", upvotes: 0, downvotes: 1 });
    expect(await (await vote(u.access, "downvote")).json()).toMatchObject({ vote: null, upvotes: 0, downvotes: 0 });
    await expectError(await vote(u.access, "sideways"), 400, "VALIDATION_ERROR");
    await expectError(await vote(other.access, "upvote"), 404, "NOT_FOUND");
    await env.DB.prepare("UPDATE identification_requests SET is_shared_with_community = 1 WHERE id = ?").bind(id).run();
    expect(await (await vote(other.access, "upvote")).json()).toMatchObject({ vote: "upvote", upvotes: 1 });

    // Accept → identified; accepted results cannot be voted on.
    const accepted = await call(`/api/v1/plant-identification/results/${resultId}/accept/`, { method: "POST", bearer: u.access });
    expect(await accepted.json()).toMatchObject({ is_accepted: true, is_primary: true });
    expect((await status(id)).status).toBe("identified");
    await expectError(await vote(u.access, "upvote"), 400, "VALIDATION_ERROR");
    await expectError(
      await call(`/api/v1/plant-identification/results/${resultId}/accept/`, { method: "POST", bearer: other.access }),
      404,
      "NOT_FOUND",
    );

    // Add to collection: default collection, idempotent.
    const add = () =>
      call(`/api/v1/plant-identification/results/${resultId}/add_to_collection/`, {
        method: "POST",
        bearer: u.access,
        json: { nickname: "Fernando" },
      });
    const firstAdd = await add();
    expect(firstAdd.status).toBe(201);
    const again = await add();
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(((await firstAdd.json()) as { id: string }).id);

    // Retry only from failed / needs_help.
    await expectError(
      await call(`/api/v1/plant-identification/requests/${id}/retry/`, { method: "POST", bearer: u.access }),
      409,
      "INVALID_STATE",
    );
    await env.DB.prepare("UPDATE identification_requests SET status = 'failed' WHERE id = ?").bind(id).run();
    const retried = await call(`/api/v1/plant-identification/requests/${id}/retry/`, { method: "POST", bearer: u.access });
    expect(retried.status).toBe(202);

    // Delete: gone, and its image too (no other request uses it).
    const { sha256Hex } = await import("../../src/lib/hash");
    const key = `images/${await sha256Hex(bytes)}.png`;
    await expectError(
      await call(`/api/v1/plant-identification/requests/${id}/`, { method: "DELETE", bearer: other.access }),
      404,
      "NOT_FOUND",
    );
    expect((await call(`/api/v1/plant-identification/requests/${id}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    expect(await env.IMAGES.head(key)).toBeNull();
    await expectError(await call(`/api/v1/plant-identification/requests/${id}/`, { bearer: u.access }), 404, "NOT_FOUND");
  });

  it("tags a run's messages with it: retry/'s queued and every message of the job it queued carry the new run", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    await env.DB.prepare("UPDATE identification_requests SET status = 'failed', run = 2 WHERE id = ?").bind(id).run();
    const socket = await openSocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    await eventually(() => socket.messages.find((m) => m.type === "init"));
    const retried = await call(`/api/v1/plant-identification/requests/${id}/retry/`, { method: "POST", bearer: u.access });
    expect(retried.status).toBe(202);
    // The queue delivers the job (a real round trip).
    await eventually(() => socket.messages.filter((m) => m.type === "completed").length >= 2, 30_000);
    // On connect the socket was replayed the failed run's end (from D1); the new run follows.
    const ofRun = socket.messages.slice(socket.messages.findIndex((m) => m.stage === "queued"));
    expect(ofRun[0]).toMatchObject({ stage: "queued", run: 3 });
    expect(ofRun.map((m) => m.stage ?? m.type)).toContain("care_done");
    expect(ofRun.every((m) => m.run === 3)).toBe(true);
    socket.ws.close(1000);
  }, 60_000);

  it("retry/ also takes a request whose job was lost (lease expired past the margin), never a live one", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    const retry = () => call(`/api/v1/plant-identification/requests/${id}/retry/`, { method: "POST", bearer: u.access });
    const set = (sql: string, ...binds: unknown[]) =>
      env.DB.prepare(`UPDATE identification_requests SET ${sql} WHERE id = ?`)
        .bind(...binds, id)
        .run();
    const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
    // Just queued, or claimed with a live lease: its message is alive, so 409.
    await expectError(await retry(), 409, "INVALID_STATE");
    await set("status = 'processing', lease_expires_at = ?, updated_at = ?", new Date(Date.now() + 240_000).toISOString(), ago(60_000));
    await expectError(await retry(), 409, "INVALID_STATE");
    // Claimed, but its lease ran out 11 minutes ago (the consumer died): retry is accepted.
    await set("status = 'processing', lease_expires_at = ?, updated_at = ?, requeue_count = 2", ago(11 * 60_000), ago(16 * 60_000));
    const res = await retry();
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ status: "pending" });
    const row = await env.DB.prepare("SELECT status, requeue_count, lease_expires_at FROM identification_requests WHERE id = ?")
      .bind(id)
      .first<{
        status: string;
        requeue_count: number;
        lease_expires_at: string;
      }>();
    // A fresh start: the sweep's count begins again and the new message's deadline is now.
    expect(row).toMatchObject({ requeue_count: 0 });
    expect(Date.parse(row!.lease_expires_at)).toBeGreaterThan(Date.now() - 60_000);
    // The retry sent a real job: it completes (its last word, after care, is `completed` on the hub).
    const { runInDurableObject } = await import("cloudflare:test");
    const hub = env.USER_HUB.get(env.USER_HUB.idFromName(u.userId));
    await eventually(
      () =>
        runInDurableObject(
          hub,
          async (instance: import("../../durable-objects/user-hub").UserHub) => instance.lastState(id)?.type === "completed",
        ),
      30_000,
    );
    expect(["identified", "needs_help"]).toContain((await status(id)).status);
    // A pending request whose message became deliverable 20 minutes ago and never ran: accepted too.
    const lost = await pendingIdentification(u.userId);
    await env.DB.prepare("UPDATE identification_requests SET updated_at = ? WHERE id = ?")
      .bind(ago(20 * 60_000), lost)
      .run();
    const { createApp } = await import("../../src/app");
    const jobs: unknown[] = [];
    const ctx = createExecutionContext();
    const res2 = await createApp().request(
      `/api/v1/plant-identification/requests/${lost}/retry/`,
      { method: "POST", headers: { Authorization: `Bearer ${u.access}`, "CF-Connecting-IP": "203.0.113.77" } },
      { ...env, IDENTIFY_QUEUE: { send: async (body: unknown) => void jobs.push(body) } as unknown as Queue },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res2.status).toBe(202);
    expect(jobs).toEqual([{ type: "identify", request_id: lost, user_id: u.userId, run: 1 }]);
  }, 60_000);

  it("keeps an image another request still uses", async () => {
    const u = await bearerUser();
    const bytes = await photo();
    const a = await pendingIdentification(u.userId, bytes);
    await pendingIdentification(u.userId, bytes);
    const { sha256Hex } = await import("../../src/lib/hash");
    expect((await call(`/api/v1/plant-identification/requests/${a}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    expect(await env.IMAGES.head(`images/${await sha256Hex(bytes)}.png`)).not.toBeNull();
  });
});
