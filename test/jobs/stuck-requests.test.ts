/**
 * Jobs never stick: the cron sweep (src/jobs/stuck-requests.ts) finds identification and
 * disease requests left `pending`/`processing` with no live queue message — their lease or
 * visibility deadline passed by more than STUCK_MARGIN_MS — and re-queues them, or fails them
 * and tells the owner once they were re-queued too often or are too old. The consumer's claim
 * is exclusive while a lease is live, so an old message that turns up after a re-queue writes
 * nothing twice.
 */
import { createExecutionContext, createScheduledController, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { UserHub } from "../../durable-objects/user-hub";
import worker from "../../src/index";
import { sha256Hex } from "../../src/lib/hash";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { deliverBatch, recordingQueue } from "../helpers/queue";
import { eventually } from "../helpers/wait";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();
const MIN = 60_000;
const iso = (offsetMs: number, from = Date.now()) => new Date(from + offsetMs).toISOString();
let seed = 0;

async function sweep(opts: { env?: Partial<Env>; at?: number } = {}) {
  const ctx = createExecutionContext();
  await worker.scheduled(
    createScheduledController({ cron: "*/5 * * * *", scheduledTime: opts.at ?? Date.now() }),
    { ...env, ...opts.env },
    ctx,
  );
  await waitOnExecutionContext(ctx);
}

async function storedPhoto(): Promise<string> {
  const bytes = await makePng(320, 240, { seed: `stuck-${++seed}-${Math.random()}` });
  const sha = await sha256Hex(bytes);
  await env.IMAGES.put(`images/${sha}.png`, bytes);
  return JSON.stringify([`${sha}.png`]);
}

interface RowInit {
  status: "pending" | "processing" | "identified";
  updatedAt?: string;
  createdAt?: string;
  lease?: string | null;
  requeues?: number;
}

async function identification(userId: string, init: RowInit): Promise<string> {
  const id = crypto.randomUUID();
  await env.DB.prepare(
    `INSERT INTO identification_requests (id, user_id, status, image_hashes, organs, lease_expires_at, requeue_count, created_at, updated_at)
     VALUES (?, ?, ?, ?, '["auto"]', ?, ?, ?, ?)`,
  )
    .bind(
      id,
      userId,
      init.status,
      await storedPhoto(),
      init.lease ?? null,
      init.requeues ?? 0,
      init.createdAt ?? init.updatedAt ?? iso(0),
      init.updatedAt ?? iso(0),
    )
    .run();
  return id;
}

async function diagnosis(userId: string, init: RowInit): Promise<string> {
  const id = crypto.randomUUID();
  await env.DB.prepare(
    `INSERT INTO disease_requests (id, user_id, status, image_hashes, symptoms_description, lease_expires_at, requeue_count, created_at, updated_at)
     VALUES (?, ?, ?, ?, 'Yellow leaves with brown spots.', ?, ?, ?, ?)`,
  )
    .bind(
      id,
      userId,
      init.status,
      await storedPhoto(),
      init.lease ?? null,
      init.requeues ?? 0,
      init.createdAt ?? init.updatedAt ?? iso(0),
      init.updatedAt ?? iso(0),
    )
    .run();
  return id;
}

type Row = { status: string; requeue_count: number; lease_expires_at: string | null; attempts: number; error_message: string | null };
const idRow = async (id: string) =>
  (await env.DB.prepare("SELECT status, requeue_count, lease_expires_at, attempts, error_message FROM identification_requests WHERE id = ?")
    .bind(id)
    .first<Row>())!;
const dxRow = async (id: string) =>
  (await env.DB.prepare("SELECT status, requeue_count, lease_expires_at, attempts, error_message FROM disease_requests WHERE id = ?")
    .bind(id)
    .first<Row>())!;

const deliver = (bodies: unknown[], attempts = 1) => deliverBatch("plant-identify", bodies, env, attempts);

describe("the sweep", () => {
  it("re-queues requests whose message was lost, leaves live ones alone, and fails the ones re-queued too often or too old", async () => {
    const u = await bearerUser();
    const lostPending = await identification(u.userId, { status: "pending", updatedAt: iso(-20 * MIN) });
    const crashedProcessing = await identification(u.userId, { status: "processing", updatedAt: iso(-20 * MIN), lease: iso(-11 * MIN) });
    const liveProcessing = await identification(u.userId, { status: "processing", updatedAt: iso(-1 * MIN), lease: iso(4 * MIN) });
    // A retry delayed by its message: updated long ago, but its message only becomes visible later.
    const delayedRetry = await identification(u.userId, { status: "pending", updatedAt: iso(-30 * MIN), lease: iso(4 * MIN) });
    const justQueued = await identification(u.userId, { status: "pending", updatedAt: iso(-2 * MIN) });
    const sweptTooOften = await identification(u.userId, { status: "pending", updatedAt: iso(-20 * MIN), requeues: 3 });
    const tooOld = await identification(u.userId, { status: "pending", createdAt: iso(-48 * 60 * MIN), updatedAt: iso(-20 * MIN) });
    const finished = await identification(u.userId, { status: "identified", updatedAt: iso(-20 * MIN) });
    const lostDiagnosis = await diagnosis(u.userId, { status: "processing", updatedAt: iso(-20 * MIN), lease: iso(-15 * MIN) });
    const liveDiagnosis = await diagnosis(u.userId, { status: "pending", updatedAt: iso(-1 * MIN) });

    const { queue, sent } = recordingQueue();
    const before = Date.now();
    await sweep({ env: { IDENTIFY_QUEUE: queue } });

    // One message per lost request, of the right kind, for its owner.
    expect(sent.map((s) => s.body).sort((a, b) => a.request_id.localeCompare(b.request_id))).toEqual(
      [
        { type: "identify", request_id: lostPending, user_id: u.userId, run: 0 },
        { type: "identify", request_id: crashedProcessing, user_id: u.userId, run: 0 },
        { type: "diagnose", request_id: lostDiagnosis, user_id: u.userId, run: 0 },
      ].sort((a, b) => a.request_id.localeCompare(b.request_id)),
    );
    for (const id of [lostPending, crashedProcessing]) {
      const row = await idRow(id);
      expect(row).toMatchObject({ status: "pending", requeue_count: 1 });
      // Its new deadline: the re-sent message is deliverable now.
      expect(Date.parse(row.lease_expires_at!)).toBeGreaterThanOrEqual(before - 1000);
    }
    expect(await dxRow(lostDiagnosis)).toMatchObject({ status: "pending", requeue_count: 1 });

    expect(await idRow(liveProcessing)).toMatchObject({ status: "processing", requeue_count: 0 });
    expect(await idRow(delayedRetry)).toMatchObject({ status: "pending", requeue_count: 0 });
    expect(await idRow(justQueued)).toMatchObject({ status: "pending", requeue_count: 0 });
    expect(await idRow(finished)).toMatchObject({ status: "identified" });
    expect(await dxRow(liveDiagnosis)).toMatchObject({ status: "pending", requeue_count: 0 });
    expect(await idRow(sweptTooOften)).toMatchObject({ status: "failed", error_message: "Processing timed out. Please retry." });
    expect(await idRow(tooOld)).toMatchObject({ status: "failed", error_message: "Processing timed out. Please retry." });

    // Owners of failed requests are told, as for any other failure; the re-queued hear "queued".
    await runInDurableObject(env.USER_HUB.get(env.USER_HUB.idFromName(u.userId)), async (hub: UserHub) => {
      expect(hub.lastState(sweptTooOften)).toMatchObject({ type: "completed", status: "failed" });
      expect(hub.lastState(tooOld)).toMatchObject({ type: "completed", status: "failed" });
      expect(hub.lastState(lostPending)).toMatchObject({ type: "progress", stage: "queued", status: "pending" });
      expect(hub.lastState(liveProcessing)).toBeNull();
    });

    // A second sweep right after finds nothing new: the re-queued requests have fresh deadlines.
    const again = recordingQueue();
    await sweep({ env: { IDENTIFY_QUEUE: again.queue } });
    expect(again.sent).toEqual([]);
  });

  it("counts its re-queues: a message that keeps getting lost ends failed after MAX_REQUEUES sweeps, not in a loop", async () => {
    const u = await bearerUser();
    const id = await diagnosis(u.userId, { status: "pending", updatedAt: iso(-20 * MIN) });
    const { queue, sent } = recordingQueue();
    // Each later sweep comes after the previous re-queue's deadline has passed by the margin.
    let at = Date.now();
    for (let i = 1; i <= 3; i++) {
      await sweep({ env: { IDENTIFY_QUEUE: queue }, at });
      expect(await dxRow(id)).toMatchObject({ status: "pending", requeue_count: i });
      at += 11 * MIN;
    }
    await sweep({ env: { IDENTIFY_QUEUE: queue }, at });
    expect(await dxRow(id)).toMatchObject({ status: "failed", requeue_count: 3 });
    // (Simulated later sweeps also see earlier tests' rows in this file; count this request's.)
    expect(sent.filter((s) => s.body.request_id === id)).toHaveLength(3);
    await runInDurableObject(env.USER_HUB.get(env.USER_HUB.idFromName(u.userId)), async (hub: UserHub) => {
      expect(hub.lastState(id)).toMatchObject({ type: "completed", status: "failed", results_count: 0 });
    });
  });

  it("recovers a lost job end to end: the sweep's message goes through the real queue and the request completes", async () => {
    const u = await bearerUser();
    const id = await identification(u.userId, { status: "pending", updatedAt: iso(-20 * MIN) });
    await sweep();
    // The job's last word (after enrichment and care) is `completed` on the owner's hub.
    const hub = env.USER_HUB.get(env.USER_HUB.idFromName(u.userId));
    const completed = await eventually(
      () =>
        runInDurableObject(hub, async (instance: UserHub) =>
          instance.lastState(id)?.type === "completed" ? instance.lastState(id) : null,
        ),
      30_000,
    );
    const done = await idRow(id);
    expect(["identified", "needs_help"]).toContain(done.status);
    expect(completed).toMatchObject({ status: done.status });
    expect(done).toMatchObject({ requeue_count: 1, attempts: 1 });
    const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM identification_results WHERE request_id = ?")
      .bind(id)
      .first<{ n: number }>())!;
    expect(n).toBeGreaterThan(0);
  }, 60_000);
});

