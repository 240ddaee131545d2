/**
 * Care reminders (API.md §5): recurring care tasks on the user's own plants, their schedule
 * arithmetic, the actions that move them (complete, snooze, skip), a calendar export and the
 * cron that turns due occurrences into notifications.
 *
 * Times are stored and answered as UTC instants, but schedules count on the owner's clock: the
 * `time_zone` of their notification preferences (UTC when never set), so a daily 08:00 reminder
 * stays at 08:00 local across summer time. Every function that needs "now" takes it as a
 * parameter so the schedule can be tested at fixed instants. Rules the spec leaves open, decided here:
 * - Without `first_due_at` the first occurrence is one interval from creation.
 * - Daily, weekly, biweekly and custom keep the local time of day (a day is 23 or 25 hours when
 *   clocks change). A local time clocks skip is read with the offset before the gap (it moves on
 *   by the gap); one they show twice is the first (RFC 5545 §3.3.5, as calendar apps read the feed).
 * - Monthly means calendar months with the day clamped to the month's end, pinned to an anchor
 *   day so Jan 31 → Feb 28 → Mar 31 (not Mar 28). The anchor is the local day of whatever set the
 *   schedule last: creation, completion, snooze, or a PATCH of `frequency`/`next_due_at`.
 * - Each reminder stores the local time of day it was set to (`local_time_ms`): a due time a
 *   skipped hour moved on (02:30 → 03:30) does not carry it, so skips, the preview and the feed
 *   repeat 02:30 after it. NULL (older rows), or one that no longer means the due instant on the
 *   owner's clock (they changed zone): the due instant's own time of day.
 * - The zone is read when the schedule moves, not stored per reminder: after the owner changes
 *   it, the stored next due instant stays and the occurrences after it keep its time of day on
 *   the new zone's clock.
 * - Skip advances from the current due time; complete and snooze count from now.
 * - Each occurrence (reminder, next_due_at) is notified at most once; an overdue reminder does
 *   not nag again until it is acted on or rescheduled.
 */
import { apiFields } from "../lib/fields";
import { and, asc, count, eq, exists, lt, lte, type SQL, sql } from "drizzle-orm";
import { changes, type Database, database, runBatch, ownedBy } from "../db/client";
import { type Page, type PageRequest, selectPage } from "../db/pagination";
import { careReminders, notificationPreferences, notifications, species, userPlants, users } from "../db/schema";
import type { Bindings } from "../env";
import { AppError, orNotFound } from "../lib/errors";
import { buildCalendar, type CalendarEvent, type RecurrenceRule } from "../lib/ical";
import { uuidv7 } from "../lib/ids";
import { cutText } from "../lib/text";
import type { Logger } from "../lib/logger";
import { ownPlant } from "./collections";
import { insertNotifications, type Notification, announceNotifications } from "./notifications";
import { DAY_MS, HOUR_MS } from "../lib/durations";
import { localInstant, localWall } from "../lib/wall-clock";
import { getPreferences, knownTimeZone } from "./notification-preferences";

export const REMINDER_TYPES = ["water", "fertilize", "prune", "repot", "mist", "custom"] as const;
export const FREQUENCIES = ["daily", "weekly", "biweekly", "monthly", "custom"] as const;
export const REMINDER_ACTIONS = ["complete", "snooze", "skip"] as const;
export type ReminderType = (typeof REMINDER_TYPES)[number];
export type Frequency = (typeof FREQUENCIES)[number];
export type ReminderAction = (typeof REMINDER_ACTIONS)[number];

/** Keeps preview and calendar work per user bounded. */
export const MAX_REMINDERS_PER_USER = 500;
/** Due reminders turned into notifications per cron run; a backlog drains over later runs. */
export const DELIVERY_BATCH = 500;

// ---------------------------------------------------------------------------------------------
// Schedule arithmetic (pure)

export interface Schedule {
  frequency: Frequency;
  customIntervalDays: number | null;
  /** Day of the month (1..31) a monthly series is pinned to, on the local clock. */
  anchorDay: number;
  /** The IANA zone whose clock the series keeps (the owner's); UTC when absent. */
  timeZone?: string;
  /**
   * The local time of day (ms after midnight) the series repeats at; absent: that of the time it
   * counts from. A due time a skipped hour moved on (02:30 → 03:30) does not show it.
   */
  localTime?: number;
}

