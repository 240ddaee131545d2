/**
 * Garden calendar (API.md §5): community events with RSVPs, a date-range feed, and seasonal
 * task templates. All times are ISO-8601 UTC strings; "now" is a parameter where rules use it.
 *
 * Rules the spec leaves open, decided here:
 * - Visibility. `public`: everyone, anonymous included. `private`: the organiser only.
 *   `followers`: there is no follow graph yet, so it means "people the organiser shared it
 *   with": the organiser, signed-in users who hold an RSVP (any status) to it, and forum-style
 *   moderators (moderator, admin) so anything other people can see can be moderated. A
 *   signed-in user who has a followers event's id may RSVP to it — that is how one joins — and
 *   sees it from then on; withdrawing the RSVP hides it again. Nobody but the organiser sees a
 *   private event, moderators included: no one else can see it, so there is nothing to moderate.
 * - Events a caller cannot see answer 404; visible events a caller may not change answer 403.
 * - RSVPs close when the event starts (409 EVENT_STARTED); the organiser cannot RSVP (400
 *   CANNOT_RSVP_OWN_EVENT); `going` to a full event is 409 EVENT_FULL. Capacity counts `going`
 *   only; switching to `maybe`/`not_going` is always allowed, and so is withdrawing.
 * - Lowering capacity below the current number of `going` RSVPs is refused (409
 *   CAPACITY_BELOW_GOING); nobody is silently dropped.
 * - An organiser holds at most MAX_UPCOMING_EVENTS events that have not ended (409 EVENT_LIMIT),
 *   checked inside the write by migration 0036's triggers so concurrent creates cannot overshoot;
 *   moving an ended event back into the future meets it too. The event list and the feed (which
 *   stops at FEED_MAX_EVENTS) are everyone's, and one account must not bury them.
 */
