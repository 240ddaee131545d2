/**
 * A profile that is not public shows its owner's username beside what they wrote, never their real
 * name or avatar: in the forum, in blog comments and in the blog's bylines, to every reader,
 * including the cached public reads, which a change of visibility purges.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { blogPost } from "../helpers/blog";
import { call, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { uniq, withRole } from "../routes/blog-editorial-setup";

useEmulators(); // registration sends its verification email

interface Author {
  username: string;
  display_name: string;
  avatar_url?: string | null;
}

const profile = (access: string, body: Record<string, string>) =>
  call("/api/v1/auth/user/", { method: "PATCH", bearer: access, json: body });

/** A user with a real name and an avatar on record (the avatar's ref set in D1: only its URL is read here). */
async function namedUser(role: "user" | "author" = "user") {
  const u = await withRole(role);
  expect((await profile(u.access, { first_name: "Rosa", last_name: "Realname" })).status).toBe(200);
  await env.DB.prepare("UPDATE users SET avatar_key = ?, trust_level = 'basic' WHERE id = ?")
    .bind(`${"a".repeat(64)}.png`, u.userId)
    .run();
  return u;
}

describe("bylines of a profile that is not public", () => {
  it("show the forum poster's username, not their name or avatar, in the cached anonymous lists at once", async () => {
    const poster = await namedUser();
    const title = `Bylines ${uniq()}`;
    const topic = await json<{ id: string }>(
      await call("/api/v1/forum/categories/houseplants/topics/", { bearer: poster.access, json: { title, body: "Who wrote this?" } }),
      201,
    );
    const listed = async () =>
      (
        await json<{ results: { id: string; author: Author }[] }>(
          await call("/api/v1/forum/categories/houseplants/topics/?page_size=100"),
          200,
        )
      ).results.find((t) => t.id === topic.id)!.author;
    const posts = async () =>
      (await json<{ results: { author: Author }[] }>(await call(`/api/v1/forum/topics/${topic.id}/posts/`), 200)).results.map(
        (p) => p.author,
      );

    expect(await listed()).toMatchObject({ username: poster.username, display_name: "Rosa Realname" });
    expect((await listed()).avatar_url).toMatch(/^\/api\/v1\/media\//);
    expect((await call("/api/v1/forum/categories/houseplants/topics/?page_size=100")).headers.get("X-Cache")).toBe("HIT");

    expect((await profile(poster.access, { profile_visibility: "private" })).status).toBe(200);
    expect(await listed()).toEqual({ id: poster.userId, username: poster.username, display_name: poster.username, avatar_url: null });
    for (const author of await posts()) expect(author).toMatchObject({ display_name: poster.username, avatar_url: null });

    // "followers" is not public either; public again shows the name.
    expect((await profile(poster.access, { profile_visibility: "followers" })).status).toBe(200);
    expect((await listed()).display_name).toBe(poster.username);
    expect((await profile(poster.access, { profile_visibility: "public" })).status).toBe(200);
    expect((await listed()).display_name).toBe("Rosa Realname");
  });

  it("show a blog commenter's username only", async () => {
    const commenter = await namedUser();
    const post = await blogPost({});
    const body = { body: `A comment ${uniq()}` };
    await json(await call(`/api/v1/blog/posts/${post.id}/comments/`, { bearer: commenter.access, json: body }), 201);
    const author = async () =>
      (
        await json<{ results: { body: string; author: Author }[] }>(
          await call(`/api/v1/blog/posts/${post.id}/comments/?page_size=100`),
          200,
        )
      ).results.find((c) => c.body === body.body)!.author;
    expect(await author()).toMatchObject({ display_name: "Rosa Realname" });

    expect((await profile(commenter.access, { profile_visibility: "private" })).status).toBe(200);
    expect(await author()).toMatchObject({ username: commenter.username, display_name: commenter.username, avatar_url: null });
  });

  it("show a blog writer's username as the byline of the cached public reads at once", async () => {
    const writer = await namedUser("author");
    const post = await blogPost({ authorId: writer.userId });
    const detail = `/api/v2/blog-posts/${post.id}/`;
    const byline = async () => (await json<{ author: Author }>(await call(detail), 200)).author.display_name;
    expect(await byline()).toBe("Rosa Realname");
    expect((await call(detail)).headers.get("X-Cache")).toBe("HIT");

    expect((await profile(writer.access, { profile_visibility: "private" })).status).toBe(200);
    expect(await byline()).toBe(writer.username);
  });
});
