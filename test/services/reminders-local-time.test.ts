import { describe, expect, it } from "vitest";
import { reminderRow } from "../helpers/reminder-rows";
import { parseEvents, unfold } from "../../src/lib/ical";
import { localInstant } from "../../src/lib/wall-clock";
import {
  addIntervals,
  applyActionToSchedule,
  previewOccurrences,
  type ReminderRow,
  remindersCalendar,
  type Schedule,
  scheduleOf,
} from "../../src/services/reminders";

// Schedules keep the owner's clock (docs/api.md "Reminder times"): fixed instants, real zone data.

const at = (iso: string) => new Date(iso);
const iso = (d: Date) => d.toISOString();

const formats = new Map<string, Intl.DateTimeFormat>();

/** What a clock in `timeZone` reads at `d`: "2026-03-29 08:00". */
function clock(d: Date | string, timeZone: string): string {
  let format = formats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-GB", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    formats.set(timeZone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(new Date(d)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

const daily = (timeZone: string, anchorDay = 1): Schedule => ({ frequency: "daily", customIntervalDays: null, anchorDay, timeZone });
const monthly = (timeZone: string, anchorDay: number): Schedule => ({
  frequency: "monthly",
  customIntervalDays: null,
  anchorDay,
  timeZone,
});

/** Completes a reminder at each of `times` (ISO) and returns where its next due time lands each time. */
function completions(schedule: Schedule, times: string[]): string[] {
  let state = { schedule, nextDueAt: at(times[0]!), streak: 0, lastCompletedAt: null as Date | null };
  return times.map((t) => {
    const out = applyActionToSchedule(state, "complete", Date.parse(t));
    state = { ...state, schedule: { ...schedule, anchorDay: out.anchorDay }, nextDueAt: out.nextDueAt, streak: out.streak };
    return iso(out.nextDueAt);
  });
}

describe("a daily 08:00 reminder stays at 08:00 on its owner's clock", () => {
  it("Europe/Berlin, completed across the March and October changes", () => {
    // 28 March 2026 08:00 CET is 07:00Z; clocks go forward that night, so 08:00 CEST is 06:00Z.
    expect(completions(daily("Europe/Berlin"), ["2026-03-28T07:00:00.000Z", "2026-03-29T06:00:00.000Z"])).toEqual([
      "2026-03-29T06:00:00.000Z",
      "2026-03-30T06:00:00.000Z",
    ]);
    // 24 October 08:00 CEST is 06:00Z; after clocks go back on the 25th, 08:00 CET is 07:00Z.
    const october = completions(daily("Europe/Berlin"), ["2026-10-24T06:00:00.000Z", "2026-10-25T07:00:00.000Z"]);
    expect(october).toEqual(["2026-10-25T07:00:00.000Z", "2026-10-26T07:00:00.000Z"]);
    for (const due of october) expect(clock(due, "Europe/Berlin").slice(11)).toBe("08:00");
  });

  it("America/New_York (clocks change on 8 March and 1 November 2026)", () => {
    const s = daily("America/New_York");
    expect(iso(addIntervals(at("2026-03-07T13:00:00.000Z"), s))).toBe("2026-03-08T12:00:00.000Z");
    expect(iso(addIntervals(at("2026-10-31T12:00:00.000Z"), s))).toBe("2026-11-01T13:00:00.000Z");
    expect(clock(addIntervals(at("2026-10-31T12:00:00.000Z"), { ...s, frequency: "weekly" }), "America/New_York")).toBe("2026-11-07 08:00");
  });

  it("Australia/Sydney, whose summer time ends in April and starts in October", () => {
    const s = daily("Australia/Sydney");
    // 4 April 08:00 AEDT (+11) is 3 April 21:00Z; on the 5th clocks go back to AEST (+10).
    expect(iso(addIntervals(at("2026-04-03T21:00:00.000Z"), s))).toBe("2026-04-04T22:00:00.000Z");
    // 3 October 08:00 AEST is 2 October 22:00Z; on the 4th clocks go forward.
    expect(iso(addIntervals(at("2026-10-02T22:00:00.000Z"), s))).toBe("2026-10-03T21:00:00.000Z");
    expect(clock(addIntervals(at("2026-10-02T22:00:00.000Z"), { ...s, frequency: "biweekly" }), "Australia/Sydney")).toBe(
      "2026-10-17 08:00",
    );
  });

  it("Asia/Kolkata (+05:30, no summer time): nothing moves, whole days of 24 hours", () => {
    const s = daily("Asia/Kolkata");
    expect(iso(addIntervals(at("2026-03-28T02:30:00.000Z"), s, 2))).toBe("2026-03-30T02:30:00.000Z");
    expect(iso(addIntervals(at("2026-10-24T02:30:00.000Z"), { ...s, frequency: "custom", customIntervalDays: 3 }))).toBe(
      "2026-10-27T02:30:00.000Z",
    );
  });

  it("with no zone the schedule counts in UTC, as before", () => {
    const s: Schedule = { frequency: "daily", customIntervalDays: null, anchorDay: 28 };
    expect(iso(addIntervals(at("2026-03-28T07:00:00.123Z"), s))).toBe("2026-03-29T07:00:00.123Z");
    expect(iso(addIntervals(at("2026-03-28T07:00:00.000Z"), { ...s, timeZone: "UTC" }))).toBe("2026-03-29T07:00:00.000Z");
  });
});

describe("monthly reminders keep the local day of the month", () => {
  it("on the 31st in Berlin: clamped to the month's end, back to the 31st, at 08:00 local", () => {
    const s = monthly("Europe/Berlin", 31);
    const feb = addIntervals(at("2026-01-31T07:00:00.000Z"), s);
    expect(iso(feb)).toBe("2026-02-28T07:00:00.000Z");
    const mar = addIntervals(feb, s);
    expect(iso(mar)).toBe("2026-03-31T06:00:00.000Z"); // 08:00 CEST
    expect(clock(addIntervals(mar, s), "Europe/Berlin")).toBe("2026-04-30 08:00");
  });

  it("on the 1st at 00:30 in Berlin, which is the 28th/31st in UTC", () => {
    // Completed at 00:30 on 1 March (CET) = 28 February 23:30Z: anchored on the local 1st.
    const out = applyActionToSchedule(
      { schedule: monthly("Europe/Berlin", 5), nextDueAt: at("2026-02-05T07:00:00.000Z"), streak: 0, lastCompletedAt: null },
      "complete",
      Date.parse("2026-02-28T23:30:00.000Z"),
    );
    expect(out.anchorDay).toBe(1);
    expect(iso(out.nextDueAt)).toBe("2026-03-31T22:30:00.000Z"); // 1 April 00:30 CEST
    const skipped = applyActionToSchedule(
      { schedule: monthly("Europe/Berlin", out.anchorDay), nextDueAt: out.nextDueAt, streak: 1, lastCompletedAt: null },
      "skip",
      Date.parse("2026-04-01T00:00:00.000Z"),
    );
    expect(clock(skipped.nextDueAt, "Europe/Berlin")).toBe("2026-05-01 00:30");
  });

  it("on the 31st at 20:00 in New York, which is the 1st in UTC", () => {
    const s = monthly("America/New_York", 31);
    // 31 January 20:00 EST = 1 February 01:00Z.
    expect(clock(addIntervals(at("2026-02-01T01:00:00.000Z"), s), "America/New_York")).toBe("2026-02-28 20:00");
    expect(clock(addIntervals(at("2026-02-01T01:00:00.000Z"), s, 2), "America/New_York")).toBe("2026-03-31 20:00");
  });
});

describe("local times clocks skip or show twice (RFC 5545 §3.3.5)", () => {
  it("02:30 on the day Berlin's clocks go forward is read before the gap: 03:30 CEST", () => {
    const due = addIntervals(at("2026-03-28T01:30:00.000Z"), daily("Europe/Berlin")); // 02:30 CET
    expect(iso(due)).toBe("2026-03-29T01:30:00.000Z");
    expect(clock(due, "Europe/Berlin")).toBe("2026-03-29 03:30");
    // Counted from the series' base, the day after is 02:30 again.
    expect(clock(addIntervals(at("2026-03-28T01:30:00.000Z"), daily("Europe/Berlin"), 2), "Europe/Berlin")).toBe("2026-03-30 02:30");
  });

  it("02:30 on the day they go back is the first 02:30 (CEST), and the day after is 02:30 CET", () => {
    const due = addIntervals(at("2026-10-24T00:30:00.000Z"), daily("Europe/Berlin")); // 02:30 CEST
    expect(iso(due)).toBe("2026-10-25T00:30:00.000Z"); // not 01:30Z, the second 02:30
    expect(iso(addIntervals(due, daily("Europe/Berlin")))).toBe("2026-10-26T01:30:00.000Z");
  });
});

describe("actions on the owner's clock", () => {
  it("a snooze is real hours; the series then keeps the snoozed time on the local clock", () => {
    const state = { schedule: daily("Europe/Berlin"), nextDueAt: at("2026-03-28T19:00:00.000Z"), streak: 2, lastCompletedAt: null };
    // 00:30Z on 29 March is 01:30 CET; three real hours later, across the change, the clock reads 05:30 CEST.
    const snoozed = applyActionToSchedule(state, "snooze", Date.parse("2026-03-29T00:30:00.000Z"), 3);
    expect(iso(snoozed.nextDueAt)).toBe("2026-03-29T03:30:00.000Z");
    // Snoozed on the evening before the change to 23:00 CET: the next day's occurrence is 23:00 CEST.
    const evening = applyActionToSchedule(state, "snooze", Date.parse("2026-03-28T20:00:00.000Z"), 2);
    expect(clock(evening.nextDueAt, "Europe/Berlin")).toBe("2026-03-28 23:00");
    const after = applyActionToSchedule({ ...state, nextDueAt: evening.nextDueAt }, "skip", Date.parse("2026-03-28T23:00:00.000Z"));
    expect(clock(after.nextDueAt, "Europe/Berlin")).toBe("2026-03-29 23:00");
  });

  it("after the owner changes zone the stored due time stays and later ones keep its time on the new clock", () => {
    // Due 08:00 Berlin (07:00Z = 02:00 in New York); the owner now lives in New York.
    const out = applyActionToSchedule(
      { schedule: daily("America/New_York"), nextDueAt: at("2026-03-06T07:00:00.000Z"), streak: 0, lastCompletedAt: null },
      "skip",
      Date.parse("2026-03-06T08:00:00.000Z"),
    );
    expect(clock(out.nextDueAt, "America/New_York")).toBe("2026-03-07 02:00");
    expect(clock(addIntervals(out.nextDueAt, daily("America/New_York")), "America/New_York")).toBe("2026-03-08 03:00"); // 02:00 skipped
    expect(clock(addIntervals(out.nextDueAt, daily("America/New_York"), 2), "America/New_York")).toBe("2026-03-09 02:00");
  });
});

const row = (over: Partial<ReminderRow>): ReminderRow =>
  reminderRow({ frequency: "daily", nextDueAt: "2026-03-27T07:00:00.000Z", anchorDay: 27, timeZone: "Europe/Berlin", ...over });

describe("a due time a skipped hour moved on does not move the series", () => {
  const HALF_PAST_TWO = (2 * 60 + 30) * 60_000;
  /** Skips `times` times from `start`, reading the row back as the service does after each write. */
  function skips(start: ReminderRow, times: number): ReminderRow[] {
    const rows = [start];
    for (let i = 0; i < times; i++) {
      const last = rows[rows.length - 1]!;
      const out = applyActionToSchedule(
        { schedule: scheduleOf(last), nextDueAt: at(last.nextDueAt), streak: 0, lastCompletedAt: null },
        "skip",
        Date.parse(last.nextDueAt),
      );
      rows.push({ ...last, nextDueAt: iso(out.nextDueAt), anchorDay: out.anchorDay, localTimeMs: out.localTime });
    }
    return rows;
  }

  it("skip, the preview and the feed all go back to 02:30 after the day Berlin skips it", () => {
    // 28 March 2026 02:30 CET, set to repeat at 02:30.
    const start = row({ nextDueAt: "2026-03-28T01:30:00.000Z", anchorDay: 28, localTimeMs: HALF_PAST_TWO });
    const chain = skips(start, 3);
    expect(chain.map((r) => clock(r.nextDueAt, "Europe/Berlin"))).toEqual([
      "2026-03-28 02:30",
      "2026-03-29 03:30", // read before the gap
      "2026-03-30 02:30",
      "2026-03-31 02:30",
    ]);
    // The preview from the start lists the same instants the skips set, and so from the moved one.
    const preview = (r: ReminderRow) => previewOccurrences([r], Date.parse(r.nextDueAt), 3.5).results.map((o) => o.due_at);
    expect(preview(start)).toEqual(chain.map((r) => r.nextDueAt));
    expect(preview(chain[1]!)).toEqual([...chain.slice(1).map((r) => r.nextDueAt), "2026-04-01T00:30:00.000Z"]);
    // The feed from the moved due time names 02:30 on the 29th (a calendar reads it as 03:30 then) and repeats daily.
    const [event] = parseEvents(remindersCalendar([chain[1]!], Date.parse("2026-03-01T00:00:00.000Z")));
    expect(unfold(remindersCalendar([chain[1]!], 0))).toContain("DTSTART;TZID=Europe/Berlin:20260329T023000");
    expect(event!.RRULE).toBe("FREQ=DAILY");
  });

  it("a completion sets now's local time, a snooze the snoozed-to one, and a skip keeps the series' own", () => {
    const schedule = { ...daily("Europe/Berlin", 28), localTime: HALF_PAST_TWO };
    const state = { schedule, nextDueAt: at("2026-03-29T01:30:00.000Z"), streak: 1, lastCompletedAt: null };
    const completed = applyActionToSchedule(state, "complete", Date.parse("2026-03-29T07:15:00.000Z"));
    expect(completed.localTime).toBe((9 * 60 + 15) * 60_000); // 09:15 CEST
    expect(clock(completed.nextDueAt, "Europe/Berlin")).toBe("2026-03-30 09:15");
    const snoozed = applyActionToSchedule(state, "snooze", Date.parse("2026-03-29T07:15:00.000Z"), 2);
    expect(snoozed.localTime).toBe((11 * 60 + 15) * 60_000);
    expect(applyActionToSchedule(state, "skip", 0).localTime).toBe(HALF_PAST_TWO);
  });

  it("a stored time that no longer means the due instant (zone changed, or none stored) gives way to the instant's own", () => {
    // Set at 08:00 in Berlin (07:00Z); the owner now counts in New York, where 07:00Z is 02:00 or 03:00.
    expect(
      scheduleOf(row({ timeZone: "America/New_York", nextDueAt: "2026-03-06T07:00:00.000Z", localTimeMs: 8 * 3_600_000 })).localTime,
    ).toBe(2 * 3_600_000);
    expect(scheduleOf(row({ nextDueAt: "2026-03-29T01:30:00.000Z", localTimeMs: null })).localTime).toBe((3 * 60 + 30) * 60_000);
  });
});

describe("a due time in the second run of the hour clocks repeat", () => {
  /** A feed's daily events read as a calendar app reads them (§3.3.5, by wall-clock.ts), `days` occurrences each. */
  function occurrences(text: string, timeZone: string, days: number): string[] {
    const out: string[] = [];
    for (const event of parseEvents(text)) {
      const value = event.DTSTART!;
      const [, y, mo, d, h, mi, sec] = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z?$/.exec(value)!.map(Number);
      const wall = Date.UTC(y!, mo! - 1, d!, h!, mi!, sec!);
      if (value.endsWith("Z")) {
        expect(event.RRULE).toBeUndefined();
        out.push(iso(new Date(wall)));
        continue;
      }
      expect(event.RRULE).toBe("FREQ=DAILY");
      for (let k = 0; k < days; k++) out.push(iso(new Date(localInstant(wall + k * 86_400_000, timeZone))));
    }
    return out.sort();
  }

  it("is in the feed at its own instant, and the series after it at 02:30 each day, as the preview lists them", () => {
    // Snoozed to 25 October 2026 02:30 CET (01:30Z), the second 02:30 that night.
    const snoozed = row({ nextDueAt: "2026-10-25T01:30:00.000Z", anchorDay: 25, localTimeMs: (2 * 60 + 30) * 60_000 });
    const text = remindersCalendar([snoozed], Date.parse("2026-10-01T00:00:00.000Z"));
    const preview = previewOccurrences([snoozed], Date.parse(snoozed.nextDueAt), 3.5).results.map((o) => o.due_at);
    expect(preview[0]).toBe("2026-10-25T01:30:00.000Z");
    expect(occurrences(text, "Europe/Berlin", 3)).toEqual(preview);
    // Two events, their UIDs distinct; the first 02:30 that night (00:30Z) is no occurrence.
    const uids = parseEvents(text).map((e) => e.UID);
    expect(new Set(uids).size).toBe(2);
    expect(occurrences(text, "Europe/Berlin", 3)).not.toContain("2026-10-25T00:30:00.000Z");
    // The first run of the hour is written as one series, as before.
    expect(parseEvents(remindersCalendar([row({ nextDueAt: "2026-10-25T00:30:00.000Z", anchorDay: 25 })], 0))).toHaveLength(1);
  });
});

describe("reminders saved while schedules counted in UTC", () => {
  it("a monthly anchor holding the UTC day of a near-midnight due time is read as the local day", () => {
    // 1 March 00:30 in Berlin, saved with the UTC day (28) as its anchor.
    const legacy = row({ frequency: "monthly", anchorDay: 28, nextDueAt: "2026-02-28T23:30:00.000Z" });
    expect(scheduleOf(legacy).anchorDay).toBe(1);
    const out = applyActionToSchedule(
      { schedule: scheduleOf(legacy), nextDueAt: at(legacy.nextDueAt), streak: 0, lastCompletedAt: null },
      "skip",
      Date.parse("2026-03-01T00:00:00.000Z"),
    );
    expect(clock(out.nextDueAt, "Europe/Berlin")).toBe("2026-04-01 00:30");
    // A clamped anchor is kept: 31 with a due time on 28 February goes back to the 31st.
    expect(scheduleOf(row({ frequency: "monthly", anchorDay: 31, nextDueAt: "2026-02-28T07:00:00.000Z" })).anchorDay).toBe(31);
    expect(scheduleOf(row({ frequency: "monthly", anchorDay: 31, nextDueAt: "2026-04-29T22:30:00.000Z" })).anchorDay).toBe(31);
  });
});

describe("the preview across a change", () => {
  it("lists 08:00 Berlin time each day across the March change", () => {
    const { results } = previewOccurrences([row({})], Date.parse("2026-03-27T00:00:00.000Z"), 5);
    expect(results.map((o) => o.due_at)).toEqual([
      "2026-03-27T07:00:00.000Z",
      "2026-03-28T07:00:00.000Z",
      "2026-03-29T06:00:00.000Z",
      "2026-03-30T06:00:00.000Z",
      "2026-03-31T06:00:00.000Z",
    ]);
  });

  it("jumps an overdue stretch across a change without losing or repeating an occurrence", () => {
    const now = Date.parse("2026-04-10T06:30:00.000Z");
    const { results } = previewOccurrences([row({ nextDueAt: "2026-03-01T07:00:00.000Z" })], now, 2);
    expect(results.map((o) => `${o.due_at} ${o.overdue}`)).toEqual([
      "2026-03-01T07:00:00.000Z true",
      "2026-04-11T06:00:00.000Z false",
      "2026-04-12T06:00:00.000Z false",
    ]);
    const m = previewOccurrences([row({ frequency: "monthly", anchorDay: 1, nextDueAt: "2025-12-31T23:30:00.000Z" })], now, 30);
    expect(m.results.map((o) => clock(o.due_at, "Europe/Berlin"))).toEqual(["2026-01-01 00:30", "2026-05-01 00:30"]);
  });
});

/** The VTIMEZONE of `tzid` in `text`: its sub-components, each with DTSTART and offsets in minutes. */
function vtimezone(text: string, tzid: string) {
  const lines = unfold(text);
  const begin = lines.findIndex((l, i) => l === "BEGIN:VTIMEZONE" && lines[i + 1] === `TZID:${tzid}`);
  expect(begin).toBeGreaterThan(-1);
  const end = lines.indexOf("END:VTIMEZONE", begin);
  const minutes = (v: string) => (v[0] === "-" ? -1 : 1) * (Number(v.slice(1, 3)) * 60 + Number(v.slice(3, 5)));
  const subs: { kind: string; start: string; from: number; to: number }[] = [];
  let current: Record<string, string> = {};
  for (const line of lines.slice(begin + 2, end)) {
    const [name, value] = [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 1)];
    if (name === "BEGIN") current = { kind: value };
    else if (name === "END")
      subs.push({ kind: current.kind!, start: current.DTSTART!, from: minutes(current.TZOFFSETFROM!), to: minutes(current.TZOFFSETTO!) });
    else current[name] = value;
  }
  /** The offset (minutes) the VTIMEZONE gives at an instant: that of the last onset before it. */
  const offsetAt = (instant: number) => {
    let offset: number | undefined;
    for (const s of subs) {
      const m = s.start.match(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})$/)!;
      const onset = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) - s.from * 60_000;
      if (onset <= instant) offset = s.to;
    }
    return offset;
  };
  return { subs, offsetAt, count: lines.filter((l) => l === `TZID:${tzid}`).length };
}

