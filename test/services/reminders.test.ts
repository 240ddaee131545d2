import { describe, expect, it } from "vitest";
import { reminderRow } from "../helpers/reminder-rows";
import { addIntervals, applyActionToSchedule, previewOccurrences, recurrenceFor, type Schedule } from "../../src/services/reminders";

const at = (iso: string) => new Date(iso);
const iso = (d: Date) => d.toISOString();
const monthly = (anchorDay: number): Schedule => ({ frequency: "monthly", customIntervalDays: null, anchorDay });

describe("schedule arithmetic", () => {
  it("daily, weekly, biweekly and custom add whole days", () => {
    const from = at("2026-03-10T08:30:00.000Z");
    expect(iso(addIntervals(from, { frequency: "daily", customIntervalDays: null, anchorDay: 10 }))).toBe("2026-03-11T08:30:00.000Z");
    expect(iso(addIntervals(from, { frequency: "weekly", customIntervalDays: null, anchorDay: 10 }))).toBe("2026-03-17T08:30:00.000Z");
    expect(iso(addIntervals(from, { frequency: "biweekly", customIntervalDays: null, anchorDay: 10 }))).toBe("2026-03-24T08:30:00.000Z");
    expect(iso(addIntervals(from, { frequency: "custom", customIntervalDays: 10, anchorDay: 10 }))).toBe("2026-03-20T08:30:00.000Z");
    expect(iso(addIntervals(from, { frequency: "weekly", customIntervalDays: null, anchorDay: 10 }, 3))).toBe("2026-03-31T08:30:00.000Z");
  });

  it("monthly clamps to the month end and returns to the anchor day (Jan 31 → Feb 28/29 → Mar 31)", () => {
    expect(iso(addIntervals(at("2026-01-31T09:00:00.000Z"), monthly(31)))).toBe("2026-02-28T09:00:00.000Z");
    expect(iso(addIntervals(at("2028-01-31T09:00:00.000Z"), monthly(31)))).toBe("2028-02-29T09:00:00.000Z");
    expect(iso(addIntervals(at("2026-02-28T09:00:00.000Z"), monthly(31)))).toBe("2026-03-31T09:00:00.000Z");
    expect(iso(addIntervals(at("2026-03-31T09:00:00.000Z"), monthly(31)))).toBe("2026-04-30T09:00:00.000Z");
    expect(iso(addIntervals(at("2026-01-30T09:00:00.000Z"), monthly(30)))).toBe("2026-02-28T09:00:00.000Z");
    expect(iso(addIntervals(at("2026-01-15T09:00:00.000Z"), monthly(15)))).toBe("2026-02-15T09:00:00.000Z");
  });

  it("monthly crosses the year end and counts several months from the base", () => {
    expect(iso(addIntervals(at("2026-12-31T23:59:00.000Z"), monthly(31)))).toBe("2027-01-31T23:59:00.000Z");
    expect(iso(addIntervals(at("2026-11-30T00:00:00.000Z"), monthly(30), 3))).toBe("2027-02-28T00:00:00.000Z");
    expect(iso(addIntervals(at("2026-01-31T00:00:00.000Z"), monthly(31), 13))).toBe("2027-02-28T00:00:00.000Z");
  });

  it("with no zone (UTC) a schedule keeps its UTC instant across Berlin's summer-time change", () => {
    // 08:00 in Berlin on 28 March 2026 (CET) is 07:00 UTC; the next day, after clocks go
    // forward, the same instant reads 09:00 there. A snooze is real hours across the change.
    const daily: Schedule = { frequency: "daily", customIntervalDays: null, anchorDay: 28 };
    expect(iso(addIntervals(at("2026-03-28T07:00:00.000Z"), daily))).toBe("2026-03-29T07:00:00.000Z");
    expect(iso(addIntervals(at("2026-10-24T06:00:00.000Z"), { ...daily, anchorDay: 24 }))).toBe("2026-10-25T06:00:00.000Z");
    const state = { schedule: daily, nextDueAt: at("2026-03-29T00:00:00.000Z"), streak: 0, lastCompletedAt: null };
    expect(iso(applyActionToSchedule(state, "snooze", Date.parse("2026-03-29T00:30:00.000Z"), 3).nextDueAt)).toBe(
      "2026-03-29T03:30:00.000Z",
    );
  });

  it("RRULEs match the arithmetic, including the month-end clamp", () => {
    expect(recurrenceFor({ frequency: "daily", customIntervalDays: null, anchorDay: 1 })).toEqual({ freq: "DAILY" });
    expect(recurrenceFor({ frequency: "biweekly", customIntervalDays: null, anchorDay: 1 })).toEqual({ freq: "WEEKLY", interval: 2 });
    expect(recurrenceFor({ frequency: "custom", customIntervalDays: 9, anchorDay: 1 })).toEqual({ freq: "DAILY", interval: 9 });
    expect(recurrenceFor(monthly(28))).toEqual({ freq: "MONTHLY" });
    expect(recurrenceFor(monthly(31))).toEqual({ freq: "MONTHLY", byMonthDay: [31, 30, 29, 28], bySetPos: -1 });
    expect(recurrenceFor(monthly(29))).toEqual({ freq: "MONTHLY", byMonthDay: [29, 28], bySetPos: -1 });
  });
});

