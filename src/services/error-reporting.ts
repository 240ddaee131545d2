/**
 * Unexpected errors go to Sentry when SENTRY_DSN is set (API.md §6), after the response, so
 * reporting never slows or breaks the request that failed.
 */
import type { Context } from "hono";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { reportToSentry } from "../providers/sentry";

export function reportError(c: Context<AppEnv>, err: unknown): void {
  const config = getConfig(c.env);
  if (!config.SENTRY_DSN) return;
  const report = reportToSentry(config.SENTRY_DSN, {
    error: err,
    requestId: c.get("requestId"),
    environment: config.ENVIRONMENT,
    release: config.APP_VERSION,
    request: { method: c.req.method, url: new URL(c.req.url).pathname },
  });
  try {
    c.executionCtx.waitUntil(report);
  } catch {
    // No execution context (app.request in a script): the report still runs unawaited.
  }
}
