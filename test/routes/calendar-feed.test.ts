/**
 * The subscribed calendar (API.md §5b, issue 10 item 8): a signed URL that works with no headers,
 * holds the user's reminders and the events they go to, with VALARMs, and stops working when
 * revoked or replaced; forged and altered URLs get the same 404.
 */
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { parseEvents, unescapeText, unfold } from "../../src/lib/ical";
import { loggablePath } from "../../src/lib/logger";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { bearerUser, GOOD_PASSWORD } from "../helpers/users";

const DAY = 86_400_000;
type User = Awaited<ReturnType<typeof bearerUser>>;

async function withReminderAndEvent(u: User, organizer: User) {
  const plant = await json<{ id: string }>(
    await call("/api/v1/plant-identification/plants/", { json: { nickname: "Fern" }, bearer: u.access }),
    201,
  );
  await json(
    await call("/api/v1/reminders/", {
      json: { plant_id: plant.id, reminder_type: "water", frequency: "weekly", title: "Water the fern" },
      bearer: u.access,
    }),
    201,
  );
  const start = Date.now() + 5 * DAY;
  const event = await json<{ id: string }>(
    await call("/api/v1/calendar/events/", {
      json: {
        title: "Seed swap",
        description: "Bring seeds",
        start: new Date(start).toISOString(),
        end: new Date(start + 7_200_000).toISOString(),
        location: "Shed",
        privacy: "public",
      },
      bearer: organizer.access,
    }),
    201,
  );
  await json(await call(`/api/v1/calendar/events/${event.id}/rsvp/`, { json: { status: "going" }, bearer: u.access }), 200);
  return event.id;
}

/** GET a feed URL exactly as a calendar app would: the path only, no credentials. */
const fetchFeed = (url: string) => call(new URL(url).pathname);

