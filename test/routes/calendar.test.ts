import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectError, jsonWithStatus, type Page } from "../helpers/http";
import { bearerUser, registerWeb } from "../helpers/users";
import type { z } from "zod";
import type { EventSchema, SeasonalTaskSchema } from "../../src/routes/calendar";
import { notifyStartingEvents, upsertRsvp } from "../../src/services/calendar";
import { envRacingFirstBatch } from "../helpers/racing-env";

const BASE = "/api/v1/calendar";
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

type CalendarEvent = z.infer<typeof EventSchema>;

type SeasonalTask = z.infer<typeof SeasonalTaskSchema>;

type User = Awaited<ReturnType<typeof bearerUser>>;

async function withRole(role: string): Promise<User> {
  const u = await bearerUser();
  await env.DB.prepare("UPDATE users SET role = ? WHERE id = ?").bind(role, u.userId).run();
  return u;
}

/** An hour-long event starting `daysAhead` days from now. */
function eventBody(overrides: Record<string, unknown> = {}, daysAhead = 10) {
  const start = Date.now() + daysAhead * DAY;
  return {
    title: "Seed swap in the park",
    description: "Bring seeds, take seeds.",
    start: new Date(start).toISOString(),
    end: new Date(start + 2 * HOUR).toISOString(),
    location: "Community garden shed",
    privacy: "public",
    ...overrides,
  };
}

async function createEvent(user: User, overrides: Record<string, unknown> = {}, daysAhead = 10): Promise<CalendarEvent> {
  return jsonWithStatus<CalendarEvent>(await call(`${BASE}/events/`, { json: eventBody(overrides, daysAhead), bearer: user.access }), 201);
}

const rsvp = (user: User, id: string, status: string) => call(`${BASE}/events/${id}/rsvp/`, { json: { status }, bearer: user.access });

async function listedIds(bearer?: string): Promise<Set<string>> {
  const page = await jsonWithStatus<Page<CalendarEvent>>(await call(`${BASE}/events/?page_size=100&include_past=true`, { bearer }), 200);
  return new Set(page.results.map((e) => e.id));
}

/** Bad event bodies (overrides of eventBody) and the field each is refused on; times are relative to `now`. */
const badEvents = (now: number): [Record<string, unknown>, string][] => [
  [{ title: "ab" }, "title"],
  [{ title: "x".repeat(201) }, "title"],
  [{ description: "x".repeat(5001) }, "description"],
  [{ location: "x".repeat(201) }, "location"],
  [{ privacy: "friends" }, "privacy"],
  [{ capacity: 0 }, "capacity"],
  [{ capacity: 10_001 }, "capacity"],
  [{ capacity: 2.5 }, "capacity"],
  [{ start: new Date(now + 5 * DAY).toISOString(), end: new Date(now + 5 * DAY).toISOString() }, "end"],
  [{ start: new Date(now + 5 * DAY).toISOString(), end: new Date(now + 4 * DAY).toISOString() }, "end"],
  [{ start: new Date(now + 5 * DAY).toISOString(), end: new Date(now + 19 * DAY + 2 * HOUR).toISOString() }, "end"],
  [{ start: new Date(now - DAY).toISOString(), end: new Date(now + DAY).toISOString() }, "start"],
  [{ start: "2030-01-01T10:00:00" }, "start"],
  [{ start: "next tuesday" }, "start"],
];

