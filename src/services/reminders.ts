/**
 * Care reminders (API.md §5): recurring care tasks on the user's own plants, their schedule
 * arithmetic, the actions that move them (complete, snooze, skip), a calendar export and the
 * cron that turns due occurrences into notifications.
 *
 * Every time in here is UTC; every function that needs "now" takes it as a parameter so the
 * schedule can be tested at fixed instants. Rules the spec leaves open, decided here:
 * - Without `first_due_at` the first occurrence is one interval from creation.
 * - Monthly means calendar months with the day clamped to the month's end, pinned to an anchor
 *   day so Jan 31 → Feb 28 → Mar 31 (not Mar 28). The anchor is the day of whatever set the
 *   schedule last: creation, completion, snooze, or a PATCH of `frequency`/`next_due_at`.
 * - Skip advances from the current due time; complete and snooze count from now.
 * - Each occurrence (reminder, next_due_at) is notified at most once; an overdue reminder does
 *   not nag again until it is acted on or rescheduled.
 */
import { fetchPage, type Page, type PageRequest } from "../db/pagination";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import { buildCalendar, type CalendarEvent, type RecurrenceRule } from "../lib/ical";
import { uuidv7 } from "../lib/ids";
import type { Logger } from "../lib/logger";
import { ownPlant } from "./collections";
import { insertNotificationsStatement, pushInserted, type NotificationRow } from "./notifications";

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
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

// ---------------------------------------------------------------------------------------------
// Schedule arithmetic (pure)

