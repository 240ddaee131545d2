/**
 * HTTP around the edge caches of public reads (services/blog-cache.ts, services/public-cache.ts):
 * normalised cache keys, RFC 9111 request directives, strong ETags with 304s, and the headers a
 * cached answer carries — `Cache-Control` for browsers and shared caches, `X-Cache: HIT|MISS`, and
 * `Vary` when the answer depends on who asks.
 */
import type { Context } from "hono";
import type { AppEnv } from "../env";
import type { CachedBody } from "../lib/edge-cache";
import { matchesEtag } from "../lib/http-caching";
import { cachedAreaRead, type PublicArea } from "../services/public-cache";

/** The normalised cache key of a read: its path and the validated query, sorted. */
export function cacheKey(path: string, query: Record<string, unknown>): string {
  const params = Object.entries(query)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, String(v)] as [string, string])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${path}?${new URLSearchParams(params).toString()}`;
}

/**
 * The request's URL with only the validated query, sorted: what a cached answer may build its
 * links from. Built from the raw URL, a first reader's extra parameters would be baked into the
 * links every later reader gets (cache poisoning); the cache key ignores them, so must the body.
 */
export function canonicalReadUrl(c: Context<AppEnv>, query: Record<string, unknown>): string {
  const url = new URL(c.req.url);
  url.search = cacheKey("", query).slice(1);
  return url.toString();
}

/**
 * RFC 9111 §5.2.1.4: a request's `no-cache` asks for an answer not taken from a cache. A
 * conditional request is a revalidation already (and fetch() adds no-cache to every request
 * with If-None-Match), so it is answered from the edge cache's ETag.
 */
export function wantsFresh(c: Context<AppEnv>): boolean {
  return (
    !c.req.header("If-None-Match") && (/\bno-cache\b/i.test(c.req.header("Cache-Control") ?? "") || c.req.header("Pragma") === "no-cache")
  );
}

/**
 * Answers from `read` (given whether the client asked for a fresh answer): 304 when If-None-Match
 * names the entry's ETag, else the body. `vary` names request headers the answer depends on.
 */
export async function cachedAnswer(
  c: Context<AppEnv>,
  read: (fresh: boolean) => Promise<CachedBody>,
  cacheControl: string,
  vary?: string,
): Promise<Response> {
  const cached = await read(wantsFresh(c));
  const headers: Record<string, string> = { ETag: cached.etag, "Cache-Control": cacheControl, "X-Cache": cached.hit ? "HIT" : "MISS" };
  if (vary) headers.Vary = vary;
  if (matchesEtag(c.req.header("If-None-Match"), cached.etag)) return c.body(null, 304, headers);
  return c.body(cached.body, 200, { ...headers, "Content-Type": cached.contentType });
}

const JSON_TYPE = "application/json";
/** What browsers and shared caches may reuse without asking (short: a purge cannot reach them). */
export const PUBLIC_CACHE_CONTROL = "public, max-age=60";

/**
 * A JSON read of a public area through the edge cache: `build` runs on a miss only and must not
 * depend on the caller. `vary` as for cachedAnswer.
 */
export function cachedJson(
  c: Context<AppEnv>,
  area: PublicArea,
  key: string,
  build: () => Promise<unknown>,
  options: { cacheControl?: string; vary?: string } = {},
): Promise<Response> {
  return cachedAnswer(
    c,
    (fresh) => cachedAreaRead(c.env, area, key, JSON_TYPE, async () => JSON.stringify(await build()), fresh),
    options.cacheControl ?? PUBLIC_CACHE_CONTROL,
    options.vary,
  );
}

/** The OpenAPI entry of a cached read's 304. */
export const notModified = { 304: { description: "Not modified: If-None-Match named the answer's strong ETag" } } as const;