describe("creating events", () => {
  it("stores times as UTC and answers with counts, spots and the caller's RSVP", async () => {
    const u = await bearerUser();
    const startMs = Date.UTC(new Date().getUTCFullYear() + 1, 4, 10, 7, 30);
    const res = await call(`${BASE}/events`, {
      bearer: u.access,
      json: {
        title: "Rose pruning workshop",
        start: new Date(startMs).toISOString().replace("07:30:00.000Z", "09:30:00+02:00"),
        end: new Date(startMs + 3 * HOUR).toISOString(),
        capacity: 12,
      },
    });
    const event = await jsonWithStatus<CalendarEvent>(res, 201);
    expect(event).toMatchObject({
      title: "Rose pruning workshop",
      start: new Date(startMs).toISOString(),
      end: new Date(startMs + 3 * HOUR).toISOString(),
      location: "",
      privacy: "public",
      capacity: 12,
      organizer: { id: u.userId, username: u.username },
      rsvp_counts: { going: 0, maybe: 0, not_going: 0 },
      spots_left: 12,
      my_rsvp: null,
    });
    const again = await jsonWithStatus<CalendarEvent>(await call(`${BASE}/events/${event.id}/`), 200);
    expect(again.start).toBe(new Date(startMs).toISOString());
  });

  it.each(badEvents(Date.now()).map(([overrides, field]) => ({ overrides, field, label: JSON.stringify(overrides).slice(0, 80) })))(
    "refuses $label with 400 on $field",
    async ({ overrides, field }) => {
      const u = await bearerUser();
      const body = await expectError(
        await call(`${BASE}/events/`, { json: eventBody(overrides), bearer: u.access }),
        400,
        "VALIDATION_ERROR",
      );
      expect(Object.keys(body.errors ?? {}), JSON.stringify(overrides)).toContain(field);
    },
  );

  it("refuses bad bodies with 400 and field errors", async () => {
    const u = await bearerUser();
    const now = Date.now();
    // The caller's own id as organizer_id is still not a field.
    const own = await expectError(
      await call(`${BASE}/events/`, { json: eventBody({ organizer_id: u.userId }), bearer: u.access }),
      400,
      "VALIDATION_ERROR",
    );
    expect(Object.keys(own.errors ?? {})).toContain("non_field_errors");
    // Exactly 14 days is allowed.
    const start = now + 5 * DAY;
    await createEvent(u, { start: new Date(start).toISOString(), end: new Date(start + 14 * DAY).toISOString() });
  });

  it("14 days on the organiser's clock include the hour clocks go back in them", async () => {
    const u = await bearerUser();
    // Berlin's clocks go back on 31 October 2027: 24 October 10:00 CEST to 7 November 10:00 CET.
    const across = await createEvent(u, { start: "2027-10-24T10:00:00+02:00", end: "2027-11-07T10:00:00+01:00" });
    expect(across.end).toBe("2027-11-07T09:00:00.000Z");
    const tooLong = await expectError(
      await call(`${BASE}/events/`, {
        json: eventBody({ start: "2027-10-24T10:00:00+02:00", end: "2027-11-07T10:00:01+01:00" }),
        bearer: u.access,
      }),
      400,
      "VALIDATION_ERROR",
    );
    expect(tooLong.errors?.end).toEqual(["An event may last at most 14 days."]);
    // A PATCH checks the merged times the same way.
    const res = await call(`${BASE}/events/${across.id}/`, {
      method: "PATCH",
      json: { start: "2027-10-24T09:00:00+02:00" },
      bearer: u.access,
    });
    expect((await expectError(res, 400, "VALIDATION_ERROR")).errors?.end).toEqual(["An event may last at most 14 days."]);
  });

  it("a time that is not one is refused for its format alone, not also as too late, in the past or before the start", async () => {
    const u = await bearerUser();
    const format = "Enter an ISO-8601 date-time with an offset, e.g. 2026-11-26T08:00:00Z.";
    const err = await expectError(
      await call(`${BASE}/events/`, { json: eventBody({ start: "next friday", end: "garbage" }), bearer: u.access }),
      400,
      "VALIDATION_ERROR",
    );
    expect(err.errors?.start).toEqual([format]);
    expect(err.errors?.end).toEqual([format]);
  });

  it("needs a user, and a cookie write needs the CSRF header", async () => {
    await expectError(await call(`${BASE}/events/`, { json: eventBody() }), 401, "AUTHENTICATION_REQUIRED");
    const web = await registerWeb();
    await expectError(await call(`${BASE}/events/`, { json: eventBody(), cookies: web.cookies }), 403, "CSRF_FAILED");
    const ok = await call(`${BASE}/events/`, { json: eventBody(), cookies: web.cookies, headers: { "X-CSRFToken": web.csrf } });
    expect(ok.status).toBe(201);
  });

  it("answers 400 for ids that are not UUIDs and 404 for unknown ones", async () => {
    const u = await bearerUser();
    await expectError(await call(`${BASE}/events/42/`), 400, "VALIDATION_ERROR");
    await expectError(
      await call(`${BASE}/events/42/`, { method: "PATCH", json: { title: "New title" }, bearer: u.access }),
      400,
      "VALIDATION_ERROR",
    );
    await expectError(await rsvp(u, "not-a-uuid", "going"), 400, "VALIDATION_ERROR");
    await expectError(await call(`${BASE}/events/${crypto.randomUUID()}/`), 404, "NOT_FOUND");
  });
});

