// GET /api/v1/auth/user/export/: everything the account holds, as a download; no secrets, nothing
// of anyone else's that is private, signed-in only, and a budget of 5 an hour.
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { notificationDeliveries, notifications, users } from "../../src/db/schema";
import { createNotification, type NotificationType } from "../../src/services/notifications";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { makePng } from "../helpers/images";
import { identifiedResult } from "../helpers/requests";
import { blogPost } from "../helpers/blog";
import { mailTo } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, registerWeb } from "../helpers/users";
import { eventually } from "../helpers/wait";
import { createPost, uploaded, withRole } from "./blog-editorial-setup";

const EXPORT = "/api/v1/auth/user/export/";
/** The export's top-level keys, in order (docs/api.md "Exporting your data"). */
const KEYS = [
  "format",
  "version",
  "exported_at",
  "account",
  "sign_in_methods",
  "two_factor",
  "notification_preferences",
  "email_suppressions",
  "collections",
  "identification_requests",
  "disease_requests",
  "saved_care_instructions",
  "reminders",
  "calendar",
  "forum",
  "blog",
  "blog_comments",
  "reports",
  "community",
  "push_devices",
  "sessions",
  "notifications",
];

type Row = Record<string, unknown>;
interface Export {
  format: string;
  version: number;
  exported_at: string;
  account: Row;
  sign_in_methods: Row[];
  notification_preferences: Row;
  email_suppressions: Row[];
  collections: (Row & { plants: Row[] })[];
  identification_requests: (Row & { results: Row[]; my_votes: Row[] })[];
  disease_requests: Row[];
  saved_care_instructions: Row[];
  reminders: Row[];
  calendar: { events: Row[]; rsvps: Row[]; feed: Row | null };
  forum: { topics: Row[]; posts: Row[]; reactions: Row[] };
  blog: { posts: Row[]; revisions: Row[]; images: Row[] };
  blog_comments: Row[];
  reports: { forum_posts: Row[]; blog_comments: Row[]; proposals: Row[] };
  community: { proposals: Row[]; votes: Row[] };
  push_devices: Row[];
  sessions: Row[];
  notifications: Row[];
}

/** A private collection holding one plant with a private note, made through the API. */
async function privatePlant(bearer: string, note: string, idempotencyKey?: string) {
  const collection = await json<{ id: string }>(
    await call("/api/v1/plant-identification/collections/", { bearer, json: { name: `Shelf ${note.slice(0, 20)}`, is_public: false } }),
    201,
  );
  const plant = await json<{ id: string }>(
    await call("/api/v1/plant-identification/plants/", {
      bearer,
      json: { collection: collection.id, nickname: "Fiddle leaf", notes: note },
      headers: idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {},
    }),
    201,
  );
  return { collectionId: collection.id, plantId: plant.id };
}

const column = async (sql: string, ...binds: string[]) =>
  (
    await env.DB.prepare(sql)
      .bind(...binds)
      .all<{ v: string | null }>()
  ).results.map((r) => r.v);

