/**
 * Concurrent toggles answer the truth (security item 12). Many identical requests at once must
 * behave like the same requests one after the other: no duplicate rows, and every answer is a
 * state of that serial history — the state its own request left. A read-then-write toggle let
 * two concurrent likes both answer "added" for one row, with counts read after later toggles.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, jsonWithStatus as json } from "../helpers/http";
import { bearerUser } from "../helpers/users";

const PARALLEL = 20;
type User = Awaited<ReturnType<typeof bearerUser>>;

/** Sends `n` requests at once and returns their JSON answers in request order (all must be 200). */
async function inParallel<T>(n: number, request: (i: number) => Promise<Response>): Promise<T[]> {
  const responses = await Promise.all(Array.from({ length: n }, (_, i) => request(i)));
  return Promise.all(responses.map((res) => json<T>(res, 200)));
}

const count = async (sql: string, ...binds: unknown[]) =>
  (await env.DB.prepare(sql)
    .bind(...binds)
    .first<{ n: number }>())!.n;

describe("forum reactions", () => {
  interface ReactionAnswer {
    reacted: boolean;
    reactions: Record<"like" | "love" | "helpful" | "thanks", number>;
    my_reactions: string[];
  }

  async function postWithOneOtherLike() {
    const author = await bearerUser();
    const topic = await json<{ id: string; first_post: { id: string } }>(
      await call("/api/v1/forum/categories/houseplants/topics/", {
        bearer: author.access,
        json: { title: "Toggle me", body: "Like this post, many times at once." },
      }),
      201,
    );
    const postId = topic.first_post.id;
    // Someone else's like: every answer's count must include it, read in the same transaction.
    await json(await call(`/api/v1/forum/posts/${postId}/reactions/`, { bearer: author.access, json: { type: "like" } }), 200);
    return postId;
  }

  it.each([PARALLEL, PARALLEL + 1])(
    "%i parallel likes by one user: at most one row, answers alternate like a serial history",
    async (n) => {
      const postId = await postWithOneOtherLike();
      const reactor = await bearerUser();
      const answers = await inParallel<ReactionAnswer>(n, () =>
        call(`/api/v1/forum/posts/${postId}/reactions/`, { bearer: reactor.access, json: { type: "like" } }),
      );

      const rows = await count(
        "SELECT count(*) AS n FROM forum_reactions WHERE post_id = ? AND user_id = ? AND type = 'like'",
        postId,
        reactor.userId,
      );
      expect(rows).toBeLessThanOrEqual(1);
      const added = answers.filter((a) => a.reacted).length;
      const removed = answers.length - added;
      // A serial history of n toggles from "not reacted" alternates add, remove, add, …
      expect(added - removed).toBe(rows);
      expect(rows).toBe(n % 2);
      expect(added).toBe(Math.ceil(n / 2));
      // Each answer is the state right after its own toggle: its flag, its count and my_reactions agree.
      for (const a of answers) {
        expect(a).toMatchObject(
          a.reacted ? { reactions: { like: 2 }, my_reactions: ["like"] } : { reactions: { like: 1 }, my_reactions: [] },
        );
      }
      // The stored state, as the API shows it, is the last applied toggle's.
      const post = await json<{ first_post: { reactions: { like: number }; my_reactions: string[] } }>(
        await call(
          `/api/v1/forum/topics/${(await env.DB.prepare("SELECT topic_id FROM forum_posts WHERE id = ?").bind(postId).first<{ topic_id: string }>())!.topic_id}/`,
          {
            bearer: reactor.access,
          },
        ),
        200,
      );
      expect(post.first_post.reactions.like).toBe(1 + rows);
      expect(post.first_post.my_reactions).toEqual(rows ? ["like"] : []);
    },
  );

  it("parallel toggles of different types by one user each keep their own truth", async () => {
    const postId = await postWithOneOtherLike();
    const reactor = await bearerUser();
    const types = ["like", "love", "helpful", "thanks"] as const;
    const answers = await inParallel<ReactionAnswer & { type: string }>(types.length * 3, (i) =>
      call(`/api/v1/forum/posts/${postId}/reactions/`, { bearer: reactor.access, json: { type: types[i % types.length] } }),
    );
    for (const type of types) {
      const mine = answers.filter((a) => a.type === type);
      const rows = await count(
        "SELECT count(*) AS n FROM forum_reactions WHERE post_id = ? AND user_id = ? AND type = ?",
        postId,
        reactor.userId,
        type,
      );
      expect(rows).toBe(1); // three toggles: add, remove, add
      expect(mine.filter((a) => a.reacted).length - mine.filter((a) => !a.reacted).length).toBe(rows);
      for (const a of mine) expect(a.my_reactions.includes(type)).toBe(a.reacted);
    }
  });
});

