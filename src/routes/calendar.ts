/**
 * Garden calendar (API.md §5): `/api/v1/calendar/` — community events (list, create, detail,
 * update, delete), RSVPs, a date-range feed and seasonal task templates. Reading is open to
 * anonymous callers (public events only); writing needs a user. Visibility and RSVP rules live
 * in services/calendar.ts. Creating and changing events is rate limited per user
 * (CALENDAR_EVENT_RATE_LIMIT), except a moderator's changes.
 */
import type { Context } from "hono";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { apiFields } from "../lib/fields";
import { userIdOf } from "../middleware/auth";
import { enforceRateLimit } from "../services/rate-limits";
import { z } from "@hono/zod-openapi";
import { createRouter, routeSet, noContentAfter } from "./router";
import {
  CALENDAR_MODERATOR_ROLES,
  calendarFeed,
  createEvent,
  deleteEvent,
  deleteRsvp,
  EVENT_PRIVACY,
  eventBody,
  listEvents,
  FEED_MAX_EVENTS,
  MAX_EVENT_DURATION_MS,
  MAX_UPCOMING_EVENTS,
  HEMISPHERES,
  RSVP_STATUSES,
  listSeasonalTasks,
  TASK_TYPES,
  updateEvent,
  upsertRsvp,
  visibleEvent,
  type SeasonalTaskRow,
} from "../services/calendar";
import { pageOf, PaginationQuery } from "./pagination";
import { BooleanQuery, jsonBody, pageSchema, errorResponse, requestJson, noContent, IdParam } from "./schemas";
import { DAY_MS } from "../lib/durations";

const tags = ["Garden calendar"];
const FEED_MAX_DAYS = 92;
/** Clock skew allowed when a new start time must not be in the past. */
const START_GRACE_MS = 5 * 60_000;
const errors = { 400: errorResponse(400, "Invalid input"), 404: errorResponse(404, "Not found (or not visible to you)") };
const authErrors = { ...errors, 401: errorResponse(401, "Not signed in") };
const rateLimited = errorResponse(429, "Too many events created or changed; see Retry-After", "RATE_LIMITED");

/** Events created and changed share one budget per user: each is listed to others, and a change notifies attendees. */
function limitEventWrites(c: Context<AppEnv>): Promise<void> {
  return enforceRateLimit(c.env, `calendar-event:user:${userIdOf(c)}`, getConfig(c.env).CALENDAR_EVENT_RATE_LIMIT);
}

// ---------------------------------------------------------------------------------------------
// Schemas

const RsvpStatus = z.enum(RSVP_STATUSES);

