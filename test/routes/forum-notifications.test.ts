/**
 * Forum reply notifications: a reply notifies the topic's subscribers (not the replier), once
 * per post, in the same request, and reaches their live `/ws/` sockets.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { NotificationPayload } from "../../durable-objects/user-hub";
import { createApp } from "../../src/app";
import { MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR } from "../../src/services/forum";
import { call, freshIp, jsonWithStatus as json, type Page } from "../helpers/http";
import { eventually } from "../helpers/wait";
import { bearerUser } from "../helpers/users";
import { openReadySocket } from "../helpers/ws";

const API = "/api/v1/forum";

type Notification = NotificationPayload;

const newTopic = async (bearer: string, title = "Brown tips on my calathea", slug = "houseplants") =>
  json<{ id: string }>(await call(`${API}/categories/${slug}/topics/`, { bearer, json: { title, body: "Tap water, bright shade." } }), 201);
const reply = async (bearer: string, topicId: string, body: string) =>
  json<{ id: string }>(await call(`${API}/topics/${topicId}/posts/`, { bearer, json: { body } }), 201);
const subscribe = async (bearer: string, topicId: string, on = true) =>
  json<{ subscribed: boolean }>(await call(`${API}/topics/${topicId}/subscribe/`, { method: on ? "POST" : "DELETE", bearer }), 200);
const forumNotifications = async (bearer: string) =>
  (await json<Page<Notification>>(await call("/api/v1/notifications/?page_size=100", { bearer }), 200)).results.filter(
    (n) => n.type === "forum_reply",
  );

describe("forum mention notifications", () => {
  it("tell each mentioned active user once (not the author, not unknown names), honouring in-app preferences", async () => {
    const author = await bearerUser();
    const [named, muted, replier] = [await bearerUser(), await bearerUser(), await bearerUser()];
    await json(
      await call("/api/v1/notifications/preferences/", {
        method: "PUT",
        bearer: muted.access,
        json: { types: { forum_mention: { in_app: false } } },
      }),
      200,
    );
    const topic = await newTopic(author.access, "Who grows dahlias?");
    const post = await reply(
      replier.access,
      topic.id,
      `<p>Ask @${named.username.toUpperCase()}, or @${named.username}. Also @${muted.username}, @${replier.username} and @no_such_gardener_here.</p>`,
    );
    const mentions = async (u: { access: string }) =>
      (await json<Page<Notification>>(await call("/api/v1/notifications/?page_size=100", { bearer: u.access }), 200)).results.filter(
        (n) => n.type === "forum_mention",
      );
    const [got] = await mentions(named);
    expect(got).toMatchObject({
      type: "forum_mention",
      title: `${replier.username} mentioned you in "Who grows dahlias?"`,
      data: { topic_id: topic.id, post_id: post.id },
    });
    expect(await mentions(named)).toHaveLength(1);
    expect(await mentions(muted)).toEqual([]);
    expect(await mentions(replier)).toEqual([]);
    expect(await mentions(author)).toEqual([]);
  });

  it("a topic's opening post notifies the people it mentions too, live, and deleting the topic withdraws it", async () => {
    const [author, named] = [await bearerUser(), await bearerUser()];
    const socket = await openReadySocket("/ws/", { bearer: named.access });
    const created = await call(`${API}/categories/houseplants/topics/`, {
      bearer: author.access,
      json: { title: "Dahlia tubers over winter", body: `<p>@${named.username} how do you store yours?</p>` },
    });
    const topic = await json<{ id: string; first_post: { id: string } }>(created, 201);
    const pushed = await eventually(() => socket.messages.find((m) => m.type === "notification"));
    const [got] = (await json<Page<Notification>>(await call("/api/v1/notifications/?type=forum_mention", { bearer: named.access }), 200))
      .results;
    expect(got).toMatchObject({
      title: `${author.username} mentioned you in "Dahlia tubers over winter"`,
      data: { topic_id: topic.id, post_id: topic.first_post.id, category_slug: "houseplants" },
    });
    expect(pushed).toEqual({ type: "notification", notification: got });
    expect((await call(`${API}/topics/${topic.id}/`, { method: "DELETE", bearer: author.access })).status).toBe(204);
    expect(await eventually(() => socket.messages.find((m) => m.type === "notification_withdrawn"))).toEqual({
      type: "notification_withdrawn",
      ids: [got!.id],
    });
    socket.ws.close(1000);
  });
});

describe("one notice per person for one post", () => {
  it("a reply mentioning the topic's author tells them once, as the mention, and queues one email", async () => {
    const [author, replier, follower] = [await bearerUser(), await bearerUser(), await bearerUser()];
    await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(author.userId).run();
    // Email on for both types, so either one would queue its own.
    await json(
      await call("/api/v1/notifications/preferences/", {
        method: "PUT",
        bearer: author.access,
        json: { types: { forum_reply: { email: true }, forum_mention: { email: true } }, digest: "immediate" },
      }),
      200,
    );
    const topic = await newTopic(author.access, "Repotting a monstera");
    await subscribe(follower.access, topic.id);
    const post = await reply(replier.access, topic.id, `@${author.username} go one pot size up, no more.`);
    const told = await env.DB.prepare("SELECT id, type FROM notifications WHERE user_id = ? AND json_extract(data, '$.post_id') = ?")
      .bind(author.userId, post.id)
      .all<{ id: string; type: string }>();
    expect(told.results.map((n) => n.type)).toEqual(["forum_mention"]);
    const deliveries = await env.DB.prepare("SELECT channel FROM notification_deliveries WHERE notification_id = ? ORDER BY channel")
      .bind(told.results[0]!.id)
      .all<{ channel: string }>();
    expect(deliveries.results.map((d) => d.channel)).toEqual(["email"]);
    const all = await env.DB.prepare(
      "SELECT count(*) AS n FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id WHERE n.user_id = ? AND json_extract(n.data, '$.post_id') = ?",
    )
      .bind(author.userId, post.id)
      .first<{ n: number }>();
    expect(all!.n).toBe(1);
    // A subscriber the reply does not mention still hears of the reply.
    expect((await forumNotifications(follower.access)).map((n) => n.data.post_id)).toEqual([post.id]);
  });

  it("a subscriber whose mention the hourly cap held back still gets the reply notice", async () => {
    const [author, pest] = [await bearerUser(), await bearerUser()];
    const topic = await newTopic(author.access, "Aphids on roses");
    const posts: string[] = [];
    for (let i = 0; i < MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR + 2; i++)
      posts.push((await reply(pest.access, topic.id, `@${author.username} look ${i}`)).id);
    const rows = await env.DB.prepare("SELECT type, json_extract(data, '$.post_id') AS post_id FROM notifications WHERE user_id = ?")
      .bind(author.userId)
      .all<{ type: string; post_id: string }>();
    // The capped mentions an hour from one author, then reply notices: one notice for each post all the same.
    expect(posts.map((id) => rows.results.filter((r) => r.post_id === id).map((r) => r.type))).toEqual([
      ...Array(MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR).fill(["forum_mention"]),
      ["forum_reply"],
      ["forum_reply"],
    ]);
  });
});

describe("forum reply notifications", () => {
  it("leave out subscribers who turned forum replies off in-app, and only them", async () => {
    const author = await bearerUser();
    const muted = await bearerUser();
    const listening = await bearerUser();
    const topic = await newTopic(author.access, "Fungus gnats in seed trays");
    await subscribe(muted.access, topic.id);
    await subscribe(listening.access, topic.id);
    // Email on, in-app off: only the in-app switch decides the list.
    await json(
      await call("/api/v1/notifications/preferences/", {
        method: "PUT",
        bearer: muted.access,
        json: { types: { forum_reply: { in_app: false, email: true } } },
      }),
      200,
    );
    await json(
      await call("/api/v1/notifications/preferences/", {
        method: "PUT",
        bearer: listening.access,
        json: { types: { forum_mention: { in_app: false } } },
      }),
      200,
    );
    const post = await reply(author.access, topic.id, "Let the top inch dry out.");
    expect(await forumNotifications(muted.access)).toEqual([]);
    expect((await forumNotifications(listening.access)).map((n) => n.data.post_id)).toEqual([post.id]);
  });

  it("notify each subscriber but the replier, once, with plain-text title and body", async () => {
    const author = await bearerUser();
    const follower = await bearerUser();
    const quitter = await bearerUser();
    const replier = await bearerUser();
    const topic = await newTopic(author.access);
    await subscribe(follower.access, topic.id);
    await subscribe(quitter.access, topic.id);
    await subscribe(quitter.access, topic.id, false);
    await subscribe(replier.access, topic.id); // subscribed, yet never notified of their own reply

    const body = `<p>Try <strong>rain water</strong> &amp; more humidity.</p><script>alert(1)</script>${" Calatheas hate fluoride.".repeat(12)}`;
    const post = await reply(replier.access, topic.id, body);

    for (const user of [author, follower]) {
      const list = await forumNotifications(user.access);
      expect(list).toHaveLength(1);
      const n = list[0]!;
      expect(n).toMatchObject({
        type: "forum_reply",
        is_read: false,
        data: { topic_id: topic.id, post_id: post.id, category_slug: "houseplants" },
      });
      expect(n.title).toBe(`${replier.username} replied to "Brown tips on my calathea"`);
      expect(n.body.startsWith("Try rain water & more humidity. Calatheas hate fluoride.")).toBe(true);
      expect(n.body).not.toMatch(/[<>]|alert|&amp;/);
      expect([...n.body].length).toBeLessThanOrEqual(140);
      expect(n.body.endsWith("…")).toBe(true);
    }
    expect(await forumNotifications(quitter.access)).toEqual([]);
    expect(await forumNotifications(replier.access)).toEqual([]);
    const rows = await env.DB.prepare(
      "SELECT user_id, dedupe_key FROM notifications WHERE type = 'forum_reply' AND json_extract(data, '$.post_id') = ? ORDER BY user_id",
    )
      .bind(post.id)
      .all<{ user_id: string; dedupe_key: string }>();
    expect(rows.results).toEqual(
      [author.userId, follower.userId].sort().map((id) => ({ user_id: id, dedupe_key: `forum_reply:${post.id}:${id}` })),
    );

    // The topic's author replying notifies the others, not themselves.
    const second = await reply(author.access, topic.id, "Thanks, will try!");
    expect((await forumNotifications(author.access)).map((n) => n.data.post_id)).toEqual([post.id]);
    expect((await forumNotifications(follower.access)).map((n) => n.data.post_id)).toEqual([second.id, post.id]);
    expect((await forumNotifications(replier.access)).map((n) => n.data.post_id)).toEqual([second.id]);
  });

  it("editing a post notifies nobody again (its notification quotes the edit); deleting it withdraws it; deactivated subscribers get nothing", async () => {
    const author = await bearerUser();
    const gone = await bearerUser();
    const replier = await bearerUser();
    const topic = await newTopic(author.access, "Repotting a root-bound ficus");
    await subscribe(gone.access, topic.id);
    await env.DB.prepare("UPDATE users SET is_active = 0 WHERE id = ?").bind(gone.userId).run();
    const post = await reply(replier.access, topic.id, "Go one pot size up.");
    expect(await forumNotifications(author.access)).toHaveLength(1);

    expect(
      (await call(`${API}/posts/${post.id}/`, { method: "PATCH", bearer: replier.access, json: { body: "Go one or two pot sizes up." } }))
        .status,
    ).toBe(200);
    const [edited] = await forumNotifications(author.access);
    expect(edited).toMatchObject({ body: "Go one or two pot sizes up." });
    expect(await forumNotifications(author.access)).toHaveLength(1);
    expect((await call(`${API}/posts/${post.id}/`, { method: "DELETE", bearer: replier.access })).status).toBe(204);
    expect(await forumNotifications(author.access)).toHaveLength(0);
    const forGone = await env.DB.prepare("SELECT count(*) AS n FROM notifications WHERE user_id = ?")
      .bind(gone.userId)
      .first<{ n: number }>();
    expect(forGone!.n).toBe(0);
  });

  it("notifies at most 200 subscribers of one reply", async () => {
    const author = await bearerUser();
    const replier = await bearerUser();
    const topic = await newTopic(author.access, "Huge thread about monstera variegation");
    // 210 more subscribers, written directly: registering that many through the API is slow.
    const ids = Array.from({ length: 210 }, () => crypto.randomUUID());
    const statements = ids.flatMap((id, i) => [
      env.DB.prepare("INSERT INTO users (id, username, email) VALUES (?, ?, ?)").bind(id, `bulk${i}${id.slice(0, 8)}`, `${id}@example.com`),
      env.DB.prepare("INSERT INTO forum_subscriptions (topic_id, user_id, created_at) VALUES (?, ?, ?)").bind(
        topic.id,
        id,
        new Date(Date.now() + 1000 + i).toISOString(),
      ),
    ]);
    await env.DB.batch(statements);
    // The reply's background work (telling 200 users' hubs, each woken with its storage: seconds)
    // is waited for here. Left running it went on through the next test, which waited 8 s of its
    // 10 s for its own socket message on a loaded CI machine.
    const ctx = createExecutionContext();
    const res = await createApp().request(
      `${API}/topics/${topic.id}/posts/`,
      {
        method: "POST",
        headers: { Authorization: `Bearer ${replier.access}`, "Content-Type": "application/json", "CF-Connecting-IP": freshIp() },
        body: JSON.stringify({ body: "Nice plants everyone." }),
      },
      env,
      ctx,
    );
    const post = await json<{ id: string }>(res, 201);
    await waitOnExecutionContext(ctx);
    const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM notifications WHERE json_extract(data, '$.post_id') = ?")
      .bind(post.id)
      .first<{ n: number }>())!;
    expect(n).toBe(200);
    // Longest subscribed first: the author (subscribed on creation) is among them.
    expect(await forumNotifications(author.access)).toHaveLength(1);
  }, 60_000); // 200 hubs woken: seconds here, more on a loaded CI machine

  it("pushes the notification to the subscriber's live socket, not the replier's", async () => {
    const author = await bearerUser();
    const replier = await bearerUser();
    const topic = await newTopic(author.access, "Fungus gnats everywhere");
    await subscribe(replier.access, topic.id);
    const authorSocket = await openReadySocket("/ws/", { bearer: author.access });
    const replierSocket = await openReadySocket("/ws/", { bearer: replier.access });

    const post = await reply(replier.access, topic.id, "Let the soil dry out between waterings.");
    const message = await eventually(() => authorSocket.messages.find((m) => m.type === "notification"));
    const [stored] = await forumNotifications(author.access);
    expect(message).toEqual({ type: "notification", notification: stored });
    expect(stored!.data).toEqual({ topic_id: topic.id, post_id: post.id, category_slug: "houseplants" });
    await new Promise((r) => setTimeout(r, 200));
    expect(authorSocket.messages.filter((m) => m.type === "notification")).toHaveLength(1);
    expect(replierSocket.messages.filter((m) => m.type === "notification")).toHaveLength(0);
    authorSocket.ws.close(1000);
    replierSocket.ws.close(1000);
  });

  it("tells the live socket when an edited post's notifications change, with the new text, and only their owners'", async () => {
    const author = await bearerUser();
    const named = await bearerUser();
    const replier = await bearerUser();
    const topic = await newTopic(author.access, "Thrips on a peace lily");
    const authorSocket = await openReadySocket("/ws/", { bearer: author.access });
    const namedSocket = await openReadySocket("/ws/", { bearer: named.access });
    const replierSocket = await openReadySocket("/ws/", { bearer: replier.access });
    const post = await reply(replier.access, topic.id, `Ask @${named.username}, the spray is rubbish.`);
    await eventually(() => authorSocket.messages.find((m) => m.type === "notification"));
    await eventually(() => namedSocket.messages.find((m) => m.type === "notification"));

    const edit = await call(`${API}/posts/${post.id}/`, {
      method: "PATCH",
      bearer: replier.access,
      json: { body: `Ask @${named.username}, who knows more than me.` },
    });
    expect(edit.status).toBe(200);
    // Each owner's socket gets the notification as the list now shows it: same id, the new quote.
    const [stored] = await forumNotifications(author.access);
    expect(await eventually(() => authorSocket.messages.find((m) => m.type === "notification_updated"))).toEqual({
      type: "notification_updated",
      notification: stored,
    });
    expect(stored!.body).toContain("who knows more than me");
    const mention = (
      await json<Page<Notification>>(await call("/api/v1/notifications/?page_size=100", { bearer: named.access }), 200)
    ).results.find((n) => n.type === "forum_mention");
    expect(await eventually(() => namedSocket.messages.find((m) => m.type === "notification_updated"))).toEqual({
      type: "notification_updated",
      notification: mention,
    });
    expect(
      JSON.stringify([...authorSocket.messages, ...namedSocket.messages].filter((m) => m.type === "notification_updated")),
    ).not.toContain("rubbish");
    await new Promise((r) => setTimeout(r, 200));
    expect(authorSocket.messages.filter((m) => m.type === "notification_updated")).toHaveLength(1);
    expect(replierSocket.messages.filter((m) => m.type === "notification_updated")).toHaveLength(0);
    for (const s of [authorSocket, namedSocket, replierSocket]) s.ws.close(1000);
  });

  it("a moderator's new topic title replaces the old one in the notifications that quote it, live, and leaves withdrawn ones blank", async () => {
    const author = await bearerUser();
    const named = await bearerUser();
    const replier = await bearerUser();
    const abusive = `Insult ${crypto.randomUUID().slice(0, 8)} about a neighbour`;
    const topic = await newTopic(author.access, abusive);
    await reply(replier.access, topic.id, `@${named.username} have a look.`);
    const removed = await reply(replier.access, topic.id, "A second thought.");
    expect((await call(`${API}/posts/${removed.id}/`, { method: "DELETE", bearer: replier.access })).status).toBe(204);
    const authorSocket = await openReadySocket("/ws/", { bearer: author.access });

    const mod = await bearerUser();
    await env.DB.prepare("UPDATE users SET role = 'moderator' WHERE id = ?").bind(mod.userId).run();
    const res = await call(`${API}/topics/${topic.id}/`, { method: "PATCH", bearer: mod.access, json: { title: "Tidied title" } });
    expect(res.status).toBe(200);

    // By type, then post (ids grow with time): the mention, the kept reply's, the removed reply's.
    const rows = await env.DB.prepare("SELECT user_id, type, title FROM notifications WHERE user_id IN (?, ?) ORDER BY type, dedupe_key")
      .bind(author.userId, named.userId)
      .all<{ user_id: string; type: string; title: string }>();
    expect(rows.results.map((r) => [r.user_id, r.type, r.title])).toEqual([
      [named.userId, "forum_mention", `${replier.username} mentioned you in "Tidied title"`],
      [author.userId, "forum_reply", `${replier.username} replied to "Tidied title"`],
      [author.userId, "forum_reply", ""],
    ]);
    expect(JSON.stringify(rows.results)).not.toContain(abusive);
    const [shown] = await forumNotifications(author.access);
    expect(await eventually(() => authorSocket.messages.find((m) => m.type === "notification_updated"))).toEqual({
      type: "notification_updated",
      notification: shown,
    });
    authorSocket.ws.close(1000);
  });

  it("tells the live socket when a deleted post's or topic's notifications are withdrawn, and only their owner's", async () => {
    const author = await bearerUser();
    const replier = await bearerUser();
    const topic = await newTopic(author.access, "Scale insects on a bay tree");
    const authorSocket = await openReadySocket("/ws/", { bearer: author.access });
    const replierSocket = await openReadySocket("/ws/", { bearer: replier.access });
    const first = await reply(replier.access, topic.id, "Wipe them off with soapy water.");
    const second = await reply(replier.access, topic.id, "Then check the undersides weekly.");
    await eventually(() => authorSocket.messages.filter((m) => m.type === "notification").length === 2 || undefined);
    const byPost = new Map((await forumNotifications(author.access)).map((n) => [n.data.post_id, n.id]));

    expect((await call(`${API}/posts/${first.id}/`, { method: "DELETE", bearer: replier.access })).status).toBe(204);
    const withdrawn = await eventually(() => authorSocket.messages.find((m) => m.type === "notification_withdrawn"));
    expect(withdrawn).toEqual({ type: "notification_withdrawn", ids: [byPost.get(first.id)] });

    // A moderator removes the whole topic: the rest of its notifications go, in one message.
    const mod = await bearerUser();
    await env.DB.prepare("UPDATE users SET role = 'moderator' WHERE id = ?").bind(mod.userId).run();
    expect((await call(`${API}/topics/${topic.id}/`, { method: "DELETE", bearer: mod.access })).status).toBe(204);
    await eventually(() => authorSocket.messages.filter((m) => m.type === "notification_withdrawn").length === 2 || undefined);
    expect(authorSocket.messages.filter((m) => m.type === "notification_withdrawn")[1]).toEqual({
      type: "notification_withdrawn",
      ids: [byPost.get(second.id)],
    });
    expect(await forumNotifications(author.access)).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(replierSocket.messages.filter((m) => m.type === "notification_withdrawn")).toHaveLength(0);
    authorSocket.ws.close(1000);
    replierSocket.ws.close(1000);
  });
});
