/**
 * Security review (helper-63) of the edge cache's purges: every write path that changes what a
 * cached public read shows must move its generation, or readers keep the old answer for the
 * entry's whole TTL (an hour for the blog, 5 minutes for the catalogue), whatever the docs promise.
 */
import { describe, expect, it } from "vitest";
import { call, jsonWithStatus as json } from "../helpers/http";
import { API, uniq, withRole } from "../routes/blog-editorial-setup";

interface Page<T> {
  meta: { total_count: number };
  items: T[];
}

describe("purges of the public reads", () => {
  it("shows a new blog category or series in the cached /api/v2/ lists at once", async () => {
    const editor = await withRole("editor");
    for (const [list, create, field] of [
      ["/api/v2/categories/?limit=100", `${API}/categories/`, "name"],
      ["/api/v2/series/?limit=100", `${API}/series/`, "title"],
    ] as const) {
      const before = await json<Page<{ slug: string }>>(await call(list), 200);
      expect((await call(list)).headers.get("X-Cache")).toBe("HIT");

      const name = `New ${uniq()}`;
      const made = await json<{ slug: string }>(await call(create, { bearer: editor.access, json: { [field]: name } }), 201);
      // The insert and its purge are one batch: a slug in use is still the 409 it was.
      expect((await call(create, { bearer: editor.access, json: { [field]: name } })).status).toBe(409);
      const after = await json<Page<{ slug: string }>>(await call(list), 200);
      expect(after.meta.total_count, list).toBe(before.meta.total_count + 1);
      expect(after.items.map((i) => i.slug)).toContain(made.slug);
    }
  });
});
