/**
 * Disease requests (API.md §4) end to end through the Worker: upload → 202 → the queue message
 * the route sent, delivered to the Worker's queue handler → live progress on the WebSocket →
 * ranked results with treatments; owner-only reads; every bad upload; Plant.id failures,
 * duplicate delivery, dead letters; confirmation and the disease database.
 *
 * Photos are pinned (fixed seeds), and expectations come from a separate emulator instance fed
 * the same bytes, so no test depends on which disease a photo happens to map to.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createPlantIdEmulator } from "../../emulators/plant-id";
import { createApp } from "../../src/app";
import { sha256Hex } from "../../src/lib/hash";
import { bytesToBase64 } from "../../src/lib/images";
import { PLANT_ID_HEALTH_DETAILS } from "../../src/providers/plant-id";
import { makePng, padToSize } from "../helpers/images";
import { BASE, call, expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { deliverBatch } from "../helpers/queue";
import { eventually } from "../helpers/wait";
import { bearerUser } from "../helpers/users";
import { openReadySocket } from "../helpers/ws";

const emulators = useEmulators();
const DISEASES = "/api/v1/plant-identification/disease-requests";
const DATABASE = "/api/v1/plant-identification/disease-database";
const SYMPTOMS = "Yellow leaves with brown spots spreading from the lower leaves.";

/** Deterministic photos: the same name always gives the same bytes. */
const photo = (name: string) => makePng(320, 240, { seed: `disease-${name}` });

type Job = { type: string; request_id: string; user_id: string };

/**
 * Submits through the Worker's app with a queue that records what the route sends, so the test
 * delivers the job itself (no background job racing the assertions).
 */
async function submit(
  bearer: string,
  files: Uint8Array[],
  fields: Record<string, string> = { symptoms_description: SYMPTOMS },
  envOverrides: Partial<Env> = {},
) {
  const jobs: Job[] = [];
  const queue = { send: async (body: Job) => void jobs.push(body) } as unknown as Queue;
  const form = new FormData();
  files.forEach((bytes, i) => form.append(`image_${i + 1}`, new File([bytes], `p${i}.png`, { type: "image/png" })));
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const ctx = createExecutionContext();
  const res = await createApp().request(
    `${DISEASES}/`,
    {
      method: "POST",
      body: form,
      headers: { Authorization: `Bearer ${bearer}`, "CF-Connecting-IP": `203.0.113.${(Math.random() * 250) | 0}` },
    },
    { ...env, IDENTIFY_QUEUE: queue, ...envOverrides },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return { res, jobs };
}

/** A diagnosis row straight in D1 (photo in R2), for consumer tests. */
async function pendingDisease(userId: string, bytes: Uint8Array, status = "pending") {
  const sha = await sha256Hex(bytes);
  await env.IMAGES.put(`images/${sha}.png`, bytes);
  const id = crypto.randomUUID();
  await env.DB.prepare("INSERT INTO disease_requests (id, user_id, status, image_hashes, symptoms_description) VALUES (?, ?, ?, ?, ?)")
    .bind(id, userId, status, JSON.stringify([`${sha}.png`]), SYMPTOMS)
    .run();
  return id;
}

/** Delivers `body` (`times` copies in one batch) with the real bindings and `opts.env`; retries carry their delay. */
const deliver = (body: unknown, opts: { attempts?: number; queue?: string; times?: number; env?: Partial<Env> } = {}) =>
  deliverBatch(opts.queue ?? "plant-identify", Array(opts.times ?? 1).fill(body), { ...env, ...opts.env }, opts.attempts);

const diagnose = (requestId: string, userId: string) => ({ type: "diagnose", request_id: requestId, user_id: userId });

async function row(id: string) {
  return (await env.DB.prepare("SELECT status, attempts, error_message FROM disease_requests WHERE id = ?").bind(id).first<{
    status: string;
    attempts: number;
    error_message: string | null;
  }>())!;
}

interface ExpectedDisease {
  name: string;
  probability: number;
  treatment: { biological?: string[]; chemical?: string[]; prevention?: string[] };
}

/** What Plant.id says about these bytes, from a fresh emulator instance (leaves the test's counters alone). */
async function plantIdSays(bytes: Uint8Array) {
  const res = await createPlantIdEmulator().handle(
    new Request(`https://plant-id.emulator.test/v3/health_assessment?details=${PLANT_ID_HEALTH_DETAILS.join(",")}&language=en`, {
      method: "POST",
      headers: { "Api-Key": "emulator-key", "Content-Type": "application/json" },
      body: JSON.stringify({ images: [bytesToBase64(bytes)] }),
    }),
  );
  const body = (await res.json()) as {
    result: {
      is_plant: { binary: boolean };
      is_healthy: { binary: boolean; probability: number };
      disease: {
        suggestions: { name: string; probability: number; details: { local_name: string; treatment: ExpectedDisease["treatment"] } }[];
      };
    };
  };
  const diseases: ExpectedDisease[] = body.result.disease.suggestions
    .map((s) => ({ name: s.details.local_name ?? s.name, probability: s.probability, treatment: s.details.treatment }))
    .sort((a, b) => b.probability - a.probability);
  const status = body.result.is_healthy.binary || (diseases[0]?.probability ?? 0) >= 0.5 ? "identified" : "needs_help";
  return { diseases, isHealthy: body.result.is_healthy.binary, status };
}

interface ResultBody {
  id: string;
  name: string;
  probability: number;
  rank: number;
  treatment: { biological: string[]; chemical: string[]; prevention: string[] };
  disease_type: string;
  description: string;
  is_confirmed: boolean;
}

async function results(id: string, bearer: string) {
  const res = await call(`${DISEASES}/${id}/results/`, { bearer });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    request_id: string;
    status: string;
    is_healthy: boolean | null;
    is_plant: boolean | null;
    results: ResultBody[];
  };
}

