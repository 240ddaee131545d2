/**
 * iCalendar (RFC 5545) writing: just what a calendar export of recurring events needs, in UTC or
 * on a named zone's clock (`DTSTART;TZID=` with the zone's VTIMEZONE). Pure functions, no I/O.
 * Lines end in CRLF and are folded at 75 octets (§3.1) without ever splitting a UTF-8 character;
 * TEXT values are escaped as §3.3.11 requires.
 */

import { DAY_MS } from "./durations";
import { localWall, offsetAt } from "./wall-clock";

const encoder = new TextEncoder();
const MAX_LINE_OCTETS = 75;

/** TEXT escaping (§3.3.11): backslash, semicolon, comma, newline; other control characters go. */
export function escapeText(value: string): string {
  return (
    value
      .replace(/\\/g, "\\\\")
      .replace(/;/g, "\\;")
      .replace(/,/g, "\\,")
      .replace(/\r\n|\r|\n/g, "\\n")
      // §3.3.11: TEXT allows no control characters except HTAB.
      .replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, "")
  );
}

/**
 * Folds one content line (§3.1): no physical line longer than 75 octets; each continuation
 * starts with one space, which counts towards its 75.
 */
export function foldLine(line: string): string {
  if (encoder.encode(line).length <= MAX_LINE_OCTETS) return line;
  const parts: string[] = [];
  let current = "";
  let currentOctets = 0;
  let limit = MAX_LINE_OCTETS;
  for (const char of line) {
    const octets = encoder.encode(char).length;
    if (currentOctets + octets > limit) {
      parts.push(current);
      current = "";
      currentOctets = 0;
      limit = MAX_LINE_OCTETS - 1; // the leading space of the continuation
    }
    current += char;
    currentOctets += octets;
  }
  parts.push(current);
  return parts.join("\r\n ");
}

/** A UTC DATE-TIME in basic format: 20261126T080000Z. */
export function formatDateTime(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/[-:]/g, "");
}

/** A local DATE-TIME (a wall-clock time as UTC ms) in basic format, no `Z`: 20261126T080000. */
export function formatLocalDateTime(wall: number): string {
  return formatDateTime(new Date(Math.floor(wall / 1000) * 1000)).slice(0, -1);
}

/** A UTC-OFFSET (§3.3.14): +0100, -0500, +0530 (seconds when there are any). */
export function formatOffset(offsetMs: number): string {
  const sign = offsetMs < 0 ? "-" : "+";
  const total = Math.abs(Math.round(offsetMs / 1000));
  const two = (n: number) => String(n).padStart(2, "0");
  const seconds = total % 60;
  return `${sign}${two(Math.floor(total / 3600))}${two(Math.floor(total / 60) % 60)}${seconds ? two(seconds) : ""}`;
}

const WEEK_MS = 7 * DAY_MS;

