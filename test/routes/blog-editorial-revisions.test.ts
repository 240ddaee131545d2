/**
 * Revisions (list, diff, restore, concurrent saves), scheduled publishing exactly once, and the
 * categories, tags and series of the editorial API.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { runHousekeeping } from "../../src/jobs/housekeeping";
import { createLogger } from "../../src/lib/logger";
import { publishScheduledPosts } from "../../src/services/blog-posts";
import { call, expectError, jsonWithStatus as json, type Page } from "../helpers/http";
import {
  API,
  action,
  category,
  createPost,
  getPost,
  inR2,
  type Post,
  patchPost,
  revisionCount,
  row,
  uniq,
  uploaded,
  withRole,
} from "./blog-editorial-setup";

interface Revision {
  number: number;
  created_at: string;
  author: { id: string; username: string } | null;
  is_current: boolean;
}
interface Block {
  id: string;
  type: string;
  value: unknown;
}
interface Diff {
  from: number;
  to: number;
  fields: { field: string; from: unknown; to: unknown }[];
  blocks: {
    added: (Block & { index: number })[];
    removed: (Block & { index: number })[];
    changed: { id: string; before: Block; after: Block }[];
    moved: { id: string; from_index: number; to_index: number }[];
  };
}

describe("revisions", () => {
  it("are the author's and editors' alone: another writer reads the published post but not what it said before", async () => {
    const [author, other, editor] = [await withRole("author"), await withRole("author"), await withRole("editor")];
    const post = await createPost(author.access, {
      title: "Before it went live",
      content_blocks: [{ type: "paragraph", value: "<p>My address is 4 Elm Row</p>" }],
    });
    await json<Post>(await patchPost(author.access, post.id, { content_blocks: [{ type: "paragraph", value: "<p>A fern</p>" }] }), 200);
    await json<Post>(await action(editor.access, post.id, "publish"), 200);
    expect((await getPost(post.id, other.access)).status).toBe(200);
    await expectError(await call(`${API}/posts/${post.id}/revisions/`, { bearer: other.access }), 403, "FORBIDDEN");
    await expectError(await call(`${API}/posts/${post.id}/revisions/diff/?from=1&to=2`, { bearer: other.access }), 403, "FORBIDDEN");
    expect((await call(`${API}/posts/${post.id}/revisions/`, { bearer: author.access })).status).toBe(200);
    expect((await call(`${API}/posts/${post.id}/revisions/diff/?from=1&to=2`, { bearer: editor.access })).status).toBe(200);
  });

  it("lists every save, diffs two field by field and block by block, and restores one as a new revision", async () => {
    const author = await withRole("author");
    const editor = await withRole("editor");
    const post = await createPost(author.access, {
      title: "First title",
      content_blocks: [
        { type: "heading", value: "One" },
        { type: "paragraph", value: "<p>Two</p>" },
        { type: "paragraph", value: "<p>Three</p>" },
        { type: "care_tip", value: { title: "Four", text: "<p>4</p>" } },
      ],
    });
    const [one, two, three, four] = post.content_blocks as Block[];
    await json<Post>(await patchPost(author.access, post.id, { title: "Second title" }), 200);
    // Move "three" first, change "two", drop "four", add a new heading.
    const third = await json<Post>(
      await patchPost(editor.access, post.id, {
        tags: ["ferns"],
        content_blocks: [three, one, { ...two, value: "<p>Two, rewritten</p>" }, { type: "heading", value: "Five" }],
      }),
      200,
    );
    expect(third.revision).toBe(3);

    const list = await json<Page<Revision>>(await call(`${API}/posts/${post.id}/revisions/`, { bearer: author.access }), 200);
    expect(list.count).toBe(3);
    expect(list.results.map((r) => [r.number, r.is_current, r.author?.username])).toEqual([
      [3, true, editor.username],
      [2, false, author.username],
      [1, false, author.username],
    ]);

    const diff = await json<Diff>(await call(`${API}/posts/${post.id}/revisions/diff/?from=1&to=3`, { bearer: author.access }), 200);
    expect(diff.fields).toEqual([
      { field: "title", from: "First title", to: "Second title" },
      { field: "tags", from: [], to: ["ferns"] },
    ]);
    expect(diff.blocks.added).toEqual([{ id: expect.any(String), type: "heading", value: "Five", index: 3 }]);
    expect(diff.blocks.removed).toEqual([{ ...four, index: 3 }]);
    expect(diff.blocks.changed).toEqual([{ id: two!.id, before: two, after: { ...two, value: "<p>Two, rewritten</p>" } }]);
    expect(diff.blocks.moved.map((m) => m.id).sort()).toEqual([one!.id, two!.id, three!.id].sort());
    expect(diff.blocks.moved.find((m) => m.id === three!.id)).toEqual({ id: three!.id, from_index: 2, to_index: 0 });
    // Same revision: nothing differs.
    const same = await json<Diff>(await call(`${API}/posts/${post.id}/revisions/diff/?from=2&to=2`, { bearer: author.access }), 200);
    expect(same.fields).toEqual([]);
    expect(Object.values(same.blocks).flat()).toEqual([]);
    await expectError(await call(`${API}/posts/${post.id}/revisions/diff/?from=1&to=9`, { bearer: author.access }), 404, "NOT_FOUND");
    await expectError(await call(`${API}/posts/${post.id}/revisions/diff/?from=1`, { bearer: author.access }), 400, "VALIDATION_ERROR");

    const restored = await json<Post>(
      await call(`${API}/posts/${post.id}/revisions/1/restore/`, { method: "POST", bearer: author.access }),
      200,
    );
    expect(restored.revision).toBe(4);
    expect(restored.title).toBe("First title");
    expect(restored.tags).toEqual([]);
    expect(restored.content_blocks).toEqual(post.content_blocks);
    expect(restored.excerpt).toBe(post.excerpt);
    const back = await json<Diff>(await call(`${API}/posts/${post.id}/revisions/diff/?from=1&to=4`, { bearer: author.access }), 200);
    expect(back.fields).toEqual([]);
    expect(Object.values(back.blocks).flat()).toEqual([]);
    await expectError(
      await call(`${API}/posts/${post.id}/revisions/99/restore/`, { method: "POST", bearer: author.access }),
      404,
      "NOT_FOUND",
    );
    expect(await revisionCount(post.id)).toBe(4);
  });

  it("restoring follows the edit rules: an author cannot restore a published post or someone else's", async () => {
    const author = await withRole("author");
    const other = await withRole("author");
    const editor = await withRole("editor");
    const post = await createPost(author.access, {});
    await json<Post>(await patchPost(author.access, post.id, { title: "Two" }), 200);
    await expectError(
      await call(`${API}/posts/${post.id}/revisions/1/restore/`, { method: "POST", bearer: other.access }),
      404,
      "NOT_FOUND",
    );
    await json<Post>(await action(editor.access, post.id, "publish"), 200);
    await expectError(
      await call(`${API}/posts/${post.id}/revisions/1/restore/`, { method: "POST", bearer: author.access }),
      403,
      "FORBIDDEN",
    );
    expect((await row(post.id))!.revision).toBe(2);
    const live = await json<Post>(
      await call(`${API}/posts/${post.id}/revisions/1/restore/`, { method: "POST", bearer: editor.access }),
      200,
    );
    expect(live).toMatchObject({ status: "published", title: post.title, revision: 3 });
    expect((await json<Post>(await getPost(post.id), 200)).title).toBe(post.title);
  });

  it("of concurrent saves, each either lands as its own revision or is a 409 with nothing written", async () => {
    const author = await withRole("author");
    const post = await createPost(author.access, {});
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => patchPost(author.access, post.id, { title: `Concurrent ${i}` })));
    const statuses = results.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
    const saved = statuses.filter((s) => s === 200).length;
    expect(saved).toBeGreaterThanOrEqual(1);
    for (const r of results.filter((x) => x.status === 409)) await expectError(r, 409, "CONFLICT");
    const numbers = (
      await env.DB.prepare("SELECT number FROM blog_revisions WHERE post_id = ? ORDER BY number").bind(post.id).all<{ number: number }>()
    ).results.map((r) => r.number);
    expect(numbers).toEqual(Array.from({ length: 1 + saved }, (_, i) => i + 1));
    expect((await row(post.id))!.revision).toBe(1 + saved);
  });
  it("a save that lost the race for its revision number is a 409 and changes nothing (the batch rolls back)", async () => {
    const author = await withRole("author");
    const editor = await withRole("editor");
    const cat = await category(editor.access);
    const post = await createPost(author.access, { title: "Before", tags: ["kept"] });
    // Another save has taken revision 2 between this save's read and its write.
    await env.DB.prepare("INSERT INTO blog_revisions (id, post_id, number, snapshot) VALUES (?, ?, 2, '{}')")
      .bind(crypto.randomUUID(), post.id)
      .run();
    await expectError(await patchPost(author.access, post.id, { title: "After", tags: ["lost"], categories: [cat.slug] }), 409, "CONFLICT");
    expect(await row(post.id)).toMatchObject({ title: "Before", revision: 1 });
    const current = await json<Post>(await getPost(post.id, author.access), 200);
    expect(current.tags).toEqual(["kept"]);
    expect(current.categories).toEqual([]);
  });
});

describe("scheduled publishing", () => {
  it("validates the time, lists scheduled posts, and can be cancelled", async () => {
    const author = await withRole("author");
    const editor = await withRole("editor");
    const post = await createPost(author.access, {});
    const schedule = (bearer: string, publish_at: unknown) => call(`${API}/posts/${post.id}/schedule/`, { bearer, json: { publish_at } });
    await expectError(await schedule(author.access, new Date(Date.now() + 3_600_000).toISOString()), 403, "FORBIDDEN");
    const past = await expectError(await schedule(editor.access, "2020-01-01T00:00:00Z"), 400, "VALIDATION_ERROR");
    expect(past.errors?.publish_at).toBeDefined();
    await expectError(await schedule(editor.access, "tomorrow"), 400, "VALIDATION_ERROR");
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const scheduled = await json<Post>(await schedule(editor.access, at), 200);
    expect(scheduled).toMatchObject({ status: "draft", scheduled_at: at });
    const listed = await json<Page<Post>>(await call(`${API}/posts/?status=scheduled&page_size=100`, { bearer: editor.access }), 200);
    expect(listed.results.map((p) => p.id)).toContain(post.id);
    // Not yet due: the cron job leaves it.
    expect((await publishScheduledPosts(env, Date.now())).map((p) => p.id)).not.toContain(post.id);
    expect((await json<Post>(await schedule(editor.access, null), 200)).scheduled_at).toBeNull();
    expect((await publishScheduledPosts(env, Date.now() + 7_200_000)).map((p) => p.id)).not.toContain(post.id);
    expect((await row(post.id))!.status).toBe("draft");
    // A published post cannot be scheduled.
    await json<Post>(await action(editor.access, post.id, "publish"), 200);
    await expectError(await schedule(editor.access, at), 409, "INVALID_STATE");
  });

  it("a writer's edit or restore after an editor scheduled the post takes it off the schedule; an editor's does not", async () => {
    const author = await withRole("author");
    const editor = await withRole("editor");
    const post = await createPost(author.access, {});
    const at = new Date(Date.now() + 60_000).toISOString();
    const schedule = () => call(`${API}/posts/${post.id}/schedule/`, { bearer: editor.access, json: { publish_at: at } });
    const edit = (bearer: string, title: string) => call(`${API}/posts/${post.id}/`, { method: "PATCH", bearer, json: { title } });
    await json<Post>(await schedule(), 200);
    expect((await json<Post>(await edit(editor.access, "Checked by the editor"), 200)).scheduled_at).toBe(at);
    expect((await json<Post>(await edit(author.access, "Buy cheap pills here"), 200)).scheduled_at).toBeNull();
    expect((await publishScheduledPosts(env, Date.now() + 120_000)).map((p) => p.id)).not.toContain(post.id);
    expect((await row(post.id))!.status).toBe("draft");
    await json<Post>(await schedule(), 200);
    const restored = await call(`${API}/posts/${post.id}/revisions/1/restore/`, { method: "POST", bearer: author.access });
    expect((await json<Post>(restored, 200)).scheduled_at).toBeNull();
  });

  it("publishes each due post exactly once when cron runs overlap", async () => {
    const author = await withRole("author");
    const editor = await withRole("editor");
    const posts = await Promise.all(Array.from({ length: 4 }, () => createPost(author.access, {})));
    const at = new Date(Date.now() + 60_000).toISOString();
    for (const p of posts)
      await json<Post>(await call(`${API}/posts/${p.id}/schedule/`, { bearer: editor.access, json: { publish_at: at } }), 200);
    const later = Date.now() + 120_000;
    const runs = await Promise.all([
      publishScheduledPosts(env, later),
      publishScheduledPosts(env, later),
      publishScheduledPosts(env, later),
    ]);
    const published = runs.flat().map((p) => p.id);
    const ours = published.filter((id) => posts.some((p) => p.id === id));
    expect(ours.sort()).toEqual(posts.map((p) => p.id).sort());
    expect(new Set(published).size).toBe(published.length);
    for (const p of posts) {
      const r = (await row(p.id))!;
      expect(r).toMatchObject({ status: "published", scheduled_at: null, first_published_at: new Date(later).toISOString() });
      expect((await json<Post>(await getPost(p.slug), 200)).id).toBe(p.id);
    }
    expect(await publishScheduledPosts(env, later + 1)).toEqual([]);
  });

  it("runs as a housekeeping task", async () => {
    const author = await withRole("author");
    const post = await createPost(author.access, {});
    await env.DB.prepare("UPDATE blog_posts SET scheduled_at = ? WHERE id = ?")
      .bind(new Date(Date.now() - 1000).toISOString(), post.id)
      .run();
    await runHousekeeping(env, createLogger({ test: "blog-housekeeping" }));
    expect((await row(post.id))!.status).toBe("published");
  });
});

describe("categories, tags and series", () => {
  it("editors manage categories; everyone lists them; slugs are unique", async () => {
    const editor = await withRole("editor");
    const author = await withRole("author");
    await expectError(await call(`${API}/categories/`, { bearer: author.access, json: { name: "Nope" } }), 403, "FORBIDDEN");
    const cat = await category(editor.access, `Pests & Diseases ${uniq()}`);
    expect(cat.slug).toMatch(/^pests-diseases-/);
    await expectError(await call(`${API}/categories/`, { bearer: editor.access, json: { name: "Dup", slug: cat.slug } }), 409, "CONFLICT");
    const listed = await json<{ results: { id: string }[] }>(await call(`${API}/categories/`), 200);
    expect(listed.results.map((c) => c.id)).toContain(cat.id);
    const renamed = await json<{ name: string; description: string }>(
      await call(`${API}/categories/${cat.id}/`, { method: "PATCH", bearer: editor.access, json: { name: "Pests", description: "Bugs" } }),
      200,
    );
    expect(renamed).toMatchObject({ name: "Pests", description: "Bugs" });
    const post = await createPost(author.access, { categories: [cat.slug] });
    expect((await call(`${API}/categories/${cat.id}/`, { method: "DELETE", bearer: editor.access })).status).toBe(204);
    expect((await json<Post>(await getPost(post.id, author.access), 200)).categories).toEqual([]);
    await expectError(await call(`${API}/categories/${cat.id}/`, { method: "DELETE", bearer: editor.access }), 404, "NOT_FOUND");
  });

  it("makes slugs from Latin letters NFKD cannot split, and asks for one when a name has no Latin letters", async () => {
    const editor = await withRole("editor");
    const id = uniq();
    expect((await category(editor.access, `Đà Lạt Straße Ærø Łódź ${id}`)).slug).toBe(`da-lat-strasse-aero-lodz-${id}`);
    for (const [path, body, field] of [
      ["categories", { name: "盆栽" }, "name"],
      ["categories", { name: "Комнатные растения" }, "name"],
      ["series", { title: "Κήπος" }, "title"],
    ] as const) {
      const err = await expectError(await call(`${API}/${path}/`, { bearer: editor.access, json: body }), 400, "VALIDATION_ERROR");
      expect(err.errors?.slug?.[0]).toContain(`The ${field} has no letters a–z or digits to make a slug from`);
    }
    const named = await json<{ name: string; slug: string }>(
      await call(`${API}/categories/`, { bearer: editor.access, json: { name: "盆栽", slug: `bonsai-${id}` } }),
      201,
    );
    expect(named).toMatchObject({ name: "盆栽", slug: `bonsai-${id}` });
    const author = await withRole("author");
    const tags = await expectError(
      await call(`${API}/posts/`, { bearer: author.access, json: { title: "Küche", tags: ["Küche", "盆栽"] } }),
      400,
      "VALIDATION_ERROR",
    );
    expect(tags.errors?.tags?.[0]).toBe(
      "Tags are words of letters a–z (no accents or other scripts), digits and hyphens, at most 50 characters: küche, 盆栽.",
    );
  });

  it("counts the tags of published posts only", async () => {
    const author = await withRole("author");
    const editor = await withRole("editor");
    const tag = `tag${uniq()}`;
    const hidden = `hidden${uniq()}`;
    const a = await createPost(author.access, { tags: [tag] });
    const b = await createPost(author.access, { tags: [tag, hidden] });
    await createPost(author.access, { tags: [hidden] });
    await json<Post>(await action(editor.access, a.id, "publish"), 200);
    await json<Post>(await action(editor.access, b.id, "publish"), 200);
    await json<Post>(await action(editor.access, b.id, "unpublish"), 200);
    const tags = (await json<{ results: { tag: string; count: number }[] }>(await call(`${API}/tags/`), 200)).results;
    expect(tags.find((t) => t.tag === tag)).toEqual({ tag, count: 1 });
    expect(tags.find((t) => t.tag === hidden)).toBeUndefined();
  });

  it("editors manage series with a cover image; posts join one in order", async () => {
    const editor = await withRole("editor");
    const author = await withRole("author");
    const cover = await uploaded(editor.access);
    const noAlt = await expectError(
      await call(`${API}/series/`, { bearer: editor.access, json: { title: "Ferns", cover_image: cover } }),
      400,
      "VALIDATION_ERROR",
    );
    expect(noAlt.errors?.cover_image_alt).toBeDefined();
    await expectError(await call(`${API}/series/`, { bearer: author.access, json: { title: "Mine" } }), 403, "FORBIDDEN");
    interface Series {
      id: string;
      slug: string;
      cover_image: { id: string; url: string; alt: string } | null;
      is_completed: boolean;
      post_count: number;
    }
    const series = await json<Series>(
      await call(`${API}/series/`, {
        bearer: editor.access,
        json: { title: `Fern Month ${uniq()}`, cover_image: cover, cover_image_alt: "Fronds" },
      }),
      201,
    );
    expect(series.cover_image).toEqual({ id: cover, url: `/media/images/${cover}`, alt: "Fronds" });
    const post = await createPost(author.access, { series: series.slug, series_order: 2 });
    expect(post.series).toEqual({ id: series.id, slug: series.slug, title: expect.any(String) });
    expect(post.series_order).toBe(2);
    await json<Post>(await action(editor.access, post.id, "publish"), 200);
    const listed = (await json<{ results: Series[] }>(await call(`${API}/series/`), 200)).results.find((s) => s.id === series.id)!;
    expect(listed.post_count).toBe(1);
    expect((await json<Page<Post>>(await call(`${API}/posts/?series=${series.slug}`), 200)).results.map((p) => p.id)).toEqual([post.id]);

    const replaced = await uploaded(editor.access);
    const updated = await json<Series>(
      await call(`${API}/series/${series.id}/`, {
        method: "PATCH",
        bearer: editor.access,
        json: { is_completed: true, cover_image: replaced, cover_image_alt: "New" },
      }),
      200,
    );
    expect(updated).toMatchObject({ is_completed: true, cover_image: { id: replaced } });
    expect(await inR2(cover)).toBe(false);
    expect((await call(`${API}/series/${series.id}/`, { method: "DELETE", bearer: editor.access })).status).toBe(204);
    expect(await inR2(replaced)).toBe(false);
    expect((await json<Post>(await getPost(post.id), 200)).series).toBeNull();
  });
});
