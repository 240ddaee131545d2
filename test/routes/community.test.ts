/**
 * Community identification end to end (issue 11, API.md §5c): sharing and the feed (private
 * requests never appear), proposals (not on your own, not twice), votes, consensus gained and
 * lost, new accounts shown but not counted, the counters, notifications, and moderation.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectError, jsonWithStatus as json, type Page } from "../helpers/http";
import { runHousekeeping } from "../../src/jobs/housekeeping";
import { DAY_MS, HOUR_MS } from "../../src/lib/durations";
import { createLogger } from "../../src/lib/logger";
import { setAccountActive } from "../../src/services/accounts";
import { AGED_ACCOUNTS_LOOKBACK_MS, agedAccountsBetween, MAX_AGREEMENT_NOTICES_PER_HOUR } from "../../src/services/community";
import { database } from "../../src/db/client";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, GOOD_PASSWORD, tokenLogin, uniqueName } from "../helpers/users";

useEmulators();
type User = Awaited<ReturnType<typeof bearerUser>>;
const BASE = "/api/v1/plant-identification";

interface Candidate {
  id: string;
  result_id: string;
  scientific_name: string;
  upvotes: number;
  community_confirmed: boolean;
  proposed_by: string | null;
}
interface FeedItem {
  request_id: string;
  status: string;
  latitude: number | null;
  longitude: number | null;
  community_result_id: string | null;
  candidates: Candidate[];
}

/** A user whose votes count (trust level above `new`). */
async function identifier(level = "basic"): Promise<User> {
  const u = await bearerUser();
  await env.DB.prepare("UPDATE users SET trust_level = ? WHERE id = ?").bind(level, u.userId).run();
  return u;
}

async function aSpecies(name: string, family: string) {
  const id = crypto.randomUUID();
  await env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, ?, ?)")
    .bind(id, name, family, name.split(" ")[0])
    .run();
  return id;
}

/** A finished request with two engine results, owned by `owner`. */
async function finishedRequest(owner: User, opts: { lat?: number; lon?: number; family?: string } = {}) {
  const id = crypto.randomUUID();
  const hash = [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, "0")).join("");
  await env.DB.prepare(
    "INSERT INTO identification_requests (id, user_id, status, image_hashes, latitude, longitude) VALUES (?, ?, 'needs_help', ?, ?, ?)",
  )
    .bind(id, owner.userId, JSON.stringify([hash]), opts.lat ?? null, opts.lon ?? null)
    .run();
  const family = opts.family ?? "Araceae";
  const suffix = crypto.randomUUID().slice(0, 8);
  const results: string[] = [];
  for (const [rank, name] of [`Monstera deliciosa${suffix}`, `Philodendron bipinnatifidum${suffix}`].entries()) {
    const rid = crypto.randomUUID();
    const speciesId = await aSpecies(name, family);
    await env.DB.prepare(
      `INSERT INTO identification_results (id, request_id, species_id, scientific_name, family, confidence_score, identification_source, rank)
       VALUES (?, ?, ?, ?, ?, ?, 'ai_combined', ?)`,
    )
      .bind(rid, id, speciesId, name, family, 0.45 - rank * 0.1, rank + 1)
      .run();
    results.push(rid);
  }
  return { id, results };
}

/** A shared finished request of `owner`, and `proposer`'s proposal of a new catalogue species for it. */
async function sharedWithProposal(owner: User, proposer: User, name: string, family: string, comment?: string) {
  const req = await finishedRequest(owner);
  await json(await share(owner, req.id), 200);
  const sp = await aSpecies(`${name}${crypto.randomUUID().slice(0, 6)}`, family);
  const { result_id } = await json<{ result_id: string }>(
    await call(`${BASE}/requests/${req.id}/propose/`, {
      bearer: proposer.access,
      json: { species_id: sp, ...(comment ? { comment } : {}) },
    }),
    201,
  );
  return { req, result_id };
}

const share = (u: User, id: string, method = "POST") => call(`${BASE}/requests/${id}/share/`, { method, bearer: u.access });
const vote = (u: User, resultId: string, vote_type = "upvote") =>
  call(`${BASE}/results/${resultId}/vote/`, { bearer: u.access, json: { vote_type } });
const feed = async (query = "") => json<Page<FeedItem>>(await call(`${BASE}/community/${query}`), 200);
/** Whether the feed filtered by `?status=` (API.md §5c) lists the request. */
const inFeed = async (status: "needs_id" | "confirmed", id: string) =>
  (await feed(`?status=${status}&page_size=100`)).results.some((i) => i.request_id === id);
const detail = async (id: string) => json<FeedItem>(await call(`${BASE}/community/${id}/`), 200);
const notes = async (u: User, type: string) =>
  (
    await json<Page<{ type: string; title: string; body: string }>>(
      await call(`/api/v1/notifications/?type=${type}`, { bearer: u.access }),
      200,
    )
  ).results;
const helped = async (u: User) =>
  (await json<{ identifications_helped: number }>(await call("/api/v1/auth/user/", { bearer: u.access }), 200)).identifications_helped;

