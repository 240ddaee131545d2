/**
 * Retries respect the circuit breaker. While a provider's circuit is open a job waits until it
 * may half-open — acked and re-sent with that delay, carrying its own counters — instead of
 * burning attempts; a 429 with Retry-After is rate limiting and never counts toward opening the
 * circuit. Outages are simulated with the emulators' failure modes; the circuit's clock is
 * moved forward (its `openedAt` moved back) instead of waiting a real minute.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ProviderCircuit } from "../../durable-objects/provider-circuit";
import { MAX_ATTEMPTS } from "../../src/jobs/job-policy";
import { CIRCUIT_POLICIES, circuitFor } from "../../src/services/provider-calls";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { deliverBatch, recordingQueue } from "../helpers/queue";
import { pendingRequest } from "../helpers/requests";
import { eventually } from "../helpers/wait";
import { bearerUser } from "../helpers/users";
import { openReadySocket } from "../helpers/ws";

const emulators = useEmulators();
let seed = 0;

type Body = { type: string; request_id: string; user_id: string; failures?: number; circuit_waits?: number };
const pendingOf = (kind: "identify" | "diagnose") => async (userId: string) =>
  pendingRequest(kind, userId, await makePng(320, 240, { seed: `breaker-${++seed}-${Math.random()}` }));
const pendingDiagnosis = pendingOf("diagnose");
const pendingIdentification = pendingOf("identify");

/** Delivers one message to the Worker's queue handler; returns acks, retries (with delays) and what it sent. */
async function deliver(body: Body, attempts = 1) {
  const { queue, sent } = recordingQueue<Body>();
  const result = await deliverBatch("plant-identify", [body], { ...env, IDENTIFY_QUEUE: queue }, attempts);
  return { acks: result.explicitAcks.length, retries: result.retryMessages.map((m) => m.delaySeconds), sent };
}

const dxRow = async (id: string) =>
  (await env.DB.prepare("SELECT status, attempts, lease_expires_at FROM disease_requests WHERE id = ?").bind(id).first<{
    status: string;
    attempts: number;
    lease_expires_at: string | null;
  }>())!;

async function openCircuit(provider: "plant_id" | "plantnet"): Promise<number> {
  const circuit = circuitFor(env, provider);
  for (let i = 0; i < CIRCUIT_POLICIES[provider].failureThreshold; i++) await circuit.recordFailure(CIRCUIT_POLICIES[provider]);
  const snap = await circuit.snapshot();
  expect(snap.state).toBe("open");
  return snap.openedAt!;
}

/** Seconds until the circuit opened at `openedAt` may half-open, as of now. */
const remainingS = (provider: "plant_id" | "plantnet", openedAt: number) =>
  (openedAt + CIRCUIT_POLICIES[provider].openMs - Date.now()) / 1000;

/** Plays the circuit's clock forward by its open time (instead of waiting for it). */
async function fastForwardCircuit(provider: "plant_id" | "plantnet") {
  await runInDurableObject(circuitFor(env, provider), async (instance: ProviderCircuit) => {
    const data = (instance as unknown as { data: { circuit: { openedAt: number | null } } }).data;
    data.circuit.openedAt = (data.circuit.openedAt ?? Date.now()) - CIRCUIT_POLICIES[provider].openMs;
  });
}

describe("a 429 is rate limiting, not a breaker failure", () => {
  it("Retry-After is honoured and the circuit stays closed however many 429s come back", async () => {
    const u = await bearerUser();
    emulators.plantId.setMode({ failure: "429", retryAfterSeconds: 7 });
    for (let i = 0; i < CIRCUIT_POLICIES.plant_id.failureThreshold + 1; i++) {
      const id = await pendingDiagnosis(u.userId);
      const result = await deliver({ type: "diagnose", request_id: id, user_id: u.userId });
      expect(result.retries).toEqual([7]);
    }
    expect(emulators.plantId.calls).toBe(CIRCUIT_POLICIES.plant_id.failureThreshold + 1);
    expect(await circuitFor(env, "plant_id").snapshot(CIRCUIT_POLICIES.plant_id)).toMatchObject({
      state: "closed",
      consecutiveFailures: 0,
    });
  });

  it("a 429 answering the half-open probe frees the probe slot and leaves the circuit half-open", async () => {
    const policy = CIRCUIT_POLICIES.plant_id;
    await openCircuit("plant_id");
    await fastForwardCircuit("plant_id");
    const u = await bearerUser();
    emulators.plantId.setMode({ failure: "429", retryAfterSeconds: 3, times: 1 });
    const id = await pendingDiagnosis(u.userId);
    expect((await deliver({ type: "diagnose", request_id: id, user_id: u.userId })).retries).toEqual([3]);
    expect((await circuitFor(env, "plant_id").snapshot(policy)).state).toBe("half_open");
    // The next caller may probe at once (the 429 did not hold the slot for the probe lease).
    expect(await circuitFor(env, "plant_id").acquire(policy)).toMatchObject({ allowed: true, state: "half_open" });
  });
});

