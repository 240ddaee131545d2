import { describe, expect, it } from "vitest";
import {
  buildCalendar,
  escapeText,
  foldLine,
  formatDateTime,
  formatRecurrence,
  parseEvents,
  unescapeText,
  unfold,
} from "../../src/lib/ical";

const octets = (s: string) => new TextEncoder().encode(s).length;

describe("iCalendar text escaping (RFC 5545 §3.3.11)", () => {
  it("escapes backslash, semicolon, comma and newlines, and drops other control characters", () => {
    expect(escapeText("a\\b;c,d\ne\r\nf\rg")).toBe("a\\\\b\\;c\\,d\\ne\\nf\\ng");
    expect(escapeText("tab\there\u0000\u001b\u007f")).toBe("tab\there");
    expect(escapeText("colon: ok")).toBe("colon: ok");
  });

  it("round-trips through unescape", () => {
    const original = "Water; then mist, gently\\slowly\nrepeat";
    expect(unescapeText(escapeText(original))).toBe(original);
  });
});

describe("line folding (RFC 5545 §3.1)", () => {
  it("leaves lines of up to 75 octets alone", () => {
    const line = "X".repeat(75);
    expect(foldLine(line)).toBe(line);
  });

  it("folds longer lines at 75 octets, continuations starting with one space", () => {
    const line = `SUMMARY:${"a".repeat(200)}`;
    const folded = foldLine(line);
    const physical = folded.split("\r\n");
    expect(physical.length).toBe(3);
    for (const p of physical) expect(octets(p)).toBeLessThanOrEqual(75);
    expect(octets(physical[0]!)).toBe(75);
    expect(physical.slice(1).every((p) => p.startsWith(" "))).toBe(true);
    expect(unfold(`${folded}\r\n`)).toEqual([line]);
  });

  it("counts octets, not characters, and never splits a UTF-8 character", () => {
    const line = `SUMMARY:${"🌵é".repeat(40)}`; // 4 + 2 octets each
    const physical = foldLine(line).split("\r\n");
    expect(physical.length).toBeGreaterThan(3);
    for (const p of physical) {
      expect(octets(p)).toBeLessThanOrEqual(75);
      expect(p).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/); // no lone high surrogate
      expect(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(new TextEncoder().encode(p))).toBe(p);
    }
    expect(unfold(`${foldLine(line)}\r\n`)).toEqual([line]);
  });
});

describe("calendar", () => {
  it("formats UTC date-times in basic format and recurrence rules", () => {
    expect(formatDateTime(new Date("2026-11-26T08:05:09.123Z"))).toBe("20261126T080509Z");
    expect(formatRecurrence({ freq: "WEEKLY", interval: 2 })).toBe("FREQ=WEEKLY;INTERVAL=2");
    expect(formatRecurrence({ freq: "DAILY", interval: 1 })).toBe("FREQ=DAILY");
    expect(formatRecurrence({ freq: "MONTHLY", byMonthDay: [31, 30, 29, 28], bySetPos: -1 })).toBe(
      "FREQ=MONTHLY;BYMONTHDAY=31,30,29,28;BYSETPOS=-1",
    );
  });

  it("builds a VCALENDAR with CRLF line endings, one VEVENT per event, escaped and folded", () => {
    const summary = `Water the big, thirsty; fern\n${"🌿".repeat(30)}`;
    const text = buildCalendar({
      prodId: "-//Test//Test//EN",
      name: "Care",
      stamp: new Date("2026-01-01T00:00:00Z"),
      events: [
        {
          uid: "a@test",
          start: new Date("2026-01-31T09:00:00Z"),
          summary,
          description: "d",
          durationMinutes: 30,
          rrule: { freq: "MONTHLY" },
        },
        { uid: "b@test", start: new Date("2026-02-01T09:00:00Z"), summary: "Mist" },
      ],
    });
    expect(text.endsWith("\r\n")).toBe(true);
    expect(text.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/); // no bare CR or LF
    for (const line of text.split("\r\n")) expect(octets(line)).toBeLessThanOrEqual(75);
    const lines = unfold(text);
    expect(lines.slice(0, 3)).toEqual(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//Test//EN"]);
    expect(lines.at(-1)).toBe("END:VCALENDAR");
    const events = parseEvents(text);
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      UID: "a@test",
      DTSTAMP: "20260101T000000Z",
      DTSTART: "20260131T090000Z",
      DURATION: "PT30M",
      RRULE: "FREQ=MONTHLY",
    });
    expect(unescapeText(events[0]!.SUMMARY!)).toBe(summary);
    expect(events[1]!.RRULE).toBeUndefined();
  });
});