describe("sharing and the feed", () => {
  it("only the owner shares; private requests never appear; unsharing takes it out; coordinates are rounded", async () => {
    const [owner, other] = await Promise.all([bearerUser(), bearerUser()]);
    const req = await finishedRequest(owner, { lat: 52.520008, lon: 13.404954 });
    const hidden = await finishedRequest(owner);
    await expectError(await share(other, req.id), 404, "NOT_FOUND");
    expect((await feed("?page_size=100")).results.map((i) => i.request_id)).not.toContain(req.id);
    await expectError(await call(`${BASE}/community/${req.id}/`), 404, "NOT_FOUND");
    expect(await json(await share(owner, req.id), 200)).toMatchObject({ request_id: req.id, shared: true });
    const item = (await feed("?page_size=100")).results.find((i) => i.request_id === req.id)!;
    expect(item).toMatchObject({ status: "needs_id", latitude: 52.5, longitude: 13.4, community_result_id: null });
    expect(item.candidates).toHaveLength(2);
    expect((await feed("?page_size=100")).results.map((i) => i.request_id)).not.toContain(hidden.id);
    // Near: Potsdam is ~27 km from Berlin.
    expect((await feed("?near=52.39,13.06,40&page_size=100")).results.map((i) => i.request_id)).toContain(req.id);
    expect((await feed("?near=52.39,13.06,10&page_size=100")).results.map((i) => i.request_id)).not.toContain(req.id);
    await expectError(await call(`${BASE}/community/?near=95,0,10`), 400, "VALIDATION_ERROR");
    // Others cannot vote on a private request's results.
    await expectError(await vote(other, hidden.results[0]!), 404, "NOT_FOUND");
    await json(await share(owner, req.id, "DELETE"), 200);
    expect((await feed("?page_size=100")).results.map((i) => i.request_id)).not.toContain(req.id);
    await expectError(await vote(other, req.results[0]!), 404, "NOT_FOUND");
  });

  it("a candidate's id is its result's id (as in the owner's results/), named `id` like a result's and `result_id` as before", async () => {
    const [owner, other] = await Promise.all([bearerUser(), bearerUser()]);
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const { results } = await json<{ results: { id: string }[] }>(
      await call(`${BASE}/requests/${req.id}/results/`, { bearer: owner.access }),
      200,
    );
    const resultIds = results.map((res) => res.id).sort();
    const fromFeed = (await feed("?page_size=100")).results.find((i) => i.request_id === req.id)!.candidates;
    const fromDetail = (await detail(req.id)).candidates;
    for (const candidates of [fromFeed, fromDetail]) {
      expect(candidates.map((c) => c.id).sort()).toEqual(resultIds);
      for (const c of candidates) expect(c.result_id).toBe(c.id);
    }
    // The id is the one results/{id}/vote/ takes.
    expect(await json(await vote(other, fromDetail[0]!.id), 200)).toMatchObject({ result_id: fromDetail[0]!.id, upvotes: 1 });
  });

  it("a deactivated account's shared requests leave the feed, and cannot be proposed for or looked up", async () => {
    const [owner, other] = await Promise.all([bearerUser(), bearerUser()]);
    const req = await finishedRequest(owner, { lat: 48.1, lon: 11.6 });
    await json(await share(owner, req.id), 200);
    expect((await feed("?page_size=100")).results.map((i) => i.request_id)).toContain(req.id);
    await env.DB.prepare("UPDATE users SET is_active = 0 WHERE id = ?").bind(owner.userId).run();
    expect((await feed("?page_size=100")).results.map((i) => i.request_id)).not.toContain(req.id);
    await expectError(await call(`${BASE}/community/${req.id}/`), 404, "NOT_FOUND");
    await expectError(
      await call(`${BASE}/requests/${req.id}/propose/`, { bearer: other.access, json: { scientific_name: "Bellis perennis" } }),
      404,
      "NOT_FOUND",
    );
  });

  it("a proposal by a name nobody knows is a 400 pointing at a search route that exists", async () => {
    const [owner, other] = await Promise.all([bearerUser(), bearerUser()]);
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const body = await expectError(
      await call(`${BASE}/requests/${req.id}/propose/`, { bearer: other.access, json: { scientific_name: "Xyzzy plughus" } }),
      400,
      "VALIDATION_ERROR",
    );
    const message = body.errors?.scientific_name?.[0] ?? "";
    const route = /\(([a-z/]+\/\?q=)\)/.exec(message)?.[1];
    expect(route, message).toBeDefined();
    const search = await call(`${BASE}/${route}monstera`);
    expect(search.status).toBe(200);
  });

  it("a proposal by a name that is not a scientific name is a 400 naming the field, never a 500, and writes nothing (helper-47)", async () => {
    const [owner, other] = await Promise.all([bearerUser(), bearerUser()]);
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const before = (await detail(req.id)).candidates.length;
    const raw = (body: string) =>
      call(`${BASE}/requests/${req.id}/propose/`, { bearer: other.access, body, headers: { "Content-Type": "application/json" } });
    for (const res of [
      // A lone surrogate, which KV cannot take as a key; a name longer than KV's 512-byte keys.
      await raw('{"scientific_name":"Monstera \\ud800deliciosa"}'),
      await raw(JSON.stringify({ scientific_name: `Monstera ${"\u6f22".repeat(190)}` })),
      await raw(JSON.stringify({ scientific_name: "Monstera\u0000deliciosa" })),
      await raw(JSON.stringify({ scientific_name: "<script>x</script>" })),
    ]) {
      const body = await expectError(res, 400, "VALIDATION_ERROR");
      expect(Object.keys(body.errors ?? {})).toEqual(["scientific_name"]);
    }
    expect((await detail(req.id)).candidates).toHaveLength(before);
  });

  it("a deactivated account's shared request takes no votes or reports (404, as if absent)", async () => {
    const [owner, a, b, reporter] = await Promise.all([bearerUser(), identifier(), identifier(), bearerUser()]);
    const { req, result_id } = await sharedWithProposal(owner, a, "Hoya carnosa", "Apocynaceae");
    await env.DB.prepare("UPDATE users SET is_active = 0 WHERE id = ?").bind(owner.userId).run();
    await expectError(await vote(b, req.results[0]!), 404, "NOT_FOUND");
    await expectError(await vote(b, result_id), 404, "NOT_FOUND");
    await expectError(
      await call(`${BASE}/results/${result_id}/report/`, { bearer: reporter.access, json: { reason: "Spam" } }),
      404,
      "NOT_FOUND",
    );
    const votes = await env.DB.prepare(
      "SELECT count(*) AS n FROM votes v JOIN identification_results r ON r.id = v.result_id WHERE r.request_id = ?",
    )
      .bind(req.id)
      .first<{ n: number }>();
    expect(votes!.n).toBe(0);
  });

  it("a pending request cannot be shared", async () => {
    const owner = await bearerUser();
    const req = await finishedRequest(owner);
    await env.DB.prepare("UPDATE identification_requests SET status = 'pending' WHERE id = ?").bind(req.id).run();
    await expectError(await share(owner, req.id), 409, "CONFLICT");
  });
});

