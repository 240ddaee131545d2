/**
 * Deleting a user makes SQLite find every row that points at it, in each table with a foreign key
 * to users (to cascade it, set it null, or refuse). Without an index that starts with the
 * column, that is a walk of the whole table per deleted account, read and billed by D1 as every
 * row. The account export pages the same columns. Every such column is the first of an index.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { userForeignKeys } from "../helpers/user-keys";

describe("foreign keys to users", () => {
  it("each column that points at a user leads an index, so deleting a user seeks its rows instead of walking the tables", async () => {
    const keys = await userForeignKeys();
    const unindexed: string[] = [];
    for (const table of new Set(keys.map((k) => k.table))) {
      const indexes = (await env.DB.prepare("SELECT name FROM pragma_index_list(?)").bind(table).all<{ name: string }>()).results;
      const leading = new Set<string>();
      for (const { name } of indexes) {
        const first = await env.DB.prepare("SELECT name FROM pragma_index_info(?) WHERE seqno = 0").bind(name).first<{ name: string }>();
        if (first) leading.add(first.name);
      }
      for (const key of keys) if (key.table === table && !leading.has(key.column)) unindexed.push(`${table}.${key.column}`);
    }
    expect(keys.length).toBeGreaterThan(20);
    expect(unindexed).toEqual([]);
  });
});