describe("disease requests: upload → queue → live progress → ranked results with treatments", () => {
  it("runs the whole flow and reports every stage on the user's socket", async () => {
    const u = await bearerUser();
    const bytes = await photo("e2e");
    const socket = await openReadySocket("/ws/", { bearer: u.access });

    const { res, jobs } = await submit(u.access, [bytes], {
      symptoms_description: `   ${SYMPTOMS}   `,
      plant_condition: "Moderate",
      location: "Kitchen window",
    });
    expect(res.status).toBe(202);
    const body = (await res.json()) as {
      request_id: string;
      status: string;
      ws_url: string;
      symptoms_description: string;
      plant_condition: string;
      location: string;
      images: { url: string }[];
    };
    expect(body).toMatchObject({
      status: "pending",
      symptoms_description: SYMPTOMS,
      plant_condition: "moderate",
      location: "Kitchen window",
    });
    expect(body.ws_url).toBe(`/ws/plant-identification/requests/${body.request_id}/`);
    // The photo is stored content-addressed in R2, where the media route serves it.
    expect(body.images[0]!.url).toBe(`/api/v1/media/images/${await sha256Hex(bytes)}.png`);
    expect(await env.IMAGES.head(`images/${await sha256Hex(bytes)}.png`)).not.toBeNull();
    // One job of the diagnosis kind on the shared queue.
    expect(jobs).toEqual([{ type: "diagnose", request_id: body.request_id, user_id: u.userId, run: 0 }]);

    const delivered = await deliver(jobs[0]);
    expect(delivered.explicitAcks).toHaveLength(1);

    const expected = await plantIdSays(bytes);
    const completed = await eventually(() => socket.messages.find((m) => m.type === "completed" && m.request_id === body.request_id));
    const stages = socket.messages.filter((m) => m.type === "progress" && m.request_id === body.request_id).map((m) => m.stage);
    expect(stages).toEqual(["queued", "processing_start", "health_start", "health_done"]);
    expect(socket.messages.find((m) => m.stage === "health_done")!.data).toMatchObject({
      ok: true,
      cached: false,
      suggestions: expected.diseases.length,
    });
    expect(completed).toEqual({
      type: "completed",
      request_id: body.request_id,
      status: expected.status,
      results_count: expected.diseases.length,
      run: 0, // a diagnosis is never retried: always its first run
    });

    // Exactly one upstream call, to /health_assessment with the disease details.
    expect(emulators.plantId.requests.map((r) => r.path)).toEqual(["/v3/health_assessment"]);
    expect(new URLSearchParams(emulators.plantId.requests[0]!.search).get("details")).toBe(PLANT_ID_HEALTH_DETAILS.join(","));

    const r = await results(body.request_id, u.access);
    expect(r).toMatchObject({ request_id: body.request_id, status: expected.status, is_plant: true, is_healthy: expected.isHealthy });
    expect(r.results.map((x) => x.name)).toEqual(expected.diseases.map((d) => d.name));
    expect(r.results.map((x) => x.probability)).toEqual(expected.diseases.map((d) => d.probability));
    expect(r.results.map((x) => x.rank)).toEqual(expected.diseases.map((_, i) => i + 1));
    r.results.forEach((x, i) => {
      const t = expected.diseases[i]!.treatment;
      expect(x.treatment).toEqual({ biological: t.biological ?? [], chemical: t.chemical ?? [], prevention: t.prevention ?? [] });
      expect(x.treatment.prevention.length).toBeGreaterThan(0);
      expect(x.description).not.toBe("");
      expect(x.is_confirmed).toBe(false);
    });

    const read = (await (await call(`${DISEASES}/${body.request_id}/`, { bearer: u.access })).json()) as {
      status: string;
      attempts: number;
      processed_at: string | null;
    };
    expect(read).toMatchObject({ status: expected.status, attempts: 1 });
    expect(read.processed_at).not.toBeNull();
    const list = (await (await call(`${DISEASES}/`, { bearer: u.access })).json()) as { count: number; results: { request_id: string }[] };
    expect(list).toMatchObject({ count: 1, results: [{ request_id: body.request_id }] });

    // The per-request socket serves disease requests too: a late subscriber gets init then completed.
    const late = await openReadySocket(body.ws_url, { bearer: u.access });
    await eventually(() => late.messages.find((m) => m.type === "completed"));
    expect(late.messages[0]).toMatchObject({ type: "init", request_id: body.request_id });
    expect(late.messages[1]).toMatchObject({ type: "completed", request_id: body.request_id, status: expected.status });
    socket.ws.close(1000);
    late.ws.close(1000);
  });

  it("caches the assessment under its own key: the same photo again costs no upstream call, identification still asks", async () => {
    const u = await bearerUser();
    const bytes = await photo("cache");
    const first = await pendingDisease(u.userId, bytes);
    await deliver(diagnose(first, u.userId));
    expect(emulators.plantId.calls).toBe(1);
    const keys = (await env.CACHE.list({ prefix: "plant_id:v3:health_assessment:" })).keys.map((k) => k.name);
    const digest = await sha256Hex(bytes);
    expect(keys.some((k) => k.includes(digest))).toBe(true);

    const socket = await openReadySocket("/ws/", { bearer: u.access });
    const second = await pendingDisease(u.userId, bytes);
    await deliver(diagnose(second, u.userId));
    expect(emulators.plantId.calls).toBe(1);
    const done = await eventually(() => socket.messages.find((m) => m.stage === "health_done" && m.request_id === second));
    expect(done.data).toMatchObject({ ok: true, cached: true });
    expect((await results(second, u.access)).results.map((x) => x.name)).toEqual(
      (await results(first, u.access)).results.map((x) => x.name),
    );

    // An identification of the same bytes is a different question: it reaches /identification.
    const form = new FormData();
    form.append("image", new File([bytes], "p.png", { type: "image/png" }));
    const identified = await call("/api/v1/plant-identification/identify/", { method: "POST", body: form, bearer: u.access });
    expect(identified.status).toBe(200);
    expect(emulators.plantId.requests.map((r) => r.path)).toEqual(["/v3/health_assessment", "/v3/identification"]);
    socket.ws.close(1000);
  });

  it("stores no suggestions for a photo that is not a plant, and asks for help", async () => {
    const u = await bearerUser();
    const id = await pendingDisease(u.userId, await makePng(320, 240, { seed: "disease-not-a-plant", text: "NOTAPLANT" }));
    await deliver(diagnose(id, u.userId));
    const r = await results(id, u.access);
    expect(r).toMatchObject({ status: "needs_help", is_plant: false, results: [] });
  });
});