describe("proposals", () => {
  it("anyone but the owner proposes a catalogue species once; the owner hears of it", async () => {
    const [owner, a] = await Promise.all([bearerUser(), identifier()]);
    const req = await finishedRequest(owner, { family: "Marantaceae" });
    await json(await share(owner, req.id), 200);
    const sp = await aSpecies(`Calathea orbifolia${crypto.randomUUID().slice(0, 6)}`, "Marantaceae");
    await expectError(
      await call(`${BASE}/requests/${req.id}/propose/`, { bearer: owner.access, json: { species_id: sp } }),
      403,
      "FORBIDDEN",
    );
    const made = await json<{ result_id: string; identification_source: string }>(
      await call(`${BASE}/requests/${req.id}/propose/`, { bearer: a.access, json: { species_id: sp, comment: "Round striped leaves." } }),
      201,
    );
    expect(made.identification_source).toBe("community");
    await expectError(await call(`${BASE}/requests/${req.id}/propose/`, { bearer: a.access, json: { species_id: sp } }), 409, "CONFLICT");
    await expectError(
      await call(`${BASE}/requests/${req.id}/propose/`, { bearer: a.access, json: { species_id: "no-such-species" } }),
      400,
      "VALIDATION_ERROR",
    );
    await expectError(
      await call(`${BASE}/requests/${req.id}/propose/`, { bearer: a.access, json: { species_id: sp, scientific_name: "X y" } }),
      400,
      "VALIDATION_ERROR",
    );
    const d = await detail(req.id);
    expect(d.candidates.find((c) => c.result_id === made.result_id)).toMatchObject({
      proposed_by: a.userId,
      comment: "Round striped leaves.",
    });
    expect((await notes(owner, "community_proposal")).map((n) => n.title)).toEqual([expect.stringContaining(`${a.username} suggests`)]);
    expect((await feed("?family=marantaceae&page_size=100")).results.map((i) => i.request_id)).toContain(req.id);
  });

  it("a private request cannot be proposed for (404, as if absent)", async () => {
    const [owner, a] = await Promise.all([bearerUser(), identifier()]);
    const req = await finishedRequest(owner);
    const sp = await aSpecies(`Ficus lyrata${crypto.randomUUID().slice(0, 6)}`, "Moraceae");
    await expectError(await call(`${BASE}/requests/${req.id}/propose/`, { bearer: a.access, json: { species_id: sp } }), 404, "NOT_FOUND");
  });
});