export interface Schedule {
  frequency: Frequency;
  customIntervalDays: number | null;
  /** Day of the month (1..31) a monthly series is pinned to. */
  anchorDay: number;
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

/** `from` moved `count` intervals forward (monthly: to the anchor day, clamped to month end). */
export function addIntervals(from: Date, schedule: Schedule, count = 1): Date {
  const days = intervalDays(schedule);
  if (days !== null) return new Date(from.getTime() + count * days * DAY_MS);
  const monthIndex = from.getUTCMonth() + count;
  const year = from.getUTCFullYear() + Math.floor(monthIndex / 12);
  const month = ((monthIndex % 12) + 12) % 12;
  const day = Math.min(schedule.anchorDay, daysInMonth(year, month));
  return new Date(Date.UTC(year, month, day, from.getUTCHours(), from.getUTCMinutes(), from.getUTCSeconds(), from.getUTCMilliseconds()));
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
      const anchorDay = nowDate.getUTCDate();
      return {
        nextDueAt: addIntervals(nowDate, { ...state.schedule, anchorDay }),
        anchorDay,
        streak: state.streak + 1,
        lastCompletedAt: nowDate,
      };
    }
    case "skip":
      return {
        nextDueAt: addIntervals(state.nextDueAt, state.schedule),
        anchorDay: state.schedule.anchorDay,
        streak: 0,
        lastCompletedAt: state.lastCompletedAt,
      };
    case "snooze": {
      const nextDueAt = new Date(now + (hours ?? 0) * HOUR_MS);
      return { nextDueAt, anchorDay: nextDueAt.getUTCDate(), streak: state.streak, lastCompletedAt: state.lastCompletedAt };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rows and bodies

export interface ReminderRow {
  id: string;
  user_id: string;
  plant_id: string;
  plant_name: string;
  reminder_type: ReminderType;
  frequency: Frequency;
  custom_interval_days: number | null;
  title: string;
  next_due_at: string;
  anchor_day: number;
  is_active: number;
  streak: number;
  last_completed_at: string | null;
  created_at: string;
  updated_at: string;
}

const PLANT_NAME = "COALESCE(NULLIF(p.nickname, ''), s.scientific_name, 'your plant')";
const REMINDER_COLUMNS = `r.id, r.user_id, r.plant_id, ${PLANT_NAME} AS plant_name, r.reminder_type, r.frequency, r.custom_interval_days,
  r.title, r.next_due_at, r.anchor_day, r.is_active, r.streak, r.last_completed_at, r.created_at, r.updated_at`;
const REMINDER_FROM = "FROM care_reminders r JOIN user_plants p ON p.id = r.plant_id LEFT JOIN species s ON s.id = p.species_id";

export function scheduleOf(row: Pick<ReminderRow, "frequency" | "custom_interval_days" | "anchor_day">): Schedule {
  return { frequency: row.frequency, customIntervalDays: row.custom_interval_days, anchorDay: row.anchor_day };
}

export function reminderBody(row: ReminderRow) {
  return {
    id: row.id,
    plant_id: row.plant_id,
    plant_name: row.plant_name,
    reminder_type: row.reminder_type,
    frequency: row.frequency,
    custom_interval_days: row.custom_interval_days,
    interval_days: intervalDays(scheduleOf(row)),
    title: row.title,
    next_due_at: row.next_due_at,
    is_active: Boolean(row.is_active),
    streak: row.streak,
    last_completed_at: row.last_completed_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
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
  return `${TYPE_LABEL[type]} ${plantName}`.slice(0, 100);
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
  return fetchPage<ReminderRow>(env, reminderPageQuery(filter), page);
}

function reminderPageQuery(filter: ReminderFilter) {
  const where = ["r.user_id = ?"];
  const binds: unknown[] = [filter.userId];
  if (filter.plantId) {
    where.push("r.plant_id = ?");
    binds.push(filter.plantId);
  }
  if (filter.dueBefore) {
    where.push("r.next_due_at < ?");
    binds.push(filter.dueBefore);
  }
  if (filter.isActive !== undefined) {
    where.push("r.is_active = ?");
    binds.push(filter.isActive ? 1 : 0);
  }
  return { select: REMINDER_COLUMNS, from: `${REMINDER_FROM} WHERE ${where.join(" AND ")}`, order: "r.next_due_at ASC, r.id ASC", binds };
}

/** The caller's own reminder, or 404 (also for other users' reminders). */
export async function ownReminder(env: Bindings, userId: string, id: string): Promise<ReminderRow> {
  const row = await env.DB.prepare(`SELECT ${REMINDER_COLUMNS} ${REMINDER_FROM} WHERE r.id = ? AND r.user_id = ?`)
    .bind(id, userId)
    .first<ReminderRow>();
  if (!row) throw new AppError("NOT_FOUND", 404, "Reminder not found.");
  return row;
}

export async function activeReminders(env: Bindings, userId: string): Promise<ReminderRow[]> {
  const { results } = await env.DB.prepare(
    `SELECT ${REMINDER_COLUMNS} ${REMINDER_FROM} WHERE r.user_id = ? AND r.is_active = 1 ORDER BY r.next_due_at, r.id`,
  )
    .bind(userId)
    .all<ReminderRow>();
  return results;
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
  const plantName = plant.nickname || plant.species_scientific_name || "your plant";
  const customIntervalDays = input.frequency === "custom" ? (input.custom_interval_days ?? null) : null;
  let nextDueAt: Date;
  let anchorDay: number;
  if (input.first_due_at) {
    nextDueAt = new Date(input.first_due_at);
    anchorDay = nextDueAt.getUTCDate();
  } else {
    anchorDay = new Date(now).getUTCDate();
    nextDueAt = addIntervals(new Date(now), { frequency: input.frequency, customIntervalDays, anchorDay });
  }
  const id = uuidv7();
  const stamp = new Date(now).toISOString();
  // Conditional on the plant still being the caller's and on the per-user cap, in one statement.
  const result = await env.DB.prepare(
    `INSERT INTO care_reminders (id, user_id, plant_id, reminder_type, frequency, custom_interval_days, title, next_due_at, anchor_day, created_at, updated_at)
     SELECT ?, ?, p.id, ?, ?, ?, ?, ?, ?, ?, ? FROM user_plants p
      WHERE p.id = ? AND p.user_id = ? AND (SELECT count(*) FROM care_reminders WHERE user_id = ?) < ?`,
  )
    .bind(
      id,
      userId,
      input.reminder_type,
      input.frequency,
      customIntervalDays,
      input.title || defaultTitle(input.reminder_type, plantName),
      nextDueAt.toISOString(),
      anchorDay,
      stamp,
      stamp,
      plant.id,
      userId,
      userId,
      MAX_REMINDERS_PER_USER,
    )
    .run();
  if (result.meta.changes === 0) {
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
        : row.custom_interval_days;
  if (frequency === "custom" && customIntervalDays === null) {
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", {
      custom_interval_days: ["Required when frequency is custom (1..365)."],
    });
  }
  if (frequency !== "custom" && customIntervalDays !== null) {
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { custom_interval_days: ["Only allowed when frequency is custom."] });
  }
  const sets: string[] = ["frequency = ?", "custom_interval_days = ?"];
  const binds: unknown[] = [frequency, customIntervalDays];
  if (patch.reminder_type !== undefined) {
    sets.push("reminder_type = ?");
    binds.push(patch.reminder_type);
  }
  if (patch.title !== undefined) {
    sets.push("title = ?");
    binds.push(patch.title || defaultTitle(patch.reminder_type ?? row.reminder_type, row.plant_name));
  }
  if (patch.is_active !== undefined) {
    sets.push("is_active = ?");
    binds.push(patch.is_active ? 1 : 0);
  }
  if (patch.next_due_at !== undefined || patch.frequency !== undefined) {
    // A new base for the series: the monthly anchor follows the (new) due day.
    const nextDueAt = patch.next_due_at ?? row.next_due_at;
    sets.push("next_due_at = ?", "anchor_day = ?");
    binds.push(nextDueAt, new Date(nextDueAt).getUTCDate());
  }
  await env.DB.prepare(`UPDATE care_reminders SET ${sets.join(", ")}, updated_at = ? WHERE id = ? AND user_id = ?`)
    .bind(...binds, new Date(now).toISOString(), id, userId)
    .run();
  return ownReminder(env, userId, id);
}

export async function deleteReminder(env: Bindings, userId: string, id: string): Promise<void> {
  const deleted = await env.DB.prepare("DELETE FROM care_reminders WHERE id = ? AND user_id = ? RETURNING id").bind(id, userId).first();
  if (!deleted) throw new AppError("NOT_FOUND", 404, "Reminder not found.");
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
      nextDueAt: new Date(row.next_due_at),
      streak: row.streak,
      lastCompletedAt: row.last_completed_at ? new Date(row.last_completed_at) : null,
    },
    action,
    now,
    hours,
  );
  // Conditional on the state we computed from, so two simultaneous actions cannot both apply.
  const result = await env.DB.prepare(
    `UPDATE care_reminders SET next_due_at = ?, anchor_day = ?, streak = ?, last_completed_at = ?, updated_at = ?
      WHERE id = ? AND user_id = ? AND next_due_at = ? AND streak = ?`,
  )
    .bind(
      outcome.nextDueAt.toISOString(),
      outcome.anchorDay,
      outcome.streak,
      outcome.lastCompletedAt?.toISOString() ?? null,
      new Date(now).toISOString(),
      id,
      userId,
      row.next_due_at,
      row.streak,
    )
    .run();
  if (result.meta.changes === 0) throw new AppError("CONFLICT", 409, "The reminder changed meanwhile. Reload it and try again.");
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
    if (!row.is_active) continue;
    const base = new Date(row.next_due_at);
    if (base.getTime() > end) continue;
    const item = (due: Date): Occurrence => ({
      reminder_id: row.id,
      plant_id: row.plant_id,
      plant_name: row.plant_name,
      reminder_type: row.reminder_type,
      title: row.title,
      due_at: due.toISOString(),
      overdue: due.getTime() < now,
    });
    out.push(item(base));
    const schedule = scheduleOf(row);
    const step = intervalDays(schedule);
    // Jump over the overdue stretch instead of walking it.
    let k = step !== null ? Math.max(1, Math.ceil((now - base.getTime()) / (step * DAY_MS))) : 1;
    if (step === null && base.getTime() < now) {
      const nowDate = new Date(now);
      k = Math.max(1, (nowDate.getUTCFullYear() - base.getUTCFullYear()) * 12 + nowDate.getUTCMonth() - base.getUTCMonth() - 1);
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

export function remindersCalendar(rows: ReminderRow[], now: number): string {
  const events: CalendarEvent[] = rows
    .filter((row) => row.is_active)
    .map((row) => ({
      uid: `${row.id}@plant-community`,
      start: new Date(row.next_due_at),
      durationMinutes: 30,
      summary: row.title,
      description: `${TYPE_LABEL[row.reminder_type]}: ${row.plant_name}`,
      rrule: recurrenceFor(scheduleOf(row)),
    }));
  return buildCalendar({ prodId: "-//Plant Community//Care reminders//EN", name: "Plant care reminders", stamp: new Date(now), events });
}

// ---------------------------------------------------------------------------------------------
// Cron delivery

const PENDING = "r.is_active = 1 AND r.notified_due_at IS NOT r.next_due_at AND r.next_due_at <= ?1";
const DEDUPE_KEY = "'care_reminder:' || r.id || ':' || r.next_due_at";

/**
 * Turns due reminder occurrences into notifications: at most `limit` per run, oldest due first.
 * Idempotent: the unique `dedupe_key` stops a second insert for the same occurrence, and the
 * reminder is marked (`notified_due_at`) in the same atomic batch, so doubled or overlapping
 * runs deliver each occurrence exactly once. Only newly inserted notifications are pushed live.
 */
export async function deliverDueReminders(env: Bindings, logger?: Logger, options: { now?: number; limit?: number } = {}): Promise<number> {
  const nowIso = new Date(options.now ?? Date.now()).toISOString();
  const db = env.DB;
  const [inserted] = await db.batch<NotificationRow>([
    insertNotificationsStatement(
      db,
      "care_reminder",
      {
        userId: "r.user_id",
        title: "r.title",
        body: `'Time to ' || CASE r.reminder_type WHEN 'custom' THEN 'look after' ELSE r.reminder_type END || ' ' || ${PLANT_NAME} || '.'`,
        data: "json_object('reminder_id', r.id, 'plant_id', r.plant_id, 'due_at', r.next_due_at)",
        dedupeKey: DEDUPE_KEY,
        createdAt: "?1",
      },
      `FROM care_reminders r
       JOIN users u ON u.id = r.user_id
       JOIN user_plants p ON p.id = r.plant_id
       LEFT JOIN species s ON s.id = p.species_id
      WHERE ${PENDING} AND u.is_active = 1
      ORDER BY r.next_due_at, r.id
      LIMIT ?2`,
    ).bind(nowIso, options.limit ?? DELIVERY_BATCH),
    db
      .prepare(
        `UPDATE care_reminders AS r SET notified_due_at = r.next_due_at
          WHERE ${PENDING} AND EXISTS (SELECT 1 FROM notifications n WHERE n.dedupe_key = ${DEDUPE_KEY})`,
      )
      .bind(nowIso),
  ]);
  const rows = inserted!.results;
  await pushInserted(env, rows, logger);
  return rows.length;
}