describe("GET auth/user/export/", () => {
  it("holds the user's own data, as the API shows it, and none of the account's secrets nor another user's private data", async () => {
    const owner = await bearerUser();
    const other = await bearerUser();

    const idempotencyKey = `export-key-${crypto.randomUUID()}`;
    const mine = await privatePlant(owner.access, "Behind the sofa, my secret spot", idempotencyKey);
    const reminder = await json<{ id: string }>(
      await call("/api/v1/reminders/", {
        bearer: owner.access,
        json: { plant_id: mine.plantId, reminder_type: "water", frequency: "weekly" },
      }),
      201,
    );
    const topic = await json<{ id: string; first_post: { id: string } }>(
      await call("/api/v1/forum/categories/houseplants/topics/", {
        bearer: owner.access,
        json: { title: "Drooping fiddle leaf fig", body: "It droops every evening, any idea?" },
      }),
      201,
    );
    const form = new FormData();
    form.append("nickname", "Snapshot");
    form.append("image", new File([await makePng(240, 200)], "plant.png", { type: "image/png" }));
    const photographed = await json<{ id: string; image_url: string }>(
      await call("/api/v1/plant-identification/plants/", { method: "POST", bearer: owner.access, body: form }),
      201,
    );
    expect(photographed.image_url).toMatch(/^\/api\/v1\/media\//);
    const request = await identifiedResult(owner.userId);
    // Someone else voted on the owner's result (the request was shared): the owner sees a count, not the vote.
    const otherVoteId = crypto.randomUUID();
    await env.DB.prepare("INSERT INTO votes (id, result_id, user_id, vote_type) VALUES (?, ?, ?, 'upvote')")
      .bind(otherVoteId, request.resultId, other.userId)
      .run();
    await env.DB.prepare("UPDATE identification_results SET upvotes = 1 WHERE id = ?").bind(request.resultId).run();

    // Secrets the account holds: a second session, a WebSocket ticket, a calendar feed URL, a push device, a linked provider.
    const ticket = await json<{ ticket: string }>(await call("/api/v1/auth/ws-ticket/", { bearer: owner.access, json: {} }), 200);
    const feed = await json<{ url: string }>(await call("/api/v1/reminders/calendar-feed/", { bearer: owner.access, json: {} }), 201);
    const push = {
      endpoint: `https://fcm.googleapis.com/fcm/send/${crypto.randomUUID()}`,
      p256dh: `p256-${crypto.randomUUID()}`,
      auth: `auth-${crypto.randomUUID()}`,
    };
    await env.DB.prepare(
      "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, user_agent, session_id) VALUES (?, ?, ?, ?, ?, 'Firefox on the greenhouse tablet', ?)",
    )
      .bind(crypto.randomUUID(), owner.userId, push.endpoint, push.p256dh, push.auth, crypto.randomUUID())
      .run();
    const providerUserId = `google-sub-${crypto.randomUUID()}`;
    await env.DB.prepare("INSERT INTO oauth_accounts (id, user_id, provider, provider_user_id, email) VALUES (?, ?, 'google', ?, ?)")
      .bind(crypto.randomUUID(), owner.userId, providerUserId, `${owner.username}@gmail.example`)
      .run();

    // Another user's private plant and note, and their own unshared request.
    const theirs = await privatePlant(other.access, "Their diary: repotted at midnight");
    const theirRequest = await identifiedResult(other.userId);

    // The day before and after the call: a run crossing midnight UTC exports on either.
    const dayBefore = new Date().toISOString().slice(0, 10);
    const res = await call(EXPORT, { bearer: owner.access });
    expect(res.status, await res.clone().text()).toBe(200);
    const dayAfter = new Date().toISOString().slice(0, 10);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    const day = /-(\d{4}-\d{2}-\d{2})\.json"$/.exec(res.headers.get("Content-Disposition") ?? "")?.[1];
    expect([dayBefore, dayAfter]).toContain(day);
    expect(res.headers.get("Content-Disposition")).toBe(`attachment; filename="plant-community-${owner.username}-${day}.json"`);
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    const text = await res.text();
    const body = JSON.parse(text) as Export;

    expect(Object.keys(body)).toEqual(KEYS);
    expect(body).toMatchObject({ format: "plant-community-export", version: 1 });
    expect(body.exported_at.slice(0, 10)).toBe(day);
    // The profile as GET auth/user/ shows it.
    const profile = await json<Row>(await call("/api/v1/auth/user/", { bearer: owner.access }), 200);
    expect(body.account).toEqual(profile);
    expect(body.account.email).toBe(owner.email);
    // Where the account is signed in (registration's web session and the token sign-in), as
    // auth/sessions/ lists it but without ids (the secrets check below looks for every session id).
    const listed = await json<Row[]>(await call("/api/v1/auth/sessions/", { bearer: owner.access }), 200);
    expect(body.sessions).toEqual(listed.map(({ id: _id, current: _current, ...s }) => s));
    expect(body.sessions).toHaveLength(2);

    const shelf = body.collections.find((c) => c.id === mine.collectionId);
    expect(shelf).toMatchObject({ is_public: false, plant_count: 1 });
    expect(shelf!.plants).toEqual([
      expect.objectContaining({ id: mine.plantId, notes: "Behind the sofa, my secret spot", nickname: "Fiddle leaf" }),
    ]);
    // A photo is the URL the API gives for it, which its owner may fetch.
    const defaultShelf = body.collections.find((c) => c.is_default);
    expect(defaultShelf!.plants).toEqual([expect.objectContaining({ id: photographed.id, image_url: photographed.image_url })]);
    expect((await call(photographed.image_url, { bearer: owner.access })).status).toBe(200);

    const req = body.identification_requests.find((r) => r.request_id === request.requestId);
    expect(req).toMatchObject({ status: "identified", my_votes: [] });
    expect(req!.results).toEqual([expect.objectContaining({ id: request.resultId, scientific_name: "Monstera deliciosa", upvotes: 1 })]);

    expect(body.reminders).toEqual([expect.objectContaining({ id: reminder.id, plant_id: mine.plantId, title: "Water Fiddle leaf" })]);
    expect(body.forum.topics).toEqual([expect.objectContaining({ id: topic.id, title: "Drooping fiddle leaf fig" })]);
    expect(body.forum.posts).toEqual([
      expect.objectContaining({
        id: topic.first_post.id,
        topic_id: topic.id,
        is_first_post: true,
        body: expect.stringContaining("droops every evening"),
      }),
    ]);
    expect(body.sign_in_methods).toEqual([
      expect.objectContaining({ provider: "google", email: `${owner.username}@gmail.example`, linked_at: expect.any(String) }),
    ]);
    expect(body.push_devices).toEqual([expect.objectContaining({ user_agent: "Firefox on the greenhouse tablet" })]);
    expect(body.notification_preferences).toHaveProperty("digest");

    // No secret of the account, anywhere in the file.
    const [passwordHash] = await column("SELECT password_hash AS v FROM users WHERE id = ?", owner.userId);
    expect(passwordHash).toBeTruthy();
    const secrets: [string, string][] = [
      ["password hash", passwordHash!],
      ["refresh token", owner.refresh],
      ["access token", owner.access],
      ["web session's refresh token", owner.cookies.refresh_token!],
      ["web session's access token", owner.cookies.access_token!],
      ["CSRF token", owner.csrf],
      ["ws ticket", ticket.ticket],
      ["calendar feed URL token", new URL(feed.url, "https://x.test").pathname.split("/").filter(Boolean).at(-2)!],
      ["push endpoint", push.endpoint],
      ["push p256dh", push.p256dh],
      ["push auth", push.auth],
      ["Idempotency-Key", idempotencyKey],
      ["provider account id", providerUserId],
    ];
    for (const jti of await column("SELECT jti AS v FROM refresh_tokens WHERE user_id = ?", owner.userId))
      secrets.push(["refresh jti", jti!]);
    for (const family of await column("SELECT DISTINCT family_id AS v FROM refresh_tokens WHERE user_id = ?", owner.userId))
      secrets.push(["session id", family!]);
    for (const hash of await column("SELECT token_hash AS v FROM email_change_tokens WHERE user_id = ?", owner.userId))
      secrets.push(["email link hash", hash!]);
    for (const hash of await column("SELECT ticket_hash AS v FROM ws_tickets WHERE user_id = ?", owner.userId))
      secrets.push(["ticket hash", hash!]);
    for (const id of await column("SELECT id AS v FROM calendar_feeds WHERE user_id = ?", owner.userId))
      secrets.push(["calendar feed id", id!]);
    expect(secrets.length).toBeGreaterThan(15);
    for (const [what, secret] of secrets) expect(text.includes(secret), `${what} is in the export`).toBe(false);
    expect(text).not.toMatch(/password_hash|passwordHash|p256dh|"endpoint"|"jti"|refresh_token|token_hash|idempotency/i);

    // Nothing of the other user's: their plant, its note, their unshared request, their vote.
    for (const [what, value] of [
      ["their plant", theirs.plantId],
      ["their collection", theirs.collectionId],
      ["their note", "Their diary"],
      ["their request", theirRequest.requestId],
      ["their result", theirRequest.resultId],
      ["their vote", otherVoteId],
      ["their user id", other.userId],
    ]) {
      expect(text.includes(value!), `${what} is in the export`).toBe(false);
    }
  });

  it("fills every part with the body its own route answers, and the user's own votes and reactions only", async () => {
    const owner = await bearerUser();
    const other = await bearerUser();
    const get = async <T = Row>(path: string) => json<T>(await call(path, { bearer: owner.access }), 200);

    const shelf = await privatePlant(owner.access, "Repotted in March");
    const card = await json<Row>(
      await call("/api/v1/plant-identification/saved-care-instructions/", {
        bearer: owner.access,
        json: { scientific_name: "Ficus lyrata", personal_notes: "Keep away from the radiator" },
      }),
      201,
    );
    const inTwoDays = Date.now() + 2 * 86_400_000;
    const event = (bearer: string, title: string) =>
      call("/api/v1/calendar/events/", {
        bearer,
        json: { title, start: new Date(inTwoDays).toISOString(), end: new Date(inTwoDays + 7_200_000).toISOString(), privacy: "public" },
      });
    const ownEvent = await json<Row>(await event(owner.access, "Seed swap on the allotment"), 201);
    const theirEvent = await json<Row>(await event(other.access, "Pruning workshop"), 201);
    await json(await call(`/api/v1/calendar/events/${theirEvent.id}/rsvp/`, { bearer: owner.access, json: { status: "going" } }), 200);

    // Forum: the owner's topic gets a reply from the other (a notification); the owner replies on
    // the other's topic and likes its opening post; the other loves the owner's reply.
    const topic = (bearer: string, title: string) =>
      call("/api/v1/forum/categories/houseplants/topics/", { bearer, json: { title, body: `${title}: any advice?` } });
    const ownTopic = await json<{ id: string }>(await topic(owner.access, "Brown tips on a calathea"), 201);
    const theirTopic = await json<{ id: string; first_post: { id: string } }>(await topic(other.access, "Best soil for cacti"), 201);
    await json(await call(`/api/v1/forum/topics/${ownTopic.id}/posts/`, { bearer: other.access, json: { body: "Try rain water." } }), 201);
    const reply = await json<{ id: string }>(
      await call(`/api/v1/forum/topics/${theirTopic.id}/posts/`, { bearer: owner.access, json: { body: "Half grit, half compost." } }),
      201,
    );
    await json(
      await call(`/api/v1/forum/posts/${theirTopic.first_post.id}/reactions/`, { bearer: owner.access, json: { type: "like" } }),
      200,
    );
    await json(await call(`/api/v1/forum/posts/${reply.id}/reactions/`, { bearer: other.access, json: { type: "love" } }), 200);

    const post = await blogPost();
    const comment = await json<Row>(
      await call(`/api/v1/blog/posts/${post.id}/comments/`, { bearer: owner.access, json: { body: "<p>Lovely read</p>" } }),
      201,
    );

    // Requests: the owner's own (the owner voted on its result), a diagnosis, and the other's shared
    // request, on which the owner proposed a species and voted on the engine's result.
    const own = await identifiedResult(owner.userId);
    const theirs = await identifiedResult(other.userId);
    const [diseaseId, diseaseResultId, proposalId] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    await env.DB.batch([
      env.DB.prepare("INSERT INTO votes (id, result_id, user_id, vote_type) VALUES (?, ?, ?, 'downvote')").bind(
        crypto.randomUUID(),
        own.resultId,
        owner.userId,
      ),
      env.DB.prepare(
        "UPDATE identification_requests SET is_shared_with_community = 1, description = 'Behind the shed at 12 Elm Road' WHERE id = ?",
      ).bind(theirs.requestId),
      env.DB.prepare(
        "INSERT INTO identification_results (id, request_id, scientific_name, confidence_score, identification_source, rank, proposed_by, comment) VALUES (?, ?, 'Ficus elastica', 0, 'community', 2, ?, 'Looks like a rubber plant')",
      ).bind(proposalId, theirs.requestId, owner.userId),
      env.DB.prepare("INSERT INTO votes (id, result_id, user_id, vote_type) VALUES (?, ?, ?, 'upvote')").bind(
        crypto.randomUUID(),
        theirs.resultId,
        owner.userId,
      ),
      env.DB.prepare(
        "INSERT INTO disease_requests (id, user_id, image_hashes, symptoms_description, status) VALUES (?, ?, '[]', 'Yellow spots on the lower leaves', 'identified')",
      ).bind(diseaseId, owner.userId),
      env.DB.prepare("INSERT INTO disease_results (id, request_id, name, probability, rank) VALUES (?, ?, 'Leaf spot', 0.8, 1)").bind(
        diseaseResultId,
        diseaseId,
      ),
      // A withdrawn notification is blank and out of the in-app list: out of the export too.
      env.DB.prepare(
        "INSERT INTO notifications (id, user_id, type, title, in_app, is_read, withdrawn_at) VALUES (?, ?, 'forum_mention', 'withdrawn mention', 0, 1, '2026-01-01T00:00:00.000Z')",
      ).bind(crypto.randomUUID(), owner.userId),
    ]);

    const body = await json<Export & { forum: { subscriptions: Row[] } }>(await call(EXPORT, { bearer: owner.access }), 200);

    const { plants, ...collection } = body.collections.find((c) => c.id === shelf.collectionId)!;
    expect(collection).toEqual(await get(`/api/v1/plant-identification/collections/${shelf.collectionId}/`));
    expect(plants).toEqual([await get(`/api/v1/plant-identification/plants/${shelf.plantId}/`)]);
    expect(body.saved_care_instructions).toEqual([await get(`/api/v1/plant-identification/saved-care-instructions/${card.id}/`)]);

    const { results, my_votes, ...request } = body.identification_requests.find((r) => r.request_id === own.requestId)!;
    expect(request).toEqual(await get(`/api/v1/plant-identification/requests/${own.requestId}/`));
    expect(results).toEqual((await get<{ results: Row[] }>(`/api/v1/plant-identification/requests/${own.requestId}/results/`)).results);
    expect(my_votes).toEqual([expect.objectContaining({ result_id: own.resultId, request_id: own.requestId, vote_type: "downvote" })]);
    expect(body.identification_requests.map((r) => r.request_id)).toEqual([own.requestId]);
    expect(body.disease_requests).toEqual([
      expect.objectContaining({
        request_id: diseaseId,
        symptoms_description: "Yellow spots on the lower leaves",
        results: [expect.objectContaining({ id: diseaseResultId, name: "Leaf spot" })],
      }),
    ]);
    expect(body.community.proposals).toEqual([
      expect.objectContaining({
        id: proposalId,
        request_id: theirs.requestId,
        scientific_name: "Ficus elastica",
        comment: "Looks like a rubber plant",
      }),
    ]);
    expect(body.community.votes).toEqual([expect.objectContaining({ result_id: theirs.resultId, vote_type: "upvote" })]);

    expect(body.calendar.events).toEqual([await get(`/api/v1/calendar/events/${ownEvent.id}/`)]);
    expect(body.calendar.rsvps).toEqual([expect.objectContaining({ event_id: theirEvent.id, status: "going" })]);

    expect(body.forum.topics.map((t) => t.id)).toEqual([ownTopic.id]);
    const theirThread = await get<{ results: Row[] }>(`/api/v1/forum/topics/${theirTopic.id}/posts/`);
    const exportedReply = body.forum.posts.find((p) => p.id === reply.id);
    expect(exportedReply).toEqual(theirThread.results.find((p) => p.id === reply.id));
    expect(exportedReply).toMatchObject({ reactions: { love: 1, like: 0 }, my_reactions: [] });
    expect(body.forum.posts).toHaveLength(2); // the opening post of the owner's topic and the reply
    expect(body.forum.reactions).toEqual([expect.objectContaining({ post_id: theirTopic.first_post.id, type: "like" })]);
    expect(body.forum.subscriptions).toEqual([expect.objectContaining({ topic_id: ownTopic.id })]); // a new topic is followed
    expect(body.blog_comments).toEqual([expect.objectContaining({ id: comment.id, post_id: post.id, body: "<p>Lovely read</p>" })]);
    expect(body.notifications).toEqual([expect.objectContaining({ type: "forum_reply" })]);

    // The other user's request is there by its id only: nothing they wrote about it.
    const text = JSON.stringify(body);
    expect(text).not.toContain("12 Elm Road");
    expect(text).not.toContain(other.userId);
  });

  it("holds the reports the user filed (forum posts, blog comments, proposals) with reason and status, not who handled them nor anyone else's", async () => {
    const [owner, other, third] = await Promise.all([bearerUser(), bearerUser(), bearerUser()]);
    const mod = await withRole("moderator");

    // A forum post of the other's, reported by the owner and by a third user; a moderator resolves the owner's report.
    const topic = await json<{ first_post: { id: string } }>(
      await call("/api/v1/forum/categories/houseplants/topics/", {
        bearer: other.access,
        json: { title: "Cheap pots here", body: "Buy my pots at a dodgy site" },
      }),
      201,
    );
    const reportForum = (who: { access: string }, reason: string) =>
      call(`/api/v1/forum/posts/${topic.first_post.id}/report/`, { bearer: who.access, json: { reason } });
    const receipt = await json<Row>(await reportForum(owner, "Advertising a shop"), 201);
    const theirForumReport = await json<Row>(await reportForum(third, "Third person's forum reason"), 201);
    const resolved = await json<Row>(
      await call(`/api/v1/forum/reports/${receipt.id}/`, { method: "PATCH", bearer: mod.access, json: { status: "resolved" } }),
      200,
    );
    expect(resolved.resolved_by).toBe(mod.userId);

    // An approved blog comment of the other's, reported by the owner and the third user.
    const post = await blogPost();
    const comment = await json<{ id: string }>(
      await call(`/api/v1/blog/posts/${post.id}/comments/`, { bearer: other.access, json: { body: "<p>Visit my shop</p>" } }),
      201,
    );
    await json(await call(`/api/v1/blog/comments/${comment.id}/approve/`, { method: "POST", bearer: mod.access }), 200);
    const reportComment = (who: { access: string }, reason: string) =>
      call(`/api/v1/blog/comments/${comment.id}/report/`, { bearer: who.access, json: { reason } });
    await json(await reportComment(owner, "Spam in the comments"), 201);
    await json(await reportComment(third, "Third person's comment reason"), 201);
    const [commentReport] = await env.DB.prepare("SELECT id, created_at FROM blog_comment_reports WHERE reporter_id = ?")
      .bind(owner.userId)
      .all<{ id: string; created_at: string }>()
      .then((r) => r.results);

    // The other's proposal on the third user's shared request, reported by the owner and the third user.
    const shared = await identifiedResult(third.userId);
    const proposalId = crypto.randomUUID();
    await env.DB.batch([
      env.DB.prepare("UPDATE identification_requests SET is_shared_with_community = 1 WHERE id = ?").bind(shared.requestId),
      env.DB.prepare(
        "INSERT INTO identification_results (id, request_id, scientific_name, confidence_score, identification_source, rank, proposed_by, comment) VALUES (?, ?, 'Ficus elastica', 0, 'community', 2, ?, 'Rubber plant')",
      ).bind(proposalId, shared.requestId, other.userId),
    ]);
    const reportProposal = (who: { access: string }, reason: string) =>
      call(`/api/v1/plant-identification/results/${proposalId}/report/`, { bearer: who.access, json: { reason } });
    expect(await json<Row>(await reportProposal(owner, "Not even close"), 201)).toEqual({ result_id: proposalId, reported: true });
    await json(await reportProposal(third, "Third person's proposal reason"), 201);

    const res = await call(EXPORT, { bearer: owner.access });
    const text = await res.text();
    const body = JSON.parse(text) as Export;
    expect(body.reports).toEqual({
      // The answer the reporter got, with its reason and where it stands now.
      forum_posts: [{ ...receipt, status: "resolved", reason: "Advertising a shop", resolved_at: resolved.resolved_at }],
      blog_comments: [
        {
          id: commentReport!.id,
          comment_id: comment.id,
          reason: "Spam in the comments",
          status: "open",
          created_at: commentReport!.created_at,
        },
      ],
      proposals: [{ result_id: proposalId, reason: "Not even close", status: "open", created_at: expect.any(String), resolved_at: null }],
    });

    // Neither the moderator who handled a report nor anyone else's reports.
    expect(text).not.toMatch(/resolved_by|reporter/);
    for (const [what, value] of [
      ["the moderator's id", mod.userId],
      ["the moderator's username", mod.username],
      ["the third user's id", third.userId],
      ["the third user's forum report", theirForumReport.id as string],
      ["the third user's reasons", "Third person's"],
    ]) {
      expect(text.includes(value!), `${what} is in the export`).toBe(false);
    }

    // A moderator hiding the proposal resolves its reports: the owner's shows it, dated.
    await json(await call(`/api/v1/plant-identification/results/${proposalId}/hide/`, { method: "POST", bearer: mod.access }), 200);
    const after = await json<Export>(await call(EXPORT, { bearer: owner.access }), 200);
    expect(after.reports.proposals).toEqual([expect.objectContaining({ status: "resolved", resolved_at: expect.any(String) })]);
    // The reported user's own export holds no reports about them.
    const reported = await json<Export>(await call(EXPORT, { bearer: other.access }), 200);
    expect(reported.reports).toEqual({ forum_posts: [], blog_comments: [], proposals: [] });
  });

  it("holds the blog posts an author wrote, drafts included, as the editor shows them, their revisions and uploaded images; nobody else's", async () => {
    const [author, otherAuthor, editor] = await Promise.all([withRole("author"), withRole("author"), withRole("editor")]);
    const get = async <T = Row>(path: string) => json<T>(await call(path, { bearer: author.access }), 200);

    const image = await uploaded(author.access);
    const draft = await createPost(author.access, {
      title: "Ferns in the shade",
      tags: ["ferns"],
      featured_image: image,
      featured_image_alt: "A fern",
    });
    expect(
      (await call(`/api/v1/blog/posts/${draft.id}/`, { method: "PATCH", bearer: author.access, json: { introduction: "<p>Mine.</p>" } }))
        .status,
    ).toBe(200);
    // An editor's save of the author's draft is the editor's revision, not the author's.
    expect(
      (await call(`/api/v1/blog/posts/${draft.id}/`, { method: "PATCH", bearer: editor.access, json: { title: "Ferns in deep shade" } }))
        .status,
    ).toBe(200);
    const live = await createPost(author.access, { title: "Repotting a monstera" });
    await json(await call(`/api/v1/blog/posts/${live.id}/submit/`, { method: "POST", bearer: author.access }), 200);
    await json(await call(`/api/v1/blog/posts/${live.id}/publish/`, { method: "POST", bearer: editor.access }), 200);

    const theirImage = await uploaded(otherAuthor.access);
    const theirs = await createPost(otherAuthor.access, {
      title: "Their secret draft",
      featured_image: theirImage,
      featured_image_alt: "x",
    });

    const body = await json<Export>(await call(EXPORT, { bearer: author.access }), 200);
    const byId = (rows: Row[]) => [...rows].sort((a, b) => String(a.id).localeCompare(String(b.id)));
    expect(byId(body.blog.posts)).toEqual(
      byId([await get(`/api/v1/blog/posts/${draft.id}/`), await get(`/api/v1/blog/posts/${live.id}/`)]),
    );
    expect(body.blog.posts.find((p) => p.id === draft.id)).toMatchObject({
      status: "draft",
      tags: ["ferns"],
      title: "Ferns in deep shade",
    });

    // The revisions the author saved, each as the post's revisions route lists it.
    const revisionsOf = async (id: string) =>
      (await get<{ results: (Row & { author: Row | null })[] }>(`/api/v1/blog/posts/${id}/revisions/`)).results
        .filter((r) => r.author?.id === author.userId)
        .map((r) => ({ post_id: id, ...r }));
    const key = (r: Row) => `${r.post_id}:${r.number}`;
    const expected = [...(await revisionsOf(draft.id)), ...(await revisionsOf(live.id))];
    expect(expected.map(key).sort()).toEqual([`${draft.id}:1`, `${draft.id}:2`, `${live.id}:1`].sort());
    expect([...body.blog.revisions].sort((a, b) => key(a).localeCompare(key(b)))).toEqual(
      expected.sort((a, b) => key(a).localeCompare(key(b))),
    );

    expect(body.blog.images).toEqual([{ id: image, url: `/media/images/${image}`, created_at: expect.any(String) }]);
    expect((await call(body.blog.images[0]!.url as string, { bearer: author.access })).status).toBe(200);

    const text = JSON.stringify(body);
    for (const [what, value] of [
      ["the other author's draft", theirs.id],
      ["its title", "Their secret draft"],
      ["the other author's image", theirImage],
      ["the other author's id", otherAuthor.userId],
      ["the editor's id", editor.userId],
    ]) {
      expect(text.includes(value!), `${what} is in the export`).toBe(false);
    }
    // The other author's export holds their own post only.
    expect((await json<Export>(await call(EXPORT, { bearer: otherAuthor.access }), 200)).blog.posts.map((p) => p.id)).toEqual([theirs.id]);
  });

  it("says whether the user has a calendar feed URL and when it was issued and last fetched, never the URL", async () => {
    const [owner, other] = await Promise.all([bearerUser(), bearerUser()]);
    expect((await json<Export>(await call(EXPORT, { bearer: owner.access }), 200)).calendar.feed).toBeNull();

    const issue = async (bearer: string) =>
      json<{ url: string; created_at: string }>(await call("/api/v1/reminders/calendar-feed/", { bearer, json: {} }), 201);
    const feed = await issue(owner.access);
    const theirs = await issue(other.access);
    const fresh = await json<Export>(await call(EXPORT, { bearer: owner.access }), 200);
    expect(fresh.calendar.feed).toEqual({ created_at: feed.created_at, last_fetched_at: null });

    // A calendar app fetches it.
    const path = new URL(feed.url).pathname;
    expect((await call(path)).status).toBe(200);
    const res = await call(EXPORT, { bearer: owner.access });
    const text = await res.text();
    const fetched = (JSON.parse(text) as Export).calendar.feed;
    expect(fetched).toEqual({ created_at: feed.created_at, last_fetched_at: expect.any(String) });
    expect(Date.parse(fetched!.last_fetched_at as string)).toBeGreaterThanOrEqual(Date.parse(feed.created_at));

    const token = (url: string) => new URL(url).pathname.split("/").filter(Boolean).at(-2)!;
    for (const [what, value] of [
      ["the feed's token", token(feed.url)],
      ["the feed's id", token(feed.url).split(".")[0]!],
      ["the other user's feed", token(theirs.url).split(".")[0]!],
    ]) {
      expect(text.includes(value!), `${what} is in the export`).toBe(false);
    }
    expect(text).not.toContain("calendar-feed/");

    // Revoked: no feed any more.
    expect((await call("/api/v1/reminders/calendar-feed/", { method: "DELETE", bearer: owner.access })).status).toBe(204);
    expect((await json<Export>(await call(EXPORT, { bearer: owner.access }), 200)).calendar.feed).toBeNull();
  });

  it("names each push device's push service by its endpoint's host, never the endpoint", async () => {
    const [owner, other] = await Promise.all([bearerUser(), bearerUser()]);
    const subscribe = (userId: string, endpoint: string, userAgent: string) =>
      env.DB.prepare("INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, user_agent) VALUES (?, ?, ?, 'p', 'a', ?)")
        .bind(crypto.randomUUID(), userId, endpoint, userAgent)
        .run();
    const phone = `https://fcm.googleapis.com/fcm/send/${crypto.randomUUID()}`;
    const laptop = `https://updates.push.services.mozilla.com/wpush/v2/${crypto.randomUUID()}`;
    await subscribe(owner.userId, phone, "Chrome on the phone");
    await subscribe(owner.userId, laptop, "Firefox on the laptop");
    await subscribe(other.userId, `https://web.push.apple.com/${crypto.randomUUID()}`, "Safari");
    await env.DB.prepare("UPDATE push_subscriptions SET failing_since = '2026-12-01T00:00:00.000Z' WHERE endpoint = ?").bind(laptop).run();

    const res = await call(EXPORT, { bearer: owner.access });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const devices = (JSON.parse(text) as Export).push_devices;
    expect(devices.map((d) => [d.push_service, d.user_agent, d.failing_since]).sort()).toEqual([
      ["fcm.googleapis.com", "Chrome on the phone", null],
      ["updates.push.services.mozilla.com", "Firefox on the laptop", "2026-12-01T00:00:00.000Z"],
    ]);
    for (const endpoint of [phone, laptop]) expect(text.includes(new URL(endpoint).pathname), endpoint).toBe(false);
    expect(text).not.toContain("web.push.apple.com");
  });

  it("lists the account's addresses that no email goes to (its email, and one it is changing to), and nobody else's", async () => {
    const [owner, other] = await Promise.all([bearerUser(), bearerUser()]);
    expect((await json<Export>(await call(EXPORT, { bearer: owner.access }), 200)).email_suppressions).toEqual([]);

    const pending = `new-${owner.username}@example.com`;
    await env.DB.prepare("UPDATE users SET pending_email = ? WHERE id = ?").bind(pending, owner.userId).run();
    const eventId = `msg_${crypto.randomUUID()}`;
    const suppress = (address: string, reason: string) =>
      env.DB.prepare("INSERT INTO email_suppressions (address, reason, event_id) VALUES (?, ?, ?)").bind(address, reason, eventId).run();
    // As the webhook stores them: bare and lower-cased.
    await suppress(owner.email.toLowerCase(), "bounce");
    await suppress(pending.toLowerCase(), "complaint");
    await suppress(other.email.toLowerCase(), "bounce");

    const text = await (await call(EXPORT, { bearer: owner.access })).text();
    const body = JSON.parse(text) as Export;
    expect(body.email_suppressions.map((s) => [s.address, s.reason]).sort()).toEqual(
      [
        [owner.email.toLowerCase(), "bounce"],
        [pending.toLowerCase(), "complaint"],
      ].sort(),
    );
    expect(body.email_suppressions.every((s) => typeof s.created_at === "string")).toBe(true);
    expect(text).not.toContain(other.email.toLowerCase());
    expect(text).not.toContain(eventId);
  });

  it("is in the OpenAPI document with every top-level key", async () => {
    const doc = await json<{ components: { schemas: Record<string, { properties: Row }> } }>(await call("/api/openapi.json"), 200);
    expect(Object.keys(doc.components.schemas.AccountExport!.properties)).toEqual(KEYS);
  });

  it("answers 401 to an anonymous caller", async () => {
    await expectError(await call(EXPORT), 401, "AUTHENTICATION_REQUIRED");
  });

  it("serves a cookie session (a GET needs no CSRF header)", async () => {
    const web = await registerWeb();
    const res = await call(EXPORT, { cookies: web.cookies });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as Export;
    expect(body.account).toMatchObject({ id: web.userId, username: web.username, email: web.email });
  });

  it("allows 5 exports an hour per user: the 6th is 429 with Retry-After", async () => {
    const u = await bearerUser();
    for (let i = 0; i < 5; i++) expect((await call(EXPORT, { bearer: u.access })).status).toBe(200);
    const refused = await call(EXPORT, { bearer: u.access });
    const retryAfter = Number(refused.headers.get("Retry-After"));
    await expectError(refused, 429, "RATE_LIMITED");
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    // Another user's budget is their own.
    const someoneElse = await bearerUser();
    expect((await call(EXPORT, { bearer: someoneElse.access })).status).toBe(200);
  });
});

describe("GET auth/user/export/ notifications", () => {
  const emulators = useEmulators();
  const db = database(env);

  async function verifiedUser(prefs: Record<string, unknown>) {
    const u = await bearerUser();
    await db.update(users).set({ emailVerified: true }).where(eq(users.id, u.userId));
    await json(await call("/api/v1/notifications/preferences/", { method: "PUT", bearer: u.access, json: prefs }), 200);
    return u;
  }
  const notify = (userId: string, type: NotificationType, title: string, data: Record<string, unknown>) =>
    createNotification(env, { userId, type, title, body: `${title}: the details.`, data, dedupeKey: `export-test:${crypto.randomUUID()}` });
  const deliveriesTo = (userId: string) => db.select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, userId)).all();

  it("holds every notification the user got, by whichever channels it went (one of a type off in-app went by email only), and nobody else's", async () => {
    // The owner turned identification failures off in-app; email comes at once, not in a digest.
    const owner = await verifiedUser({ digest: "immediate", types: { identification_failed: { in_app: false } } });
    const other = await verifiedUser({ digest: "immediate" });
    await notify(owner.userId, "identification_failed", "Your identification failed", { request_id: "req-export-1" });
    // A mention the other user caused: in-app and by email, its data naming them (for the per-sender cap).
    await notify(owner.userId, "forum_mention", "You were mentioned", {
      topic_id: "t-export",
      post_id: "p-export",
      author_id: other.userId,
    });
    await notify(other.userId, "identification_failed", "Their identification failed", { request_id: "req-export-2" });
    await mailTo(emulators.email, owner.email, /identification failed/);
    await mailTo(emulators.email, other.email, /identification failed/);
    const sent = await eventually(async () => {
      const rows = await deliveriesTo(owner.userId);
      return rows.length === 2 && rows.every((r) => r.status === "sent") ? rows : undefined;
    });
    // The in-app list holds only the mention.
    const list = await json<{ results: Row[] }>(await call("/api/v1/notifications/", { bearer: owner.access }), 200);
    expect(list.results.map((n) => n.title)).toEqual(["You were mentioned"]);

    const res = await call(EXPORT, { bearer: owner.access });
    const text = await res.text();
    const body = JSON.parse(text) as Export;
    const stored = await db.select().from(notifications).where(eq(notifications.userId, owner.userId)).all();
    const byTitle = (title: string) => stored.find((n) => n.title === title)!;
    const sentAt = (title: string) => sent.find((d) => d.notificationId === byTitle(title).id)!.sentAt;
    expect(body.notifications).toHaveLength(2);
    expect(body.notifications).toContainEqual({
      id: byTitle("Your identification failed").id,
      type: "identification_failed",
      title: "Your identification failed",
      body: "Your identification failed: the details.",
      data: { request_id: "req-export-1" },
      is_read: true,
      read_at: byTitle("Your identification failed").createdAt,
      created_at: byTitle("Your identification failed").createdAt,
      channels: [{ channel: "email", status: "sent", sent_at: sentAt("Your identification failed") }],
    });
    expect(body.notifications).toContainEqual({
      id: byTitle("You were mentioned").id,
      type: "forum_mention",
      title: "You were mentioned",
      body: "You were mentioned: the details.",
      data: { topic_id: "t-export", post_id: "p-export" },
      is_read: false,
      read_at: null,
      created_at: byTitle("You were mentioned").createdAt,
      channels: [
        { channel: "in_app", status: "sent", sent_at: byTitle("You were mentioned").createdAt },
        { channel: "email", status: "sent", sent_at: sentAt("You were mentioned") },
      ],
    });
    expect(sent.every((d) => d.sentAt !== null)).toBe(true);

    // Never the provider's message ids, the dedupe keys, nor anything of the other user's.
    const providerIds = sent.map((d) => d.providerId);
    expect(providerIds.every((id) => typeof id === "string" && id.length > 0)).toBe(true);
    const secrets = [
      ...providerIds.map((id) => ["provider message id", id!]),
      ...sent.map((d) => ["delivery dedupe key", d.dedupeKey]),
      ...sent.map((d) => ["delivery id", d.id]),
      ...stored.map((n) => ["notification dedupe key", n.dedupeKey!]),
      ["the other user's id", other.userId],
      ["the other user's notification", "Their identification failed"],
      ["the other user's request", "req-export-2"],
    ];
    for (const [what, value] of secrets) expect(text.includes(value!), `${what} is in the export`).toBe(false);
    expect(text).not.toMatch(/provider_id|dedupe/);
  });

  it("an email gathered into a digest shows the digest's sent time", async () => {
    const owner = await bearerUser();
    const notificationId = crypto.randomUUID();
    const digestId = crypto.randomUUID();
    const createdAt = "2026-11-30T06:00:00.000Z";
    const digestSentAt = "2026-12-01T08:00:05.000Z";
    await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO notifications (id, user_id, type, title, body, data, dedupe_key, created_at) VALUES (?, ?, 'forum_reply', 'New reply', 'Try rain water.', '{}', ?, ?)",
      ).bind(notificationId, owner.userId, `export-test:${notificationId}`, createdAt),
      env.DB.prepare(
        "INSERT INTO notification_deliveries (id, user_id, channel, type, dedupe_key, status, period, sent_at, provider_id) VALUES (?, ?, 'email', 'digest', ?, 'sent', 'daily:2026-12-01', ?, 'digest-provider-msg-1')",
      ).bind(digestId, owner.userId, `digest:${owner.userId}:daily:2026-12-01`, digestSentAt),
      env.DB.prepare(
        "INSERT INTO notification_deliveries (id, user_id, notification_id, channel, type, dedupe_key, status, digest_id) VALUES (?, ?, ?, 'email', 'forum_reply', ?, 'digested', ?)",
      ).bind(crypto.randomUUID(), owner.userId, notificationId, `email:${notificationId}`, digestId),
    ]);
    const text = await (await call(EXPORT, { bearer: owner.access })).text();
    expect((JSON.parse(text) as Export).notifications).toEqual([
      expect.objectContaining({
        id: notificationId,
        channels: [
          { channel: "in_app", status: "sent", sent_at: createdAt },
          { channel: "email", status: "digested", sent_at: digestSentAt },
        ],
      }),
    ]);
    expect(text).not.toContain("digest-provider-msg-1");
  });
});
