import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { NotificationPayload } from "../../durable-objects/user-hub";
import worker from "../../src/index";
import { deliverDueReminders } from "../../src/services/reminders";
import { call, expectError, jsonWithStatus, type Page } from "../helpers/http";
import { eventually } from "../helpers/wait";
import { bearerUser } from "../helpers/users";
import { openSocket } from "../helpers/ws";

type Notification = NotificationPayload;

const HOUR = 3_600_000;

async function runCron(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: Date.now() }), env, ctx);
  await waitOnExecutionContext(ctx);
}

async function dueReminder(bearer: string, nickname = "Calathea", type = "water") {
  const plant = await jsonWithStatus<{ id: string }>(
    await call("/api/v1/plant-identification/plants/", { json: { nickname }, bearer }),
    201,
  );
  const first_due_at = new Date(Date.now() - HOUR).toISOString();
  const reminder = await jsonWithStatus<{ id: string; next_due_at: string; title: string }>(
    await call("/api/v1/reminders/", { json: { plant_id: plant.id, reminder_type: type, frequency: "weekly", first_due_at }, bearer }),
    201,
  );
  return { plantId: plant.id, reminder };
}

const list = async (bearer: string, query = "") =>
  jsonWithStatus<Page<Notification>>(await call(`/api/v1/notifications/${query}`, { bearer }), 200);
const unread = async (bearer: string) =>
  (await jsonWithStatus<{ unread_count: number }>(await call("/api/v1/notifications/unread-count/", { bearer }), 200)).unread_count;

describe("due reminders become notifications (cron)", () => {
  it("delivers exactly one notification per due occurrence, however often the cron runs", async () => {
    const u = await bearerUser();
    const { plantId, reminder } = await dueReminder(u.access);
    const notYet = await jsonWithStatus<{ id: string }>(
      await call("/api/v1/reminders/", { json: { plant_id: plantId, reminder_type: "mist", frequency: "daily" }, bearer: u.access }),
      201,
    );

    await runCron();
    await runCron();
    await Promise.all([runCron(), runCron()]); // overlapping runs
    const page = await list(u.access);
    expect(page.count).toBe(1);
    const [n] = page.results;
    expect(n).toMatchObject({
      type: "care_reminder",
      title: "Water Calathea",
      body: "Time to water Calathea.",
      data: { reminder_id: reminder.id, plant_id: plantId, due_at: reminder.next_due_at },
      is_read: false,
      read_at: null,
    });
    expect(n!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Math.abs(Date.parse(n!.created_at) - Date.now())).toBeLessThan(60_000);
    expect(page.results.some((x) => x.data.reminder_id === notYet.id)).toBe(false);

    // The next occurrence is a new one: skip moves the due time a week on; make it due and run again.
    const skipped = await jsonWithStatus<{ next_due_at: string }>(
      await call(`/api/v1/reminders/${reminder.id}/action/`, { json: { action: "skip" }, bearer: u.access }),
      200,
    );
    await runCron();
    expect((await list(u.access)).count).toBe(1);
    const nextDue = new Date(Date.now() - 60_000).toISOString();
    await env.DB.prepare("UPDATE care_reminders SET next_due_at = ? WHERE id = ?").bind(nextDue, reminder.id).run();
    await runCron();
    await runCron();
    const after = await list(u.access);
    expect(after.count).toBe(2);
    expect(after.results.map((x) => x.data.due_at)).toEqual([nextDue, reminder.next_due_at]); // newest first
    expect(skipped.next_due_at).not.toBe(nextDue);
  });

  it("skips inactive reminders and delivers once they are active and due", async () => {
    const u = await bearerUser();
    const { reminder } = await dueReminder(u.access, "Pothos", "fertilize");
    await call(`/api/v1/reminders/${reminder.id}/`, { method: "PATCH", json: { is_active: false }, bearer: u.access });
    await runCron();
    expect((await list(u.access)).count).toBe(0);
    await call(`/api/v1/reminders/${reminder.id}/`, { method: "PATCH", json: { is_active: true }, bearer: u.access });
    await runCron();
    const page = await list(u.access);
    expect(page.count).toBe(1);
    expect(page.results[0]!.body).toBe("Time to fertilize Pothos.");
  });

  it("is bounded per run, so a backlog drains over several runs", async () => {
    const u = await bearerUser();
    await Promise.all([1, 2, 3, 4, 5].map((i) => dueReminder(u.access, `Plant ${i}`)));
    await runCron(); // anything else due in this file goes first
    expect((await list(u.access)).count).toBe(5);

    const v = await bearerUser();
    await Promise.all([1, 2, 3, 4, 5].map((i) => dueReminder(v.access, `Plant ${i}`)));
    expect(await deliverDueReminders(env, undefined, { limit: 2 })).toBe(2);
    expect(await deliverDueReminders(env, undefined, { limit: 2 })).toBe(2);
    expect(await deliverDueReminders(env, undefined, { limit: 2 })).toBe(1);
    expect(await deliverDueReminders(env, undefined, { limit: 2 })).toBe(0);
    expect((await list(v.access)).count).toBe(5);
    // Not yet due at an earlier "now": nothing.
    await dueReminder(v.access, "Late");
    expect(await deliverDueReminders(env, undefined, { now: Date.now() - 2 * HOUR })).toBe(0);
  });

  it("pushes the new notification to the owner's live socket, once", async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    const socket = await openSocket("/ws/", { bearer: u.access });
    const otherSocket = await openSocket("/ws/", { bearer: other.access });
    await eventually(() => socket.messages.find((m) => m.type === "init"));
    const { reminder } = await dueReminder(u.access, "Ficus");
    await runCron();
    await runCron();
    const message = await eventually(() => socket.messages.find((m) => m.type === "notification"));
    const [stored] = (await list(u.access)).results;
    expect(message).toEqual({ type: "notification", notification: stored });
    expect((message.notification as Notification).data.reminder_id).toBe(reminder.id);
    await new Promise((r) => setTimeout(r, 200));
    expect(socket.messages.filter((m) => m.type === "notification")).toHaveLength(1);
    expect(otherSocket.messages.filter((m) => m.type === "notification")).toHaveLength(0);
    socket.ws.close(1000);
    otherSocket.ws.close(1000);
  });
});

