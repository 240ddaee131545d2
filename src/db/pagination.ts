/**
 * Page queries for the services: a page of rows and the total count, in one D1 round trip.
 * The HTTP side of a page (`?page=&page_size=`, the next/previous links) lives in
 * routes/pagination.ts; this is only the data side.
 */
import type { Bindings } from "../env";

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

/** `from` is the FROM/WHERE part shared by the count and the page; `select` and `order` complete the page query. */
export interface PageQuery {
  select: string;
  from: string;
  order: string;
  binds: unknown[];
}

/** Runs a page query and its count in one D1 round trip. */
export async function queryPage<Row>(db: D1Database, q: PageQuery & PageRequest): Promise<Page<Row>> {
  const [count, rows] = await db.batch([
    db.prepare(`SELECT count(*) AS n ${q.from}`).bind(...q.binds),
    db.prepare(`SELECT ${q.select} ${q.from} ORDER BY ${q.order} LIMIT ? OFFSET ?`).bind(...q.binds, q.pageSize, (q.page - 1) * q.pageSize),
  ]);
  return { count: (count!.results[0] as { n: number }).n, rows: rows!.results as Row[] };
}

/** `queryPage` over this environment's database. */
export function fetchPage<Row>(env: Pick<Bindings, "DB">, q: PageQuery, page: PageRequest): Promise<Page<Row>> {
  return queryPage<Row>(env.DB, { ...q, ...page });
}

/**
 * A page of the user's own identification or disease requests, newest first, optionally of
 * one status.
 */
export function ownRequestRows<Row>(
  env: Pick<Bindings, "DB">,
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
