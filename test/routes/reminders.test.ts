import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseEvents, unescapeText, unfold } from "../../src/lib/ical";
import { call, expectError, jsonWithStatus, type Page } from "../helpers/http";
import { bearerUser, registerWeb } from "../helpers/users";
import type { z } from "zod";
import type { ReminderSchema } from "../../src/routes/reminders";

type Reminder = z.infer<typeof ReminderSchema>;

const DAY = 86_400_000;
const HOUR = 3_600_000;

async function newPlant(bearer: string, nickname = "Monstera"): Promise<string> {
  const plant = await jsonWithStatus<{ id: string }>(
    await call("/api/v1/plant-identification/plants/", { json: { nickname }, bearer }),
    201,
  );
  return plant.id;
}

async function newReminder(bearer: string, body: Record<string, unknown>): Promise<Reminder> {
  return jsonWithStatus<Reminder>(await call("/api/v1/reminders/", { json: body, bearer }), 201);
}

const near = (iso: string, expected: number, slackMs = 60_000) => expect(Math.abs(Date.parse(iso) - expected)).toBeLessThan(slackMs);

describe("care reminders: CRUD", () => {
  it("creates, reads, lists, updates and deletes a reminder on the caller's plant", async () => {
    const u = await bearerUser();
    const plant = await newPlant(u.access);
    const created = await newReminder(u.access, { plant_id: plant, reminder_type: "water", frequency: "weekly" });
    expect(created).toMatchObject({
      plant_id: plant,
      plant_name: "Monstera",
      reminder_type: "water",
      frequency: "weekly",
      custom_interval_days: null,
      interval_days: 7,
      title: "Water Monstera",
      is_active: true,
      streak: 0,
      last_completed_at: null,
    });
    near(created.next_due_at, Date.now() + 7 * DAY);

    const detail = await jsonWithStatus<Reminder>(await call(`/api/v1/reminders/${created.id}/`, { bearer: u.access }), 200);
    expect(detail).toEqual(created);

    const due = new Date(Date.now() + 2 * DAY).toISOString();
    const other = await newReminder(u.access, {
      plant_id: plant,
      reminder_type: "custom",
      frequency: "custom",
      custom_interval_days: 3,
      title: "  Rotate pot  ",
      first_due_at: due,
    });
    expect(other).toMatchObject({ title: "Rotate pot", next_due_at: due, interval_days: 3 });
    const secondPlant = await newPlant(u.access, "Fern");
    await newReminder(u.access, { plant_id: secondPlant, reminder_type: "mist", frequency: "daily" });

    const all = await jsonWithStatus<Page<Reminder>>(await call("/api/v1/reminders/", { bearer: u.access }), 200);
    expect(all.count).toBe(3);
    expect(all.results.map((r) => r.next_due_at)).toEqual([...all.results.map((r) => r.next_due_at)].sort()); // soonest first
    const forPlant = await jsonWithStatus<Page<Reminder>>(await call(`/api/v1/reminders/?plant=${plant}`, { bearer: u.access }), 200);
    expect(forPlant.results.map((r) => r.id).sort()).toEqual([created.id, other.id].sort());
    const soon = await jsonWithStatus<Page<Reminder>>(
      await call(`/api/v1/reminders/?due_before=${encodeURIComponent(new Date(Date.now() + 3 * DAY).toISOString())}`, { bearer: u.access }),
      200,
    );
    expect(soon.results.map((r) => r.id).sort()).toEqual([other.id, all.results.find((r) => r.frequency === "daily")!.id].sort());
    const paged = await jsonWithStatus<Page<Reminder>>(await call("/api/v1/reminders/?page_size=2", { bearer: u.access }), 200);
    expect(paged.results).toHaveLength(2);
    expect(paged.next).toContain("page=2");

    const patched = await jsonWithStatus<Reminder>(
      await call(`/api/v1/reminders/${created.id}/`, {
        method: "PATCH",
        json: { frequency: "custom", custom_interval_days: 10, is_active: false, title: "Soak" },
        bearer: u.access,
      }),
      200,
    );
    expect(patched).toMatchObject({
      frequency: "custom",
      custom_interval_days: 10,
      is_active: false,
      title: "Soak",
      next_due_at: created.next_due_at,
    });
    const back = await jsonWithStatus<Reminder>(
      await call(`/api/v1/reminders/${created.id}/`, { method: "PATCH", json: { frequency: "monthly" }, bearer: u.access }),
      200,
    );
    expect(back).toMatchObject({ frequency: "monthly", custom_interval_days: null, interval_days: null });
    const inactive = await jsonWithStatus<Page<Reminder>>(await call("/api/v1/reminders/?is_active=false", { bearer: u.access }), 200);
    expect(inactive.results.map((r) => r.id)).toEqual([created.id]);

    expect((await call(`/api/v1/reminders/${created.id}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    await expectError(await call(`/api/v1/reminders/${created.id}/`, { bearer: u.access }), 404, "NOT_FOUND");
  });

  it("works with cookie sessions (CSRF header required for writes)", async () => {
    const s = await registerWeb();
    const plant = await jsonWithStatus<{ id: string }>(
      await call("/api/v1/plant-identification/plants/", {
        json: { nickname: "Cactus" },
        cookies: s.cookies,
        headers: { "X-CSRFToken": s.csrf },
      }),
      201,
    );
    await expectError(
      await call("/api/v1/reminders/", { json: { plant_id: plant.id, reminder_type: "water", frequency: "weekly" }, cookies: s.cookies }),
      403,
      "CSRF_FAILED",
    );
    const ok = await call("/api/v1/reminders/", {
      json: { plant_id: plant.id, reminder_type: "water", frequency: "weekly" },
      cookies: s.cookies,
      headers: { "X-CSRFToken": s.csrf },
    });
    expect(ok.status).toBe(201);
  });

  it("validates bodies: custom interval rules, enums, title length, unknown fields, due time", async () => {
    const u = await bearerUser();
    const plant = await newPlant(u.access);
    const base = { plant_id: plant, reminder_type: "water", frequency: "weekly" };
    const bad = async (body: unknown, field: string) => {
      const err = await expectError(await call("/api/v1/reminders/", { json: body, bearer: u.access }), 400, "VALIDATION_ERROR");
      expect(Object.keys(err.errors ?? {})).toContain(field);
    };
    await bad({ ...base, frequency: "custom" }, "custom_interval_days");
    await bad({ ...base, custom_interval_days: 3 }, "custom_interval_days");
    await bad({ ...base, frequency: "custom", custom_interval_days: 366 }, "custom_interval_days");
    await bad({ ...base, frequency: "custom", custom_interval_days: 0 }, "custom_interval_days");
    await bad({ ...base, reminder_type: "sing" }, "reminder_type");
    await bad({ ...base, frequency: "hourly" }, "frequency");
    await bad({ ...base, title: "x".repeat(101) }, "title");
    await bad({ ...base, first_due_at: "tomorrow" }, "first_due_at");
    await bad({ ...base, first_due_at: "2001-01-01T00:00:00Z" }, "first_due_at");
    await bad({ ...base, plant_id: "123" }, "plant_id");
    await expectError(await call("/api/v1/reminders/", { json: { ...base, streak: 99 }, bearer: u.access }), 400, "VALIDATION_ERROR");
    await expectError(
      await call("/api/v1/reminders/", { body: "{", headers: { "Content-Type": "application/json" }, bearer: u.access }),
      400,
      "MALFORMED_REQUEST",
    );
    await expectError(await call("/api/v1/reminders/not-a-uuid/", { bearer: u.access }), 400, "VALIDATION_ERROR");
    await expectError(await call("/api/v1/reminders/?due_before=soon", { bearer: u.access }), 400, "VALIDATION_ERROR");

    const r = await newReminder(u.access, base);
    const patchErr = await expectError(
      await call(`/api/v1/reminders/${r.id}/`, { method: "PATCH", json: { frequency: "custom" }, bearer: u.access }),
      400,
      "VALIDATION_ERROR",
    );
    expect(patchErr.errors).toHaveProperty("custom_interval_days");
    await expectError(
      await call(`/api/v1/reminders/${r.id}/`, { method: "PATCH", json: { custom_interval_days: 4 }, bearer: u.access }),
      400,
      "VALIDATION_ERROR",
    );
    await expectError(
      await call(`/api/v1/reminders/${r.id}/`, { method: "PATCH", json: { plant_id: plant }, bearer: u.access }),
      400,
      "VALIDATION_ERROR",
    );
    // Offsets are accepted and stored as UTC.
    const moved = await jsonWithStatus<Reminder>(
      await call(`/api/v1/reminders/${r.id}/`, { method: "PATCH", json: { next_due_at: "2027-03-01T10:00:00+02:00" }, bearer: u.access }),
      200,
    );
    expect(moved.next_due_at).toBe("2027-03-01T08:00:00.000Z");
  });

  it("a due time that is not one is refused for its format alone, not also as out of range", async () => {
    const u = await bearerUser();
    const plant = await newPlant(u.access);
    const base = { plant_id: plant, reminder_type: "water", frequency: "weekly" };
    const err = await expectError(
      await call("/api/v1/reminders/", { json: { ...base, first_due_at: "tomorrow" }, bearer: u.access }),
      400,
      "VALIDATION_ERROR",
    );
    expect(err.errors?.first_due_at).toEqual(["Enter an ISO-8601 date-time, e.g. 2026-11-26T08:00:00Z."]);
    const r = await newReminder(u.access, base);
    const patchErr = await expectError(
      await call(`/api/v1/reminders/${r.id}/`, { method: "PATCH", json: { next_due_at: "soon" }, bearer: u.access }),
      400,
      "VALIDATION_ERROR",
    );
    expect(patchErr.errors?.next_due_at).toEqual(["Enter an ISO-8601 date-time, e.g. 2026-11-26T08:00:00Z."]);
  });

  it("answers 401 to anonymous callers and 404 for other users' plants and reminders", async () => {
    const owner = await bearerUser();
    const stranger = await bearerUser();
    const plant = await newPlant(owner.access);
    const r = await newReminder(owner.access, { plant_id: plant, reminder_type: "water", frequency: "daily" });

    for (const [method, path] of [
      ["GET", "/api/v1/reminders/"],
      ["GET", `/api/v1/reminders/${r.id}/`],
      ["GET", "/api/v1/reminders/calendar.ics"],
      ["GET", "/api/v1/reminders/preview/?days=7"],
    ] as const) {
      const res = await call(path, { method });
      await expectError(res, 401, "AUTHENTICATION_REQUIRED");
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    }
    expect((await call(`/api/v1/reminders/${r.id}/action/`, { json: { action: "complete" } })).status).toBe(401);

    await expectError(
      await call("/api/v1/reminders/", { json: { plant_id: plant, reminder_type: "water", frequency: "daily" }, bearer: stranger.access }),
      404,
      "NOT_FOUND",
    );
    await expectError(await call(`/api/v1/reminders/?plant=${plant}`, { bearer: stranger.access }), 404, "NOT_FOUND");
    await expectError(await call(`/api/v1/reminders/${r.id}/`, { bearer: stranger.access }), 404, "NOT_FOUND");
    await expectError(
      await call(`/api/v1/reminders/${r.id}/`, { method: "PATCH", json: { title: "mine" }, bearer: stranger.access }),
      404,
      "NOT_FOUND",
    );
    await expectError(
      await call(`/api/v1/reminders/${r.id}/action/`, { json: { action: "complete" }, bearer: stranger.access }),
      404,
      "NOT_FOUND",
    );
    await expectError(await call(`/api/v1/reminders/${r.id}/`, { method: "DELETE", bearer: stranger.access }), 404, "NOT_FOUND");
    expect((await jsonWithStatus<Page<Reminder>>(await call("/api/v1/reminders/", { bearer: stranger.access }), 200)).count).toBe(0);
    const strangerCal = await (await call("/api/v1/reminders/calendar.ics", { bearer: stranger.access })).text();
    expect(parseEvents(strangerCal)).toEqual([]);
    // The owner's reminder is untouched.
    expect((await jsonWithStatus<Reminder>(await call(`/api/v1/reminders/${r.id}/`, { bearer: owner.access }), 200)).title).toBe(
      "Water Monstera",
    );
  });

  it("a default title cut to 100 units never ends in half an emoji", async () => {
    const u = await bearerUser();
    const plant = await newPlant(u.access, `${"x".repeat(93)}🌿`);
    const r = await newReminder(u.access, { plant_id: plant, reminder_type: "water", frequency: "weekly" });
    expect(r.title).toBe(`Water ${"x".repeat(93)}`);
  });

  it("deleting the plant deletes its reminders", async () => {
    const u = await bearerUser();
    const plant = await newPlant(u.access);
    const r = await newReminder(u.access, { plant_id: plant, reminder_type: "prune", frequency: "monthly" });
    expect((await call(`/api/v1/plant-identification/plants/${plant}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    await expectError(await call(`/api/v1/reminders/${r.id}/`, { bearer: u.access }), 404, "NOT_FOUND");
    const row = await env.DB.prepare("SELECT count(*) AS n FROM care_reminders WHERE id = ?").bind(r.id).first<{ n: number }>();
    expect(row!.n).toBe(0);
  });
});

describe("care reminders: actions", () => {
  it("complete, skip and snooze move the schedule and the streak", async () => {
    const u = await bearerUser();
    const plant = await newPlant(u.access);
    const firstDue = new Date(Date.now() - 2 * HOUR).toISOString();
    const r = await newReminder(u.access, { plant_id: plant, reminder_type: "water", frequency: "weekly", first_due_at: firstDue });
    const act = (body: unknown) => call(`/api/v1/reminders/${r.id}/action/`, { json: body, bearer: u.access });

    const done = await jsonWithStatus<Reminder>(await act({ action: "complete" }), 200);
    expect(done.streak).toBe(1);
    near(done.last_completed_at!, Date.now());
    near(done.next_due_at, Date.now() + 7 * DAY);
    const done2 = await jsonWithStatus<Reminder>(await act({ action: "complete" }), 200);
    expect(done2.streak).toBe(2);

    const skipped = await jsonWithStatus<Reminder>(await act({ action: "skip" }), 200);
    expect(skipped.streak).toBe(0);
    expect(Date.parse(skipped.next_due_at) - Date.parse(done2.next_due_at)).toBe(7 * DAY);
    expect(skipped.last_completed_at).toBe(done2.last_completed_at);

    await jsonWithStatus<Reminder>(await act({ action: "complete" }), 200);
    const snoozed = await jsonWithStatus<Reminder>(await act({ action: "snooze", hours: 5 }), 200);
    expect(snoozed.streak).toBe(1);
    near(snoozed.next_due_at, Date.now() + 5 * HOUR);

    for (const body of [
      { action: "snooze" },
      { action: "snooze", hours: 0 },
      { action: "snooze", hours: 169 },
      { action: "snooze", hours: 1.5 },
      { action: "skip", hours: 2 },
      { action: "water" },
      {},
    ]) {
      await expectError(await act(body), 400, "VALIDATION_ERROR");
    }
  });
});

describe("care reminders: calendar and preview", () => {
  it("exports active reminders as RFC 5545 (CRLF, folding, escaping, RRULE per frequency)", async () => {
    const u = await bearerUser();
    const plant = await newPlant(u.access, "Big, bold; leafy \\ Monstera");
    const longTitle = `Water deeply, then drain; check the saucer \\ ${"🌱".repeat(20)}`;
    const due = "2026-12-31T09:00:00.000Z";
    const inFuture = (d: string) => (Date.parse(d) > Date.now() + DAY ? d : new Date(Date.now() + 10 * DAY).toISOString());
    const monthly = await newReminder(u.access, {
      plant_id: plant,
      reminder_type: "water",
      frequency: "monthly",
      title: longTitle,
      first_due_at: inFuture(due),
    });
    const daily = await newReminder(u.access, { plant_id: plant, reminder_type: "mist", frequency: "daily" });
    const biweekly = await newReminder(u.access, { plant_id: plant, reminder_type: "fertilize", frequency: "biweekly" });
    const custom = await newReminder(u.access, { plant_id: plant, reminder_type: "custom", frequency: "custom", custom_interval_days: 9 });
    const off = await newReminder(u.access, { plant_id: plant, reminder_type: "repot", frequency: "weekly" });
    await call(`/api/v1/reminders/${off.id}/`, { method: "PATCH", json: { is_active: false }, bearer: u.access });

    const res = await call("/api/v1/reminders/calendar.ics", { bearer: u.access });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/calendar; charset=utf-8");
    const text = await res.text();
    expect(text.endsWith("\r\n")).toBe(true);
    expect(text.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
    for (const line of text.split("\r\n")) expect(new TextEncoder().encode(line).length).toBeLessThanOrEqual(75);
    expect(text).toMatch(/\r\n [^\r\n]/); // the long title was folded
    const lines = unfold(text);
    expect(lines[0]).toBe("BEGIN:VCALENDAR");
    expect(lines).toContain("VERSION:2.0");
    expect(lines.some((l) => l.startsWith("PRODID:"))).toBe(true);

    const events = parseEvents(text);
    expect(events).toHaveLength(4);
    const byUid = Object.fromEntries(events.map((e) => [e.UID!, e]));
    expect(Object.keys(byUid).sort()).toEqual([monthly, daily, biweekly, custom].map((r) => `${r.id}@plant-community`).sort());
    for (const e of events) {
      expect(e.DTSTAMP).toMatch(/^\d{8}T\d{6}Z$/);
      expect(e.DTSTART).toMatch(/^\d{8}T\d{6}Z$/);
    }
    const m = byUid[`${monthly.id}@plant-community`]!;
    expect(unescapeText(m.SUMMARY!)).toBe(longTitle);
    expect(m.SUMMARY).toContain("Water deeply\\, then drain\\; check the saucer \\\\");
    expect(unescapeText(m.DESCRIPTION!)).toBe("Water: Big, bold; leafy \\ Monstera");
    expect(m.DTSTART).toBe(monthly.next_due_at.replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, ""));
    const day = new Date(monthly.next_due_at).getUTCDate();
    expect(m.RRULE).toBe(
      day <= 28 ? "FREQ=MONTHLY" : `FREQ=MONTHLY;BYMONTHDAY=${Array.from({ length: day - 27 }, (_, i) => day - i).join(",")};BYSETPOS=-1`,
    );
    expect(byUid[`${daily.id}@plant-community`]!.RRULE).toBe("FREQ=DAILY");
    expect(byUid[`${biweekly.id}@plant-community`]!.RRULE).toBe("FREQ=WEEKLY;INTERVAL=2");
    expect(byUid[`${custom.id}@plant-community`]!.RRULE).toBe("FREQ=DAILY;INTERVAL=9");
  });

  it("a Jan 31 monthly reminder exports the month-end rule", async () => {
    const u = await bearerUser();
    const plant = await newPlant(u.access);
    const r = await newReminder(u.access, { plant_id: plant, reminder_type: "fertilize", frequency: "monthly" });
    // Pin the series to a 31st directly: the API only accepts due times near now.
    await env.DB.prepare("UPDATE care_reminders SET next_due_at = '2027-01-31T09:00:00.000Z', anchor_day = 31 WHERE id = ?")
      .bind(r.id)
      .run();
    const [event] = parseEvents(await (await call("/api/v1/reminders/calendar.ics", { bearer: u.access })).text());
    expect(event).toMatchObject({ DTSTART: "20270131T090000Z", RRULE: "FREQ=MONTHLY;BYMONTHDAY=31,30,29,28;BYSETPOS=-1" });
    const skipped = await jsonWithStatus<Reminder>(
      await call(`/api/v1/reminders/${r.id}/action/`, { json: { action: "skip" }, bearer: u.access }),
      200,
    );
    expect(skipped.next_due_at).toBe("2027-02-28T09:00:00.000Z");
    const again = await jsonWithStatus<Reminder>(
      await call(`/api/v1/reminders/${r.id}/action/`, { json: { action: "skip" }, bearer: u.access }),
      200,
    );
    expect(again.next_due_at).toBe("2027-03-31T09:00:00.000Z");
  });

  it("previews the occurrences of the next N days, sorted, and validates days", async () => {
    const u = await bearerUser();
    const plant = await newPlant(u.access);
    const weekly = await newReminder(u.access, {
      plant_id: plant,
      reminder_type: "water",
      frequency: "weekly",
      first_due_at: new Date(Date.now() + DAY).toISOString(),
    });
    const custom = await newReminder(u.access, {
      plant_id: plant,
      reminder_type: "mist",
      frequency: "custom",
      custom_interval_days: 4,
      first_due_at: new Date(Date.now() + 2 * DAY).toISOString(),
    });
    const later = await newReminder(u.access, {
      plant_id: plant,
      reminder_type: "repot",
      frequency: "monthly",
      first_due_at: new Date(Date.now() + 60 * DAY).toISOString(),
    });
    const body = await jsonWithStatus<{
      days: number;
      count: number;
      truncated: boolean;
      results: { reminder_id: string; due_at: string; overdue: boolean }[];
    }>(await call("/api/v1/reminders/preview/?days=14", { bearer: u.access }), 200);
    expect(body.days).toBe(14);
    const weeklyDue = body.results.filter((o) => o.reminder_id === weekly.id).map((o) => Date.parse(o.due_at));
    expect(weeklyDue).toEqual([Date.parse(weekly.next_due_at), Date.parse(weekly.next_due_at) + 7 * DAY]);
    expect(body.results.filter((o) => o.reminder_id === custom.id)).toHaveLength(4); // +2, +6, +10, +14 days (created before the preview ran)
    expect(body.results.some((o) => o.reminder_id === later.id)).toBe(false);
    expect(body.count).toBe(6);
    expect(body.results.map((o) => o.due_at)).toEqual(body.results.map((o) => o.due_at).sort());
    expect(body.results.every((o) => !o.overdue)).toBe(true);

    const wide = await jsonWithStatus<{ results: { reminder_id: string }[] }>(
      await call("/api/v1/reminders/preview/?days=90", { bearer: u.access }),
      200,
    );
    expect(wide.results.filter((o) => o.reminder_id === later.id).length).toBeGreaterThanOrEqual(1);
    for (const days of ["0", "91", "x", "-3"])
      await expectError(await call(`/api/v1/reminders/preview/?days=${days}`, { bearer: u.access }), 400, "VALIDATION_ERROR");
  });
});

describe("care reminders keep the owner's clock (notification preferences' time_zone)", () => {
  /** A user whose clock is Berlin's, one plant, and a daily reminder first due at `firstDueAt`. */
  async function berlinDaily(firstDueAt: string) {
    const u = await bearerUser();
    const saved = await call("/api/v1/notifications/preferences/", {
      method: "PUT",
      bearer: u.access,
      json: { time_zone: "Europe/Berlin" },
    });
    expect(saved.status).toBe(200);
    const plant = await newPlant(u.access);
    const daily = await newReminder(u.access, { plant_id: plant, reminder_type: "water", frequency: "daily", first_due_at: firstDueAt });
    return { u, plant, daily };
  }

  it("skips across Berlin's summer-time change at 08:00 local, pins months on the local day, and exports TZID", async () => {
    // 29 March 2031 08:00 CET; clocks go forward on the 30th.
    const { u, plant, daily } = await berlinDaily("2031-03-29T07:00:00.000Z");
    const skipped = await jsonWithStatus<Reminder>(
      await call(`/api/v1/reminders/${daily.id}/action/`, { json: { action: "skip" }, bearer: u.access }),
      200,
    );
    expect(skipped.next_due_at).toBe("2031-03-30T06:00:00.000Z"); // 08:00 CEST
    expect(Object.keys(skipped)).not.toContain("time_zone");

    // 1 March 00:30 CET is 28 February in UTC: the series is pinned on the local 1st.
    const monthly = await newReminder(u.access, { plant_id: plant, reminder_type: "fertilize", frequency: "monthly" });
    const moved = await call(`/api/v1/reminders/${monthly.id}/`, {
      method: "PATCH",
      json: { next_due_at: "2031-02-28T23:30:00.000Z" },
      bearer: u.access,
    });
    expect(moved.status).toBe(200);
    const next = await jsonWithStatus<Reminder>(
      await call(`/api/v1/reminders/${monthly.id}/action/`, { json: { action: "skip" }, bearer: u.access }),
      200,
    );
    expect(next.next_due_at).toBe("2031-03-31T22:30:00.000Z"); // 1 April 00:30 CEST

    const text = await (await call("/api/v1/reminders/calendar.ics", { bearer: u.access })).text();
    const lines = unfold(text);
    expect(lines).toContain("DTSTART;TZID=Europe/Berlin:20310330T080000");
    expect(lines).toContain("DTSTART;TZID=Europe/Berlin:20310401T003000");
    expect(lines.filter((l) => l === "TZID:Europe/Berlin")).toHaveLength(1);
  });

  it("a daily 02:30 reminder skipped past the night clocks skip 02:30 goes back to 02:30, in the app and the feed", async () => {
    // 29 March 2031 02:30 CET; on the 30th Berlin's clocks skip from 02:00 to 03:00.
    const { u, daily } = await berlinDaily("2031-03-29T01:30:00.000Z");
    const skip = async () =>
      jsonWithStatus<Reminder>(await call(`/api/v1/reminders/${daily.id}/action/`, { json: { action: "skip" }, bearer: u.access }), 200);
    expect((await skip()).next_due_at).toBe("2031-03-30T01:30:00.000Z"); // 03:30 CEST: 02:30 read before the gap
    // The feed names the time the series keeps, which a calendar reads as that same 03:30.
    const feed = unfold(await (await call("/api/v1/reminders/calendar.ics", { bearer: u.access })).text());
    expect(feed).toContain("DTSTART;TZID=Europe/Berlin:20310330T023000");
    expect((await skip()).next_due_at).toBe("2031-03-31T00:30:00.000Z"); // 02:30 CEST again, not 03:30
  });
});
