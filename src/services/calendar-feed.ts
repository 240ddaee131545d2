/**
 * A calendar feed apps can subscribe to (API.md §5b, issue 10 item 8). Calendar apps fetch a URL
 * on a schedule and send no headers, so the URL itself must say whose calendar it is and prove
 * it: `/api/v1/reminders/calendar-feed/<feed id>.<HMAC>/plant-community.ics`. The HMAC (SHA-256,
 * under a key derived from JWT_SECRET for this purpose only) makes the URL unforgeable and lets
 * garbage be refused without a database read; the row it names makes it revocable — deleting the
 * feed (or issuing a new one, which replaces it) ends the old URL at once. A URL signed under a
 * secret of JWT_SECRET_PREVIOUS works while that secret is listed there (README, rotation).
 *
 * The calendar holds the user's active care reminders (recurring, with an alarm when due) and the
 * events they are going to or might go to (with an alarm an hour before), with VALARMs.
 */
import { and, count, eq, gte, inArray, isNull, ne, or } from "drizzle-orm";
import { getConfig } from "../config";
import { database, rowIf } from "../db/client";
import { calendarEvents, calendarFeeds, calendarRsvps } from "../db/schema";
import type { Bindings } from "../env";
import { acceptedSecrets, keyId, signingKey, verifyingIndex, verifyingKeys } from "../lib/derived-keys";
import { AppError } from "../lib/errors";
import { base64UrlDecode, base64UrlEncode } from "../lib/hash";
import { buildCalendar, type CalendarEvent } from "../lib/ical";
import { uuidv7 } from "../lib/ids";
import type { TokenClaims } from "../lib/token-claims";
import { sessionEnded, sessionStillLive } from "./sessions";
import { activeReminders, reminderCalendarEvents } from "./reminders";
import { accountActive } from "./users";
import { DAY_MS } from "../lib/durations";

const PURPOSE = "calendar-feed/v1";

async function sign(env: Bindings, feedId: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await signingKey(getConfig(env), PURPOSE), new TextEncoder().encode(feedId));
  return base64UrlEncode(new Uint8Array(mac));
}

export function feedUrl(env: Bindings, token: string): string {
  return `${getConfig(env).PUBLIC_API_URL.replace(/\/$/, "")}/api/v1/reminders/calendar-feed/${token}/plant-community.ics`;
}

/**
 * Issues the user's feed URL, replacing (and so revoking) any earlier one. `session`: the access
 * token asking — its session's end as a stolen one revokes the URL too, and the URL is written
 * only while it is live, so one asked for just before every session ended does not outlive that.
 */
export async function issueCalendarFeed(
  env: Bindings,
  userId: string,
  session: Pick<TokenClaims, "jti" | "iat" | "sid">,
): Promise<{ url: string; created_at: string }> {
  const id = uuidv7();
  const createdAt = new Date().toISOString();
  const signedBy = await keyId(getConfig(env).JWT_SECRET);
  const sessionId = session.sid ?? null;
  const db = database(env);
  const written = await db
    .insert(calendarFeeds)
    .select(rowIf(calendarFeeds, { id, userId, createdAt, sessionId, keyId: signedBy }, sessionStillLive(userId, session)))
    .onConflictDoUpdate({ target: calendarFeeds.userId, set: { id, createdAt, lastFetchedAt: null, sessionId, keyId: signedBy } })
    .returning({ id: calendarFeeds.id })
    .get();
  if (!written) throw sessionEnded();
  return { url: feedUrl(env, `${id}.${await sign(env, id)}`), created_at: createdAt };
}

/** Revokes the user's feed URL; false when there was none. */
export async function revokeCalendarFeed(env: Bindings, userId: string): Promise<boolean> {
  const gone = await database(env).delete(calendarFeeds).where(eq(calendarFeeds.userId, userId)).returning({ id: calendarFeeds.id });
  return gone.length > 0;
}

const notFound = () => new AppError("NOT_FOUND", 404, "No such calendar feed (the link may have been revoked or replaced).");