describe("the calendar feed", () => {
  it("serves reminders and events with alarms at a signed URL, without credentials", async () => {
    const [u, organizer] = [await bearerUser(), await bearerUser()];
    const eventId = await withReminderAndEvent(u, organizer);
    const feed = await json<{ url: string }>(await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: u.access }), 201);
    expect(feed.url).toMatch(/^https:\/\/api\.test\/api\/v1\/reminders\/calendar-feed\/[0-9a-f-]{36}\.[\w-]{43}\/plant-community\.ics$/);

    const res = await fetchFeed(feed.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/calendar; charset=utf-8");
    expect(res.headers.get("Cache-Control")).toBe("private, no-store");
    const events = parseEvents(await res.text());
    const reminder = events.find((e) => e.SUMMARY === "Water the fern")!;
    expect(reminder).toMatchObject({ RRULE: "FREQ=WEEKLY", "VALARM:TRIGGER": "PT0S" });
    const swap = events.find((e) => e.UID === `event-${eventId}@plant-community`)!;
    expect(swap).toMatchObject({ SUMMARY: "Seed swap", LOCATION: "Shed", DESCRIPTION: "Bring seeds", "VALARM:TRIGGER": "-PT60M" });
    expect(swap.DTEND).toBeDefined();
    // The organizer's own feed does not hold the other user's reminder.
    const theirs = await json<{ url: string }>(
      await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: organizer.access }),
      201,
    );
    expect(parseEvents(await (await fetchFeed(theirs.url)).text()).map((e) => e.SUMMARY)).not.toContain("Water the fern");
  });

  it("answers 404 for forged and altered URLs, and after revocation or replacement", async () => {
    const u = await bearerUser();
    const { url } = await json<{ url: string }>(await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: u.access }), 201);
    const token = /calendar-feed\/([^/]+)\//.exec(url)![1]!;
    const [id, mac] = token.split(".") as [string, string];
    const base = "/api/v1/reminders/calendar-feed";
    for (const forged of [
      `${crypto.randomUUID()}.${mac}`,
      `${id}.${mac.slice(0, -1)}${mac.endsWith("A") ? "B" : "A"}`,
      `${id}.`,
      id,
      `${id}.${mac}.x`,
      "not-a-token",
    ]) {
      await expectError(await call(`${base}/${encodeURIComponent(forged)}/plant-community.ics`), 404, "NOT_FOUND");
    }
    // Replaced: the old URL ends, the new one works.
    const second = await json<{ url: string }>(await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: u.access }), 201);
    expect(second.url).not.toBe(url);
    await expectError(await fetchFeed(url), 404, "NOT_FOUND");
    expect((await fetchFeed(second.url)).status).toBe(200);
    // Revoked.
    expect((await call("/api/v1/reminders/calendar-feed/", { method: "DELETE", bearer: u.access })).status).toBe(204);
    await expectError(await fetchFeed(second.url), 404, "NOT_FOUND");
    await expectError(await call("/api/v1/reminders/calendar-feed/", { method: "DELETE", bearer: u.access }), 404, "NOT_FOUND");
  });

  it("a URL handed out in a session dies when the owner signs every session out, or changes the password", async () => {
    const u = await bearerUser();
    const stolen = await json<{ url: string }>(await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: u.access }), 201);
    expect((await fetchFeed(stolen.url)).status).toBe(200);
    expect((await call("/api/v1/auth/logout-all/", { method: "POST", bearer: u.access })).status).toBe(200);
    expect((await fetchFeed(stolen.url)).status).toBe(404);

    const again = await bearerUser();
    const feed = await json<{ url: string }>(await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: again.access }), 201);
    const changed = await call("/api/v1/auth/password/change/", {
      bearer: again.access,
      json: { old_password: GOOD_PASSWORD, new_password: "Fresh-Calendar-Pass-5" },
    });
    expect(changed.status).toBe(200);
    expect((await fetchFeed(feed.url)).status).toBe(404);
  });

  it("serves nothing for a deactivated owner, even while the feed's row is still there", async () => {
    const u = await bearerUser();
    const feed = await json<{ url: string }>(await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: u.access }), 201);
    await env.DB.prepare("UPDATE users SET is_active = 0 WHERE id = ?").bind(u.userId).run();
    expect((await fetchFeed(feed.url)).status).toBe(404);
    await env.DB.prepare("UPDATE users SET is_active = 1 WHERE id = ?").bind(u.userId).run();
    expect((await fetchFeed(feed.url)).status).toBe(200);
  });

  it("drops an event its organiser made private after someone answered it", async () => {
    const [u, organizer] = [await bearerUser(), await bearerUser()];
    const eventId = await withReminderAndEvent(u, organizer);
    const mine = await json<{ url: string }>(await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: u.access }), 201);
    const uids = async (url: string) => parseEvents(await (await fetchFeed(url)).text()).map((e) => e.UID);
    expect(await uids(mine.url)).toContain(`event-${eventId}@plant-community`);
    await json(
      await call(`/api/v1/calendar/events/${eventId}/`, { method: "PATCH", json: { privacy: "private" }, bearer: organizer.access }),
      200,
    );
    expect(await uids(mine.url)).not.toContain(`event-${eventId}@plant-community`);
  });

  it("an organiser's title, location and description cannot add properties or events to an attendee's feed", async () => {
    const [u, organizer] = [await bearerUser(), await bearerUser()];
    const title = "Swap\r\nATTENDEE:mailto:x@evil.example\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:Injected";
    const location = "Shed\nURL:https://evil.example\r\nBEGIN:VALARM";
    const description = "Bring seeds;\n\rORGANIZER:mailto:x@evil.example,\\n";
    const start = Date.now() + 5 * DAY;
    const event = await json<{ id: string }>(
      await call("/api/v1/calendar/events/", {
        json: {
          title,
          description,
          location,
          start: new Date(start).toISOString(),
          end: new Date(start + 3_600_000).toISOString(),
          privacy: "public",
        },
        bearer: organizer.access,
      }),
      201,
    );
    await json(await call(`/api/v1/calendar/events/${event.id}/rsvp/`, { json: { status: "going" }, bearer: u.access }), 200);
    const feed = await json<{ url: string }>(await call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: u.access }), 201);
    const text = await (await fetchFeed(feed.url)).text();
    expect(text.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/); // no bare CR or LF to start a line of its own
    const lines = unfold(text);
    expect(lines.filter((l) => /^(ATTENDEE|ORGANIZER|URL)[;:]/.test(l))).toEqual([]);
    expect(lines.filter((l) => l === "BEGIN:VEVENT")).toHaveLength(1);
    expect(lines.filter((l) => l === "BEGIN:VALARM")).toHaveLength(1); // the service's own alarm
    const [swap] = parseEvents(text);
    expect(unescapeText(swap!.SUMMARY!)).toBe("Swap\nATTENDEE:mailto:x@evil.example\nEND:VEVENT\nBEGIN:VEVENT\nSUMMARY:Injected");
    expect(unescapeText(swap!.LOCATION!)).toBe("Shed\nURL:https://evil.example\nBEGIN:VALARM");
  });

  it("keeps a feed's token out of the access log's path", () => {
    expect(loggablePath("/api/v1/reminders/calendar-feed/0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000.c2lnbmF0dXJl/plant-community.ics")).toBe(
      "/api/v1/reminders/calendar-feed/[token]/plant-community.ics",
    );
    expect(loggablePath("/api/v1/reminders/calendar-feed/")).toBe("/api/v1/reminders/calendar-feed/");
    // The feed URL pasted after another one (a calendar app given it twice): each token goes.
    const token = "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000.c2lnbmF0dXJl";
    expect(loggablePath(`/api/v1/reminders/calendar-feed/${token}/https:/api.example/api/v1/reminders/calendar-feed/${token}/x.ics`)).toBe(
      "/api/v1/reminders/calendar-feed/[token]/https:/api.example/api/v1/reminders/calendar-feed/[token]/x.ics",
    );
  });

  it("is issued and revoked only by its signed-in owner", async () => {
    await expectError(await call("/api/v1/reminders/calendar-feed/", { method: "POST" }), 401, "AUTHENTICATION_REQUIRED");
    await expectError(await call("/api/v1/reminders/calendar-feed/", { method: "DELETE" }), 401, "AUTHENTICATION_REQUIRED");
  });
});
