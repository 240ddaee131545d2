/**
 * The edge cache of the blog's public reads (issue 9 item 6). Responses are kept in the Workers
 * Cache API (lib/edge-cache.ts) under a key that folds in a generation number (one D1 row,
 * blog_cache_state), and
 * `purgeBlogReads` — run with every change readers can see: publish (also by the scheduler),
 * an edit of a published post, unpublish, delete (in the change's own D1 batch, as
 * `purgeBlogReadsStatement`), a new category or series, category/series edits and deletes, and comment-count changes — bumps it. The Cache API's own delete reaches one data centre and one URL; a new generation
 * makes every variant everywhere unreachable at once (old entries expire by their TTL).
 *
 * Each entry stores the body and its strong ETag (a SHA-256 of the body), so a hit answers 304
 * to a matching If-None-Match without rebuilding anything.
 */
import { eq, type SQL, sql } from "drizzle-orm";
import { database } from "../db/client";
import { blogCacheState } from "../db/schema";
import type { Bindings } from "../env";
import { type CachedBody, readThrough, versionedKey } from "../lib/edge-cache";

export interface BlogChange {
  /** Posts whose public shape changed (may be empty for category or series edits). */
  postIds: string[];
  /** Their slugs, before and after the change (a renamed slug purges both). */
  slugs: string[];
}

/** How long the edge keeps an entry (a purge makes it unreachable sooner). */
export const EDGE_TTL_S = 3600;
/** What clients and shared caches may reuse without asking (short: a purge cannot reach them). */
export const CLIENT_CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=60";

export async function cacheGeneration(env: Bindings): Promise<number> {
  const row = await database(env).select({ version: blogCacheState.version }).from(blogCacheState).where(eq(blogCacheState.id, 1)).get();
  return row?.version ?? 1;
}

/** Makes every cached public blog read unreachable (see the module comment). */
export async function purgeBlogReads(env: Bindings, _change: BlogChange): Promise<void> {
  await database(env).run(purgeBlogReadsStatement());
}

/**
 * The purge as a statement for the batch that makes the change, so the change and the purge
 * land together or not at all (a purge that failed after an unpublish committed would leave the
 * post served from the edge for up to EDGE_TTL_S, and a retry finds nothing to do). `when`, a
 * condition evaluated in the batch (e.g. `changes() > 0` right after the change), limits it to
 * changes readers can see.
 */
export function purgeBlogReadsStatement(when: SQL = sql`1`): SQL {
  return sql`INSERT INTO ${blogCacheState} (id, version) SELECT 1, 2 WHERE ${when}
    ON CONFLICT (id) DO UPDATE SET version = ${blogCacheState}.version + 1`;
}

/**
 * The cached answer for `key` (a path and normalised query), or `build`'s, stored for next time.
 * Only for public data: nothing user-specific may reach `build`.
 */
export async function cachedPublicRead(
  env: Bindings,
  key: string,
  contentType: string,
  build: () => Promise<string>,
  /** The client asked for a fresh answer (`Cache-Control: no-cache`): build it, and store it for others. */
  fresh = false,
): Promise<CachedBody> {
  const url = `https://blog-cache.internal${versionedKey(env, `/g${await cacheGeneration(env)}${key}`)}`;
  return readThrough(url, contentType, build, {
    ttlSeconds: EDGE_TTL_S,
    fresh,
  });
}
