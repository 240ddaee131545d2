/**
 * A provider's 429 with no `Retry-After`, or one that is garbled or absurdly large, in a queued
 * job: the job waits the ordinary backoff when the header says nothing readable (never "retry at
 * once"), at most 300 s when it asks for forever, and the circuit breaker counts none of it as a
 * failure. Plant.id through a diagnosis job (its only provider), Pl@ntNet through an
 * identification whose Plant.id call fails too (a job retries only when every provider failed).
 * The 429 is the emulator's own, in the provider's shape; only its header is changed.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hostMap } from "../../emulators/index";
import { MAX_DELAY_S } from "../../src/jobs/job-policy";
import { CIRCUIT_POLICIES, circuitFor } from "../../src/services/provider-calls";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { deliverJob } from "../helpers/queue";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";
import { eventually } from "../helpers/wait";
import { openReadySocket, settled } from "../helpers/ws";

const emulators = useEmulators();

const CASES = {
  plant_id: { host: "plant-id.emulator.test", kind: "diagnose", table: "disease_requests" },
  plantnet: { host: "plantnet.emulator.test", kind: "identify", table: "identification_requests" },
} as const;
type Provider = keyof typeof CASES;

/** `provider` answers its emulator's own 429 with `Retry-After` set to `value` (null: no header). */
function rateLimitedWith(provider: Provider, value: string | null) {
  const emulator = provider === "plant_id" ? emulators.plantId : emulators.plantnet;
  emulator.setMode({ failure: "429" });
  emulators.overrides[CASES[provider].host] = async (request) => {
    const answer = (await hostMap(emulators)(request))!;
    const headers = new Headers(answer.headers);
    if (value === null) headers.delete("Retry-After");
    else headers.set("Retry-After", value);
    return new Response(answer.body, { status: answer.status, headers });
  };
  // An identification retries only when every provider failed.
  if (provider === "plantnet") emulators.plantId.setMode({ failure: "500" });
}

/** Delivers `provider`'s job for a fresh pending request once (attempt 1): its retry delay, what the owner heard, and the row. */
async function runOnce(provider: Provider) {
  const { kind, table } = CASES[provider];
  const u = await bearerUser();
  const id = await pendingRequest(kind, u.userId, await makePng(320, 240, { seed: `429-${Math.random()}` }));
  const socket = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
  const { retried, delay } = await deliverJob({ type: kind, request_id: id, user_id: u.userId });
  expect(retried).toBe(1);
  const scheduled = await eventually(() => socket.messages.find((m) => m.stage === "retry_scheduled"));
  await settled(socket);
  socket.ws.close(1000);
  const row = await env.DB.prepare(`SELECT status, attempts FROM ${table} WHERE id = ?`)
    .bind(id)
    .first<{ status: string; attempts: number }>();
  return {
    delay: delay!,
    scheduled: scheduled.data as { delay_seconds: number },
    rateLimited: socket.messages.find((m) => m.stage === "rate_limited")?.data as { retry_after: number } | undefined,
    row,
  };
}

async function expectCircuitClosed(provider: Provider) {
  expect(await circuitFor(env, provider).snapshot(CIRCUIT_POLICIES[provider])).toMatchObject({ state: "closed", consecutiveFailures: 0 });
}

/** Attempt 1's backoff: 5 s ± 50 %. */
const expectBackoff = (delay: number) => {
  expect(delay).toBeGreaterThanOrEqual(2);
  expect(delay).toBeLessThanOrEqual(8);
};

describe.each(Object.keys(CASES) as Provider[])("%s answers 429", (provider) => {
  it("without Retry-After: the job waits the ordinary backoff, the request is pending again, the circuit stays closed", async () => {
    rateLimitedWith(provider, null);
    const { delay, scheduled, row } = await runOnce(provider);
    expectBackoff(delay);
    expect(scheduled.delay_seconds).toBe(delay);
    expect(row).toMatchObject({ status: "pending", attempts: 1 });
    await expectCircuitClosed(provider);
  });

  for (const garbled of ["-5", "1.5", "soon", "5 minutes", "2026-12-07"]) {
    it(`with an unreadable Retry-After ${JSON.stringify(garbled)}: the backoff, as if there were none (not "retry at once")`, async () => {
      rateLimitedWith(provider, garbled);
      const { delay, rateLimited, row } = await runOnce(provider);
      expectBackoff(delay);
      expect(rateLimited).toBeUndefined();
      expect(row).toMatchObject({ status: "pending" });
      await expectCircuitClosed(provider);
    });
  }

  it("with a Retry-After past any number: waits the 300-second cap, and says so", async () => {
    rateLimitedWith(provider, "9".repeat(400));
    const { delay, rateLimited, row } = await runOnce(provider);
    expect(delay).toBe(MAX_DELAY_S);
    expect(rateLimited).toEqual({ retry_after: MAX_DELAY_S });
    expect(row).toMatchObject({ status: "pending" });
    await expectCircuitClosed(provider);
  });

  it("with an HTTP-date: waits until then", async () => {
    rateLimitedWith(provider, new Date(Date.now() + 120_000).toUTCString());
    const { delay, rateLimited } = await runOnce(provider);
    expect(delay).toBeGreaterThanOrEqual(115);
    expect(delay).toBeLessThanOrEqual(121);
    expect(rateLimited).toEqual({ retry_after: delay });
  });
});
