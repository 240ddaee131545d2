// Hot paths whose SQL must seek through an index that holds what they read, not walk a table or
// an index of everything ever written. Read from SQLite's own EXPLAIN QUERY PLAN.
import { env } from "cloudflare:workers";
import { type SQL, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { keysetAfter } from "../../src/db/keyset";
import { OLDEST_POST_FIRST, ownPostsPage } from "../../src/services/account-export";
import { accountRecountStatements, agedAccountsBetween } from "../../src/services/community";
import { heldReadersPage, staleDeliveries } from "../../src/services/notification-delivery";

async function planOf(query: SQL): Promise<string[]> {
  const rows = await database(env).all<{ detail: string }>(sql`EXPLAIN QUERY PLAN ${query}`);
  return rows.map((r) => r.detail);
}

describe("query plans", () => {
  it("the Idempotency-Key cap (migration 0037's trigger, run by every claim) counts keys from an index alone", async () => {
    const { results } = await env.DB.prepare(
      "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'idempotency_keys_per_user_cap'",
    ).all<{
      sql: string;
    }>();
    const when = /\bWHEN\b([\s\S]*)\bBEGIN\b/.exec(results[0]?.sql ?? "")?.[1];
    expect(when).toBeDefined();
    // The trigger's condition as a plain query: NEW's columns become bound values.
    const condition = when!.replace(/NEW\.`(\w+)`/g, (_, column: string) => `'${column}-value'`);
    const plan = await planOf(sql.raw(`SELECT ${condition}`));
    const keys = plan.filter((line) => /idempotency_keys/.test(line));
    expect(keys.length, plan.join("\n")).toBe(2);
    // A key's row holds its stored answer (up to 512 KiB, before expires_at): reading the rows
    // to count them would read every answer the account holds, on every claim.
    for (const line of keys) expect(line, plan.join("\n")).toMatch(/^SEARCH idempotency_keys USING COVERING INDEX /);
  });

  it("gathering digests reads the held mail only, through a covering index", async () => {
    const plan = await planOf(heldReadersPage(""));
    const deliveries = plan.filter((line) => /notification_deliveries/.test(line));
    expect(deliveries.length, plan.join("\n")).toBeGreaterThan(0);
    for (const line of deliveries) {
      expect(line, plan.join("\n")).toMatch(/^SEARCH notification_deliveries USING COVERING INDEX \S+ \(status=\? AND user_id>\?\)$/);
    }
  });

  it("the five-minute recount of accounts whose age made their votes count seeks them, and their votes and proposals, by index", async () => {
    const now = Date.now();
    const plan = await planOf(agedAccountsBetween(now - 3_600_000, now));
    expect(plan.join("\n")).toMatch(/^SEARCH users USING INDEX users_new_by_age_idx \(date_joined>\? AND date_joined<\?\)$/m);
    // Going on from where the last run stopped: still a seek, from the stored position on.
    const after = await planOf(
      agedAccountsBetween(now - 3_600_000, now, { joined: new Date(now - 7 * 86_400_000).toISOString(), id: "x" }),
    );
    expect(after.join("\n")).toMatch(/^SEARCH users USING INDEX users_new_by_age_idx \(date_joined>\? AND date_joined<\?\)$/m);
    // Each account's recount: the requests it proposed for or voted on, found from its id.
    const ids = await planOf(accountRecountStatements("someone")[0]!);
    for (const line of ids.filter((l) => / (votes|identification_results|res|v) /.test(l) && /^(SCAN|SEARCH)/.test(l)))
      expect(line, ids.join("\n")).not.toMatch(/^SCAN (votes|identification_results|res|v)\b/);
    expect(ids.join("\n")).toMatch(/votes_user_idx/);
    expect(ids.join("\n")).toMatch(/results_proposed_by_idx/);
  });

  it("the five-minute sweep seeks the open deliveries, not every delivery ever written", async () => {
    const plan = await planOf(staleDeliveries(Date.now()));
    const deliveries = plan.filter((line) => /notification_deliveries/.test(line));
    expect(deliveries.length, plan.join("\n")).toBeGreaterThan(0);
    // Sent, skipped and digested rows are kept for good; the sweep must not read them.
    for (const line of deliveries)
      expect(line, plan.join("\n")).toMatch(/^SEARCH notification_deliveries USING INDEX notification_deliveries_open_idx \(status=\?/);
  });

  it("the organiser's cap on events not yet ended (migration 0036's triggers) reads only those events, from an index", async () => {
    for (const name of ["calendar_events_per_user_cap", "calendar_events_per_user_cap_revive"]) {
      const { results } = await env.DB.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?")
        .bind(name)
        .all<{ sql: string }>();
      const when = /\bWHEN\b([\s\S]*)\bBEGIN\b/.exec(results[0]?.sql ?? "")?.[1];
      expect(when, name).toBeDefined();
      const condition = when!.replace(/(NEW|OLD)\.`(\w+)`/g, (_, row: string, column: string) => `'${row}-${column}'`);
      const plan = await planOf(sql.raw(`SELECT ${condition}`));
      const events = plan.filter((line) => /calendar_events/.test(line));
      expect(events.length, plan.join("\n")).toBe(1);
      // Not every event the organiser ever held: past ones are skipped by the index's range.
      expect(events[0], plan.join("\n")).toMatch(/^SEARCH calendar_events USING COVERING INDEX \S+ \(organizer_id=\? AND ends_at>\?\)$/);
    }
  });

  it("a page of the account export's forum posts reads the user's posts in order from an index, without sorting them all", async () => {
    const after = keysetAfter(OLDEST_POST_FIRST, { id: "post-id", created_at: "2026-01-01T00:00:00.000Z" });
    for (const page of [ownPostsPage(env, "user-id", undefined, 500), ownPostsPage(env, "user-id", after, 500)]) {
      const plan = await planOf(page.getSQL());
      const posts = plan.filter((line) => /forum_posts/.test(line));
      expect(posts.length, plan.join("\n")).toBe(1);
      expect(posts[0], plan.join("\n")).toMatch(/^SEARCH forum_posts USING INDEX forum_posts_author_created_idx \(author_id=\?/);
      // Through (author_id) alone, every page sorted every post the user ever wrote.
      expect(plan.join("\n")).not.toMatch(/TEMP B-TREE/);
    }
  });
});
