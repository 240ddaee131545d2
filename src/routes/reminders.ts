/**
 * Care reminders (API.md §5): `/api/v1/reminders/` CRUD on the caller's plants, actions
 * (complete, snooze, skip), an RFC 5545 calendar export and a preview of the coming
 * occurrences. Other users' plants and reminders answer 404.
 */
import { z } from "@hono/zod-openapi";
import { createRouter, routeSet, documentOnly, noContentAfter } from "./router";
import { accessClaimsOf, requireAuth, userIdOf } from "../middleware/auth";
import {
  activeReminders,
  listReminders,
  createReminder,
  deleteReminder,
  FREQUENCIES,
  ownReminder,
  performAction,
  previewOccurrences,
  REMINDER_ACTIONS,
  REMINDER_TYPES,
  reminderBody,
  remindersCalendar,
  updateReminder,
} from "../services/reminders";
import { pageOf, PaginationQuery } from "./pagination";
import { feedCalendar, feedOwner, issueCalendarFeed, revokeCalendarFeed } from "../services/calendar-feed";
import { AppError } from "../lib/errors";
import { BooleanQuery, jsonBody, pageSchema, errorResponse, requestJson, noContent, IdParam, errorResponses } from "./schemas";
import { DAY_MS } from "../lib/durations";

const tags = ["Care reminders"];
const errors = errorResponses(400, 401, 404);

export const ReminderSchema = z
  .object({
    id: z.uuid(),
    plant_id: z.uuid(),
    plant_name: z.string().openapi({ description: "The plant's nickname, else its species' scientific name." }),
    reminder_type: z.enum(REMINDER_TYPES),
    frequency: z.enum(FREQUENCIES),
    custom_interval_days: z.number().int().nullable(),
    interval_days: z.number().int().nullable().openapi({ description: "Days between occurrences; null for monthly (calendar months)." }),
    title: z.string(),
    next_due_at: z.string().openapi({ format: "date-time" }),
    is_active: z.boolean(),
    streak: z.number().int().openapi({ description: "Completions in a row; a skip resets it, a snooze keeps it." }),
    last_completed_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("CareReminder");

/** Due times are ISO-8601 with an offset (stored as UTC), within a year back and five years ahead. */
const dueTime = z.iso
  .datetime({ offset: true, message: "Enter an ISO-8601 date-time, e.g. 2026-11-26T08:00:00Z.", abort: true })
  .refine((v) => {
    const t = Date.parse(v);
    return t >= Date.now() - 366 * DAY_MS && t <= Date.now() + 5 * 366 * DAY_MS;
  }, "Must be within a year in the past and five years in the future.");

const fields = {
  reminder_type: z.enum(REMINDER_TYPES),
  frequency: z.enum(FREQUENCIES),
  custom_interval_days: z.number().int().min(1, "Between 1 and 365 days.").max(365, "Between 1 and 365 days."),
  title: z
    .string()
    .trim()
    .max(100, "Ensure this field has no more than 100 characters.")
    .openapi({ description: 'Empty or absent: e.g. "Water Monstera".' }),
};

const ReminderCreate = z
  .object({
    plant_id: z.uuid().openapi({ description: "One of your plants (else 404)." }),
    reminder_type: fields.reminder_type,
    frequency: fields.frequency,
    custom_interval_days: fields.custom_interval_days
      .optional()
      .openapi({ description: "Required with frequency `custom`, forbidden otherwise." }),
    title: fields.title.optional(),
    first_due_at: dueTime.optional().openapi({
      description:
        "First occurrence (default: one interval from now). An instant; later occurrences keep its time of day (monthly: its day of the month) on the clock of your notification preferences' `time_zone` (UTC when not set), across summer-time changes.",
    }),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.frequency === "custom" && body.custom_interval_days === undefined) {
      ctx.addIssue({ code: "custom", path: ["custom_interval_days"], message: "Required when frequency is custom (1..365)." });
    }
    if (body.frequency !== "custom" && body.custom_interval_days !== undefined) {
      ctx.addIssue({ code: "custom", path: ["custom_interval_days"], message: "Only allowed when frequency is custom." });
    }
  })
  .openapi("CareReminderCreate");

const ReminderPatch = z
  .object({
    reminder_type: fields.reminder_type,
    frequency: fields.frequency,
    custom_interval_days: fields.custom_interval_days.nullable(),
    title: fields.title,
    is_active: z.boolean(),
    next_due_at: dueTime.openapi({ description: "Reschedule the next occurrence." }),
  })
  .partial()
  .strict()
  .openapi("CareReminderUpdate");

const ActionBody = z
  .object({
    action: z.enum(REMINDER_ACTIONS).openapi({
      description:
        "complete: next due = now + one interval, streak +1. skip: next due moves one interval on, streak 0. snooze: next due = now + hours.",
    }),
    hours: z
      .number()
      .int()
      .min(1, "Between 1 and 168 hours.")
      .max(168, "Between 1 and 168 hours.")
      .optional()
      .openapi({ description: "Snooze only (1..168)." }),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.action === "snooze" && body.hours === undefined)
      ctx.addIssue({ code: "custom", path: ["hours"], message: "Required for snooze (1..168)." });
    if (body.action !== "snooze" && body.hours !== undefined)
      ctx.addIssue({ code: "custom", path: ["hours"], message: "Only allowed for snooze." });
  })
  .openapi("CareReminderAction");

