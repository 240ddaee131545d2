// The blog's editorial workflow and edge cache, attacked (security review of 2026-12-05): each
// test is an attack that worked on the code as reviewed.
//
// The races below are made deterministic by running the service the route calls with an
// environment whose R2 or D1 binding lets the competing request (an editor's publish, the cron
// job) land at the moment an attacker who fires requests in a loop, or times them to the
// cron's known 5-minute tick, would hit: between the author's permission check (a read) and
// the author's write. Nothing else is changed.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AuthenticatedUser } from "../../src/env";
import { deletePost, publishScheduledPosts, unpublishPost, updatePost } from "../../src/services/blog-posts";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { envRacingFirstBatch } from "../helpers/racing-env";
import { action, API, createPost, type Post, uploaded, withRole } from "../routes/blog-editorial-setup";

useEmulators();

type User = Awaited<ReturnType<typeof withRole>>;
const asAuthenticated = (u: User, role: AuthenticatedUser["role"]): AuthenticatedUser => ({ id: u.userId, username: u.username, role });

const stored = (id: string) =>
  env.DB.prepare("SELECT status, content_blocks, revision FROM blog_posts WHERE id = ?")
    .bind(id)
    .first<{ status: string; content_blocks: string; revision: number }>();

/** The author's edit, through `racing`: an image block (its save reads R2) and text no editor saw. Its status, or "saved". */
function unreviewedEdit(racing: typeof env, author: User, postId: string, image: string) {
  return updatePost(racing, asAuthenticated(author, "author"), postId, {
    content_blocks: [
      { type: "image", value: { image, alt: "a fern" } },
      { type: "paragraph", value: "<p>UNREVIEWED text the editor never saw</p>" },
    ],
  }).then(
    () => "saved",
    (err: { status?: number }) => err.status,
  );
}

/** env with an R2 binding whose first `get` runs `before` first (the author's save reads image sizes from R2). */
function envWithR2Hook(before: () => Promise<unknown>) {
  let fired = false;
  const images = new Proxy(env.IMAGES, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "get" || typeof value !== "function") return typeof value === "function" ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        if (!fired) {
          fired = true;
          await before();
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { ...env, IMAGES: images } as typeof env;
}

/** env with a D1 binding that runs `before` once, ahead of the first statement whose SQL matches `pattern`. */
function envWithD1Hook(pattern: RegExp, before: () => Promise<unknown>) {
  let fired = false;
  const wrapStatement = (stmt: D1PreparedStatement, sqlText: string): D1PreparedStatement =>
    new Proxy(stmt, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        if (prop === "bind")
          return (...args: unknown[]) => wrapStatement((value as (...a: unknown[]) => D1PreparedStatement).apply(target, args), sqlText);
        if (["all", "raw", "first", "run"].includes(prop as string))
          return async (...args: unknown[]) => {
            if (!fired && pattern.test(sqlText)) {
              fired = true;
              await before();
            }
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        return value.bind(target);
      },
    });
  const db = new Proxy(env.DB, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "prepare") return (sqlText: string) => wrapStatement(target.prepare(sqlText), sqlText);
      return value.bind(target);
    },
  });
  return { ...env, DB: db } as typeof env;
}

/** env with a D1 binding that refuses (as D1 would a failed write) any batch holding a statement whose SQL matches `pattern`. */
function envRefusingBatches(pattern: RegExp) {
  const sqlOf = new WeakMap<object, string>();
  const remember = (stmt: D1PreparedStatement, sqlText: string): D1PreparedStatement => {
    const bound = new Proxy(stmt, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        if (prop === "bind")
          return (...args: unknown[]) => remember((value as (...a: unknown[]) => D1PreparedStatement).apply(target, args), sqlText);
        return value.bind(target);
      },
    });
    sqlOf.set(bound, sqlText);
    return bound;
  };
  const db = new Proxy(env.DB, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "prepare") return (sqlText: string) => remember(target.prepare(sqlText), sqlText);
      if (prop === "batch")
        return async (statements: D1PreparedStatement[]) => {
          if (statements.some((st) => pattern.test(sqlOf.get(st) ?? ""))) throw new Error("D1_ERROR: simulated failure");
          return target.batch(statements.map((st) => (st as unknown as { valueOf(): D1PreparedStatement }).valueOf()));
        };
      return value.bind(target);
    },
  });
  return { ...env, DB: db } as typeof env;
}