describe("an open circuit makes a job wait, not fail", () => {
  it("acks and re-sends the job with a delay of at least the remaining open time; its real-failure budget is untouched", async () => {
    const u = await bearerUser();
    const id = await pendingDiagnosis(u.userId);
    const socket = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    const openedAt = await openCircuit("plant_id");
    // The message's 4th delivery: three real failures behind it, one attempt left.
    const result = await deliver({ type: "diagnose", request_id: id, user_id: u.userId }, MAX_ATTEMPTS - 1);
    const left = remainingS("plant_id", openedAt);
    expect(emulators.plantId.calls).toBe(0);
    expect(result.acks).toBe(1);
    expect(result.retries).toEqual([]);
    expect(result.sent).toHaveLength(1);
    const [next] = result.sent;
    expect(next!.body).toEqual({ type: "diagnose", request_id: id, user_id: u.userId, failures: MAX_ATTEMPTS - 2, circuit_waits: 1 });
    expect(next!.delaySeconds).toBeGreaterThanOrEqual(left);
    expect(next!.delaySeconds).toBeLessThanOrEqual(CIRCUIT_POLICIES.plant_id.openMs / 1000 + 10);
    const row = await dxRow(id);
    expect(row.status).toBe("pending");
    // Not taken for stuck while it waits: its deadline is when the re-sent message is due.
    expect(Date.parse(row.lease_expires_at!)).toBeGreaterThanOrEqual(openedAt + CIRCUIT_POLICIES.plant_id.openMs - 2000);
    const scheduled = await eventually(() => socket.messages.find((m) => m.stage === "retry_scheduled"));
    expect(scheduled.data).toMatchObject({ reason: "circuit_open", delay_seconds: next!.delaySeconds });
    socket.ws.close(1000);
  });

  it("an identification waits while both providers' circuits are open, until the first may half-open", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    const plantIdOpened = await openCircuit("plant_id");
    const plantNetOpened = await openCircuit("plantnet");
    const result = await deliver({ type: "identify", request_id: id, user_id: u.userId }, MAX_ATTEMPTS);
    const left = Math.min(remainingS("plant_id", plantIdOpened), remainingS("plantnet", plantNetOpened));
    expect(emulators.plantId.calls + emulators.plantnet.calls).toBe(0);
    expect(result.acks).toBe(1);
    expect(result.sent).toHaveLength(1);
    expect(result.sent[0]!.body).toMatchObject({ type: "identify", failures: MAX_ATTEMPTS - 1, circuit_waits: 1 });
    expect(result.sent[0]!.delaySeconds).toBeGreaterThanOrEqual(left);
    const status = await env.DB.prepare("SELECT status FROM identification_requests WHERE id = ?").bind(id).first<{ status: string }>();
    expect(status!.status).toBe("pending");
  });

  it("when one circuit is open and the other provider really fails, the attempt counts but its retry waits for the half-open", async () => {
    const u = await bearerUser();
    const id = await pendingIdentification(u.userId);
    const openedAt = await openCircuit("plant_id");
    emulators.plantnet.setMode({ failure: "500" });
    const result = await deliver({ type: "identify", request_id: id, user_id: u.userId }, 1);
    const left = remainingS("plant_id", openedAt);
    expect(emulators.plantnet.calls).toBe(1);
    expect(result.sent).toEqual([]);
    // An ordinary retry (a real failure happened), but not before Plant.id may half-open
    // (a first attempt's backoff alone would be 3–8 s).
    expect(result.retries).toHaveLength(1);
    expect(result.retries[0]).toBeGreaterThanOrEqual(left);
  });

  it("a 45-second outage does not exhaust a job's attempts: it completes after the provider recovers", async () => {
    const u = await bearerUser();
    const id = await pendingDiagnosis(u.userId);
    const job: Body = { type: "diagnose", request_id: id, user_id: u.userId };
    // t = 0: Plant.id starts answering 500. The job's first three attempts fail for real (backoff
    // 5, 10, 20 s ± 50 %) and the third failure opens the circuit for 60 s.
    emulators.plantId.setMode({ failure: "500" });
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = await deliver(job, attempt);
      expect(r.retries).toHaveLength(1);
    }
    expect((await circuitFor(env, "plant_id").snapshot()).state).toBe("open");
    const callsDuringOutage = emulators.plantId.calls;

    // Its 4th delivery meets the open circuit: no call, re-sent to wait for the half-open.
    const waiting = await deliver(job, 4);
    expect(emulators.plantId.calls).toBe(callsDuringOutage);
    expect(waiting.sent).toHaveLength(1);
    expect(waiting.sent[0]!.body).toMatchObject({ failures: 3, circuit_waits: 1 });

    // t = 45 s: Plant.id recovers. By the time the re-sent message is due the circuit may
    // half-open; the job is the probe, succeeds and completes.
    emulators.plantId.setMode({ failure: "none" });
    await fastForwardCircuit("plant_id");
    const done = await deliver(waiting.sent[0]!.body, 1);
    expect(done.acks).toBe(1);
    expect(done.sent).toEqual([]);
    const row = await dxRow(id);
    expect(["identified", "needs_help"]).toContain(row.status);
    const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM disease_results WHERE request_id = ?").bind(id).first<{ n: number }>())!;
    expect(n).toBeGreaterThan(0);
  });

  it("real failures still end the job after MAX_ATTEMPTS, counted across re-sent messages", async () => {
    const u = await bearerUser();
    const id = await pendingDiagnosis(u.userId);
    emulators.plantId.setMode({ failure: "500" });
    // A re-sent message carrying four real failures: its first delivery is the job's 5th attempt.
    const r = await deliver({ type: "diagnose", request_id: id, user_id: u.userId, failures: MAX_ATTEMPTS - 1, circuit_waits: 2 }, 1);
    expect(r.acks).toBe(1);
    expect(r.retries).toEqual([]);
    expect((await dxRow(id)).status).toBe("failed");
  });
});