describe("consensus", () => {
  it("is gained with 2 supporters and more than 2/3 of identifying votes, lost when a vote switches, and counts", async () => {
    const [owner, a, b, c] = await Promise.all([bearerUser(), identifier(), identifier(), identifier()]);
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const [monstera, philo] = req.results as [string, string];
    const speciesOf = async (rid: string) =>
      (await env.DB.prepare("SELECT species_id FROM identification_results WHERE id = ?").bind(rid).first<{ species_id: string }>())!
        .species_id;
    const confirmedCount = async (rid: string) =>
      (await env.DB.prepare("SELECT confirmed_count AS n FROM species WHERE id = ?")
        .bind(await speciesOf(rid))
        .first<{ n: number }>())!.n;

    expect(await json<{ community_result_id: string | null }>(await vote(a, monstera), 200)).toMatchObject({ community_result_id: null });
    // Two supporters, 2 of 2 votes: confirmed.
    expect(await json<{ community_result_id: string | null }>(await vote(b, monstera), 200)).toMatchObject({
      community_result_id: monstera,
    });
    expect((await detail(req.id)).status).toBe("confirmed");
    expect(await inFeed("confirmed", req.id)).toBe(true);
    expect(await inFeed("needs_id", req.id)).toBe(false);
    expect(await confirmedCount(monstera)).toBe(1);
    expect(await helped(a)).toBe(1);
    expect((await notes(owner, "community_consensus")).map((n) => n.title)).toEqual([expect.stringContaining("The community identified")]);
    expect((await notes(a, "community_consensus")).map((n) => n.title)).toEqual([
      expect.stringContaining("Your identification was confirmed"),
    ]);
    // A third opinion for another species: 2 of 3 is not more than 2/3 → lost.
    expect(await json<{ community_result_id: string | null }>(await vote(c, philo), 200)).toMatchObject({ community_result_id: null });
    expect(await confirmedCount(monstera)).toBe(0);
    expect(await helped(a)).toBe(0);
    expect(await inFeed("confirmed", req.id)).toBe(false);
    expect(await inFeed("needs_id", req.id)).toBe(true);
    // c switches to Monstera (3 of 3): confirmed again; the counters follow, and nobody is told twice.
    await vote(c, philo); // removes
    expect(await json<{ community_result_id: string | null }>(await vote(c, monstera), 200)).toMatchObject({
      community_result_id: monstera,
    });
    expect(await helped(c)).toBe(1);
    expect(await confirmedCount(monstera)).toBe(1);
    expect(await notes(owner, "community_consensus")).toHaveLength(1);
    // A downvote is a disagreeing identifying vote: 3 supports of 4 votes is still > 2/3 … a second one is not.
    const [d, e] = await Promise.all([identifier(), identifier()]);
    expect(await json<{ community_result_id: string | null }>(await vote(d, monstera, "downvote"), 200)).toMatchObject({
      community_result_id: monstera,
    });
    expect(await json<{ community_result_id: string | null }>(await vote(e, monstera, "downvote"), 200)).toMatchObject({
      community_result_id: null,
    });
  });

  it("new accounts' votes are shown but do not count", async () => {
    const [owner, fresh1, fresh2] = await Promise.all([bearerUser(), bearerUser(), bearerUser()]);
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    await vote(fresh1, req.results[0]!);
    const after = await json<{ upvotes: number; community_result_id: string | null }>(await vote(fresh2, req.results[0]!), 200);
    expect(after).toMatchObject({ upvotes: 2, community_result_id: null });
    // An account that earned its level (5 posts, a week old) counts without a stored level.
    await env.DB.prepare("UPDATE users SET post_count = 5, date_joined = '2026-01-01T00:00:00.000Z' WHERE id IN (?, ?)")
      .bind(fresh1.userId, fresh2.userId)
      .run();
    await vote(fresh2, req.results[0]!); // remove …
    expect(await json<{ community_result_id: string | null }>(await vote(fresh2, req.results[0]!), 200)).toMatchObject({
      community_result_id: req.results[0],
    }); // … and vote again: now both count
  });

  it("the owner's own votes are shown but do not count: an owner and one friend cannot confirm the owner's pick", async () => {
    const [owner, friend, b] = await Promise.all([identifier("veteran"), identifier(), identifier()]);
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const [wrong, right] = req.results as [string, string];
    await json(await vote(owner, wrong), 200);
    expect(await json<{ upvotes: number; community_result_id: string | null }>(await vote(friend, wrong), 200)).toMatchObject({
      upvotes: 2,
      community_result_id: null,
    });
    expect((await detail(req.id)).status).toBe("needs_id");
    // The owner's downvote does not block others either: two others agree, 2 of 2 counted votes.
    await json(await vote(owner, right, "downvote"), 200);
    await vote(friend, wrong); // withdrawn
    await json(await vote(friend, right), 200);
    expect(await json<{ community_result_id: string | null }>(await vote(b, right), 200)).toMatchObject({ community_result_id: right });
    expect(await helped(owner)).toBe(0);
  });

  it("deactivating a supporter recounts the consensus it carried, and the counters; reactivating restores it", async () => {
    const [owner, a, b, admin] = await Promise.all([bearerUser(), identifier(), identifier(), bearerUser()]);
    await env.DB.prepare("UPDATE users SET role = 'admin' WHERE id = ?").bind(admin.userId).run();
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const [monstera] = req.results as [string, string];
    await vote(a, monstera);
    expect(await json<{ community_result_id: string | null }>(await vote(b, monstera), 200)).toMatchObject({
      community_result_id: monstera,
    });
    // b also carried 24 more requests: the recount is one batch however many there are.
    const more = await Promise.all(Array.from({ length: 24 }, () => finishedRequest(owner)));
    for (const m of more) {
      await json(await share(owner, m.id), 200);
      await vote(a, m.results[1]!);
      await json(await vote(b, m.results[1]!), 200);
    }
    expect(await helped(a)).toBe(25);
    const active = (is_active: boolean) =>
      call(`/api/v1/admin/users/${b.userId}/active/`, { method: "PATCH", bearer: admin.access, json: { is_active } });
    await json(await active(false), 200);
    // a alone is one supporter: no consensus, and a's help no longer counts.
    expect((await detail(req.id)).community_result_id).toBeNull();
    const ids = [req.id, ...more.map((m) => m.id)];
    const confirmed = async () =>
      (await env.DB.prepare(
        `SELECT count(*) AS n FROM identification_requests WHERE community_result_id IS NOT NULL AND id IN (${ids.map(() => "?").join(",")})`,
      )
        .bind(...ids)
        .first<{ n: number }>())!.n;
    expect(await confirmed()).toBe(0);
    expect(await helped(a)).toBe(0);
    await json(await active(true), 200);
    expect((await detail(req.id)).community_result_id).toBe(monstera);
    expect(await confirmed()).toBe(25);
    expect(await helped(a)).toBe(25);
    // Consensus regained is the same consensus: nobody is told twice (one notice per request).
    const told = await json<Page<unknown>>(
      await call("/api/v1/notifications/?type=community_consensus&page_size=100", { bearer: owner.access }),
      200,
    );
    expect(told.count).toBe(25);
  });

  it("a deactivation whose recount fails changes nothing: the account stays active and the consensus stands", async () => {
    const [owner, a, b] = await Promise.all([bearerUser(), identifier(), identifier()]);
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const [monstera] = req.results as [string, string];
    await vote(a, monstera);
    await json(await vote(b, monstera), 200);
    // D1 refuses any batch that recounts consensus (an outage at exactly that statement).
    const DB = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch")
          return (statements: D1PreparedStatement[]) =>
            statements.some((st) => /SET\s+community_confirmed_at/.test(String((st as unknown as { statement?: string }).statement)))
              ? Promise.reject(new Error("D1_ERROR: simulated outage"))
              : target.batch(statements);
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    await expect(setAccountActive({ ...env, DB }, b.userId, false)).rejects.toThrow(/simulated outage/);
    const row = await env.DB.prepare("SELECT is_active FROM users WHERE id = ?").bind(b.userId).first<{ is_active: number }>();
    expect(row!.is_active).toBe(1);
    expect((await detail(req.id)).community_result_id).toBe(monstera);
    expect(await helped(a)).toBe(1);
    expect((await call("/api/v1/auth/user/", { bearer: b.access })).status).toBe(200);
  });

  it("a proposal counts as its author's support; the proposer hears agreement once, as the confirmation when it brings one", async () => {
    const [owner, a, b, c] = await Promise.all([bearerUser(), identifier(), identifier(), identifier()]);
    const { req, result_id } = await sharedWithProposal(owner, a, "Alocasia zebrina", "Araceae");
    expect(await json<{ community_result_id: string | null }>(await vote(b, result_id), 200)).toMatchObject({
      community_result_id: result_id,
    });
    const name = (await detail(req.id)).candidates[0]!.scientific_name;
    // b's vote confirmed it: a hears that, and not also that b agrees.
    expect((await notes(a, "community_consensus")).map((n) => n.title)).toEqual([`Your identification was confirmed: ${name}`]);
    expect(await notes(a, "community_agreement")).toEqual([]);
    // c's agreement with what is confirmed already is news of its own.
    await json(await vote(c, result_id), 200);
    expect((await notes(a, "community_agreement")).map((n) => n.title)).toEqual([`${c.username} agrees: ${name}`]);
    expect(await notes(a, "community_consensus")).toHaveLength(1);
    expect(await helped(a)).toBe(1);
    expect(await helped(b)).toBe(1);
    expect(await helped(owner)).toBe(0);
  });

  it("50 concurrent votes on one request end in the state a serial recount gives", async () => {
    const owner = await bearerUser();
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const voters = await Promise.all(Array.from({ length: 50 }, () => identifier()));
    const choice = (i: number) => req.results[i % 4 === 0 ? 1 : 0]!;
    const answers = await Promise.all(voters.map((v, i) => vote(v, choice(i))));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const row = await env.DB.prepare(
      "SELECT community_result_id AS c, (SELECT upvotes FROM identification_results WHERE id = ?) AS up FROM identification_requests WHERE id = ?",
    )
      .bind(req.results[0], req.id)
      .first<{ c: string | null; up: number }>();
    // 37 of 50 for the first (74% > 2/3): confirmed, and the tally equals the votes.
    expect(row).toEqual({ c: req.results[0], up: 37 });
  }, 90_000); // fifty accounts registered and signed in: 20 s on a loaded 2-core machine (helper-103 saw it time out)
});