describe("visibility", () => {
  it("a deactivated organiser's events are withdrawn: not listed, not readable, no RSVPs, no starting-soon notice; moderators still see them", async () => {
    const organiser = await bearerUser();
    const attendee = await bearerUser();
    const moderator = await withRole("moderator");
    const pub = await createEvent(organiser, { privacy: "public" });
    const soon = await createEvent(organiser, { privacy: "public" }, 0.01);
    expect((await rsvp(attendee, soon.id, "going")).status).toBe(200);
    await env.DB.prepare("UPDATE users SET is_active = 0 WHERE id = ?").bind(organiser.userId).run();
    expect(await listedIds()).not.toContain(pub.id);
    expect(await listedIds(attendee.access)).not.toContain(soon.id);
    await expectError(await call(`${BASE}/events/${pub.id}/`), 404, "NOT_FOUND");
    await expectError(await rsvp(attendee, pub.id, "going"), 404, "NOT_FOUND");
    expect(await listedIds(moderator.access)).toContain(pub.id);
    await notifyStartingEvents(env, Date.now());
    const notes = await jsonWithStatus<Page<{ type: string }>>(
      await call("/api/v1/notifications/?type=calendar_event_starting", { bearer: attendee.access }),
      200,
    );
    expect(notes.results).toEqual([]);
  });

  it("follows the privacy matrix for anonymous, others, organiser, RSVPed users and moderators", async () => {
    const organiser = await bearerUser();
    const other = await bearerUser();
    const attendee = await bearerUser();
    const moderator = await withRole("moderator");
    const pub = await createEvent(organiser, { privacy: "public" });
    const followers = await createEvent(organiser, { privacy: "followers" });
    const priv = await createEvent(organiser, { privacy: "private" });

    // The attendee has the followers event's id (shared by the organiser) and RSVPs to it.
    const joined = await jsonWithStatus<CalendarEvent>(await rsvp(attendee, followers.id, "maybe"), 200);
    expect(joined.my_rsvp).toBe("maybe");
    // Nobody but the organiser can reach a private event, not even to RSVP.
    await expectError(await rsvp(attendee, priv.id, "going"), 404, "NOT_FOUND");

    const matrix: [string, string | undefined, Record<string, boolean>][] = [
      ["anonymous", undefined, { pub: true, followers: false, priv: false }],
      ["other user", other.access, { pub: true, followers: false, priv: false }],
      ["organiser", organiser.access, { pub: true, followers: true, priv: true }],
      ["RSVPed user", attendee.access, { pub: true, followers: true, priv: false }],
      ["moderator", moderator.access, { pub: true, followers: true, priv: false }],
    ];
    const events = { pub, followers, priv };
    for (const [who, bearer, expected] of matrix) {
      const listed = await listedIds(bearer);
      for (const [name, visible] of Object.entries(expected)) {
        const id = events[name as keyof typeof events].id;
        expect(listed.has(id), `${who} lists ${name}`).toBe(visible);
        const res = await call(`${BASE}/events/${id}/`, { bearer });
        expect(res.status, `${who} GET ${name}`).toBe(visible ? 200 : 404);
        await res.body?.cancel();
      }
    }

    // Withdrawing the RSVP hides the followers event again.
    expect((await call(`${BASE}/events/${followers.id}/rsvp/`, { method: "DELETE", bearer: attendee.access })).status).toBe(204);
    await expectError(await call(`${BASE}/events/${followers.id}/`, { bearer: attendee.access }), 404, "NOT_FOUND");
  });

  it("hides ended events from the list unless include_past=true", async () => {
    const u = await bearerUser();
    const ev = await createEvent(u);
    await env.DB.prepare("UPDATE calendar_events SET starts_at = ?, ends_at = ? WHERE id = ?")
      .bind(new Date(Date.now() - 3 * DAY).toISOString(), new Date(Date.now() - 2 * DAY).toISOString(), ev.id)
      .run();
    const upcoming = await jsonWithStatus<Page<CalendarEvent>>(await call(`${BASE}/events/?page_size=100`), 200);
    expect(upcoming.results.map((e) => e.id)).not.toContain(ev.id);
    expect(await listedIds()).toContain(ev.id);
  });

  it("lists soonest first with pagination links", async () => {
    const u = await bearerUser();
    const later = await createEvent(u, { privacy: "private" }, 30);
    const sooner = await createEvent(u, { privacy: "private" }, 20);
    const page = await jsonWithStatus<Page<CalendarEvent>>(await call(`${BASE}/events/?page_size=100`, { bearer: u.access }), 200);
    const ids = page.results.map((e) => e.id);
    expect(ids.indexOf(sooner.id)).toBeLessThan(ids.indexOf(later.id));
    const first = await jsonWithStatus<Page<CalendarEvent>>(await call(`${BASE}/events/?page_size=1`, { bearer: u.access }), 200);
    expect(first.results).toHaveLength(1);
    expect(first.next).toContain("page=2");
    await expectError(await call(`${BASE}/events/?page_size=1000`), 400, "VALIDATION_ERROR");
  });
});

