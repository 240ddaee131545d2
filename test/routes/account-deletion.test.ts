/**
 * Self-service account deletion (`POST /api/v1/auth/user/delete/`), end to end: what goes, what
 * stays under an anonymous name, the counters and consensus it fed, and the attacks on it — a
 * stolen token without the password, an old session of an account without one, a cross-site
 * form, a staff account, an administrator bringing a deleted account back, a newcomer taking a
 * deleted account's generated name.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { UserHub } from "../../durable-objects/user-hub";
import { getConfig } from "../../src/config";
import { sha256Hex } from "../../src/lib/hash";
import { uuidv7 } from "../../src/lib/ids";
import { deleteAccountAsAdmin } from "../../src/services/account-deletion";
import { userHub } from "../../src/services/progress";
import { issueTokenPair } from "../../src/services/tokens";
import { updateProfile } from "../../src/services/accounts";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { blogPost } from "../helpers/blog";
import { makePng } from "../helpers/images";
import { mailTo } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { envRacingFirstBatch } from "../helpers/racing-env";
import { pendingRequest } from "../helpers/requests";
import { bearerUser, GOOD_PASSWORD, registerWeb, tokenLogin } from "../helpers/users";
import { userForeignKeys } from "../helpers/user-keys";

const emulators = useEmulators();
type User = Awaited<ReturnType<typeof bearerUser>>;

const remove = (u: { access: string }, body?: unknown) =>
  call("/api/v1/auth/user/delete/", { method: "POST", bearer: u.access, ...(body === undefined ? {} : { json: body }) });
const count = async (sql: string, ...params: unknown[]) =>
  (await env.DB.prepare(sql)
    .bind(...params)
    .first<{ n: number }>())!.n;
const row = (id: string) => env.DB.prepare("SELECT * FROM users WHERE id = ?").bind(id).first<Record<string, unknown>>();

/** A user whose votes count (trust level above `new`). */
async function identifier(): Promise<User> {
  const u = await bearerUser();
  await env.DB.prepare("UPDATE users SET trust_level = 'basic' WHERE id = ?").bind(u.userId).run();
  return u;
}

/** A shared, finished request of `owner` with one engine result for a species of its own; the result id. */
async function sharedRequest(owner: User): Promise<{ id: string; result: string; species: string }> {
  const [id, result, species] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  const name = `Monstera deliciosa${id.slice(0, 8)}`;
  await env.DB.batch([
    env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, 'Araceae', 'Monstera')").bind(species, name),
    env.DB.prepare(
      "INSERT INTO identification_requests (id, user_id, status, image_hashes, is_shared_with_community) VALUES (?, ?, 'needs_help', '[]', 1)",
    ).bind(id, owner.userId),
    env.DB.prepare(
      `INSERT INTO identification_results (id, request_id, species_id, scientific_name, family, confidence_score, identification_source, rank)
       VALUES (?, ?, ?, ?, 'Araceae', 0.4, 'ai_combined', 1)`,
    ).bind(result, id, species, name),
  ]);
  return { id, result, species };
}
const vote = (u: User, resultId: string) =>
  call(`/api/v1/plant-identification/results/${resultId}/vote/`, { bearer: u.access, json: { vote_type: "upvote" } });
const consensusOf = async (requestId: string) =>
  (
    await env.DB.prepare("SELECT community_result_id AS r FROM identification_requests WHERE id = ?")
      .bind(requestId)
      .first<{ r: string | null }>()
  )?.r ?? null;
const helped = (u: User) => count("SELECT identifications_helped AS n FROM users WHERE id = ?", u.userId);

