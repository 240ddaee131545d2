/**
 * Queued jobs when their providers time out or answer something unreadable: Plant.id's
 * `/health_assessment` for a diagnosis, both Plant.id and Pl@ntNet for an identification (a job
 * retries only when every provider failed). For each failure — no answer in time, truncated JSON,
 * a 200 of a shape the parser does not expect, a body past the 4 MB cap — the job is retried with
 * the ordinary backoff, its request back in `pending` (never left `processing`), the owner told
 * which provider failed how and that a retry is scheduled, and nothing final said or stored; the
 * next attempt, with the provider well again, completes it and says it once, with one
 * notification. On the last attempt the request fails and its owner is told once, however often
 * the job is delivered again.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hostMap } from "../../emulators/index";
import { MAX_ATTEMPTS } from "../../src/jobs/job-policy";
import { MAX_PROVIDER_BODY_BYTES } from "../../src/providers/http";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { deliverJob, type JobBody } from "../helpers/queue";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";
import { eventually } from "../helpers/wait";
import { openReadySocket, type Socket, settled } from "../helpers/ws";

const emulators = useEmulators();
const HOSTS = { plant_id: "plant-id.emulator.test", plantnet: "plantnet.emulator.test" } as const;
type Provider = keyof typeof HOSTS;

const KINDS = [
  { kind: "diagnose", table: "disease_requests", results: "disease_results", providers: ["plant_id"], done: ["health_done"] },
  {
    kind: "identify",
    table: "identification_requests",
    results: "identification_results",
    providers: ["plant_id", "plantnet"],
    done: ["plant_id_done", "plantnet_done"],
  },
] as const;

/** The provider timeouts a job runs with: short, so a hanging provider times out in the test. */
const SHORT_TIMEOUTS = { PLANT_ID_TIMEOUT_MS: "300", PLANTNET_TIMEOUT_MS: "300" };

const FAILURES: { name: string; error: string; arrange: (provider: Provider) => void }[] = [
  {
    name: "no answer within the timeout",
    error: "timeout",
    arrange: (p) => (p === "plant_id" ? emulators.plantId : emulators.plantnet).setMode({ failure: "hang" }),
  },
  {
    name: "truncated JSON",
    error: "malformed",
    arrange: (p) => (p === "plant_id" ? emulators.plantId : emulators.plantnet).setMode({ failure: "malformed" }),
  },
  {
    name: "a 200 of a shape the parser does not expect",
    error: "malformed",
    arrange: (p) => {
      emulators.overrides[HOSTS[p]] = async () => Response.json({ status: "ok", data: [{ name: "Powdery mildew", score: 0.9 }] });
    },
  },
  {
    name: "a body past the 4 MB cap",
    error: "malformed",
    arrange: (p) => {
      emulators.overrides[HOSTS[p]] = async (request) => {
        const answer = (await (await hostMap(emulators)(request)!).json()) as Record<string, unknown>;
        return Response.json({ ...answer, padding: "x".repeat(MAX_PROVIDER_BODY_BYTES) });
      };
    },
  },
];

function recover() {
  emulators.reset();
  for (const key of Object.keys(emulators.overrides)) delete emulators.overrides[key];
}

const deliver = (body: JobBody, attempts: number) => deliverJob(body, attempts, SHORT_TIMEOUTS);

const count = async (sql: string, id: string) => (await env.DB.prepare(sql).bind(id).first<{ n: number }>())!.n;
const notices = (id: string) =>
  env.DB.prepare("SELECT type, title FROM notifications WHERE json_extract(data, '$.request_id') = ? ORDER BY created_at")
    .bind(id)
    .all<{ type: string; title: string }>()
    .then((r) => r.results);
const ofRequest = (socket: Socket, id: string) => socket.messages.filter((m) => m.request_id === id);

