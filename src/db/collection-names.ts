/**
 * How a collection's name is written: always with its key (`name_key` = textKey(name)), which the
 * UNIQUE index of migrations/0060 holds per user, so of two writes at once giving one name in two
 * spellings ("Küche", "KÜCHE") the database refuses the second (a UNIQUE violation, which the
 * service answers as its 409). Rows from before that migration are keyed here too
 * (`keyUnkeyedCollections`): SQLite cannot compute the key.
 */
import { and, eq, isNull, sql } from "drizzle-orm";
import { textKey } from "../lib/text";
import { type Database, runBatch } from "./client";
import { collections } from "./schema";

/** The columns a write of `name` sets: the name and its key. */
export function collectionName(name: string): { name: string; nameKey: string } {
  return { name, nameKey: textKey(name) };
}

/**
 * Keys the given collections of one user that have no key yet, oldest first. Two names made before
 * the rule that clash under it: the older gets the key, the other none (until it is renamed), so
 * neither breaks this pass nor is locked from editing. `rows` must be all of the user's
 * collections (the owner's names are what a key may clash with); `skip` is left alone (a row about
 * to be renamed). A key another write took meanwhile is left unwritten (OR IGNORE).
 */
export async function keyUnkeyedCollections(
  db: Database,
  rows: readonly { id: string; name: string; nameKey: string | null; createdAt: string }[],
  skip?: string,
): Promise<void> {
  const held = new Set(rows.flatMap((row) => (row.nameKey === null ? [] : [row.nameKey])));
  const statements = [];
  const unkeyed = rows
    .filter((row) => row.nameKey === null && row.id !== skip)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  for (const row of unkeyed) {
    const key = textKey(row.name);
    if (held.has(key)) continue;
    held.add(key);
    statements.push(
      sql`UPDATE OR IGNORE ${collections} SET ${sql.identifier(collections.nameKey.name)} = ${key}
        WHERE ${and(eq(collections.id, row.id), isNull(collections.nameKey))}`,
    );
  }
  if (statements.length > 0) await runBatch(db, statements);
}
