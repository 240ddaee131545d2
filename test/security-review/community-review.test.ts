/**
 * Community features attacked (security review of 2026-12-06, helper-59): blog comments,
 * community identification, collections, the calendar and notifications. Each test is an attack
 * that must be refused or contained, and each failed on the code as reviewed.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { MAX_UPCOMING_EVENTS } from "../../src/services/calendar";
import { completeIdentificationRequest, deleteIdentificationRequest } from "../../src/services/identification-requests";
import { blogPost } from "../helpers/blog";
import { call, expectError, freshIp, jsonWithStatus as json, type Page } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

useEmulators();

type User = Awaited<ReturnType<typeof bearerUser>>;

async function withRole(role: string, trust = "basic"): Promise<User> {
  const u = await bearerUser();
  await env.DB.prepare("UPDATE users SET trust_level = ?, role = ? WHERE id = ?").bind(trust, role, u.userId).run();
  return u;
}

const comment = async (postId: string, bearer: string, body: unknown) =>
  json<{ id: string }>(await call(`/api/v1/blog/posts/${postId}/comments/`, { bearer, json: body }), 201);
/** The stored reply notifications of a user, with the deliveries queued for each (what an email, push or digest reads). */
const stored = (userId: string) =>
  env.DB.prepare(
    `SELECT n.title, n.body, (SELECT count(*) FROM notification_deliveries d WHERE d.notification_id = n.id) AS deliveries
       FROM notifications n WHERE n.user_id = ? AND n.type = 'blog_comment_reply'`,
  )
    .bind(userId)
    .all<{ title: string; body: string; deliveries: number }>();

