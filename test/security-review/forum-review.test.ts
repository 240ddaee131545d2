/**
 * The forum, attacked (security review of 2026-12-05): each test is an attack that must be
 * refused or contained, and each failed on the code as reviewed.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { notificationDeliveries, users } from "../../src/db/schema";
import {
  createReply,
  deletePost,
  deleteTopic,
  editPost,
  MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR,
  setSolution,
  updateTopicTitle,
} from "../../src/services/forum";
import { gatherDigests, sendDelivery } from "../../src/services/notification-delivery";
import { purgePublicReads } from "../../src/services/public-cache";
import { sha256Hex } from "../../src/lib/hash";
import { concatBytes, jpegSegment, makeJpeg, makePng } from "../helpers/images";
import { call, expectError, jsonWithStatus as json, type Page } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { envAroundBatches, envRacingFirstBatch, envRacingStatement } from "../helpers/racing-env";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();
const API = "/api/v1/forum";
type User = Awaited<ReturnType<typeof bearerUser>>;

async function moderator(): Promise<User> {
  const u = await bearerUser();
  await env.DB.prepare("UPDATE users SET role = 'moderator' WHERE id = ?").bind(u.userId).run();
  return u;
}

const newTopic = async (bearer: string, title = `Overwatering a jade ${crypto.randomUUID().slice(0, 8)}`) =>
  json<{ id: string; first_post: { id: string } }>(
    await call(`${API}/categories/houseplants/topics/`, { bearer, json: { title, body: "How often should I water it?" } }),
    201,
  );
const reply = async (bearer: string, topicId: string, body: string) =>
  json<{ id: string }>(await call(`${API}/topics/${topicId}/posts/`, { bearer, json: { body } }), 201);

describe("a removed post leaves nothing readable in notifications", () => {
  it("a post a moderator removed is still shown in the victim's notification list and mailed in their digest", async () => {
    const author = await bearerUser();
    const attacker = await bearerUser();
    const victim = await bearerUser();
    const mod = await moderator();
    // The victim has a verified address and the defaults: forum_mention email on, daily digest.
    await database(env).update(users).set({ emailVerified: true }).where(eq(users.id, victim.userId));
    const topic = await newTopic(author.access);

    const secret = `HARASSMENT-${crypto.randomUUID().slice(0, 8)} lives at 12 Elm Street`;
    const post = await reply(attacker.access, topic.id, `@${victim.username} ${secret}`);
    // A moderator removes the post: nobody may read it any more.
    expect((await call(`${API}/posts/${post.id}/`, { method: "DELETE", bearer: mod.access })).status).toBe(204);
    const thread = await json<Page<{ id: string; body: string }>>(await call(`${API}/topics/${topic.id}/posts/`), 200);
    expect(thread.results.find((p) => p.id === post.id)!.body).toBe("[deleted]");

    // In-app: the mention still carries the removed text.
    const list = await json<Page<{ type: string; body: string; data: { post_id: string } }>>(
      await call("/api/v1/notifications/?page_size=100", { bearer: victim.access }),
      200,
    );
    const mention = list.results.find((n) => n.data.post_id === post.id);

    // Email: the held mail is gathered into the next digest and sent with the removed text.
    const now = Date.now() + 2 * 86_400_000;
    await gatherDigests(env, now);
    const digest = (
      await database(env).select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, victim.userId)).all()
    ).find((d) => d.type === "digest");
    if (digest) await sendDelivery(env, digest.id, undefined, now);
    const mails = emulators.email.outbox.filter((m) => m.to.includes(victim.email) && !/^Confirm your/.test(m.subject));
    // Expected: neither the in-app notification nor the later digest carries the removed text.
    expect(mention).toBeUndefined();
    expect(mails.some((m) => (m.text ?? "").includes("HARASSMENT") || (m.html ?? "").includes("HARASSMENT"))).toBe(false);
    const left = await database(env).select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, victim.userId)).all();
    expect(left.filter((d) => d.type === "forum_mention")).toEqual([]);
    // Nor can the victim's client open one by id.
    const [withdrawn] = (
      await env.DB.prepare("SELECT id FROM notifications WHERE user_id = ? AND type = 'forum_mention' LIMIT 1")
        .bind(victim.userId)
        .all<{ id: string }>()
    ).results;
    await expectError(
      await call(`/api/v1/notifications/${withdrawn!.id}/read/`, { method: "POST", bearer: victim.access }),
      404,
      "NOT_FOUND",
    );
  });

  it("an edit racing the post's deletion does not write its text back into the withdrawn notification", async () => {
    const [pest, victim] = [await bearerUser(), await bearerUser()];
    const topic = await newTopic(pest.access);
    const post = await reply(pest.access, topic.id, `@${victim.username} first words`);
    // The post is deleted between the edit's "is it live?" check and its write.
    const racing = envRacingFirstBatch(async () =>
      expect((await call(`${API}/posts/${post.id}/`, { method: "DELETE", bearer: pest.access })).status).toBe(204),
    );
    const pestUser = { id: pest.userId, username: pest.username, role: "user" as const };
    const lost = await editPost(racing.env, pestUser, post.id, "REWRITTEN after deletion").catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(lost).toMatchObject({ status: 409, code: "POST_DELETED" });
    const rows = await env.DB.prepare("SELECT title, body FROM notifications WHERE user_id = ? AND type = 'forum_mention'")
      .bind(victim.userId)
      .all<{ title: string; body: string }>();
    expect(rows.results).toEqual([{ title: "", body: "" }]);
    const stored = await env.DB.prepare("SELECT body FROM forum_posts WHERE id = ?").bind(post.id).first<{ body: string }>();
    expect(stored!.body).not.toContain("REWRITTEN");
  });

  it("an edited post's notifications quote what it says now; a deleted topic takes its posts' notifications with it", async () => {
    const [author, replier, follower] = [await bearerUser(), await bearerUser(), await bearerUser()];
    const topic = await newTopic(author.access);
    expect((await call(`${API}/topics/${topic.id}/subscribe/`, { method: "POST", bearer: follower.access })).status).toBe(200);
    const post = await reply(replier.access, topic.id, `@${follower.username} first words ABUSE-${crypto.randomUUID().slice(0, 8)}`);
    const inbox = async () =>
      (
        await json<Page<{ type: string; body: string; data: { post_id: string } }>>(
          await call("/api/v1/notifications/?page_size=100", { bearer: follower.access }),
          200,
        )
      ).results.filter((n) => n.data.post_id === post.id);
    // A follower the reply mentions is told once, by the mention.
    expect((await inbox()).map((n) => n.type)).toEqual(["forum_mention"]);

    expect(
      (await call(`${API}/posts/${post.id}/`, { method: "PATCH", bearer: replier.access, json: { body: "Sorry, I take it back." } }))
        .status,
    ).toBe(200);
    const edited = await inbox();
    expect(edited).toHaveLength(1);
    for (const n of edited) expect(n.body).toBe("Sorry, I take it back.");

    const other = await newTopic(author.access);
    const kept = await reply(replier.access, other.id, `@${follower.username} on another topic`);
    const mod = await moderator();
    expect((await call(`${API}/topics/${topic.id}/`, { method: "DELETE", bearer: mod.access })).status).toBe(204);
    expect(await inbox()).toEqual([]);
    // Only that topic's: a mention elsewhere stays.
    const all = await json<Page<{ data: { post_id: string } }>>(
      await call("/api/v1/notifications/?page_size=100", { bearer: follower.access }),
      200,
    );
    expect(all.results.some((n) => n.data.post_id === kept.id)).toBe(true);
  });
});

describe("mentions cannot flood someone's notifications", () => {
  it(`one author's mentions notify a person at most ${MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR} times an hour; other authors' still do`, async () => {
    const [pest, victim, friend] = [await bearerUser(), await bearerUser(), await bearerUser()];
    const topic = await newTopic(friend.access);
    for (let i = 0; i < MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR + 3; i++) await reply(pest.access, topic.id, `@${victim.username} look ${i}`);
    await reply(friend.access, topic.id, `@${victim.username} sorry about that`);
    const mentions = (
      await json<Page<{ type: string; title: string }>>(
        await call("/api/v1/notifications/?type=forum_mention&page_size=100", { bearer: victim.access }),
        200,
      )
    ).results;
    expect(mentions.filter((n) => n.title.startsWith(pest.username))).toHaveLength(MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR);
    expect(mentions.filter((n) => n.title.startsWith(friend.username))).toHaveLength(1);
  });

  it("deleting the posts and posting again does not start the count again", async () => {
    const [pest, victim] = [await bearerUser(), await bearerUser()];
    await database(env).update(users).set({ emailVerified: true }).where(eq(users.id, victim.userId));
    const topic = await newTopic(pest.access);
    // Each mention is removed at once, before any email of it goes, then the pest posts again.
    for (let i = 0; i < MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR; i++) {
      const post = await reply(pest.access, topic.id, `@${victim.username} again ${i}`);
      expect((await call(`${API}/posts/${post.id}/`, { method: "DELETE", bearer: pest.access })).status).toBe(204);
    }
    // The cap is reached: these notify nobody.
    for (let i = 0; i < 3; i++) await reply(pest.access, topic.id, `@${victim.username} and again ${i}`);
    const raised = await env.DB.prepare(
      "SELECT count(*) AS n FROM notifications WHERE user_id = ? AND type = 'forum_mention' AND json_extract(data, '$.author_id') = ?",
    )
      .bind(victim.userId, pest.userId)
      .first<{ n: number }>();
    expect(raised!.n).toBe(MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR);
    // And the withdrawn ones show nothing: no text, not listed, not unread, nothing left to send.
    const texts = await env.DB.prepare(
      "SELECT title, body, in_app, is_read, withdrawn_at FROM notifications WHERE user_id = ? AND type = 'forum_mention'",
    )
      .bind(victim.userId)
      .all<{ title: string; body: string; in_app: number; is_read: number; withdrawn_at: string | null }>();
    expect(texts.results).toHaveLength(MAX_MENTIONS_PER_HOUR_FROM_ONE_AUTHOR);
    expect(
      texts.results.filter((r) => !(r.title === "" && r.body === "" && r.in_app === 0 && r.is_read === 1 && r.withdrawn_at !== null)),
    ).toEqual([]);
    const list = await json<Page<unknown>>(await call("/api/v1/notifications/?type=forum_mention", { bearer: victim.access }), 200);
    expect(list.results).toEqual([]);
    expect(await json<{ unread_count: number }>(await call("/api/v1/notifications/unread-count/", { bearer: victim.access }), 200)).toEqual(
      {
        unread_count: 0,
      },
    );
    const left = await database(env).select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, victim.userId)).all();
    expect(left.filter((d) => d.type === "forum_mention")).toEqual([]);
  });
});

describe("a topic's author cannot delete others' replies with it", () => {
  it("a reply landing between the 'no replies from others' check and the delete keeps the topic and the reply (helper-47)", async () => {
    const [author, replier] = [await bearerUser(), await bearerUser()];
    const topic = await newTopic(author.access, "Yellow leaves, help");
    let replyId = "";
    const racing = envRacingFirstBatch(async () => {
      replyId = (await reply(replier.access, topic.id, "Overwatering, most likely.")).id;
    });
    const authorUser = { id: author.userId, username: author.username, role: "user" as const };
    const refused = await deleteTopic(racing.env, authorUser as never, topic.id).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(refused).toMatchObject({ status: 409, code: "TOPIC_HAS_REPLIES" });
    expect(await env.DB.prepare("SELECT id FROM forum_posts WHERE id = ?").bind(replyId).first()).toEqual({ id: replyId });
    expect((await call(`${API}/topics/${topic.id}/`)).status).toBe(200);
    // The topic author's own notification of the reply is still there, not withdrawn.
    const mine = await json<Page<{ type: string; data: { post_id?: string } }>>(
      await call("/api/v1/notifications/?page_size=100", { bearer: author.access }),
      200,
    );
    expect(mine.results.filter((n) => n.type === "forum_reply").map((n) => n.data.post_id)).toEqual([replyId]);
  });
});

describe("trust is earned by posts that stand", () => {
  it("posts written and deleted, or a deleted topic's posts, do not count towards a trust level (helper-47)", async () => {
    const farmer = await bearerUser();
    // Old enough for `basic` by age: only the posts decide.
    await env.DB.prepare("UPDATE users SET date_joined = '2026-01-01T00:00:00.000Z' WHERE id = ?").bind(farmer.userId).run();
    const postCount = async () =>
      (await env.DB.prepare("SELECT post_count AS n FROM users WHERE id = ?").bind(farmer.userId).first<{ n: number }>())!.n;
    const trust = async () =>
      (await json<{ trust_level: string }>(await call("/api/v1/auth/user/", { bearer: farmer.access }), 200)).trust_level;

    const topic = await newTopic(farmer.access, "My farming topic");
    const mine = [];
    for (let i = 0; i < 4; i++) mine.push(await reply(farmer.access, topic.id, `filler ${i}`));
    expect(await postCount()).toBe(5);
    expect(await trust()).toBe("basic");
    for (const p of mine.slice(0, 2))
      expect((await call(`${API}/posts/${p.id}/`, { method: "DELETE", bearer: farmer.access })).status).toBe(204);
    // A second delete of the same post is refused and uncounts nothing.
    expect((await call(`${API}/posts/${mine[0]!.id}/`, { method: "DELETE", bearer: farmer.access })).status).toBe(409);
    expect(await postCount()).toBe(3);
    expect(await trust()).toBe("new");

    // A moderator removes the topic: the farmer's remaining posts in it go, and so does a replier's.
    const other = await bearerUser();
    await reply(other.access, topic.id, "A real answer.");
    const before = (await env.DB.prepare("SELECT post_count AS n FROM users WHERE id = ?").bind(other.userId).first<{ n: number }>())!.n;
    expect((await call(`${API}/topics/${topic.id}/`, { method: "DELETE", bearer: (await moderator()).access })).status).toBe(204);
    expect(await postCount()).toBe(0);
    const after = (await env.DB.prepare("SELECT post_count AS n FROM users WHERE id = ?").bind(other.userId).first<{ n: number }>())!.n;
    expect(after).toBe(before - 1);
  });
});

describe("a failed community recount after a delete", () => {
  it("leaves the delete done and answered: the post is gone, its count taken off, nothing thrown", async () => {
    const author = await bearerUser();
    await env.DB.prepare("UPDATE users SET date_joined = '2026-01-01T00:00:00.000Z' WHERE id = ?").bind(author.userId).run();
    const topic = await newTopic(author.access, "Recount that fails");
    const posts = [];
    for (let i = 0; i < 4; i++) posts.push(await reply(author.access, topic.id, `post ${i}`));
    // D1 answers the delete's batch, then fails the next one (the recount of the author, now `new`).
    const failing = envAroundBatches(async (n) => {
      if (n > 1) throw new Error("D1 is unavailable");
    });
    const authorUser = { id: author.userId, username: author.username, role: "user" as const };
    await expect(deletePost(failing.env, authorUser as never, posts[0]!.id)).resolves.toEqual([]);
    expect(failing.batches()).toBe(2);
    const row = await env.DB.prepare("SELECT is_deleted FROM forum_posts WHERE id = ?").bind(posts[0]!.id).first<{ is_deleted: number }>();
    expect(row!.is_deleted).toBe(1);
    const count = await env.DB.prepare("SELECT post_count AS n FROM users WHERE id = ?").bind(author.userId).first<{ n: number }>();
    expect(count!.n).toBe(4);
  });
});

describe("the community recount after a delete runs only for authors the delete dropped to new", () => {
  // A new member deleting a post had no counting vote before: recounting every request they
  // voted on would be work for nothing, on the path new members take most.
  it("recounts nothing for an author who was new already, and recounts one a topic delete drops from basic", async () => {
    const newcomer = await bearerUser();
    const topic = await newTopic(newcomer.access, "A newcomer's topic");
    const post = await reply(newcomer.access, topic.id, "a first reply");
    const counting = envAroundBatches(async () => {});
    const asUser = (u: { userId: string; username: string }) => ({ id: u.userId, username: u.username, role: "user" as const }) as never;
    await deletePost(counting.env, asUser(newcomer), post.id);
    expect(counting.batches()).toBe(1);

    // Five posts and old enough: basic; a moderator's topic delete takes four of them away.
    const farmer = await bearerUser();
    await env.DB.prepare("UPDATE users SET date_joined = '2026-01-01T00:00:00.000Z' WHERE id = ?").bind(farmer.userId).run();
    await newTopic(farmer.access, "Elsewhere");
    const doomed = await newTopic(farmer.access, "Doomed");
    for (let i = 0; i < 3; i++) await reply(farmer.access, doomed.id, `doomed ${i}`);
    const mod = await moderator();
    const recounting = envAroundBatches(async () => {});
    await deleteTopic(recounting.env, { id: mod.userId, username: mod.username, role: "moderator" } as never, doomed.id);
    expect(recounting.batches()).toBe(2); // the delete, then the farmer's recount
  });
});

describe("the anonymous forum cache is not anyone's to empty", () => {
  it("following a topic or reporting a post keeps the cached answers, and follows are rate limited", async () => {
    const author = await bearerUser();
    const attacker = await bearerUser();
    const topic = await newTopic(author.access);
    await purgePublicReads(env, "forum");
    const path = `${API}/topics/${topic.id}/`;
    expect((await call(path)).headers.get("X-Cache")).toBe("MISS");
    expect((await call(path)).headers.get("X-Cache")).toBe("HIT");

    // 40 follow/unfollow toggles: the first 30 are allowed, then 429.
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await call(`${API}/topics/${topic.id}/subscribe/`, { method: i % 2 ? "DELETE" : "POST", bearer: attacker.access });
      statuses.push(res.status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(30);
    expect(statuses.slice(30).every((s) => s === 429)).toBe(true);
    const report = await call(`${API}/posts/${topic.first_post.id}/report/`, { bearer: attacker.access, json: { reason: "spam" } });
    expect(report.status).toBe(201);
    // A subscription and a report are the caller's and the moderators' business: what anonymous
    // readers get is still cached.
    const after = await call(path);
    expect(after.headers.get("X-Cache")).toBe("HIT");
  });
});

describe("topic titles are held to the limits bodies have", () => {
  it("title edits count as forum writes (30 per 10 minutes)", async () => {
    const author = await bearerUser();
    const topic = await newTopic(author.access);
    const statuses: number[] = [];
    for (let i = 0; i < 35; i++) {
      const res = await call(`${API}/topics/${topic.id}/`, {
        method: "PATCH",
        bearer: author.access,
        json: { title: `Spam title number ${i}` },
      });
      statuses.push(res.status);
    }
    expect(statuses).toContain(429);
  });

  it("a new user cannot rewrite a topic's title after the 24 h edit window closed; a moderator can", async () => {
    const author = await bearerUser();
    const others = await bearerUser();
    const topic = await newTopic(author.access, "Best soil mix for succulents?");
    await reply(others.access, topic.id, "Gritty mix: pumice, bark and a little compost.");
    const old = new Date(Date.now() - 3 * 86_400_000).toISOString();
    await env.DB.batch([
      env.DB.prepare("UPDATE forum_topics SET created_at = ? WHERE id = ?").bind(old, topic.id),
      env.DB.prepare("UPDATE forum_posts SET created_at = ? WHERE id = ?").bind(old, topic.first_post.id),
    ]);
    const body = await call(`${API}/posts/${topic.first_post.id}/`, {
      method: "PATCH",
      bearer: author.access,
      json: { body: "Buy cheap pills at spam.example" },
    });
    expect(body.status).toBe(403);
    // The title (what lists, search, suggestions and every reply notification show) is too.
    const title = await call(`${API}/topics/${topic.id}/`, {
      method: "PATCH",
      bearer: author.access,
      json: { title: "Buy cheap pills at spam.example" },
    });
    await expectError(title, 403, "EDIT_WINDOW_CLOSED");
    const mod = await moderator();
    const fixed = await call(`${API}/topics/${topic.id}/`, {
      method: "PATCH",
      bearer: mod.access,
      json: { title: "Soil mix for succulents" },
    });
    expect(fixed.status).toBe(200);
  });
});

describe("forum photos keep no location", () => {
  it("a camera JPEG's appended preview (MPF), with GPS EXIF of its own, is not served with a public post", async () => {
    const author = await bearerUser();
    await env.DB.prepare("UPDATE users SET trust_level = 'basic' WHERE id = ?").bind(author.userId).run();
    const ascii = (s: string) => new TextEncoder().encode(s);
    const exif = (marker: string) => jpegSegment(0xe1, concatBytes(ascii("Exif\0\0MM\0*\0\0\0\b"), ascii(marker)));
    const withExif = (jpeg: Uint8Array, marker: string) => concatBytes(jpeg.subarray(0, 2), exif(marker), jpeg.subarray(2));
    // A camera-style file: the primary image's EXIF, then an MPF secondary image with its own EXIF.
    const tag = crypto.randomUUID().slice(0, 8);
    const primary = withExif(makeJpeg(320, 240, { seed: tag }), `GPS-PRIMARY-51.5007N-0.1246W`);
    const secondary = withExif(makeJpeg(160, 120), `GPS-SECONDARY-51.5007N-0.1246W`);
    const file = concatBytes(primary, secondary);

    const form = new FormData();
    form.append("title", "My garden this morning");
    form.append("body", "Look at the ferns!");
    form.append("image_1", new File([file], "IMG_0001.jpg", { type: "image/jpeg" }));
    const topic = await json<{ first_post: { attachments: { url: string }[] } }>(
      await call(`${API}/categories/houseplants/topics/`, { bearer: author.access, body: form }),
      201,
    );
    const served = await call(topic.first_post.attachments[0]!.url); // anonymous: the post is public
    expect(served.status).toBe(200);
    const text = new TextDecoder("latin1").decode(new Uint8Array(await served.arrayBuffer()));
    expect(text).not.toContain("GPS-PRIMARY"); // the primary image's EXIF is stripped ...
    expect(text).not.toContain("GPS-SECONDARY"); // ... and so is the appended image, with its EXIF
  });
});

describe("a topic's new title reaches every notification its posts raised, however many", () => {
  /** D1 refuses a string or BLOB value over 2 000 000 bytes (docs/scaling.md); the local D1 does not, so this env does. */
  function envWithD1ValueLimit() {
    const DB = new Proxy(env.DB, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (prop !== "prepare") return typeof value === "function" ? value.bind(target) : value;
        return (query: string) => {
          const statement = target.prepare(query);
          const bind = statement.bind.bind(statement);
          return Object.assign(statement, {
            bind: (...values: unknown[]) => {
              for (const v of values)
                if (typeof v === "string" && new TextEncoder().encode(v).length > 2_000_000)
                  throw new Error("D1_ERROR: string or blob too big: SQLITE_TOOBIG");
              return bind(...values);
            },
          });
        };
      },
    });
    return { ...env, DB } as typeof env;
  }

  it("a busy topic (thousands of reply notifications) takes a new title without a D1 value past its limit, and every one quotes it", async () => {
    const author = await bearerUser();
    const replier = await bearerUser();
    const topic = await newTopic(author.access, `Abusive ${crypto.randomUUID()} ${"x".repeat(60)}`);
    const post = await reply(replier.access, topic.id, "First!");
    // As many subscribers' reply notifications as a popular topic gathers (subscribers × replies).
    const n = 15_000;
    await env.DB.prepare(
      `INSERT INTO notifications (id, user_id, type, title, dedupe_key)
       WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ${n})
       SELECT lower(hex(randomblob(16))), ?1, 'forum_reply', 'old', 'forum_reply:' || ?2 || ':subscriber' || i FROM k`,
    )
      .bind(author.userId, post.id)
      .run();
    const mod = await moderator();
    const title = `Tidied ${"y".repeat(70)}`;
    const { updated } = await updateTopicTitle(
      envWithD1ValueLimit(),
      { id: mod.userId, username: mod.username, role: "moderator" },
      topic.id,
      title,
    );
    expect(updated.length).toBeGreaterThanOrEqual(n);
    const stale = await env.DB.prepare(
      "SELECT count(*) AS n FROM notifications WHERE dedupe_key >= ? AND dedupe_key < ? AND title NOT LIKE '% replied to \"Tidied %'",
    )
      .bind(`forum_reply:${post.id}:`, `forum_reply:${post.id};`)
      .first<{ n: number }>();
    expect(stale!.n).toBe(0);
  });
});