describe("changing and deleting events", () => {
  it("lets the organiser and moderators change events; others get 403 if they can see it, 404 if not", async () => {
    const organiser = await bearerUser();
    const other = await bearerUser();
    const moderator = await withRole("moderator");
    const admin = await withRole("admin");
    const pub = await createEvent(organiser);
    const followers = await createEvent(organiser, { privacy: "followers" });
    const priv = await createEvent(organiser, { privacy: "private" });
    const patch = (user: User | undefined, id: string, json: unknown) =>
      call(`${BASE}/events/${id}/`, { method: "PATCH", json, bearer: user?.access });

    await expectError(await patch(undefined, pub.id, { title: "Hijacked" }), 401, "AUTHENTICATION_REQUIRED");
    await expectError(await patch(other, pub.id, { title: "Hijacked" }), 403, "FORBIDDEN");
    await expectError(await patch(other, followers.id, { title: "Hijacked" }), 404, "NOT_FOUND");
    await expectError(await patch(other, priv.id, { title: "Hijacked" }), 404, "NOT_FOUND");
    await expectError(await patch(moderator, priv.id, { title: "Hijacked" }), 404, "NOT_FOUND");
    await expectError(await call(`${BASE}/events/${pub.id}/`, { method: "DELETE", bearer: other.access }), 403, "FORBIDDEN");

    const renamed = await jsonWithStatus<CalendarEvent>(
      await patch(organiser, priv.id, { title: "Private planting day", location: "Allotment 7", capacity: null }),
      200,
    );
    expect(renamed).toMatchObject({ title: "Private planting day", location: "Allotment 7", capacity: null });
    const moderated = await jsonWithStatus<CalendarEvent>(await patch(moderator, followers.id, { title: "Edited by a moderator" }), 200);
    expect(moderated.title).toBe("Edited by a moderator");

    // start/end are checked on the merged values.
    await expectError(
      await patch(organiser, pub.id, { end: new Date(Date.parse(pub.start) - HOUR).toISOString() }),
      400,
      "VALIDATION_ERROR",
    );
    await expectError(
      await patch(organiser, pub.id, { end: new Date(Date.parse(pub.start) + 15 * DAY).toISOString() }),
      400,
      "VALIDATION_ERROR",
    );
    await expectError(await patch(organiser, pub.id, { organizer_id: other.userId }), 400, "VALIDATION_ERROR");
    const moved = new Date(Date.parse(pub.start) + DAY);
    const rescheduled = await jsonWithStatus<CalendarEvent>(
      await patch(organiser, pub.id, { start: moved.toISOString(), end: new Date(moved.getTime() + HOUR).toISOString() }),
      200,
    );
    expect(rescheduled.start).toBe(moved.toISOString());

    expect((await call(`${BASE}/events/${followers.id}/`, { method: "DELETE", bearer: admin.access })).status).toBe(204);
    expect((await call(`${BASE}/events/${pub.id}/`, { method: "DELETE", bearer: organiser.access })).status).toBe(204);
    await expectError(await call(`${BASE}/events/${pub.id}/`), 404, "NOT_FOUND");
    await expectError(await call(`${BASE}/events/${followers.id}/`, { bearer: organiser.access }), 404, "NOT_FOUND");
  });
});