describe("owner-only reads", () => {
  it("another user gets 404, anonymous callers 401, junk ids 400", async () => {
    const owner = await bearerUser();
    const other = await bearerUser();
    const id = await pendingDisease(owner.userId, await photo("owner"));
    await deliver(diagnose(id, owner.userId));
    const resultId = (await results(id, owner.access)).results[0]!.id;

    await expectError(await call(`${DISEASES}/${id}/`, { bearer: other.access }), 404, "NOT_FOUND");
    await expectError(await call(`${DISEASES}/${id}/results/`, { bearer: other.access }), 404, "NOT_FOUND");
    await expectError(await call(`${DISEASES}/${id}/confirm/`, { bearer: other.access, json: { result_id: resultId } }), 404, "NOT_FOUND");
    expect(((await (await call(`${DISEASES}/`, { bearer: other.access })).json()) as { count: number }).count).toBe(0);
    for (const path of [`${DISEASES}/${id}/`, `${DISEASES}/${id}/results/`, `${DISEASES}/`]) {
      const res = await call(path);
      await expectError(res, 401, "AUTHENTICATION_REQUIRED");
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    }
    await expectError(await call(`${DISEASES}/not-a-uuid/`, { bearer: owner.access }), 400, "VALIDATION_ERROR");
    await expectError(await call(`${DISEASES}/${crypto.randomUUID()}/results/`, { bearer: owner.access }), 404, "NOT_FOUND");

    // Their sockets: the stranger is refused as for an unknown request (4404), like for identification requests.
    const res = await exports.default.fetch(
      new Request(`${BASE}/ws/plant-identification/requests/${id}/`, {
        headers: { Upgrade: "websocket", Authorization: `Bearer ${other.access}` },
      }),
    );
    const ws = res.webSocket!;
    const closed = new Promise<number>((resolve) => ws.addEventListener("close", (e) => resolve(e.code)));
    ws.accept();
    expect(await closed).toBe(4404);
  });
});