describe("deleting your own account", () => {
  it("deletes what is private, keeps the forum posts under a generated name, ends every session, frees the address (not the name), and tells the old address", async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    // Private things: a plant with a reminder, an identification request with its photo in R2, a notification.
    const plant = await json<{ id: string }>(
      await call("/api/v1/plant-identification/plants/", { bearer: u.access, json: { nickname: "Calathea", notes: "by the window" } }),
      201,
    );
    await json(
      await call("/api/v1/reminders/", { bearer: u.access, json: { plant_id: plant.id, reminder_type: "water", frequency: "weekly" } }),
      201,
    );
    const photo = new TextEncoder().encode(`a photo only this request shows: ${u.userId}`);
    const requestId = await pendingRequest("identify", u.userId, photo);
    const photoKey = (await env.DB.prepare("SELECT image_hashes AS h FROM identification_requests WHERE id = ?")
      .bind(requestId)
      .first<{ h: string }>())!.h;
    const r2Key = `images/${(JSON.parse(photoKey) as string[])[0]}`;
    expect(await env.IMAGES.head(r2Key)).not.toBeNull();
    // Public things others answered: a forum topic with someone else's reply.
    const topic = await json<{ id: string }>(
      await call("/api/v1/forum/categories/houseplants/topics/", {
        bearer: u.access,
        json: { title: "Brown tips on my calathea", body: "Why?" },
      }),
      201,
    );
    await json(
      await call(`/api/v1/forum/topics/${topic.id}/posts/`, { bearer: other.access, json: { body: "Tap water, probably." } }),
      201,
    );
    const mobile = await tokenLogin(u.username); // a sign-in: last_login set
    await json(await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, json: { gardening_experience: "expert" } }), 200);

    // A stolen access token without the password deletes nothing.
    await expectError(await remove(u), 400, "VALIDATION_ERROR");
    await expectError(await remove(u, { current_password: "Not-The-Password-1" }), 400, "VALIDATION_ERROR");
    expect((await row(u.userId))!.deleted_at).toBeNull();
    expect(await count("SELECT count(*) AS n FROM user_plants WHERE user_id = ?", u.userId)).toBe(1);

    const outbox = emulators.email.outbox.length;
    expect(await json<{ message: string }>(await remove(u, { current_password: GOOD_PASSWORD }), 200)).toEqual({
      message: "Your account was deleted.",
    });

    // Every session is over: this one and the other device's.
    await expectError(await call("/api/v1/auth/user/", { bearer: u.access }), 401, "TOKEN_INVALID");
    await expectError(await call("/api/v1/auth/user/", { bearer: mobile.access }), 401, "TOKEN_INVALID");
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: mobile.refresh } })).status).toBe(401);
    expect((await call("/api/v1/auth/token/", { json: { username: u.username, password: GOOD_PASSWORD } })).status).toBe(401);

    // The private rows are gone, and the photo nothing else shows left R2.
    for (const [table, column] of [
      ["user_plants", "user_id"],
      ["collections", "user_id"],
      ["care_reminders", "user_id"],
      ["identification_requests", "user_id"],
      ["notifications", "user_id"],
      ["refresh_tokens", "user_id"],
      ["forum_subscriptions", "user_id"],
    ] as const) {
      expect(await count(`SELECT count(*) AS n FROM ${table} WHERE ${column} = ?`, u.userId), table).toBe(0);
    }
    expect(await env.IMAGES.head(r2Key)).toBeNull();

    // The row stays, anonymised; the forum thread keeps its first post under the generated name.
    const after = (await row(u.userId))!;
    expect(after).toMatchObject({
      is_active: 0,
      password_hash: null,
      first_name: "",
      bio: "",
      avatar_key: null,
      gardening_experience: "beginner",
      last_login: null,
    });
    expect(after.deleted_at).toEqual(expect.any(String));
    expect(after.username).toMatch(/^deleted-[0-9a-f]{12}$/);
    expect(after.email).toMatch(/^deleted-[0-9a-f]{12}@deleted\.invalid$/);
    const thread = await json<{ results: { author: { username: string } | null; body: string }[] }>(
      await call(`/api/v1/forum/topics/${topic.id}/posts/`),
      200,
    );
    expect(thread.results.map((p) => p.author?.username)).toEqual([after.username, other.username]);
    expect(JSON.stringify(thread)).not.toContain(u.username);

    // The address is free again, the name is retired for good (old posts still say "@name"),
    // and the old address heard of it.
    const taken = await call("/api/v1/auth/register/", { json: { username: u.username, email: u.email, password: GOOD_PASSWORD } });
    expect((await expectError(taken, 400, "VALIDATION_ERROR")).errors).toEqual({ username: ["This username is not available."] });
    const again = await registerWeb({ username: `${u.username}b`, email: u.email });
    expect(again.userId).not.toBe(u.userId);
    const mail = await mailTo(emulators.email, u.email, /account was deleted/);
    expect(emulators.email.outbox.length).toBeGreaterThan(outbox);
    expect(mail.text).toContain(u.username);
  });

  it("the email provider down changes nothing: the deletion stands and answers 200", async () => {
    const u = await bearerUser();
    const requestId = await pendingRequest("identify", u.userId, new TextEncoder().encode(`provider down ${u.userId}`));
    emulators.email.setMode({ failure: "500" });
    try {
      expect(await json<{ message: string }>(await remove(u, { current_password: GOOD_PASSWORD }), 200)).toEqual({
        message: "Your account was deleted.",
      });
    } finally {
      emulators.email.setMode({ failure: "none" });
    }
    expect((await row(u.userId))!.deleted_at).toEqual(expect.any(String));
    expect(await count("SELECT count(*) AS n FROM identification_requests WHERE id = ?", requestId)).toBe(0);
  });

  it("an account without a password is deleted only from a session begun in the last 10 minutes", async () => {
    const u = await registerWeb();
    await env.DB.prepare("UPDATE users SET password_hash = NULL WHERE id = ?").bind(u.userId).run(); // signs in through a provider only
    const config = getConfig(env);
    const old = await issueTokenPair(env, config, u.userId, null, uuidv7(Date.now() - 11 * 60_000));
    await expectError(await remove(old), 403, "FORBIDDEN");
    expect((await row(u.userId))!.deleted_at).toBeNull();
    const fresh = await issueTokenPair(env, config, u.userId, null);
    await json(await remove(fresh), 200);
    expect((await row(u.userId))!.deleted_at).toEqual(expect.any(String));
  });

  it("a cookie session needs its CSRF token: a cross-site form cannot delete the account", async () => {
    const u = await registerWeb();
    const path = "/api/v1/auth/user/delete/";
    const forged = await call(path, { cookies: u.cookies, json: { current_password: GOOD_PASSWORD } });
    expect(forged.status).toBe(403);
    expect((await row(u.userId))!.deleted_at).toBeNull();
    const res = await call(path, { cookies: u.cookies, headers: { "X-CSRFToken": u.csrf }, json: { current_password: GOOD_PASSWORD } });
    expect(res.status).toBe(200);
    // The browser's session cookies are cleared.
    expect(res.headers.getSetCookie().some((c) => /access_token=;|access_token=""/.test(c) || /Max-Age=0/.test(c))).toBe(true);
  });

  it("a staff account cannot delete itself (409) and keeps everything", async () => {
    const u = await bearerUser();
    await env.DB.prepare("UPDATE users SET role = 'admin' WHERE id = ?").bind(u.userId).run();
    await expectError(await remove(u, { current_password: GOOD_PASSWORD }), 409, "INVALID_STATE");
    expect(await row(u.userId)).toMatchObject({ is_active: 1, deleted_at: null, role: "admin" });
    expect((await call("/api/v1/auth/user/", { bearer: u.access })).status).toBe(200);
  });

  it("the refusal names the role in a sentence people read: an editor, a moderator", async () => {
    const [editor, moderator] = await Promise.all([bearerUser(), bearerUser()]);
    await env.DB.prepare("UPDATE users SET role = 'editor' WHERE id = ?").bind(editor.userId).run();
    await env.DB.prepare("UPDATE users SET role = 'moderator' WHERE id = ?").bind(moderator.userId).run();
    const editorBody = await expectError(await remove(editor, { current_password: GOOD_PASSWORD }), 409, "INVALID_STATE");
    expect(editorBody.message).toMatch(/^An editor account cannot delete itself/);
    const moderatorBody = await expectError(await remove(moderator, { current_password: GOOD_PASSWORD }), 409, "INVALID_STATE");
    expect(moderatorBody.message).toMatch(/^A moderator account cannot delete itself/);
  });

  it("an administrator cannot bring a deleted account back", async () => {
    const [u, admin] = await Promise.all([bearerUser(), bearerUser()]);
    await env.DB.prepare("UPDATE users SET role = 'admin' WHERE id = ?").bind(admin.userId).run();
    await json(await remove(u, { current_password: GOOD_PASSWORD }), 200);
    await expectError(
      await call(`/api/v1/admin/users/${u.userId}/active/`, { method: "PATCH", bearer: admin.access, json: { is_active: true } }),
      409,
      "INVALID_STATE",
    );
    expect((await row(u.userId))!.is_active).toBe(0);
  });

  it("nobody can register a name shaped like a deleted account's", async () => {
    const res = await call("/api/v1/auth/register/", {
      json: { username: "Deleted-0123456789ab", email: `x${Date.now()}@example.com`, password: GOOD_PASSWORD },
    });
    await expectError(res, 400, "VALIDATION_ERROR");
  });

  it("wrong passwords on the deletion form count toward the lockout", async () => {
    const u = await bearerUser();
    for (let i = 0; i < 10; i++) expect((await remove(u, { current_password: `Wrong-Guess-${i}` })).status, `guess ${i + 1}`).toBe(400);
    await expectError(await remove(u, { current_password: GOOD_PASSWORD }), 429, "ACCOUNT_LOCKED");
    expect((await row(u.userId))!.deleted_at).toBeNull();
  });
});

