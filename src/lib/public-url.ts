/**
 * Absolute URLs the API hands out (pagination links, the OpenAPI server, OAuth redirect URIs)
 * are built on the configured PUBLIC_API_URL, never on the Host header: a client, a misrouted
 * proxy or a poisoned cache key must not be able to make the API point people elsewhere.
 */
import type { MiddlewareHandler } from "hono";
import { getConfig } from "../config";
import type { AppEnv } from "../env";

/**
 * Rebases the request onto PUBLIC_API_URL before anything reads it, so `c.req.url` — which
 * routes pass to `pageOf` for pagination links — carries our origin with the client's path
 * and query. Routing, headers, body and `cf` are unchanged.
 */
export const canonicalRequestUrl: MiddlewareHandler<AppEnv> = async (c, next) => {
  const base = getConfig(c.env).PUBLIC_API_URL;
  const url = new URL(c.req.url);
  if (url.origin !== base) c.req.raw = new Request(`${base}${url.pathname}${url.search}`, c.req.raw);
  await next();
};
