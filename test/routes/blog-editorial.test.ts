/**
 * The blog's editorial API (issue 9 items 1–3): writing posts, who may see and change what, the
 * workflow, and bad input — each a clear 4xx in the envelope with nothing written.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/lib/hash";
import { call, expectError, jsonWithStatus as json, type Page } from "../helpers/http";
import { makePng } from "../helpers/images";
import {
  API,
  action,
  category,
  createPost,
  getPost,
  inR2,
  type Post,
  patchPost,
  postCount,
  revisionCount,
  row,
  uniq,
  upload,
  uploaded,
  withRole,
} from "./blog-editorial-setup";

describe("images", () => {
  it("stores an upload for writers and answers its id, url and size", async () => {
    const author = await withRole("author");
    const img = await json<{ id: string; url: string; width: number; height: number }>(await upload(author.access), 201);
    expect(img.id).toMatch(/^[0-9a-f]{64}\.png$/);
    expect(img).toMatchObject({ url: `/media/images/${img.id}`, width: 320, height: 200 });
    expect(await inR2(img.id)).toBe(true);
  });

  it("refuses a file that is not an image, anonymous callers and plain users", async () => {
    const author = await withRole("author");
    const notImage = new TextEncoder().encode("<svg onload=alert(1)></svg> definitely not a PNG");
    const e = await expectError(await upload(author.access, notImage), 400, "VALIDATION_ERROR");
    expect(e.errors?.image).toBeDefined();
    const empty = await call(`${API}/images/`, { bearer: author.access, body: new FormData() });
    expect((await expectError(empty, 400, "VALIDATION_ERROR")).errors?.image).toBeDefined();
    const reader = await withRole("user");
    await expectError(await upload(reader.access), 403, "FORBIDDEN");
    await expectError(await upload(""), 401, "AUTHENTICATION_REQUIRED");
  });

  it("refuses a part other than the image, naming the one it takes, and stores nothing", async () => {
    const author = await withRole("author");
    const bytes = await makePng(320, 200, { seed: uniq() });
    const form = new FormData();
    form.append("image", new File([bytes], "photo.png", { type: "image/png" }));
    form.append("alt", "A fern in a pot");
    const e = await expectError(await call(`${API}/images/`, { bearer: author.access, body: form }), 400, "VALIDATION_ERROR");
    expect(e.errors).toEqual({ non_field_errors: ['Unrecognized key: "alt". Accepted fields: image.'] });
    expect(await inR2(`${await sha256Hex(bytes)}.png`)).toBe(false);
  });
});

describe("writing a post", () => {
  it("creates a draft with sanitised, validated blocks, computed fields and revision 1", async () => {
    const editor = await withRole("editor");
    const author = await withRole("author");
    const cat = await category(editor.access);
    const image = await uploaded(author.access);
    const title = `Watering Succulents: the Élite Guide ${uniq()}`;
    const post = await createPost(author.access, {
      title,
      introduction: '<p>Less is more.<script>alert(1)</script><img src=x onerror="alert(2)"></p>',
      categories: [cat.slug],
      tags: ["Succulents", "watering", "succulents"],
      featured_image: image,
      featured_image_alt: "A row of succulents",
      content_blocks: [
        { type: "heading", value: "When to water" },
        { type: "paragraph", value: '<p onclick="x()">Soak and dry. <a href="javascript:alert(1)">x</a></p>' },
        { type: "image", value: { image, alt: "Echeveria" } },
        { type: "quote", value: { quote_text: "<b>Drown</b> them never", attribution: "A grower" } },
        { type: "code", value: { code: "water(every=14)", language: "Python" } },
        { type: "care_tip", value: { title: "Drainage", text: "<p>Use gritty soil.</p>" } },
        {
          type: "call_to_action",
          value: { cta_title: "Identify yours", button_text: "Try it", button_url: "/identify/", button_style: "outline" },
        },
      ],
    });
    expect(post.status).toBe("draft");
    expect(post.slug).toMatch(/^watering-succulents-the-elite-guide-/);
    expect(post.revision).toBe(1);
    expect(post.author?.username).toBe(author.username);
    expect(post.introduction).not.toMatch(/script|onerror|alert/);
    expect(post.tags).toEqual(["succulents", "watering"]);
    expect(post.categories.map((c) => c.slug)).toEqual([cat.slug]);
    expect(post.featured_image).toEqual({ id: image, url: `/media/images/${image}`, alt: "A row of succulents" });
    expect(post.excerpt).toBe("Less is more.");
    expect(post.reading_time).toBe(1);
    expect(post.content_blocks.map((b) => b.type)).toEqual([
      "heading",
      "paragraph",
      "image",
      "quote",
      "code",
      "care_tip",
      "call_to_action",
    ]);
    const para = post.content_blocks[1]!.value as string;
    expect(para).toContain("Soak and dry.");
    expect(para).not.toMatch(/onclick|javascript/);
    expect(post.content_blocks[2]!.value).toEqual({ image, alt: "Echeveria", caption: "" });
    expect(post.rendered_blocks[2]!.value).toMatchObject({ id: image, url: `/media/images/${image}`, width: 320, height: 200 });
    expect(post.content_blocks[4]!.value).toEqual({ code: "water(every=14)", language: "python" });
    // The editable blocks go back to PATCH as they are (a no-op edit is still a revision).
    const again = await json<Post>(await patchPost(author.access, post.id, { content_blocks: post.content_blocks }), 200);
    expect(again.content_blocks).toEqual(post.content_blocks);
    expect(again.revision).toBe(2);
    // Revision 1 was written with the post.
    const rev = await env.DB.prepare("SELECT number, author_id, snapshot FROM blog_revisions WHERE post_id = ? ORDER BY number")
      .bind(post.id)
      .all<{ number: number; author_id: string; snapshot: string }>();
    expect(rev.results.map((r) => r.number)).toEqual([1, 2]);
    expect(rev.results[0]!.author_id).toBe(author.userId);
    expect(JSON.parse(rev.results[0]!.snapshot)).toMatchObject({ title, tags: ["succulents", "watering"], featured_image: image });
  });

  it("refuses bad input with a clear 400 and writes nothing", async () => {
    const author = await withRole("author");
    const before = await postCount();
    const bad = async (body: Record<string, unknown>, field: string) => {
      const e = await expectError(
        await call(`${API}/posts/`, { bearer: author.access, json: { title: "Bad", ...body } }),
        400,
        "VALIDATION_ERROR",
      );
      expect(Object.keys(e.errors ?? {}), JSON.stringify(e)).toContain(field);
    };
    await bad({ content_blocks: [{ type: "marquee", value: "hi" }] }, "content_blocks.0.type");
    await bad(
      {
        content_blocks: [
          { type: "heading", value: "ok" },
          { type: "quote", value: "not an object" },
        ],
      },
      "content_blocks.1.value",
    );
    await bad({ content_blocks: [{ type: "image", value: { image: "nope.png", alt: "x" } }] }, "content_blocks.0.value.image");
    await bad(
      { content_blocks: [{ type: "image", value: { image: `${"a".repeat(64)}.png`, alt: "never uploaded" } }] },
      "content_blocks.0.value.image",
    );
    await bad(
      {
        content_blocks: [
          { type: "call_to_action", value: { cta_title: "Click", button_text: "Go", button_url: "javascript:alert(document.cookie)" } },
        ],
      },
      "content_blocks.0.value.button_url",
    );
    // Over the size limit: eleven paragraphs of 19 000 characters each are over 200 kB.
    await bad({ content_blocks: Array.from({ length: 11 }, () => ({ type: "paragraph", value: "x".repeat(19_000) })) }, "content_blocks");
    await bad({ categories: ["no-such-category"] }, "categories");
    await bad({ series: "no-such-series" }, "series");
    await bad({ slug: "Not A Slug!" }, "slug");
    await bad({ slug: crypto.randomUUID() }, "slug");
    const image = await uploaded(author.access);
    await bad({ featured_image: image }, "featured_image_alt");
    await bad({ title: "" }, "title");
    await bad({ tags: ["<script>"] }, "tags");
    await bad({ surprise: 1 }, "non_field_errors");
    const malformed = await call(`${API}/posts/`, { bearer: author.access, headers: { "Content-Type": "application/json" }, body: "{" });
    expect(malformed.status).toBe(400);
    expect(await postCount()).toBe(before);
  });

  it("answers 409 for a slug in use and 403 for an author featuring a post, writing nothing", async () => {
    const author = await withRole("author");
    const slug = `taken-${uniq()}`;
    await createPost(author.access, { slug });
    const before = await postCount();
    await expectError(await call(`${API}/posts/`, { bearer: author.access, json: { title: "Again", slug } }), 409, "CONFLICT");
    await expectError(await call(`${API}/posts/`, { bearer: author.access, json: { title: "Me!", is_featured: true } }), 403, "FORBIDDEN");
    // A derived slug that is taken gets a suffix instead.
    const title = `Same title ${uniq()}`;
    const a = await createPost(author.access, { title });
    const b = await createPost(author.access, { title });
    expect(b.slug).not.toBe(a.slug);
    expect(b.slug.startsWith(a.slug)).toBe(true);
    expect(await postCount()).toBe(before + 2);
    // Renaming onto a taken slug is a 409 too, and the post keeps its revision.
    await expectError(await patchPost(author.access, b.id, { slug }), 409, "CONFLICT");
    expect((await row(b.id))!.revision).toBe(1);
    expect(await revisionCount(b.id)).toBe(1);
  });

  it("is for writers only: 401 anonymous, 403 for users and moderators", async () => {
    await expectError(await call(`${API}/posts/`, { json: { title: "Hi" } }), 401, "AUTHENTICATION_REQUIRED");
    for (const role of ["user", "moderator"] as const) {
      const u = await withRole(role);
      await expectError(await call(`${API}/posts/`, { bearer: u.access, json: { title: "Hi" } }), 403, "FORBIDDEN");
    }
  });
});

describe("who sees what", () => {
  it("shows a draft only to its author and editors; everyone else gets 404, by id or slug", async () => {
    const author = await withRole("author");
    const other = await withRole("author");
    const editor = await withRole("editor");
    const reader = await withRole("user");
    const post = await createPost(author.access, { introduction: "<p>Secret plans</p>" });
    for (const key of [post.id, post.slug]) {
      await expectError(await getPost(key), 404, "NOT_FOUND");
      await expectError(await getPost(key, reader.access), 404, "NOT_FOUND");
      const e = await expectError(await getPost(key, other.access), 404, "NOT_FOUND");
      expect(JSON.stringify(e)).not.toContain("Secret");
      expect((await json<Post>(await getPost(key, author.access), 200)).id).toBe(post.id);
      expect((await json<Post>(await getPost(key, editor.access), 200)).id).toBe(post.id);
    }
    // Nor can another author change or even find it.
    await expectError(await patchPost(other.access, post.id, { title: "Mine now" }), 404, "NOT_FOUND");
    await expectError(await call(`${API}/posts/${post.id}/`, { method: "DELETE", bearer: other.access }), 404, "NOT_FOUND");
    await expectError(await action(other.access, post.id, "submit"), 404, "NOT_FOUND");
    await expectError(await call(`${API}/posts/${post.id}/revisions/`, { bearer: other.access }), 404, "NOT_FOUND");
    expect((await row(post.id))!.title).toBe(post.title);
  });

  it("lists published posts for everyone, other statuses for writers (authors: their own)", async () => {
    const editor = await withRole("editor");
    const author = await withRole("author");
    const other = await withRole("author");
    const cat = await category(editor.access);
    const tag = `t${uniq()}`;
    const mine = await createPost(author.access, { categories: [cat.slug], tags: [tag] });
    const theirs = await createPost(other.access, { categories: [cat.slug], tags: [tag] });
    const live = await createPost(other.access, { categories: [cat.slug], tags: [tag] });
    await json<Post>(await action(editor.access, live.id, "publish"), 200);

    const ids = async (query: string, bearer?: string) =>
      (await json<Page<Post>>(await call(`${API}/posts/${query}`, { bearer }), 200)).results.map((p) => p.id);
    expect(await ids(`?category=${cat.slug}`)).toEqual([live.id]);
    expect(await ids(`?tag=${tag}`)).toEqual([live.id]);
    expect(await ids(`?author=${other.username}`)).toEqual([live.id]);
    expect(await ids(`?status=published&category=${cat.slug}`, author.access)).toEqual([live.id]);
    expect(await ids(`?status=draft&category=${cat.slug}`, author.access)).toEqual([mine.id]);
    expect((await ids(`?status=draft&category=${cat.slug}`, editor.access)).sort()).toEqual([mine.id, theirs.id].sort());
    await expectError(await call(`${API}/posts/?status=draft`), 401, "AUTHENTICATION_REQUIRED");
    const reader = await withRole("user");
    await expectError(await call(`${API}/posts/?status=review`, { bearer: reader.access }), 403, "FORBIDDEN");
    await expectError(await call(`${API}/posts/?status=secret`), 400, "VALIDATION_ERROR");
    const page = await json<Page<Post>>(await call(`${API}/posts/?category=${cat.slug}&page_size=1`), 200);
    expect(page).toMatchObject({ count: 1, next: null, previous: null });
    // Each listed post carries its own title and slug (rows come from a batch keyed by column name).
    expect(page.results[0]).toMatchObject({ id: live.id, title: live.title, slug: live.slug });
    const drafts = await json<Page<Post>>(await call(`${API}/posts/?status=draft&category=${cat.slug}`, { bearer: author.access }), 200);
    expect(drafts.results[0]).toMatchObject({ id: mine.id, title: mine.title, slug: mine.slug });
  });
});

describe("the workflow", () => {
  it("goes draft → review → published → unpublished → review → published, by role", async () => {
    const author = await withRole("author");
    const editor = await withRole("editor");
    const post = await createPost(author.access, {});
    // An author cannot publish, unpublish or schedule (403 before anything).
    await expectError(await action(author.access, post.id, "publish"), 403, "FORBIDDEN");
    await expectError(await action(editor.access, post.id, "unpublish"), 409, "INVALID_STATE");
    expect((await json<Post>(await action(author.access, post.id, "submit"), 200)).status).toBe("review");
    await expectError(await action(author.access, post.id, "submit"), 409, "INVALID_STATE");
    // Authors may still edit in review.
    await json<Post>(await patchPost(author.access, post.id, { title: "Reviewed title" }), 200);

    const published = await json<Post>(await action(editor.access, post.id, "publish"), 200);
    expect(published.status).toBe("published");
    const first = published.first_published_at!;
    expect(first).toBeTruthy();
    expect(published.publish_date).toBe(first.slice(0, 10));
    expect((await json<Post>(await getPost(post.slug), 200)).title).toBe("Reviewed title");
    await expectError(await action(editor.access, post.id, "publish"), 409, "INVALID_STATE");
    await expectError(await action(author.access, post.id, "submit"), 409, "INVALID_STATE");

    // Published: the author can no longer change it; an editor's edit is live.
    await expectError(await patchPost(author.access, post.id, { title: "Sneaky" }), 403, "FORBIDDEN");
    await expectError(await call(`${API}/posts/${post.id}/`, { method: "DELETE", bearer: author.access }), 403, "FORBIDDEN");
    const edited = await json<Post>(await patchPost(editor.access, post.id, { title: "Edited live" }), 200);
    expect(edited.status).toBe("published");
    expect((await json<Post>(await getPost(post.id), 200)).title).toBe("Edited live");

    expect((await json<Post>(await action(editor.access, post.id, "unpublish"), 200)).status).toBe("unpublished");
    await expectError(await getPost(post.id), 404, "NOT_FOUND");
    expect((await json<Post>(await action(author.access, post.id, "submit"), 200)).status).toBe("review");
    await new Promise((r) => setTimeout(r, 5));
    const again = await json<Post>(await action(editor.access, post.id, "publish"), 200);
    expect(again.first_published_at).toBe(first);
    expect(again.last_published_at! > first).toBe(true);
  });

  it("lets another author neither edit nor publish a published post", async () => {
    const author = await withRole("author");
    const other = await withRole("author");
    const editor = await withRole("editor");
    const post = await createPost(author.access, {});
    await json<Post>(await action(editor.access, post.id, "publish"), 200);
    await expectError(await patchPost(other.access, post.id, { title: "Hijacked" }), 403, "FORBIDDEN");
    await expectError(await action(other.access, post.id, "unpublish"), 403, "FORBIDDEN");
    await expectError(await call(`${API}/posts/${post.id}/`, { method: "DELETE", bearer: other.access }), 403, "FORBIDDEN");
    expect(await row(post.id)).toMatchObject({ title: post.title, status: "published", revision: 1 });
  });

  it("only editors feature posts", async () => {
    const author = await withRole("author");
    const editor = await withRole("editor");
    const post = await createPost(author.access, {});
    await expectError(await patchPost(author.access, post.id, { is_featured: true }), 403, "FORBIDDEN");
    expect((await json<Post>(await patchPost(author.access, post.id, { is_featured: false }), 200)).is_featured).toBe(false);
    expect((await json<Post>(await patchPost(editor.access, post.id, { is_featured: true }), 200)).is_featured).toBe(true);
  });
});

describe("deleting", () => {
  it("removes the post with its revisions and releases photos nothing else uses", async () => {
    const author = await withRole("author");
    const editor = await withRole("editor");
    const a = await uploaded(author.access);
    const b = await uploaded(author.access);
    const shared = await uploaded(author.access);
    const post = await createPost(author.access, {
      featured_image: a,
      featured_image_alt: "A",
      content_blocks: [{ type: "image", value: { image: shared, alt: "shared" } }],
    });
    await createPost(author.access, { content_blocks: [{ type: "image", value: { image: shared, alt: "still used" } }] });
    // Replacing the featured image keeps the old one while a revision refers to it.
    await json<Post>(await patchPost(author.access, post.id, { featured_image: b, featured_image_alt: "B" }), 200);
    expect(await inR2(a)).toBe(true);
    expect((await call(`${API}/posts/${post.id}/`, { method: "DELETE", bearer: author.access })).status).toBe(204);
    expect(await row(post.id)).toBeNull();
    expect(await revisionCount(post.id)).toBe(0);
    expect(await inR2(a)).toBe(false);
    expect(await inR2(b)).toBe(false);
    expect(await inR2(shared)).toBe(true);
    // A released photo leaves the blog's media library with it; one still shown stays.
    const inLibrary = async (ref: string) => (await env.DB.prepare("SELECT 1 FROM blog_images WHERE ref = ?").bind(ref).first()) !== null;
    expect([await inLibrary(a), await inLibrary(b), await inLibrary(shared)]).toEqual([false, false, true]);
    // Editors delete published posts too.
    const live = await createPost(author.access, {});
    await json<Post>(await action(editor.access, live.id, "publish"), 200);
    expect((await call(`${API}/posts/${live.id}`, { method: "DELETE", bearer: editor.access })).status).toBe(204);
    await expectError(await getPost(live.id), 404, "NOT_FOUND");
  });
});
