/**
 * Events that became notifications in issue 10 (calendar changes, cancellations and "starting
 * soon"), and the in-app list's cursor pagination and type filter (item 7).
 */
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database, runBatch } from "../../src/db/client";
import { notifyStartingEvents } from "../../src/services/calendar";
import { insertNotifications, type NotificationType } from "../../src/services/notifications";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

useEmulators();
type User = Awaited<ReturnType<typeof bearerUser>>;
interface Listed {
  id: string;
  type: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
}
interface CursorPage {
  count: number;
  next: string | null;
  results: Listed[];
  next_cursor: string | null;
}

const list = async (u: User, query = "") => json<CursorPage>(await call(`/api/v1/notifications/${query}`, { bearer: u.access }), 200);

async function event(organizer: User, startInMs: number) {
  const start = Date.now() + startInMs;
  return json<{ id: string }>(
    await call("/api/v1/calendar/events/", {
      bearer: organizer.access,
      json: {
        title: "Seed swap",
        description: "Bring seeds.",
        start: new Date(start).toISOString(),
        end: new Date(start + 3_600_000).toISOString(),
        location: "The shed",
        privacy: "public",
      },
    }),
    201,
  );
}
const rsvp = (u: User, id: string, status: string) => call(`/api/v1/calendar/events/${id}/rsvp/`, { bearer: u.access, json: { status } });

describe("calendar notifications", () => {
  it("a change of time or place tells everyone going or maybe — not the organiser, not those not going; a title change tells no one", async () => {
    const [organizer, going, maybe, notGoing] = await Promise.all([bearerUser(), bearerUser(), bearerUser(), bearerUser()]);
    const ev = await event(organizer, 5 * 86_400_000);
    await rsvp(going, ev.id, "going");
    await rsvp(maybe, ev.id, "maybe");
    await rsvp(notGoing, ev.id, "not_going");
    await json(
      await call(`/api/v1/calendar/events/${ev.id}/`, { method: "PATCH", bearer: organizer.access, json: { title: "Big seed swap" } }),
      200,
    );
    expect((await list(going, "?type=calendar_event_changed")).results).toEqual([]);
    await json(
      await call(`/api/v1/calendar/events/${ev.id}/`, { method: "PATCH", bearer: organizer.access, json: { location: "The big shed" } }),
      200,
    );
    for (const u of [going, maybe]) {
      const [n] = (await list(u, "?type=calendar_event_changed")).results;
      expect(n).toMatchObject({ title: "Changed: Big seed swap", data: { event_id: ev.id, change: "updated" } });
      expect(n!.body).toContain("The big shed");
    }
    for (const u of [organizer, notGoing]) expect((await list(u, "?type=calendar_event_changed")).results).toEqual([]);
  });

  it("an event made private tells its earlier attendees nothing more: not its new place, nor that it starts", async () => {
    const [organizer, going] = await Promise.all([bearerUser(), bearerUser()]);
    const ev = await event(organizer, 30 * 60_000);
    await rsvp(going, ev.id, "going");
    await json(
      await call(`/api/v1/calendar/events/${ev.id}/`, { method: "PATCH", bearer: organizer.access, json: { privacy: "private" } }),
      200,
    );
    await json(
      await call(`/api/v1/calendar/events/${ev.id}/`, {
        method: "PATCH",
        bearer: organizer.access,
        json: { location: "My own garden, 4 Elm Row" },
      }),
      200,
    );
    await notifyStartingEvents(env);
    expect((await list(going, "?type=calendar_event_changed,calendar_event_starting")).results).toEqual([]);
  });

  it("a cancellation tells attendees before their RSVPs go with the event", async () => {
    const [organizer, going] = await Promise.all([bearerUser(), bearerUser()]);
    const ev = await event(organizer, 3 * 86_400_000);
    await rsvp(going, ev.id, "going");
    expect((await call(`/api/v1/calendar/events/${ev.id}/`, { method: "DELETE", bearer: organizer.access })).status).toBe(204);
    const [n] = (await list(going)).results;
    expect(n).toMatchObject({ type: "calendar_event_changed", title: "Cancelled: Seed swap", data: { change: "cancelled" } });
  });

  it("'starting soon' is told once per start, however many cron runs see it, and again when the event moves", async () => {
    const [organizer, going] = await Promise.all([bearerUser(), bearerUser()]);
    const ev = await event(organizer, 30 * 60_000);
    await rsvp(going, ev.id, "going");
    const later = await event(organizer, 3 * 3_600_000);
    await rsvp(going, later.id, "going");
    await notifyStartingEvents(env);
    await notifyStartingEvents(env, Date.now() + 5 * 60_000);
    const told = (await list(going, "?type=calendar_event_starting")).results;
    expect(told.map((n) => n.data.event_id)).toEqual([ev.id]);
    const moved = new Date(Date.now() + 45 * 60_000);
    await json(
      await call(`/api/v1/calendar/events/${ev.id}/`, {
        method: "PATCH",
        bearer: organizer.access,
        json: { start: moved.toISOString(), end: new Date(moved.getTime() + 3_600_000).toISOString() },
      }),
      200,
    );
    await notifyStartingEvents(env);
    expect((await list(going, "?type=calendar_event_starting")).results).toHaveLength(2);
  });
});