describe("others after a deletion", () => {
  it("everyone going to an event it organised that has not ended hears it is cancelled; the event and its RSVPs go", async () => {
    const [organiser, guest] = await Promise.all([bearerUser(), bearerUser()]);
    const start = Date.now() + 3 * 86_400_000;
    const event = await json<{ id: string }>(
      await call("/api/v1/calendar/events/", {
        bearer: organiser.access,
        json: {
          title: "Seed swap",
          start: new Date(start).toISOString(),
          end: new Date(start + 7_200_000).toISOString(),
          location: "The shed",
          privacy: "public",
        },
      }),
      201,
    );
    await json(await call(`/api/v1/calendar/events/${event.id}/rsvp/`, { bearer: guest.access, json: { status: "going" } }), 200);
    await json(await remove(organiser, { current_password: GOOD_PASSWORD }), 200);
    const told = await json<{ results: { type: string; title: string }[] }>(
      await call("/api/v1/notifications/?type=calendar_event_changed", { bearer: guest.access }),
      200,
    );
    expect(told.results.map((n) => n.title)).toEqual(["Cancelled: Seed swap"]);
    expect(await count("SELECT count(*) AS n FROM calendar_rsvps WHERE event_id = ?", event.id)).toBe(0);
    expect((await call(`/api/v1/calendar/events/${event.id}/`, { bearer: guest.access })).status).toBe(404);
  });
});

