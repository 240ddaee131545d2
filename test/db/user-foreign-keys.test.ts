/**
 * Deleting a user makes SQLite find every row that points at it, in each table with a foreign key
 * to users (to cascade it, set it null, or refuse). Without an index that starts with the
 * column, that is a walk of the whole table per deleted account, read and billed by D1 as every
 * row. The account export pages the same columns. Every such column is the first of an index.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("foreign keys to users", () => {
  it("each column that points at a user leads an index, so deleting a user seeks its rows instead of walking the tables", async () => {
    const tables = (
      await env.DB.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'",
      ).all<{
        name: string;
      }>()
    ).results.map((t) => t.name);
    const unindexed: string[] = [];
    let checked = 0;
    for (const table of tables) {
      const keys = (
        await env.DB.prepare(`SELECT "from", "table" FROM pragma_foreign_key_list(?)`).bind(table).all<{ from: string; table: string }>()
      ).results.filter((k) => k.table === "users");
      if (keys.length === 0) continue;
      const indexes = (await env.DB.prepare("SELECT name FROM pragma_index_list(?)").bind(table).all<{ name: string }>()).results;
      const leading = new Set<string>();
      for (const { name } of indexes) {
        const first = await env.DB.prepare("SELECT name FROM pragma_index_info(?) WHERE seqno = 0").bind(name).first<{ name: string }>();
        if (first) leading.add(first.name);
      }
      for (const key of keys) {
        checked++;
        if (!leading.has(key.from)) unindexed.push(`${table}.${key.from}`);
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(unindexed).toEqual([]);
  });
});
