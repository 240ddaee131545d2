/** Rows made straight in D1 up to the per-user caps (migration 0035), for the tests that meet them. */
import { env } from "cloudflare:workers";
import type { PER_USER_CAPS } from "../../src/lib/errors";

/** Rows of `table` for `userId` until it holds `n`, in one statement: collections "Shelf <i>", care cards "Ficus capped<i>". */
export async function fillTo(table: keyof typeof PER_USER_CAPS, userId: string, n: number) {
  const have = (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE user_id = ?`).bind(userId).first<{ n: number }>())!.n;
  const rows = `WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ${n - have})`;
  const collection = `(SELECT id FROM collections WHERE user_id = ?1 AND is_default = 1)`;
  const insert = {
    collections: `INSERT INTO collections (id, user_id, name) ${rows} SELECT lower(hex(randomblob(16))), ?1, 'Shelf ' || i FROM k`,
    user_plants: `INSERT INTO user_plants (id, user_id, collection_id) ${rows} SELECT lower(hex(randomblob(16))), ?1, ${collection} FROM k`,
    saved_care_instructions: `INSERT INTO saved_care_instructions (id, user_id, scientific_name) ${rows} SELECT lower(hex(randomblob(16))), ?1, 'Ficus capped' || i FROM k`,
  }[table];
  await env.DB.prepare(insert).bind(userId).run();
}
