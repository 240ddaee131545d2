/**
 * What caches may keep (security issue item 9). Runs around every request, outside the
 * authentication middleware, and only fills in Cache-Control where the route chose none:
 *
 * - answers of the auth endpoints (tokens, session and CSRF cookies, tickets) and any answer
 *   that sets a cookie: `Cache-Control: no-store` plus `Pragma: no-cache` (RFC 6749 §5.1), for
 *   failures too;
 * - every answer to a request that presented credentials (a bearer header or the access
 *   cookie, valid or not, as the auth middleware found them): `Cache-Control: private,
 *   no-store`, errors included — what one user sees must never be served to another by a
 *   shared cache or kept on a shared device;
 * - anonymous answers keep whatever the route set (e.g. `public, max-age=60` on the catalogue).
 *
 * A WebSocket upgrade (101) is left alone: its headers are immutable and it is never cached.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";

const AUTH_PATH = /^\/api\/v1\/auth(\/|$)/;

export const AUTHENTICATED_CACHE_CONTROL = "private, no-store";
export const TOKEN_CACHE_CONTROL = "no-store";

export const cacheControl: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const res = c.res;
  if (res.status === 101 || res.webSocket) return;
  const headers = res.headers;
  const carriesSecrets = AUTH_PATH.test(c.req.path) || headers.has("Set-Cookie");
  const authenticated = presentedCredentials(c);
  if (!headers.has("Cache-Control")) {
    if (authenticated) headers.set("Cache-Control", AUTHENTICATED_CACHE_CONTROL);
    else if (carriesSecrets) headers.set("Cache-Control", TOKEN_CACHE_CONTROL);
  }
  // HTTP/1.0 caches know only Pragma; RFC 6749 §5.1 asks for both on token responses.
  if (carriesSecrets && !headers.has("Pragma")) headers.set("Pragma", "no-cache");
};

/**
 * The auth middleware's verdict (a user, or refused credentials). Answers given before it ran
 * (413, the edge 429) carry nothing of the user's; a bearer header still marks them private.
 */
export function presentedCredentials(c: Context<AppEnv>): boolean {
  return c.get("user") !== undefined || c.get("authError") !== undefined || c.req.header("Authorization") !== undefined;
}

/** Whether an If-None-Match header names this strong ETag (or `*`). */
export function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch || !etag) return false;
  return ifNoneMatch.split(",").some((t) => {
    const tag = t.trim().replace(/^W\//, "");
    return tag === "*" || tag === etag;
  });
}