describe("photos the deleted account shared with others", () => {
  it("a picture another user's plant or forum post also shows stays in storage; one only it showed goes", async () => {
    const [u, other] = await Promise.all([bearerUser(), bearerUser()]);
    const bytes = (what: string) => new TextEncoder().encode(`${what} ${u.userId}`);
    const [onPlant, onPost, alone] = [bytes("also on a plant"), bytes("also on a post"), bytes("only here")];
    for (const photo of [onPlant, onPost, alone]) await pendingRequest("identify", u.userId, photo);
    const ref = async (photo: Uint8Array) => `${await sha256Hex(photo)}.png`;
    // The same pictures, on the other user's plant and in a post of theirs.
    const collection = (await env.DB.prepare("SELECT id FROM collections WHERE user_id = ?").bind(other.userId).first<{ id: string }>())!
      .id;
    await env.DB.prepare("INSERT INTO user_plants (id, user_id, collection_id, nickname, image_key) VALUES (?, ?, ?, 'Twin', ?)")
      .bind(crypto.randomUUID(), other.userId, collection, await ref(onPlant))
      .run();
    const topic = await json<{ id: string }>(
      await call("/api/v1/forum/categories/houseplants/topics/", { bearer: other.access, json: { title: "Same plant?", body: "Look" } }),
      201,
    );
    const post = (await env.DB.prepare("SELECT id FROM forum_posts WHERE topic_id = ?").bind(topic.id).first<{ id: string }>())!.id;
    await env.DB.prepare("INSERT INTO forum_attachments (post_id, position, image, width, height) VALUES (?, 0, ?, 10, 10)")
      .bind(post, await ref(onPost))
      .run();

    await json(await remove(u, { current_password: GOOD_PASSWORD }), 200);
    expect(await env.IMAGES.head(`images/${await ref(onPlant)}`)).not.toBeNull();
    expect(await env.IMAGES.head(`images/${await ref(onPost)}`)).not.toBeNull();
    expect(await env.IMAGES.head(`images/${await ref(alone)}`)).toBeNull();
  });
});

describe("the live-progress hub of the deleted account", () => {
  it("forgets the progress its requests reported (species named, a diagnosis), which no later run would prune", async () => {
    const u = await bearerUser();
    const requestId = await pendingRequest("identify", u.userId, new TextEncoder().encode(`hub photo ${u.userId}`));
    await userHub(env, u.userId).publish({
      type: "progress",
      request_id: requestId,
      stage: "care_start",
      status: "processing",
      data: { scientific_name: "Papaver somniferum" },
    });
    const hub = env.USER_HUB.get(env.USER_HUB.idFromName(u.userId));
    expect(await runInDurableObject(hub, (h: UserHub) => h.lastState(requestId))).toMatchObject({ stage: "care_start" });

    await json(await remove(u, { current_password: GOOD_PASSWORD }), 200);
    expect(await runInDurableObject(hub, (h: UserHub) => h.lastState(requestId))).toBeNull();

    // A job already running when the deletion landed reports on: nothing of it is kept either.
    await userHub(env, u.userId).publish({ type: "completed", request_id: requestId, status: "identified", results_count: 3 });
    expect(await runInDurableObject(hub, (h: UserHub) => h.lastState(requestId))).toBeNull();
  });
});

