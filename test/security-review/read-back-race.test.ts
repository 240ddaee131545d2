// A write that reads back what it wrote, and a delete by someone else (an editor, a moderator, the
// owner in another tab) that lands in between: the read-back finds nothing, and the answer is the
// 404 of a missing object, never a server error. Each race is staged with an `env` whose D1
// binding runs the delete just after the service's write (test/helpers/racing-env.ts).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AuthenticatedUser } from "../../src/env";
import { postDetail as publishedPostDetail } from "../../src/services/blog-public";
import { createPost, publishPost, restoreRevision, submitPost, updatePost } from "../../src/services/blog-posts";
import { call } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { envAfterStatement } from "../helpers/racing-env";
import { API, createPost as createPostByApi, withRole } from "../routes/blog-editorial-setup";

useEmulators();

type User = Awaited<ReturnType<typeof withRole>>;
const asAuthenticated = (u: User, role: AuthenticatedUser["role"]): AuthenticatedUser => ({ id: u.userId, username: u.username, role });
const notFound = { status: 404, code: "NOT_FOUND", message: "Post not found." };

describe("a blog post deleted by an editor between a write and its read-back answers 404", () => {
  const editorDeletes = (editor: User, id: string) => async () =>
    expect((await call(`${API}/posts/${id}/`, { method: "DELETE", bearer: editor.access })).status).toBe(204);

  it("creating a draft", async () => {
    const [author, editor] = [await withRole("author"), await withRole("editor")];
    const racing = envAfterStatement(/insert into "blog_posts"/i, async () => {
      const created = await env.DB.prepare("SELECT id FROM blog_posts WHERE author_id = ?").bind(author.userId).first<{ id: string }>();
      await editorDeletes(editor, created!.id)();
    });
    await expect(createPost(racing.env, asAuthenticated(author, "author"), { title: "Gone at once" })).rejects.toMatchObject(notFound);
    expect(racing.fired()).toBe(true);
  });

  const writes: Record<string, (racing: typeof env, user: AuthenticatedUser, id: string) => Promise<unknown>> = {
    "editing it": (racing, user, id) => updatePost(racing, user, id, { title: "Edited meanwhile" }),
    "restoring a revision": (racing, user, id) => restoreRevision(racing, user, id, 1),
    "submitting it": (racing, user, id) => submitPost(racing, user, id),
  };
  for (const [what, write] of Object.entries(writes)) {
    it(what, async () => {
      const [author, editor] = [await withRole("author"), await withRole("editor")];
      const post = await createPostByApi(author.access, { content_blocks: [{ type: "paragraph", value: "<p>Soon gone</p>" }] });
      const racing = envAfterStatement(/update "blog_posts"/i, editorDeletes(editor, post.id));
      await expect(write(racing.env, asAuthenticated(author, "author"), post.id)).rejects.toMatchObject(notFound);
      expect(racing.fired()).toBe(true);
    });
  }

  it("publishing it", async () => {
    const [editor, other] = [await withRole("editor"), await withRole("editor")];
    const post = await createPostByApi(editor.access, {});
    const racing = envAfterStatement(/update "blog_posts"/i, editorDeletes(other, post.id));
    await expect(publishPost(racing.env, asAuthenticated(editor, "editor"), post.id)).rejects.toMatchObject(notFound);
    expect(racing.fired()).toBe(true);
  });
});

describe("a published post deleted between the reads of its public detail", () => {
  it("is answered as read, not a server error: the detail is read in one batch", async () => {
    const [editor, other] = [await withRole("editor"), await withRole("editor")];
    const post = await createPostByApi(editor.access, { content_blocks: [{ type: "paragraph", value: "<p>Read whole</p>" }] });
    expect((await call(`${API}/posts/${post.id}/publish/`, { method: "POST", bearer: editor.access })).status).toBe(200);
    const racing = envAfterStatement(/from "blog_posts"/i, async () =>
      expect((await call(`${API}/posts/${post.id}/`, { method: "DELETE", bearer: other.access })).status).toBe(204),
    );
    const detail = await publishedPostDetail(racing.env, post.id);
    expect(racing.fired()).toBe(true);
    expect(detail).toMatchObject({ id: post.id, title: post.title });
    expect(JSON.stringify(detail.content_blocks)).toContain("Read whole");
  });
});
