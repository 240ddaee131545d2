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