describe("a removed blog comment leaves nothing readable in notifications", () => {
  const inbox = async (bearer: string) =>
    (
      await json<Page<{ type: string; body: string; data: { comment_id: string } }>>(
        await call("/api/v1/notifications/?page_size=100", { bearer }),
        200,
      )
    ).results.filter((n) => n.type === "blog_comment_reply");

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

describe("a deleted blog post takes its replies' notifications with it", () => {
  it("an editor deleting a post (its comments go with it) leaves no reply quoted in the comment authors' notifications", async () => {
    const post = await blogPost();
    const [victim, pest, editor] = [await withRole("user"), await withRole("user"), await withRole("editor")];
    const parent = await comment(post.id, victim.access, { body: "Which soil for a jade?" });
    const secret = `ABUSE-${crypto.randomUUID().slice(0, 8)} you live at 12 Elm Street`;
    await comment(post.id, pest.access, { body: secret, parent_id: parent.id });
    expect((await call(`/api/v1/blog/posts/${post.id}/`, { method: "DELETE", bearer: editor.access })).status).toBe(204);
    const rows = await stored(victim.userId);
    expect(rows.results).toEqual([{ title: "", body: "", deliveries: 0 }]);
  });
});

describe("replies to a blog comment cannot flood its author", () => {
  it("one replier notifies a comment's author at most 5 times an hour, deleted replies included; other repliers still do", async () => {
    const post = await blogPost();
    const [victim, pest, friend] = [await withRole("user"), await withRole("user"), await withRole("user")];
    const write = (bearer: string, body: unknown) => comment(post.id, bearer, body);
    const parent = await write(victim.access, { body: "Which soil for a jade?" });
    const told = async () =>
      (
        await env.DB.prepare(
          "SELECT json_extract(data, '$.comment_id') AS id FROM notifications WHERE user_id = ? AND type = 'blog_comment_reply'",
        )
          .bind(victim.userId)
          .all<{ id: string }>()
      ).results.length;
    // Replying and deleting the reply does not start the count again.
    const first = await write(pest.access, { body: "Reply 1", parent_id: parent.id });
    expect((await call(`/api/v1/blog/comments/${first.id}/`, { method: "DELETE", bearer: pest.access })).status).toBe(204);
    for (let i = 2; i <= 7; i++) await write(pest.access, { body: `Reply ${i}`, parent_id: parent.id });
    // The replies are all shown; only the notifications stop.
    expect(await told()).toBe(5);
    await write(friend.access, { body: "Bark mix works for me.", parent_id: parent.id });
    expect(await told()).toBe(6);
  });
});

describe("one account cannot bury the community calendar", () => {
  const HOUR = 3_600_000;
  const event = (title: string, startsInHours = 48) => {
    const start = Date.now() + startsInHours * HOUR;
    return { title, start: new Date(start).toISOString(), end: new Date(start + HOUR).toISOString() };
  };

  it("events created and changed are rate limited per user (429 with Retry-After); others go on", async () => {
    const [spammer, other] = [await bearerUser(), await bearerUser()];
    const limited = { ...env, CALENDAR_EVENT_RATE_LIMIT: "3/3600" };
    const send = async (method: string, path: string, bearer: string, body: unknown) => {
      const ctx = createExecutionContext();
      const headers = { Authorization: `Bearer ${bearer}`, "CF-Connecting-IP": freshIp(), "Content-Type": "application/json" };
      const res = await createApp().request(path, { method, body: JSON.stringify(body), headers }, limited, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    };
    const first = await json<{ id: string }>(await send("POST", "/api/v1/calendar/events/", spammer.access, event("Seed swap 1")), 201);
    expect((await send("POST", "/api/v1/calendar/events/", spammer.access, event("Seed swap 2"))).status).toBe(201);
    // A change of time notifies every attendee: it spends the same budget.
    expect((await send("PATCH", `/api/v1/calendar/events/${first.id}/`, spammer.access, { location: "Town hall" })).status).toBe(200);
    const refused = await send("POST", "/api/v1/calendar/events/", spammer.access, event("Seed swap 3"));
    await expectError(refused.clone(), 429, "RATE_LIMITED");
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await send("POST", "/api/v1/calendar/events/", other.access, event("Pruning class"))).status).toBe(201);
  });

  it("a moderator's changes are not limited: cleaning up someone's events does not run out half way", async () => {
    const [organiser, mod] = [await withRole("user"), await withRole("moderator")];
    const limited = { ...env, CALENDAR_EVENT_RATE_LIMIT: "2/3600" };
    const patch = async (id: string) => {
      const ctx = createExecutionContext();
      const headers = { Authorization: `Bearer ${mod.access}`, "CF-Connecting-IP": freshIp(), "Content-Type": "application/json" };
      const body = JSON.stringify({ title: "Removed by a moderator", description: "" });
      const res = await createApp().request(`/api/v1/calendar/events/${id}/`, { method: "PATCH", body, headers }, limited, ctx);
      await waitOnExecutionContext(ctx);
      return res.status;
    };
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(
        (await json<{ id: string }>(await call("/api/v1/calendar/events/", { bearer: organiser.access, json: event(`Spam ${i}`) }), 201))
          .id,
      );
    }
    expect(await Promise.all(ids.map(patch))).toEqual([200, 200, 200, 200]);
  });

  it(`an organiser holds at most ${MAX_UPCOMING_EVENTS} events not yet ended (409 EVENT_LIMIT); ended ones do not count`, async () => {
    const spammer = await bearerUser();
    const insert = env.DB.prepare("INSERT INTO calendar_events (id, organizer_id, title, starts_at, ends_at) VALUES (?, ?, 'Spam', ?, ?)");
    const past = [new Date(Date.now() - 3 * HOUR).toISOString(), new Date(Date.now() - 2 * HOUR).toISOString()];
    const soon = [new Date(Date.now() + HOUR).toISOString(), new Date(Date.now() + 2 * HOUR).toISOString()];
    await env.DB.batch([
      insert.bind(crypto.randomUUID(), spammer.userId, ...past),
      ...Array.from({ length: MAX_UPCOMING_EVENTS - 1 }, () => insert.bind(crypto.randomUUID(), spammer.userId, ...soon)),
    ]);
    const post = (title: string) => call("/api/v1/calendar/events/", { bearer: spammer.access, json: event(title) });
    await json(await post("The last one allowed"), 201);
    await expectError(await post("One too many"), 409, "EVENT_LIMIT");
    const held = await env.DB.prepare("SELECT count(*) AS n FROM calendar_events WHERE organizer_id = ?")
      .bind(spammer.userId)
      .first<{ n: number }>();
    expect(held!.n).toBe(MAX_UPCOMING_EVENTS + 1);
  });

  it("moving an ended event back into the future counts against the cap too (409 EVENT_LIMIT): no way around it by PATCH", async () => {
    const spammer = await bearerUser();
    const insert = env.DB.prepare("INSERT INTO calendar_events (id, organizer_id, title, starts_at, ends_at) VALUES (?, ?, 'Spam', ?, ?)");
    const past = [new Date(Date.now() - 3 * HOUR).toISOString(), new Date(Date.now() - 2 * HOUR).toISOString()];
    const soon = [new Date(Date.now() + HOUR).toISOString(), new Date(Date.now() + 2 * HOUR).toISOString()];
    const ended = crypto.randomUUID();
    await env.DB.batch([
      insert.bind(ended, spammer.userId, ...past),
      ...Array.from({ length: MAX_UPCOMING_EVENTS }, () => insert.bind(crypto.randomUUID(), spammer.userId, ...soon)),
    ]);
    const { start, end } = event("Revived");
    const res = await call(`/api/v1/calendar/events/${ended}/`, { method: "PATCH", bearer: spammer.access, json: { start, end } });
    await expectError(res, 409, "EVENT_LIMIT");
    const upcoming = await env.DB.prepare("SELECT count(*) AS n FROM calendar_events WHERE organizer_id = ? AND ends_at > ?")
      .bind(spammer.userId, new Date().toISOString())
      .first<{ n: number }>();
    expect(upcoming!.n).toBe(MAX_UPCOMING_EVENTS);
    // An event not yet ended is already counted: moving it is no new one.
    const first = await env.DB.prepare("SELECT id FROM calendar_events WHERE organizer_id = ? AND id <> ? LIMIT 1")
      .bind(spammer.userId, ended)
      .first<{ id: string }>();
    const moved = await call(`/api/v1/calendar/events/${first!.id}/`, { method: "PATCH", bearer: spammer.access, json: { start, end } });
    expect(moved.status).toBe(200);
  });
});