describe("a locked topic takes no reply, however close the lock", () => {
  it("a reply whose topic is locked between its lock check and its write is refused (403 TOPIC_LOCKED) and leaves nothing behind (helper-61)", async () => {
    const [author, replier] = [await bearerUser(), await bearerUser()];
    const topic = await newTopic(author.access);
    // The lock commits after createReply read the topic as open, before its batch.
    const racing = envRacingFirstBatch(() => env.DB.prepare("UPDATE forum_topics SET is_locked = 1 WHERE id = ?").bind(topic.id).run());
    const replierUser = { id: replier.userId, username: replier.username, role: "user" as const };
    // With a photo: stored before the batch, it is released again when the batch refuses the reply.
    const bytes = await makePng(320, 240, { seed: `locked-${crypto.randomUUID()}` });
    const sha256 = await sha256Hex(bytes);
    const photo = {
      bytes,
      type: "png",
      mime: "image/png",
      extension: "png",
      width: 320,
      height: 240,
      sizeBytes: bytes.byteLength,
      sha256,
    } as const;
    const refused = await createReply(racing.env, replierUser, topic.id, `@${author.username} sneaking in`, [photo]).catch(
      (err: unknown) => err,
    );
    expect(racing.fired()).toBe(true);
    expect(refused).toMatchObject({ status: 403, code: "TOPIC_LOCKED" });
    expect(await env.IMAGES.head(`images/${sha256}.png`)).toBeNull();
    const attached = await env.DB.prepare("SELECT count(*) AS n FROM forum_attachments WHERE image = ?")
      .bind(`${sha256}.png`)
      .first<{ n: number }>();
    expect(attached!.n).toBe(0);
    const posts = await env.DB.prepare("SELECT count(*) AS n FROM forum_posts WHERE topic_id = ? AND author_id = ?")
      .bind(topic.id, replier.userId)
      .first<{ n: number }>();
    expect(posts!.n).toBe(0);
    const stored = await env.DB.prepare("SELECT reply_count FROM forum_topics WHERE id = ?")
      .bind(topic.id)
      .first<{ reply_count: number }>();
    expect(stored!.reply_count).toBe(0);
    const counted = await env.DB.prepare("SELECT post_count FROM users WHERE id = ?").bind(replier.userId).first<{ post_count: number }>();
    expect(counted!.post_count).toBe(0);
    // The topic's author (subscribed, and mentioned) heard nothing.
    const told = await env.DB.prepare(
      "SELECT count(*) AS n FROM notifications WHERE user_id = ? AND type IN ('forum_reply', 'forum_mention')",
    )
      .bind(author.userId)
      .first<{ n: number }>();
    expect(told!.n).toBe(0);
    // A moderator still may reply to the locked topic.
    const mod = await moderator();
    expect((await call(`${API}/topics/${topic.id}/posts/`, { bearer: mod.access, json: { body: "Locked: see the FAQ." } })).status).toBe(
      201,
    );
  });
});

