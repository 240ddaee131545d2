import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectError, jsonWithStatus as json, type Page } from "../helpers/http";
import { bearerUser, registerWeb } from "../helpers/users";
import type { z } from "zod";
import type { CategorySchema, PostSchema, TopicDetailSchema, TopicSchema } from "../../src/routes/forum";

const API = "/api/v1/forum";
const REL = 'rel="nofollow ugc noopener noreferrer"';

type Topic = z.infer<typeof TopicSchema>;
type TopicDetail = z.infer<typeof TopicDetailSchema>;
type Post = z.infer<typeof PostSchema>;
type Category = z.infer<typeof CategorySchema>;

async function moderator() {
  const u = await bearerUser();
  await env.DB.prepare("UPDATE users SET role = 'moderator' WHERE id = ?").bind(u.userId).run();
  return u;
}

const newTopic = async (bearer: string, title = "Yellow leaves on my monstera", body = "What am I doing wrong?", slug = "houseplants") =>
  json<TopicDetail>(await call(`${API}/categories/${slug}/topics/`, { bearer, json: { title, body } }), 201);
const reply = async (bearer: string, topicId: string, body: string) =>
  json<Post>(await call(`${API}/topics/${topicId}/posts/`, { bearer, json: { body } }), 201);
const posts = async (topicId: string, query = "", bearer?: string) =>
  json<Page<Post>>(await call(`${API}/topics/${topicId}/posts/${query}`, { bearer }), 200);
const topic = async (id: string, bearer?: string) => json<TopicDetail>(await call(`${API}/topics/${id}/`, { bearer }), 200);

