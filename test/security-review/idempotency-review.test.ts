/**
 * Security review (helper-63) of Idempotency-Key: what one account can make D1 keep. Every key a
 * successful POST used stores its answer (up to 512 KiB) for 24 h, so an account that sends each
 * cheap POST with a fresh key would grow the table without bound; live keys are capped per account
 * (migration 0037), while retries of keys already held still replay.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_LIVE_KEYS_PER_USER } from "../../src/services/idempotency";
import { call, expectError } from "../helpers/http";
import { bearerUser } from "../helpers/users";

/** The documented cap (docs/api.md; MAX_LIVE_KEYS_PER_USER and migration 0037). */
const CAP = 1000;
const TOPICS = "/api/v1/forum/categories/houseplants/topics/";

function postTopic(bearer: string, key: string, title: string) {
  return call(TOPICS, {
    bearer,
    json: { title, body: "Is this leaf spot a fungus, or too much sun?" },
    headers: { "Idempotency-Key": key },
  });
}

/** `count` done keys of `userId`, written now and expiring at `expiresAt` (one INSERT … SELECT over a counter). */
async function seedKeys(userId: string, prefix: string, count: number, expiresAt: string) {
  await env.DB.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
     INSERT INTO idempotency_keys (user_id, key, fingerprint, claim, state, locked_until, status, headers, body, created_at, expires_at)
     SELECT ?, ? || i, 'fp', 'claim-' || i, 'done', '2000-01-01T00:00:00.000Z', 201, '[]', '{}', ?, ? FROM n`,
  )
    .bind(count, userId, prefix, new Date().toISOString(), expiresAt)
    .run();
}

async function topicsTitled(title: string): Promise<number> {
  return (await env.DB.prepare("SELECT count(*) AS n FROM forum_topics WHERE title = ?").bind(title).first<{ n: number }>())!.n;
}

describe("Idempotency-Key storage per account", () => {
  it("refuses a new key beyond the account's live keys (429 with Retry-After), running nothing; held keys still replay and expired ones do not count", async () => {
    const u = await bearerUser();
    const held = `held-${Date.now()}`;
    const heldTitle = `Held ${held}`;
    expect((await postTopic(u.access, held, heldTitle)).status).toBe(201);
    // Expired keys housekeeping has not dropped yet are not the account's any more.
    await seedKeys(u.userId, "old-", 50, new Date(Date.now() - 60_000).toISOString());
    const later = new Date(Date.now() + 3_600_000).toISOString();
    await seedKeys(u.userId, "live-", CAP - 1, later);

    const title = `Over the cap ${held}`;
    const refused = await postTopic(u.access, `new-${held}`, title);
    const retryAfter = Number(refused.headers.get("Retry-After"));
    await expectError(refused, 429, "IDEMPOTENCY_KEY_LIMIT");
    expect(retryAfter).toBeGreaterThan(3000);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(await topicsTitled(title)).toBe(0);
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE user_id = ?")
      .bind(u.userId)
      .first<{ n: number }>();
    expect(stored!.n).toBe(CAP + 50);

    // A retry of a key the account holds is no new row: it replays as before.
    const retry = await postTopic(u.access, held, heldTitle);
    expect(retry.status).toBe(201);
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await topicsTitled(heldTitle)).toBe(1);

    // Another account is not held back by this one's keys.
    const other = await bearerUser();
    expect((await postTopic(other.access, `new-${held}`, `Other ${held}`)).status).toBe(201);

    // Once one of the account's keys has expired, a new key runs.
    await env.DB.prepare("UPDATE idempotency_keys SET expires_at = ? WHERE user_id = ? AND key = 'live-1'")
      .bind(new Date(Date.now() - 1000).toISOString(), u.userId)
      .run();
    expect((await postTopic(u.access, `new-${held}`, title)).status).toBe(201);
    expect(await topicsTitled(title)).toBe(1);
    expect(MAX_LIVE_KEYS_PER_USER).toBe(CAP);
  });
});