import { apiFields } from "../lib/fields";
import { and, asc, count, eq, gt, inArray, isNotNull, lt, or, type SQL, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import { type Database, database, runBatch, eqIfGiven } from "../db/client";
import { type Page, type PageRequest, selectPage, tablePage } from "../db/pagination";
import { calendarEvents, calendarRsvps, seasonalTaskTemplates, users } from "../db/schema";
import type { AuthenticatedUser, Bindings } from "../env";
import { AppError, orNotFound, PER_USER_CAPS, perUserCapError } from "../lib/errors";
import type { Logger } from "../lib/logger";
import { announceNotifications, insertNotifications, type Notification } from "./notifications";
import { uuidv7 } from "../lib/ids";
import { refuseIfDeactivated } from "./sessions";
import { accountActive } from "./users";
import { DAY_MS, HOUR_MS } from "../lib/durations";

export const EVENT_PRIVACY = ["public", "followers", "private"] as const;
export const RSVP_STATUSES = ["going", "maybe", "not_going"] as const;
export const HEMISPHERES = ["north", "south"] as const;
export const TASK_TYPES = ["sow", "plant", "prune", "fertilize", "water", "harvest", "protect", "maintenance"] as const;
export type EventPrivacy = (typeof EVENT_PRIVACY)[number];
export type RsvpStatus = (typeof RSVP_STATUSES)[number];
export type Hemisphere = (typeof HEMISPHERES)[number];

/** Moderators of community content may edit or remove any event they can see. */
export const CALENDAR_MODERATOR_ROLES: AuthenticatedUser["role"][] = ["moderator", "admin"];
/**
 * 14 days on the organiser's clock: 14 × 24 hours, plus the hour a summer-time change within them
 * adds (18 October 10:00 CEST to 1 November 10:00 CET is 14 days and an hour).
 */
export const MAX_EVENT_DURATION_MS = 14 * DAY_MS + HOUR_MS;
/** Events not yet ended that one organiser may hold (migration 0036's triggers). */
export const MAX_UPCOMING_EVENTS = PER_USER_CAPS.calendar_events.max;
/** The feed returns at most this many events; `truncated` says when there were more. */
export const FEED_MAX_EVENTS = 500;

const isModerator = (user: AuthenticatedUser | undefined) => !!user && CALENDAR_MODERATOR_ROLES.includes(user.role);

// ---------------------------------------------------------------------------------------------
// Reading events

const e = calendarEvents;
const rsvp = calendarRsvps;
/** The viewer's own RSVP, joined to each event. */
const mine = alias(calendarRsvps, "mine");

/** RSVPs of one status to the event of the row (a correlated count). */
// Named: D1's batch answers rows as objects keyed by column name, and the three would share one.
const rsvpCount = (status: RsvpStatus) =>
  sql<number>`(SELECT count(*) FROM ${rsvp} WHERE ${rsvp.eventId} = ${e.id} AND ${rsvp.status} = ${status})`.as(`${status}_count`);

const eventColumns = {
  id: e.id,
  organizerId: e.organizerId,
  organizerUsername: users.username,
  organizerActive: users.isActive,
  title: e.title,
  description: e.description,
  startsAt: e.startsAt,
  endsAt: e.endsAt,
  location: e.location,
  privacy: e.privacy,
  capacity: e.capacity,
  createdAt: e.createdAt,
  updatedAt: e.updatedAt,
  myRsvp: mine.status,
  goingCount: rsvpCount("going"),
  maybeCount: rsvpCount("maybe"),
  notGoingCount: rsvpCount("not_going"),
};

/** Joins the viewer's own RSVP as `mine` (none for anonymous viewers: `= NULL` matches nothing). */
const mineOn = (viewer: AuthenticatedUser | undefined) => and(eq(mine.eventId, e.id), sql`${mine.userId} = ${viewer?.id ?? null}`);

/** Events with their organiser and the viewer's RSVP (`mine`); every event read goes through here. */
export function selectEvents(db: Database, viewer: AuthenticatedUser | undefined, where: SQL | undefined) {
  return db
    .select(eventColumns)
    .from(e)
    .innerJoin(users, eq(users.id, e.organizerId))
    .leftJoin(mine, mineOn(viewer))
    .where(where)
    .$dynamic();
}

export type EventRow = Awaited<ReturnType<typeof selectEvents>>[number];

export interface SeasonalTaskFilter {
  hemisphere: Hemisphere;
  month?: number;
}

/** The visibility rules above, over the joined `mine` RSVP. */
function visible(viewer: AuthenticatedUser | undefined): SQL | undefined {
  return and(
    // A deactivated organiser's events are withdrawn: listed to moderators only.
    isModerator(viewer) ? undefined : eq(users.isActive, true),
    or(
      eq(e.privacy, "public"),
      viewer ? eq(e.organizerId, viewer.id) : undefined,
      and(eq(e.privacy, "followers"), isModerator(viewer) ? undefined : isNotNull(mine.userId)),
    ),
  );
}

export function canSee(
  row: Pick<EventRow, "privacy" | "organizerId" | "organizerActive" | "myRsvp">,
  viewer: AuthenticatedUser | undefined,
): boolean {
  if (!row.organizerActive && !isModerator(viewer)) return false;
  if (row.privacy === "public") return true;
  if (!viewer) return false;
  if (row.organizerId === viewer.id) return true;
  return row.privacy === "followers" && (row.myRsvp !== null || isModerator(viewer));
}

export function eventBody(row: EventRow) {
  return {
    ...apiFields(row, "id title description"),
    start: row.startsAt,
    end: row.endsAt,
    ...apiFields(row, "location privacy capacity"),
    organizer: { id: row.organizerId, username: row.organizerUsername },
    rsvp_counts: { going: row.goingCount, maybe: row.maybeCount, not_going: row.notGoingCount },
    spots_left: row.capacity === null ? null : Math.max(0, row.capacity - row.goingCount),
    ...apiFields(row, "myRsvp createdAt updatedAt"),
  };
}

/** The events `viewer` may see, soonest first; ended ones only on request. */
export function listEvents(
  env: Bindings,
  viewer: AuthenticatedUser | undefined,
  opts: { includePast: boolean; now: number },
  page: PageRequest,
): Promise<Page<EventRow>> {
  const db = database(env);
  const where = and(visible(viewer), opts.includePast ? undefined : gt(e.endsAt, new Date(opts.now).toISOString()));
  return selectPage(
    db,
    {
      rows: selectEvents(db, viewer, where).orderBy(asc(e.startsAt), asc(e.id)),
      count: db
        .select({ n: count() })
        .from(e)
        .innerJoin(users, eq(users.id, e.organizerId))
        .leftJoin(mine, mineOn(viewer))
        .where(where)
        .$dynamic(),
    },
    page,
  );
}

async function loadEvent(env: Bindings, viewer: AuthenticatedUser | undefined, id: string): Promise<EventRow | null> {
  return (await selectEvents(database(env), viewer, eq(e.id, id)).get()) ?? null;
}

const notFound = () => new AppError("NOT_FOUND", 404, "Event not found.");

/** An event the viewer may see, else 404. */
export async function visibleEvent(env: Bindings, viewer: AuthenticatedUser | undefined, id: string): Promise<EventRow> {
  const row = await loadEvent(env, viewer, id);
  if (!row || !canSee(row, viewer)) throw notFound();
  return row;
}

/** An event the viewer may change (organiser or moderator): 404 when invisible, 403 when only visible. */
async function manageableEvent(env: Bindings, viewer: AuthenticatedUser, id: string): Promise<EventRow> {
  const row = await visibleEvent(env, viewer, id);
  if (row.organizerId !== viewer.id && !isModerator(viewer)) {
    throw new AppError("FORBIDDEN", 403, "Only the event's organiser or a moderator can change it.");
  }
  return row;
}

// ---------------------------------------------------------------------------------------------
// Writing events

export interface EventFields {
  title: string;
  description: string;
  /** UTC ISO strings. */
  start: string;
  end: string;
  location: string;
  privacy: EventPrivacy;
  capacity: number | null;
}

/** Start before end and at most 14 days long; checked on the merged values of a PATCH too. */
export function assertEventTimes(start: string, end: string): void {
  const s = Date.parse(start);
  const e = Date.parse(end);
  if (!(s < e)) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { end: ["Must be after start."] });
  if (e - s > MAX_EVENT_DURATION_MS)
    throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", { end: ["An event may last at most 14 days."] });
}