describe("RSVPs", () => {
  it("counts per status, shows the caller's own RSVP, upserts and withdraws", async () => {
    const organiser = await bearerUser();
    const [a, b, c] = await Promise.all([bearerUser(), bearerUser(), bearerUser()]);
    const ev = await createEvent(organiser, { capacity: 5 });
    await jsonWithStatus(await rsvp(a, ev.id, "going"), 200);
    await jsonWithStatus(await rsvp(b, ev.id, "maybe"), 200);
    const last = await jsonWithStatus<CalendarEvent>(await rsvp(c, ev.id, "not_going"), 200);
    expect(last).toMatchObject({ rsvp_counts: { going: 1, maybe: 1, not_going: 1 }, spots_left: 4, my_rsvp: "not_going" });

    // One RSVP per user: a second POST changes it.
    const changed = await jsonWithStatus<CalendarEvent>(await rsvp(b, ev.id, "going"), 200);
    expect(changed).toMatchObject({ rsvp_counts: { going: 2, maybe: 0, not_going: 1 }, my_rsvp: "going" });
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM calendar_rsvps WHERE event_id = ?").bind(ev.id).first<{ n: number }>();
    expect(rows?.n).toBe(3);

    const seenByA = await jsonWithStatus<CalendarEvent>(await call(`${BASE}/events/${ev.id}/`, { bearer: a.access }), 200);
    expect(seenByA.my_rsvp).toBe("going");
    const seenAnon = await jsonWithStatus<CalendarEvent>(await call(`${BASE}/events/${ev.id}/`), 200);
    expect(seenAnon).toMatchObject({ my_rsvp: null, rsvp_counts: { going: 2, maybe: 0, not_going: 1 } });

    expect((await call(`${BASE}/events/${ev.id}/rsvp/`, { method: "DELETE", bearer: a.access })).status).toBe(204);
    await expectError(await call(`${BASE}/events/${ev.id}/rsvp/`, { method: "DELETE", bearer: a.access }), 404, "NOT_FOUND");
    const after = await jsonWithStatus<CalendarEvent>(await call(`${BASE}/events/${ev.id}/`), 200);
    expect(after.rsvp_counts).toEqual({ going: 1, maybe: 0, not_going: 1 });

    await expectError(await rsvp(a, ev.id, "attending"), 400, "VALIDATION_ERROR");
    await expectError(await call(`${BASE}/events/${ev.id}/rsvp/`, { json: { status: "going" } }), 401, "AUTHENTICATION_REQUIRED");
  });

  it("refuses RSVPs to your own event, to started events and going to a full event", async () => {
    const organiser = await bearerUser();
    const [a, b] = await Promise.all([bearerUser(), bearerUser()]);
    const ev = await createEvent(organiser, { capacity: 1 });
    await expectError(await rsvp(organiser, ev.id, "going"), 400, "CANNOT_RSVP_OWN_EVENT");

    await jsonWithStatus(await rsvp(a, ev.id, "going"), 200);
    await expectError(await rsvp(b, ev.id, "going"), 409, "EVENT_FULL");
    // maybe/not_going are not limited, and the one going keeps their place when re-posting.
    const maybe = await jsonWithStatus<CalendarEvent>(await rsvp(b, ev.id, "maybe"), 200);
    expect(maybe).toMatchObject({ my_rsvp: "maybe", spots_left: 0 });
    await jsonWithStatus(await rsvp(a, ev.id, "going"), 200);
    // Capacity cannot drop below the going count; raising it opens a spot.
    const other = await createEvent(organiser, { capacity: 3 });
    await jsonWithStatus(await rsvp(a, other.id, "going"), 200);
    await jsonWithStatus(await rsvp(b, other.id, "going"), 200);
    await expectError(
      await call(`${BASE}/events/${other.id}/`, { method: "PATCH", json: { capacity: 1 }, bearer: organiser.access }),
      409,
      "CAPACITY_BELOW_GOING",
    );
    await jsonWithStatus(
      await call(`${BASE}/events/${other.id}/`, { method: "PATCH", json: { capacity: 2 }, bearer: organiser.access }),
      200,
    );
    // Moving from going to maybe frees the spot.
    await jsonWithStatus(await rsvp(a, ev.id, "not_going"), 200);
    const nowGoing = await jsonWithStatus<CalendarEvent>(await rsvp(b, ev.id, "going"), 200);
    expect(nowGoing.rsvp_counts.going).toBe(1);

    // An event that has started takes no RSVPs (set in the past directly: the API refuses past starts).
    await env.DB.prepare("UPDATE calendar_events SET starts_at = ?, ends_at = ? WHERE id = ?")
      .bind(new Date(Date.now() - HOUR).toISOString(), new Date(Date.now() + HOUR).toISOString(), ev.id)
      .run();
    await expectError(await rsvp(a, ev.id, "maybe"), 409, "EVENT_STARTED");
    await env.DB.prepare("UPDATE calendar_events SET starts_at = ?, ends_at = ? WHERE id = ?")
      .bind(new Date(Date.now() - 3 * DAY).toISOString(), new Date(Date.now() - 2 * DAY).toISOString(), ev.id)
      .run();
    await expectError(await rsvp(a, ev.id, "going"), 409, "EVENT_STARTED");
  });

  it("never exceeds capacity under concurrent going RSVPs", async () => {
    const organiser = await bearerUser();
    const users = await Promise.all(Array.from({ length: 12 }, () => bearerUser()));
    const ev = await createEvent(organiser, { capacity: 4 });
    const responses = await Promise.all(users.map((u) => rsvp(u, ev.id, "going")));
    const statuses = responses.map((r) => r.status);
    await Promise.all(responses.map((r) => r.body?.cancel()));
    expect(statuses.filter((s) => s === 200)).toHaveLength(4);
    expect(statuses.filter((s) => s === 409)).toHaveLength(8);
    const going = await env.DB.prepare("SELECT count(*) AS n FROM calendar_rsvps WHERE event_id = ? AND status = 'going'")
      .bind(ev.id)
      .first<{ n: number }>();
    expect(going?.n).toBe(4);
    const body = await jsonWithStatus<CalendarEvent>(await call(`${BASE}/events/${ev.id}/`), 200);
    expect(body).toMatchObject({ rsvp_counts: { going: 4 }, spots_left: 0 });
  });
});

