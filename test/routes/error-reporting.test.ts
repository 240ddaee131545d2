import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createSentryEmulator } from "../../emulators/sentry";
import { createApp } from "../../src/app";
import { handleDeadLetterBatch, handleJobBatch } from "../../src/jobs/queue";
import { parseSentryDsn, sentryEnvelope } from "../../src/providers/sentry";
import { runHousekeeping } from "../../src/jobs/housekeeping";
import { createLogger } from "../../src/lib/logger";
import { makePng } from "../helpers/images";
import { freshIp } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";

const sentry = createSentryEmulator();
const emulators = useEmulators({ overrides: { "sentry.emulator.test": (req) => sentry.handle(req) } });
const DSN = "https://emulatorkey@sentry.emulator.test/4242";

beforeEach(() => sentry.reset());

describe("Sentry DSN and envelope", () => {
  it("parses DSNs into the envelope endpoint and auth header", () => {
    expect(parseSentryDsn(DSN)).toEqual({
      url: "https://sentry.emulator.test/api/4242/envelope/",
      auth: "Sentry sentry_version=7, sentry_key=emulatorkey, sentry_client=plant-community/1.0",
      dsn: DSN,
    });
    expect(parseSentryDsn("https://key@self-hosted.example/sentry/7")?.url).toBe("https://self-hosted.example/sentry/api/7/envelope/");
    expect(parseSentryDsn("")).toBeNull();
    expect(parseSentryDsn("not a url")).toBeNull();
    expect(parseSentryDsn("https://sentry.example/1")).toBeNull(); // no key
  });

  it("builds a three-line envelope with the exception and its frames", () => {
    const envelope = sentryEnvelope(parseSentryDsn(DSN)!, {
      error: new TypeError("boom"),
      environment: "test",
      release: "1",
      requestId: "req-1",
    });
    const [header, item, event] = envelope.split("\n").map((l) => JSON.parse(l));
    expect(header).toMatchObject({ dsn: DSN });
    expect(item).toEqual({ type: "event" });
    expect(event).toMatchObject({
      level: "error",
      environment: "test",
      tags: { request_id: "req-1" },
      exception: { values: [{ type: "TypeError", value: "boom" }] },
    });
    expect(event.exception.values[0].stacktrace.frames.length).toBeGreaterThan(0);
  });
});

/** A D1 binding whose every statement fails with `message`, however it is run (raw D1 or drizzle). */
function failingD1(message: string): D1Database {
  const fail = () => Promise.reject(new Error(message));
  const statement = { bind: () => statement, first: fail, all: fail, raw: fail, run: fail };
  return { prepare: () => statement, batch: fail, exec: fail } as unknown as D1Database;
}

