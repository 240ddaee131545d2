/** Rows made straight in D1 up to the per-user caps (migrations 0035, 0036), for the tests that meet them. */
import { env } from "cloudflare:workers";
import type { PER_USER_CAPS } from "../../src/lib/errors";

/** The column that names the account a row of each capped table counts against. */
export const capOwner = {
  collections: "user_id",
  user_plants: "user_id",
  saved_care_instructions: "user_id",
  calendar_events: "organizer_id",
} as const satisfies Record<keyof typeof PER_USER_CAPS, string>;

/**
 * Rows of `table` for `userId` until it holds `n`, in one statement: collections "Shelf <i>", care
 * cards "Ficus capped<i>", events tomorrow.
 */
export async function fillTo(table: keyof typeof PER_USER_CAPS, userId: string, n: number) {
  const have = (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${capOwner[table]} = ?`)
    .bind(userId)
    .first<{ n: number }>())!.n;
  const rows = `WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ${n - have})`;
  const collection = `(SELECT id FROM collections WHERE user_id = ?1 AND is_default = 1)`;
  const insert = {
    collections: `INSERT INTO collections (id, user_id, name) ${rows} SELECT lower(hex(randomblob(16))), ?1, 'Shelf ' || i FROM k`,
    user_plants: `INSERT INTO user_plants (id, user_id, collection_id) ${rows} SELECT lower(hex(randomblob(16))), ?1, ${collection} FROM k`,
    saved_care_instructions: `INSERT INTO saved_care_instructions (id, user_id, scientific_name) ${rows} SELECT lower(hex(randomblob(16))), ?1, 'Ficus capped' || i FROM k`,
    calendar_events: `INSERT INTO calendar_events (id, organizer_id, title, starts_at, ends_at) ${rows}
      SELECT lower(hex(randomblob(16))), ?1, 'Seed swap ' || i, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 day'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 day', '+1 hour') FROM k`,
  }[table];
  await env.DB.prepare(insert).bind(userId).run();
}