describe("categories and topics", () => {
  it("lists the seeded categories with topic counts, anonymously", async () => {
    const before = await json<{ results: Category[] }>(await call(`${API}/categories/`), 200);
    expect(before.results.map((c) => c.slug)).toEqual(
      expect.arrayContaining(["houseplants", "pests-and-diseases", "plant-identification", "propagation"]),
    );
    const count = (r: { results: Category[] }) => r.results.find((c) => c.slug === "propagation")!.topic_count;
    const u = await bearerUser();
    await newTopic(u.access, "Rooting pothos in water", "Two weeks and no roots yet.", "propagation");
    const after = await json<{ results: Category[] }>(await call(`${API}/categories`), 200);
    expect(count(after)).toBe(count(before) + 1);
  });

  it("needs a user to write: 401 anonymous, 403 for a cookie write without CSRF, 201 with it", async () => {
    const anon = await call(`${API}/categories/houseplants/topics/`, { json: { title: "Hello there", body: "x" } });
    await expectError(anon, 401, "AUTHENTICATION_REQUIRED");
    expect(anon.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    const web = await registerWeb();
    await expectError(
      await call(`${API}/categories/houseplants/topics/`, { cookies: web.cookies, json: { title: "Hello there", body: "x" } }),
      403,
      "CSRF_FAILED",
    );
    const ok = await json<TopicDetail>(
      await call(`${API}/categories/houseplants/topics/`, {
        cookies: web.cookies,
        headers: { "X-CSRFToken": web.csrf },
        json: { title: "Hello there", body: "Hi all" },
      }),
      201,
    );
    expect(ok).toMatchObject({
      title: "Hello there",
      category: "houseplants",
      author: { username: web.username },
      is_subscribed: true,
      reply_count: 0,
    });
    expect(ok.first_post).toMatchObject({ body: "Hi all", is_first_post: true, is_solution: false });
    // Reading needs nobody.
    expect((await topic(ok.id)).is_subscribed).toBe(false);
    expect(await env.DB.prepare("SELECT post_count FROM users WHERE id = ?").bind(web.userId).first("post_count")).toBe(1);
  });

  it("validates input: title length, blank body, unknown fields, unknown category, bad ids", async () => {
    const u = await bearerUser();
    const post = (path: string, body: unknown) => call(path, { bearer: u.access, json: body });
    const e1 = await expectError(
      await post(`${API}/categories/houseplants/topics/`, { title: "  Hi  ", body: "  " }),
      400,
      "VALIDATION_ERROR",
    );
    expect(Object.keys(e1.errors!).sort()).toEqual(["body", "title"]);
    await expectError(await post(`${API}/categories/houseplants/topics/`, { title: "x".repeat(201), body: "ok" }), 400, "VALIDATION_ERROR");
    await expectError(
      await post(`${API}/categories/houseplants/topics/`, { title: "Fine title", body: "y".repeat(20001) }),
      400,
      "VALIDATION_ERROR",
    );
    await expectError(
      await post(`${API}/categories/houseplants/topics/`, { title: "Fine title", body: "ok", pinned: true }),
      400,
      "VALIDATION_ERROR",
    );
    await expectError(await post(`${API}/categories/no-such-thing/topics/`, { title: "Fine title", body: "ok" }), 404, "NOT_FOUND");
    await expectError(await call(`${API}/categories/no-such-thing/topics/`), 404, "NOT_FOUND");
    await expectError(await call(`${API}/topics/42/`), 400, "VALIDATION_ERROR");
    await expectError(await call(`${API}/topics/${crypto.randomUUID()}/`), 404, "NOT_FOUND");
    await expectError(await call(`${API}/topics/${crypto.randomUUID()}/posts/`), 404, "NOT_FOUND");
    // A body that is nothing but removed markup is empty.
    const e2 = await expectError(
      await post(`${API}/categories/houseplants/topics/`, { title: "Fine title", body: "<script>alert(1)</script>" }),
      400,
      "VALIDATION_ERROR",
    );
    expect(e2.errors!.body).toBeDefined();
  });

  it("orders topics pinned first, then by latest activity, paginated", async () => {
    const u = await bearerUser();
    const mod = await moderator();
    // A category of our own keeps other tests' topics out of the ordering.
    const slug = `test-${crypto.randomUUID().slice(0, 8)}`;
    await env.DB.prepare("INSERT INTO forum_categories (id, slug, name) VALUES (?, ?, 'Test')").bind(crypto.randomUUID(), slug).run();
    const a = await newTopic(u.access, "Topic A is first", "a", slug);
    const b = await newTopic(u.access, "Topic B is second", "b", slug);
    const c = await newTopic(u.access, "Topic C is third", "c", slug);
    for (const [t, day] of [
      [a, 1],
      [b, 2],
      [c, 3],
    ] as const) {
      const at = `2026-01-0${day}T00:00:00.000Z`;
      await env.DB.prepare("UPDATE forum_posts SET created_at = ? WHERE topic_id = ?").bind(at, t.id).run();
      await env.DB.prepare("UPDATE forum_topics SET last_activity_at = ? WHERE id = ?").bind(at, t.id).run();
    }
    const list = async (q = "") => json<Page<Topic>>(await call(`${API}/categories/${slug}/topics/${q}`), 200);
    expect((await list()).results.map((t) => t.title)).toEqual(["Topic C is third", "Topic B is second", "Topic A is first"]);
    // A reply is new activity: A moves to the top.
    await reply(u.access, a.id, "bump");
    expect((await list()).results.map((t) => t.id)).toEqual([a.id, c.id, b.id]);
    // Pinned beats activity.
    await json(await call(`${API}/topics/${b.id}/moderate/`, { method: "PATCH", bearer: mod.access, json: { is_pinned: true } }), 200);
    const page1 = await list("?page_size=2");
    expect(page1.count).toBe(3);
    expect(page1.results.map((t) => t.id)).toEqual([b.id, a.id]);
    expect(page1.results[0]!.is_pinned).toBe(true);
    expect(page1.next).toContain("page=2");
    const page2 = await list("?page=2&page_size=2");
    expect(page2.results.map((t) => t.id)).toEqual([c.id]);
    expect(page2.next).toBeNull();
  });

  it("title edits: author and moderator yes, others 403; deletion rules", async () => {
    const author = await bearerUser();
    const other = await bearerUser();
    const mod = await moderator();
    const t = await newTopic(author.access);
    const patch = (bearer: string, title: string) => call(`${API}/topics/${t.id}/`, { method: "PATCH", bearer, json: { title } });
    await expectError(await patch(other.access, "Hijacked title"), 403, "FORBIDDEN");
    expect((await json<Topic>(await patch(author.access, "Yellow leaves, solved?"), 200)).title).toBe("Yellow leaves, solved?");
    expect((await json<Topic>(await patch(mod.access, "Yellow leaves on Monstera"), 200)).title).toBe("Yellow leaves on Monstera");

    // The author may delete while alone in the thread, not once someone else replied.
    const del = (bearer: string, id: string) => call(`${API}/topics/${id}/`, { method: "DELETE", bearer });
    await reply(author.access, t.id, "Self bump");
    await reply(other.access, t.id, "Overwatering, probably.");
    await expectError(await del(other.access, t.id), 403, "FORBIDDEN");
    await expectError(await del(author.access, t.id), 409, "TOPIC_HAS_REPLIES");
    expect((await del(mod.access, t.id)).status).toBe(204);
    await expectError(await call(`${API}/topics/${t.id}/`), 404, "NOT_FOUND");
    const lonely = await newTopic(author.access);
    await reply(author.access, lonely.id, "anyone?");
    expect((await del(author.access, lonely.id)).status).toBe(204);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM forum_posts WHERE topic_id = ?").bind(lonely.id).first("n")).toBe(0);
  });
});

describe("posts", () => {
  it("lists posts oldest first with pagination and keeps reply counts", async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    const t = await newTopic(u.access, "Ordering of replies", "opening");
    const r1 = await reply(other.access, t.id, "first reply");
    const r2 = await reply(u.access, t.id, "second reply");
    const r3 = await reply(other.access, t.id, "third reply");
    // Same-millisecond writes would tie: pin the times the order depends on.
    const ids = [t.first_post!.id, r1.id, r2.id, r3.id];
    for (const [i, id] of ids.entries())
      await env.DB.prepare("UPDATE forum_posts SET created_at = ? WHERE id = ?")
        .bind(`2026-02-0${i + 1}T00:00:00.000Z`, id)
        .run();
    const all = await posts(t.id);
    expect(all.results.map((p) => p.id)).toEqual(ids);
    expect(all.results[0]!.is_first_post).toBe(true);
    const p2 = await posts(t.id, "?page=2&page_size=3");
    expect(p2).toMatchObject({ count: 4, next: null });
    expect(p2.results.map((p) => p.id)).toEqual([r3.id]);
    expect(p2.previous).toContain("page=1");
    expect((await topic(t.id)).reply_count).toBe(3);
  });

  it("sanitises bodies: what comes back is safe to render", async () => {
    const u = await bearerUser();
    const t = await newTopic(u.access, "XSS attempt topic", '<p onclick="alert(1)">Hello<script>alert(document.cookie)</script></p>');
    expect(t.first_post!.body).toBe("<p>Hello</p>");
    const nasty = [
      '<img src=x onerror="alert(1)">img',
      '<a href="javascript:alert(1)">js</a>',
      '<a href="&#106;avascript:alert(1)">encoded</a>',
      '<svg onload="alert(1)"><circle/></svg>svg',
      '<a href="data:text/html;base64,PHNjcmlwdD4=">data</a>',
      "<b><i>unclosed",
      '<a href="https://example.com/care">a guide</a> and a <em>tip</em>',
    ].join("\n");
    const p = await reply(u.access, t.id, nasty);
    expect(p.body).toBe(
      `img<br><a>js</a><br><a>encoded</a><br>svg<br><a>data</a><br><b><i>unclosed<br><a href="https://example.com/care" ${REL}>a guide</a> and a <em>tip</em></i></b>`,
    );
    const listed = (await posts(t.id)).results.find((x) => x.id === p.id)!;
    expect(listed.body).toBe(p.body);
    expect(listed.body).not.toMatch(/onerror|onload|javascript:|data:|<script|<svg|<img/i);
  });

  it("edits: author within the trust window until a moderator's edit, moderators always, others 403; edited_at is kept", async () => {
    const author = await bearerUser();
    const other = await bearerUser();
    const mod = await moderator();
    const t = await newTopic(author.access);
    const p = await reply(author.access, t.id, "orginal text");
    expect(p.edited_at).toBeNull();
    const edit = (bearer: string, body: string, id = p.id) => call(`${API}/posts/${id}/`, { method: "PATCH", bearer, json: { body } });
    await expectError(await edit(other.access, "vandalised"), 403, "FORBIDDEN");
    const edited = await json<Post>(await edit(author.access, "original <b>text</b>"), 200);
    expect(edited.body).toBe("original <b>text</b>");
    expect(edited.edited_at).not.toBeNull();
    // A new user's window is 24 hours.
    await env.DB.prepare("UPDATE forum_posts SET created_at = ? WHERE id = ?")
      .bind(new Date(Date.now() - 25 * 3_600_000).toISOString(), p.id)
      .run();
    await expectError(await edit(author.access, "too late"), 403, "EDIT_WINDOW_CLOSED");
    // Trusted users have no window.
    await env.DB.prepare("UPDATE users SET trust_level = 'trusted' WHERE id = ?").bind(author.userId).run();
    const late = await json<Post>(await edit(author.access, "late but trusted"), 200);
    expect(late).toMatchObject({ body: "late but trusted", edited_by_moderator: false });
    // A moderator's fix is theirs to change from then on, whatever the author's window.
    expect(await json<Post>(await edit(mod.access, "moderator fix"), 200)).toMatchObject({
      body: "moderator fix",
      edited_by_moderator: true,
    });
    await expectError(await edit(author.access, "the abuse again"), 403, "EDIT_WINDOW_CLOSED");
    expect(await json<Post>(await edit(mod.access, "moderator fix, reworded"), 200)).toMatchObject({ edited_by_moderator: true });
    await expectError(await edit(author.access, "x", crypto.randomUUID()), 404, "NOT_FOUND");
    await expectError(await call(`${API}/posts/${p.id}/`, { method: "PATCH", json: { body: "anon" } }), 401, "AUTHENTICATION_REQUIRED");
  });

  it("soft-deletes: a [deleted] placeholder stays, counts follow, others 403", async () => {
    const author = await bearerUser();
    const other = await bearerUser();
    const mod = await moderator();
    const t = await newTopic(author.access);
    const mine = await reply(other.access, t.id, "my reply");
    const theirs = await reply(author.access, t.id, "author reply");
    await json(await call(`${API}/posts/${mine.id}/reactions/`, { bearer: author.access, json: { type: "like" } }), 200);
    expect((await topic(t.id)).reply_count).toBe(2);
    const del = (bearer: string, id: string) => call(`${API}/posts/${id}/`, { method: "DELETE", bearer });
    await expectError(await del(other.access, theirs.id), 403, "FORBIDDEN");
    expect((await del(other.access, mine.id)).status).toBe(204);
    await expectError(await del(other.access, mine.id), 409, "POST_DELETED");
    expect((await del(mod.access, theirs.id)).status).toBe(204);
    const list = await posts(t.id);
    expect(list.count).toBe(3);
    const placeholder = list.results.find((p) => p.id === mine.id)!;
    expect(placeholder).toMatchObject({ body: "[deleted]", is_deleted: true, author: null, reactions: { like: 0 } });
    expect((await topic(t.id)).reply_count).toBe(0);
    await expectError(
      await call(`${API}/posts/${mine.id}/`, { method: "PATCH", bearer: other.access, json: { body: "undo" } }),
      409,
      "POST_DELETED",
    );
  });

  it("locked topics refuse replies and edits except from moderators; only moderators lock", async () => {
    const author = await bearerUser();
    const mod = await moderator();
    const t = await newTopic(author.access);
    const p = await reply(author.access, t.id, "before lock");
    const lock = (bearer: string, body: unknown) => call(`${API}/topics/${t.id}/moderate/`, { method: "PATCH", bearer, json: body });
    await expectError(await lock(author.access, { is_locked: true }), 403, "FORBIDDEN");
    await expectError(await lock(mod.access, {}), 400, "VALIDATION_ERROR");
    expect((await json<Topic>(await lock(mod.access, { is_locked: true }), 200)).is_locked).toBe(true);
    await expectError(
      await call(`${API}/topics/${t.id}/posts/`, { bearer: author.access, json: { body: "after lock" } }),
      403,
      "TOPIC_LOCKED",
    );
    await expectError(
      await call(`${API}/posts/${p.id}/`, { method: "PATCH", bearer: author.access, json: { body: "edit after lock" } }),
      403,
      "TOPIC_LOCKED",
    );
    await reply(mod.access, t.id, "Locking this: answered.");
    await json(await lock(mod.access, { is_locked: false }), 200);
    await reply(author.access, t.id, "thanks!");
  });
});

