/**
 * The editorial workflow and the public reads together (issue 9 "Done when": ETag/304 and purge on
 * publish): readers' edge-cached answers change the moment an editor publishes, edits a published
 * post or unpublishes it — and scheduled posts appear when the cron publishes them.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { publishScheduledPosts } from "../../src/services/blog-posts";
import { call, jsonWithStatus as json } from "../helpers/http";
import { action, API, category, createPost, patchPost, withRole } from "./blog-editorial-setup";

interface Listing {
  meta: { total_count: number };
  items: { id: string; title: string }[];
}
const publicList = async (slug: string) => {
  const res = await call(`/api/v2/blog-posts/?category_slug=${slug}`);
  return { body: await json<Listing>(res, 200), etag: res.headers.get("ETag")!, cache: res.headers.get("X-Cache") };
};

describe("publishing purges the public reads", () => {
  it("publish, edit and unpublish each change the cached listing and detail at once", async () => {
    const editor = await withRole("editor");
    const cat = await category(editor.access);
    const post = await createPost(editor.access, { title: "Before", categories: [cat.slug] });

    const empty = await publicList(cat.slug);
    expect(empty.body.meta.total_count).toBe(0);
    expect((await publicList(cat.slug)).cache).toBe("HIT");
    // A reader revalidating the empty list gets 304 until something changes.
    expect((await call(`/api/v2/blog-posts/?category_slug=${cat.slug}`, { headers: { "If-None-Match": empty.etag } })).status).toBe(304);

    await json(await action(editor.access, post.id, "publish"), 200);
    const published = await publicList(cat.slug);
    expect(published.body.items.map((i) => [i.id, i.title])).toEqual([[post.id, "Before"]]);
    expect(published.etag).not.toBe(empty.etag);
    expect((await call(`/api/v2/blog-posts/?category_slug=${cat.slug}`, { headers: { "If-None-Match": empty.etag } })).status).toBe(200);

    await json(await patchPost(editor.access, post.id, { title: "After" }), 200);
    expect((await publicList(cat.slug)).body.items[0]!.title).toBe("After");
    expect((await json<{ title: string }>(await call(`/api/v2/blog-posts/${post.id}/`), 200)).title).toBe("After");

    await json(await action(editor.access, post.id, "unpublish"), 200);
    expect((await publicList(cat.slug)).body.meta.total_count).toBe(0);
    expect((await call(`/api/v2/blog-posts/${post.id}/`)).status).toBe(404);
  });

  it("a scheduled post appears in cached reads when the cron publishes it", async () => {
    const editor = await withRole("editor");
    const cat = await category(editor.access);
    const post = await createPost(editor.access, { title: "Spring sowing", categories: [cat.slug] });
    const at = new Date(Date.now() + 60_000).toISOString();
    await json(await call(`${API}/posts/${post.id}/schedule/`, { method: "POST", bearer: editor.access, json: { publish_at: at } }), 200);
    expect((await publicList(cat.slug)).body.meta.total_count).toBe(0);
    await publishScheduledPosts(env, Date.parse(at) + 1000);
    expect((await publicList(cat.slug)).body.items.map((i) => i.id)).toEqual([post.id]);
  });
});