export const EventSchema = z
  .object({
    id: z.uuid(),
    title: z.string(),
    description: z.string(),
    start: z.string().openapi({ format: "date-time" }),
    end: z.string().openapi({ format: "date-time" }),
    location: z.string(),
    privacy: z.enum(EVENT_PRIVACY).openapi({
      description:
        "public: everyone. followers: the organiser, people with an RSVP and moderators (no follow graph yet — share the id; " +
        "any signed-in user with it may RSVP and then sees the event). private: the organiser only.",
    }),
    capacity: z.number().int().nullable().openapi({ description: "Maximum `going` RSVPs; null for unlimited." }),
    organizer: z.object({ id: z.uuid(), username: z.string() }),
    rsvp_counts: z.object({ going: z.number().int(), maybe: z.number().int(), not_going: z.number().int() }),
    spots_left: z.number().int().nullable().openapi({ description: "capacity − going; null for unlimited." }),
    my_rsvp: RsvpStatus.nullable().openapi({ description: "The caller's own RSVP; null when none or anonymous." }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("CalendarEvent");

/** ISO-8601 with an offset (stored as UTC), at most five years ahead. */
const eventTime = z.iso
  .datetime({ offset: true, message: "Enter an ISO-8601 date-time with an offset, e.g. 2026-11-26T08:00:00Z.", abort: true })
  .refine((v) => Date.parse(v) <= Date.now() + 5 * 366 * DAY_MS, "Must be within five years from now.");
/** A start set by create or PATCH may not lie in the past. */
const startTime = eventTime.refine((v) => Date.parse(v) >= Date.now() - START_GRACE_MS, "Start cannot be in the past.");

const fields = {
  title: z
    .string()
    .trim()
    .min(3, "Ensure this field has at least 3 characters.")
    .max(200, "Ensure this field has no more than 200 characters."),
  description: z.string().max(5000, "Ensure this field has no more than 5000 characters."),
  location: z.string().trim().max(200, "Ensure this field has no more than 200 characters."),
  privacy: z.enum(EVENT_PRIVACY),
  capacity: z.number().int().min(1, "Between 1 and 10000.").max(10_000, "Between 1 and 10000."),
};

const startBeforeEnd = (body: { start?: string; end?: string }, ctx: z.RefinementCtx) => {
  if (body.start === undefined || body.end === undefined) return;
  const s = Date.parse(body.start);
  const e = Date.parse(body.end);
  if (!(s < e)) ctx.addIssue({ code: "custom", path: ["end"], message: "Must be after start." });
  else if (e - s > MAX_EVENT_DURATION_MS) ctx.addIssue({ code: "custom", path: ["end"], message: "An event may last at most 14 days." });
};

const EventCreate = z
  .object({
    title: fields.title,
    description: fields.description.optional(),
    start: startTime,
    end: eventTime,
    location: fields.location.optional(),
    privacy: fields.privacy.optional().openapi({
      description:
        "Default public. `public`: everyone, anonymous readers included; `followers`: shared by its id (there is no follow graph): the organiser, whoever has RSVP'd, and moderators see it, and anyone signed in who has the id may RSVP; `private`: the organiser only.",
    }),
    capacity: fields.capacity.nullable().optional().openapi({ description: "1..10000; absent or null for unlimited." }),
  })
  .strict()
  .superRefine(startBeforeEnd)
  .openapi("CalendarEventCreate");

const EventPatch = z
  .object({
    title: fields.title,
    description: fields.description,
    start: startTime,
    end: eventTime,
    location: fields.location,
    privacy: fields.privacy,
    capacity: fields.capacity.nullable().openapi({ description: "null removes the limit; below the current `going` count → 409." }),
  })
  .partial()
  .strict()
  .superRefine(startBeforeEnd)
  .openapi("CalendarEventUpdate");

const RsvpBody = z.object({ status: RsvpStatus }).strict().openapi("CalendarRsvp");

export const SeasonalTaskSchema = z
  .object({
    id: z.uuid(),
    month: z.number().int().openapi({ description: "1..12" }),
    hemisphere: z.enum(HEMISPHERES),
    title: z.string(),
    description: z.string(),
    task_type: z.enum(TASK_TYPES),
  })
  .openapi("SeasonalTask");

const FeedSchema = z
  .object({
    from: z.string().openapi({ format: "date-time" }),
    to: z.string().openapi({ format: "date-time" }),
    hemisphere: z.enum(HEMISPHERES),
    events: z.array(EventSchema),
    truncated: z.boolean().openapi({ description: `More than ${FEED_MAX_EVENTS} events overlap the range; narrow it.` }),
    seasonal_tasks: z.array(z.object({ year: z.number().int(), month: z.number().int(), tasks: z.array(SeasonalTaskSchema) })),
  })
  .openapi("CalendarFeed");

/** A day (`YYYY-MM-DD`, UTC) or an ISO-8601 date-time with an offset. */
const feedBound = z.union([z.iso.date(), z.iso.datetime({ offset: true })], {
  error: "Enter a date (YYYY-MM-DD) or an ISO-8601 date-time with an offset.",
});

/**
 * A bare date as a bound: `from` means 00:00 UTC that day, `to` includes the whole day. `local`:
 * the same range as the asker's clock reads it (a date-time's own offset; UTC for a bare date),
 * which decides the months whose seasonal tasks are wanted.
 */
function feedRange(q: { from: string; to: string }): { from: Date; to: Date; local: { from: Date; to: Date } } {
  // A bare date is read as UTC; a date-time without its offset is its wall clock, read as UTC.
  const wall = (v: string, endOfDay: boolean) =>
    v.length === 10 ? Date.parse(`${v}T00:00:00Z`) + (endOfDay ? DAY_MS : 0) : Date.parse(v.replace(/(?:Z|[+-]\d{2}:\d{2})$/i, "Z"));
  const instant = (v: string, endOfDay: boolean) => (v.length === 10 ? wall(v, endOfDay) : Date.parse(v));
  return {
    from: new Date(instant(q.from, false)),
    to: new Date(instant(q.to, true)),
    local: { from: new Date(wall(q.from, false)), to: new Date(wall(q.to, true)) },
  };
}

const FeedQuery = z
  .object({
    from: feedBound.openapi({
      description:
        "Range start (inclusive). A bare date means 00:00 UTC that day; for a day in your own zone send a date-time with your offset (2026-12-01T00:00:00+01:00).",
    }),
    to: feedBound.openapi({
      description:
        "Range end (exclusive). A bare date includes that whole day (UTC). The months the range touches at the offsets given pick the seasonal tasks.",
    }),
    hemisphere: z.enum(HEMISPHERES).default("north").openapi({ description: "For the seasonal tasks (default north)." }),
  })
  .superRefine((q, ctx) => {
    const { from, to } = feedRange(q);
    if (!(from < to)) ctx.addIssue({ code: "custom", path: ["to"], message: "Must be after from." });
    else if (to.getTime() - from.getTime() > FEED_MAX_DAYS * DAY_MS)
      ctx.addIssue({ code: "custom", path: ["to"], message: `The range may span at most ${FEED_MAX_DAYS} days.` });
  });

// ---------------------------------------------------------------------------------------------
// Routes

function toUtc<T extends { start?: string; end?: string }>(body: T): T {
  return {
    ...body,
    ...(body.start !== undefined ? { start: new Date(body.start).toISOString() } : {}),
    ...(body.end !== undefined ? { end: new Date(body.end).toISOString() } : {}),
  };
}

export function calendarRoutes() {
  const app = createRouter();
  const plain = routeSet({ tags, errors: {} });
  const auth = routeSet({ tags, errors: authErrors });
  const open = routeSet({ tags, errors });
  const plainSignedIn = plain.signedIn();
  const mine = auth.signedIn();

  const getEvents = plain
    .get(`/events`, "Events you can see, soonest first (anonymous: public events only); ended events only with include_past=true")
    .io(
      { query: PaginationQuery.extend({ include_past: BooleanQuery.optional() }) },
      { 200: jsonBody(pageSchema(EventSchema, "CalendarEventPage"), "Page of events"), 400: errors[400] },
    );
  app.openapi(getEvents, async (c) => {
    const { page, page_size, include_past } = c.req.valid("query");
    const opts = { includePast: include_past === "true", now: Date.now() };
    const { count, rows } = await listEvents(c.env, c.get("user"), opts, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(eventBody)), 200);
  });

  const postEvents = plainSignedIn.post(`/events`, "Organise an event (start < end, at most 14 days, start not in the past)").io(
    { body: requestJson(EventCreate) },
    {
      201: jsonBody(EventSchema, "Created"),
      400: errors[400],
      401: authErrors[401],
      404: errorResponse(404, "Deleted (by you elsewhere, or a moderator) before the answer was read back"),
      409: errorResponse(409, `You already organise ${MAX_UPCOMING_EVENTS} events that have not ended (EVENT_LIMIT)`),
      429: rateLimited,
    },
  );
  app.openapi(postEvents, async (c) => {
    await limitEventWrites(c);
    const body = toUtc(c.req.valid("json"));
    const row = await createEvent(c.env, c.get("user")!, {
      title: body.title,
      description: body.description ?? "",
      start: body.start,
      end: body.end,
      location: body.location ?? "",
      privacy: body.privacy ?? "public",
      capacity: body.capacity ?? null,
    });
    return c.json(eventBody(row), 201);
  });

  // Fixed paths: none collide with `events/{id}`, but keep them before the parameterised ones.
  const getFeed = plain
    .get(
      `/feed`,
      `Your visible events overlapping [from, to) (at most ${FEED_MAX_DAYS} days) and the seasonal tasks of the months it touches`,
    )
    .io({ query: FeedQuery }, { 200: jsonBody(FeedSchema, "Feed"), 400: errors[400] });
  app.openapi(getFeed, async (c) => {
    const query = c.req.valid("query");
    const { from, to, local } = feedRange(query);
    const hemisphere = query.hemisphere;
    const feed = await calendarFeed(c.env, c.get("user"), from, to, hemisphere, local);
    return c.json(
      {
        from: from.toISOString(),
        to: to.toISOString(),
        hemisphere,
        events: feed.events.map(eventBody),
        truncated: feed.truncated,
        seasonal_tasks: feed.seasonal.map((m) => ({ ...m, tasks: m.tasks.map(seasonalTaskBody) })),
      },
      200,
    );
  });

  const getSeasonalTasks = plain
    .get(`/seasonal-tasks`, "Seasonal gardening task templates, by month (all months when absent) and hemisphere (default north)")
    .io(
      {
        query: PaginationQuery.extend({
          month: z.coerce.number().int().min(1, "Between 1 and 12.").max(12, "Between 1 and 12.").optional(),
          hemisphere: z.enum(HEMISPHERES).default("north"),
        }),
      },
      { 200: jsonBody(pageSchema(SeasonalTaskSchema, "SeasonalTaskPage"), "Page of tasks"), 400: errors[400] },
    );
  app.openapi(getSeasonalTasks, async (c) => {
    const { page, page_size, month, hemisphere } = c.req.valid("query");
    const { count, rows } = await listSeasonalTasks(c.env, { hemisphere, month }, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(seasonalTaskBody)), 200);
  });

  const getEventsById = open
    .get(`/events/{id}`, "One event you can see, with RSVP counts and your own RSVP")
    .io({ params: IdParam }, { 200: jsonBody(EventSchema, "Event") });
  app.openapi(getEventsById, async (c) => c.json(eventBody(await visibleEvent(c.env, c.get("user"), c.req.valid("param").id)), 200));

  const patchEventsById = mine.patch(`/events/{id}`, "Change an event (its organiser or a moderator)").io(
    { params: IdParam, body: requestJson(EventPatch) },
    {
      200: jsonBody(EventSchema, "Updated"),
      403: errorResponse(403, "Visible to you but not yours"),
      409: errorResponse(
        409,
        `Capacity below the current going count (CAPACITY_BELOW_GOING), or an ended event moved back into the future while its organiser has ${MAX_UPCOMING_EVENTS} not ended (EVENT_LIMIT)`,
      ),
      429: rateLimited,
    },
  );
  app.openapi(patchEventsById, async (c) => {
    // A moderator cleaning up a burst of abusive events must not run out of budget half way.
    if (!CALENDAR_MODERATOR_ROLES.includes(c.get("user")!.role)) await limitEventWrites(c);
    const row = await updateEvent(c.env, c.get("user")!, c.req.valid("param").id, toUtc(c.req.valid("json")));
    return c.json(eventBody(row), 200);
  });

  const deleteEventsById = mine
    .delete(`/events/{id}`, "Delete an event and its RSVPs (its organiser or a moderator)")
    .io({ params: IdParam }, { ...noContent("Deleted"), 403: errorResponse(403, "Visible to you but not yours") });
  app.openapi(deleteEventsById, (c) => noContentAfter(c, deleteEvent(c.env, c.get("user")!, c.req.valid("param").id)));

  const postEventsByIdRsvp = mine.post(`/events/{id}/rsvp`, "RSVP (or change your RSVP) to an event; one per user").io(
    { params: IdParam, body: requestJson(RsvpBody) },
    { 200: jsonBody(EventSchema, "The event with your RSVP and the new counts"), 409: errorResponse(409, "Event full or started") },
    {
      description:
        "Refused: your own event (400 CANNOT_RSVP_OWN_EVENT), an event that has started (409 EVENT_STARTED), " +
        "`going` to an event whose going count has reached capacity (409 EVENT_FULL). `maybe`/`not_going` are never limited.",
    },
  );
  app.openapi(postEventsByIdRsvp, async (c) => {
    const row = await upsertRsvp(c.env, c.get("user")!, c.req.valid("param").id, c.req.valid("json").status);
    return c.json(eventBody(row), 200);
  });

  const deleteEventsByIdRsvp = mine
    .delete(`/events/{id}/rsvp`, "Withdraw your RSVP (404 when you have none)")
    .io({ params: IdParam }, noContent("Withdrawn"));
  app.openapi(deleteEventsByIdRsvp, (c) => noContentAfter(c, deleteRsvp(c.env, c.get("user")!, c.req.valid("param").id)));

  return app;
}

function seasonalTaskBody(row: SeasonalTaskRow) {
  return {
    ...apiFields(row, "id month hemisphere title description taskType"),
  };
}
