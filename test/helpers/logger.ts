/** A logger for tests that keeps its warnings, to assert what a service said went wrong. */
import type { Logger } from "../../src/lib/logger";

export function recordingLogger() {
  const warnings: { msg: string; fields?: Record<string, unknown> }[] = [];
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (msg, fields) => warnings.push({ msg, fields }),
    error: () => {},
    child: () => logger,
  };
  return { logger, warnings };
}
