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
  const [counted, rows] = await db.batch([query.count, query.rows.limit(page.pageSize).offset((page.page - 1) * page.pageSize)]);
  return { count: Number((counted as { n: number }[])[0]?.n ?? 0), rows: rows as Awaited<Q>[number][] };
}

/** A page of one table's rows matching `where`, in `order`. */
export function tablePage<T extends SQLiteTable>(
  db: Database,
  table: T,
  where: SQL | undefined,
  order: (SQLiteColumn | SQL)[],
  page: PageRequest,
): Promise<Page<T["$inferSelect"]>> {
  return selectPage(
    db,
    {
      rows: db
        .select()
        .from(table as SQLiteTable)
        .where(where)
        .orderBy(...order)
        .$dynamic(),
      count: db
        .select({ n: count() })
        .from(table as SQLiteTable)
        .where(where)
        .$dynamic(),
    },
    page,
  ) as Promise<Page<T["$inferSelect"]>>;
}

// ---------------------------------------------------------------------------------------------
// String page queries: the modules not yet moved to drizzle still use these. Being removed.

/** `from` is the FROM/WHERE part shared by the count and the page; `select` and `order` complete the page query. */
export interface PageQuery {
  select: string;
  from: string;
  order: string;
  binds: unknown[];
}

/** @deprecated use selectPage/tablePage. Runs a page query and its count in one D1 round trip. */
export async function queryPage<Row>(db: D1Database, q: PageQuery & PageRequest): Promise<Page<Row>> {
  const [counted, rows] = await db.batch([
    db.prepare(`SELECT count(*) AS n ${q.from}`).bind(...q.binds),
    db.prepare(`SELECT ${q.select} ${q.from} ORDER BY ${q.order} LIMIT ? OFFSET ?`).bind(...q.binds, q.pageSize, (q.page - 1) * q.pageSize),
  ]);
  return { count: (counted!.results[0] as { n: number }).n, rows: rows!.results as Row[] };
}

/** @deprecated use selectPage/tablePage. `queryPage` over this environment's database. */
export function fetchPage<Row>(env: { DB: D1Database }, q: PageQuery, page: PageRequest): Promise<Page<Row>> {
  return queryPage<Row>(env.DB, { ...q, ...page });
}

/** @deprecated A page of the user's own identification or disease requests, newest first, optionally of one status. */
export function ownRequestRows<Row>(
  env: { DB: D1Database },
  table: "identification_requests" | "disease_requests",
  userId: string,
  filter: { status?: string | undefined },
  page: PageRequest,
): Promise<Page<Row>> {
  const { status } = filter;
  return fetchPage<Row>(
    env,
    {
      select: "*",
      from: `FROM ${table} WHERE user_id = ?${status ? " AND status = ?" : ""}`,
      order: "created_at DESC, id DESC",
      binds: status ? [userId, status] : [userId],
    },
    page,
  );
}