/** The offset (minutes) `Intl` gives for `timeZone` at an instant. */
function intlOffset(instant: number, timeZone: string): number {
  const [date, time] = clock(new Date(instant), timeZone).split(" ");
  return (Date.parse(`${date}T${time}:00.000Z`) - Math.floor(instant / 60_000) * 60_000) / 60_000;
}

describe("the calendar export repeats at the same local time", () => {
  const text = remindersCalendar(
    [
      row({}),
      row({ id: "00000000-0000-4000-8000-000000000002", frequency: "monthly", anchorDay: 31, nextDueAt: "2026-01-31T07:00:00.000Z" }),
      row({ id: "00000000-0000-4000-8000-000000000003", timeZone: "Australia/Sydney", nextDueAt: "2026-04-03T21:00:00.000Z" }),
      row({ id: "00000000-0000-4000-8000-000000000004", timeZone: "Asia/Kolkata", nextDueAt: "2026-04-03T02:30:00.000Z" }),
      row({ id: "00000000-0000-4000-8000-000000000005", timeZone: "UTC", nextDueAt: "2026-04-03T08:00:00.000Z" }),
    ],
    Date.parse("2026-03-01T00:00:00.000Z"),
  );

  it("writes DTSTART with the owner's TZID at the local time, UTC ones with Z", () => {
    const lines = unfold(text);
    const starts = lines.filter((l) => l.startsWith("DTSTART") && lines[lines.indexOf(l) - 1]?.startsWith("DTSTAMP"));
    expect(starts).toEqual([
      "DTSTART;TZID=Europe/Berlin:20260327T080000",
      "DTSTART;TZID=Europe/Berlin:20260131T080000",
      "DTSTART;TZID=Australia/Sydney:20260404T080000",
      "DTSTART;TZID=Asia/Kolkata:20260403T080000",
      "DTSTART:20260403T080000Z",
    ]);
    const events = parseEvents(text);
    expect(events[1]!.RRULE).toBe("FREQ=MONTHLY;BYMONTHDAY=31,30,29,28;BYSETPOS=-1");
    expect(lines.filter((l) => l === "BEGIN:VTIMEZONE")).toHaveLength(3); // one per TZID, none for UTC
    expect(lines.indexOf("END:VTIMEZONE")).toBeLessThan(lines.indexOf("BEGIN:VEVENT"));
    for (const line of text.split("\r\n")) expect(new TextEncoder().encode(line).length).toBeLessThanOrEqual(75);
  });

  it("names a zone saved before names were made canonical by its IANA name, in TZID and VTIMEZONE alike", () => {
    const saved = remindersCalendar(
      [row({ timeZone: "europe/berlin" }), row({ id: "00000000-0000-4000-8000-000000000002", timeZone: "US/Pacific" })],
      Date.parse("2026-03-01T00:00:00.000Z"),
    );
    const lines = unfold(saved);
    expect(lines.filter((l) => l.startsWith("TZID:"))).toEqual(["TZID:Europe/Berlin", "TZID:America/Los_Angeles"]);
    expect(lines.filter((l) => l.startsWith("DTSTART;TZID="))).toEqual([
      "DTSTART;TZID=Europe/Berlin:20260327T080000",
      "DTSTART;TZID=America/Los_Angeles:20260327T000000",
    ]);
    // A saved name this runtime does not know is counted in UTC, and the feed says so.
    const unknown = unfold(remindersCalendar([row({ timeZone: "Mars/Olympus_Mons" })], Date.parse("2026-03-01T00:00:00.000Z")));
    expect(unknown.filter((l) => l.startsWith("DTSTART"))).toEqual(["DTSTART:20260327T070000Z"]);
    expect(unknown).not.toContain("BEGIN:VTIMEZONE");
  });

  it("gives each zone a VTIMEZONE whose offsets are Intl's at every day of the years it covers", () => {
    for (const zone of ["Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"]) {
      const tz = vtimezone(text, zone);
      expect(tz.count).toBe(1);
      for (let t = Date.parse("2026-01-01T12:00:00.000Z"); t < Date.parse("2036-12-31T00:00:00.000Z"); t += 86_400_000) {
        expect(tz.offsetAt(t), `${zone} ${new Date(t).toISOString()}`).toBe(intlOffset(t, zone));
      }
    }
    const berlin = vtimezone(text, "Europe/Berlin").subs;
    expect(berlin.slice(0, 3)).toEqual([
      { kind: "STANDARD", start: "20260101T010000", from: 60, to: 60 },
      { kind: "DAYLIGHT", start: "20260329T020000", from: 60, to: 120 },
      { kind: "STANDARD", start: "20261025T030000", from: 120, to: 60 },
    ]);
    expect(vtimezone(text, "Asia/Kolkata").subs).toEqual([{ kind: "STANDARD", start: "20260101T053000", from: 330, to: 330 }]);
    expect(vtimezone(text, "Australia/Sydney").subs[0]).toMatchObject({ kind: "DAYLIGHT", from: 660, to: 660 });
  });
});