describe("the community after a deletion", () => {
  it("its votes stop counting: a consensus it carried on someone else's request is recounted, with the helpers' counters", async () => {
    const [owner, a, b] = await Promise.all([bearerUser(), identifier(), identifier()]);
    const req = await sharedRequest(owner);
    await json(await vote(a, req.result), 200);
    await json(await vote(b, req.result), 200);
    expect(await consensusOf(req.id)).toBe(req.result);
    expect(await helped(a)).toBe(1);
    await json(await remove(b, { current_password: GOOD_PASSWORD }), 200);
    expect(await consensusOf(req.id)).toBeNull();
    expect(await helped(a)).toBe(0);
    expect(await count("SELECT confirmed_count AS n FROM species WHERE id = ?", req.species)).toBe(0);
  });

  it("its own confirmed requests go, and the counters they fed for others fall with them", async () => {
    const [owner, a, b] = await Promise.all([bearerUser(), identifier(), identifier()]);
    const req = await sharedRequest(owner);
    await json(await vote(a, req.result), 200);
    await json(await vote(b, req.result), 200);
    expect(await helped(a)).toBe(1);
    expect(await count("SELECT confirmed_count AS n FROM species WHERE id = ?", req.species)).toBe(1);
    await json(await remove(owner, { current_password: GOOD_PASSWORD }), 200);
    expect(await count("SELECT count(*) AS n FROM identification_requests WHERE id = ?", req.id)).toBe(0);
    expect(await helped(a)).toBe(0);
    expect(await helped(b)).toBe(0);
    expect(await count("SELECT confirmed_count AS n FROM species WHERE id = ?", req.species)).toBe(0);
  });
});

describe("after the deletion has landed", () => {
  it("a failure telling others (a consensus its votes no longer block) does not turn the done deletion into a 500", async () => {
    const [owner, a, b, u] = await Promise.all([bearerUser(), identifier(), identifier(), identifier()]);
    const req = await sharedRequest(owner);
    await json(await vote(a, req.result), 200);
    await json(await vote(b, req.result), 200);
    await json(
      await call(`/api/v1/plant-identification/results/${req.result}/vote/`, { bearer: u.access, json: { vote_type: "downvote" } }),
      200,
    );
    expect(await consensusOf(req.id)).toBeNull(); // two of three: not more than two thirds
    // The consensus notices that follow the deletion cannot be written.
    await env.DB.prepare(
      "CREATE TRIGGER test_consensus_notices_fail BEFORE INSERT ON notifications WHEN NEW.type = 'community_consensus' BEGIN SELECT RAISE(ABORT, 'notifications unavailable'); END",
    ).run();
    try {
      expect(await json<{ message: string }>(await remove(u, { current_password: GOOD_PASSWORD }), 200)).toEqual({
        message: "Your account was deleted.",
      });
    } finally {
      await env.DB.prepare("DROP TRIGGER test_consensus_notices_fail").run();
    }
    expect((await row(u.userId))!.deleted_at).toEqual(expect.any(String));
    expect(await consensusOf(req.id)).toBe(req.result);
  });
});