/** A shared `needs_help` request of a new owner whose one engine result two basic identifiers confirmed. */
async function confirmedSharedRequest() {
  const owner = await bearerUser();
  const [a, b] = [await withRole("user"), await withRole("user")];
  const speciesId = crypto.randomUUID();
  const [requestId, resultId] = [crypto.randomUUID(), crypto.randomUUID()];
  const name = `Monstera deliciosa ${speciesId.slice(0, 8)}`;
  await env.DB.batch([
    env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, 'Araceae', 'Monstera')").bind(speciesId, name),
    env.DB.prepare("INSERT INTO identification_requests (id, user_id, status, image_hashes) VALUES (?, ?, 'needs_help', '[]')").bind(
      requestId,
      owner.userId,
    ),
    env.DB.prepare(
      `INSERT INTO identification_results (id, request_id, species_id, scientific_name, confidence_score, identification_source, rank)
       VALUES (?, ?, ?, ?, 0.4, 'ai_combined', 1)`,
    ).bind(resultId, requestId, speciesId, name),
  ]);
  expect((await call(`${PLANTS}/requests/${requestId}/share/`, { method: "POST", bearer: owner.access })).status).toBe(200);
  for (const voter of [a, b])
    await json(await call(`${PLANTS}/results/${resultId}/vote/`, { bearer: voter.access, json: { vote_type: "upvote" } }), 200);
  const counters = async () => ({
    confirmed: (await env.DB.prepare("SELECT confirmed_count AS n FROM species WHERE id = ?").bind(speciesId).first<{ n: number }>())!.n,
    helped: (await env.DB.prepare("SELECT identifications_helped AS n FROM users WHERE id = ?").bind(a.userId).first<{ n: number }>())!.n,
    consensus: (
      await env.DB.prepare("SELECT community_result_id AS id FROM identification_requests WHERE id = ?")
        .bind(requestId)
        .first<{ id: string | null }>()
    )?.id,
  });
  expect(await counters()).toEqual({ confirmed: 1, helped: 1, consensus: resultId });
  return { owner, requestId, resultId, counters };
}
const PLANTS = "/api/v1/plant-identification";

