/** `?page=N&page_size=M` (default 20, max 100) → `{count, next, previous, results}` (API.md §0). */
import { z } from "@hono/zod-openapi";

export const PaginationQuery = z.object({
  page: z.coerce.number().int().min(1).max(100_000).default(1),
  page_size: z.coerce.number().int().min(1).max(100).default(20),
});

/**
 * `requestUrl` is the route's `c.req.url`, which app.ts has rebased onto PUBLIC_API_URL
 * (lib/public-url.ts): the links keep the client's path and filters but never its Host.
 */
export function pageOf<T>(requestUrl: string, page: number, pageSize: number, count: number, results: T[]) {
  const link = (p: number) => {
    const url = new URL(requestUrl);
    url.searchParams.set("page", String(p));
    url.searchParams.set("page_size", String(pageSize));
    return url.toString();
  };
  return {
    count,
    next: page * pageSize < count ? link(page + 1) : null,
    previous: page > 1 ? link(Math.min(page - 1, Math.max(1, Math.ceil(count / pageSize)))) : null,
    results,
  };
}

/**
 * Runs a page query and its count in one D1 round trip. `from` is the FROM/WHERE part shared by
 * both; `select` and `order` complete the page query.
 */
export async function queryPage<Row>(
  db: D1Database,
  q: { select: string; from: string; order: string; binds: unknown[]; page: number; pageSize: number },
): Promise<{ count: number; rows: Row[] }> {
  const [count, rows] = await db.batch([
    db.prepare(`SELECT count(*) AS n ${q.from}`).bind(...q.binds),
    db.prepare(`SELECT ${q.select} ${q.from} ORDER BY ${q.order} LIMIT ? OFFSET ?`).bind(...q.binds, q.pageSize, (q.page - 1) * q.pageSize),
  ]);
  return { count: (count!.results[0] as { n: number }).n, rows: rows!.results as Row[] };
}

/**
 * `GET …/requests/` and `GET …/disease-requests/`: a page of the caller's own requests, newest
 * first, optionally of one status, answered as API.md §0's page.
 */
export async function ownRequestsPage<Row, Body>(
  c: { env: { DB: D1Database }; req: { url: string } },
  table: "identification_requests" | "disease_requests",
  userId: string,
  query: { page: number; page_size: number; status?: string | undefined },
  toBody: (row: Row) => Body,
) {
  const { page, page_size, status } = query;
  const { count, rows } = await queryPage<Row>(c.env.DB, {
    select: "*",
    from: `FROM ${table} WHERE user_id = ?${status ? " AND status = ?" : ""}`,
    order: "created_at DESC, id DESC",
    binds: status ? [userId, status] : [userId],
    page,
    pageSize: page_size,
  });
  return pageOf(c.req.url, page, page_size, count, rows.map(toBody));
}
