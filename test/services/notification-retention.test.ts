/**
 * The in-app list's keeping (services/notifications.ts purgeOldNotifications, run by the cron's
 * housekeeping): read notifications go after 90 days, unread ones after a year, with their
 * delivery records; nothing newer, and at most `limit` a run, oldest first.
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { purgeOldNotifications } from "../../src/services/notifications";

const DAY = 86_400_000;
const NOW = Date.parse("2026-12-06T12:00:00.000Z");

async function userWith(rows: { id: string; ageDays: number; read: boolean }[]) {
  const userId = crypto.randomUUID();
  const at = (days: number) => new Date(NOW - days * DAY).toISOString();
  await env.DB.batch([
    env.DB.prepare("INSERT INTO users (id, username, email) VALUES (?, ?, ?)").bind(
      userId,
      `keep_${userId.slice(0, 8)}`,
      `${userId}@example.com`,
    ),
    ...rows.flatMap((r) => [
      env.DB.prepare(
        "INSERT INTO notifications (id, user_id, type, title, is_read, created_at) VALUES (?, ?, 'care_reminder', 'Water', ?, ?)",
      ).bind(r.id, userId, r.read ? 1 : 0, at(r.ageDays)),
      env.DB.prepare(
        "INSERT INTO notification_deliveries (id, notification_id, user_id, channel, type, dedupe_key, status) VALUES (?, ?, ?, 'email', 'care_reminder', ?, 'sent')",
      ).bind(crypto.randomUUID(), r.id, userId, `retention:${r.id}`),
    ]),
  ]);
  return userId;
}

const left = async (userId: string) =>
  (await env.DB.prepare("SELECT id FROM notifications WHERE user_id = ? ORDER BY id").bind(userId).all<{ id: string }>()).results.map(
    (r) => r.id,
  );
const deliveriesLeft = async (userId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM notification_deliveries WHERE user_id = ?").bind(userId).first<{ n: number }>())!.n;

describe("notification retention", () => {
  it("deletes read notifications after 90 days and unread ones after a year, with their deliveries", async () => {
    const userId = await userWith([
      { id: "a-read-89", ageDays: 89, read: true },
      { id: "b-read-91", ageDays: 91, read: true },
      { id: "c-unread-91", ageDays: 91, read: false },
      { id: "d-unread-364", ageDays: 364, read: false },
      { id: "e-unread-366", ageDays: 366, read: false },
      { id: "f-read-400", ageDays: 400, read: true },
    ]);
    await purgeOldNotifications(env, NOW);
    expect(await left(userId)).toEqual(["a-read-89", "c-unread-91", "d-unread-364"]);
    expect(await deliveriesLeft(userId)).toBe(3);
    // Nothing more to do: a second sweep deletes nothing of this user's.
    await purgeOldNotifications(env, NOW);
    expect(await left(userId)).toEqual(["a-read-89", "c-unread-91", "d-unread-364"]);
  });

  it("deletes at most `limit` a run, oldest first", async () => {
    const userId = await userWith([
      { id: "n-200", ageDays: 200, read: true },
      { id: "n-300", ageDays: 300, read: true },
      { id: "n-500", ageDays: 500, read: false },
    ]);
    // Older rows of other tests' users may go first; sweep until this user's oldest is gone.
    while ((await left(userId)).includes("n-500")) await purgeOldNotifications(env, NOW, 1);
    expect(await left(userId)).toEqual(["n-200", "n-300"]);
    await purgeOldNotifications(env, NOW, 1);
    expect(await left(userId)).toEqual(["n-200"]);
  });

  it("runs in the cron's housekeeping", async () => {
    const userId = await userWith([
      { id: "cron-old", ageDays: 120, read: true },
      { id: "cron-new", ageDays: 1, read: true },
    ]);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: NOW }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await left(userId)).toEqual(["cron-new"]);
  });
});