describe("RSVPs racing a change of visibility", () => {
  // Each change commits after upsertRsvp found the event open to the caller, before its write (helper-61).
  it.each([
    ["an event made private", "UPDATE calendar_events SET privacy = 'private' WHERE id = ?1", "public"],
    ["a followers event the caller joined, made private", "UPDATE calendar_events SET privacy = 'private' WHERE id = ?1", "followers"],
    [
      "an event withdrawn (its organiser deactivated)",
      "UPDATE users SET is_active = 0 WHERE id = (SELECT organizer_id FROM calendar_events WHERE id = ?1)",
      "public",
    ],
  ])("%s just before the RSVP's write takes no RSVP: 404 NOT_FOUND", async (_, change, privacy) => {
    const [organiser, guest] = await Promise.all([bearerUser(), bearerUser()]);
    const ev = await createEvent(organiser, { privacy });
    // Joined while it was shared: the change must not let the guest's RSVP be rewritten either.
    if (privacy === "followers") await jsonWithStatus(await rsvp(guest, ev.id, "maybe"), 200);
    const racing = envRacingFirstBatch(() => env.DB.prepare(change).bind(ev.id).run());
    const guestUser = { id: guest.userId, username: guest.username, role: "user" as const };
    const refused = await upsertRsvp(racing.env, guestUser, ev.id, "going").catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(refused).toMatchObject({ status: 404, code: "NOT_FOUND" });
    const rows = await env.DB.prepare("SELECT status FROM calendar_rsvps WHERE event_id = ? AND user_id = ?")
      .bind(ev.id, guest.userId)
      .all<{ status: string }>();
    expect(rows.results.map((r) => r.status)).toEqual(privacy === "followers" ? ["maybe"] : []);
  });
});

