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
 */
import { fetchPage, type Page, type PageRequest } from "../db/pagination";
import type { AuthenticatedUser, Bindings } from "../env";
import { AppError } from "../lib/errors";
import { uuidv7 } from "../lib/ids";

export const EVENT_PRIVACY = ["public", "followers", "private"] as const;
export const RSVP_STATUSES = ["going", "maybe", "not_going"] as const;
export const HEMISPHERES = ["north", "south"] as const;
export const TASK_TYPES = ["sow", "plant", "prune", "fertilize", "water", "harvest", "protect", "maintenance"] as const;
export type EventPrivacy = (typeof EVENT_PRIVACY)[number];
export type RsvpStatus = (typeof RSVP_STATUSES)[number];
export type Hemisphere = (typeof HEMISPHERES)[number];

/** Moderators of community content may edit or remove any event they can see. */
export const CALENDAR_MODERATOR_ROLES: AuthenticatedUser["role"][] = ["moderator", "admin"];
export const MAX_EVENT_DURATION_MS = 14 * 86_400_000;
/** The feed returns at most this many events; `truncated` says when there were more. */
export const FEED_MAX_EVENTS = 500;

const isModerator = (user: AuthenticatedUser | undefined) => !!user && CALENDAR_MODERATOR_ROLES.includes(user.role);

// ---------------------------------------------------------------------------------------------
// Reading events

export interface EventRow {
  id: string;
  organizer_id: string;
  organizer_username: string;
  title: string;
  description: string;
  starts_at: string;
  ends_at: string;
  location: string;
  privacy: EventPrivacy;
  capacity: number | null;
  going_count: number;
  maybe_count: number;
  not_going_count: number;
  my_rsvp: RsvpStatus | null;
  created_at: string;
  updated_at: string;
}

const EVENT_COLUMNS = `e.id, e.organizer_id, u.username AS organizer_username, e.title, e.description, e.starts_at, e.ends_at,
  e.location, e.privacy, e.capacity, e.created_at, e.updated_at, mine.status AS my_rsvp,
  (SELECT count(*) FROM calendar_rsvps r WHERE r.event_id = e.id AND r.status = 'going') AS going_count,
  (SELECT count(*) FROM calendar_rsvps r WHERE r.event_id = e.id AND r.status = 'maybe') AS maybe_count,
  (SELECT count(*) FROM calendar_rsvps r WHERE r.event_id = e.id AND r.status = 'not_going') AS not_going_count`;

/** FROM part shared by every event read; binds: [viewer id or null]. `mine` is the viewer's RSVP. */
const EVENT_FROM = `FROM calendar_events e
  JOIN users u ON u.id = e.organizer_id
  LEFT JOIN calendar_rsvps mine ON mine.event_id = e.id AND mine.user_id = ?`;

/** The visibility rules above as SQL; binds: [viewer id or null, 1 if moderator else 0]. */
const VISIBLE = `(e.privacy = 'public' OR e.organizer_id = ?
  OR (e.privacy = 'followers' AND (mine.user_id IS NOT NULL OR ? = 1)))`;

function visibilityBinds(viewer: AuthenticatedUser | undefined): unknown[] {
  return [viewer?.id ?? null, isModerator(viewer) ? 1 : 0];
}

export function canSee(row: Pick<EventRow, "privacy" | "organizer_id" | "my_rsvp">, viewer: AuthenticatedUser | undefined): boolean {
  if (row.privacy === "public") return true;
  if (!viewer) return false;
  if (row.organizer_id === viewer.id) return true;
  return row.privacy === "followers" && (row.my_rsvp !== null || isModerator(viewer));
}