export async function createEvent(env: Bindings, organizer: AuthenticatedUser, fields: EventFields): Promise<EventRow> {
  assertEventTimes(fields.start, fields.end);
  const id = uuidv7();
  const ts = new Date().toISOString();
  try {
    await database(env).insert(e).values({
      id,
      organizerId: organizer.id,
      title: fields.title,
      description: fields.description,
      startsAt: fields.start,
      endsAt: fields.end,
      location: fields.location,
      privacy: fields.privacy,
      capacity: fields.capacity,
      createdAt: ts,
      updatedAt: ts,
    });
  } catch (err) {
    // The organiser's cap is migration 0036's trigger, inside the insert.
    throw perUserCapError(err) ?? err;
  }
  return orNotFound(await loadEvent(env, organizer, id), "Event"); // deleted by a moderator since the insert
}

export async function updateEvent(env: Bindings, viewer: AuthenticatedUser, id: string, patch: Partial<EventFields>): Promise<EventRow> {
  const current = await manageableEvent(env, viewer, id);
  if (patch.start !== undefined || patch.end !== undefined) assertEventTimes(patch.start ?? current.startsAt, patch.end ?? current.endsAt);
  const set = Object.fromEntries(
    Object.entries({
      title: patch.title,
      description: patch.description,
      startsAt: patch.start,
      endsAt: patch.end,
      location: patch.location,
      privacy: patch.privacy,
      capacity: patch.capacity,
    }).filter(([, v]) => v !== undefined),
  ) as Partial<typeof e.$inferInsert>;
  if (Object.keys(set).length === 0) return current;
  // The capacity guard sits in the UPDATE itself so a concurrent RSVP cannot slip under it.
  const capacity = patch.capacity ?? null;
  const db = database(env);
  const ts = new Date().toISOString();
  // An ended event moved back into the future is one more not yet ended: migration 0036's
  // trigger holds the organiser's cap for it inside the UPDATE, as for a new one.
  const update = db
    .update(e)
    .set({ ...set, updatedAt: ts })
    .where(
      and(
        eq(e.id, id),
        capacity === null
          ? undefined
          : sql`${capacity} >= (SELECT count(*) FROM ${rsvp} WHERE ${rsvp.eventId} = ${id} AND ${rsvp.status} = 'going')`,
      ),
    )
    .returning({ id: e.id });
  // A change of time or place tells everyone going (or maybe), in the same batch as the change:
  // the notification's source names this very update (updated_at = ts), so a refused update
  // notifies nobody.
  const material =
    (set.startsAt !== undefined && set.startsAt !== current.startsAt) ||
    (set.endsAt !== undefined && set.endsAt !== current.endsAt) ||
    (set.location !== undefined && set.location !== current.location);
  let updated: { id: string }[];
  let told: Notification[];
  try {
    [updated, told] = material
      ? ((await runBatch(db, [update, eventNotice(db, sql`(${id})`, "updated", ts, sql`${e.updatedAt} = ${ts}`)])) as [
          { id: string }[],
          Notification[],
        ])
      : [await update, []];
  } catch (err) {
    throw perUserCapError(err) ?? err;
  }
  if (updated.length === 0) {
    if (!(await loadEvent(env, viewer, id))) throw notFound();
    throw new AppError("CAPACITY_BELOW_GOING", 409, "Capacity cannot be lower than the number of people already going.");
  }
  await announceNotifications(env, told);
  return orNotFound(await loadEvent(env, viewer, id), "Event"); // deleted since the update
}