describe("what others were told about the deleted account", () => {
  it("their notifications name it by its generated name, not the old username", async () => {
    const [other, u] = await Promise.all([bearerUser(), identifier()]);
    // other's topic (its author is subscribed), u's replies (one mentions other), and u's proposal on other's request.
    const topic = await json<{ id: string }>(
      await call("/api/v1/forum/categories/houseplants/topics/", { bearer: other.access, json: { title: "Yellow leaves", body: "Help?" } }),
      201,
    );
    await json(
      await call(`/api/v1/forum/topics/${topic.id}/posts/`, {
        bearer: u.access,
        json: { body: `@${other.username} overwatering, I think.` },
      }),
      201,
    );
    // That reply told other once, by the mention; this one, mentioning nobody, is a reply notice.
    await json(await call(`/api/v1/forum/topics/${topic.id}/posts/`, { bearer: u.access, json: { body: "Or too little light." } }), 201);
    const req = await sharedRequest(other);
    const species = crypto.randomUUID();
    await env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, 'Araceae', 'Philodendron')")
      .bind(species, `Philodendron hederaceum${species.slice(0, 8)}`)
      .run();
    await json(
      await call(`/api/v1/plant-identification/requests/${req.id}/propose/`, { bearer: u.access, json: { species_id: species } }),
      201,
    );
    const titles = async () =>
      (
        await json<{ results: { type: string; title: string }[] }>(
          await call("/api/v1/notifications/?page_size=50", { bearer: other.access }),
          200,
        )
      ).results;
    const before = await titles();
    expect(before.map((n) => n.type).sort()).toEqual(["community_proposal", "forum_mention", "forum_reply"]);
    expect(before.every((n) => n.title.startsWith(`${u.username} `))).toBe(true);

    await json(await remove(u, { current_password: GOOD_PASSWORD }), 200);
    const renamed = (await row(u.userId))!.username as string;
    const after = await titles();
    expect(after).toHaveLength(3);
    expect(JSON.stringify(after)).not.toContain(u.username);
    expect(after.every((n) => n.title.startsWith(`${renamed} `))).toBe(true);
  });
});

describe("notifications for the deleted account", () => {
  it("none is written for it any more (an agreement with its proposal, a consensus it helped)", async () => {
    const [owner, u, a, b] = await Promise.all([bearerUser(), identifier(), identifier(), identifier()]);
    const req = await sharedRequest(owner);
    const species = crypto.randomUUID();
    await env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, 'Araceae', 'Philodendron')")
      .bind(species, `Philodendron scandens${species.slice(0, 8)}`)
      .run();
    const { result_id } = await json<{ result_id: string }>(
      await call(`/api/v1/plant-identification/requests/${req.id}/propose/`, { bearer: u.access, json: { species_id: species } }),
      201,
    );
    await json(await remove(u, { current_password: GOOD_PASSWORD }), 200);
    const held = await count("SELECT count(*) AS n FROM notifications WHERE user_id = ?", u.userId);
    expect(held).toBe(0);

    // Others agree with the proposal it left: the owner hears of the consensus, the deleted account nothing.
    await json(await vote(a, result_id), 200);
    await json(await vote(b, result_id), 200);
    expect(await consensusOf(req.id)).toBe(result_id);
    expect(await count("SELECT count(*) AS n FROM notifications WHERE user_id = ? AND type = 'community_consensus'", owner.userId)).toBe(1);
    expect(await count("SELECT count(*) AS n FROM notifications WHERE user_id = ?", u.userId)).toBe(0);
  });
});