describe("a topic's solution is a post that stands", () => {
  it("a post deleted between the solution's check and its write does not become the solution (helper-61)", async () => {
    const [author, replier] = [await bearerUser(), await bearerUser()];
    const topic = await newTopic(author.access);
    const answer = await reply(replier.access, topic.id, "Water when the soil is dry.");
    // The reply is deleted (its delete clears a solution not yet set) right before the solution's update.
    const racing = envRacingStatement(/^update "forum_topics" set "solution_post_id"/, () =>
      deletePost(env, { id: replier.userId, username: replier.username, role: "user" }, answer.id),
    );
    const authorUser = { id: author.userId, username: author.username, role: "user" as const };
    const refused = await setSolution(racing.env, authorUser, topic.id, answer.id).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(refused).toMatchObject({
      status: 400,
      code: "VALIDATION_ERROR",
      fieldErrors: { post_id: ["A deleted post cannot be the solution."] },
    });
    const stored = await env.DB.prepare("SELECT solution_post_id FROM forum_topics WHERE id = ?")
      .bind(topic.id)
      .first<{ solution_post_id: string | null }>();
    expect(stored!.solution_post_id).toBeNull();
  });

  it("deleting the post that is the solution clears it", async () => {
    const [author, replier] = [await bearerUser(), await bearerUser()];
    const topic = await newTopic(author.access);
    const answer = await reply(replier.access, topic.id, "Water when the soil is dry.");
    const marked = await call(`${API}/topics/${topic.id}/solution/`, { bearer: author.access, json: { post_id: answer.id } });
    expect(await json<{ solution_post_id: string | null }>(marked, 200)).toMatchObject({ solution_post_id: answer.id });
    expect((await call(`${API}/posts/${answer.id}/`, { method: "DELETE", bearer: replier.access })).status).toBe(204);
    expect(await json<{ solution_post_id: string | null }>(await call(`${API}/topics/${topic.id}/`), 200)).toMatchObject({
      solution_post_id: null,
    });
  });
});

