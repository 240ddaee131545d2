/**
 * GET /api/v1/health — liveness of every storage binding the service depends on, for load
 * balancers and for `npm start` to know the stack is up.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { getConfig } from "../config";
import type { AppEnv, Bindings } from "../env";

const CheckState = z.enum(["ok", "error"]);

const HealthSchema = z
  .object({
    status: z.enum(["ok", "degraded"]),
    version: z.string(),
    checks: z.object({ d1: CheckState, kv: CheckState, r2: CheckState, queue: CheckState }),
    latency_ms: z.object({ d1: z.number(), kv: z.number(), r2: z.number(), queue: z.number() }),
  })
  .openapi("Health");

type CheckName = "d1" | "kv" | "r2" | "queue";

const CHECK_TIMEOUT_MS = 2000;

const probes: Record<CheckName, (env: Bindings) => Promise<unknown>> = {
  d1: (env) => env.DB.prepare("SELECT 1 AS ok").first(),
  kv: (env) => env.CACHE.get("health:probe"),
  r2: (env) => env.IMAGES.head("health/probe"),
  // A producer binding cannot be probed without enqueueing; its presence is what can fail.
  queue: async (env) => {
    if (typeof env.IDENTIFY_QUEUE?.send !== "function") throw new Error("queue binding missing");
  },
};

async function runCheck(env: Bindings, name: CheckName): Promise<{ ok: boolean; ms: number }> {
  const started = Date.now();
  try {
    await Promise.race([probes[name](env), new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), CHECK_TIMEOUT_MS))]);
    return { ok: true, ms: Date.now() - started };
  } catch {
    return { ok: false, ms: Date.now() - started };
  }
}

const healthRoute = createRoute({
  method: "get",
  path: "/api/v1/health",
  tags: ["Operations"],
  summary: "Service health",
  responses: {
    200: { description: "All dependencies answer", content: { "application/json": { schema: HealthSchema } } },
    503: { description: "At least one dependency failed", content: { "application/json": { schema: HealthSchema } } },
  },
});

export function healthRoutes() {
  return new OpenAPIHono<AppEnv>({ strict: false }).openapi(healthRoute, async (c) => {
    const names: CheckName[] = ["d1", "kv", "r2", "queue"];
    const results = await Promise.all(names.map((n) => runCheck(c.env, n)));
    const checks = Object.fromEntries(names.map((n, i) => [n, results[i]!.ok ? "ok" : "error"])) as Record<CheckName, "ok" | "error">;
    const latency = Object.fromEntries(names.map((n, i) => [n, results[i]!.ms])) as Record<CheckName, number>;
    const healthy = results.every((r) => r.ok);
    const body = {
      status: healthy ? ("ok" as const) : ("degraded" as const),
      version: getConfig(c.env).APP_VERSION,
      checks,
      latency_ms: latency,
    };
    c.header("Cache-Control", "no-store");
    return healthy ? c.json(body, 200) : c.json(body, 503);
  });
}