/** The first instant at or after which the zone's offset is `offsetAt(hi)`, to the second. */
function changeBetween(lo: number, hi: number, timeZone: string): number {
  const after = offsetAt(hi, timeZone);
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (offsetAt(mid, timeZone) === after) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * A VTIMEZONE (§3.6.5) for `timeZone` from `Intl`: the offset in force at the start of `fromYear`,
 * then every change up to the end of `toYear` as a DAYLIGHT (the offset grows) or STANDARD
 * sub-component with the local time it happens at. Changes are found week by week, so two within
 * one week (no zone has them in the years a calendar shows) would be missed.
 */
export function timeZoneLines(timeZone: string, fromYear: number, toYear: number): string[] {
  const key = `${timeZone}|${fromYear}|${toYear}`;
  const known = zoneLinesMemo.get(key);
  if (known) return [...known];
  const lines = zoneLinesFromIntl(timeZone, fromYear, toYear);
  // A calendar app polls its feed every hour or so, and its owner's zone and years rarely change:
  // the ~1 000 Intl calls are spent once per isolate, not on every poll.
  if (zoneLinesMemo.size >= ZONE_MEMO_ENTRIES) zoneLinesMemo.delete(zoneLinesMemo.keys().next().value as string);
  zoneLinesMemo.set(key, lines);
  return [...lines];
}

/** Zones' VTIMEZONE lines this isolate has built (insertion order: the oldest goes first). */
const zoneLinesMemo = new Map<string, readonly string[]>();
const ZONE_MEMO_ENTRIES = 64;

function zoneLinesFromIntl(timeZone: string, fromYear: number, toYear: number): string[] {
  const start = Date.UTC(fromYear, 0, 1);
  const end = Date.UTC(toYear + 1, 0, 1);
  const changes: { at: number; from: number; to: number }[] = [];
  const initial = offsetAt(start, timeZone);
  let previous = initial;
  for (let t = start + WEEK_MS; t < end + WEEK_MS; t += WEEK_MS) {
    const offset = offsetAt(t, timeZone);
    if (offset === previous) continue;
    changes.push({ at: changeBetween(t - WEEK_MS, t, timeZone), from: previous, to: offset });
    previous = offset;
  }
  const kind = (from: number, to: number) => (to > from ? "DAYLIGHT" : "STANDARD");
  const lines = ["BEGIN:VTIMEZONE", `TZID:${timeZone}`];
  const sub = (name: string, at: number, from: number, to: number) =>
    lines.push(
      `BEGIN:${name}`,
      `DTSTART:${formatLocalDateTime(at + from)}`,
      `TZOFFSETFROM:${formatOffset(from)}`,
      `TZOFFSETTO:${formatOffset(to)}`,
      `END:${name}`,
    );
  // Before the first change: the opposite kind of that change (standard time before clocks go forward).
  sub(changes[0] && kind(changes[0].from, changes[0].to) === "STANDARD" ? "DAYLIGHT" : "STANDARD", start, initial, initial);
  for (const change of changes) sub(kind(change.from, change.to), change.at, change.from, change.to);
  lines.push("END:VTIMEZONE");
  return lines;
}

/** Years of zone changes a VTIMEZONE lists after the later of its first event and the calendar's stamp. */
const ZONE_YEARS_AHEAD = 10;

export interface RecurrenceRule {
  freq: "DAILY" | "WEEKLY" | "MONTHLY";
  interval?: number;
  byMonthDay?: number[];
  bySetPos?: number;
}

export function formatRecurrence(rule: RecurrenceRule): string {
  const parts = [`FREQ=${rule.freq}`];
  if (rule.interval && rule.interval > 1) parts.push(`INTERVAL=${rule.interval}`);
  if (rule.byMonthDay?.length) parts.push(`BYMONTHDAY=${rule.byMonthDay.join(",")}`);
  if (rule.bySetPos !== undefined) parts.push(`BYSETPOS=${rule.bySetPos}`);
  return parts.join(";");
}

export interface CalendarEvent {
  uid: string;
  start: Date;
  summary: string;
  description?: string;
  durationMinutes?: number;
  /** DTEND (instead of DURATION). */
  end?: Date;
  location?: string;
  rrule?: RecurrenceRule;
  /**
   * The IANA zone whose clock `start` and the RRULE keep (`DTSTART;TZID=`, §3.3.5 form 3, with a
   * VTIMEZONE in the calendar); absent or UTC: `DTSTART` in UTC.
   */
  timeZone?: string;
  /**
   * With `timeZone`: the local time `DTSTART` names (a wall-clock time as UTC ms), when it is not
   * `start`'s own (a time clocks skip, which §3.3.5 reads with the offset before the gap).
   */
  localStart?: number;
  /** VALARMs (RFC 5545 §3.6.6): a display alarm this many minutes before the start (0: at it). */
  alarms?: { minutesBefore: number; description: string }[];
}

export interface Calendar {
  prodId: string;
  name?: string;
  stamp: Date;
  events: CalendarEvent[];
}

/** A whole VCALENDAR object, CRLF line endings, folded, ending with CRLF. */
export function buildCalendar(calendar: Calendar): string {
  const lines = ["BEGIN:VCALENDAR", "VERSION:2.0", `PRODID:${calendar.prodId}`, "CALSCALE:GREGORIAN", "METHOD:PUBLISH"];
  if (calendar.name) lines.push(`X-WR-CALNAME:${escapeText(calendar.name)}`);
  const stamp = formatDateTime(calendar.stamp);
  // One VTIMEZONE per TZID used (§3.6.5), from the year of its earliest event.
  const zoneFrom = new Map<string, number>();
  for (const event of calendar.events) {
    if (!event.timeZone || event.timeZone === "UTC") continue;
    const year = new Date(event.start).getUTCFullYear();
    zoneFrom.set(event.timeZone, Math.min(year, zoneFrom.get(event.timeZone) ?? year));
  }
  for (const [zone, fromYear] of zoneFrom) {
    lines.push(...timeZoneLines(zone, fromYear, Math.max(fromYear, calendar.stamp.getUTCFullYear()) + ZONE_YEARS_AHEAD));
  }
  for (const event of calendar.events) {
    const start =
      event.timeZone && event.timeZone !== "UTC"
        ? `DTSTART;TZID=${event.timeZone}:${formatLocalDateTime(event.localStart ?? localWall(event.start.getTime(), event.timeZone))}`
        : `DTSTART:${formatDateTime(event.start)}`;
    lines.push("BEGIN:VEVENT", `UID:${event.uid}`, `DTSTAMP:${stamp}`, start);
    if (event.end) lines.push(`DTEND:${formatDateTime(event.end)}`);
    else if (event.durationMinutes) lines.push(`DURATION:PT${event.durationMinutes}M`);
    if (event.rrule) lines.push(`RRULE:${formatRecurrence(event.rrule)}`);
    lines.push(`SUMMARY:${escapeText(event.summary)}`);
    if (event.description) lines.push(`DESCRIPTION:${escapeText(event.description)}`);
    if (event.location) lines.push(`LOCATION:${escapeText(event.location)}`);
    for (const alarm of event.alarms ?? []) {
      const trigger = alarm.minutesBefore > 0 ? `-PT${alarm.minutesBefore}M` : "PT0S";
      lines.push("BEGIN:VALARM", "ACTION:DISPLAY", `DESCRIPTION:${escapeText(alarm.description)}`, `TRIGGER:${trigger}`, "END:VALARM");
    }
    lines.push("END:VEVENT");
  }
  lines.push("END:VCALENDAR");
  return `${lines.map(foldLine).join("\r\n")}\r\n`;
}

// ---------------------------------------------------------------------------------------------
// Reading (for tests and round trips): unfold, split properties, unescape.

export function unfold(text: string): string[] {
  return text
    .replace(/\r\n[ \t]/g, "")
    .split("\r\n")
    .filter((line) => line.length > 0);
}

export function unescapeText(value: string): string {
  return value.replace(/\\([\\;,nN])/g, (_, c: string) => (c === "n" || c === "N" ? "\n" : c));
}

/**
 * The VEVENTs of a calendar as maps of property name → raw (still escaped) value. A VEVENT's
 * VALARMs do not overwrite its own properties: their TRIGGERs are listed, comma-separated, under
 * `VALARM:TRIGGER`.
 */
export function parseEvents(text: string): Record<string, string>[] {
  const events: Record<string, string>[] = [];
  let current: Record<string, string> | null = null;
  let inAlarm = false;
  for (const line of unfold(text)) {
    if (line === "BEGIN:VEVENT") current = {};
    else if (line === "END:VEVENT") {
      if (current) events.push(current);
      current = null;
    } else if (line === "BEGIN:VALARM") inAlarm = true;
    else if (line === "END:VALARM") inAlarm = false;
    else if (current) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).split(";")[0]!;
      const value = line.slice(colon + 1);
      if (!inAlarm) current[name] = value;
      else if (name === "TRIGGER") current["VALARM:TRIGGER"] = current["VALARM:TRIGGER"] ? `${current["VALARM:TRIGGER"]},${value}` : value;
    }
  }
  return events;
}
