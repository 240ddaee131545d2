// Security review finding, fixed — this test keeps it fixed. The finding: the access log kept a
// calendar feed's signed token out of the path it records only for the feed's own route,
// `/calendar-feed/<token>/plant-community.ics`. A URL mistyped after the token (the file name left
// off, or another one) answers 404 but carries the same working token, and it went into the log
// as it was: anyone reading the logs could read that calendar until its owner revoked the URL.
// The trailing-slash spelling, which the router serves, held already; it is attacked here too.
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createSentryEmulator } from "../../emulators/sentry";
import { createApp } from "../../src/app";
import { BASE, call, freshIp, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

const outbound = useEmulators();

/** Requests `path` with the access log on (the tests run at warn), and answers the lines logged. */
async function loggedFetch(path: string): Promise<{ status: number; lines: string[]; response: Response }> {
  const worker = (await import("../../src/index")).default as ExportedHandler<typeof env>;
  const logged = vi.spyOn(console, "log").mockImplementation(() => {});
  const ctx = createExecutionContext();
  const response = await worker.fetch!(
    new Request(`${BASE}${path}`, { headers: { "CF-Connecting-IP": "203.0.113.77" } }) as Request<unknown, IncomingRequestCfProperties>,
    { ...env, LOG_LEVEL: "info" },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  const lines = logged.mock.calls.map((args) => String(args[0]));
  return { status: response.status, lines, response };
}

afterEach(() => vi.restoreAllMocks());

async function feedToken(): Promise<{ url: string; token: string }> {
  const u = await bearerUser();
  const { url } = await json<{ url: string }>(await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: u.access }), 201);
  return { url, token: /calendar-feed\/([^/]+)\//.exec(url)![1]! };
}

describe("a calendar feed's token stays out of the logs", () => {
  it("fetched as issued: served, and the access line names the route, not the token", async () => {
    const { url, token } = await feedToken();
    const { status, lines, response } = await loggedFetch(new URL(url).pathname);
    expect(status).toBe(200);
    expect(response.headers.get("Referrer-Policy")).toBe("no-referrer");
    expect(lines.some((l) => l.includes('"msg":"request"') && l.includes("calendar-feed/[token]/plant-community.ics"))).toBe(true);
    expect(lines.filter((l) => l.includes(token))).toEqual([]);
  });

  it("fetched with a trailing slash: the router serves it just the same, and the log still hides the token", async () => {
    const { url, token } = await feedToken();
    const { status, lines } = await loggedFetch(`${new URL(url).pathname}/`);
    expect(status).toBe(200);
    expect(lines.some((l) => l.includes('"msg":"request"'))).toBe(true);
    expect(lines.filter((l) => l.includes(token))).toEqual([]);
  });

  it("a token under a path the router does not know (a mistyped file name, the file left off) is not logged either", async () => {
    const { url, token } = await feedToken();
    const base = new URL(url).pathname.replace(/\/plant-community\.ics$/, "");
    for (const path of [base, `${base}/`, `${base}/calendar.ics`]) {
      const { status, lines } = await loggedFetch(path);
      expect(status, path).toBe(404);
      expect(
        lines.filter((l) => l.includes(token)),
        path,
      ).toEqual([]);
    }
  });
});

// Review helper-139: the router decodes percent-escapes before it matches (`calendar%2Dfeed` is the
// feed's own route and serves it) and the error reporter records the raw path, so a failure there
// sent the working token to Sentry; a path's letters in another case (a 404, as a mistyped file
// name is) carried it into the access log.
describe("another spelling of the feed's path does not carry its token into a log or report", () => {
  it("percent-escaped letters: the router serves the feed, and a failure there reports no token", async () => {
    const { url, token } = await feedToken();
    const escaped = new URL(url).pathname.replace("/calendar-feed/", "/calendar%2Dfeed/").replace("/reminders/", "/%72eminders/");
    const served = await loggedFetch(escaped);
    expect(served.status).toBe(200);
    expect(served.lines.filter((l) => l.includes(token))).toEqual([]);

    const sentry = createSentryEmulator();
    outbound.overrides["sentry.emulator.test"] = (req) => sentry.handle(req);
    const failing = () => Promise.reject(new Error("D1 down"));
    const statement = { bind: () => statement, first: failing, all: failing, raw: failing, run: failing };
    const ctx = createExecutionContext();
    const res = await createApp().request(
      escaped,
      { headers: { "CF-Connecting-IP": freshIp() } },
      { ...env, DB: { prepare: () => statement, batch: failing, exec: failing }, SENTRY_DSN: "https://emulatorkey@sentry.emulator.test/1" },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(500);
    expect(sentry.events).toHaveLength(1);
    expect(JSON.stringify(sentry.events[0]!.event)).not.toContain(token);
  });

  it("the path's words in another case: a 404 whose access line holds no token", async () => {
    const { url, token } = await feedToken();
    for (const path of [
      new URL(url).pathname.replace("/calendar-feed/", "/Calendar-Feed/"),
      new URL(url).pathname.replace("/calendar-feed/", "/calendar-feed//"),
    ]) {
      const { status, lines } = await loggedFetch(path);
      expect(status, path).toBe(404);
      expect(lines.some((l) => l.includes('"msg":"request"'))).toBe(true);
      expect(
        lines.filter((l) => l.includes(token)),
        path,
      ).toEqual([]);
    }
  });
});