describe("the community's consensus and counters follow the request", () => {
  it("an upvote by a new account on a result already confirmed earns it no identifications_helped: only votes the consensus counts do (helper-61)", async () => {
    const { resultId, counters } = await confirmedSharedRequest();
    const fresh = await withRole("user", "new");
    const upvote = () => call(`${PLANTS}/results/${resultId}/vote/`, { bearer: fresh.access, json: { vote_type: "upvote" } });
    const helped = async () =>
      (await env.DB.prepare("SELECT identifications_helped AS n FROM users WHERE id = ?").bind(fresh.userId).first<{ n: number }>())!.n;
    await json(await upvote(), 200);
    expect(await helped()).toBe(0);
    expect(await counters()).toEqual({ confirmed: 1, helped: 1, consensus: resultId });
    // Once the account has earned a level (5 posts, a week old), its vote counts, and so does its help.
    await env.DB.prepare("UPDATE users SET post_count = 5, date_joined = '2026-01-01T00:00:00.000Z' WHERE id = ?").bind(fresh.userId).run();
    await json(await upvote(), 200); // removes …
    await json(await upvote(), 200); // … and votes again
    expect(await helped()).toBe(1);
  });

  it("deleting a request the community confirmed takes it off the species' confirmed_count and its supporters' identifications_helped", async () => {
    const { owner, requestId, counters } = await confirmedSharedRequest();
    // The owner deletes it (and could share, gather and delete again): the counts must follow.
    expect((await call(`${PLANTS}/requests/${requestId}/`, { method: "DELETE", bearer: owner.access })).status).toBe(204);
    expect(await counters()).toEqual({ confirmed: 0, helped: 0, consensus: undefined });
  });

  it("deleting a request the community never confirmed (never shared, or shared with no agreement) recounts no counter", async () => {
    /** `env.DB`, recording the counter rows each batch statement wrote (`UPDATE species|users … n`). */
    const recording = (written: string[]): D1Database => {
      const queries = new WeakMap<object, string>();
      return new Proxy(env.DB, {
        get(target, key) {
          if (key === "prepare")
            return (query: string) => {
              const statement = target.prepare(query);
              const bind = statement.bind.bind(statement);
              statement.bind = (...params: unknown[]) => {
                const bound = bind(...params);
                queries.set(bound, query);
                return bound;
              };
              return statement;
            };
          if (key === "batch")
            return async (statements: D1PreparedStatement[]) => {
              const results = await target.batch(statements);
              statements.forEach((st, i) => {
                const counter = /^\s*UPDATE (species|users)\b/i.exec(queries.get(st) ?? "")?.[1];
                if (counter && results[i]!.meta.changes > 0) written.push(`${counter} ${results[i]!.meta.changes}`);
              });
              return results;
            };
          return Reflect.get(target, key, target);
        },
      });
    };
    const { owner, requestId, resultId, counters } = await confirmedSharedRequest();
    // The same owner's second photo of the plant: never shared.
    const privateId = crypto.randomUUID();
    const speciesId = (await env.DB.prepare("SELECT species_id AS id FROM identification_results WHERE request_id = ?")
      .bind(requestId)
      .first<{ id: string }>())!.id;
    await env.DB.batch([
      env.DB.prepare("INSERT INTO identification_requests (id, user_id, status, image_hashes) VALUES (?, ?, 'identified', '[]')").bind(
        privateId,
        owner.userId,
      ),
      env.DB.prepare(
        `INSERT INTO identification_results (id, request_id, species_id, scientific_name, confidence_score, identification_source, rank)
         VALUES (?, ?, ?, 'Monstera deliciosa', 0.9, 'ai_combined', 1)`,
      ).bind(crypto.randomUUID(), privateId, speciesId),
    ]);
    // A shared one with a single upvote: no consensus.
    const disputedId = crypto.randomUUID();
    const disputedResult = crypto.randomUUID();
    await env.DB.batch([
      env.DB.prepare("INSERT INTO identification_requests (id, user_id, status, image_hashes) VALUES (?, ?, 'needs_help', '[]')").bind(
        disputedId,
        owner.userId,
      ),
      env.DB.prepare(
        `INSERT INTO identification_results (id, request_id, species_id, scientific_name, confidence_score, identification_source, rank)
         VALUES (?, ?, ?, 'Monstera deliciosa', 0.3, 'ai_combined', 1)`,
      ).bind(disputedResult, disputedId, speciesId),
    ]);
    expect((await call(`${PLANTS}/requests/${disputedId}/share/`, { method: "POST", bearer: owner.access })).status).toBe(200);
    const voter = await withRole("user");
    await json(await call(`${PLANTS}/results/${disputedResult}/vote/`, { bearer: voter.access, json: { vote_type: "upvote" } }), 200);

    for (const id of [privateId, disputedId]) {
      const written: string[] = [];
      await deleteIdentificationRequest({ ...env, DB: recording(written) }, owner.userId, id, () => {});
      expect(await env.DB.prepare("SELECT id FROM identification_requests WHERE id = ?").bind(id).first()).toBeNull();
      expect(written, id).toEqual([]);
    }
    expect(await counters()).toEqual({ confirmed: 1, helped: 1, consensus: resultId });
    // The confirmed one still recounts: it leaves no count behind.
    const written: string[] = [];
    await deleteIdentificationRequest({ ...env, DB: recording(written) }, owner.userId, requestId, () => {});
    expect(written).toEqual(["species 1", "users 2"]);
    expect(await counters()).toEqual({ confirmed: 0, helped: 0, consensus: undefined });
  });

  it("a retried shared request's new run keeps the results the community voted on, and a proposal the engines now suggest stays the community's", async () => {
    const { owner, requestId, resultId, counters } = await confirmedSharedRequest();
    // Someone proposes a species the engines will suggest on the new run.
    const proposer = await withRole("user");
    const other = `Philodendron hederaceum ${crypto.randomUUID().slice(0, 8)}`;
    const otherId = crypto.randomUUID();
    await env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, 'Araceae', 'Philodendron')")
      .bind(otherId, other)
      .run();
    const proposal = await json<{ result_id: string }>(
      await call(`${PLANTS}/requests/${requestId}/propose/`, { bearer: proposer.access, json: { species_id: otherId } }),
      201,
    );
    // …and agrees with the confirmed one too, so it stays confirmed (3 of 4 identifying votes).
    await json(await call(`${PLANTS}/results/${resultId}/vote/`, { bearer: proposer.access, json: { vote_type: "upvote" } }), 200);
    expect((await counters()).consensus).toBe(resultId);
    // The owner retries it (needs_help may be retried) and its job runs: the engines now suggest
    // only the proposed species, not the confirmed engine result.
    expect((await call(`${PLANTS}/requests/${requestId}/retry/`, { method: "POST", bearer: owner.access })).status).toBe(202);
    await env.DB.prepare("UPDATE identification_requests SET status = 'processing' WHERE id = ?").bind(requestId).run();
    const suggestion = {
      plant_name: "Heartleaf",
      scientific_name: other,
      probability: 0.3,
      common_names: [],
      description: "",
      family: "Araceae",
      genus: "Philodendron",
      similar_images: [],
      sources: ["plant_id" as const],
      calibration_version: "plant_id:raw,plantnet:raw",
      rank: 1,
    };
    await completeIdentificationRequest(env, requestId, owner.userId, [suggestion], null);

    // The result the community confirmed stays, with its votes, its consensus and their counts.
    expect(await counters()).toEqual({ confirmed: 1, helped: 1, consensus: resultId });
    const votes = await env.DB.prepare("SELECT count(*) AS n FROM votes WHERE result_id = ?").bind(resultId).first<{ n: number }>();
    expect(votes!.n).toBe(3);
    const kept = await env.DB.prepare("SELECT identification_source AS source, proposed_by FROM identification_results WHERE id = ?")
      .bind(proposal.result_id)
      .first<{ source: string; proposed_by: string }>();
    expect(kept).toEqual({ source: "community", proposed_by: proposer.userId });
  });
});