describe("the in-app list: cursor and type filter", () => {
  async function seed(u: User, n: number) {
    const db = database(env);
    const types: NotificationType[] = ["forum_reply", "care_reminder", "forum_mention"];
    const base = Date.parse("2026-11-01T00:00:00Z");
    for (let i = 0; i < n; i++) {
      await runBatch(db, [
        insertNotifications(
          db,
          types[i % 3]!,
          {
            userId: sql`${u.userId}`,
            title: sql`${`n${i}`}`,
            body: sql`''`,
            data: sql`'{}'`,
            dedupeKey: sql`${`cursor:${u.userId}:${i}`}`,
            // Two at each instant: the cursor must break ties by id.
            createdAt: new Date(base + Math.floor(i / 2) * 1000).toISOString(),
          },
          sql`FROM users u WHERE u.id = ${u.userId}`,
        ),
      ]);
    }
  }

  it("walks every notification exactly once, newest first, even when new ones arrive between pages", async () => {
    const u = await bearerUser();
    await seed(u, 11);
    const seen: string[] = [];
    let page = await list(u, "?page_size=4");
    expect(page.count).toBe(11);
    seen.push(...page.results.map((r) => r.title));
    let guard = 0;
    while (page.next_cursor && guard++ < 10) {
      // A notification arriving mid-walk is newer than every cursor: it does not shift the pages.
      if (guard === 1)
        await runBatch(database(env), [
          insertNotifications(
            database(env),
            "forum_reply",
            {
              userId: sql`${u.userId}`,
              title: sql`'late'`,
              body: sql`''`,
              data: sql`'{}'`,
              dedupeKey: sql`${`late:${u.userId}`}`,
              createdAt: new Date().toISOString(),
            },
            sql`FROM users u WHERE u.id = ${u.userId}`,
          ),
        ]);
      page = await list(u, `?page_size=4&cursor=${page.next_cursor}`);
      seen.push(...page.results.map((r) => r.title));
    }
    expect(seen).toHaveLength(11);
    expect(new Set(seen).size).toBe(11);
    expect(seen).not.toContain("late");
    expect(page.next).toBeNull();
  });

  it("filters by one or more types; an unknown type or a forged cursor is a 400", async () => {
    const u = await bearerUser();
    await seed(u, 9);
    expect((await list(u, "?type=care_reminder")).results.map((r) => r.type)).toEqual(Array(3).fill("care_reminder"));
    const two = await list(u, "?type=forum_reply,forum_mention&page_size=50");
    expect(two.count).toBe(6);
    await expectError(await call("/api/v1/notifications/?type=everything", { bearer: u.access }), 400, "VALIDATION_ERROR");
    await expectError(await call("/api/v1/notifications/?cursor=bm90LWEtY3Vyc29y", { bearer: u.access }), 400, "VALIDATION_ERROR");
    // A cursor is a position, not a key to someone else's list.
    const other = await bearerUser();
    const cursor = (await list(u, "?page_size=2")).next_cursor!;
    expect((await list(other, `?cursor=${cursor}`)).results).toEqual([]);
  });
});