describe("bad uploads", () => {
  it("rejects every bad upload with field errors and writes nothing to D1 or R2", async () => {
    const u = await bearerUser();
    const good = await photo("bad-uploads");
    const goodKey = `images/${await sha256Hex(good)}.png`;
    const count = async () => (await env.DB.prepare("SELECT count(*) AS n FROM disease_requests").first<{ n: number }>())!.n;
    const before = await count();
    const text = new TextEncoder().encode("not an image at all, really");
    const withSymptoms = (extra: Record<string, string>) => ({ symptoms_description: SYMPTOMS, ...extra });
    const cases: [Uint8Array[], Record<string, string>, number, string, string][] = [
      [[], withSymptoms({}), 400, "VALIDATION_ERROR", "image_1"],
      [[good, text], withSymptoms({}), 400, "VALIDATION_ERROR", "image_2"],
      [[good], {}, 400, "VALIDATION_ERROR", "symptoms_description"],
      [[good], { symptoms_description: "   short    " }, 400, "VALIDATION_ERROR", "symptoms_description"],
      [[good], { symptoms_description: "x".repeat(2001) }, 400, "VALIDATION_ERROR", "symptoms_description"],
      [[good], withSymptoms({ plant_condition: "on fire" }), 400, "VALIDATION_ERROR", "plant_condition"],
      [[good], withSymptoms({ location: "y".repeat(201) }), 400, "VALIDATION_ERROR", "location"],
      // A misspelt plant_condition: refused, not a diagnosis without it.
      [[good], withSymptoms({ condition: "dying" }), 400, "VALIDATION_ERROR", "non_field_errors"],
      [[await makePng(100, 100, { seed: "tiny" })], withSymptoms({}), 400, "VALIDATION_ERROR", "image_1"],
      [[good, padToSize(await photo("huge"), 10 * 1024 * 1024 + 100)], withSymptoms({}), 413, "FILE_TOO_LARGE", "image_2"],
    ];
    for (const [files, fields, status, code, field] of cases) {
      const { res, jobs } = await submit(u.access, files, fields);
      const body = await expectError(res, status, code);
      expect(Object.keys(body.errors ?? {}), field).toContain(field);
      expect(jobs).toEqual([]);
    }
    // A declared type that contradicts the bytes.
    const form = new FormData();
    form.append("image_1", new File([good], "p.jpg", { type: "image/jpeg" }));
    form.append("symptoms_description", SYMPTOMS);
    await expectError(await call(`${DISEASES}/`, { method: "POST", body: form, bearer: u.access }), 400, "VALIDATION_ERROR");
    // Not multipart at all.
    await expectError(await call(`${DISEASES}/`, { bearer: u.access, json: { symptoms_description: SYMPTOMS } }), 400, "VALIDATION_ERROR");
    // Anonymous.
    await expectError(await call(`${DISEASES}/`, { method: "POST", body: new FormData() }), 401, "AUTHENTICATION_REQUIRED");

    expect(await count()).toBe(before);
    expect(await env.IMAGES.head(goodKey)).toBeNull();
  });

  it("shares the identification rate limit, and a refused queue fails the request with 503", async () => {
    const u = await bearerUser();
    const limited = { IDENTIFY_RATE_LIMIT: "1/3600" } as Partial<Env>;
    expect((await submit(u.access, [await photo("limit")], undefined, limited)).res.status).toBe(202);
    // The next identification request by the same user is over the shared budget.
    const form = new FormData();
    form.append("image_1", new File([await photo("limit-2")], "p.png", { type: "image/png" }));
    const ctx = createExecutionContext();
    const identification = await createApp().request(
      "/api/v1/plant-identification/requests/",
      { method: "POST", body: form, headers: { Authorization: `Bearer ${u.access}` } },
      { ...env, ...limited },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    await expectError(identification, 429, "RATE_LIMITED");
    expect(Number(identification.headers.get("Retry-After"))).toBeGreaterThan(0);

    const v = await bearerUser();
    const broken = { IDENTIFY_QUEUE: { send: () => Promise.reject(new Error("queue down")) } as unknown as Queue };
    const { res } = await submit(v.access, [await photo("queue-down")], undefined, broken);
    await expectError(res, 503, "QUEUE_UNAVAILABLE");
    expect(res.headers.get("Retry-After")).toBeTruthy();
    const rows = await env.DB.prepare("SELECT status FROM disease_requests WHERE user_id = ?").bind(v.userId).all<{ status: string }>();
    expect(rows.results).toEqual([{ status: "failed" }]);
  });
});

describe("the diagnosis job when Plant.id misbehaves", () => {
  it("retries with backoff on 500, back to pending, then fails on the last attempt and tells the owner", async () => {
    const u = await bearerUser();
    const id = await pendingDisease(u.userId, await photo("down"));
    const socket = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    emulators.plantId.setMode({ failure: "500" });

    const first = await deliver(diagnose(id, u.userId));
    expect(first.retryMessages).toHaveLength(1);
    expect(first.retryMessages[0]!.delaySeconds).toBeGreaterThanOrEqual(2);
    expect(first.retryMessages[0]!.delaySeconds).toBeLessThanOrEqual(8);
    expect(await row(id)).toMatchObject({ status: "pending", attempts: 1, error_message: expect.stringMatching(/retrying/) });
    await eventually(() => socket.messages.find((m) => m.stage === "retry_scheduled"));
    expect(socket.messages.find((m) => m.stage === "health_done")!.data).toMatchObject({ ok: false, error: "server" });

    const last = await deliver(diagnose(id, u.userId), { attempts: 5 });
    expect(last.explicitAcks).toHaveLength(1);
    expect(last.retryMessages).toHaveLength(0);
    expect(await row(id)).toMatchObject({ status: "failed", error_message: expect.stringMatching(/unavailable/) });
    await eventually(() => socket.messages.find((m) => m.type === "error" && m.request_id === id));
    await eventually(() => socket.messages.find((m) => m.type === "completed" && m.status === "failed" && m.results_count === 0));
    expect(emulators.plantId.calls).toBe(2);
    socket.ws.close(1000);
  });

  it("honours Retry-After on 429 (capped at 300 s) and says so on the socket", async () => {
    const u = await bearerUser();
    const socket = await openReadySocket("/ws/", { bearer: u.access });
    const id = await pendingDisease(u.userId, await photo("429"));
    emulators.plantId.setMode({ failure: "429", retryAfterSeconds: 42 });
    expect((await deliver(diagnose(id, u.userId))).retryMessages[0]!.delaySeconds).toBe(42);
    const limited = await eventually(() => socket.messages.find((m) => m.stage === "rate_limited" && m.request_id === id));
    expect(limited.data).toEqual({ retry_after: 42 });
    expect(await row(id)).toMatchObject({ status: "pending" });

    const id2 = await pendingDisease(u.userId, await photo("429-long"));
    emulators.plantId.setMode({ failure: "429", retryAfterSeconds: 4000 });
    expect((await deliver(diagnose(id2, u.userId))).retryMessages[0]!.delaySeconds).toBe(300);
    socket.ws.close(1000);
  });

  it("retries a malformed answer and succeeds on the next attempt", async () => {
    const u = await bearerUser();
    const bytes = await photo("malformed");
    const id = await pendingDisease(u.userId, bytes);
    emulators.plantId.setMode({ failure: "malformed", times: 1 });
    const first = await deliver(diagnose(id, u.userId));
    expect(first.retryMessages).toHaveLength(1);
    expect(await row(id)).toMatchObject({ status: "pending" });
    const second = await deliver(diagnose(id, u.userId), { attempts: 2 });
    expect(second.explicitAcks).toHaveLength(1);
    const expected = await plantIdSays(bytes);
    expect(await row(id)).toMatchObject({ status: expected.status, attempts: 2 });
    expect((await results(id, u.access)).results.map((r) => r.name)).toEqual(expected.diseases.map((d) => d.name));
  });

  it("fails at once when Plant.id refuses our key (retrying cannot help)", async () => {
    const u = await bearerUser();
    const id = await pendingDisease(u.userId, await photo("bad-key"));
    const result = await deliver(diagnose(id, u.userId), { env: { PLANT_ID_API_KEY: "not-the-key" } as Partial<Env> });
    expect(result.explicitAcks).toHaveLength(1);
    expect(await row(id)).toMatchObject({ status: "failed", error_message: expect.stringMatching(/misconfigured/) });
  });

  it("fails without calling Plant.id when the photos are gone from R2", async () => {
    const u = await bearerUser();
    const bytes = await photo("vanished");
    const id = await pendingDisease(u.userId, bytes);
    await env.IMAGES.delete(`images/${await sha256Hex(bytes)}.png`);
    await deliver(diagnose(id, u.userId));
    expect(await row(id)).toMatchObject({ status: "failed", error_message: expect.stringMatching(/no longer available/) });
    expect(emulators.plantId.calls).toBe(0);
  });
});

describe("queue delivery", () => {
  it("is idempotent: the same job twice in a batch and again later writes each result once", async () => {
    const u = await bearerUser();
    const bytes = await photo("duplicate");
    const id = await pendingDisease(u.userId, bytes);
    const first = await deliver(diagnose(id, u.userId), { times: 2 });
    expect(first.explicitAcks).toHaveLength(2);
    const again = await deliver(diagnose(id, u.userId));
    expect(again.explicitAcks).toHaveLength(1);
    const expected = await plantIdSays(bytes);
    const rows = await env.DB.prepare("SELECT lower(name) AS name FROM disease_results WHERE request_id = ?")
      .bind(id)
      .all<{ name: string }>();
    expect(rows.results.map((r) => r.name).sort()).toEqual(expected.diseases.map((d) => d.name.toLowerCase()).sort());
    expect(await row(id)).toMatchObject({ status: expected.status });
    // Single flight: one upstream call for the two concurrent copies, none for the late one.
    expect(emulators.plantId.calls).toBe(1);
  });

  it("dead-lettered diagnoses end failed and the owner is told once; finished ones are left alone", async () => {
    const u = await bearerUser();
    const id = await pendingDisease(u.userId, await photo("dlq"), "processing");
    const socket = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    const result = await deliver(diagnose(id, u.userId), { queue: "plant-identify-dlq" });
    expect(result.explicitAcks).toHaveLength(1);
    expect(await row(id)).toMatchObject({ status: "failed", error_message: expect.stringMatching(/several attempts/) });
    await eventually(() => socket.messages.find((m) => m.type === "completed" && m.status === "failed"));
    expect(socket.messages.filter((m) => m.type === "error")).toHaveLength(1);
    const told = async () =>
      (
        await env.DB.prepare("SELECT title, body, data FROM notifications WHERE json_extract(data, '$.request_id') = ?")
          .bind(id)
          .all<{ title: string; body: string; data: string }>()
      ).results.map((n) => ({ ...n, data: JSON.parse(n.data) as unknown }));
    const notice = {
      title: "Your plant health check failed",
      body: expect.stringMatching(/several attempts/),
      data: { request_id: id, kind: "diagnosis", message: expect.stringMatching(/several attempts/) },
    };
    expect(await told()).toEqual([notice]);
    // Dead-lettered again: it is final, so nobody is told twice.
    await deliver(diagnose(id, u.userId), { queue: "plant-identify-dlq" });
    expect(await told()).toEqual([notice]);
    expect(socket.messages.filter((m) => m.type === "error")).toHaveLength(1);

    const done = await pendingDisease(u.userId, await photo("dlq-done"), "identified");
    await deliver(diagnose(done, u.userId), { queue: "plant-identify-dlq" });
    expect(await row(done)).toMatchObject({ status: "identified" });
    socket.ws.close(1000);
  });

  it("still runs identification messages that predate job kinds (no type)", async () => {
    const u = await bearerUser();
    const bytes = await photo("legacy");
    const sha = await sha256Hex(bytes);
    await env.IMAGES.put(`images/${sha}.png`, bytes);
    const id = crypto.randomUUID();
    await env.DB.prepare(
      "INSERT INTO identification_requests (id, user_id, status, image_hashes, organs) VALUES (?, ?, 'pending', ?, '[\"auto\"]')",
    )
      .bind(id, u.userId, JSON.stringify([`${sha}.png`]))
      .run();
    const result = await deliver({ request_id: id, user_id: u.userId });
    expect(result.explicitAcks).toHaveLength(1);
    const status = await env.DB.prepare("SELECT status FROM identification_requests WHERE id = ?").bind(id).first<{ status: string }>();
    expect(["identified", "needs_help"]).toContain(status!.status);
    expect(emulators.plantId.requests.map((r) => r.path)).toEqual(["/v3/identification"]);
  });
});

describe("confirmation and the disease database", () => {
  it("lists only confirmed diseases, with treatments, grouped by name, searchable and filterable by type", async () => {
    const owner = await bearerUser();
    const other = await bearerUser();
    const database = async (query = "") =>
      (await (await call(`${DATABASE}/${query}`)).json()) as {
        count: number;
        results: {
          name: string;
          disease_type: string;
          treatment: ResultBody["treatment"];
          confirmed_diagnoses: number;
          last_confirmed_at: string;
          description: string;
          common_names: string[];
        }[];
      };
    // Two diagnoses of the same photo (same suggestions) and one of another photo.
    const bytes = await photo("database");
    const a = await pendingDisease(owner.userId, bytes);
    const b = await pendingDisease(owner.userId, bytes);
    const c = await pendingDisease(owner.userId, await photo("database-other"));
    for (const id of [a, b, c]) await deliver(diagnose(id, owner.userId));
    const [ra, rb, rc] = [
      (await results(a, owner.access)).results,
      (await results(b, owner.access)).results,
      (await results(c, owner.access)).results,
    ];
    expect(ra.length).toBeGreaterThanOrEqual(2);

    // Nothing confirmed: nothing listed (diagnoses alone do not count).
    expect(await database()).toMatchObject({ count: 0, results: [] });

    const confirm = (requestId: string, resultId: string, bearer = owner.access) =>
      call(`${DISEASES}/${requestId}/confirm/`, { bearer, json: { result_id: resultId } });
    const x = ra[1]!; // deliberately not the top suggestion
    const confirmed = await confirm(a, x.id);
    expect(confirmed.status).toBe(200);
    expect(await confirmed.json()).toMatchObject({ id: x.id, is_confirmed: true });
    expect(await row(a)).toMatchObject({ status: "identified" });

    let listed = await database();
    expect(listed.count).toBe(1);
    expect(listed.results[0]).toMatchObject({
      name: x.name,
      disease_type: x.disease_type,
      treatment: x.treatment,
      description: x.description,
      confirmed_diagnoses: 1,
    });
    // The day of the confirmation, not its moment: the diagnosis behind it is private.
    const confirmedRow = await env.DB.prepare("SELECT confirmed_at FROM disease_results WHERE id = ?")
      .bind(x.id)
      .first<{ confirmed_at: string }>();
    expect(confirmedRow!.confirmed_at).not.toMatch(/T00:00:00\.000Z$/);
    expect(listed.results[0]!.last_confirmed_at).toBe(`${confirmedRow!.confirmed_at.slice(0, 10)}T00:00:00.000Z`);

    // The same disease confirmed in another request: one entry, two confirmations.
    const sameInB = rb.find((r) => r.name === x.name)!;
    expect((await confirm(b, sameInB.id)).status).toBe(200);
    listed = await database();
    expect(listed.results).toHaveLength(1);
    expect(listed.results[0]).toMatchObject({ name: x.name, confirmed_diagnoses: 2 });

    // Confirming another result of request a moves its confirmation.
    const y = ra[0]!;
    expect((await confirm(a, y.id)).status).toBe(200);
    const confirmedInA = await env.DB.prepare("SELECT id FROM disease_results WHERE request_id = ? AND is_confirmed = 1")
      .bind(a)
      .all<{ id: string }>();
    expect(confirmedInA.results).toEqual([{ id: y.id }]);
    listed = await database();
    expect(Object.fromEntries(listed.results.map((e) => [e.name, e.confirmed_diagnoses]))).toEqual({ [x.name]: 1, [y.name]: 1 });
    // Unconfirmed suggestions (all of request c's) are not listed.
    for (const r of rc) if (r.name !== x.name && r.name !== y.name) expect(listed.results.map((e) => e.name)).not.toContain(r.name);

    // Search: case-insensitive over the name; `%` and `_` are literal.
    const bySearch = await database(`?search=${encodeURIComponent(y.name.toUpperCase())}`);
    expect(bySearch.results.map((e) => e.name)).toContain(y.name);
    const q = y.name.toLowerCase();
    expect(bySearch.results.every((e) => [e.name, e.description, ...e.common_names].some((t) => t.toLowerCase().includes(q)))).toBe(true);
    expect((await database("?search=no-such-disease-anywhere")).count).toBe(0);
    expect((await database("?search=%25")).count).toBe(0);
    // Type filter.
    const byType = await database(`?type=${y.disease_type}`);
    expect(byType.results.every((e) => e.disease_type === y.disease_type)).toBe(true);
    expect(byType.results.map((e) => e.name)).toContain(y.name);
    const otherType = y.disease_type === "pest" ? "viral" : "pest";
    expect((await database(`?type=${otherType}`)).results.map((e) => e.name)).not.toContain(y.name);
    await expectError(await call(`${DATABASE}/?type=imaginary`), 400, "VALIDATION_ERROR");
    // Pagination.
    const paged = await database("?page_size=1");
    expect(paged.results).toHaveLength(1);
    expect(paged.count).toBe(2);

    // Confirmation rules: owner only, results of this request only, diagnosed requests only.
    await expectError(await confirm(a, y.id, other.access), 404, "NOT_FOUND");
    await expectError(await confirm(a, rc[0]!.id), 404, "NOT_FOUND");
    await expectError(
      await call(`${DISEASES}/${a}/confirm/`, { bearer: owner.access, json: { result_id: "nope" } }),
      400,
      "VALIDATION_ERROR",
    );
    await expectError(
      await call(`${DISEASES}/${a}/confirm/`, { method: "POST", json: { result_id: y.id } }),
      401,
      "AUTHENTICATION_REQUIRED",
    );
    const pending = await pendingDisease(owner.userId, await photo("database-pending"));
    await expectError(await confirm(pending, y.id), 409, "INVALID_STATE");
  });
});

describe("shared photos and the API document", () => {
  it("deleting an identification request keeps a photo a diagnosis still uses", async () => {
    const u = await bearerUser();
    const bytes = await photo("shared");
    const sha = await sha256Hex(bytes);
    await pendingDisease(u.userId, bytes);
    const id = crypto.randomUUID();
    await env.DB.prepare(
      "INSERT INTO identification_requests (id, user_id, status, image_hashes, organs) VALUES (?, ?, 'failed', ?, '[\"auto\"]')",
    )
      .bind(id, u.userId, JSON.stringify([`${sha}.png`]))
      .run();
    expect((await call(`/api/v1/plant-identification/requests/${id}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    expect(await env.IMAGES.head(`images/${sha}.png`)).not.toBeNull();
  });

  it("documents every disease route in the OpenAPI document", async () => {
    const app = createApp();
    const doc = app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "t", version: "t" } });
    const documented = new Set(
      Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
        Object.keys(item as object).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`),
      ),
    );
    const served = app.routes
      .filter((r) => r.method !== "ALL" && /\/disease-(requests|database)/.test(r.path))
      .map((r) => `${r.method} ${r.path}`);
    expect(served.length).toBeGreaterThanOrEqual(6);
    for (const route of served) expect(documented, route).toContain(route);
    expect(doc.components?.schemas?.DiseaseUpload).toBeDefined();
  });
});