describe("feed", () => {
  /** The first day (UTC) of the month two months from now, so the range is always in the future. */
  function monthStart(offsetMonths = 2): Date {
    const now = new Date();
    return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offsetMonths, 1));
  }
  const isoDay = (d: Date) => d.toISOString().slice(0, 10);

  it("validates the range", async () => {
    const from = monthStart();
    const feed = (q: string) => call(`${BASE}/feed/?${q}`);
    await expectError(await feed(""), 400, "VALIDATION_ERROR");
    await expectError(await feed(`from=${isoDay(from)}`), 400, "VALIDATION_ERROR");
    await expectError(await feed(`from=yesterday&to=${isoDay(from)}`), 400, "VALIDATION_ERROR");
    await expectError(await feed(`from=2026-02-30&to=2026-03-05`), 400, "VALIDATION_ERROR");
    await expectError(await feed(`from=${isoDay(from)}&to=${isoDay(new Date(from.getTime() - DAY))}`), 400, "VALIDATION_ERROR");
    // A bare `to` date includes that day: from + 91 days as a date spans 92 days, + 92 spans 93.
    expect((await feed(`from=${isoDay(from)}&to=${isoDay(new Date(from.getTime() + 91 * DAY))}`)).status).toBe(200);
    const tooLong = await expectError(
      await feed(`from=${isoDay(from)}&to=${isoDay(new Date(from.getTime() + 92 * DAY))}`),
      400,
      "VALIDATION_ERROR",
    );
    expect(tooLong.errors?.to).toBeDefined();
    await expectError(
      await feed(`from=${isoDay(from)}&to=${isoDay(new Date(from.getTime() + DAY))}&hemisphere=east`),
      400,
      "VALIDATION_ERROR",
    );
    const withOffset = await call(
      `${BASE}/feed/?from=${encodeURIComponent(`${isoDay(from)}T00:00:00+02:00`)}&to=${encodeURIComponent(`${isoDay(from)}T12:00:00Z`)}`,
    );
    const body = await jsonWithStatus<{ from: string; to: string }>(withOffset, 200);
    expect(body.from).toBe(new Date(from.getTime() - 2 * HOUR).toISOString());
  });

  it("a month asked for in the asker's own offset has that month's seasonal tasks, whichever side of UTC", async () => {
    type Months = { from: string; seasonal_tasks: { year: number; month: number }[] };
    const months = async (from: string, to: string) => {
      const body = await jsonWithStatus<Months>(
        await call(`${BASE}/feed/?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`),
        200,
      );
      return body.seasonal_tasks.map((m) => [m.year, m.month]);
    };
    // December in Berlin starts at 23:00 UTC on 30 November; in Kiritimati (+14) at 10:00 UTC.
    expect(await months("2026-12-01T00:00:00+01:00", "2027-01-01T00:00:00+01:00")).toEqual([[2026, 12]]);
    expect(await months("2026-12-01T00:00:00+14:00", "2027-01-01T00:00:00+14:00")).toEqual([[2026, 12]]);
    // December in Pago Pago (−11) ends at 11:00 UTC on 1 January.
    expect(await months("2026-12-01T00:00:00-11:00", "2027-01-01T00:00:00-11:00")).toEqual([[2026, 12]]);
    // A leap February, in India (+05:30), and bare dates (UTC) as before.
    expect(await months("2028-02-01T00:00:00+05:30", "2028-03-01T00:00:00+05:30")).toEqual([[2028, 2]]);
    expect(await months("2026-12-01", "2026-12-31")).toEqual([[2026, 12]]);
    expect(await months("2026-11-30T23:00:00Z", "2027-01-01T00:00:00Z")).toEqual([
      [2026, 11],
      [2026, 12],
    ]);
    // Bounds at offsets 25 hours apart: an instant range of a day whose ends read backwards on
    // their own clocks (1 December at +14, 30 November at −11) is still answered.
    expect(await months("2026-12-01T00:00:00+14:00", "2026-11-30T23:00:00-11:00")).toEqual(expect.any(Array));
  });

  it("returns the caller's visible events overlapping the range and that range's seasonal tasks", async () => {
    const organiser = await bearerUser();
    const other = await bearerUser();
    const from = monthStart();
    const to = new Date(from.getTime() + 40 * DAY); // touches this month and the next
    const at = (days: number, hours = 2, h0 = 10) => {
      const start = new Date(from.getTime() + days * DAY + h0 * HOUR);
      return { start: start.toISOString(), end: new Date(start.getTime() + hours * HOUR).toISOString() };
    };
    const inside = await createEvent(organiser, { title: "Inside the range", ...at(3) });
    const overlapsStart = await createEvent(organiser, { title: "Overlaps the start", ...at(-1, 30) });
    const before = await createEvent(organiser, { title: "Before the range", ...at(-3) });
    const after = await createEvent(organiser, { title: "After the range", ...at(41) });
    const priv = await createEvent(organiser, { title: "Private in range", privacy: "private", ...at(5) });

    type Feed = {
      from: string;
      to: string;
      hemisphere: string;
      events: CalendarEvent[];
      truncated: boolean;
      seasonal_tasks: { year: number; month: number; tasks: SeasonalTask[] }[];
    };
    const url = `${BASE}/feed/?from=${from.toISOString()}&to=${to.toISOString()}`;
    const mine = await jsonWithStatus<Feed>(await call(url, { bearer: organiser.access }), 200);
    const ids = mine.events.map((e) => e.id);
    expect(ids).toEqual(expect.arrayContaining([inside.id, overlapsStart.id, priv.id]));
    expect(ids).not.toContain(before.id);
    expect(ids).not.toContain(after.id);
    expect(ids.indexOf(overlapsStart.id)).toBeLessThan(ids.indexOf(inside.id));
    expect(mine.truncated).toBe(false);

    const theirs = await jsonWithStatus<Feed>(await call(url, { bearer: other.access }), 200);
    expect(theirs.events.map((e) => e.id)).toContain(inside.id);
    expect(theirs.events.map((e) => e.id)).not.toContain(priv.id);
    const anon = await jsonWithStatus<Feed>(await call(url), 200);
    expect(anon.events.map((e) => e.id)).not.toContain(priv.id);

    const next = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1));
    expect(mine.hemisphere).toBe("north");
    expect(mine.seasonal_tasks.map((m) => [m.year, m.month])).toEqual([
      [from.getUTCFullYear(), from.getUTCMonth() + 1],
      [next.getUTCFullYear(), next.getUTCMonth() + 1],
    ]);
    for (const m of mine.seasonal_tasks) {
      expect(m.tasks.length).toBeGreaterThan(0);
      expect(m.tasks.every((t) => t.month === m.month && t.hemisphere === "north")).toBe(true);
    }
    const south = await jsonWithStatus<Feed>(await call(`${url}&hemisphere=south`), 200);
    expect(south.seasonal_tasks.flatMap((m) => m.tasks).every((t) => t.hemisphere === "south")).toBe(true);
    expect(south.seasonal_tasks[0]!.tasks.map((t) => t.id)).not.toEqual(mine.seasonal_tasks[0]!.tasks.map((t) => t.id));
  });
});