describe("blog comments of the deleted account", () => {
  it("one still awaiting moderation goes (nobody saw it); a published one stays under the generated name", async () => {
    const post = await blogPost();
    const u = await identifier(); // basic: its comment is shown at once
    const comment = (body: string) => call(`/api/v1/blog/posts/${post.id}/comments/`, { bearer: u.access, json: { body } });
    const shown = await json<{ id: string; status: string }>(await comment("<p>Lovely post.</p>"), 201);
    await env.DB.prepare("UPDATE users SET trust_level = 'new' WHERE id = ?").bind(u.userId).run();
    const held = await json<{ id: string; status: string }>(await comment("<p>My address is 1 Fern Lane, call me.</p>"), 201);
    expect([shown.status, held.status]).toEqual(["approved", "pending"]);

    await json(await remove(u, { current_password: GOOD_PASSWORD }), 200);
    expect(await count("SELECT count(*) AS n FROM blog_comments WHERE id = ?", held.id)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM blog_comments WHERE id = ? AND status = 'approved'", shown.id)).toBe(1);
  });
});

describe("a write authenticated just before the deletion that lands just after it", () => {
  /**
   * The moment between a write's authentication and its SQL: the deletion has landed (deleted_at
   * set, the row anonymised) but this request's token was checked before, so it still gets through.
   */
  async function deletedMidRequest(u: User): Promise<void> {
    await env.DB.prepare(
      "UPDATE users SET deleted_at = ?, username = ?, email = ?, password_hash = NULL, first_name = '', last_name = '', bio = '', location = '', website = '', profile_visibility = 'private', avatar_key = NULL WHERE id = ?",
    )
      .bind(new Date().toISOString(), `deleted-${u.userId.slice(-12)}`, `deleted-${u.userId.slice(-12)}@deleted.invalid`, u.userId)
      .run();
  }

  it("a profile edit or a sign-in landing on the deleted row gives it back nothing", async () => {
    const u = await bearerUser();
    await json(await remove(u, { current_password: GOOD_PASSWORD }), 200);
    const deleted = (await row(u.userId))!;
    // The profile edit and the sign-in's stamp, as their services write them after their checks
    // passed: the profile edit holds the account being active in its update (401, as the token
    // is now), and the row's own guard (migration 0042/0045) refuses the same fields written directly.
    await expect(updateProfile(env, u.userId, { gardening_experience: "expert" })).rejects.toMatchObject({
      status: 401,
      code: "TOKEN_INVALID",
    });
    await expect(updateProfile(env, u.userId, { bio: "Back again", location: "Leeds" })).rejects.toMatchObject({
      status: 401,
      code: "TOKEN_INVALID",
    });
    await expect(env.DB.prepare("UPDATE users SET gardening_experience = 'expert' WHERE id = ?").bind(u.userId).run()).rejects.toThrow(
      /ACCOUNT_DELETED/,
    );
    await expect(
      env.DB.prepare("UPDATE users SET bio = 'Back again', location = 'Leeds' WHERE id = ?").bind(u.userId).run(),
    ).rejects.toThrow(/ACCOUNT_DELETED/);
    await expect(
      env.DB.prepare("UPDATE users SET last_login = ? WHERE id = ?").bind(new Date().toISOString(), u.userId).run(),
    ).rejects.toThrow(/ACCOUNT_DELETED/);
    expect(await row(u.userId)).toEqual(deleted);
  });

  it("leaves no private row, profile or photo behind, and answers 401 (not 500)", async () => {
    const u = await bearerUser();
    const tables = [
      ["user_plants", "user_id"],
      ["collections", "user_id"],
      ["identification_requests", "user_id"],
      ["forum_topics", "author_id"],
    ] as const;
    const held = async () =>
      Promise.all(tables.map(([table, column]) => count(`SELECT count(*) AS n FROM ${table} WHERE ${column} = ?`, u.userId)));
    const before = await held();
    await deletedMidRequest(u);

    await expectError(
      await call("/api/v1/plant-identification/plants/", { bearer: u.access, json: { nickname: "Late fern" } }),
      401,
      "TOKEN_INVALID",
    );
    await expectError(
      await call("/api/v1/plant-identification/collections/", { bearer: u.access, json: { name: "Late" } }),
      401,
      "TOKEN_INVALID",
    );
    const form = new FormData();
    const png = await makePng(320, 240, { seed: `late-${u.userId}` });
    form.append("image_1", new File([png], "p.png", { type: "image/png" }));
    await expectError(
      await call("/api/v1/plant-identification/requests/", { method: "POST", body: form, bearer: u.access }),
      401,
      "TOKEN_INVALID",
    );
    await expectError(
      await call("/api/v1/forum/categories/houseplants/topics/", { bearer: u.access, json: { title: "Posted too late", body: "Hello?" } }),
      401,
      "TOKEN_INVALID",
    );
    await expectError(
      await call("/api/v1/auth/user/", {
        method: "PATCH",
        bearer: u.access,
        json: { bio: "Back again", first_name: "Ann", profile_visibility: "public" },
      }),
      401,
      "TOKEN_INVALID",
    );

    expect(await held()).toEqual(before);
    expect(await row(u.userId)).toMatchObject({ bio: "", first_name: "", profile_visibility: "private" });
    // The request's photo, stored before its row was refused, went again.
    const sha = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", png)), (b) => b.toString(16).padStart(2, "0")).join("");
    expect(await env.IMAGES.head(`images/${sha}.png`)).toBeNull();
  });
});

describe("every column that names an account", () => {
  /**
   * What account deletion does with each (services/account-deletion.ts; docs/api.md "Deleting your
   * account"). A new table that refers to users must be placed here, and handled there: deleted
   * with the account (and guarded by migrations/0042 against a write landing after it), kept under
   * the generated name, or written by staff only (who cannot delete themselves).
   */
  const DELETED = [
    "identification_requests.user_id",
    "disease_requests.user_id",
    "collections.user_id",
    "user_plants.user_id",
    "saved_care_instructions.user_id",
    "care_reminders.user_id",
    "notifications.user_id",
    "notification_deliveries.user_id",
    "notification_preferences.user_id",
    "calendar_events.organizer_id",
    "calendar_rsvps.user_id",
    "calendar_feeds.user_id",
    "forum_reactions.user_id",
    "forum_subscriptions.user_id",
    "idempotency_keys.user_id",
    "oauth_accounts.user_id",
    "refresh_tokens.user_id",
    "password_reset_tokens.user_id",
    "email_change_tokens.user_id",
    "ws_tickets.user_id",
    "push_subscriptions.user_id",
    "two_factor.user_id",
    "two_factor_resets.user_id",
    "user_photo_bytes.user_id",
  ];
  const KEPT = [
    "forum_topics.author_id",
    "forum_posts.author_id",
    "blog_comments.user_id", // published ones; pending ones are deleted
    "identification_results.proposed_by",
    "votes.user_id", // no longer counted
    "forum_reports.reporter_id",
    "blog_comment_reports.reporter_id",
    "proposal_reports.user_id",
  ];
  const STAFF = [
    "forum_reports.resolved_by",
    "blog_comments.moderated_by",
    "blog_images.uploaded_by",
    "blog_posts.author_id",
    "blog_revisions.author_id",
  ];

  it("is either deleted with the account, kept under its generated name, or staff's", async () => {
    const columns = (await userForeignKeys()).map((k) => `${k.table}.${k.column}`);
    expect(columns.sort()).toEqual([...DELETED, ...KEPT, ...STAFF].sort());
    // What the account writes itself is refused once it is deleted (a write racing the deletion).
    const guarded = new Set(
      (
        await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_account_deleted'").all<{
          name: string;
        }>()
      ).results.map((t) => t.name),
    );
    const writtenByOthers = new Set(["notifications", "notification_deliveries"]);
    for (const column of [...DELETED, ...KEPT]) {
      const table = column.split(".")[0]!;
      if (!writtenByOthers.has(table)) expect(guarded.has(`${table}_account_deleted`), table).toBe(true);
    }
  });
});