describe("moderation", () => {
  it("hiding an abusive proposal does not keep its species off the request: the next proposal of it takes the hidden one over (helper-47)", async () => {
    const [owner, griefer, honest, second, mod] = await Promise.all([bearerUser(), bearerUser(), identifier(), identifier(), bearerUser()]);
    await env.DB.prepare("UPDATE users SET role = 'moderator' WHERE id = ?").bind(mod.userId).run();
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const right = await aSpecies(`Calathea orbifolia${crypto.randomUUID().slice(0, 6)}`, "Marantaceae");
    const hidden = await json<{ result_id: string }>(
      await call(`${BASE}/requests/${req.id}/propose/`, { bearer: griefer.access, json: { species_id: right, comment: "you idiot" } }),
      201,
    );
    const reporter = await bearerUser();
    await json(await call(`${BASE}/results/${hidden.result_id}/report/`, { bearer: reporter.access, json: { reason: "Insult" } }), 201);
    expect((await notes(owner, "community_proposal")).map((n) => n.body)).toEqual(["you idiot"]);
    // Withdrawn by the griefer too: the one who takes it over proposes afresh, their support counted.
    await json(await call(`${BASE}/results/${hidden.result_id}/withdraw/`, { method: "POST", bearer: griefer.access }), 200);
    await json(await call(`${BASE}/results/${hidden.result_id}/hide/`, { method: "POST", bearer: mod.access }), 200);
    // The insult leaves the owner's notifications with it (review helper-49).
    expect(await notes(owner, "community_proposal")).toEqual([]);
    // Its proposer cannot undo the hiding by proposing it again (review helper-49).
    await expectError(
      await call(`${BASE}/requests/${req.id}/propose/`, { bearer: griefer.access, json: { species_id: right, comment: "still you" } }),
      403,
      "FORBIDDEN",
    );

    // Before: 409 naming the hidden result, which nobody could vote on: the species was lost to the request.
    const taken = await json<{ result_id: string }>(
      await call(`${BASE}/requests/${req.id}/propose/`, { bearer: honest.access, json: { species_id: right, comment: "Silver bands." } }),
      201,
    );
    expect(taken.result_id).toBe(hidden.result_id);
    expect((await detail(req.id)).candidates.find((c) => c.result_id === hidden.result_id)).toMatchObject({
      proposed_by: honest.userId,
      comment: "Silver bands.",
      withdrawn_at: null,
    });
    expect((await notes(owner, "community_proposal")).map((n) => n.title)).toContain(
      `${honest.username} suggests ${(await detail(req.id)).candidates.find((c) => c.result_id === hidden.result_id)!.scientific_name}`,
    );
    await json(await vote(second, hidden.result_id), 200);
    expect((await detail(req.id)).community_result_id).toBe(hidden.result_id);
    // The old reports were about the old words: the new proposal can be reported afresh.
    await json(await call(`${BASE}/results/${hidden.result_id}/report/`, { bearer: reporter.access, json: { reason: "Again?" } }), 201);
    // Shown again, it is an ordinary candidate: proposing it again is the usual 409.
    await expectError(
      await call(`${BASE}/requests/${req.id}/propose/`, { bearer: griefer.access, json: { species_id: right } }),
      409,
      "CONFLICT",
    );
  });

  it("a proposal that confirms the request at once tells its owner once, as the consensus", async () => {
    const [owner, griefer, honest, early, mod] = await Promise.all([bearerUser(), bearerUser(), identifier(), identifier(), bearerUser()]);
    await env.DB.prepare("UPDATE users SET role = 'moderator' WHERE id = ?").bind(mod.userId).run();
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const right = await aSpecies(`Calathea lancifolia${crypto.randomUUID().slice(0, 6)}`, "Marantaceae");
    // A new account's proposal (its support does not count) with one vote that does: no consensus yet.
    const hidden = await json<{ result_id: string }>(
      await call(`${BASE}/requests/${req.id}/propose/`, { bearer: griefer.access, json: { species_id: right, comment: "rude words" } }),
      201,
    );
    await json(await vote(early, hidden.result_id), 200);
    expect((await detail(req.id)).community_result_id).toBeNull();
    await json(await call(`${BASE}/results/${hidden.result_id}/hide/`, { method: "POST", bearer: mod.access }), 200);
    // honest takes it over, and with the vote it kept, two people who count agree: confirmed by the proposal itself.
    await json(await call(`${BASE}/requests/${req.id}/propose/`, { bearer: honest.access, json: { species_id: right } }), 201);
    expect((await detail(req.id)).community_result_id).toBe(hidden.result_id);
    expect(await notes(owner, "community_consensus")).toHaveLength(1);
    expect(await notes(owner, "community_proposal")).toEqual([]);
  });

  it("a vote stops counting when its author deletes the forum posts that made them basic (review helper-50)", async () => {
    const [owner, a] = await Promise.all([bearerUser(), identifier()]);
    const farmer = await bearerUser();
    await env.DB.prepare("UPDATE users SET date_joined = '2026-01-01T00:00:00.000Z' WHERE id = ?").bind(farmer.userId).run();
    const topic = await json<{ id: string }>(
      await call("/api/v1/forum/categories/houseplants/topics/", { bearer: farmer.access, json: { title: "Five posts", body: "One." } }),
      201,
    );
    const posts = [];
    for (let i = 0; i < 4; i++)
      posts.push(
        await json<{ id: string }>(
          await call(`/api/v1/forum/topics/${topic.id}/posts/`, { bearer: farmer.access, json: { body: `More ${i}.` } }),
          201,
        ),
      );
    const { req, result_id } = await sharedWithProposal(owner, a, "Ficus lyrata", "Moraceae");
    await vote(farmer, result_id);
    expect((await detail(req.id)).community_result_id).toBe(result_id);
    expect((await call(`/api/v1/forum/posts/${posts[0]!.id}/`, { method: "DELETE", bearer: farmer.access })).status).toBe(204);
    expect((await detail(req.id)).community_result_id).toBeNull();
  });

  it("a vote cast before its author's fifth forum post counts from that post: the post recounts it", async () => {
    const [owner, a] = await Promise.all([bearerUser(), identifier()]);
    const farmer = await bearerUser();
    await env.DB.prepare("UPDATE users SET post_count = 3, date_joined = '2026-01-01T00:00:00.000Z' WHERE id = ?")
      .bind(farmer.userId)
      .run();
    const { req, result_id } = await sharedWithProposal(owner, a, "Ficus elastica", "Moraceae");
    await json(await vote(farmer, result_id), 200);
    expect((await detail(req.id)).community_result_id).toBeNull(); // 3 posts: not counted
    const topic = await json<{ id: string }>(
      await call("/api/v1/forum/categories/houseplants/topics/", { bearer: farmer.access, json: { title: "Fourth", body: "Four." } }),
      201,
    );
    expect((await detail(req.id)).community_result_id).toBeNull(); // 4 posts: still not
    await json(await call(`/api/v1/forum/topics/${topic.id}/posts/`, { bearer: farmer.access, json: { body: "Five." } }), 201);
    expect((await detail(req.id)).community_result_id).toBe(result_id);
    expect(await notes(owner, "community_consensus")).toHaveLength(1);
  });

  it("a topic that is its author's fifth post counts their votes from then on", async () => {
    const [owner, a] = await Promise.all([bearerUser(), identifier()]);
    const farmer = await bearerUser();
    await env.DB.prepare("UPDATE users SET post_count = 4, date_joined = '2026-01-01T00:00:00.000Z' WHERE id = ?")
      .bind(farmer.userId)
      .run();
    const { req, result_id } = await sharedWithProposal(owner, a, "Ficus benjamina", "Moraceae");
    await json(await vote(farmer, result_id), 200);
    expect((await detail(req.id)).community_result_id).toBeNull();
    await json(
      await call("/api/v1/forum/categories/houseplants/topics/", { bearer: farmer.access, json: { title: "Fifth", body: "Five." } }),
      201,
    );
    expect((await detail(req.id)).community_result_id).toBe(result_id);
  });

  it("a reported proposal reaches the moderators' queue; hiding it stops it counting and showing", async () => {
    const [owner, a, b, reporter, mod] = await Promise.all([bearerUser(), identifier(), identifier(), bearerUser(), bearerUser()]);
    await env.DB.prepare("UPDATE users SET role = 'moderator' WHERE id = ?").bind(mod.userId).run();
    const { req, result_id } = await sharedWithProposal(owner, a, "Pilea peperomioides", "Urticaceae", "buy my course at spam.example");
    await vote(b, result_id);
    expect((await detail(req.id)).community_result_id).toBe(result_id);
    await expectError(
      await call(`${BASE}/results/${result_id}/report/`, { bearer: a.access, json: { reason: "mine" } }),
      400,
      "VALIDATION_ERROR",
    );
    await json(await call(`${BASE}/results/${result_id}/report/`, { bearer: reporter.access, json: { reason: "Spam link" } }), 201);
    await expectError(
      await call(`${BASE}/results/${result_id}/report/`, { bearer: reporter.access, json: { reason: "again" } }),
      409,
      "ALREADY_REPORTED",
    );
    await expectError(await call(`${BASE}/community/reports/`, { bearer: reporter.access }), 403, "FORBIDDEN");
    await expectError(await call(`${BASE}/results/${result_id}/hide/`, { method: "POST", bearer: reporter.access }), 403, "FORBIDDEN");
    const queue = await json<Page<{ result_id: string; reports: number; reasons: string[] }>>(
      await call(`${BASE}/community/reports/?page_size=100`, { bearer: mod.access }),
      200,
    );
    expect(queue.results.find((q) => q.result_id === result_id)).toMatchObject({ reports: 1, reasons: ["Spam link"] });
    expect(await json(await call(`${BASE}/results/${result_id}/hide/`, { method: "POST", bearer: mod.access }), 200)).toMatchObject({
      is_hidden: true,
      community_result_id: null,
    });
    expect((await detail(req.id)).candidates.map((c) => c.result_id)).not.toContain(result_id);
    await expectError(await vote(b, result_id), 404, "NOT_FOUND");
    // Hidden from the request's owner too: not in its results, not to be voted on or accepted.
    const own = await json<{ results: { id: string }[] }>(await call(`${BASE}/requests/${req.id}/results/`, { bearer: owner.access }), 200);
    expect(own.results.map((r) => r.id)).not.toContain(result_id);
    await expectError(await vote(owner, result_id), 404, "NOT_FOUND");
    await expectError(await call(`${BASE}/results/${result_id}/accept/`, { method: "POST", bearer: owner.access }), 404, "NOT_FOUND");
    const after = await json<Page<{ result_id: string }>>(
      await call(`${BASE}/community/reports/?page_size=100`, { bearer: mod.access }),
      200,
    );
    expect(after.results.map((q) => q.result_id)).not.toContain(result_id);
    expect(await helped(a)).toBe(0);
    expect(await json(await call(`${BASE}/results/${result_id}/unhide/`, { method: "POST", bearer: mod.access }), 200)).toMatchObject({
      community_result_id: result_id,
    });
  });
});