export async function deleteEvent(env: Bindings, viewer: AuthenticatedUser, id: string): Promise<void> {
  await manageableEvent(env, viewer, id);
  const db = database(env);
  // Everyone going hears of the cancellation, written before the RSVPs go with the event.
  const [told] = (await runBatch(db, [
    eventNotice(db, sql`(${id})`, "cancelled", new Date().toISOString(), sql`1`),
    db.delete(e).where(eq(e.id, id)),
  ])) as [Notification[], unknown];
  await announceNotifications(env, told);
}

/**
 * For the batch that deletes `organizerId`'s account, before its events go: everyone going to one
 * that has not ended hears it is cancelled, as when the organiser deletes it; only while `when` (a
 * self-contained condition) holds.
 */
export function organiserLeavingNotice(db: Database, organizerId: string, when: SQL = sql`1`) {
  const ts = new Date().toISOString();
  return eventNotice(
    db,
    sql`(SELECT ${e.id} FROM ${e} WHERE ${e.organizerId} = ${organizerId} AND ${e.endsAt} > ${ts})`,
    "cancelled",
    ts,
    when,
  );
}

/** What "when and where" reads like in a notification (UTC; emails add the reader's zone). */
const whenWhere = sql`strftime('%Y-%m-%d %H:%M UTC', ${e.startsAt}) || CASE WHEN ${e.location} <> '' THEN ' · ' || ${e.location} ELSE '' END`;

/**
 * People going or maybe (not the organiser) of event `id`, as the source of a fan-out. None for
 * an event its organiser has made private: it is theirs alone, whoever answered it before.
 */
