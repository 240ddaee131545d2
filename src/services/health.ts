/**
 * Liveness of every storage binding the service depends on (GET /api/v1/health): one cheap
 * probe each, under a deadline, for load balancers and for `npm start` to know the stack is up.
 */
import { sql } from "drizzle-orm";
import { database } from "../db/client";
import type { Bindings } from "../env";
import { withinDeadline } from "../lib/deadline";

export type DependencyName = "d1" | "kv" | "r2" | "queue";
export const DEPENDENCIES: readonly DependencyName[] = ["d1", "kv", "r2", "queue"];

const CHECK_TIMEOUT_MS = 2000;

const probes: Record<DependencyName, (env: Bindings) => Promise<unknown>> = {
  // The cheapest statement D1 can answer: SQL is the point.
  d1: (env) => database(env).get(sql`SELECT 1 AS ok`),
  kv: (env) => env.CACHE.get("health:probe"),
  r2: (env) => env.IMAGES.head("health/probe"),
  // A producer binding cannot be probed without enqueueing; its presence is what can fail.
  queue: async (env) => {
    if (typeof env.IDENTIFY_QUEUE?.send !== "function") throw new Error("queue binding missing");
  },
};

export interface DependencyCheck {
  name: DependencyName;
  ok: boolean;
  ms: number;
}

async function runCheck(env: Bindings, name: DependencyName): Promise<DependencyCheck> {
  const started = Date.now();
  try {
    await withinDeadline(probes[name](env), CHECK_TIMEOUT_MS, name);
    return { name, ok: true, ms: Date.now() - started };
  } catch {
    return { name, ok: false, ms: Date.now() - started };
  }
}

/** Every dependency probed at once. */
export function checkDependencies(env: Bindings): Promise<DependencyCheck[]> {
  return Promise.all(DEPENDENCIES.map((n) => runCheck(env, n)));
}