describe("a locked topic takes no edit, however close the lock", () => {
  const lockBeforeWrite = (topicId: string) =>
    envRacingFirstBatch(() => env.DB.prepare("UPDATE forum_topics SET is_locked = 1 WHERE id = ?").bind(topicId).run());

  it("an edit whose topic is locked between its lock check and its write is refused (403 TOPIC_LOCKED) and changes nothing", async () => {
    const [author, replier] = [await bearerUser(), await bearerUser()];
    const topic = await newTopic(author.access);
    const post = await reply(replier.access, topic.id, "Water it weekly.");
    const racing = lockBeforeWrite(topic.id);
    const refused = await editPost(
      racing.env,
      { id: replier.userId, username: replier.username, role: "user" },
      post.id,
      "Rewritten after the lock",
    ).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(refused).toMatchObject({ status: 403, code: "TOPIC_LOCKED" });
    const stored = await env.DB.prepare("SELECT body, edited_at FROM forum_posts WHERE id = ?")
      .bind(post.id)
      .first<{ body: string; edited_at: string | null }>();
    expect(stored).toMatchObject({ body: "Water it weekly.", edited_at: null });
    // A moderator's edit of the locked topic still lands.
    const mod = await moderator();
    await editPost(env, { id: mod.userId, username: mod.username, role: "moderator" }, post.id, "Edited by a moderator");
  });

  it("a title change whose topic is locked between its lock check and its write is refused (403 TOPIC_LOCKED)", async () => {
    const author = await bearerUser();
    const topic = await newTopic(author.access, "Jade watering");
    const racing = lockBeforeWrite(topic.id);
    const refused = await updateTopicTitle(
      racing.env,
      { id: author.userId, username: author.username, role: "user" },
      topic.id,
      "Renamed after the lock",
    ).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(refused).toMatchObject({ status: 403, code: "TOPIC_LOCKED" });
    const stored = await env.DB.prepare("SELECT title FROM forum_topics WHERE id = ?").bind(topic.id).first<{ title: string }>();
    expect(stored!.title).toBe("Jade watering");
  });
});
