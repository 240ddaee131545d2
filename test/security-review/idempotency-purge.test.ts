/**
 * Security review (helper-63): a write that committed must not answer as a failure because the
 * edge-cache purge that follows it failed. A 5xx releases the request's Idempotency-Key (failures
 * are not kept: "nothing was changed"), so the client's retry with the same key would run the
 * committed write a second time — the duplicate the header exists to prevent. D1 refusing the
 * purge is played by a trigger on the generation tables.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { blogPost } from "../helpers/blog";
import { call } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

useEmulators(); // registration sends its verification email

const BLIP = "purge_blip";

/** D1 refuses every write to `table` until `heal` (a blip at the purge, and only there). */
async function refuseWritesTo(table: "cache_generations" | "blog_cache_state") {
  await env.DB.prepare(`CREATE TRIGGER ${BLIP}_insert BEFORE INSERT ON ${table} BEGIN SELECT RAISE(ABORT, 'D1 blip'); END`).run();
  await env.DB.prepare(`CREATE TRIGGER ${BLIP}_update BEFORE UPDATE ON ${table} BEGIN SELECT RAISE(ABORT, 'D1 blip'); END`).run();
}
async function heal() {
  await env.DB.prepare(`DROP TRIGGER IF EXISTS ${BLIP}_insert`).run();
  await env.DB.prepare(`DROP TRIGGER IF EXISTS ${BLIP}_update`).run();
}
afterEach(heal);

async function count(sql: string, value: string): Promise<number> {
  return (await env.DB.prepare(sql).bind(value).first<{ n: number }>())!.n;
}

describe("a failed purge after a committed write", () => {
  it("forum: the new topic's answer stands, and the retry with its key replays it instead of posting again", async () => {
    const u = await bearerUser();
    const key = `topic-${crypto.randomUUID()}`;
    const title = `Purge blip ${key}`;
    const post = () =>
      call("/api/v1/forum/categories/houseplants/topics/", {
        bearer: u.access,
        json: { title, body: "Brown tips on every new leaf of my calathea." },
        headers: { "Idempotency-Key": key },
      });
    await refuseWritesTo("cache_generations");
    const first = await post();
    await heal();
    const retry = await post();
    expect(await count("SELECT count(*) AS n FROM forum_topics WHERE title = ?", title)).toBe(1);
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
  });

  it("blog: a comment and its purge land together, so a retry with the key never makes a second comment", async () => {
    const post = await blogPost();
    const u = await bearerUser();
    await env.DB.prepare("UPDATE users SET trust_level = 'basic' WHERE id = ?").bind(u.userId).run();
    const key = `comment-${crypto.randomUUID()}`;
    const body = `Lovely guide ${key}`;
    const send = () =>
      call(`/api/v1/blog/posts/${post.id}/comments/`, { bearer: u.access, json: { body }, headers: { "Idempotency-Key": key } });
    await refuseWritesTo("blog_cache_state");
    const first = await send();
    await heal();
    // The first either failed whole (nothing written, the key released) or succeeded.
    if (first.status >= 500) expect(await count("SELECT count(*) AS n FROM blog_comments WHERE body LIKE '%' || ? || '%'", key)).toBe(0);
    else expect(first.status).toBe(201);
    expect((await send()).status).toBe(201);
    expect(await count("SELECT count(*) AS n FROM blog_comments WHERE body LIKE '%' || ? || '%'", key)).toBe(1);
    expect(await count("SELECT comment_count AS n FROM blog_posts WHERE id = ?", post.id)).toBe(1);
  });
});