describe("unexpected errors are reported when SENTRY_DSN is set", () => {
  it("reports a 500 with its request id and keeps the client answer clean", async () => {
    const brokenDb = failingD1("D1 exploded");
    const form = new FormData();
    form.append("image", new File([await makePng(300, 300, { seed: "sentry" })], "p.png", { type: "image/png" }));
    const ctx = createExecutionContext();
    const res = await createApp().request(
      "/api/v1/plant-identification/identify/",
      { method: "POST", body: form, headers: { "CF-Connecting-IP": freshIp() } },
      { ...env, DB: brokenDb, SENTRY_DSN: DSN },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(500);
    expect(JSON.stringify(await res.json())).not.toContain("D1 exploded");
    expect(sentry.events).toHaveLength(1);
    expect(sentry.events[0]!.event).toMatchObject({
      tags: { request_id: res.headers.get("X-Request-ID") },
      exception: { values: [{ value: "D1 exploded" }] },
      request: { method: "POST", url: "/api/v1/plant-identification/identify/" },
    });
    expect(emulators.plantId.calls).toBe(1);
  });

  it("sends nothing without a DSN", async () => {
    const brokenDb = failingD1("D1 down");
    const ctx = createExecutionContext();
    await createApp().request("/api/v1/health/", {}, { ...env, DB: brokenDb }, ctx);
    await waitOnExecutionContext(ctx);
    expect(sentry.events).toHaveLength(0);
  });
});

describe("queue jobs report through the same reporter", () => {
  it("a job that crashes on our own infrastructure is reported with its queue and request, and retried", async () => {
    const requestId = crypto.randomUUID();
    const outcomes: string[] = [];
    const message = {
      id: "m1",
      timestamp: new Date(),
      attempts: 1,
      body: { type: "identify", request_id: requestId, user_id: crypto.randomUUID() },
      ack: () => outcomes.push("ack"),
      retry: () => outcomes.push("retry"),
    };
    const ctx = createExecutionContext();
    await handleJobBatch(
      { queue: "plant-identify", messages: [message] } as unknown as MessageBatch<unknown>,
      { ...env, DB: failingD1("D1 crashed mid-job"), SENTRY_DSN: DSN },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(outcomes).toEqual(["retry"]);
    expect(sentry.events).toHaveLength(1);
    expect(sentry.events[0]!.event).toMatchObject({
      tags: { queue: "identify", request_id: requestId },
      exception: { values: [{ value: "D1 crashed mid-job" }] },
    });
    // The report carries the driver's error, never drizzle's wrapper with the SQL and its parameters.
    expect(JSON.stringify(sentry.events[0])).not.toMatch(/Failed query|identification_requests|params:/);
  });
});

describe("dead letters report through the same reporter", () => {
  it("a dead letter whose request cannot be failed is reported and retried, never silently acked", async () => {
    const requestId = crypto.randomUUID();
    const outcomes: string[] = [];
    const message = {
      id: "dl1",
      timestamp: new Date(),
      attempts: 1,
      body: { type: "diagnose", request_id: requestId, user_id: crypto.randomUUID() },
      ack: () => outcomes.push("ack"),
      retry: () => outcomes.push("retry"),
    };
    const ctx = createExecutionContext();
    await handleDeadLetterBatch(
      { queue: "plant-identify-dlq", messages: [message] } as unknown as MessageBatch<unknown>,
      { ...env, DB: failingD1("D1 down during dead-letter"), SENTRY_DSN: DSN },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(outcomes).toEqual(["retry"]);
    expect(sentry.events).toHaveLength(1);
    expect(sentry.events[0]!.event).toMatchObject({
      tags: { queue: "diagnose-dead-letter", request_id: requestId },
      exception: { values: [{ value: "D1 down during dead-letter" }] },
    });
  });
});

describe("metrics to Analytics Engine", () => {
  it("writes one point per request (route pattern, not URL) and one per provider call", async () => {
    const points: AnalyticsEngineDataPoint[] = [];
    const METRICS = { writeDataPoint: (p?: AnalyticsEngineDataPoint) => void points.push(p!) } as AnalyticsEngineDataset;
    const form = new FormData();
    form.append("image", new File([await makePng(300, 300, { seed: `metrics-${Math.random()}` })], "p.png", { type: "image/png" }));
    const ctx = createExecutionContext();
    const app = createApp();
    await app.request(
      "/api/v1/plant-identification/identify/",
      { method: "POST", body: form, headers: { "CF-Connecting-IP": freshIp() } },
      { ...env, METRICS },
      ctx,
    );
    await app.request(`/api/v1/plant-identification/species/${crypto.randomUUID()}/`, {}, { ...env, METRICS }, ctx);
    await waitOnExecutionContext(ctx);
    const requests = points.filter((p) => p.blobs?.[0] === "request");
    expect(requests.map((p) => p.blobs?.slice(1, 4))).toEqual([
      ["POST", "/api/v1/plant-identification/identify", "200"],
      ["GET", "/api/v1/plant-identification/species/:id", "404"],
    ]);
    const providers = points.filter((p) => p.blobs?.[0] === "provider").map((p) => [p.blobs?.[1], p.blobs?.[2]]);
    expect(providers).toEqual(
      expect.arrayContaining([
        ["plant_id", "miss"],
        ["plantnet", "miss"],
      ]),
    );
    expect(requests[0]!.doubles![0]).toBeGreaterThanOrEqual(0);
  });
});

describe("cron housekeeping reports a failing task and runs the others", () => {
  it("a token purge that fails is reported with its task, and the stuck-request sweep still runs", async () => {
    await env.DB.batch([
      env.DB.prepare("INSERT INTO users (id, username, email) VALUES ('hk-report', 'hk_report', 'hk-report@example.com')"),
      env.DB.prepare(
        "INSERT INTO identification_requests (id, user_id, status, image_hashes, created_at, updated_at) VALUES ('hk-report-stuck', 'hk-report', 'processing', '[]', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z')",
      ),
    ]);
    // Every statement that touches revoked_tokens fails; the rest of D1 works.
    const real = env.DB;
    const tokensDown = new Proxy(real, {
      get(target, key) {
        if (key === "prepare") {
          return (query: string) => {
            if (query.includes("revoked_tokens")) throw new Error("revoked_tokens is unreachable");
            return target.prepare(query);
          };
        }
        const value = Reflect.get(target, key);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const ctx = createExecutionContext();
    const logger = createLogger({ test: "housekeeping" });
    await runHousekeeping({ ...env, DB: tokensDown, SENTRY_DSN: DSN }, logger, Date.now(), (p) => ctx.waitUntil(p));
    await waitOnExecutionContext(ctx);

    const stuck = await env.DB.prepare("SELECT status FROM identification_requests WHERE id = 'hk-report-stuck'").first<{
      status: string;
    }>();
    expect(stuck?.status).toBe("failed");
    expect(sentry.events).toHaveLength(1);
    expect(sentry.events[0]!.event).toMatchObject({
      tags: { cron: "housekeeping", task: "expired_tokens" },
      exception: { values: [{ value: "revoked_tokens is unreachable" }] },
    });
  });
});
