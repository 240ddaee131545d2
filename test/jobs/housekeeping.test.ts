import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import worker from "../../src/index";

describe("cron housekeeping", () => {
  it("fails identification and disease requests stuck in processing and purges expired tokens", async () => {
    // The stuck rows were created (not only last touched) in 2020: too old to re-queue, so the
    // sweep fails them (re-queuing lost jobs is covered in stuck-requests.test.ts).
    await env.DB.batch([
      env.DB.prepare("INSERT INTO users (id, username, email) VALUES ('hk-user', 'housekeeper', 'hk@example.com')"),
      env.DB.prepare(
        "INSERT INTO identification_requests (id, user_id, status, image_hashes, created_at, updated_at) VALUES ('stuck', 'hk-user', 'processing', '[]', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z')",
      ),
      env.DB.prepare(
        "INSERT INTO identification_requests (id, user_id, status, image_hashes) VALUES ('fresh', 'hk-user', 'processing', '[]')",
      ),
      env.DB.prepare("INSERT INTO revoked_tokens (jti, expires_at) VALUES ('old', 1), ('new', 9999999999)"),
      env.DB.prepare(
        `INSERT INTO disease_requests (id, user_id, status, image_hashes, symptoms_description, created_at, updated_at)
         VALUES ('stuck-diagnosis', 'hk-user', 'processing', '[]', 'yellow spots on leaves', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z'),
                ('fresh-diagnosis', 'hk-user', 'processing', '[]', 'yellow spots on leaves', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
                ('old-but-done', 'hk-user', 'identified', '[]', 'yellow spots on leaves', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z')`,
      ),
    ]);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: Date.now() }), env, ctx);
    await waitOnExecutionContext(ctx);
    const rows = await env.DB.prepare("SELECT id, status FROM identification_requests ORDER BY id").all<{ id: string; status: string }>();
    expect(rows.results).toEqual([
      { id: "fresh", status: "processing" },
      { id: "stuck", status: "failed" },
    ]);
    const diagnoses = await env.DB.prepare("SELECT id, status, error_message FROM disease_requests ORDER BY id").all<{
      id: string;
      status: string;
      error_message: string | null;
    }>();
    expect(diagnoses.results).toEqual([
      { id: "fresh-diagnosis", status: "processing", error_message: null },
      { id: "old-but-done", status: "identified", error_message: null },
      { id: "stuck-diagnosis", status: "failed", error_message: "Processing timed out. Please retry." },
    ]);
    // The owner's hub heard about it.
    const hub = env.USER_HUB.get(env.USER_HUB.idFromName("hk-user"));
    const { runInDurableObject } = await import("cloudflare:test");
    await runInDurableObject(hub, async (instance: import("../../durable-objects/user-hub").UserHub) => {
      expect(instance.lastState("stuck")).toMatchObject({ type: "completed", status: "failed" });
      expect(instance.lastState("stuck-diagnosis")).toMatchObject({ type: "completed", status: "failed" });
      expect(instance.lastState("fresh-diagnosis")).toBeNull();
    });
    const tokens = await env.DB.prepare("SELECT jti FROM revoked_tokens").all<{ jti: string }>();
    expect(tokens.results.map((t) => t.jti)).toEqual(["new"]);
  });
});

describe("health when a dependency fails", () => {
  it("answers 503 degraded naming the failing check", async () => {
    const brokenDb = { prepare: () => ({ first: () => Promise.reject(new Error("D1 down")) }) } as unknown as D1Database;
    const res = await createApp().request("/api/v1/health/", {}, { ...env, DB: brokenDb }, createExecutionContext());
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: "degraded", checks: { d1: "error", kv: "ok", r2: "ok" } });
  });
});
