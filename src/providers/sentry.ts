/**
 * Error reporting to Sentry (API.md §6) through its envelope endpoint, with plain fetch:
 * `POST https://<host>/api/<project>/envelope/` authenticated by the DSN's public key. Reports
 * are best effort — sent after the response (waitUntil), short timeout, failures only logged.
 */
export interface SentryTarget {
  url: string;
  auth: string;
  dsn: string;
}

/** `https://<publicKey>@<host>[:port]/<projectId>` → where and how to send; null if unusable. */
export function parseSentryDsn(dsn: string): SentryTarget | null {
  if (!dsn) return null;
  let url: URL;
  try {
    url = new URL(dsn);
  } catch {
    return null;
  }
  const projectId = url.pathname.replace(/^\/+|\/+$/g, "");
  if (!url.username || !projectId || !/^\d+$/.test(projectId.split("/").pop()!)) return null;
  const prefix = projectId.includes("/") ? `/${projectId.slice(0, projectId.lastIndexOf("/"))}` : "";
  const project = projectId.split("/").pop()!;
  return {
    url: `${url.protocol}//${url.host}${prefix}/api/${project}/envelope/`,
    auth: `Sentry sentry_version=7, sentry_key=${url.username}, sentry_client=plant-community/1.0`,
    dsn,
  };
}

export interface ErrorReport {
  error: unknown;
  requestId?: string;
  environment: string;
  release: string;
  tags?: Record<string, string>;
  request?: { method: string; url: string };
}

function stackFrames(stack: string | undefined) {
  return (stack ?? "")
    .split("\n")
    .slice(1, 50)
    .map((line) => {
      const m = /at (?:(.+?) \()?(.+?):(\d+):(\d+)\)?$/.exec(line.trim());
      return m ? { function: m[1] ?? "?", filename: m[2], lineno: Number(m[3]), colno: Number(m[4]) } : null;
    })
    .filter((f) => f !== null)
    .reverse(); // Sentry wants the innermost frame last
}

export function sentryEnvelope(target: SentryTarget, report: ErrorReport, now = new Date()): string {
  const eventId = crypto.randomUUID().replaceAll("-", "");
  const err = report.error instanceof Error ? report.error : new Error(String(report.error));
  const event = {
    event_id: eventId,
    timestamp: now.getTime() / 1000,
    platform: "javascript",
    level: "error",
    environment: report.environment,
    release: report.release,
    tags: { ...(report.requestId ? { request_id: report.requestId } : {}), ...report.tags },
    ...(report.request ? { request: report.request } : {}),
    exception: { values: [{ type: err.name, value: err.message, stacktrace: { frames: stackFrames(err.stack) } }] },
  };
  return [
    JSON.stringify({ event_id: eventId, dsn: target.dsn, sent_at: now.toISOString() }),
    JSON.stringify({ type: "event" }),
    JSON.stringify(event),
  ].join("\n");
}

export async function reportToSentry(dsn: string, report: ErrorReport): Promise<boolean> {
  const target = parseSentryDsn(dsn);
  if (!target) return false;
  try {
    const res = await fetch(target.url, {
      method: "POST",
      headers: { "Content-Type": "application/x-sentry-envelope", "X-Sentry-Auth": target.auth },
      body: sentryEnvelope(target, report),
      signal: AbortSignal.timeout(5000),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}
