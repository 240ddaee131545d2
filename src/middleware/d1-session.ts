/**
 * Every request runs in one D1 session (services/db-sessions.ts has the rules), so D1 may answer
 * its reads from a replica near the caller while the request still sees one consistent, ordered
 * history. This is its HTTP side: the client's bookmark comes in `x-d1-bookmark`, or the web's
 * bookmark cookie; every answer carries the session's bookmark in `x-d1-bookmark` (an answer
 * that ran no query: the client's own, or none, as D1 has no bookmark before a query), and a
 * cookie-signed-in browser also gets it in an HttpOnly cookie whenever it moves, so the web app
 * needs no code for this (not on a `public` answer, which a shared cache may keep). Only
 * anonymous reads start from a bookmark: a request with credentials
 * starts at the primary, so its credential check sees every revocation. Queue consumers and cron
 * tasks keep the plain binding: the primary.
 */
import type { MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { accessCookieName } from "../lib/session-cookies";
import { openRequestSession } from "../services/db-sessions";

export const BOOKMARK_HEADER = "x-d1-bookmark";
/** How long the web's cookie keeps a bookmark (replicas catch up in well under this). */
const COOKIE_MAX_AGE_S = 3600;

export function bookmarkCookieName(config: { isLocal: boolean }): string {
  return config.isLocal ? "d1_bookmark" : "__Host-d1_bookmark";
}

export const d1Session: MiddlewareHandler<AppEnv> = async (c, next) => {
  const config = getConfig(c.env);
  const cookieName = bookmarkCookieName(config);
  const sent = c.req.header(BOOKMARK_HEADER) ?? getCookie(c, cookieName);
  const webSession = getCookie(c, accessCookieName(config)) !== undefined;
  const session = openRequestSession(c.env, {
    method: c.req.method,
    bookmark: sent,
    // A WebSocket's single-use ticket is a credential too (it travels in the query).
    hasCredentials: webSession || c.req.header("Authorization") !== undefined || c.req.query("ticket") !== undefined,
  });
  c.env = session.env;
  await next();
  // A WebSocket upgrade's 101 has immutable headers (and its own lifetime).
  if (c.res.status === 101 || c.res.webSocket) return;
  const bookmark = session.bookmark();
  if (!bookmark) return;
  c.res.headers.set(BOOKMARK_HEADER, bookmark);
  // Never a cookie on an answer any cache may keep and hand to others (a public read's); such a
  // read wrote nothing the browser must see again.
  const shared = /(^|[\s,])public([\s,]|$)/i.test(c.res.headers.get("Cache-Control") ?? "");
  if (webSession && bookmark !== sent && !shared) {
    setCookie(c, cookieName, bookmark, { path: "/", httpOnly: true, sameSite: "Lax", secure: !config.isLocal, maxAge: COOKIE_MAX_AGE_S });
  }
};
