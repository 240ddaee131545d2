/**
 * iCalendar (RFC 5545) writing: just what a calendar export of recurring UTC events needs.
 * Pure functions, no I/O. Lines end in CRLF and are folded at 75 octets (§3.1) without ever
 * splitting a UTF-8 character; TEXT values are escaped as §3.3.11 requires.
 */

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
  for (const event of calendar.events) {
    lines.push("BEGIN:VEVENT", `UID:${event.uid}`, `DTSTAMP:${stamp}`, `DTSTART:${formatDateTime(event.start)}`);
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
