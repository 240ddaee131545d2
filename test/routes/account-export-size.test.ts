// GET /api/v1/auth/user/export/ for an account with thousands of rows: the answer is whole and
// valid JSON (docs/api.md "Exporting your data", its limits).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { exportAccountStream, NOTIFICATION_PAGE, notificationPages } from "../../src/services/account-export";
import { envAroundBatches } from "../helpers/racing-env";
import { call, jsonWithStatus as json } from "../helpers/http";
import { bearerUser } from "../helpers/users";

const EXPORT = "/api/v1/auth/user/export/";
const MANY = 5000;
/** The longest note a plant may have (routes/collections.ts). */
const NOTE = 2000;

describe("GET auth/user/export/ with many rows", () => {
  it(`holds all ${MANY} plants (each with a ${NOTE}-character note) and ${MANY} notifications, as one valid JSON document`, async () => {
    const u = await bearerUser();
    const shelf = await json<{ id: string }>(
      await call("/api/v1/plant-identification/collections/", { bearer: u.access, json: { name: "Greenhouse", is_public: false } }),
      201,
    );
    // Seeded in SQL, a few statements: the API would take 10 000 requests.
    await env.DB.batch([
      env.DB.prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
         INSERT INTO user_plants (id, user_id, collection_id, nickname, notes, created_at, updated_at)
         SELECT printf('bulk-plant-%05d-', i) || ?1, ?1, ?2, printf('Plant %d', i), printf('%d:', i) || substr(replace(hex(zeroblob(?4)), '0', 'x'), 1, ?4 - length(printf('%d:', i))),
                strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', i)), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         FROM n`,
      ).bind(u.userId, shelf.id, MANY, NOTE),
      env.DB.prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO notifications (id, user_id, type, title, body, data, created_at)
         SELECT printf('bulk-note-%05d-', i) || ?1, ?1, 'care_reminder', printf('Water plant %d', i), 'Time to water it: the soil should be dry to a finger''s depth.',
                json_object('plant_id', printf('bulk-plant-%05d-', i) || ?1), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', i))
         FROM n`,
      ).bind(u.userId, MANY),
    ]);

    const started = Date.now();
    const res = await call(EXPORT, { bearer: u.access });
    const text = await res.text();
    const took = Date.now() - started;
    expect(res.status, text.slice(0, 500)).toBe(200);
    console.log(`export of ${MANY} plants and ${MANY} notifications: ${text.length} bytes in ${took} ms`);
    const body = JSON.parse(text) as {
      collections: { id: string; plants: { id: string; notes: string }[] }[];
      notifications: { id: string; title: string }[];
    };
    const plants = body.collections.find((c) => c.id === shelf.id)!.plants;
    expect(plants).toHaveLength(MANY);
    expect(new Set(plants.map((p) => p.id)).size).toBe(MANY);
    expect(plants.every((p) => p.notes.length === NOTE)).toBe(true);
    expect(body.notifications).toHaveLength(MANY);
    expect(new Set(body.notifications.map((n) => n.id)).size).toBe(MANY);
  }, 120_000);

  /** `count` care reminder notifications for `userId`, `perInstant` to each created_at (ties across pages), with an email delivery each. */
  async function seedNotifications(userId: string, count: number, perInstant: number) {
    await env.DB.batch([
      env.DB.prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO notifications (id, user_id, type, title, data, in_app, created_at)
         SELECT printf('paged-%05d-', i) || ?1, ?1, 'care_reminder', printf('Water plant %d', i), '{}', 0,
                strftime('%Y-%m-%dT%H:%M:%fZ', '2026-01-01', printf('+%d seconds', (i - 1) / ?3))
         FROM n`,
      ).bind(userId, count, perInstant),
      env.DB.prepare(
        `INSERT INTO notification_deliveries (id, notification_id, user_id, channel, type, dedupe_key, status, sent_at)
         SELECT 'd-' || id, id, user_id, 'email', type, 'd-' || id, 'sent', created_at FROM notifications WHERE user_id = ?1
         AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.notification_id = notifications.id)`,
      ).bind(userId),
    ]);
  }

  it("reads the notifications a page at a time, newest first, none repeated or skipped where pages share a created_at", async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    await seedNotifications(u.userId, 23, 4);
    await seedNotifications(other.userId, 5, 1);

    const pages: { id: string; created_at: string; channels: { channel: string; status: string; sent_at: string | null }[] }[][] = [];
    for await (const page of notificationPages(env, u.userId, 5)) pages.push(page);
    expect(pages.map((p) => p.length)).toEqual([5, 5, 5, 5, 3]);
    const ids = pages.flat().map((n) => n.id);
    const expected = Array.from({ length: 23 }, (_, i) => `paged-${String(i + 1).padStart(5, "0")}-${u.userId}`)
      .map((id, i) => ({ id, at: Math.floor(i / 4) }))
      .sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : -1))
      .map((x) => x.id);
    expect(ids).toEqual(expected);
    // Each with its own delivery only (a page's deliveries are read with it).
    for (const n of pages.flat()) expect(n.channels).toEqual([{ channel: "email", status: "sent", sent_at: n.created_at }]);
  });

  it(`answers more notifications than a page (${NOTIFICATION_PAGE}) whole, in one valid document`, async () => {
    const u = await bearerUser();
    const count = NOTIFICATION_PAGE * 2 + 7;
    await seedNotifications(u.userId, count, 50);
    const res = await call(EXPORT, { bearer: u.access });
    const text = await res.text();
    expect(res.status, text.slice(0, 500)).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    const body = JSON.parse(text) as { notifications: { id: string }[]; account: { id: string } };
    expect(body.account.id).toBe(u.userId);
    expect(body.notifications).toHaveLength(count);
    expect(new Set(body.notifications.map((n) => n.id)).size).toBe(count);
  });

  it("ends the download with an error, not a document that looks whole, when the database fails after the first page", async () => {
    const u = await bearerUser();
    await seedNotifications(u.userId, NOTIFICATION_PAGE + 3, 50);
    // The account's one batch and the first page of notifications go through; the second page fails.
    const failing = envAroundBatches(async (n) => {
      if (n > 2) throw new Error("D1 unavailable");
    });
    const { body } = await exportAccountStream(failing.env, { id: u.userId, username: u.username, role: "user" });
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const read = async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        text += value;
      }
    };
    await expect(read()).rejects.toThrow("D1 unavailable");
    expect(failing.batches()).toBe(3);
    expect(text).toContain('"notifications":[');
    expect(() => JSON.parse(text)).toThrow();
  });
});
