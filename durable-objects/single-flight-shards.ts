/**
 * Which SingleFlight object a provider cache key's flights meet in. Kept apart from the class
 * (which needs the Workers runtime) so the Worker's routing code also loads under Node, for
 * the OpenAPI and AsyncAPI checks.
 */

/** Shards per region. Each miss makes two calls to its key's shard (join, settle). */
export const FLIGHT_SHARDS = 64;

/**
 * The object a cache key's flights meet in: `flight:<region>:<shard>`, the shard from an FNV-1a
 * hash of the key. `region` is the caller's continent when it is known (so a shard lives near the
 * callers it serves); callers without one (queue consumers) share the "any" shards. Two identical
 * uploads from different regions at the same moment may then make two upstream calls: both get
 * the same answer, and the cache is written twice.
 */
export function flightShardName(cacheKey: string, region?: string | null, shards = FLIGHT_SHARDS): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < cacheKey.length; i++) {
    hash ^= cacheKey.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  const where = region && /^[A-Za-z]{2}$/.test(region) ? region.toUpperCase() : "any";
  return `flight:${where}:${(hash >>> 0) % shards}`;
}