describe.each(KINDS)("a $kind job", ({ kind, table, results, providers, done }) => {
  const row = async (id: string) =>
    (await env.DB.prepare(`SELECT status, attempts, error_message FROM ${table} WHERE id = ?`)
      .bind(id)
      .first<{ status: string; attempts: number; error_message: string | null }>())!;

  async function started() {
    const u = await bearerUser();
    const id = await pendingRequest(kind, u.userId, await makePng(320, 240, { seed: `job-failure-${Math.random()}` }));
    const socket = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    return { body: { type: kind, request_id: id, user_id: u.userId }, id, socket };
  }

  describe.each(FAILURES)("when the provider gives $name", ({ error, arrange }) => {
    it("is retried with backoff, its request pending, the owner told; the next attempt completes it once", async () => {
      const { body, id, socket } = await started();
      for (const p of providers) arrange(p);

      const first = await deliver(body, 1);
      expect(first).toMatchObject({ acked: 0, retried: 1 });
      expect(first.delay).toBeGreaterThanOrEqual(2);
      expect(first.delay).toBeLessThanOrEqual(8);
      expect(await row(id)).toMatchObject({ status: "pending", attempts: 1, error_message: expect.stringMatching(/retrying/) });
      const scheduled = await eventually(() => ofRequest(socket, id).find((m) => m.stage === "retry_scheduled"));
      expect(scheduled.data).toMatchObject({ delay_seconds: first.delay, attempt: 1, max_attempts: MAX_ATTEMPTS });
      for (const stage of done) {
        expect(ofRequest(socket, id).find((m) => m.stage === stage)?.data).toEqual({ ok: false, error, cached: false });
      }
      expect(ofRequest(socket, id).filter((m) => m.type === "completed" || m.type === "error")).toEqual([]);
      expect(await count(`SELECT count(*) AS n FROM ${results} WHERE request_id = ?`, id)).toBe(0);
      expect(await notices(id)).toEqual([]);

      recover();
      const second = await deliver(body, 2);
      expect(second).toMatchObject({ acked: 1, retried: 0 });
      const final = await row(id);
      expect(["identified", "needs_help"]).toContain(final.status);
      expect(final.attempts).toBe(2);
      const completed = await eventually(() => ofRequest(socket, id).find((m) => m.type === "completed"));
      expect(await count(`SELECT count(*) AS n FROM ${results} WHERE request_id = ?`, id)).toBe(completed.results_count);
      await settled(socket);
      expect(ofRequest(socket, id).filter((m) => m.type === "completed")).toHaveLength(1);
      expect(ofRequest(socket, id).filter((m) => m.type === "error")).toEqual([]);
      expect(await notices(id)).toHaveLength(1);
      expect((await notices(id))[0]!.type).toMatch(/completed|ready/);
      socket.ws.close(1000);
    });

    it("on the last attempt fails the request and tells its owner once, however often the job comes back", async () => {
      const { body, id, socket } = await started();
      for (const p of providers) arrange(p);

      expect(await deliver(body, MAX_ATTEMPTS)).toMatchObject({ acked: 1, retried: 0 });
      expect(await row(id)).toMatchObject({ status: "failed", error_message: expect.stringMatching(/unavailable/) });
      await eventually(() => ofRequest(socket, id).find((m) => m.type === "completed" && m.status === "failed" && m.results_count === 0));
      expect(ofRequest(socket, id).filter((m) => m.type === "error")).toHaveLength(1);
      const told = await notices(id);
      expect(told).toHaveLength(1);
      expect(told[0]!.title).toMatch(/failed/);

      // Delivered again (a duplicate, a redelivery): nothing is called, written or told again.
      const calls = emulators.plantId.calls + emulators.plantnet.calls;
      expect(await deliver(body, MAX_ATTEMPTS)).toMatchObject({ acked: 1, retried: 0 });
      expect(emulators.plantId.calls + emulators.plantnet.calls).toBe(calls);
      expect(await row(id)).toMatchObject({ status: "failed" });
      expect(await notices(id)).toEqual(told);
      await settled(socket);
      expect(ofRequest(socket, id).filter((m) => m.type === "error")).toHaveLength(1);
      socket.ws.close(1000);
    });
  });
});
