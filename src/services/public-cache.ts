/**
 * Edge caching of public reads beyond the blog (issue 13 item 3): the species catalogue and its
 * search, the disease database, and the forum as anonymous readers see it. Answers are kept in
 * the Workers Cache API (lib/edge-cache.ts) under their area's generation (one D1 row per area,
 * read in the request's D1 session — a replica is fine) and the running Worker version; `purgePublicReads` bumps it after a
 * change readers can see, so every cached variant goes at once, everywhere.
 *
 * What purges:
 * - species: a species added to the catalogue (a Trefle lookup, or a name an identification
 *   suggested for the first time), named by an English answer (first met in another language),
 *   filled in by an identification's Trefle enrichment, or changed;
 * - forum: every successful write through the forum API (routes/forum.ts);
 * - diseases: a disease confirmed for the first time.
 * Counters that move with every identification (identification_count, confirmed_count) do not
 * purge: they are at most `AREA_TTL_S` old.
 *
 * Only for answers that are the same for every caller: routes decide (the forum caches only
 * anonymous readers, whose answers carry no "my reactions").
 */
import { eq, type SQL, sql } from "drizzle-orm";
import { type Database, database } from "../db/client";
import { cacheGenerations } from "../db/schema";
import type { Bindings } from "../env";
import { type CachedBody, readThrough, versionedKey } from "../lib/edge-cache";

export type PublicArea = (typeof cacheGenerations.$inferSelect)["area"];

/** How long the edge keeps an entry, per area (a purge makes it unreachable sooner). */
export const AREA_TTL_S: Record<PublicArea, number> = { species: 300, diseases: 300, forum: 60 };

export async function areaGeneration(env: Pick<Bindings, "DB">, area: PublicArea): Promise<number> {
  const row = await database(env)
    .select({ version: cacheGenerations.version })
    .from(cacheGenerations)
    .where(eq(cacheGenerations.area, area))
    .get();
  return row?.version ?? 1;
}

/**
 * The statement that moves `area` to a new generation, for a write's own batch (atomic with it).
 * With `when`, only if it holds there (e.g. that an `INSERT … ON CONFLICT DO NOTHING` before it in
 * the batch added a row): a purge for a change readers can see, none for a write that changed nothing.
 */
export function purgeStatement(db: Database, area: PublicArea, when: SQL = sql`1`) {
  return db
    .insert(cacheGenerations)
    .select(sql`SELECT ${area}, 2 WHERE ${when}`)
    .onConflictDoUpdate({ target: cacheGenerations.area, set: { version: sql`${cacheGenerations.version} + 1` } });
}

/** Makes every cached read of `area` unreachable (see the module comment). */
export async function purgePublicReads(env: Pick<Bindings, "DB">, area: PublicArea): Promise<void> {
  await purgeStatement(database(env), area).run();
}

/** The cached answer of `area` for `key` (a path and normalised query), or `build`'s, stored for next time. */
export async function cachedAreaRead(
  env: Pick<Bindings, "DB" | "CF_VERSION_METADATA">,
  area: PublicArea,
  key: string,
  contentType: string,
  build: () => Promise<string>,
  fresh = false,
): Promise<CachedBody> {
  const url = `https://public-cache.internal${versionedKey(env, `/${area}/g${await areaGeneration(env, area)}${key}`)}`;
  return readThrough(url, contentType, build, { ttlSeconds: AREA_TTL_S[area], fresh });
}
