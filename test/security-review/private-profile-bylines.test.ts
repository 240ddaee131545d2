/**
 * A profile that is not public shows its owner's username beside what they wrote, never their real
 * name or avatar: in the forum, in blog comments and in the blog's bylines, to every reader,
 * including the cached public reads, which a change of visibility purges.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { blogPost } from "../helpers/blog";
import { makePng } from "../helpers/images";
import { call, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";
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

describe("the avatar of a profile that is not public", () => {
  it("is served to nobody but its owner and staff, and while public no shared cache keeps it, so its URL stops working at once", async () => {
    const [owner, stranger, mod] = [await bearerUser(), await bearerUser(), await withRole("moderator")];
    const form = new FormData();
    form.append("avatar", new File([await makePng(64, 64, { seed: `avatar-${owner.userId}` })], "me.png", { type: "image/png" }));
    const set = await json<{ avatar_url: string }>(
      await call("/api/v1/auth/user/", { method: "PATCH", bearer: owner.access, body: form }),
      200,
    );
    // The same photo by both of its paths.
    const urls = [set.avatar_url, set.avatar_url.replace("/media/avatars/", "/media/images/")];

    // Public: served to anyone, but kept only by each reader's own browser, not by an edge or proxy
    // cache, which would go on serving it to others after the profile went private.
    for (const url of urls) {
      const anonymous = await call(url);
      expect(anonymous.status).toBe(200);
      expect(anonymous.headers.get("Cache-Control")).toBe("private, max-age=3600");
    }

    expect((await profile(owner.access, { profile_visibility: "private" })).status).toBe(200);
    for (const url of urls) {
      expect((await call(url)).status).toBe(404);
      expect((await call(url, { bearer: stranger.access })).status).toBe(404);
      const own = await call(url, { bearer: owner.access });
      expect(own.status).toBe(200);
      expect(own.headers.get("Cache-Control")).toBe("private, no-cache");
      expect((await call(url, { bearer: mod.access })).status).toBe(200);
    }

    // "followers" is not public either; public again serves it to anyone.
    expect((await profile(owner.access, { profile_visibility: "followers" })).status).toBe(200);
    expect((await call(urls[0]!)).status).toBe(404);
    expect((await profile(owner.access, { profile_visibility: "public" })).status).toBe(200);
    expect((await call(urls[0]!)).status).toBe(200);
  });

  it("is still served to anyone when the same photo is on show elsewhere (a live forum post's attachment)", async () => {
    const owner = await bearerUser();
    const bytes = await makePng(320, 240, { seed: `shared-${owner.userId}` });
    await env.DB.prepare("UPDATE users SET trust_level = 'basic' WHERE id = ?").bind(owner.userId).run();
    const post = new FormData();
    post.append("title", `Avatar and post ${uniq()}`);
    post.append("body", "My fern.");
    post.append("image_1", new File([bytes], "fern.png", { type: "image/png" }));
    expect((await call("/api/v1/forum/categories/houseplants/topics/", { bearer: owner.access, body: post })).status).toBe(201);
    const form = new FormData();
    form.append("avatar", new File([bytes], "me.png", { type: "image/png" }));
    const set = await json<{ avatar_url: string }>(
      await call("/api/v1/auth/user/", { method: "PATCH", bearer: owner.access, body: form }),
      200,
    );
    expect((await profile(owner.access, { profile_visibility: "private" })).status).toBe(200);
    const served = await call(set.avatar_url);
    expect(served.status).toBe(200);
    expect(served.headers.get("Cache-Control")).toBe("public, max-age=3600");
  });
});
