/**
 * Page queries for the services: a page of rows and the total count, in one D1 round trip.
 * The HTTP side of a page (`?page=&page_size=`, the next/previous links) lives in
 * routes/pagination.ts; this is only the data side.
 *
 * A page query is typed: drizzle select builders, not SQL strings. `rows` is the ordered
 * select (made `$dynamic()` so a limit can be added here); `count` counts the same rows.
 */
import { count, type SQL } from "drizzle-orm";
import type { SQLiteColumn, SQLiteSelect, SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Database } from "./client";

/** Which page the client asked for; `page` counts from 1. */
export interface PageRequest {
  page: number;
  pageSize: number;
  /** Rows to skip, when the client counts in rows (Wagtail's `offset`) rather than pages. */
  offset?: number;
}

/** One page of rows and how many rows there are in all. */
export interface Page<Row> {
  count: number;
  rows: Row[];
}

// biome-ignore lint/suspicious/noExplicitAny: any dynamic select of any shape
type DynamicSelect = SQLiteSelect<any, "async", any, any, any, any>;

/** Runs an ordered dynamic select for one page, and the count of all its rows, in one batch. */
export async function selectPage<Q extends DynamicSelect>(
  db: Database,
  query: { rows: Q; count: DynamicSelect },
  page: PageRequest,
): Promise<Page<Awaited<Q>[number]>> {
  const [counted, rows] = await db.batch([
    query.count,
    query.rows.limit(page.pageSize).offset(page.offset ?? (page.page - 1) * page.pageSize),
  ]);
  return { count: Number((counted as { n: number }[])[0]?.n ?? 0), rows: rows as Awaited<Q>[number][] };
}

/**
 * One page of `rows` (a filtered, ordered select over `count.from`, whose joins neither drop nor
 * repeat a row of it), counted as `count.from`'s rows matching `count.where`.
 */
export function countedPage<Q extends DynamicSelect>(
  db: Database,
  rows: Q,
  counted: { from: SQLiteTable; where: SQL | undefined },
  page: PageRequest,
): Promise<Page<Awaited<Q>[number]>> {
  return selectPage(db, { rows, count: db.select({ n: count() }).from(counted.from).where(counted.where).$dynamic() }, page);
}

/** A page of one table's rows matching `where`, in `order`. */
export function tablePage<T extends SQLiteTable>(
  db: Database,
  table: T,
  where: SQL | undefined,
  order: (SQLiteColumn | SQL)[],
  page: PageRequest,
): Promise<Page<T["$inferSelect"]>> {
  const rows = db
    .select()
    .from(table as SQLiteTable)
    .where(where)
    .orderBy(...order)
    .$dynamic();
  return countedPage(db, rows, { from: table, where }, page) as Promise<Page<T["$inferSelect"]>>;
}
