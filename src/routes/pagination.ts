/** `?page=N&page_size=M` (default 20, max 100) → `{count, next, previous, results}` (API.md §0). */
import { z } from "@hono/zod-openapi";
import { ownRequestRows } from "../db/pagination";
import type { Bindings } from "../env";

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
 * Routes not yet moved to the service side still run their page queries through this; the query
 * itself lives with the data layer now.
 */
export { queryPage } from "../db/pagination";

/**
 * `GET …/requests/` and `GET …/disease-requests/`: a page of the caller's own requests, newest
 * first, optionally of one status, answered as API.md §0's page.
 */
export async function ownRequestsPage<Row, Body>(
  c: { env: Pick<Bindings, "DB">; req: { url: string } },
  table: "identification_requests" | "disease_requests",
  userId: string,
  query: { page: number; page_size: number; status?: string | undefined },
  toBody: (row: Row) => Body,
) {
  const { page, page_size, status } = query;
  const { count, rows } = await ownRequestRows<Row>(c.env, table, userId, { status }, { page, pageSize: page_size });
  return pageOf(c.req.url, page, page_size, count, rows.map(toBody));
}
