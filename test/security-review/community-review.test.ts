/**
 * Community features attacked (security review of 2026-12-06, helper-59): blog comments,
 * community identification, collections, the calendar and notifications. Each test is an attack
 * that must be refused or contained, and each failed on the code as reviewed.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { blogPost } from "../helpers/blog";
import { call, jsonWithStatus as json, type Page } from "../helpers/http";
import { bearerUser } from "../helpers/users";

type User = Awaited<ReturnType<typeof bearerUser>>;

async function withRole(role: string, trust = "basic"): Promise<User> {
  const u = await bearerUser();
  await env.DB.prepare("UPDATE users SET trust_level = ?, role = ? WHERE id = ?").bind(trust, role, u.userId).run();
  return u;
}

describe("a removed blog comment leaves nothing readable in notifications", () => {
  const comment = async (postId: string, bearer: string, body: unknown) =>
    json<{ id: string }>(await call(`/api/v1/blog/posts/${postId}/comments/`, { bearer, json: body }), 201);
  const inbox = async (bearer: string) =>
    (
      await json<Page<{ type: string; body: string; data: { comment_id: string } }>>(
        await call("/api/v1/notifications/?page_size=100", { bearer }),
        200,
      )
    ).results.filter((n) => n.type === "blog_comment_reply");
  const stored = (userId: string) =>
    env.DB.prepare(
      `SELECT n.title, n.body, (SELECT count(*) FROM notification_deliveries d WHERE d.notification_id = n.id) AS deliveries
         FROM notifications n WHERE n.user_id = ? AND n.type = 'blog_comment_reply'`,
    )
      .bind(userId)
      .all<{ title: string; body: string; deliveries: number }>();

  for (const removal of ["deleted", "rejected"] as const) {
    it(`a reply a moderator ${removal} is no longer quoted in the parent author's notifications, nor sent later`, async () => {
      const post = await blogPost();
      const [victim, pest, mod] = [await withRole("user"), await withRole("user"), await withRole("moderator")];
      const parent = await comment(post.id, victim.access, { body: "Which soil for a jade?" });
      const secret = `ABUSE-${crypto.randomUUID().slice(0, 8)} you live at 12 Elm Street`;
      const reply = await comment(post.id, pest.access, { body: secret, parent_id: parent.id });
      expect((await inbox(victim.access)).map((n) => n.body)).toEqual([secret]);

      const res =
        removal === "deleted"
          ? await call(`/api/v1/blog/comments/${reply.id}/`, { method: "DELETE", bearer: mod.access })
          : await call(`/api/v1/blog/comments/${reply.id}/reject/`, { method: "POST", bearer: mod.access });
      expect(res.status).toBe(removal === "deleted" ? 204 : 200);

      // Neither the in-app list nor the stored row (which an email, push or digest reads) quotes it.
      expect(await inbox(victim.access)).toEqual([]);
      expect((await stored(victim.userId)).results).toEqual([{ title: "", body: "", deliveries: 0 }]);
    });
  }
});
