// Hot paths whose SQL must seek through an index that holds what they read, not walk a table or
// an index of everything ever written. Read from SQLite's own EXPLAIN QUERY PLAN.
import { env } from "cloudflare:workers";
import { type SQL, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { heldReadersPage } from "../../src/services/notification-delivery";

async function planOf(query: SQL): Promise<string[]> {
  const rows = await database(env).all<{ detail: string }>(sql`EXPLAIN QUERY PLAN ${query}`);
  return rows.map((r) => r.detail);
}

describe("query plans", () => {
  it("gathering digests reads the held mail only, through a covering index", async () => {
    const plan = await planOf(heldReadersPage(""));
    const deliveries = plan.filter((line) => /notification_deliveries/.test(line));
    expect(deliveries.length, plan.join("\n")).toBeGreaterThan(0);
    for (const line of deliveries) {
      expect(line, plan.join("\n")).toMatch(/^SEARCH notification_deliveries USING COVERING INDEX \S+ \(status=\? AND user_id>\?\)$/);
    }
  });
});