describe("actions", () => {
  const now = Date.parse("2026-01-31T10:00:00.000Z");
  const state = {
    schedule: { frequency: "weekly" as const, customIntervalDays: null, anchorDay: 28 },
    nextDueAt: at("2026-01-28T08:00:00.000Z"),
    streak: 4,
    lastCompletedAt: null,
  };

  it("complete: now + one interval, streak +1, completion time recorded", () => {
    const out = applyActionToSchedule(state, "complete", now);
    expect(iso(out.nextDueAt)).toBe("2026-02-07T10:00:00.000Z");
    expect(out.streak).toBe(5);
    expect(out.lastCompletedAt && iso(out.lastCompletedAt)).toBe("2026-01-31T10:00:00.000Z");
  });

  it("complete on a monthly reminder re-anchors on today (Jan 31 → Feb 28)", () => {
    const out = applyActionToSchedule({ ...state, schedule: monthly(5) }, "complete", now);
    expect(iso(out.nextDueAt)).toBe("2026-02-28T10:00:00.000Z");
    expect(out.anchorDay).toBe(31);
  });

  it("skip: one interval on from the due time, streak reset, anchor kept", () => {
    const out = applyActionToSchedule(state, "skip", now);
    expect(iso(out.nextDueAt)).toBe("2026-02-04T08:00:00.000Z");
    expect(out.streak).toBe(0);
    expect(out.lastCompletedAt).toBeNull();
    const m = applyActionToSchedule({ ...state, schedule: monthly(31), nextDueAt: at("2026-02-28T08:00:00.000Z") }, "skip", now);
    expect(iso(m.nextDueAt)).toBe("2026-03-31T08:00:00.000Z");
  });

  it("snooze: now + hours, streak unchanged", () => {
    const out = applyActionToSchedule(state, "snooze", now, 36);
    expect(iso(out.nextDueAt)).toBe("2026-02-01T22:00:00.000Z");
    expect(out.streak).toBe(4);
  });
});

describe("preview", () => {
  const row = reminderRow;
  const now = Date.parse("2026-03-01T00:00:00.000Z");

  it("lists each occurrence in the window, sorted across reminders", () => {
    const { results, truncated } = previewOccurrences(
      [
        row({}),
        row({
          id: "00000000-0000-4000-8000-000000000002",
          frequency: "custom",
          customIntervalDays: 10,
          nextDueAt: "2026-03-05T12:00:00.000Z",
        }),
      ],
      now,
      14,
    );
    expect(truncated).toBe(false);
    expect(results.map((r) => `${r.due_at.slice(0, 13)} ${r.reminder_id.slice(-1)}`)).toEqual([
      "2026-03-02T08 1",
      "2026-03-05T12 2",
      "2026-03-09T08 1",
    ]);
  });

  it("includes an overdue occurrence flagged, then only future ones; skips inactive reminders", () => {
    const { results } = previewOccurrences(
      [
        row({ frequency: "daily", nextDueAt: "2026-02-20T08:00:00.000Z" }),
        row({ id: "00000000-0000-4000-8000-000000000003", isActive: false }),
      ],
      now,
      2,
    );
    expect(results.map((r) => [r.due_at, r.overdue])).toEqual([
      ["2026-02-20T08:00:00.000Z", true],
      ["2026-03-01T08:00:00.000Z", false],
      ["2026-03-02T08:00:00.000Z", false],
    ]);
  });

  it("follows the monthly clamp and caps the list", () => {
    const monthlyRow = row({ frequency: "monthly", nextDueAt: "2026-01-31T08:00:00.000Z", anchorDay: 31 });
    const { results } = previewOccurrences([monthlyRow], Date.parse("2026-01-30T00:00:00.000Z"), 90);
    expect(results.map((r) => r.due_at.slice(0, 10))).toEqual(["2026-01-31", "2026-02-28", "2026-03-31"]);
    const capped = previewOccurrences([row({ frequency: "daily" })], now, 90, 10);
    expect(capped.results).toHaveLength(10);
    expect(capped.truncated).toBe(true);
  });
});