/** The owner of a feed token; 404 for a forged, altered or revoked one (the same answer for each). */
export async function feedOwner(env: Bindings, token: string): Promise<string> {
  const [id, mac, extra] = token.split(".");
  if (!id || !mac || extra !== undefined || !/^[0-9a-f-]{36}$/.test(id)) throw notFound();
  // Under the current secret or a previous one: a calendar app polls the URL it was given for
  // months, so it works through a rotation while JWT_SECRET_PREVIOUS holds its secret.
  const given = base64UrlDecode(mac);
  if (given?.length !== 32 || base64UrlEncode(given) !== mac) throw notFound();
  const config = getConfig(env);
  const signer = await verifyingIndex(await verifyingKeys(config, PURPOSE), given, new TextEncoder().encode(id));
  if (signer === -1) throw notFound();
  // One write, so the primary answers it whatever replica the (credential-less) request's session
  // would read from: a feed revoked a moment ago, or an owner just deactivated, serves nothing.
  const row = await database(env)
    .update(calendarFeeds)
    .set({ lastFetchedAt: new Date().toISOString(), keyId: await keyId(acceptedSecrets(config)[signer]!) })
    .where(and(eq(calendarFeeds.id, id), accountActive(calendarFeeds.userId)))
    .returning({ userId: calendarFeeds.userId })
    .get();
  if (!row) throw notFound();
  return row.userId;
}

/** How recently a feed was fetched to count as subscribed: calendar apps poll every few hours. */
const POLLED_WITHIN_MS = 7 * DAY_MS;

/**
 * Rotation report: feeds calendar apps polled in the last week whose URL is signed under a secret
 * other than JWT_SECRET (or not known to be under it: issued before key ids and not fetched since
 * they were recorded). Each answers 404 once JWT_SECRET_PREVIOUS no longer lists its secret.
 */
export async function feedsPolledUnderPreviousSecret(env: Bindings, now = Date.now()): Promise<number> {
  const current = await keyId(getConfig(env).JWT_SECRET);
  const row = await database(env)
    .select({ n: count() })
    .from(calendarFeeds)
    .where(
      and(
        or(isNull(calendarFeeds.keyId), ne(calendarFeeds.keyId, current)),
        gte(calendarFeeds.lastFetchedAt, new Date(now - POLLED_WITHIN_MS).toISOString()),
      ),
    )
    .get();
  return row?.n ?? 0;
}

/** Events the user is going to (or might), from a month ago on, each with an alarm an hour before. */
async function rsvpEvents(env: Bindings, userId: string, now: number): Promise<CalendarEvent[]> {
  const rows = await database(env)
    .select({
      id: calendarEvents.id,
      title: calendarEvents.title,
      description: calendarEvents.description,
      startsAt: calendarEvents.startsAt,
      endsAt: calendarEvents.endsAt,
      location: calendarEvents.location,
      status: calendarRsvps.status,
    })
    .from(calendarRsvps)
    .innerJoin(calendarEvents, eq(calendarEvents.id, calendarRsvps.eventId))
    .where(
      and(
        eq(calendarRsvps.userId, userId),
        inArray(calendarRsvps.status, ["going", "maybe"]),
        // An event its organiser has since made private is theirs alone, whoever answered it
        // before (organisers cannot answer their own events).
        ne(calendarEvents.privacy, "private"),
        // A deactivated organiser's events are withdrawn.
        accountActive(calendarEvents.organizerId),
        gte(calendarEvents.endsAt, new Date(now - 30 * DAY_MS).toISOString()),
      ),
    )
    .limit(500);
  return rows.map((e) => ({
    uid: `event-${e.id}@plant-community`,
    start: new Date(e.startsAt),
    end: new Date(e.endsAt),
    summary: e.status === "maybe" ? `${e.title} (maybe)` : e.title,
    description: e.description,
    location: e.location || undefined,
    alarms: [{ minutesBefore: 60, description: `${e.title} starts in an hour` }],
  }));
}

/** The whole subscribed calendar of a user. */
export async function feedCalendar(env: Bindings, userId: string, now = Date.now()): Promise<string> {
  const [reminders, events] = await Promise.all([activeReminders(env, userId), rsvpEvents(env, userId, now)]);
  return buildCalendar({
    prodId: "-//Plant Community//Calendar feed//EN",
    name: "Plant Community",
    stamp: new Date(now),
    events: [
      ...reminderCalendarEvents(reminders).map((e) => ({ ...e, alarms: [{ minutesBefore: 0, description: e.summary }] })),
      ...events,
    ],
  });
}
