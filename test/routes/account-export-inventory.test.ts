// The account export's inventory (services/account-export.ts EXPORTED_TABLES, NOT_EXPORTED_TABLES):
// every table that holds data about or by a user is either exported or excluded with a reason, so
// a table added later cannot be left out of the export unnoticed.
import { getTableConfig, SQLiteTable } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import * as schema from "../../src/db/schema";
import { EXPORTED_TABLES, NOT_EXPORTED_TABLES } from "../../src/services/account-export";

const tables = Object.values(schema as Record<string, unknown>)
  .filter((t): t is SQLiteTable => t instanceof SQLiteTable)
  .map((t) => getTableConfig(t));
const names = new Set(tables.map((t) => t.name));

/** `users` and every table with a foreign key to it, or to a table that has one (a plant's collection, a post's attachments). */
function linkedToUsers(): Set<string> {
  const linked = new Set(["users"]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const t of tables) {
      if (linked.has(t.name)) continue;
      if (t.foreignKeys.some((fk) => linked.has(getTableConfig(fk.reference().foreignTable).name))) {
        linked.add(t.name);
        grew = true;
      }
    }
  }
  return linked;
}

describe("the account export's inventory", () => {
  const exported = Object.keys(EXPORTED_TABLES);
  const excluded = Object.keys(NOT_EXPORTED_TABLES);

  it("lists every table linked to a user as exported or as deliberately left out", () => {
    const missing = [...linkedToUsers()].filter((n) => !exported.includes(n) && !excluded.includes(n));
    expect(missing, "tables holding user data that the export neither shows nor excludes with a reason").toEqual([]);
  });

  it("names only tables that exist, each in one list, each with a reason", () => {
    expect([...exported, ...excluded].filter((n) => !names.has(n))).toEqual([]);
    expect(exported.filter((n) => excluded.includes(n))).toEqual([]);
    for (const [name, why] of Object.entries({ ...EXPORTED_TABLES, ...NOT_EXPORTED_TABLES })) {
      expect(why.length, name).toBeGreaterThan(10);
    }
  });

  it("catches a table added later that refers to a user", () => {
    const linked = linkedToUsers();
    // Every one of the schema's user-linked tables is found by its foreign keys, not by name.
    for (const n of ["user_plants", "push_sends", "blog_post_views", "forum_attachments"]) expect(linked.has(n), n).toBe(true);
    for (const n of ["species", "forum_categories", "calibrations"]) expect(linked.has(n), n).toBe(false);
  });
});
