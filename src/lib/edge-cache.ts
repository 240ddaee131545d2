/**
 * Read-through over the Workers Cache API for public answers. Entries are addressed by an
 * internal URL that the caller versions (a generation number in the path), so "purging" is
 * moving to a new generation: the Cache API's own delete reaches one data centre and one URL,
 * a new generation makes every variant everywhere unreachable at once (old entries expire by
 * their TTL). The URL also folds in the running Worker version (`versionedKey`), so entries made by
 * an earlier deploy, whose answers may have another shape, are never served by a later one.
 *
 * Each entry stores the body and its strong ETag (a SHA-256 of the body), so a hit answers a
 * matching If-None-Match with 304 without rebuilding anything.
 */
import { sha256Hex } from "./hash";

export interface CachedBody {
  body: string;
  etag: string;
  contentType: string;
  hit: boolean;
}

/**
 * `path` under the running Worker version's id (the version-metadata binding: a new id on every
 * deploy, and on every `wrangler dev` start). Two versions live side by side in a gradual
 * deployment each keep their own entries.
 */
export function versionedKey(env: { CF_VERSION_METADATA: WorkerVersionMetadata }, path: string): string {
  return `/v/${encodeURIComponent(env.CF_VERSION_METADATA.id)}${path}`;
}

/** The strong ETag of a body: the first 40 hex digits of its SHA-256, quoted. */
export async function strongEtag(body: string): Promise<string> {
  return `"${(await sha256Hex(body)).slice(0, 40)}"`;
}

/**
 * The entry at `url`, or `build`'s answer, stored there for `ttlSeconds`. Only for public data:
 * nothing user-specific may reach `build`. `fresh` (a client's `no-cache`) skips the lookup and
 * stores the new answer for the next reader.
 */
export async function readThrough(
  url: string,
  contentType: string,
  build: () => Promise<string>,
  options: { ttlSeconds: number; fresh?: boolean },
): Promise<CachedBody> {
  const cache = caches.default;
  const request = new Request(url);
  // A cache that fails to answer is a miss: public reads must not depend on it.
  const hit = options.fresh ? undefined : await cache.match(request).catch(() => undefined);
  if (hit) return { body: await hit.text(), etag: hit.headers.get("ETag") ?? "", contentType, hit: true };
  const body = await build();
  const etag = await strongEtag(body);
  const store = cache.put(
    request,
    new Response(body, { headers: { "Content-Type": contentType, ETag: etag, "Cache-Control": `public, max-age=${options.ttlSeconds}` } }),
  );
  // Awaited (a local write, ~1 ms, on misses only): the next read is then a hit for certain.
  // A failed store only costs the next reader a rebuild.
  await store.catch(() => {});
  return { body, etag, contentType, hit: false };
}