function attendees(ids: SQL, extra: SQL) {
  return sql`FROM ${rsvp} JOIN ${e} ON ${e.id} = ${rsvp.eventId} JOIN ${users} ON ${users.id} = ${rsvp.userId}
    WHERE ${rsvp.eventId} IN ${ids} AND ${rsvp.status} IN ('going', 'maybe') AND ${rsvp.userId} <> ${e.organizerId}
      AND ${e.privacy} <> 'private' AND ${users.isActive} = 1 AND ${extra}`;
}

/** A `calendar_event_changed` notification per attendee: the time or place changed, or the event is cancelled. */
function eventNotice(db: Database, ids: SQL, change: "updated" | "cancelled", ts: string, extra: SQL) {
  return insertNotifications(
    db,
    "calendar_event_changed",
    {
      userId: sql`${rsvp.userId}`,
      title: change === "cancelled" ? sql`'Cancelled: ' || ${e.title}` : sql`'Changed: ' || ${e.title}`,
      body:
        change === "cancelled" ? sql`'The organiser cancelled this event (' || ${whenWhere} || ').'` : sql`'Now: ' || ${whenWhere} || '.'`,
      data: sql`json_object('event_id', ${e.id}, 'change', ${change}, 'starts_at', ${e.startsAt})`,
      dedupeKey: sql`'calendar_changed:' || ${e.id} || ':' || ${ts} || ':' || ${rsvp.userId}`,
      createdAt: ts,
    },
    attendees(ids, extra),
  );
}

/** How long before an event its attendees hear that it starts soon. */
export const STARTING_SOON_MS = 60 * 60_000;

/**
 * Starting-soon notices one run writes, at most (soonest event first): each is a hub call to push
 * it live, so a run (one invocation, its subrequests shared by the whole housekeeping) stays well
 * under the limits however many people RSVP to one event; the next runs take the rest.
 */
export const MAX_STARTING_NOTICES_PER_RUN = 250;

/**
 * Cron: `calendar_event_starting` for everyone going (or maybe) to an event that starts within
 * the hour, at most MAX_STARTING_NOTICES_PER_RUN a run among those not told yet, so the next runs
 * go on with the rest. The dedupe key names the start time, so each start is told once however
 * many runs see it — and a moved event is told again for its new time.
 */
export async function notifyStartingEvents(env: Bindings, now = Date.now(), logger?: Logger): Promise<number> {
  const db = database(env);
  const nowIso = new Date(now).toISOString();
  const soon = new Date(now + STARTING_SOON_MS).toISOString();
  const dedupeKey = sql`'calendar_starting:' || ${e.id} || ':' || ${e.startsAt} || ':' || ${rsvp.userId}`;
  const inserted = await insertNotifications(
    db,
    "calendar_event_starting",
    {
      userId: sql`${rsvp.userId}`,
      title: sql`'Starting soon: ' || ${e.title}`,
      body: sql`${whenWhere}`,
      data: sql`json_object('event_id', ${e.id}, 'starts_at', ${e.startsAt})`,
      dedupeKey,
      createdAt: nowIso,
    },
    // Those told already are left out before the LIMIT (not only refused by the dedupe key's
    // conflict), or the same first rows would fill every run and the rest never be told.
    sql`FROM ${rsvp} JOIN ${e} ON ${e.id} = ${rsvp.eventId} JOIN ${users} ON ${users.id} = ${rsvp.userId}
      WHERE ${e.startsAt} > ${nowIso} AND ${e.startsAt} <= ${soon} AND ${rsvp.status} IN ('going', 'maybe') AND ${users.isActive} = 1
        AND ${e.privacy} <> 'private' AND ${rsvp.userId} <> ${e.organizerId}
        AND ${accountActive(e.organizerId)}
        AND NOT EXISTS (SELECT 1 FROM notifications told WHERE told.dedupe_key = ${dedupeKey})
      ORDER BY ${e.startsAt}, ${e.id}, ${rsvp.userId} LIMIT ${MAX_STARTING_NOTICES_PER_RUN}`,
  );
  await announceNotifications(env, inserted, logger);
  return inserted.length;
}

// ---------------------------------------------------------------------------------------------
// RSVPs

