/**
 * Unexpected errors go to Sentry when SENTRY_DSN is set (API.md §6), in the background
 * (`waitUntil`), so reporting never slows or breaks the request or job that failed. One reporter
 * for both: requests pass their id, method and path; queue jobs their queue and request id.
 */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { reportableError } from "../lib/errors";
import { reportToSentry } from "../providers/sentry";

export interface ErrorContext {
  requestId?: string;
  request?: { method: string; url: string };
  tags?: Record<string, string>;
}

export function reportError(
  env: Bindings,
  err: unknown,
  context: ErrorContext,
  waitUntil: ((p: Promise<unknown>) => void) | undefined,
): void {
  const config = getConfig(env);
  if (!config.SENTRY_DSN) return;
  const report = reportToSentry(config.SENTRY_DSN, {
    error: reportableError(err),
    environment: config.ENVIRONMENT,
    release: config.APP_VERSION,
    ...context,
  });
  // Without an execution context (app.request in a script) the report still runs, unawaited.
  waitUntil?.(report);
}
