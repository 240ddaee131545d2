/**
 * The housekeeping's starting-soon notices (src/services/calendar.ts notifyStartingEvents) for an
 * event many people RSVP to: each run writes (and pushes live, a hub call each) a bounded number,
 * the next runs go on with those not told yet, and nobody is told twice.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_STARTING_NOTICES_PER_RUN, notifyStartingEvents } from "../../src/services/calendar";

const FIVE_MINUTES = 5 * 60_000;

/** A public event starting 30 minutes after `now`, with `n` accounts going. Answers its id. */
async function crowdedEvent(n: number, now: number): Promise<string> {
  const tag = crypto.randomUUID().slice(0, 8);
  const organizer = `organizer-${tag}`;
  const event = `event-${tag}`;
  const each = (insert: string) => `WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < ${n}) ${insert}`;
  await env.DB.batch([
    env.DB.prepare("INSERT INTO users (id, username, email) VALUES (?, ?, ?)").bind(organizer, organizer, `${organizer}@example.test`),
    env.DB.prepare(
      "INSERT INTO calendar_events (id, organizer_id, title, starts_at, ends_at, privacy) VALUES (?, ?, 'Seed swap', ?, ?, 'public')",
    ).bind(event, organizer, new Date(now + 30 * 60_000).toISOString(), new Date(now + 90 * 60_000).toISOString()),
    env.DB.prepare(
      each(
        `INSERT INTO users (id, username, email) SELECT 'guest-${tag}-' || k, 'guest${tag}x' || k, 'guest-${tag}-' || k || '@example.test' FROM n`,
      ),
    ),
    env.DB.prepare(each(`INSERT INTO calendar_rsvps (event_id, user_id, status) SELECT ?, 'guest-${tag}-' || k, 'going' FROM n`)).bind(
      event,
    ),
  ]);
  return event;
}

describe("starting-soon notices for a crowded event", () => {
  it("1 200 attendees: each run tells a bounded share, the next runs the rest, each attendee once", async () => {
    const now = Date.now();
    const n = 1200;
    const event = await crowdedEvent(n, now);
    const told = async () => {
      const row = await env.DB.prepare(
        "SELECT count(*) AS notices, count(DISTINCT user_id) AS people FROM notifications WHERE type = 'calendar_event_starting' AND dedupe_key LIKE ?",
      )
        .bind(`calendar_starting:${event}:%`)
        .first<{ notices: number; people: number }>();
      return row ?? { notices: 0, people: 0 };
    };
    const runs = Math.ceil(n / MAX_STARTING_NOTICES_PER_RUN);
    // All within the half hour before the event starts.
    expect(runs * FIVE_MINUTES).toBeLessThan(30 * 60_000);
    let total = 0;
    for (let run = 0; run < runs; run++) {
      const inserted = await notifyStartingEvents(env, now + run * FIVE_MINUTES);
      expect(inserted).toBeGreaterThan(0);
      expect(inserted).toBeLessThanOrEqual(MAX_STARTING_NOTICES_PER_RUN);
      total += inserted;
      expect(await told()).toEqual({ notices: total, people: total });
    }
    expect(total).toBe(n);
    // Everyone told: the next run writes nothing.
    expect(await notifyStartingEvents(env, now + runs * FIVE_MINUTES)).toBe(0);
    expect(await told()).toEqual({ notices: n, people: n });
  }, 240_000);
});
