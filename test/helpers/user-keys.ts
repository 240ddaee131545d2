/** The schema as SQLite holds it: every column of every table with a foreign key to users. */
import { env } from "cloudflare:workers";

export interface UserKey {
  table: string;
  column: string;
}

export async function userForeignKeys(): Promise<UserKey[]> {
  const tables = (
    await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").all<{
      name: string;
    }>()
  ).results.map((t) => t.name);
  const keys: UserKey[] = [];
  for (const table of tables) {
    const fks = (
      await env.DB.prepare(`SELECT "from", "table" FROM pragma_foreign_key_list(?)`).bind(table).all<{ from: string; table: string }>()
    ).results;
    for (const fk of fks) if (fk.table === "users") keys.push({ table, column: fk.from });
  }
  return keys;
}
