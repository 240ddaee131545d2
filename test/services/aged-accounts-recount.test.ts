/**
 * The housekeeping's aged-accounts pass (src/services/community.ts recountAgedAccounts) as the
 * data grows: a burst of accounts crossing the age threshold together (a bot farm made in one
 * go) is worked through a bounded number per run, each run going on where the last stopped, and
 * a run that dies mid-way loses and doubles nothing. A deployed invocation may make at most
 * 1 000 D1 queries; the local D1 enforces no such limit, so the test counts them.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { DAY_MS } from "../../src/lib/durations";
import { AGED_ACCOUNTS_CURSOR_KEY, MAX_AGED_ACCOUNTS_PER_RUN, recountAccounts, recountAgedAccounts } from "../../src/services/community";
import { envAroundBatches } from "../helpers/racing-env";

/** D1's "Queries per Worker invocation" on Workers Paid. */
const D1_QUERIES_PER_INVOCATION = 1000;
const FIVE_MINUTES = 5 * 60_000;

/**
 * `env` whose D1 binding counts what is sent to it: `calls` (each single query or batch, one
 * round trip) and `statements` (a batch counted by its statements, the stricter reading of the limit).
 */
function countingEnv() {
  const counts = { calls: 0, statements: 0 };
  const countStatement = (statement: D1PreparedStatement): D1PreparedStatement =>
    new Proxy(statement, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        if (prop === "bind") return (...args: unknown[]) => countStatement(value.apply(target, args));
        if (prop === "first" || prop === "all" || prop === "raw" || prop === "run")
          return (...args: unknown[]) => {
            counts.calls++;
            counts.statements++;
            return value.apply(target, args);
          };
        return value.bind(target);
      },
    });
  const DB = new Proxy(env.DB, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop === "prepare") return (query: string) => countStatement(target.prepare(query));
      if (prop === "batch")
        return (statements: D1PreparedStatement[]) => {
          counts.calls++;
          counts.statements += statements.length;
          // D1 takes its own statements, not the proxies above.
          return target.batch(statements.map((st) => (st as unknown as { valueOf(): D1PreparedStatement }).valueOf()));
        };
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { env: { ...env, DB } as typeof env, counts };
}

/**
 * `n` accounts joined at the same moment `joinedAt` (5 posts: only age keeps them `new`), each
 * with an upvote, not yet counted, on its own request's result that a counted account upvoted too:
 * recounting an account gives its request a consensus, so the confirmed requests say which
 * accounts were recounted. Answers a query of how many were.
 */
async function farm(n: number, joinedAt: number) {
  const tag = crypto.randomUUID().slice(0, 8);
  const counted = `counted-${tag}`;
  const joined = new Date(joinedAt).toISOString();
  const each = (insert: string) => `WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < ${n}) ${insert}`;
  await env.DB.batch([
    env.DB.prepare("INSERT INTO users (id, username, email, trust_level, post_count) VALUES (?, ?, ?, 'basic', 5)").bind(
      counted,
      counted,
      `${counted}@example.test`,
    ),
    env.DB.prepare(
      each(`INSERT INTO users (id, username, email, post_count, date_joined)
            SELECT 'farm-${tag}-' || k, 'farm${tag}x' || k, 'farm-${tag}-' || k || '@example.test', 5, ? FROM n`),
    ).bind(joined),
    env.DB.prepare(
      each(`INSERT INTO identification_requests (id, status, image_hashes) SELECT 'req-${tag}-' || k, 'needs_help', '[]' FROM n`),
    ),
    env.DB.prepare(
      each(`INSERT INTO identification_results (id, request_id, scientific_name, confidence_score, identification_source, rank)
            SELECT 'res-${tag}-' || k, 'req-${tag}-' || k, 'Farmia ${tag} ' || k, 0.5, 'ai_combined', 1 FROM n`),
    ),
    env.DB.prepare(
      each(`INSERT INTO votes (id, result_id, user_id, vote_type) SELECT 'vc-${tag}-' || k, 'res-${tag}-' || k, ?, 'upvote' FROM n`),
    ).bind(counted),
    env.DB.prepare(
      each(`INSERT INTO votes (id, result_id, user_id, vote_type)
            SELECT 'vf-${tag}-' || k, 'res-${tag}-' || k, 'farm-${tag}-' || k, 'upvote' FROM n`),
    ),
  ]);
  return async () => {
    const row = await env.DB.prepare(
      `SELECT count(*) AS n FROM identification_requests WHERE id LIKE 'req-${tag}-%' AND community_result_id = 'res-${tag}-' || substr(id, ${`req-${tag}-`.length + 1})`,
    ).first<{ n: number }>();
    return row?.n ?? 0;
  };
}