describe("notifications API", () => {
  it("lists newest first, filters unread, counts unread, marks one and all read", async () => {
    const u = await bearerUser();
    await dueReminder(u.access, "A");
    await runCron();
    await dueReminder(u.access, "B");
    await dueReminder(u.access, "C");
    await runCron();
    const page = await list(u.access);
    expect(page.count).toBe(3);
    const sorted = [...page.results].sort((a, b) =>
      a.created_at === b.created_at ? (a.id < b.id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1,
    );
    expect(page.results.map((n) => n.id)).toEqual(sorted.map((n) => n.id));
    expect(page.results.at(-1)!.title).toBe("Water A");
    expect(await unread(u.access)).toBe(3);

    const target = page.results[1]!;
    const read = await jsonWithStatus<Notification>(
      await call(`/api/v1/notifications/${target.id}/read/`, { method: "POST", bearer: u.access }),
      200,
    );
    expect(read.is_read).toBe(true);
    expect(Math.abs(Date.parse(read.read_at!) - Date.now())).toBeLessThan(60_000);
    const again = await jsonWithStatus<Notification>(
      await call(`/api/v1/notifications/${target.id}/read/`, { method: "POST", bearer: u.access }),
      200,
    );
    expect(again.read_at).toBe(read.read_at);
    expect(await unread(u.access)).toBe(2);
    expect((await list(u.access, "?unread=true")).results.map((n) => n.id)).not.toContain(target.id);
    expect((await list(u.access, "?unread=false")).results.map((n) => n.id)).toEqual([target.id]);
    const small = await list(u.access, "?page_size=2");
    expect(small.results).toHaveLength(2);
    expect(small.next).toContain("page=2");

    const all = await jsonWithStatus<{ marked_read: number }>(
      await call("/api/v1/notifications/read-all/", { method: "POST", bearer: u.access }),
      200,
    );
    expect(all.marked_read).toBe(2);
    expect(await unread(u.access)).toBe(0);
    expect((await list(u.access, "?unread=true")).count).toBe(0);
    expect((await list(u.access)).results.every((n) => n.is_read && n.read_at)).toBe(true);
  });

  it("is owner only: 404 for another user's notification, 401 anonymous, 400 bad ids", async () => {
    const owner = await bearerUser();
    const stranger = await bearerUser();
    await dueReminder(owner.access);
    await runCron();
    const [n] = (await list(owner.access)).results;
    await expectError(await call(`/api/v1/notifications/${n!.id}/read/`, { method: "POST", bearer: stranger.access }), 404, "NOT_FOUND");
    expect((await list(stranger.access)).count).toBe(0);
    expect(await unread(stranger.access)).toBe(0);
    expect(
      (
        await jsonWithStatus<{ marked_read: number }>(
          await call("/api/v1/notifications/read-all/", { method: "POST", bearer: stranger.access }),
          200,
        )
      ).marked_read,
    ).toBe(0);
    expect(await unread(owner.access)).toBe(1);

    for (const [method, path] of [
      ["GET", "/api/v1/notifications/"],
      ["GET", "/api/v1/notifications/unread-count/"],
      ["POST", "/api/v1/notifications/read-all/"],
      ["POST", `/api/v1/notifications/${n!.id}/read/`],
    ] as const) {
      await expectError(await call(path, { method }), 401, "AUTHENTICATION_REQUIRED");
    }
    await expectError(await call("/api/v1/notifications/nope/read/", { method: "POST", bearer: owner.access }), 400, "VALIDATION_ERROR");
    await expectError(await call("/api/v1/notifications/?unread=maybe", { bearer: owner.access }), 400, "VALIDATION_ERROR");
  });
});