/** The event as an RSVP target: visible, or a followers event the caller has the id of. */
async function rsvpTarget(env: Bindings, user: AuthenticatedUser, id: string): Promise<EventRow> {
  const row = await loadEvent(env, user, id);
  if (!row || !mayRsvpTo(row, user)) throw notFound();
  return row;
}

function mayRsvpTo(row: EventRow, user: AuthenticatedUser): boolean {
  return canSee(row, user) || (row.privacy === "followers" && row.organizerActive);
}

/**
 * mayRsvpTo as SQL over the event `e`, for anyone but its organiser (who cannot RSVP): it is not
 * private, and its organiser is active (moderators see a deactivated organiser's events too).
 */
function rsvpableBy(user: AuthenticatedUser): SQL {
  const organizerActive = isModerator(user)
    ? sql`1`
    : sql`EXISTS (SELECT 1 FROM ${users} WHERE ${users.id} = ${e.organizerId} AND ${users.isActive} = 1)`;
  return sql`${e.privacy} <> 'private' AND ${organizerActive}`;
}

/**
 * Upserts the caller's RSVP. The capacity, start-time, organiser and visibility checks run inside
 * the one INSERT … SELECT … WHERE statement, so concurrent `going` RSVPs can never exceed capacity,
 * and an event made private (or whose organiser was deactivated) since the check above takes no
 * RSVP (404, as it would have before); when it writes nothing the event is re-read to say why.
 * The answer is read in the same batch (one transaction), so it is the state this RSVP left — not
 * a later concurrent one's, which a separate re-read could return (e.g. `going` answered with
 * `my_rsvp: "maybe"`).
 */
export async function upsertRsvp(
  env: Bindings,
  user: AuthenticatedUser,
  id: string,
  status: RsvpStatus,
  now = Date.now(),
): Promise<EventRow> {
  const event = await rsvpTarget(env, user, id);
  if (event.organizerId === user.id) throw new AppError("CANNOT_RSVP_OWN_EVENT", 400, "You cannot RSVP to your own event.");
  const nowIso = new Date(now).toISOString();
  const db = database(env);
  const [written, state] = (await runBatch(db, [
    // -- conditional upsert: the capacity, start-time, organiser and visibility checks are the
    // statement's own WHERE, so concurrent RSVPs cannot overshoot. Each value named by its
    // column: drizzle refuses a select whose fields are not the table's, in its order, where a
    // raw SELECT's values would silently shift.
    db
      .insert(rsvp)
      .select(
        db
          .select({
            eventId: e.id,
            userId: sql<string>`${user.id}`.as("user_id"),
            status: sql<RsvpStatus>`${status}`.as("status"),
            createdAt: sql<string>`${nowIso}`.as("created_at"),
            updatedAt: sql<string>`${nowIso}`.as("updated_at"),
          })
          .from(e)
          .where(
            sql`${e.id} = ${id} AND ${e.organizerId} <> ${user.id} AND ${rsvpableBy(user)} AND ${e.startsAt} > ${nowIso}
             AND ${accountActive(sql`${user.id}`)}
             AND (${status} <> 'going' OR ${e.capacity} IS NULL
                  OR (SELECT count(*) FROM ${rsvp} WHERE ${rsvp.eventId} = ${e.id} AND ${rsvp.status} = 'going' AND ${rsvp.userId} <> ${user.id}) < ${e.capacity})`,
          ),
      )
      .onConflictDoUpdate({
        target: [rsvp.eventId, rsvp.userId],
        set: { status: sql`excluded.status`, updatedAt: sql`excluded.updated_at` },
      })
      .returning({ status: rsvp.status }),
    selectEvents(db, user, eq(e.id, id)),
  ])) as [{ status: RsvpStatus }[], EventRow[]];
  if (written.length === 0) {
    await refuseIfDeactivated(env, user.id); // the caller's account deactivated (or deleted) meanwhile
    const fresh = await loadEvent(env, user, id);
    if (!fresh || !mayRsvpTo(fresh, user)) throw notFound();
    if (fresh.startsAt <= nowIso) throw new AppError("EVENT_STARTED", 409, "RSVPs are closed: this event has already started.");
    throw new AppError("EVENT_FULL", 409, "This event is full.");
  }
  // The insert selected the event in this same transaction, so the read finds it.
  return state[0]!;
}