describe("a retried shared request has one primary result", () => {
  it("a voted result the new run no longer suggests stays, but is no longer primary: the new run's best is", async () => {
    const { owner, requestId, resultId } = await confirmedSharedRequest();
    // It was the first run's best: rank 1, primary.
    await env.DB.prepare("UPDATE identification_results SET is_primary = 1 WHERE id = ?").bind(resultId).run();
    expect((await call(`${PLANTS}/requests/${requestId}/retry/`, { method: "POST", bearer: owner.access })).status).toBe(202);
    await env.DB.prepare("UPDATE identification_requests SET status = 'processing' WHERE id = ?").bind(requestId).run();
    const other = `Epipremnum aureum ${crypto.randomUUID().slice(0, 8)}`;
    await completeIdentificationRequest(
      env,
      requestId,
      owner.userId,
      [
        {
          plant_name: "Pothos",
          scientific_name: other,
          probability: 0.3,
          common_names: [],
          description: "",
          family: "Araceae",
          genus: "Epipremnum",
          similar_images: [],
          sources: ["plant_id" as const],
          calibration_version: "plant_id:raw,plantnet:raw",
          rank: 1,
        },
      ],
      null,
    );
    const primaries = await env.DB.prepare(
      "SELECT scientific_name AS name FROM identification_results WHERE request_id = ? AND is_primary = 1",
    )
      .bind(requestId)
      .all<{ name: string }>();
    expect(primaries.results.map((r) => r.name)).toEqual([other]);
    // The owner's view leads with the new run's best for its care, not the first run's.
    const view = await json<{ results: { scientific_name: string; is_primary: boolean }[] }>(
      await call(`${PLANTS}/requests/${requestId}/results/`, { bearer: owner.access }),
      200,
    );
    expect(view.results.filter((r) => r.is_primary).map((r) => r.scientific_name)).toEqual([other]);
  });
});

