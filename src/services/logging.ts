/** Loggers as the deployment configures them (lib/logger writes the lines). */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { createLogger, type Logger } from "../lib/logger";

/**
 * A logger at the configured LOG_LEVEL. Every entry point (requests, queue consumers, the cron,
 * the email handler) and the services' fallbacks take theirs from here, so LOG_LEVEL governs them all.
 */
export function loggerFor(env: Bindings, base: Record<string, unknown> = {}): Logger {
  return createLogger(base, getConfig(env).LOG_LEVEL);
}
