/**
 * Trust levels (src/services/users.ts, API.md §1), tested directly: each threshold needs both
 * its post count and its account age, checked at, just below and just above the boundary;
 * the stored level is a floor (no automatic downgrades).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { computeTrustLevel, createUser, TRUST_ORDER, type TrustLevel, trustLevelOf } from "../../src/services/users";

const DAY_MS = 86_400_000;
const NOW = Date.parse("2026-06-01T12:00:00.000Z");
/** An account `ageMs` old at NOW. */
const joined = (ageMs: number) => new Date(NOW - ageMs).toISOString();
const level = (postCount: number, ageMs: number, stored: TrustLevel = "new") =>
  computeTrustLevel({ postCount, dateJoined: joined(ageMs), trustLevel: stored }, NOW);

describe("computeTrustLevel: earned by posts and account age", () => {
  it("orders the levels new < basic < trusted < veteran", () => {
    expect(TRUST_ORDER).toEqual(["new", "basic", "trusted", "veteran"]);
  });

  it.each([
    // [posts, account age (ms), level]
    [0, 0, "new"],
    [0, 1000 * DAY_MS, "new"],
    [1000, 0, "new"],
    // basic: 5 posts and 7 days
    [4, 7 * DAY_MS, "new"],
    [5, 7 * DAY_MS - 1, "new"],
    [5, 7 * DAY_MS, "basic"],
    [6, 7 * DAY_MS + 1, "basic"],
    [1000, 7 * DAY_MS, "basic"],
    [24, 1000 * DAY_MS, "basic"],
    // trusted: 25 posts and 30 days
    [24, 30 * DAY_MS, "basic"],
    [25, 30 * DAY_MS - 1, "basic"],
    [25, 30 * DAY_MS, "trusted"],
    [26, 30 * DAY_MS + 1, "trusted"],
    [1000, 30 * DAY_MS, "trusted"],
    [99, 1000 * DAY_MS, "trusted"],
    // veteran: 100 posts and 90 days
    [99, 90 * DAY_MS, "trusted"],
    [100, 90 * DAY_MS - 1, "trusted"],
    [100, 90 * DAY_MS, "veteran"],
    [101, 90 * DAY_MS + 1, "veteran"],
    [100_000, 5000 * DAY_MS, "veteran"],
  ] as const)("%i posts, account %i ms old → %s", (posts, ageMs, expected) => {
    expect(level(posts, ageMs)).toBe(expected);
  });

  it.each([
    // [stored, posts, age, level]: the stored level is a floor, a higher earned level wins.
    ["basic", 0, 0, "basic"],
    ["trusted", 5, 7 * DAY_MS, "trusted"],
    ["veteran", 25, 30 * DAY_MS, "veteran"],
    ["veteran", 0, 0, "veteran"],
    ["basic", 25, 30 * DAY_MS, "trusted"],
    ["basic", 100, 90 * DAY_MS, "veteran"],
    ["trusted", 100, 90 * DAY_MS, "veteran"],
    ["trusted", 100, 90 * DAY_MS - 1, "trusted"],
  ] as const)("stored %s with %i posts, %i ms old → %s", (stored, posts, ageMs, expected) => {
    expect(level(posts, ageMs, stored)).toBe(expected);
  });

  it("an account joined in the future (clock skew) earns nothing", () => {
    expect(level(1000, -DAY_MS)).toBe("new");
  });
});

describe("trustLevelOf: the same rule on the stored row", () => {
  async function userWith(postCount: number, dateJoined: string, trustLevel: TrustLevel = "new") {
    const name = `trust${crypto.randomUUID().slice(0, 8)}`;
    const user = await createUser(env, { username: name, email: `${name}@example.com`, passwordHash: null });
    await env.DB.prepare("UPDATE users SET post_count = ?, date_joined = ?, trust_level = ? WHERE id = ?")
      .bind(postCount, dateJoined, trustLevel, user.id)
      .run();
    return user.id;
  }

  it.each([
    [5, 7 * DAY_MS - 1, "new", "new"],
    [5, 7 * DAY_MS, "new", "basic"],
    [25, 30 * DAY_MS, "new", "trusted"],
    [100, 90 * DAY_MS, "new", "veteran"],
    [0, 0, "trusted", "trusted"],
  ] as const)("%i posts, %i ms old, stored %s → %s", async (posts, ageMs, stored, expected) => {
    const id = await userWith(posts, joined(ageMs), stored);
    expect(await trustLevelOf(env, id, NOW)).toBe(expected);
  });

  it("is null for an unknown user", async () => {
    expect(await trustLevelOf(env, crypto.randomUUID(), NOW)).toBeNull();
  });
});