describe("an attacker who has read the code (helper-124)", () => {
  it("a proposal takes no field but what it proposes: naming another proposer, a source or a hidden flag is a 400 and writes nothing", async () => {
    const [owner, attacker, victim] = await Promise.all([bearerUser(), identifier(), identifier()]);
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const sp = await aSpecies(`Ficus elastica${crypto.randomUUID().slice(0, 6)}`, "Moraceae");
    const planted = { proposed_by: victim.userId, user_id: victim.userId, identification_source: "ai_combined", is_hidden: false };
    for (const [field, value] of Object.entries(planted)) {
      const res = await call(`${BASE}/requests/${req.id}/propose/`, { bearer: attacker.access, json: { species_id: sp, [field]: value } });
      const body = await expectError(res, 400, "VALIDATION_ERROR");
      expect(JSON.stringify(body.errors), field).toContain(field);
    }
    expect((await detail(req.id)).candidates).toHaveLength(2); // the engines' two, nothing proposed
    expect(await notes(owner, "community_proposal")).toEqual([]);
  });

  it("a sign-up that plants a trust level, a role, an active or verified flag or post count gets an account whose votes do not count", async () => {
    const [owner, a] = await Promise.all([bearerUser(), identifier()]);
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    const username = uniqueName("sybil");
    const planted = {
      trust_level: "veteran",
      role: "admin",
      is_staff: true,
      is_active: true,
      email_verified: true,
      is_confirmed: true,
      post_count: 500,
      date_joined: "2020-01-01T00:00:00.000Z",
      identifications_helped: 99,
    };
    const res = await call("/api/v1/auth/register/", {
      json: { username, email: `${username}@example.com`, password: GOOD_PASSWORD, ...planted },
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const { access } = await tokenLogin(username);
    const me = await json<Record<string, unknown>>(await call("/api/v1/auth/user/", { bearer: access }), 200);
    expect(me).toMatchObject({ trust_level: "new", is_staff: false, email_verified: false, identifications_helped: 0 });
    await json(await vote(a, req.results[0]!), 200);
    const sybilVote = await json<{ upvotes: number; community_result_id: string | null }>(
      await call(`${BASE}/results/${req.results[0]}/vote/`, { bearer: access, json: { vote_type: "upvote" } }),
      200,
    );
    expect(sybilVote).toMatchObject({ upvotes: 2, community_result_id: null });
  });

  it("a proposer's own upvote of their proposal is not a second supporter: it takes someone else to confirm it", async () => {
    const [owner, proposer, other] = await Promise.all([bearerUser(), identifier(), identifier()]);
    const { req, result_id } = await sharedWithProposal(owner, proposer, "Calathea orbifolia", "Marantaceae");
    expect(await json<{ upvotes: number; community_result_id: string | null }>(await vote(proposer, result_id), 200)).toMatchObject({
      upvotes: 1,
      community_result_id: null,
    });
    expect((await detail(req.id)).status).toBe("needs_id");
    expect(await helped(proposer)).toBe(0);
    expect(await json<{ community_result_id: string | null }>(await vote(other, result_id), 200)).toMatchObject({
      community_result_id: result_id,
    });
  });

  it("a request taken out of the community answers every stranger's route as an id that never existed (same status, code and message)", async () => {
    const [owner, proposer, stranger] = await Promise.all([bearerUser(), identifier(), identifier()]);
    const { req, result_id } = await sharedWithProposal(owner, proposer, "Pilea peperomioides", "Urticaceae", "Round leaves");
    await json(await share(owner, req.id, "DELETE"), 200);
    const ghost = crypto.randomUUID();
    const asked = (id: string, resultId: string) => [
      call(`${BASE}/community/${id}/`),
      call(`${BASE}/community/${id}/`, { bearer: stranger.access }),
      call(`${BASE}/requests/${id}/`, { bearer: stranger.access }),
      call(`${BASE}/requests/${id}/results/`, { bearer: stranger.access }),
      call(`${BASE}/requests/${id}/propose/`, { bearer: stranger.access, json: { scientific_name: "Pilea peperomioides" } }),
      call(`${BASE}/requests/${id}/share/`, { method: "POST", bearer: stranger.access }),
      call(`${BASE}/results/${resultId}/vote/`, { bearer: stranger.access, json: { vote_type: "upvote" } }),
      call(`${BASE}/results/${resultId}/report/`, { bearer: stranger.access, json: { reason: "spam" } }),
    ];
    const shape = async (res: Response) => {
      const body = (await res.json()) as { code: string; message: string };
      return { status: res.status, code: body.code, message: body.message };
    };
    const real = await Promise.all((await Promise.all(asked(req.id, result_id))).map(shape));
    const none = await Promise.all((await Promise.all(asked(ghost, crypto.randomUUID()))).map(shape));
    expect(real).toEqual(none);
    for (const answer of real) expect(answer.status).toBe(404);
    // Nor is it in the feed under any filter that matches it.
    expect((await feed("?family=Urticaceae&page_size=100")).results.map((i) => i.request_id)).not.toContain(req.id);
    // Nothing the stranger sent was written.
    expect(await notes(owner, "community_proposal")).toHaveLength(1);
  });
});

describe("consensus and time", () => {
  const quiet = createLogger({ test: "community-aging" }, "error");
  /** Sets `u`'s join time: 5 posts, joined `ms` before `now` (the basic level is 5 posts and 7 days). */
  const joined = (u: User, now: number, ms: number) =>
    env.DB.prepare("UPDATE users SET post_count = 5, date_joined = ? WHERE id = ?")
      .bind(new Date(now - ms).toISOString(), u.userId)
      .run();

  it("a vote cast at day 6 counts from day 7: the five-minute housekeeping recounts it, and tells each person once", async () => {
    const now = Date.now();
    const [owner, counted, young] = await Promise.all([bearerUser(), identifier(), bearerUser()]);
    const req = await finishedRequest(owner);
    await json(await share(owner, req.id), 200);
    await joined(young, now, 6 * DAY_MS);
    await json(await vote(counted, req.results[0]!), 200);
    expect(await json<{ community_result_id: string | null }>(await vote(young, req.results[0]!), 200)).toMatchObject({
      community_result_id: null,
    });
    // A day passes: the young account is 7 days old a minute before this run.
    await joined(young, now, 7 * DAY_MS + 60_000);
    expect((await detail(req.id)).community_result_id).toBeNull(); // nothing recounted it yet
    await runHousekeeping(env, quiet, now);
    expect((await detail(req.id)).community_result_id).toBe(req.results[0]);
    expect(await inFeed("confirmed", req.id)).toBe(true);
    expect(await helped(young)).toBe(1);
    // The next runs still see the crossing within their look-back, and tell nobody again.
    await runHousekeeping(env, quiet, now + 5 * 60_000);
    await runHousekeeping(env, quiet, now + 10 * 60_000);
    for (const u of [owner, counted, young]) expect(await notes(u, "community_consensus"), u.username).toHaveLength(1);
  });

  it("the housekeeping recounts only accounts whose age made them count within its look-back", async () => {
    const now = Date.now();
    const accounts = await Promise.all(Array.from({ length: 6 }, () => bearerUser()));
    const [crossed, sixDays, fewPosts, longAgo, stored, deactivated] = accounts;
    for (const u of [crossed!, stored!, deactivated!]) await joined(u, now, 7 * DAY_MS + 60_000);
    await joined(sixDays!, now, 6 * DAY_MS);
    await joined(longAgo!, now, 7 * DAY_MS + AGED_ACCOUNTS_LOOKBACK_MS + 60_000); // earlier runs recounted it
    await env.DB.prepare("UPDATE users SET post_count = 4, date_joined = ? WHERE id = ?")
      .bind(new Date(now - 7 * DAY_MS - 60_000).toISOString(), fewPosts!.userId)
      .run();
    await env.DB.prepare("UPDATE users SET trust_level = 'basic' WHERE id = ?").bind(stored!.userId).run(); // counted already
    await env.DB.prepare("UPDATE users SET is_active = 0 WHERE id = ?").bind(deactivated!.userId).run();
    const ids = new Set(accounts.map((u) => u.userId));
    const rows = await database(env).all<{ id: string }>(agedAccountsBetween(now - AGED_ACCOUNTS_LOOKBACK_MS, now));
    expect(rows.map((row) => row.id).filter((id) => ids.has(id))).toEqual([crossed!.userId]);
  });
});

describe("agreement notices are capped", () => {
  it(`a proposer hears "agrees" at most ${MAX_AGREEMENT_NOTICES_PER_HOUR} times an hour from all voters together; the votes still count and show`, async () => {
    const [owner, proposer] = await Promise.all([bearerUser(), identifier()]);
    const { req, result_id } = await sharedWithProposal(owner, proposer, "Pilea peperomioides", "Urticaceae");
    // Many fresh accounts (their votes are shown, not counted: no consensus to tell instead).
    const voters = await Promise.all(Array.from({ length: MAX_AGREEMENT_NOTICES_PER_HOUR + 3 }, () => bearerUser()));
    for (const v of voters) await json(await vote(v, result_id), 200);
    const candidate = (await detail(req.id)).candidates.find((c) => c.result_id === result_id);
    expect(candidate?.upvotes).toBe(voters.length);
    expect(await notes(proposer, "community_agreement")).toHaveLength(MAX_AGREEMENT_NOTICES_PER_HOUR);
    // An hour later (the notices' times moved back) the next agreement is told again.
    await env.DB.prepare("UPDATE notifications SET created_at = ? WHERE user_id = ? AND type = 'community_agreement'")
      .bind(new Date(Date.now() - HOUR_MS - 60_000).toISOString(), proposer.userId)
      .run();
    const late = await bearerUser();
    await json(await vote(late, result_id), 200);
    const titles = (await notes(proposer, "community_agreement")).map((n) => n.title);
    expect(titles).toHaveLength(MAX_AGREEMENT_NOTICES_PER_HOUR + 1);
    expect(titles).toContain(`${late.username} agrees: ${candidate?.scientific_name}`);
  });
});

describe("withdrawing a proposal", () => {
  const withdraw = (u: User, resultId: string) => call(`${BASE}/results/${resultId}/withdraw/`, { method: "POST", bearer: u.access });
  const candidateOf = async (requestId: string, resultId: string) =>
    (await detail(requestId)).candidates.find((c) => c.id === resultId) as (Candidate & { withdrawn_at: string | null }) | undefined;
  const reproposal = (u: User, requestId: string, resultId: string) =>
    env.DB.prepare("SELECT species_id FROM identification_results WHERE id = ?")
      .bind(resultId)
      .first<{ species_id: string }>()
      .then((row) => call(`${BASE}/requests/${requestId}/propose/`, { bearer: u.access, json: { species_id: row!.species_id } }));

  it("stops its proposer's support counting, loses a consensus it carried, and proposing again takes it back", async () => {
    const [owner, a, b] = await Promise.all([bearerUser(), identifier(), identifier()]);
    const { req, result_id } = await sharedWithProposal(owner, a, "Alocasia zebrina", "Araceae");
    expect(await json(await vote(b, result_id), 200)).toMatchObject({ community_result_id: result_id });
    expect(await helped(a)).toBe(1);

    const withdrawn = await json<{ result_id: string; withdrawn_at: string; community_result_id: string | null }>(
      await withdraw(a, result_id),
      200,
    );
    expect(withdrawn).toMatchObject({ result_id, community_result_id: null });
    expect(Date.parse(withdrawn.withdrawn_at)).not.toBeNaN();
    // Still a candidate, with b's vote, shown as withdrawn — to the community and to the owner.
    expect(await candidateOf(req.id, result_id)).toMatchObject({ upvotes: 1, proposed_by: a.userId, withdrawn_at: withdrawn.withdrawn_at });
    const own = await json<{ results: { id: string; withdrawn_at: string | null }[] }>(
      await call(`${BASE}/requests/${req.id}/results/`, { bearer: owner.access }),
      200,
    );
    expect(own.results.find((r) => r.id === result_id)?.withdrawn_at).toBe(withdrawn.withdrawn_at);
    expect((await detail(req.id)).status).toBe("needs_id");
    expect(await helped(a)).toBe(0);
    // Again: nothing changes, and it answers when it was withdrawn.
    expect(await json(await withdraw(a, result_id), 200)).toMatchObject({
      withdrawn_at: withdrawn.withdrawn_at,
      community_result_id: null,
    });

    // Proposing the species again is the same result, counted again: the consensus is back, told once.
    const again = await json<{ result_id: string }>(await reproposal(a, req.id, result_id), 201);
    expect(again.result_id).toBe(result_id);
    expect(await candidateOf(req.id, result_id)).toMatchObject({ withdrawn_at: null, community_confirmed: true });
    expect(await helped(a)).toBe(1);
    expect(await notes(owner, "community_consensus")).toHaveLength(1);
  });

  it("a withdrawn proposer is not told of agreement or of the consensus others reach on it", async () => {
    const [owner, a, b, c] = await Promise.all([bearerUser(), identifier(), identifier(), identifier()]);
    const { req, result_id } = await sharedWithProposal(owner, a, "Calathea orbifolia", "Marantaceae");
    await json(await withdraw(a, result_id), 200);
    // b alone supports it now: one supporter is no consensus.
    expect(await json(await vote(b, result_id), 200)).toMatchObject({ community_result_id: null });
    expect(await json(await vote(c, result_id), 200)).toMatchObject({ community_result_id: result_id });
    expect((await detail(req.id)).status).toBe("confirmed");
    expect(await notes(a, "community_agreement")).toEqual([]);
    expect(await notes(a, "community_consensus")).toEqual([]);
    expect((await notes(b, "community_consensus")).map((n) => n.title)).toEqual([
      expect.stringContaining("Your identification was confirmed"),
    ]);
    expect(await helped(a)).toBe(0);
    expect(await helped(b)).toBe(1);
  });

  it("only its proposer withdraws it: 403 for a proposal shown to you, 404 for anything else", async () => {
    const [owner, a, b] = await Promise.all([bearerUser(), identifier(), identifier()]);
    const { req, result_id } = await sharedWithProposal(owner, a, "Pilea peperomioides", "Urticaceae");
    await expectError(await withdraw(b, result_id), 403, "FORBIDDEN");
    await expectError(await withdraw(owner, result_id), 403, "FORBIDDEN");
    // An engine's result is no proposal; an id that names nothing.
    await expectError(await withdraw(owner, req.results[0]!), 404, "NOT_FOUND");
    await expectError(await withdraw(a, crypto.randomUUID()), 404, "NOT_FOUND");
    await expectError(await call(`${BASE}/results/not-a-uuid/withdraw/`, { method: "POST", bearer: a.access }), 400, "VALIDATION_ERROR");
    expect((await call(`${BASE}/results/${result_id}/withdraw/`, { method: "POST" })).status).toBe(401);
    // Once the owner takes the request out of the community, another's proposal there is not shown to b at all.
    await json(await share(owner, req.id, "DELETE"), 200);
    await expectError(await withdraw(b, result_id), 404, "NOT_FOUND");
    // Nothing above withdrew it.
    const row = await env.DB.prepare("SELECT withdrawn_at FROM identification_results WHERE id = ?")
      .bind(result_id)
      .first<{ withdrawn_at: string | null }>();
    expect(row!.withdrawn_at).toBeNull();
  });
});
