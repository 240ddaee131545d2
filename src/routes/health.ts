/**
 * GET /api/v1/health — liveness of every storage binding the service depends on, for load
 * balancers and for `npm start` to know the stack is up.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { getConfig } from "../config";
import { createRouter } from "./router";
import { checkDependencies, type DependencyName } from "../services/health";

const CheckState = z.enum(["ok", "error"]);

const HealthSchema = z
  .object({
    status: z.enum(["ok", "degraded"]),
    version: z.string(),
    checks: z.object({ d1: CheckState, kv: CheckState, r2: CheckState, queue: CheckState }),
    latency_ms: z.object({ d1: z.number(), kv: z.number(), r2: z.number(), queue: z.number() }),
  })
  .openapi("Health");

const healthRoute = createRoute({
  method: "get",
  path: "/health",
  tags: ["Operations"],
  summary: "Service health",
  responses: {
    200: { description: "All dependencies answer", content: { "application/json": { schema: HealthSchema } } },
    503: { description: "At least one dependency failed", content: { "application/json": { schema: HealthSchema } } },
  },
});

export function healthRoutes() {
  return createRouter().openapi(healthRoute, async (c) => {
    const results = await checkDependencies(c.env);
    const checks = Object.fromEntries(results.map((r) => [r.name, r.ok ? "ok" : "error"])) as Record<DependencyName, "ok" | "error">;
    const latency = Object.fromEntries(results.map((r) => [r.name, r.ms])) as Record<DependencyName, number>;
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