describe("seasonal tasks", () => {
  it("covers every month in both hemispheres and filters by month", async () => {
    for (const hemisphere of ["north", "south"]) {
      const all = await jsonWithStatus<Page<SeasonalTask>>(
        await call(`${BASE}/seasonal-tasks/?hemisphere=${hemisphere}&page_size=100`),
        200,
      );
      expect(all.count).toBeGreaterThanOrEqual(12);
      expect(new Set(all.results.map((t) => t.month))).toEqual(new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
      expect(all.results.every((t) => t.hemisphere === hemisphere && t.title.length > 0)).toBe(true);
    }
    const north = await jsonWithStatus<Page<SeasonalTask>>(await call(`${BASE}/seasonal-tasks/?month=10&hemisphere=north`), 200);
    expect(north.results.length).toBeGreaterThan(0);
    expect(north.results.every((t) => t.month === 10 && t.hemisphere === "north")).toBe(true);
    expect(north.results.map((t) => t.title)).toContain("Plant garlic cloves");
    // Garlic goes in during autumn: October up north, April down south.
    const south = await jsonWithStatus<Page<SeasonalTask>>(await call(`${BASE}/seasonal-tasks/?month=4&hemisphere=south`), 200);
    expect(south.results.map((t) => t.title)).toContain("Plant garlic cloves");

    await expectError(await call(`${BASE}/seasonal-tasks/?month=13`), 400, "VALIDATION_ERROR");
    await expectError(await call(`${BASE}/seasonal-tasks/?month=0`), 400, "VALIDATION_ERROR");
    await expectError(await call(`${BASE}/seasonal-tasks/?hemisphere=east`), 400, "VALIDATION_ERROR");
  });
});