const OccurrenceSchema = z
  .object({
    reminder_id: z.uuid(),
    plant_id: z.uuid(),
    plant_name: z.string(),
    reminder_type: z.enum(REMINDER_TYPES),
    title: z.string(),
    due_at: z.string().openapi({ format: "date-time" }),
    overdue: z.boolean(),
  })
  .openapi("CareReminderOccurrence");

const PreviewSchema = z
  .object({
    days: z.number().int(),
    from: z.string(),
    to: z.string(),
    count: z.number().int(),
    truncated: z.boolean().openapi({ description: "More occurrences than the response holds (2000)." }),
    results: z.array(OccurrenceSchema),
  })
  .openapi("CareReminderPreview");

export function reminderRoutes() {
  const app = createRouter();
  const open = routeSet({ tags, errors });
  const mine = open.signedIn();

  const getRoot = mine.get("/", "Your care reminders, soonest due first").io(
    {
      query: PaginationQuery.extend({
        plant: z.uuid().optional().openapi({ description: "Only this plant's reminders (must be yours, else 404)" }),
        due_before: z.iso
          .datetime({ offset: true })
          .optional()
          .openapi({ description: "Only reminders whose next_due_at is before this time" }),
        is_active: BooleanQuery.optional(),
      }),
    },
    { 200: jsonBody(pageSchema(ReminderSchema, "CareReminderPage"), "Page of reminders") },
  );
  app.openapi(getRoot, async (c) => {
    const { page, page_size, plant, due_before, is_active } = c.req.valid("query");
    const userId = userIdOf(c);
    const filter = {
      userId,
      plantId: plant,
      dueBefore: due_before ? new Date(due_before).toISOString() : undefined,
      isActive: is_active === undefined ? undefined : is_active === "true",
    };
    const { count, rows } = await listReminders(c.env, filter, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(reminderBody)), 200);
  });

  const postRoot = mine
    .post("/", "Create a reminder for one of your plants")
    .io({ body: requestJson(ReminderCreate) }, { 201: jsonBody(ReminderSchema, "Created"), 409: errorResponse(409, "Too many reminders") });
  app.openapi(postRoot, async (c) => {
    const body = c.req.valid("json");
    const row = await createReminder(c.env, userIdOf(c), {
      ...body,
      first_due_at: body.first_due_at ? new Date(body.first_due_at).toISOString() : undefined,
    });
    return c.json(reminderBody(row), 201);
  });

  // Fixed paths before `{id}`: both would match, and the first registered answers.
  const calendarRoute = routeSet({ tags, errors: {} })
    .signedIn()
    .get(`/calendar.ics`, "Your active reminders as an iCalendar file (RFC 5545), one recurring event each")
    .io(
      {},
      {
        200: {
          description: "VCALENDAR with one VEVENT (with RRULE) per active reminder",
          content: { "text/calendar": { schema: z.string() } },
        },
        401: errors[401],
      },
    );
  app.openAPIRegistry.registerPath(documentOnly(calendarRoute));
  app.get(calendarRoute.path, requireAuth, async (c) => {
    const text = remindersCalendar(await activeReminders(c.env, userIdOf(c)), Date.now());
    return c.body(text, 200, {
      "Content-Type": "text/calendar; charset=utf-8",
      "Content-Disposition": 'attachment; filename="plant-care.ics"',
      "Cache-Control": "private, no-store",
    });
  });

  // A subscription URL for calendar apps (API.md §5b): signed, revocable, no headers needed.
  const FeedSchema = z
    .object({
      url: z.string().openapi({
        description: "Subscribe to this in a calendar app. Anyone with the URL can read your calendar: revoke it with DELETE.",
      }),
      created_at: z.string(),
    })
    .openapi("CalendarSubscription");
  const postFeed = mine
    .post(`/calendar-feed`, "Issue your calendar subscription URL (replaces and revokes an earlier one)")
    .io({}, { 201: jsonBody(FeedSchema, "The new URL") });
  // no-store also keeps the URL out of the Idempotency-Key store: a retry issues a new URL,
  // which revokes the one the client never saw.
  app.openapi(postFeed, async (c) =>
    c.json(await issueCalendarFeed(c.env, userIdOf(c), accessClaimsOf(c)), 201, { "Cache-Control": "private, no-store" }),
  );

  const deleteFeed = mine
    .delete(`/calendar-feed`, "Revoke your calendar subscription URL")
    .io({}, noContent("Revoked (its URL answers 404 from now on)"));
  app.openapi(deleteFeed, async (c) => {
    if (!(await revokeCalendarFeed(c.env, userIdOf(c)))) throw new AppError("NOT_FOUND", 404, "You have no calendar feed.");
    return c.body(null, 204);
  });

  const getFeed = open
    .get(`/calendar-feed/{token}/plant-community.ics`, "A subscribed calendar: your reminders and the events you are going to, with alarms")
    .io(
      { params: z.object({ token: z.string().max(200) }) },
      { 200: { description: "VCALENDAR (RFC 5545) with VALARMs", content: { "text/calendar": { schema: z.string() } } } },
      { description: "No credentials: the signed URL is the credential. A forged, altered or revoked URL: 404." },
    );
  app.openapi(getFeed, async (c) => {
    const userId = await feedOwner(c.env, c.req.valid("param").token);
    return c.body(await feedCalendar(c.env, userId), 200, {
      "Content-Type": "text/calendar; charset=utf-8",
      "Cache-Control": "private, no-store",
      "Referrer-Policy": "no-referrer",
    }) as never;
  });

  const getPreview = mine
    .get(`/preview`, "Occurrences due in the next `days` days across your active reminders, soonest first (overdue ones included)")
    .io(
      { query: z.object({ days: z.coerce.number().int().min(1).max(90).default(7) }) },
      { 200: jsonBody(PreviewSchema, "Coming occurrences") },
    );
  app.openapi(getPreview, async (c) => {
    const { days } = c.req.valid("query");
    const now = Date.now();
    const { results, truncated } = previewOccurrences(await activeReminders(c.env, userIdOf(c)), now, days);
    return c.json(
      {
        days,
        from: new Date(now).toISOString(),
        to: new Date(now + days * DAY_MS).toISOString(),
        count: results.length,
        truncated,
        results,
      },
      200,
    );
  });

  const getById = mine.get(`/{id}`, "One of your reminders").io({ params: IdParam }, { 200: jsonBody(ReminderSchema, "Reminder") });
  app.openapi(getById, async (c) => c.json(reminderBody(await ownReminder(c.env, userIdOf(c), c.req.valid("param").id)), 200));

  const patchById = mine
    .patch(`/{id}`, "Change a reminder (changing frequency or next_due_at restarts the series from next_due_at)")
    .io({ params: IdParam, body: requestJson(ReminderPatch) }, { 200: jsonBody(ReminderSchema, "Updated") });
  app.openapi(patchById, async (c) => {
    const patch = c.req.valid("json");
    const row = await updateReminder(c.env, userIdOf(c), c.req.valid("param").id, {
      ...patch,
      next_due_at: patch.next_due_at ? new Date(patch.next_due_at).toISOString() : undefined,
    });
    return c.json(reminderBody(row), 200);
  });

  const deleteById = mine.delete(`/{id}`, "Delete one of your reminders").io({ params: IdParam }, noContent("Deleted"));
  app.openapi(deleteById, (c) => noContentAfter(c, deleteReminder(c.env, userIdOf(c), c.req.valid("param").id)));

  const postByIdAction = mine
    .post(`/{id}/action`, "Complete, snooze (hours 1..168) or skip the next occurrence")
    .io(
      { params: IdParam, body: requestJson(ActionBody) },
      { 200: jsonBody(ReminderSchema, "The reminder after the action"), 409: errorResponse(409, "Changed meanwhile; retry") },
    );
  app.openapi(postByIdAction, async (c) => {
    const { action, hours } = c.req.valid("json");
    return c.json(reminderBody(await performAction(c.env, userIdOf(c), c.req.valid("param").id, action, hours)), 200);
  });

  return app;
}
