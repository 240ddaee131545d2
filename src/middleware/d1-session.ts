/**
 * Every request runs in one D1 session (the Sessions API; issue 13 item 2, API.md §5d), so D1 may
 * answer its reads from a replica near the caller while the request still sees one consistent,
 * ordered history:
 *
 * - a client that sends a bookmark (`x-d1-bookmark`, or the web's bookmark cookie) starts from
 *   it, so it reads its own writes from any replica;
 * - an anonymous read (GET/HEAD without credentials) may start on any replica
 *   (`first-unconstrained`): public data a few moments old is fine;
 * - everything else — writes, and signed-in reads, which must see the caller's own state even
 *   when the client keeps no bookmark — starts on the primary (`first-primary`).
 *
 * Every response carries the session's bookmark in `x-d1-bookmark`. A cookie-signed-in browser
 * also gets it in an HttpOnly cookie whenever it moves, so the web app needs no code for this.
 * Queue consumers and cron tasks keep the plain binding: they run on the primary.
 */
import type { Context, MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { deriveEnv, getConfig } from "../config";
import { openSession } from "../db/client";
import type { AppEnv } from "../env";
import { ACCESS_COOKIE } from "../lib/session-cookies";

export const BOOKMARK_HEADER = "x-d1-bookmark";
/** A D1 bookmark: four hex groups. Anything else is ignored, never passed to D1. */
const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;
const READS = new Set(["GET", "HEAD"]);
/** How long the web's cookie keeps a bookmark (replicas catch up in well under this). */
const COOKIE_MAX_AGE_S = 3600;

export function bookmarkCookieName(config: { isLocal: boolean }): string {
  return config.isLocal ? "d1_bookmark" : "__Host-d1_bookmark";
}

/** The session's starting point for this request (exported for the tests' table). */
export function sessionConstraint(method: string, bookmark: string | undefined, hasCredentials: boolean): string {
  if (bookmark && BOOKMARK.test(bookmark)) return bookmark;
  return READS.has(method) && !hasCredentials ? "first-unconstrained" : "first-primary";
}

export const d1Session: MiddlewareHandler<AppEnv> = async (c, next) => {
  const config = getConfig(c.env);
  const cookieName = bookmarkCookieName(config);
  const sent = c.req.header(BOOKMARK_HEADER) ?? getCookie(c, cookieName);
  const webSession = getCookie(c, ACCESS_COOKIE) !== undefined;
  const constraint = sessionConstraint(c.req.method, sent, webSession || c.req.header("Authorization") !== undefined);
  const { db, session } = openSession(c.env.DB, constraint);
  c.env = deriveEnv(c.env, { DB: db });
  await next();
  // A WebSocket upgrade's 101 has immutable headers (and its own lifetime).
  if (c.res.status === 101 || c.res.webSocket) return;
  const bookmark = session?.getBookmark() ?? (sent && BOOKMARK.test(sent) ? sent : null);
  if (!bookmark) return;
  c.res.headers.set(BOOKMARK_HEADER, bookmark);
  if (webSession && bookmark !== sent) setBookmarkCookie(c, cookieName, bookmark, config);
};

function setBookmarkCookie(c: Context<AppEnv>, name: string, bookmark: string, config: ReturnType<typeof getConfig>) {
  setCookie(c, name, bookmark, {
    path: "/",
    httpOnly: true,
    sameSite: "Lax",
    secure: !config.isLocal,
    maxAge: COOKIE_MAX_AGE_S,
  });
}