describe("the blog's workflow holds under races, and purges with its changes", () => {
  it("an author's edit that passed its 'not published' check just before an editor published does not go live", async () => {
    const [author, editor] = [await withRole("author"), await withRole("editor")];
    const image = await uploaded(author.access);
    const post = await createPost(author.access, {
      content_blocks: [{ type: "paragraph", value: "<p>Reviewed text</p>" }],
    });
    expect((await action(author.access, post.id, "submit")).status).toBe(200);

    // The author's PATCH (here: the service the route calls) reads the post in review, passes
    // postToChange, validates its blocks (reading the image's size from R2)… and meanwhile the
    // editor publishes what they reviewed.
    const racing = envWithR2Hook(() => action(editor.access, post.id, "publish").then((r) => expect(r.status).toBe(200)));
    const outcome = await unreviewedEdit(racing, author, post.id, image);

    const after = (await stored(post.id))!;
    expect(after.status).toBe("published");
    // Safe: the author's save is refused (403/409) and the live post is what the editor published.
    const live = await call(`/api/v2/blog-posts/${post.id}/`);
    expect(await live.text()).not.toContain("UNREVIEWED");
    expect(after.content_blocks).not.toContain("UNREVIEWED");
    expect(outcome).toBe(403);
    // Nothing of the refused save was written: no revision, no taxonomy.
    const revisions = await env.DB.prepare("SELECT count(*) AS n FROM blog_revisions WHERE post_id = ?")
      .bind(post.id)
      .first<{ n: number }>();
    expect({ revision: after.revision, rows: revisions!.n }).toEqual({ revision: 1, rows: 1 });
  });

  it("an editor's publish or schedule names the revision reviewed: a save since then is a 409 and nothing goes live", async () => {
    const [author, editor] = [await withRole("author"), await withRole("editor")];
    const post = await createPost(author.access, { content_blocks: [{ type: "paragraph", value: "<p>Reviewed text</p>" }] });
    expect((await action(author.access, post.id, "submit")).status).toBe(200);
    const reviewed = (await json<Post>(await call(`${API}/posts/${post.id}/`, { bearer: editor.access }), 200)).revision;
    // The author swaps the content while the editor reads it (a post in review is still theirs to edit).
    const swap = await call(`${API}/posts/${post.id}/`, {
      method: "PATCH",
      bearer: author.access,
      json: { content_blocks: [{ type: "paragraph", value: "<p>SWAPPED after review</p>" }] },
    });
    expect(swap.status).toBe(200);

    const publish = await call(`${API}/posts/${post.id}/publish/`, { bearer: editor.access, json: { revision: reviewed } });
    await expectError(publish, 409, "CONFLICT");
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const schedule = await call(`${API}/posts/${post.id}/schedule/`, {
      bearer: editor.access,
      json: { publish_at: at, revision: reviewed },
    });
    await expectError(schedule, 409, "CONFLICT");
    expect(await stored(post.id)).toMatchObject({ status: "review" });
    expect((await call(`/api/v2/blog-posts/${post.id}/`)).status).toBe(404);

    // Having read the new revision, the editor publishes it; without a revision, publish works as before.
    const current = (await json<Post>(await call(`${API}/posts/${post.id}/`, { bearer: editor.access }), 200)).revision;
    expect(current).toBe(reviewed + 1);
    expect((await call(`${API}/posts/${post.id}/publish/`, { bearer: editor.access, json: { revision: current } })).status).toBe(200);
    const other = await createPost(author.access, {});
    expect((await call(`${API}/posts/${other.id}/publish/`, { method: "POST", bearer: editor.access })).status).toBe(200);
    // A client that always sends Content-Type: application/json may send it with no body at all.
    const third = await createPost(author.access, {});
    const jsonType = { "Content-Type": "application/json" };
    expect((await call(`${API}/posts/${third.id}/publish/`, { method: "POST", bearer: editor.access, headers: jsonType })).status).toBe(
      200,
    );
    expect((await call(`${API}/posts/${third.id}/unpublish/`, { method: "POST", bearer: editor.access, headers: jsonType })).status).toBe(
      200,
    );
    // A body that is there but not JSON is still refused.
    const broken = await call(`${API}/posts/${third.id}/publish/`, {
      method: "POST",
      bearer: editor.access,
      headers: jsonType,
      body: "{revision",
    });
    expect(broken.status).toBe(400);
  });

  it("an author's edit racing the cron's scheduled publish does not go live unreviewed", async () => {
    const [author, editor] = [await withRole("author"), await withRole("editor")];
    const image = await uploaded(author.access);
    const post = await createPost(author.access, { content_blocks: [{ type: "paragraph", value: "<p>Reviewed text</p>" }] });
    const at = new Date(Date.now() + 60_000).toISOString();
    expect((await call(`${API}/posts/${post.id}/schedule/`, { bearer: editor.access, json: { publish_at: at } })).status).toBe(200);
    // The author sees scheduled_at, so knows the cron tick that will publish it.
    expect((await json<Post>(await call(`${API}/posts/${post.id}/`, { bearer: author.access }), 200)).scheduled_at).not.toBeNull();

    const racing = envWithR2Hook(() => publishScheduledPosts(env, Date.now() + 120_000));
    const outcome = await unreviewedEdit(racing, author, post.id, image);

    const after = (await stored(post.id))!;
    expect(after.status).toBe("published");
    expect(after.content_blocks).not.toContain("UNREVIEWED");
    expect(outcome).not.toBe("saved");
  });

  it("an author's tagged edit racing an editor's delete answers 404, not a server error", async () => {
    const [author, editor] = [await withRole("author"), await withRole("editor")];
    const image = await uploaded(author.access);
    const post = await createPost(author.access, { content_blocks: [{ type: "paragraph", value: "<p>Soon gone</p>" }] });
    // The editor deletes the post while the author's save validates its image (an R2 read).
    const racing = envWithR2Hook(async () =>
      expect((await call(`${API}/posts/${post.id}/`, { method: "DELETE", bearer: editor.access })).status).toBe(204),
    );
    const outcome = await updatePost(racing, asAuthenticated(author, "author"), post.id, {
      tags: ["ferns", "shade"],
      content_blocks: [{ type: "image", value: { image, alt: "a fern" } }],
    }).then(
      () => "saved",
      (err: { status?: number }) => err.status,
    );
    expect(outcome).toBe(404);
    expect(await stored(post.id)).toBeNull();
  });

  it("an author's delete that passed its check just before an editor published neither deletes the live post nor leaves it cached", async () => {
    const [author, editor] = [await withRole("author"), await withRole("editor")];
    const post = await createPost(author.access, { content_blocks: [{ type: "paragraph", value: "<p>Reviewed text</p>" }] });
    expect((await action(author.access, post.id, "submit")).status).toBe(200);

    // deletePost reads the post (draft → allowed), then its revisions, then deletes. The editor
    // publishes in between, and a reader fills the edge cache with the live post.
    const racing = envWithD1Hook(/from "blog_revisions"/i, async () => {
      expect((await action(editor.access, post.id, "publish")).status).toBe(200);
      expect((await call(`/api/v2/blog-posts/${post.id}/`)).status).toBe(200);
    });
    const outcome = await deletePost(racing, asAuthenticated(author, "author"), post.id).then(
      () => "deleted",
      (err: { status?: number }) => err.status,
    );

    const after = await stored(post.id);
    // Safe: either the published post is still there (the author may not delete it) — or, if it
    // is gone, the public reads no longer serve it.
    if (after === null) expect((await call(`/api/v2/blog-posts/${post.id}/`)).status).toBe(404);
    expect(outcome).not.toBe("deleted");
    expect(after?.status).toBe("published");
  });

  it("a move that lost a race to another editor's names the post's state as it is now, not as it was read", async () => {
    const [editor, other] = [await withRole("editor"), await withRole("editor")];
    const post = await createPost(editor.access, {});
    expect((await action(editor.access, post.id, "publish")).status).toBe(200);
    // The other editor unpublishes between this editor's read and its conditional UPDATE.
    const racing = envRacingFirstBatch(async () => expect((await action(other.access, post.id, "unpublish")).status).toBe(200));
    const lost = await unpublishPost(racing.env, asAuthenticated(editor, "editor"), post.id).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(lost).toMatchObject({ status: 409, code: "INVALID_STATE", message: "Cannot unpublish a post that is unpublished." });
  });

  it("an unpublish whose cache purge failed changes nothing: the retry unpublishes and readers stop getting the post", async () => {
    const editor = await withRole("editor");
    const post = await createPost(editor.access, { content_blocks: [{ type: "paragraph", value: "<p>Take me down</p>" }] });
    expect((await action(editor.access, post.id, "publish")).status).toBe(200);
    expect((await call(`/api/v2/blog-posts/${post.id}/`)).status).toBe(200); // cached now

    // D1 refuses the batch that holds the purge (as it would a failed write).
    const failing = envRefusingBatches(/blog_cache_state/i);
    const first = await unpublishPost(failing, asAuthenticated(editor, "editor"), post.id).then(
      () => "ok",
      () => "failed",
    );
    expect(first).toBe("failed");
    expect((await stored(post.id))!.status).toBe("published"); // nothing changed
    // The editor retries, as an error invites them to.
    expect((await action(editor.access, post.id, "unpublish")).status).toBe(200);
    expect((await stored(post.id))!.status).toBe("unpublished");
    expect((await call(`/api/v2/blog-posts/${post.id}/`)).status).toBe(404);
  });
});