describe("the consumer's claim is exclusive while a lease is live", () => {
  it("acks a duplicate of a job another delivery is running, without calling any provider", async () => {
    const u = await bearerUser();
    const id = await identification(u.userId, { status: "processing", updatedAt: iso(-1 * MIN), lease: iso(4 * MIN) });
    const result = await deliver([{ type: "identify", request_id: id, user_id: u.userId }]);
    expect(result.explicitAcks).toHaveLength(1);
    expect(result.retryMessages).toHaveLength(0);
    expect(emulators.plantId.calls + emulators.plantnet.calls).toBe(0);
    expect(await idRow(id)).toMatchObject({ status: "processing", attempts: 0 });

    const dx = await diagnosis(u.userId, { status: "processing", updatedAt: iso(-1 * MIN), lease: iso(4 * MIN) });
    expect((await deliver([{ type: "diagnose", request_id: dx, user_id: u.userId }])).explicitAcks).toHaveLength(1);
    expect(emulators.plantId.calls).toBe(0);
  });

  it("claims a request whose lease expired, and sets a new lease while it runs", async () => {
    const u = await bearerUser();
    const id = await diagnosis(u.userId, { status: "processing", updatedAt: iso(-20 * MIN), lease: iso(-1 * MIN) });
    // Plant.id fails once so the job is released (back to pending) and we can see the lease it held.
    emulators.plantId.setMode({ failure: "500", times: 1 });
    const before = Date.now();
    const result = await deliver([{ type: "diagnose", request_id: id, user_id: u.userId }]);
    expect(result.retryMessages).toHaveLength(1);
    const row = await dxRow(id);
    expect(row).toMatchObject({ status: "pending", attempts: 1 });
    // Released with the retry's delay (at least 2.5 s on a first attempt) as its new deadline, so
    // it does not look stuck while its message waits.
    expect(Date.parse(row.lease_expires_at!)).toBeGreaterThanOrEqual(before + 2000);
  });

  it("an old message that turns up after a re-queue writes nothing twice", async () => {
    const u = await bearerUser();
    const id = await identification(u.userId, { status: "pending", updatedAt: iso(-20 * MIN) });
    const { queue, sent } = recordingQueue();
    await sweep({ env: { IDENTIFY_QUEUE: queue } });
    expect(sent).toHaveLength(1);
    const old = { type: "identify", request_id: id, user_id: u.userId };
    // The old message and the re-queued one arrive together, and the old one once more later.
    const both = await deliver([old, sent[0]!.body]);
    expect(both.explicitAcks).toHaveLength(2);
    const late = await deliver([old]);
    expect(late.explicitAcks).toHaveLength(1);
    const row = await idRow(id);
    expect(["identified", "needs_help"]).toContain(row.status);
    // Exactly one delivery claimed the job.
    expect(row.attempts).toBe(1);
    const names = await env.DB.prepare("SELECT lower(scientific_name) AS n FROM identification_results WHERE request_id = ?")
      .bind(id)
      .all<{ n: string }>();
    expect(names.results.length).toBeGreaterThan(0);
    expect(new Set(names.results.map((r) => r.n)).size).toBe(names.results.length);
    expect(emulators.plantId.calls).toBe(1);
  });
});