describe("identification result votes", () => {
  interface VoteAnswer {
    vote: "upvote" | "downvote" | null;
    upvotes: number;
    downvotes: number;
  }

  /** A shared result with one upvote by someone else already counted. */
  async function sharedResult(owner: User) {
    const requestId = crypto.randomUUID();
    const resultId = crypto.randomUUID();
    await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO identification_requests (id, user_id, status, image_hashes, organs, is_shared_with_community) VALUES (?, ?, 'identified', '[]', '[\"auto\"]', 1)",
      ).bind(requestId, owner.userId),
      env.DB.prepare(
        "INSERT INTO identification_results (id, request_id, scientific_name, confidence_score, identification_source, rank) VALUES (?, ?, 'Monstera deliciosa', 0.9, 'plant_id', 1)",
      ).bind(resultId, requestId),
    ]);
    const other = await bearerUser();
    await json(
      await call(`/api/v1/plant-identification/results/${resultId}/vote/`, { bearer: other.access, json: { vote_type: "upvote" } }),
      200,
    );
    return resultId;
  }

  const vote = (user: User, resultId: string, vote_type: string) =>
    call(`/api/v1/plant-identification/results/${resultId}/vote/`, { bearer: user.access, json: { vote_type } });

  it.each([PARALLEL, PARALLEL + 1])(
    "%i parallel upvotes by one user: at most one row, answers alternate like a serial history",
    async (n) => {
      const owner = await bearerUser();
      const resultId = await sharedResult(owner);
      const answers = await inParallel<VoteAnswer>(n, () => vote(owner, resultId, "upvote"));

      const rows = await count("SELECT count(*) AS n FROM votes WHERE result_id = ? AND user_id = ?", resultId, owner.userId);
      expect(rows).toBeLessThanOrEqual(1);
      const added = answers.filter((a) => a.vote === "upvote").length;
      const removed = answers.filter((a) => a.vote === null).length;
      expect(added + removed).toBe(n);
      expect(added - removed).toBe(rows);
      expect(rows).toBe(n % 2);
      for (const a of answers)
        expect(a).toEqual({
          result_id: resultId,
          vote: a.vote,
          upvotes: a.vote === "upvote" ? 2 : 1,
          downvotes: 0,
          community_result_id: null,
        });
      const stored = await env.DB.prepare("SELECT upvotes, downvotes FROM identification_results WHERE id = ?").bind(resultId).first();
      expect(stored).toEqual({ upvotes: 1 + rows, downvotes: 0 });
    },
  );

  it("parallel up- and downvotes: every answer's vote and tallies agree, and the stored tallies match the rows", async () => {
    const owner = await bearerUser();
    const resultId = await sharedResult(owner);
    const answers = await inParallel<VoteAnswer>(PARALLEL, (i) => vote(owner, resultId, i % 2 ? "downvote" : "upvote"));
    for (const a of answers) {
      expect({ upvotes: a.upvotes, downvotes: a.downvotes }).toEqual({
        upvotes: 1 + Number(a.vote === "upvote"),
        downvotes: Number(a.vote === "downvote"),
      });
    }
    const rows = await env.DB.prepare("SELECT vote_type FROM votes WHERE result_id = ? AND user_id = ?")
      .bind(resultId, owner.userId)
      .all<{ vote_type: string }>();
    expect(rows.results.length).toBeLessThanOrEqual(1);
    const stored = await env.DB.prepare("SELECT upvotes, downvotes FROM identification_results WHERE id = ?").bind(resultId).first();
    const mine = rows.results[0]?.vote_type;
    expect(stored).toEqual({ upvotes: 1 + Number(mine === "upvote"), downvotes: Number(mine === "downvote") });
  });
});

describe("answers of concurrent upserts are their own state", () => {
  it("calendar: parallel RSVPs by one user leave one row, and each answer shows the status it set", async () => {
    const organiser = await bearerUser();
    const guest = await bearerUser();
    const start = Date.now() + 10 * 86_400_000;
    const event = await json<{ id: string }>(
      await call("/api/v1/calendar/events/", {
        bearer: organiser.access,
        json: {
          title: "Seed swap",
          description: "",
          start: new Date(start).toISOString(),
          end: new Date(start + 3_600_000).toISOString(),
          location: "Shed",
          privacy: "public",
          capacity: 5,
        },
      }),
      201,
    );
    const statuses = ["going", "maybe", "not_going"] as const;
    const answers = await inParallel<{ my_rsvp: string; rsvp_counts: Record<string, number> }>(PARALLEL, (i) =>
      call(`/api/v1/calendar/events/${event.id}/rsvp/`, { bearer: guest.access, json: { status: statuses[i % 3] } }),
    );
    answers.forEach((a, i) => {
      const status = statuses[i % 3]!;
      expect(a.my_rsvp).toBe(status);
      expect(a.rsvp_counts).toEqual({ going: 0, maybe: 0, not_going: 0, [status]: 1 });
    });
    expect(await count("SELECT count(*) AS n FROM calendar_rsvps WHERE event_id = ? AND user_id = ?", event.id, guest.userId)).toBe(1);
  });

  it("saved care: parallel favourite/unfavourite updates each answer the card as they left it", async () => {
    const u = await bearerUser();
    const card = await json<{ id: string }>(
      await call("/api/v1/plant-identification/saved-care-instructions/", {
        bearer: u.access,
        json: { scientific_name: "Pilea peperomioides" },
      }),
      201,
    );
    const answers = await inParallel<{ is_favorite: boolean; personal_notes: string }>(PARALLEL, (i) =>
      call(`/api/v1/plant-identification/saved-care-instructions/${card.id}/`, {
        method: "PATCH",
        bearer: u.access,
        json: { is_favorite: i % 2 === 0, personal_notes: `update ${i}` },
      }),
    );
    answers.forEach((a, i) => expect(a).toMatchObject({ is_favorite: i % 2 === 0, personal_notes: `update ${i}` }));
    const stored = (await env.DB.prepare("SELECT is_favorite, personal_notes FROM saved_care_instructions WHERE id = ?")
      .bind(card.id)
      .first<{ is_favorite: number; personal_notes: string }>())!;
    const last = Number(stored.personal_notes.replace("update ", ""));
    expect(stored.is_favorite).toBe(last % 2 === 0 ? 1 : 0);
  });
});
