/** Reporting an unexpected error of a request: the service reporter, given the request's context. */
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { loggablePath } from "../lib/logger";
import { reportError } from "../services/error-reporting";

export function reportRequestError(c: Context<AppEnv>, err: unknown): void {
  let waitUntil: ((p: Promise<unknown>) => void) | undefined;
  try {
    const ctx = c.executionCtx;
    waitUntil = (p) => ctx.waitUntil(p);
  } catch {
    waitUntil = undefined;
  }
  reportError(
    c.env,
    err,
    { requestId: c.get("requestId"), request: { method: c.req.method, url: loggablePath(new URL(c.req.url).pathname) } },
    waitUntil,
  );
}