/** Withdraws the caller's RSVP; 404 when there is none (or the event is not visible). */
export async function deleteRsvp(env: Bindings, user: AuthenticatedUser, id: string): Promise<void> {
  await visibleEvent(env, user, id);
  const deleted = await database(env)
    .delete(rsvp)
    .where(and(eq(rsvp.eventId, id), eq(rsvp.userId, user.id)))
    .returning({ eventId: rsvp.eventId })
    .get();
  if (!deleted) throw new AppError("NOT_FOUND", 404, "You have no RSVP for this event.");
}

// ---------------------------------------------------------------------------------------------
// Seasonal tasks and the feed

export type SeasonalTaskRow = typeof seasonalTaskTemplates.$inferSelect;

const tasksOrder = () => [asc(seasonalTaskTemplates.month), asc(seasonalTaskTemplates.position), asc(seasonalTaskTemplates.id)];

/** Seasonal task templates of one hemisphere, in calendar order; of one month when `month` is given. */
export function listSeasonalTasks(env: Bindings, filter: SeasonalTaskFilter, page: PageRequest): Promise<Page<SeasonalTaskRow>> {
  const t = seasonalTaskTemplates;
  const where = and(eq(t.hemisphere, filter.hemisphere), eqIfGiven(t.month, filter.month));
  return tablePage(database(env), t, where, tasksOrder(), page);
}

/** Each (year, month) the half-open range [from, to) touches, in order. */
export function monthsInRange(from: Date, to: Date): { year: number; month: number }[] {
  const out: { year: number; month: number }[] = [];
  let y = from.getUTCFullYear();
  let m = from.getUTCMonth();
  const last = new Date(to.getTime() - 1);
  while (y < last.getUTCFullYear() || (y === last.getUTCFullYear() && m <= last.getUTCMonth())) {
    out.push({ year: y, month: m + 1 });
    m++;
    if (m === 12) {
      m = 0;
      y++;
    }
  }
  return out;
}

/**
 * The viewer's visible events overlapping [from, to), and the seasonal tasks of the months the
 * range touches on the asker's clock: `local`, the range's wall-clock times read as UTC (a
 * December asked for at +01:00 starts on 30 November in UTC, but has no November tasks).
 */
export async function calendarFeed(
  env: Bindings,
  viewer: AuthenticatedUser | undefined,
  from: Date,
  to: Date,
  hemisphere: Hemisphere,
  local: { from: Date; to: Date } = { from, to },
) {
  const months = monthsInRange(local.from, local.to);
  const monthNumbers = [...new Set(months.map((m) => m.month))];
  const db = database(env);
  const t = seasonalTaskTemplates;
  const [eventRows, taskRows] = (await runBatch(db, [
    selectEvents(db, viewer, and(visible(viewer), lt(e.startsAt, to.toISOString()), gt(e.endsAt, from.toISOString())))
      .orderBy(asc(e.startsAt), asc(e.id))
      .limit(FEED_MAX_EVENTS + 1),
    db
      .select()
      .from(t)
      .where(and(eq(t.hemisphere, hemisphere), inArray(t.month, monthNumbers)))
      .orderBy(...tasksOrder()),
  ])) as [EventRow[], SeasonalTaskRow[]];
  return {
    events: eventRows.slice(0, FEED_MAX_EVENTS),
    truncated: eventRows.length > FEED_MAX_EVENTS,
    seasonal: months.map(({ year, month }) => ({ year, month, tasks: taskRows.filter((t) => t.month === month) })),
  };
}