export function eventBody(row: EventRow) {
  return {
    id: row.id,
    title: row.title,
    description: row.description,
    start: row.starts_at,
    end: row.ends_at,
    location: row.location,
    privacy: row.privacy,
    capacity: row.capacity,
    organizer: { id: row.organizer_id, username: row.organizer_username },
    rsvp_counts: { going: row.going_count, maybe: row.maybe_count, not_going: row.not_going_count },
    spots_left: row.capacity === null ? null : Math.max(0, row.capacity - row.going_count),
    my_rsvp: row.my_rsvp,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** The events `viewer` may see, soonest first; ended ones only on request. */
export function listEvents(
  env: Bindings,
  viewer: AuthenticatedUser | undefined,
  opts: { includePast: boolean; now: number },
  page: PageRequest,
): Promise<Page<EventRow>> {
  return fetchPage<EventRow>(env, eventPageQuery(viewer, opts), page);
}

/** Paged list query: visible events, soonest first; past ones only on request. */
function eventPageQuery(viewer: AuthenticatedUser | undefined, opts: { includePast: boolean; now: number }) {
  const binds: unknown[] = [viewer?.id ?? null, ...visibilityBinds(viewer)];
  let where = `WHERE ${VISIBLE}`;
  if (!opts.includePast) {
    where += " AND e.ends_at > ?";
    binds.push(new Date(opts.now).toISOString());
  }
  return { select: EVENT_COLUMNS, from: `${EVENT_FROM} ${where}`, order: "e.starts_at, e.id", binds };
}

async function loadEvent(env: Bindings, viewer: AuthenticatedUser | undefined, id: string): Promise<EventRow | null> {
  return env.DB.prepare(`SELECT ${EVENT_COLUMNS} ${EVENT_FROM} WHERE e.id = ?`)
    .bind(viewer?.id ?? null, id)
    .first<EventRow>();
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
  if (row.organizer_id !== viewer.id && !isModerator(viewer)) {
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
  await env.DB.prepare(
    `INSERT INTO calendar_events (id, organizer_id, title, description, starts_at, ends_at, location, privacy, capacity, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
    .bind(
      id,
      organizer.id,
      fields.title,
      fields.description,
      fields.start,
      fields.end,
      fields.location,
      fields.privacy,
      fields.capacity,
      ts,
      ts,
    )
    .run();
  return (await loadEvent(env, organizer, id))!;
}

export async function updateEvent(env: Bindings, viewer: AuthenticatedUser, id: string, patch: Partial<EventFields>): Promise<EventRow> {
  const current = await manageableEvent(env, viewer, id);
  if (patch.start !== undefined || patch.end !== undefined)
    assertEventTimes(patch.start ?? current.starts_at, patch.end ?? current.ends_at);
  const columns: Record<keyof EventFields, string> = {
    title: "title",
    description: "description",
    start: "starts_at",
    end: "ends_at",
    location: "location",
    privacy: "privacy",
    capacity: "capacity",
  };
  const sets: string[] = [];
  const binds: unknown[] = [];
  for (const key of Object.keys(columns) as (keyof EventFields)[]) {
    if (patch[key] === undefined) continue;
    sets.push(`${columns[key]} = ?`);
    binds.push(patch[key]);
  }
  if (sets.length === 0) return current;
  // The capacity guard sits in the UPDATE itself so a concurrent RSVP cannot slip under it.
  const capacity = patch.capacity ?? null;
  const updated = await env.DB.prepare(
    `UPDATE calendar_events SET ${sets.join(", ")}, updated_at = ?
      WHERE id = ? AND (? IS NULL OR ? >= (SELECT count(*) FROM calendar_rsvps WHERE event_id = ? AND status = 'going'))
      RETURNING id`,
  )
    .bind(...binds, new Date().toISOString(), id, capacity, capacity, id)
    .first();
  if (!updated) {
    if (!(await loadEvent(env, viewer, id))) throw notFound();
    throw new AppError("CAPACITY_BELOW_GOING", 409, "Capacity cannot be lower than the number of people already going.");
  }
  return (await loadEvent(env, viewer, id))!;
}

export async function deleteEvent(env: Bindings, viewer: AuthenticatedUser, id: string): Promise<void> {
  await manageableEvent(env, viewer, id);
  await env.DB.prepare("DELETE FROM calendar_events WHERE id = ?").bind(id).run();
}

// ---------------------------------------------------------------------------------------------
// RSVPs

/** The event as an RSVP target: visible, or a followers event the caller has the id of. */
async function rsvpTarget(env: Bindings, user: AuthenticatedUser, id: string): Promise<EventRow> {
  const row = await loadEvent(env, user, id);
  if (!row || !(canSee(row, user) || row.privacy === "followers")) throw notFound();
  return row;
}

/**
 * Upserts the caller's RSVP. The capacity, start-time and organiser checks run inside the one
 * INSERT … SELECT … WHERE statement, so concurrent `going` RSVPs can never exceed capacity; when
 * it writes nothing the event is re-read to say why. The answer is read in the same batch (one
 * transaction), so it is the state this RSVP left — not a later concurrent one's, which a
 * separate re-read could return (e.g. `going` answered with `my_rsvp: "maybe"`).
 */
export async function upsertRsvp(
  env: Bindings,
  user: AuthenticatedUser,
  id: string,
  status: RsvpStatus,
  now = Date.now(),
): Promise<EventRow> {
  const event = await rsvpTarget(env, user, id);
  if (event.organizer_id === user.id) throw new AppError("CANNOT_RSVP_OWN_EVENT", 400, "You cannot RSVP to your own event.");
  const nowIso = new Date(now).toISOString();
  const [written, state] = await env.DB.batch<EventRow>([
    env.DB.prepare(
      `INSERT INTO calendar_rsvps (event_id, user_id, status, created_at, updated_at)
       SELECT e.id, ?, ?, ?, ? FROM calendar_events e
        WHERE e.id = ? AND e.organizer_id <> ? AND e.starts_at > ?
          AND (? <> 'going' OR e.capacity IS NULL
               OR (SELECT count(*) FROM calendar_rsvps r WHERE r.event_id = e.id AND r.status = 'going' AND r.user_id <> ?) < e.capacity)
       ON CONFLICT (event_id, user_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at
       RETURNING status`,
    ).bind(user.id, status, nowIso, nowIso, id, user.id, nowIso, status, user.id),
    env.DB.prepare(`SELECT ${EVENT_COLUMNS} ${EVENT_FROM} WHERE e.id = ?`).bind(user.id, id),
  ]);
  if (written!.results.length === 0) {
    const fresh = await loadEvent(env, user, id);
    if (!fresh) throw notFound();
    if (fresh.starts_at <= nowIso) throw new AppError("EVENT_STARTED", 409, "RSVPs are closed: this event has already started.");
    throw new AppError("EVENT_FULL", 409, "This event is full.");
  }
  // The insert selected the event in this same transaction, so the read finds it.
  return state!.results[0]!;
}

/** Withdraws the caller's RSVP; 404 when there is none (or the event is not visible). */
export async function deleteRsvp(env: Bindings, user: AuthenticatedUser, id: string): Promise<void> {
  await visibleEvent(env, user, id);
  const deleted = await env.DB.prepare("DELETE FROM calendar_rsvps WHERE event_id = ? AND user_id = ? RETURNING event_id")
    .bind(id, user.id)
    .first();
  if (!deleted) throw new AppError("NOT_FOUND", 404, "You have no RSVP for this event.");
}

// ---------------------------------------------------------------------------------------------
// Seasonal tasks and the feed

export interface SeasonalTaskRow {
  id: string;
  month: number;
  hemisphere: Hemisphere;
  title: string;
  description: string;
  task_type: (typeof TASK_TYPES)[number];
}

/** Seasonal task templates of one hemisphere, in calendar order; of one month when `month` is given. */
export function listSeasonalTasks(
  env: Bindings,
  hemisphere: Hemisphere,
  month: number | undefined,
  page: PageRequest,
): Promise<Page<SeasonalTaskRow>> {
  return fetchPage<SeasonalTaskRow>(env, seasonalTaskPageQuery(hemisphere, month), page);
}

function seasonalTaskPageQuery(hemisphere: Hemisphere, month: number | undefined) {
  const binds: unknown[] = [hemisphere];
  let from = "FROM seasonal_task_templates WHERE hemisphere = ?";
  if (month !== undefined) {
    from += " AND month = ?";
    binds.push(month);
  }
  return { select: "id, month, hemisphere, title, description, task_type", from, order: "month, position, id", binds };
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

/** The viewer's visible events overlapping [from, to), and the seasonal tasks of those months. */
export async function calendarFeed(env: Bindings, viewer: AuthenticatedUser | undefined, from: Date, to: Date, hemisphere: Hemisphere) {
  const months = monthsInRange(from, to);
  const monthNumbers = [...new Set(months.map((m) => m.month))];
  const [events, tasks] = await env.DB.batch([
    env.DB.prepare(
      `SELECT ${EVENT_COLUMNS} ${EVENT_FROM} WHERE ${VISIBLE} AND e.starts_at < ? AND e.ends_at > ? ORDER BY e.starts_at, e.id LIMIT ?`,
    ).bind(viewer?.id ?? null, ...visibilityBinds(viewer), to.toISOString(), from.toISOString(), FEED_MAX_EVENTS + 1),
    env.DB.prepare(
      `SELECT id, month, hemisphere, title, description, task_type FROM seasonal_task_templates
        WHERE hemisphere = ? AND month IN (${monthNumbers.map(() => "?").join(", ")}) ORDER BY month, position, id`,
    ).bind(hemisphere, ...monthNumbers),
  ]);
  const eventRows = events!.results as unknown as EventRow[];
  const taskRows = tasks!.results as unknown as SeasonalTaskRow[];
  return {
    events: eventRows.slice(0, FEED_MAX_EVENTS),
    truncated: eventRows.length > FEED_MAX_EVENTS,
    seasonal: months.map(({ year, month }) => ({ year, month, tasks: taskRows.filter((t) => t.month === month) })),
  };
}
