/**
 * D1 binds at most 100 parameters to one statement (developers.cloudflare.com/d1/platform/limits;
 * the local D1 of these tests enforces it too: "too many SQL variables"). A statement whose
 * parameters grow with a page or an input must keep under it at the largest page or input the
 * API accepts (docs/scaling.md "Limits each request keeps under"): these fill a list past one
 * full page and read it whole.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, jsonWithStatus as json, type Page } from "../helpers/http";
import { blogPost } from "../helpers/blog";
import { bearerUser } from "../helpers/users";
import { API, action, category, createPost, withRole } from "./blog-editorial-setup";

const MAX_PAGE = 100;

describe("a full page (page_size=100) stays under D1's 100 bound parameters", () => {
  it("the community feed", async () => {
    const owner = await bearerUser();
    const insert = env.DB.prepare(
      `INSERT INTO identification_requests (id, user_id, status, image_hashes, is_shared_with_community, shared_at)
       VALUES (?, ?, 'needs_help', '[]', 1, ?)`,
    );
    await env.DB.batch(
      Array.from({ length: MAX_PAGE + 1 }, (_, i) =>
        insert.bind(crypto.randomUUID(), owner.userId, new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString()),
      ),
    );
    const res = await call(`/api/v1/plant-identification/community/?page_size=${MAX_PAGE}`);
    const page = await json<Page<{ request_id: string }>>(res, 200);
    expect(page.results).toHaveLength(MAX_PAGE);
  });

  it("the editorial post list, with each post's categories and tags", async () => {
    const editor = await withRole("editor");
    for (let i = 0; i <= MAX_PAGE; i++) await blogPost({ tags: i === 0 ? ["first"] : [] });
    const res = await call(`${API}/posts/?page_size=${MAX_PAGE}`, { bearer: editor.access });
    const page = await json<Page<{ id: string; tags: string[] }>>(res, 200);
    expect(page.results).toHaveLength(MAX_PAGE);
  });
});

describe("the largest input the API accepts stays under D1's 100 bound parameters", () => {
  it("a post with the most categories (20) and tags (20): saved, published, read with its related posts", async () => {
    const editor = await withRole("editor");
    const cats = await Promise.all(Array.from({ length: 20 }, () => category(editor.access)));
    const tags = Array.from({ length: 20 }, (_, i) => `tag-${i}`);
    const body = { categories: cats.map((c) => c.slug), tags };
    const post = await createPost(editor.access, body);
    await createPost(editor.access, body).then((other) => action(editor.access, other.id, "publish"));
    expect((await action(editor.access, post.id, "publish")).status).toBe(200);
    const read = await json<{ tags: string[]; related_posts: unknown[] }>(await call(`/api/v2/blog-posts/${post.id}/`), 200);
    expect(read.tags).toHaveLength(20);
    expect(read.related_posts).toHaveLength(1);
  });
});
