/**
 * Structured JSON logs: one object per line so Workers Logs / Logpush can filter by field.
 * Every line carries the request id that is also returned in X-Request-ID and error bodies.
 */
import { reportableError } from "./errors";
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(base: Record<string, unknown> = {}, minLevel: LogLevel = "info"): Logger {
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LEVEL_ORDER[level] < LEVEL_ORDER[minLevel]) return;
    const line = JSON.stringify({ level, msg, time: new Date().toISOString(), ...base, ...fields });
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  };
  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    child: (fields) => createLogger({ ...base, ...fields }, minLevel),
  };
}

/** Serialises an unknown thrown value for a log line without leaking it to clients. */
export function describeError(error: unknown): Record<string, unknown> {
  const err = reportableError(error);
  if (err instanceof Error) return { error_name: err.name, error_message: err.message, stack: err.stack };
  return { error_message: String(err) };
}

/**
 * A request path fit for logs and error reports: a path segment that is itself a credential (a
 * calendar feed's signed token) is replaced, so whoever reads the logs cannot use it. Whatever
 * follows `/calendar-feed/`, not only the feed's own route: a URL mistyped after the token (the
 * file name left off, another one) answers 404 but carries the same working token — so also in
 * any case, after doubled slashes, and with percent-escapes read as the router reads them
 * (`calendar%2Dfeed` is the feed's own route; the error reporter is given the raw path), and
 * each time it appears (a feed URL pasted after another).
 */
export function loggablePath(path: string): string {
  const decoded = path.replace(/(?:%[0-9A-Fa-f]{2})+/g, (escapes) => {
    try {
      return decodeURIComponent(escapes);
    } catch {
      return escapes;
    }
  });
  return decoded.replace(/(\/calendar-feed\/+)[^/]+/gi, "$1[token]");
}