// Each test starts without a stored position, the earlier tests' farms out of the pass's sight.
beforeEach(async () => {
  await env.CACHE.delete(AGED_ACCOUNTS_CURSOR_KEY);
  await env.DB.prepare("UPDATE users SET is_active = 0 WHERE id LIKE 'farm-%'").run();
});

describe("the aged-accounts pass as the data grows", () => {
  it("1 200 accounts crossing together: each five-minute run recounts a bounded share under D1's per-invocation limit, and the next runs recount the rest, past the look-back", async () => {
    const now = Date.now();
    const n = 1200;
    const recounted = await farm(n, now - 7 * DAY_MS - 60_000);
    // More runs than fit in the look-back: the position, not the look-back, says where the rest are.
    const runs = Math.ceil(n / MAX_AGED_ACCOUNTS_PER_RUN);
    let total = 0;
    for (let run = 0; run < runs; run++) {
      const counting = countingEnv();
      const took = await recountAgedAccounts(counting.env, now + run * FIVE_MINUTES);
      expect(took).toBeLessThanOrEqual(MAX_AGED_ACCOUNTS_PER_RUN);
      // One read, one recount batch, one consensus batch per request it confirmed.
      expect(counting.counts.calls).toBeLessThanOrEqual(1 + 2 * MAX_AGED_ACCOUNTS_PER_RUN);
      expect(counting.counts.statements).toBeLessThan(D1_QUERIES_PER_INVOCATION / 2);
      total += took;
      expect(await recounted()).toBe(total);
    }
    expect(await recounted()).toBe(n);
    // Nothing left: the next run finds no one and recounts nothing again.
    expect(await recountAgedAccounts(env, now + runs * FIVE_MINUTES)).toBe(0);
  }, 240_000);

  it("a run that dies mid-way loses nothing: the next run goes on from the last stored position, and nothing is confirmed twice", async () => {
    const now = Date.now();
    const n = 2 * MAX_AGED_ACCOUNTS_PER_RUN + 10;
    const recounted = await farm(n, now - 7 * DAY_MS - 60_000);
    expect(await recountAgedAccounts(env, now)).toBe(MAX_AGED_ACCOUNTS_PER_RUN);
    // The second run's D1 fails at its recount (one batch for its accounts): it recounts none of
    // them and stores no position.
    const failing = envAroundBatches(async (batch) => {
      if (batch === 1) throw new Error("D1 went away");
    });
    await expect(recountAgedAccounts(failing.env, now + FIVE_MINUTES)).rejects.toThrow("D1 went away");
    expect(await recounted()).toBe(MAX_AGED_ACCOUNTS_PER_RUN);
    const confirmedAt = () =>
      env.DB.prepare(
        "SELECT id, community_confirmed_at AS at FROM identification_requests WHERE community_result_id IS NOT NULL ORDER BY id",
      )
        .all<{ id: string; at: string }>()
        .then((rows) => rows.results);
    const before = await confirmedAt();
    // The next runs take that share again (a recount is idempotent), then the rest.
    expect(await recountAgedAccounts(env, now + 2 * FIVE_MINUTES)).toBe(MAX_AGED_ACCOUNTS_PER_RUN);
    expect(await recountAgedAccounts(env, now + 3 * FIVE_MINUTES)).toBe(10);
    expect(await recounted()).toBe(n);
    // Recounted again, the requests confirmed before keep their confirmation time: not confirmed twice.
    const after = new Map((await confirmedAt()).map((row) => [row.id, row.at]));
    for (const row of before) expect(after.get(row.id)).toBe(row.at);
  });

  it("recounting many accounts at once (a forum topic deleted, its authors below `basic`) is one batch, not one per account", async () => {
    // Joined a moment ago: `new`, so their votes count before and after — the recount changes nothing and tells nobody.
    const joinedAt = Date.now() - 1000 - Math.floor(Math.random() * 60_000);
    const recounted = await farm(1200, joinedAt);
    const ids = (
      await env.DB.prepare("SELECT id FROM users WHERE id LIKE 'farm-%' AND date_joined = ?")
        .bind(new Date(joinedAt).toISOString())
        .all<{ id: string }>()
    ).results.map((row) => row.id);
    expect(ids).toHaveLength(1200);
    const counting = countingEnv();
    await recountAccounts(counting.env, ids);
    expect(counting.counts.calls).toBe(1);
    expect(counting.counts.statements).toBeLessThan(20);
    expect(await recounted()).toBe(0);
  }, 120_000);
});