describe("proposals cannot flood a request's owner", () => {
  it("one proposer's proposals notify the owner at most 5 times an hour; the proposals all stand; another proposer still does", async () => {
    const owner = await bearerUser();
    const [pest, helper] = [await withRole("user"), await withRole("user")];
    const requestId = crypto.randomUUID();
    await env.DB.prepare("INSERT INTO identification_requests (id, user_id, status, image_hashes) VALUES (?, ?, 'needs_help', '[]')")
      .bind(requestId, owner.userId)
      .run();
    expect((await call(`${PLANTS}/requests/${requestId}/share/`, { method: "POST", bearer: owner.access })).status).toBe(200);
    const propose = async (u: User, i: number) => {
      const id = crypto.randomUUID();
      await env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, 'Araceae', 'Anthurium')")
        .bind(id, `Anthurium pest${i} ${id.slice(0, 8)}`)
        .run();
      const res = await call(`${PLANTS}/requests/${requestId}/propose/`, {
        bearer: u.access,
        json: { species_id: id, comment: `insult ${i}` },
      });
      expect(res.status).toBe(201);
    };
    for (let i = 0; i < 7; i++) await propose(pest, i);
    const told = async () =>
      (await env.DB.prepare("SELECT count(*) AS n FROM notifications WHERE user_id = ? AND type = 'community_proposal'")
        .bind(owner.userId)
        .first<{ n: number }>())!.n;
    expect(await told()).toBe(5);
    await propose(helper, 99);
    expect(await told()).toBe(6);
    const stand = await env.DB.prepare("SELECT count(*) AS n FROM identification_results WHERE request_id = ?")
      .bind(requestId)
      .first<{ n: number }>();
    expect(stand!.n).toBe(8);
  });
});
