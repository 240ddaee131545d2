/**
 * The data layer's entry: a drizzle client over the D1 binding, typed by the schema, and the
 * one way to run an atomic batch. D1 has no interactive transactions; `db.batch` runs its
 * statements in order as one transaction, so every multi-write rule is one batch.
 *
 * Row types come from the schema (`typeof table.$inferSelect`): booleans and JSON columns are
 * converted by their column modes, never by hand.
 */
import { and, eq, getTableColumns, is, SQL, sql } from "drizzle-orm";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import type { BatchItem } from "drizzle-orm/batch";
import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";
import type { Bindings } from "../env";

export type Database = DrizzleD1Database & { $client: D1Database };
export type Statement = BatchItem<"sqlite">;

const clients = new WeakMap<D1Database, Database>();

/** The drizzle client for this environment's D1 database (one per binding, reused). */
export function database(env: Pick<Bindings, "DB">): Database {
  let db = clients.get(env.DB);
  if (!db) {
    // No relational schema: every query is a typed builder over the tables, so drizzle need not
    // build the relations map (work it would repeat for every binding object it is given).
    db = drizzle(env.DB);
    clients.set(env.DB, db);
  }
  return db;
}

const sessionBindings = new WeakMap<object, D1Database>();

/**
 * A D1 session (Sessions API) over `binding`, typed as the binding so the data layer takes it
 * unchanged: its queries run in order with sequential consistency, starting from `constraint`
 * (`first-primary`, `first-unconstrained` — any replica — or a client's bookmark).
 */
export function openSession(binding: D1Database, constraint: string): { db: D1Database; session: D1DatabaseSession | null } {
  // A binding without sessions (a test double standing in for a failing database) is used as is.
  if (typeof binding.withSession !== "function") return { db: binding, session: null };
  const session = binding.withSession(constraint);
  sessionBindings.set(session, binding);
  return { db: session as unknown as D1Database, session };
}

/** The binding behind a session (or the binding itself): one identity per database, for caches. */
export function bindingOf(db: D1Database): D1Database {
  return sessionBindings.get(db) ?? db;
}

/**
 * Runs `statements` as one atomic D1 batch, in order; returns each statement's result. A
 * statement may be raw `sql` (a guarded INSERT … SELECT, a json_each check): drizzle's own
 * batch cannot bind those, so a batch holding one goes to D1 as prepared statements, and its
 * results are D1's (read them with `changes`, or `.results` for rows).
 */
export async function runBatch(db: Database, statements: (Statement | SQL)[]): Promise<unknown[]> {
  if (statements.length === 0) return [];
  if (!statements.some((s) => is(s, SQL))) return db.batch(statements as [Statement, ...Statement[]]);
  const prepared = statements.map((s) => {
    const q = is(s, SQL) ? db.run(s).getQuery() : (s as unknown as { toSQL(): { sql: string; params: unknown[] } }).toSQL();
    return db.$client.prepare(q.sql).bind(...q.params);
  });
  return db.$client.batch(prepared);
}

/**
 * The rows one statement of a `runBatch` answered, as they came: drizzle's own batch gives each
 * statement's rows as an array, D1's (a batch holding raw SQL) a result with `results`. For a
 * select whose columns are aliased as drizzle names them; a table's rows go through `tableRows`.
 */
export function batchRows(result: unknown): Record<string, unknown>[] {
  if (Array.isArray(result)) return result as Record<string, unknown>[];
  return (result as { results?: Record<string, unknown>[] } | undefined)?.results ?? [];
}

/**
 * The rows a `… RETURNING *` of `table` gave in a `runBatch`. When the batch went to D1 as
 * prepared statements (it held raw SQL), D1's rows carry the columns' SQL names and stored
 * values, so each is converted by its column (names, booleans, JSON), as drizzle converts its
 * own results; drizzle's own batch gave them converted already.
 */
export function tableRows<T extends SQLiteTable>(table: T, result: unknown): T["$inferSelect"][] {
  // A batch of drizzle statements only went through drizzle's own batch: its rows are converted.
  if (Array.isArray(result)) return result as T["$inferSelect"][];
  const rows = batchRows(result);
  const columns = Object.entries(getTableColumns(table)) as [string, SQLiteColumn][];
  return rows.map((row) => {
    const out: Record<string, unknown> = {};
    for (const [key, column] of columns) {
      const value = row[column.name];
      out[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
    }
    return out as T["$inferSelect"];
  });
}

/**
 * The source of an `INSERT … SELECT` that adds one row only while `condition` holds when the
 * statement runs (`db.insert(table).select(rowIf(table, values, condition))`): for a write decided
 * on an earlier read, which a write landing meanwhile must be able to refuse. Columns not in
 * `values` take their schema defaults, as `.values()` would give them; values go through their
 * columns' modes (booleans, JSON). `condition` must stand alone (an EXISTS over the rows it needs).
 */
export function rowIf<T extends SQLiteTable>(table: T, values: Partial<T["$inferInsert"]>, condition: SQL): SQL {
  const given = values as Record<string, unknown>;
  const cells = (Object.entries(getTableColumns(table)) as [string, SQLiteColumn][])
    // The columns drizzle lists in the INSERT (generated ones are not).
    .filter(([, column]) => !(column as unknown as { shouldDisableInsert(): boolean }).shouldDisableInsert())
    .map(([key, column]) => {
      const value = key in given && given[key] !== undefined ? given[key] : column.defaultFn ? column.defaultFn() : column.default;
      if (value === undefined || value === null) return sql`NULL`;
      return is(value, SQL) ? value : sql`${column.mapToDriverValue(value)}`;
    });
  return sql`SELECT ${sql.join(cells, sql`, `)} WHERE ${condition}`;
}

/** Rows changed by a run statement's result (D1's `meta.changes`). */
export function changes(result: unknown): number {
  return (result as { meta?: { changes?: number } } | undefined)?.meta?.changes ?? 0;
}

/** The database's clock as rows store times (ISO-8601 UTC with milliseconds), for writes that stamp a time. */
export const sqlNow = sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;

/** `column = value` when a filter value was given, else no condition (and() skips undefined). */
export function eqIfGiven<T>(column: SQLiteColumn, value: T | undefined): SQL | undefined {
  return value === undefined ? undefined : eq(column, value);
}

/**
 * `column IN values` as ONE bound parameter (the list as JSON, read back by json_each), for lists
 * that grow with a page or an input: D1 binds at most 100 parameters to a statement, and drizzle's
 * `inArray` binds one per value (docs/scaling.md "Limits each request keeps under").
 */
export function inList(column: SQLiteColumn | SQL, values: readonly (string | number)[]): SQL {
  return sql`${column} IN (SELECT value FROM json_each(${JSON.stringify(values)}))`;
}

/** The row `id` of `table` when it belongs to `userId` (owner-scoped reads, updates, deletes). */
export function ownedBy(table: { id: SQLiteColumn; userId: SQLiteColumn }, userId: string, id: string): SQL | undefined {
  return and(eq(table.id, id), eq(table.userId, userId));
}
