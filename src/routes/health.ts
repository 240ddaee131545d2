/**
 * GET /api/v1/health — liveness of every storage binding the service depends on, for load
 * balancers and for `npm start` to know the stack is up.
 */
import { z } from "@hono/zod-openapi";
import { getConfig } from "../config";
import { createRouter, routeSet } from "./router";
import { jsonBody } from "./schemas";
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

const healthRoute = routeSet({ tags: ["Operations"], errors: {} })
  .get("/health", "Service health")
  .io({}, { 200: jsonBody(HealthSchema, "All dependencies answer"), 503: jsonBody(HealthSchema, "At least one dependency failed") });

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