describe("an administrator deleting an account on its owner's behalf", () => {
  it("erases it as the owner's own deletion does, tells the old address who did it, and only for admins, not staff accounts, once", async () => {
    const [u, admin, mod] = await Promise.all([bearerUser(), bearerUser(), bearerUser()]);
    await env.DB.prepare("UPDATE users SET role = 'admin' WHERE id = ?").bind(admin.userId).run();
    await env.DB.prepare("UPDATE users SET role = 'moderator' WHERE id = ?").bind(mod.userId).run();
    await json(await call("/api/v1/plant-identification/plants/", { bearer: u.access, json: { nickname: "Fern" } }), 201);
    const del = (who: { access: string }, id: string) => call(`/api/v1/admin/users/${id}/`, { method: "DELETE", bearer: who.access });

    await expectError(await del(mod, u.userId), 403, "FORBIDDEN");
    await expectError(await del(u, u.userId), 403, "FORBIDDEN");
    await expectError(await del(admin, admin.userId), 400, "VALIDATION_ERROR");
    await expectError(await del(admin, mod.userId), 409, "INVALID_STATE");
    await expectError(await del(admin, crypto.randomUUID()), 404, "NOT_FOUND");
    expect((await row(u.userId))!.deleted_at).toBeNull();

    expect((await del(admin, u.userId)).status).toBe(204);
    expect((await row(u.userId))!.deleted_at).toEqual(expect.any(String));
    expect(await count("SELECT count(*) AS n FROM user_plants WHERE user_id = ?", u.userId)).toBe(0);
    await expectError(await call("/api/v1/auth/user/", { bearer: u.access }), 401, "TOKEN_INVALID");
    const mail = await mailTo(emulators.email, u.email, /account was deleted/);
    expect(mail.text).toContain("An administrator");
    await expectError(await del(admin, u.userId), 409, "INVALID_STATE");
    expect((await row(mod.userId))!.deleted_at).toBeNull();
  });
  it("that the owner deleted between the administrator's check and the erasure answers 409 and erases nothing again", async () => {
    const u = await bearerUser();
    let ownersName: unknown;
    const racing = envRacingFirstBatch(async () => {
      expect((await remove(u, { current_password: GOOD_PASSWORD })).status).toBe(200);
      ownersName = (await row(u.userId))!.username;
    });
    const outcome = await deleteAccountAsAdmin(racing.env, u.userId).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(outcome).toMatchObject({ status: 409, code: "INVALID_STATE" });
    // The name the owner's deletion gave stays; the old address heard of one deletion, the owner's.
    expect((await row(u.userId))!.username).toBe(ownersName);
    const told = emulators.email.outbox.filter((m) => m.to.includes(u.email) && /account was deleted/.test(m.subject));
    expect(told).toHaveLength(1);
    expect(told[0]!.text).toContain("as you asked");
  });
});