/** Days between occurrences, or null for calendar months. */
export function intervalDays(schedule: Pick<Schedule, "frequency" | "customIntervalDays">): number | null {
  switch (schedule.frequency) {
    case "daily":
      return 1;
    case "weekly":
      return 7;
    case "biweekly":
      return 14;
    case "monthly":
      return null;
    case "custom":
      return schedule.customIntervalDays ?? 1;
  }
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/** The day of the month `at` falls on in `timeZone`. */
export function localDay(at: Date | number, timeZone = "UTC"): number {
  return new Date(localWall(new Date(at).getTime(), timeZone)).getUTCDate();
}

/** A wall-clock reading's time of day, in ms after midnight. */
function msAfterMidnight(wall: number): number {
  return ((wall % DAY_MS) + DAY_MS) % DAY_MS;
}

/** The local time of day at `at` on `timeZone`'s clock, in ms after midnight. */
export function timeOfDay(at: Date | number, timeZone = "UTC"): number {
  return msAfterMidnight(localWall(new Date(at).getTime(), timeZone));
}

/** A wall-clock reading moved, on its own day, to the schedule's local time of day (if it has one). */
function atScheduleTime(wall: number, schedule: Schedule): number {
  return schedule.localTime === undefined ? wall : wall - msAfterMidnight(wall) + schedule.localTime;
}

/**
 * `from` moved `count` intervals forward on the clock of the schedule's zone, at the schedule's
 * local time of day (`from`'s own when it has none; monthly: to the anchor day, clamped to month
 * end). See the header for the gap and the repeated hour.
 */
export function addIntervals(from: Date, schedule: Schedule, count = 1): Date {
  const zone = schedule.timeZone ?? "UTC";
  const wall = new Date(atScheduleTime(localWall(from.getTime(), zone), schedule));
  const days = intervalDays(schedule);
  if (days !== null) return new Date(localInstant(wall.getTime() + count * days * DAY_MS, zone));
  const monthIndex = wall.getUTCMonth() + count;
  const year = wall.getUTCFullYear() + Math.floor(monthIndex / 12);
  const month = ((monthIndex % 12) + 12) % 12;
  const day = Math.min(schedule.anchorDay, daysInMonth(year, month));
  return new Date(
    localInstant(
      Date.UTC(year, month, day, wall.getUTCHours(), wall.getUTCMinutes(), wall.getUTCSeconds(), wall.getUTCMilliseconds()),
      zone,
    ),
  );
}

/** The RRULE (RFC 5545) that repeats the schedule from an occurrence. */
export function recurrenceFor(schedule: Schedule): RecurrenceRule {
  switch (schedule.frequency) {
    case "daily":
      return { freq: "DAILY" };
    case "weekly":
      return { freq: "WEEKLY" };
    case "biweekly":
      return { freq: "WEEKLY", interval: 2 };
    case "custom":
      return { freq: "DAILY", interval: schedule.customIntervalDays ?? 1 };
    case "monthly":
      if (schedule.anchorDay <= 28) return { freq: "MONTHLY" };
      // "The 31st, or the month's last day when it is shorter": the last of those days that exists.
      return {
        freq: "MONTHLY",
        byMonthDay: Array.from({ length: schedule.anchorDay - 27 }, (_, i) => schedule.anchorDay - i),
        bySetPos: -1,
      };
  }
}

export interface ActionOutcome {
  nextDueAt: Date;
  anchorDay: number;
  /** The local time of day the series repeats at from now on (ms after midnight). */
  localTime: number;
  streak: number;
  lastCompletedAt: Date | null;
}

/** What an action does to a reminder's schedule and streak. */
export function applyActionToSchedule(
  state: { schedule: Schedule; nextDueAt: Date; streak: number; lastCompletedAt: Date | null },
  action: ReminderAction,
  now: number,
  hours?: number,
): ActionOutcome {
  const nowDate = new Date(now);
  switch (action) {
    case "complete": {
      const anchorDay = localDay(nowDate, state.schedule.timeZone);
      const localTime = timeOfDay(nowDate, state.schedule.timeZone);
      return {
        nextDueAt: addIntervals(nowDate, { ...state.schedule, anchorDay, localTime }),
        anchorDay,
        localTime,
        streak: state.streak + 1,
        lastCompletedAt: nowDate,
      };
    }
    case "skip":
      return {
        nextDueAt: addIntervals(state.nextDueAt, state.schedule),
        anchorDay: state.schedule.anchorDay,
        localTime: state.schedule.localTime ?? timeOfDay(state.nextDueAt, state.schedule.timeZone),
        streak: 0,
        lastCompletedAt: state.lastCompletedAt,
      };
    case "snooze": {
      const nextDueAt = new Date(now + (hours ?? 0) * HOUR_MS);
      return {
        nextDueAt,
        anchorDay: localDay(nextDueAt, state.schedule.timeZone),
        localTime: timeOfDay(nextDueAt, state.schedule.timeZone),
        streak: state.streak,
        lastCompletedAt: state.lastCompletedAt,
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rows and bodies

const r = careReminders;
const p = userPlants;
const s = species;

/** The name a reminder shows for its plant: the nickname, else the species, else a stand-in. */
const plantName = sql<string>`COALESCE(NULLIF(${p.nickname}, ''), ${s.scientificName}, 'your plant')`;

/** A reminder as read: its columns (not the cron's `notifiedDueAt`) and its plant's name. */
const reminderColumns = {
  id: r.id,
  userId: r.userId,
  plantId: r.plantId,
  plantName,
  reminderType: r.reminderType,
  frequency: r.frequency,
  customIntervalDays: r.customIntervalDays,
  title: r.title,
  nextDueAt: r.nextDueAt,
  anchorDay: r.anchorDay,
  localTimeMs: r.localTimeMs,
  isActive: r.isActive,
  streak: r.streak,
  lastCompletedAt: r.lastCompletedAt,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
  /** The owner's clock, which the schedule keeps (not part of the reminder's answer). */
  timeZone: sql<string>`COALESCE(${notificationPreferences.timeZone}, 'UTC')`,
};

/** Reminders with their plant's name, as every reminder read (and the account export) selects them. */
export function selectReminders(db: Database, where: SQL | undefined) {
  return db
    .select(reminderColumns)
    .from(r)
    .innerJoin(p, eq(p.id, r.plantId))
    .leftJoin(s, eq(s.id, p.speciesId))
    .leftJoin(notificationPreferences, eq(notificationPreferences.userId, r.userId))
    .where(where)
    .$dynamic();
}

export type ReminderRow = Awaited<ReturnType<typeof selectReminders>>[number];

type ScheduleColumns = Pick<ReminderRow, "frequency" | "customIntervalDays" | "anchorDay" | "timeZone" | "nextDueAt" | "localTimeMs">;

/**
 * The monthly anchor on the owner's clock. Rows written while schedules counted in UTC hold the
 * UTC day of their due time; where that is not the local day (a time near midnight), the local
 * day is meant. A clamped anchor (31 with a due time on 28 February) is never its due time's UTC
 * day, so it is kept.
 */
function localAnchor(row: ScheduleColumns): number {
  const due = new Date(row.nextDueAt);
  const local = localDay(due, row.timeZone);
  return row.anchorDay === due.getUTCDate() && row.anchorDay !== local ? local : row.anchorDay;
}

/**
 * The local time of day the series repeats at: the one it was set to while that still means its
 * due instant on the owner's clock (read before a gap, 02:30 is due at 03:30); else the due
 * instant's own (rows from before it was stored, and after the owner changed zone, as documented).
 */
function localTimeOf(row: ScheduleColumns): number {
  const due = Date.parse(row.nextDueAt);
  const wall = localWall(due, row.timeZone);
  const own = msAfterMidnight(wall);
  if (row.localTimeMs === null || row.localTimeMs === own) return own;
  return localInstant(wall - own + row.localTimeMs, row.timeZone) === due ? row.localTimeMs : own;
}

export function scheduleOf(row: ScheduleColumns): Schedule {
  return {
    frequency: row.frequency,
    customIntervalDays: row.customIntervalDays,
    anchorDay: localAnchor(row),
    timeZone: row.timeZone,
    localTime: localTimeOf(row),
  };
}

export function reminderBody(row: ReminderRow) {
  return {
    ...apiFields(row, "id plantId plantName reminderType frequency customIntervalDays"),
    interval_days: intervalDays(scheduleOf(row)),
    ...apiFields(row, "title nextDueAt isActive streak lastCompletedAt createdAt updatedAt"),
  };
}

const TYPE_LABEL: Record<ReminderType, string> = {
  water: "Water",
  fertilize: "Fertilize",
  prune: "Prune",
  repot: "Repot",
  mist: "Mist",
  custom: "Care for",
};

export function defaultTitle(type: ReminderType, plantName: string): string {
  return cutText(`${TYPE_LABEL[type]} ${plantName}`, 100);
}

// ---------------------------------------------------------------------------------------------
// Reads

export interface ReminderFilter {
  userId: string;
  plantId?: string | undefined;
  dueBefore?: string | undefined;
  isActive?: boolean | undefined;
}

/**
 * The user's reminders, soonest due first. Filtering by a plant that is not the user's answers
 * 404, as the plant's own routes do.
 */
export async function listReminders(env: Bindings, filter: ReminderFilter, page: PageRequest): Promise<Page<ReminderRow>> {
  if (filter.plantId) await ownPlant(env, filter.userId, filter.plantId);
  const where = and(
    eq(r.userId, filter.userId),
    filter.plantId ? eq(r.plantId, filter.plantId) : undefined,
    filter.dueBefore ? lt(r.nextDueAt, filter.dueBefore) : undefined,
    filter.isActive !== undefined ? eq(r.isActive, filter.isActive) : undefined,
  );
  const db = database(env);
  return selectPage(
    db,
    {
      rows: selectReminders(db, where).orderBy(asc(r.nextDueAt), asc(r.id)),
      count: db.select({ n: count() }).from(r).innerJoin(p, eq(p.id, r.plantId)).where(where).$dynamic(),
    },
    page,
  );
}

/** The caller's own reminder, or 404 (also for other users' reminders). */
export async function ownReminder(env: Bindings, userId: string, id: string): Promise<ReminderRow> {
  return orNotFound(await selectReminders(database(env), and(eq(r.id, id), eq(r.userId, userId))).get(), "Reminder");
}

export async function activeReminders(env: Bindings, userId: string): Promise<ReminderRow[]> {
  return selectReminders(database(env), and(eq(r.userId, userId), eq(r.isActive, true))).orderBy(asc(r.nextDueAt), asc(r.id));
}

// ---------------------------------------------------------------------------------------------
// Writes

export interface ReminderCreate {
  plant_id: string;
  reminder_type: ReminderType;
  frequency: Frequency;
  custom_interval_days?: number;
  title?: string;
  /** Normalised ISO-8601 UTC. */
  first_due_at?: string;
}

export async function createReminder(env: Bindings, userId: string, input: ReminderCreate, now = Date.now()): Promise<ReminderRow> {
  const plant = await ownPlant(env, userId, input.plant_id);
  const plantName = plant.nickname || plant.speciesScientificName || "your plant";
  const customIntervalDays = input.frequency === "custom" ? (input.custom_interval_days ?? null) : null;
  const timeZone = (await getPreferences(env, userId)).time_zone;
  let nextDueAt: Date;
  let anchorDay: number;
  // The series repeats the local time of its first due time, or of now (which one interval on
  // may fall in a skipped hour and be due later).
  const localTime = timeOfDay(input.first_due_at ? new Date(input.first_due_at) : now, timeZone);
  if (input.first_due_at) {
    nextDueAt = new Date(input.first_due_at);
    anchorDay = localDay(nextDueAt, timeZone);
  } else {
    anchorDay = localDay(now, timeZone);
    nextDueAt = addIntervals(new Date(now), { frequency: input.frequency, customIntervalDays, anchorDay, timeZone });
  }
  const id = uuidv7();
  const stamp = new Date(now).toISOString();
  const title = input.title || defaultTitle(input.reminder_type, plantName);
  // -- conditional insert: only while the plant is still the caller's and under the per-user
  // cap, decided in the one statement. Each value named by its column: drizzle refuses a select
  // whose fields are not the table's, in its order, where a raw SELECT's values would silently shift.
  const db = database(env);
  const result = await db
    .insert(r)
    .select(
      db
        .select({
          id: sql<string>`${id}`.as("id"),
          userId: sql<string>`${userId}`.as("user_id"),
          plantId: p.id,
          reminderType: sql<ReminderType>`${input.reminder_type}`.as("reminder_type"),
          frequency: sql<Frequency>`${input.frequency}`.as("frequency"),
          customIntervalDays: sql<number | null>`${customIntervalDays}`.as("custom_interval_days"),
          title: sql<string>`${title}`.as("title"),
          nextDueAt: sql<string>`${nextDueAt.toISOString()}`.as("next_due_at"),
          anchorDay: sql<number>`${anchorDay}`.as("anchor_day"),
          isActive: sql<boolean>`1`.as("is_active"),
          streak: sql<number>`0`.as("streak"),
          lastCompletedAt: sql<null>`NULL`.as("last_completed_at"),
          notifiedDueAt: sql<null>`NULL`.as("notified_due_at"),
          createdAt: sql<string>`${stamp}`.as("created_at"),
          updatedAt: sql<string>`${stamp}`.as("updated_at"),
          localTimeMs: sql<number>`${localTime}`.as("local_time_ms"),
        })
        .from(p)
        .where(
          sql`${p.id} = ${plant.id} AND ${p.userId} = ${userId}
            AND (SELECT count(*) FROM ${r} WHERE ${r.userId} = ${userId}) < ${MAX_REMINDERS_PER_USER}`,
        ),
    )
    .run();
  if (changes(result) === 0) {
    await ownPlant(env, userId, input.plant_id); // deleted meanwhile → 404
    throw new AppError("REMINDER_LIMIT", 409, `You can have at most ${MAX_REMINDERS_PER_USER} reminders. Delete some first.`);
  }
  return ownReminder(env, userId, id);
}

export interface ReminderPatch {
  reminder_type?: ReminderType;
  frequency?: Frequency;
  custom_interval_days?: number | null;
  title?: string;
  is_active?: boolean;
  next_due_at?: string;
}

export async function updateReminder(
  env: Bindings,
  userId: string,
  id: string,
  patch: ReminderPatch,
  now = Date.now(),
): Promise<ReminderRow> {
  const row = await ownReminder(env, userId, id);
  const frequency = patch.frequency ?? row.frequency;
  const customIntervalDays =
    patch.custom_interval_days !== undefined
      ? patch.custom_interval_days
      : patch.frequency && patch.frequency !== "custom"
        ? null
        : row.customIntervalDays;
  if (frequency === "custom" && customIntervalDays === null) {
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", {
      custom_interval_days: ["Required when frequency is custom (1..365)."],
    });
  }
  if (frequency !== "custom" && customIntervalDays !== null) {
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { custom_interval_days: ["Only allowed when frequency is custom."] });
  }
  const set: Partial<typeof r.$inferInsert> = { frequency, customIntervalDays };
  if (patch.reminder_type !== undefined) set.reminderType = patch.reminder_type;
  if (patch.title !== undefined) set.title = patch.title || defaultTitle(patch.reminder_type ?? row.reminderType, row.plantName);
  if (patch.is_active !== undefined) set.isActive = patch.is_active;
  if (patch.next_due_at !== undefined || patch.frequency !== undefined) {
    // A new base for the series: the monthly anchor follows the (new) due day.
    const nextDueAt = patch.next_due_at ?? row.nextDueAt;
    set.nextDueAt = nextDueAt;
    set.anchorDay = localDay(new Date(nextDueAt), row.timeZone);
    // A new due time sets the time of day; a new frequency alone keeps the one the series has.
    set.localTimeMs = patch.next_due_at !== undefined ? timeOfDay(new Date(nextDueAt), row.timeZone) : localTimeOf(row);
  }
  await database(env)
    .update(r)
    .set({ ...set, updatedAt: new Date(now).toISOString() })
    .where(and(eq(r.id, id), eq(r.userId, userId)));
  return ownReminder(env, userId, id);
}

export async function deleteReminder(env: Bindings, userId: string, id: string): Promise<void> {
  const deleted = await database(env)
    .delete(r)
    .where(ownedBy(r, userId, id))
    .returning({ id: r.id })
    .get();
  orNotFound(deleted, "Reminder");
}

export async function performAction(
  env: Bindings,
  userId: string,
  id: string,
  action: ReminderAction,
  hours: number | undefined,
  now = Date.now(),
): Promise<ReminderRow> {
  const row = await ownReminder(env, userId, id);
  const outcome = applyActionToSchedule(
    {
      schedule: scheduleOf(row),
      nextDueAt: new Date(row.nextDueAt),
      streak: row.streak,
      lastCompletedAt: row.lastCompletedAt ? new Date(row.lastCompletedAt) : null,
    },
    action,
    now,
    hours,
  );
  // Conditional on the state we computed from, so two simultaneous actions cannot both apply.
  const result = await database(env)
    .update(r)
    .set({
      nextDueAt: outcome.nextDueAt.toISOString(),
      anchorDay: outcome.anchorDay,
      localTimeMs: outcome.localTime,
      streak: outcome.streak,
      lastCompletedAt: outcome.lastCompletedAt?.toISOString() ?? null,
      updatedAt: new Date(now).toISOString(),
    })
    .where(and(eq(r.id, id), eq(r.userId, userId), eq(r.nextDueAt, row.nextDueAt), eq(r.streak, row.streak)))
    .run();
  if (changes(result) === 0) throw new AppError("CONFLICT", 409, "The reminder changed meanwhile. Reload it and try again.");
  return ownReminder(env, userId, id);
}

// ---------------------------------------------------------------------------------------------
// Preview and calendar

export interface Occurrence {
  reminder_id: string;
  plant_id: string;
  plant_name: string;
  reminder_type: ReminderType;
  title: string;
  due_at: string;
  overdue: boolean;
}

/**
 * Occurrences due from now to now + `days`, across reminders, sorted by time. A reminder's
 * current `next_due_at` is listed even when it is already past (flagged `overdue`); later
 * occurrences follow the schedule from it, as skipping would.
 */
export function previewOccurrences(
  rows: ReminderRow[],
  now: number,
  days: number,
  max = 2000,
): { results: Occurrence[]; truncated: boolean } {
  const end = now + days * DAY_MS;
  const out: Occurrence[] = [];
  for (const row of rows) {
    if (!row.isActive) continue;
    const base = new Date(row.nextDueAt);
    if (base.getTime() > end) continue;
    const item = (due: Date): Occurrence => ({
      reminder_id: row.id,
      plant_id: row.plantId,
      plant_name: row.plantName,
      reminder_type: row.reminderType,
      title: row.title,
      due_at: due.toISOString(),
      overdue: due.getTime() < now,
    });
    out.push(item(base));
    const schedule = scheduleOf(row);
    const step = intervalDays(schedule);
    // Jump over the overdue stretch instead of walking it, landing a step short: local days are
    // 23 or 25 hours and local months start up to a day off UTC ones; the loop skips what is past.
    let k = step !== null ? Math.max(1, Math.ceil((now - base.getTime()) / (step * DAY_MS)) - 1) : 1;
    if (step === null && base.getTime() < now) {
      const nowDate = new Date(now);
      k = Math.max(1, (nowDate.getUTCFullYear() - base.getUTCFullYear()) * 12 + nowDate.getUTCMonth() - base.getUTCMonth() - 2);
    }
    for (; ; k++) {
      const due = addIntervals(base, schedule, k);
      if (due.getTime() > end) break;
      if (due.getTime() >= now) out.push(item(due));
    }
  }
  out.sort((a, b) => (a.due_at < b.due_at ? -1 : a.due_at > b.due_at ? 1 : a.reminder_id < b.reminder_id ? -1 : 1));
  return { results: out.slice(0, max), truncated: out.length > max };
}

/**
 * Active reminders as recurring calendar events: one VEVENT with an RRULE each, on the owner's
 * clock. A due time `DTSTART;TZID=` cannot name — the second time clocks going back show, which
 * §3.3.5 reads as the first (a snooze can land there) — is a one-off event in UTC of its own, and
 * the series starts at the occurrence after it.
 */
export function reminderCalendarEvents(rows: ReminderRow[]): CalendarEvent[] {
  return rows
    .filter((row) => row.isActive)
    .flatMap((row) => {
      const schedule = scheduleOf(row);
      // The RRULE repeats on the owner's clock, as the schedule does (BYMONTHDAY: local days). By
      // its IANA name: a zone saved before names were made canonical may read `europe/berlin` or
      // `US/Pacific`, which a calendar app would not match to its own zone; one this runtime does
      // not know is counted in UTC (wall-clock.ts), so the feed says UTC.
      const timeZone = knownTimeZone(row.timeZone) ?? "UTC";
      const event = { durationMinutes: 30, summary: row.title, description: `${TYPE_LABEL[row.reminderType]}: ${row.plantName}` };
      // The time of day the series repeats, on an occurrence's day: where a skipped hour moved the
      // due time on (02:30 → 03:30), DTSTART says 02:30, which a calendar reads as 03:30 that day
      // and repeats at 02:30, as the schedule does.
      const series = (start: number, localStart = atScheduleTime(localWall(start, row.timeZone), schedule)): CalendarEvent => ({
        ...event,
        uid: `${row.id}@plant-community`,
        start: new Date(start),
        localStart,
        rrule: recurrenceFor(schedule),
        timeZone,
      });
      const due = Date.parse(row.nextDueAt);
      const dueLocal = atScheduleTime(localWall(due, row.timeZone), schedule);
      if (timeZone === "UTC" || localInstant(dueLocal, row.timeZone) === due) return [series(due, dueLocal)];
      return [
        { ...event, uid: `${row.id}.once@plant-community`, start: new Date(due), timeZone: "UTC" },
        series(addIntervals(new Date(due), schedule).getTime()),
      ];
    });
}

export function remindersCalendar(rows: ReminderRow[], now: number): string {
  return buildCalendar({
    prodId: "-//Plant Community//Care reminders//EN",
    name: "Plant care reminders",
    stamp: new Date(now),
    events: reminderCalendarEvents(rows),
  });
}

// ---------------------------------------------------------------------------------------------
// Cron delivery

/** Active, due by `nowIso`, and this occurrence not yet delivered (NULL-safe `IS NOT`). */
function pending(nowIso: string): SQL | undefined {
  return and(eq(r.isActive, true), sql`${r.notifiedDueAt} IS NOT ${r.nextDueAt}`, lte(r.nextDueAt, nowIso));
}

/** -- computed per row inside the fan-out and the mark, so both name the same occurrence. */
const dedupeKey = sql`'care_reminder:' || ${r.id} || ':' || ${r.nextDueAt}`;

/**
 * Turns due reminder occurrences into notifications: at most `limit` per run, oldest due first.
 * Idempotent: the unique `dedupe_key` stops a second insert for the same occurrence, and the
 * reminder is marked (`notified_due_at`) in the same atomic batch, so doubled or overlapping
 * runs deliver each occurrence exactly once. Only newly inserted notifications are pushed live.
 */
export async function deliverDueReminders(env: Bindings, logger?: Logger, options: { now?: number; limit?: number } = {}): Promise<number> {
  const nowIso = new Date(options.now ?? Date.now()).toISOString();
  const db = database(env);
  const [inserted] = (await runBatch(db, [
    // -- INSERT … SELECT fan-out: one notification per due reminder in one statement.
    insertNotifications(
      db,
      "care_reminder",
      {
        userId: sql`${r.userId}`,
        title: sql`${r.title}`,
        body: sql`'Time to ' || CASE ${r.reminderType} WHEN 'custom' THEN 'look after' ELSE ${r.reminderType} END || ' ' || ${plantName} || '.'`,
        data: sql`json_object('reminder_id', ${r.id}, 'plant_id', ${r.plantId}, 'due_at', ${r.nextDueAt})`,
        dedupeKey,
        createdAt: nowIso,
      },
      sql`FROM ${r}
       JOIN ${users} ON ${users.id} = ${r.userId}
       JOIN ${p} ON ${p.id} = ${r.plantId}
       LEFT JOIN ${s} ON ${s.id} = ${p.speciesId}
      WHERE ${pending(nowIso)} AND ${users.isActive} = 1
      ORDER BY ${r.nextDueAt}, ${r.id}
      LIMIT ${options.limit ?? DELIVERY_BATCH}`,
    ),
    db
      .update(r)
      .set({ notifiedDueAt: sql`${r.nextDueAt}` })
      .where(and(pending(nowIso), exists(db.select({ one: sql`1` }).from(notifications).where(eq(notifications.dedupeKey, dedupeKey))))),
  ])) as [Notification[], unknown];
  await announceNotifications(env, inserted, logger);
  return inserted.length;
}
