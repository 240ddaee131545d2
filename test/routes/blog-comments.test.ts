/**
 * Blog comments through the Worker (issue 9 item 4): published posts only; new users held for
 * moderation and seeing their own pending comments; trusted users approved at once; replies;
 * exact counts under concurrency; moderation permissions attacked; reports; the write limit.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { blogPosts } from "../../src/db/schema";
import { blogPost } from "../helpers/blog";
import { call, expectError, jsonWithStatus as json, type Page } from "../helpers/http";
import { bearerUser } from "../helpers/users";

type User = Awaited<ReturnType<typeof bearerUser>>;
interface Comment {
  id: string;
  body: string;
  status: string;
  parent_id: string | null;
  author: { id: string; username: string };
}

async function trusted(role = "user"): Promise<User> {
  const u = await bearerUser();
  await env.DB.prepare("UPDATE users SET trust_level = 'basic', role = ? WHERE id = ?").bind(role, u.userId).run();
  return u;
}
const comments = async (postId: string, access?: string) =>
  (await json<Page<Comment>>(await call(`/api/v1/blog/posts/${postId}/comments/?page_size=100`, { bearer: access }), 200)).results;
const comment = (postId: string, access: string, body: unknown) =>
  call(`/api/v1/blog/posts/${postId}/comments/`, { bearer: access, json: body });
const notes = async (access: string, type: string) =>
  (
    await json<Page<{ type: string; title: string; body: string; data: unknown }>>(
      await call("/api/v1/notifications/?page_size=100", { bearer: access }),
      200,
    )
  ).results
    .filter((n) => n.type === type)
    .map(({ title, body, data }) => ({ title, body, data }));
const commentCount = async (postId: string) =>
  (await database(env).select({ n: blogPosts.commentCount }).from(blogPosts).where(eq(blogPosts.id, postId)).get())!.n;

describe("blog comments", () => {
  it("approves a trusted user's comment at once and holds a new user's for moderation", async () => {
    const post = await blogPost();
    const regular = await trusted();
    const newcomer = await bearerUser();
    const shown = await json<Comment>(await comment(post.id, regular.access, { body: "<p>Lovely <em>guide</em>!</p>" }), 201);
    expect(shown).toMatchObject({
      status: "approved",
      body: "<p>Lovely <em>guide</em>!</p>",
      author: { id: regular.userId, username: regular.username },
    });
    const held = await json<Comment>(await comment(post.id, newcomer.access, { body: "First!" }), 201);
    expect(held.status).toBe("pending");

    expect((await comments(post.id)).map((c) => c.id)).toEqual([shown.id]);
    expect((await comments(post.id, newcomer.access)).map((c) => [c.id, c.status])).toEqual([
      [shown.id, "approved"],
      [held.id, "pending"],
    ]);
    expect((await comments(post.id, regular.access)).map((c) => c.id)).toEqual([shown.id]);
    expect(await commentCount(post.id)).toBe(1);
    // The count readers see (edge-cached) follows.
    const detail = await json<{ comment_count: number }>(await call(`/api/v2/blog-posts/${post.id}/`), 200);
    expect(detail.comment_count).toBe(1);

    // A moderator approves the held one; the count and the public read follow.
    const mod = await trusted("moderator");
    await json(await call(`/api/v1/blog/comments/${held.id}/approve/`, { method: "POST", bearer: mod.access }), 200);
    expect(await commentCount(post.id)).toBe(2);
    expect((await json<{ comment_count: number }>(await call(`/api/v2/blog-posts/${post.id}/`), 200)).comment_count).toBe(2);
  });

  it("names the post by its slug as well as its id, as the web app's URLs do; a draft's slug is 404", async () => {
    const post = await blogPost();
    const regular = await trusted();
    const bySlug = await json<Comment>(await comment(post.slug, regular.access, { body: "Found it by its slug." }), 201);
    expect((await comments(post.slug)).map((c) => c.id)).toEqual([bySlug.id]);
    expect((await comments(post.id)).map((c) => c.id)).toEqual([bySlug.id]);
    expect(await commentCount(post.id)).toBe(1);
    const draft = await blogPost({ status: "draft" });
    await expectError(await call(`/api/v1/blog/posts/${draft.slug}/comments/`), 404, "NOT_FOUND");
    await expectError(await comment(draft.slug, regular.access, { body: "Too early." }), 404, "NOT_FOUND");
    await expectError(await call(`/api/v1/blog/posts/${"x".repeat(201)}/comments/`), 400, "VALIDATION_ERROR");
  });

  it("refuses drafts, empty bodies, bad parents and anonymous writers, writing nothing", async () => {
    const draft = await blogPost({ status: "draft" });
    const u = await trusted();
    await expectError(await comment(draft.id, u.access, { body: "hi" }), 404, "NOT_FOUND");
    await expectError(await call(`/api/v1/blog/posts/${draft.id}/comments/`), 404, "NOT_FOUND");
    const post = await blogPost();
    const other = await blogPost();
    await expectError(
      await comment(post.id, u.access, { body: "<script>alert(1)</script><img src=x onerror=alert(1)>" }),
      400,
      "VALIDATION_ERROR",
    );
    await expectError(await comment(post.id, u.access, { body: "" }), 400, "VALIDATION_ERROR");
    await expectError(await comment(post.id, u.access, { body: "x".repeat(5001) }), 400, "VALIDATION_ERROR");
    const elsewhere = await json<Comment>(await comment(other.id, u.access, { body: "On the other post" }), 201);
    await expectError(await comment(post.id, u.access, { body: "reply", parent_id: elsewhere.id }), 400, "VALIDATION_ERROR");
    await expectError(await call(`/api/v1/blog/posts/${post.id}/comments/`, { json: { body: "anon" } }), 401, "AUTHENTICATION_REQUIRED");
    expect(await comments(post.id)).toEqual([]);
    expect(await commentCount(post.id)).toBe(0);
  });

  it("refuses a field it does not take, naming the ones it does: a misspelt parent_id posts no top-level comment", async () => {
    const post = await blogPost();
    const u = await trusted();
    const first = await json<Comment>(await comment(post.id, u.access, { body: "Which soil?" }), 201);
    const refused = await expectError(await comment(post.id, u.access, { body: "Bark mix.", parent: first.id }), 400, "VALIDATION_ERROR");
    expect(refused.errors?.non_field_errors).toEqual(['Unrecognized key: "parent". Accepted fields: body, parent_id.']);
    expect((await comments(post.id)).map((c) => c.id)).toEqual([first.id]);
    expect(await commentCount(post.id)).toBe(1);
  });

  it("answers an approved comment with a reply, and its author hears of it once", async () => {
    const post = await blogPost();
    const [a, b] = [await trusted(), await trusted()];
    const first = await json<Comment>(await comment(post.id, a.access, { body: "Which soil?" }), 201);
    const reply = await json<Comment>(await comment(post.id, b.access, { body: "<p>Bark mix.</p>", parent_id: first.id }), 201);
    expect(reply.parent_id).toBe(first.id);
    // Answering yourself tells nobody.
    await json<Comment>(await comment(post.id, a.access, { body: "Thanks!", parent_id: first.id }), 201);
    expect(await notes(a.access, "blog_comment_reply")).toEqual([
      {
        title: `${b.username} answered your comment`,
        body: "Bark mix.",
        data: { post_id: post.id, post_slug: post.slug, comment_id: reply.id, author_id: b.userId },
      },
    ]);
  });

  it("cuts a long reply's notification preview between characters, never inside an emoji", async () => {
    const post = await blogPost();
    const [a, b] = [await trusted(), await trusted()];
    const first = await json<Comment>(await comment(post.id, a.access, { body: "Which soil?" }), 201);
    await json<Comment>(await comment(post.id, b.access, { body: `<p>${"a".repeat(139)}🌱 and more</p>`, parent_id: first.id }), 201);
    expect((await notes(a.access, "blog_comment_reply")).map((n) => n.body)).toEqual([`${"a".repeat(139)}…`]);
  });

  it("tells a held comment's author when it is approved, and the parent's author of the reply then", async () => {
    const post = await blogPost({ title: "Orchid rescue" });
    const [parentAuthor, mod] = [await trusted(), await trusted("moderator")];
    const newcomer = await bearerUser();
    const parent = await json<Comment>(await comment(post.id, parentAuthor.access, { body: "Any tips?" }), 201);
    const held = await json<Comment>(await comment(post.id, newcomer.access, { body: "Soak the roots.", parent_id: parent.id }), 201);
    expect(await notes(parentAuthor.access, "blog_comment_reply")).toEqual([]);
    await json(await call(`/api/v1/blog/comments/${held.id}/approve/`, { method: "POST", bearer: mod.access }), 200);
    await json(await call(`/api/v1/blog/comments/${held.id}/approve/`, { method: "POST", bearer: mod.access }), 200);
    expect((await notes(newcomer.access, "blog_comment_approved")).map((n) => n.title)).toEqual([
      'Your comment on "Orchid rescue" is published',
    ]);
    expect(await notes(parentAuthor.access, "blog_comment_reply")).toHaveLength(1);
  });

  it("keeps the count exact under 10 concurrent comments and deletes", async () => {
    const post = await blogPost();
    const writers = await Promise.all(Array.from({ length: 10 }, () => trusted()));
    const made = await Promise.all(
      writers.map((w, i) => comment(post.id, w.access, { body: `Comment ${i}` }).then((r) => json<Comment>(r, 201))),
    );
    expect(await commentCount(post.id)).toBe(10);
    await Promise.all(
      made.slice(0, 4).map((m, i) => call(`/api/v1/blog/comments/${m.id}/`, { method: "DELETE", bearer: writers[i]!.access })),
    );
    expect(await commentCount(post.id)).toBe(6);
  });

  it("lets only the author or a moderator delete, and only moderators moderate", async () => {
    const post = await blogPost();
    const [author, stranger, editor] = [await trusted(), await trusted(), await trusted("editor")];
    const mine = await json<Comment>(await comment(post.id, author.access, { body: "Mine" }), 201);
    await expectError(await call(`/api/v1/blog/comments/${mine.id}/`, { method: "DELETE", bearer: stranger.access }), 404, "NOT_FOUND");
    for (const action of ["approve", "reject"]) {
      await expectError(
        await call(`/api/v1/blog/comments/${mine.id}/${action}/`, { method: "POST", bearer: stranger.access }),
        403,
        "FORBIDDEN",
      );
      await expectError(await call(`/api/v1/blog/comments/${mine.id}/${action}/`, { method: "POST" }), 401, "AUTHENTICATION_REQUIRED");
    }
    await expectError(await call("/api/v1/blog/comments/moderation/", { bearer: author.access }), 403, "FORBIDDEN");
    expect((await comments(post.id)).map((c) => c.id)).toEqual([mine.id]);
    // An editor rejects it: it disappears and the count drops.
    expect(
      (await json<Comment>(await call(`/api/v1/blog/comments/${mine.id}/reject/`, { method: "POST", bearer: editor.access }), 200)).status,
    ).toBe("rejected");
    expect(await comments(post.id)).toEqual([]);
    expect(await commentCount(post.id)).toBe(0);
    const again = await json<Comment>(await comment(post.id, author.access, { body: "Again" }), 201);
    expect((await call(`/api/v1/blog/comments/${again.id}/`, { method: "DELETE", bearer: editor.access })).status).toBe(204);
  });

  it("takes one report per user, never on your own comment, and queues it for moderators", async () => {
    const post = await blogPost();
    const [author, reporter, mod] = [await trusted(), await trusted(), await trusted("moderator")];
    const target = await json<Comment>(await comment(post.id, author.access, { body: "Buy cheap seeds at spam.example" }), 201);
    const report = (who: User) => call(`/api/v1/blog/comments/${target.id}/report/`, { bearer: who.access, json: { reason: "Spam" } });
    expect((await report(reporter)).status).toBe(201);
    await expectError(await report(reporter), 409, "ALREADY_REPORTED");
    await expectError(await report(author), 400, "VALIDATION_ERROR");
    const queue = await json<Page<Comment & { open_reports: number }>>(
      await call("/api/v1/blog/comments/moderation/?status=reported", { bearer: mod.access }),
      200,
    );
    expect(queue.results.find((c) => c.id === target.id)?.open_reports).toBe(1);
    await json(await call(`/api/v1/blog/comments/${target.id}/reject/`, { method: "POST", bearer: mod.access }), 200);
    const after = await json<Page<Comment>>(await call("/api/v1/blog/comments/moderation/?status=reported", { bearer: mod.access }), 200);
    expect(after.results.find((c) => c.id === target.id)).toBeUndefined();
    const pending = await json<Page<Comment>>(await call("/api/v1/blog/comments/moderation/?status=pending", { bearer: mod.access }), 200);
    expect(Array.isArray(pending.results)).toBe(true);
  });

  it("limits how fast one user writes comments (429 with Retry-After)", async () => {
    const post = await blogPost();
    const u = await trusted();
    const answers = [];
    for (let i = 0; i < 11; i++) answers.push(await comment(post.id, u.access, { body: `Comment number ${i}` }));
    expect(answers.slice(0, 10).every((r) => r.status === 201)).toBe(true);
    const refused = await expectError(answers[10]!, 429, "RATE_LIMITED");
    expect(refused.message).toMatch(/try again in/);
    expect(Number(answers[10]!.headers.get("Retry-After"))).toBeGreaterThan(0);
  });
});