describe("reactions", () => {
  it("toggles per user and type with counts on posts", async () => {
    const a = await bearerUser();
    const b = await bearerUser();
    const t = await newTopic(a.access);
    const p = await reply(a.access, t.id, "react to me");
    const react = (bearer: string, type: string) => call(`${API}/posts/${p.id}/reactions/`, { bearer, json: { type } });
    expect(await json(await react(b.access, "helpful"), 200)).toMatchObject({
      reacted: true,
      reactions: { helpful: 1, like: 0 },
      my_reactions: ["helpful"],
    });
    await json(await react(a.access, "helpful"), 200);
    await json(await react(b.access, "love"), 200);
    expect(await json(await react(b.access, "helpful"), 200)).toMatchObject({
      reacted: false,
      reactions: { helpful: 1, love: 1 },
      my_reactions: ["love"],
    });
    const listed = (await posts(t.id, "", b.access)).results.find((x) => x.id === p.id)!;
    expect(listed.reactions).toEqual({ like: 0, love: 1, helpful: 1, thanks: 0 });
    expect(listed.my_reactions).toEqual(["love"]);
    expect((await posts(t.id)).results.find((x) => x.id === p.id)!.my_reactions).toEqual([]);
    await expectError(await react(b.access, "dislike"), 400, "VALIDATION_ERROR");
    await expectError(await call(`${API}/posts/${p.id}/reactions/`, { json: { type: "like" } }), 401, "AUTHENTICATION_REQUIRED");
    await expectError(
      await call(`${API}/posts/${crypto.randomUUID()}/reactions/`, { bearer: b.access, json: { type: "like" } }),
      404,
      "NOT_FOUND",
    );
  });

  it("concurrent identical toggles never fail or duplicate", async () => {
    const a = await bearerUser();
    const t = await newTopic(a.access);
    const p = await reply(a.access, t.id, "race");
    const results = await Promise.all(
      Array.from({ length: 6 }, () => call(`${API}/posts/${p.id}/reactions/`, { bearer: a.access, json: { type: "thanks" } })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(6).fill(200));
    const n = await env.DB.prepare("SELECT count(*) AS n FROM forum_reactions WHERE post_id = ? AND user_id = ?")
      .bind(p.id, a.userId)
      .first<number>("n");
    expect(n === 0 || n === 1).toBe(true);
  });
});

describe("long threads", () => {
  it("a full page of 100 posts carries the right reaction counts (D1 parameter limits)", async () => {
    const a = await bearerUser();
    const t = await newTopic(a.access);
    const stmts = Array.from({ length: 99 }, (_, i) =>
      env.DB.prepare("INSERT INTO forum_posts (id, topic_id, author_id, body, created_at) VALUES (?, ?, ?, ?, ?)").bind(
        crypto.randomUUID(),
        t.id,
        a.userId,
        `reply ${i}`,
        `2030-01-01T00:00:${String(i % 60).padStart(2, "0")}.${String(i).padStart(3, "0")}Z`,
      ),
    );
    await env.DB.batch(stmts);
    const last = (await posts(t.id, "?page_size=100")).results.at(-1)!;
    await json(await call(`${API}/posts/${last.id}/reactions/`, { bearer: a.access, json: { type: "like" } }), 200);
    const page = await posts(t.id, "?page_size=100", a.access);
    expect(page.count).toBe(100);
    expect(page.results.at(-1)).toMatchObject({ id: last.id, reactions: { like: 1 }, my_reactions: ["like"] });
  });
});

describe("solutions", () => {
  it("the topic author or a moderator marks, moves and unmarks the solution", async () => {
    const author = await bearerUser();
    const helper = await bearerUser();
    const mod = await moderator();
    const t = await newTopic(author.access);
    const r1 = await reply(helper.access, t.id, "Water less.");
    const r2 = await reply(helper.access, t.id, "More light.");
    const mark = (bearer: string, postId: string) => call(`${API}/topics/${t.id}/solution/`, { bearer, json: { post_id: postId } });
    await expectError(await mark(helper.access, r1.id), 403, "FORBIDDEN");
    expect((await json<Topic>(await mark(author.access, r1.id), 200)).solution_post_id).toBe(r1.id);
    expect((await json<Topic>(await mark(mod.access, r2.id), 200)).solution_post_id).toBe(r2.id);
    const flags = (await posts(t.id)).results.map((p) => [p.id, p.is_solution]);
    expect(flags).toContainEqual([r2.id, true]);
    expect(flags).toContainEqual([r1.id, false]);
    const e = await expectError(await mark(author.access, t.first_post!.id), 400, "VALIDATION_ERROR");
    expect(e.errors!.post_id).toBeDefined();
    const elsewhere = await newTopic(author.access);
    await expectError(await mark(author.access, elsewhere.first_post!.id), 400, "VALIDATION_ERROR");
    expect(
      (await json<Topic>(await call(`${API}/topics/${t.id}/solution/`, { method: "DELETE", bearer: author.access }), 200)).solution_post_id,
    ).toBeNull();
    // Deleting the solution post clears it.
    await json(await mark(author.access, r1.id), 200);
    expect((await call(`${API}/posts/${r1.id}/`, { method: "DELETE", bearer: helper.access })).status).toBe(204);
    expect((await topic(t.id)).solution_post_id).toBeNull();
  });
});

describe("reports and moderation", () => {
  it("one report per user per post; moderators list and resolve them, others 403", async () => {
    const author = await bearerUser();
    const reporter = await bearerUser();
    const mod = await moderator();
    const t = await newTopic(author.access);
    const p = await reply(author.access, t.id, "Buy cheap pills at spam.example");
    const report = (bearer: string, reason: string) => call(`${API}/posts/${p.id}/report/`, { bearer, json: { reason } });
    await expectError(await report(reporter.access, "x".repeat(501)), 400, "VALIDATION_ERROR");
    const created = await json<{ id: string; status: string }>(await report(reporter.access, "Spam"), 201);
    expect(created.status).toBe("open");
    await expectError(await report(reporter.access, "Spam again"), 409, "ALREADY_REPORTED");
    await expectError(await call(`${API}/reports/`, { bearer: reporter.access }), 403, "FORBIDDEN");
    await expectError(await call(`${API}/reports/`), 401, "AUTHENTICATION_REQUIRED");
    const open = await json<Page<{ id: string; post_id: string; reason: string; reporter: { username: string } }>>(
      await call(`${API}/reports/?page_size=100`, { bearer: mod.access }),
      200,
    );
    expect(open.results.find((r) => r.id === created.id)).toMatchObject({
      post_id: p.id,
      reason: "Spam",
      reporter: { username: reporter.username },
    });
    await expectError(
      await call(`${API}/reports/${created.id}/`, { method: "PATCH", bearer: reporter.access, json: { status: "dismissed" } }),
      403,
      "FORBIDDEN",
    );
    const resolved = await json<{ status: string; resolved_by: string }>(
      await call(`${API}/reports/${created.id}/`, { method: "PATCH", bearer: mod.access, json: { status: "resolved" } }),
      200,
    );
    expect(resolved).toMatchObject({ status: "resolved", resolved_by: mod.userId });
    const stillOpen = await json<Page<{ id: string }>>(await call(`${API}/reports/?page_size=100`, { bearer: mod.access }), 200);
    expect(stillOpen.results.map((r) => r.id)).not.toContain(created.id);
    const done = await json<Page<{ id: string }>>(await call(`${API}/reports/?status=resolved&page_size=100`, { bearer: mod.access }), 200);
    expect(done.results.map((r) => r.id)).toContain(created.id);
  });
});

describe("subscriptions", () => {
  it("authors are subscribed; others subscribe and unsubscribe idempotently", async () => {
    const author = await bearerUser();
    const reader = await bearerUser();
    const t = await newTopic(author.access);
    expect((await topic(t.id, author.access)).is_subscribed).toBe(true);
    expect((await topic(t.id, reader.access)).is_subscribed).toBe(false);
    const sub = (method: string) => call(`${API}/topics/${t.id}/subscribe/`, { method, bearer: reader.access });
    expect(await json(await sub("POST"), 200)).toEqual({ topic_id: t.id, subscribed: true });
    expect(await json(await sub("POST"), 200)).toEqual({ topic_id: t.id, subscribed: true });
    expect((await topic(t.id, reader.access)).is_subscribed).toBe(true);
    expect(await json(await sub("DELETE"), 200)).toEqual({ topic_id: t.id, subscribed: false });
    expect((await topic(t.id, reader.access)).is_subscribed).toBe(false);
    await expectError(
      await call(`${API}/topics/${crypto.randomUUID()}/subscribe/`, { method: "POST", bearer: reader.access }),
      404,
      "NOT_FOUND",
    );
  });
});

describe("rate limits", () => {
  it("forum writes per user are limited with 429 and Retry-After", async () => {
    const u = await bearerUser();
    const t = await newTopic(u.access);
    let limited: Response | null = null;
    for (let i = 0; i < 40 && !limited; i++) {
      const res = await call(`${API}/topics/${t.id}/posts/`, { bearer: u.access, json: { body: `reply ${i}` } });
      if (res.status === 429) limited = res;
      else expect(res.status).toBe(201);
    }
    expect(limited).not.toBeNull();
    expect(Number(limited!.headers.get("Retry-After"))).toBeGreaterThan(0);
    await expectError(limited!, 429, "RATE_LIMITED");
  });
});
