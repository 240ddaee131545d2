/**
 * Wall clocks in IANA time zones, from `Intl` (the runtime's zone data): what a clock in a zone
 * reads at an instant, and which instant it reads a given time at. A wall-clock time is carried
 * as "UTC milliseconds": the instant a UTC clock would read it, so calendar arithmetic on it is
 * plain `Date.UTC` arithmetic. Shared by the digest periods and the care-reminder schedules.
 */
import { DAY_MS } from "./durations";

/** Wall-clock formatters by zone: a digest run reads the clock of every reader holding mail. */
const clocks = new Map<string, Intl.DateTimeFormat>();

/**
 * The formatter for `timeZone`'s clock; UTC's for a name this runtime does not know (saved ones
 * are checked, but one unknown name must not stop every reader's digest).
 */
export function clockOf(timeZone: string): Intl.DateTimeFormat {
  let clock = clocks.get(timeZone);
  if (clock) return clock;
  const options = {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  } as const;
  try {
    clock = new Intl.DateTimeFormat("en-GB", { ...options, timeZone });
  } catch {
    clock = new Intl.DateTimeFormat("en-GB", { ...options, timeZone: "UTC" });
  }
  if (clocks.size >= 1000) clocks.clear();
  clocks.set(timeZone, clock);
  return clock;
}

/** The wall clock in `timeZone` at `at`, as UTC milliseconds (whole seconds). */
export function wallMs(at: number, timeZone: string): number {
  const p = Object.fromEntries(
    clockOf(timeZone)
      .formatToParts(new Date(at))
      .map((part) => [part.type, Number(part.value)]),
  );
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
}

/** The zone's offset from UTC at `at`, in ms (+3 600 000 for Berlin in winter). */
export function offsetAt(at: number, timeZone: string): number {
  const second = Math.floor(at / 1000) * 1000;
  return wallMs(second, timeZone) - second;
}

/**
 * `wall` read at the offset of a day before and of a day after, and which of those instants the
 * clock really shows it at (none when a change skips it, both when one shows it twice). Assumes
 * at most one change within a day of `wall`, as every zone has.
 */
function readings(wall: number, timeZone: string): { before: number; after: number; showing: number[] } {
  const before = wall - offsetAt(wall - DAY_MS, timeZone);
  const after = wall - offsetAt(wall + DAY_MS, timeZone);
  // The same offset on both sides: no change between them, so the clock shows `wall` once, there
  // (the common case, spared two more readings of the clock).
  if (before === after) return { before, after, showing: [before] };
  return { before, after, showing: [before, after].filter((t) => wallMs(t, timeZone) === wall) };
}

/**
 * The first instant at which the clock in `timeZone` reads `wall` (a wall-clock time as UTC ms)
 * or later: the earlier of the two when clocks going back show it twice, and the change itself
 * when clocks going forward skip it (Pacific/Apia skipped all of 30 December 2011).
 */
export function firstInstantAt(wall: number, timeZone: string): number {
  const { before, after, showing } = readings(wall, timeZone);
  if (showing.length > 0) return Math.min(...showing);
  // Skipped: the low end shows an earlier time, the high end a later one; bisect to the second.
  let lo = Math.min(before, after);
  let hi = Math.max(before, after);
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (wallMs(mid, timeZone) < wall) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** Whether the clock in `timeZone` shows `wall` twice (the hour repeated when clocks go back). */
export function shownTwice(wall: number, timeZone: string): boolean {
  return readings(wall, timeZone).showing.length === 2;
}

/**
 * The instant a local time means, by RFC 5545 §3.3.5 (as calendar apps read `DTSTART;TZID=`): a
 * time clocks going back show twice is its first occurrence; one clocks going forward skip is read
 * with the offset before the gap, so it moves on by the gap (02:30 in Berlin on the last Sunday of
 * March is 03:30 CEST). Whole seconds; milliseconds of `wall` are kept.
 */
export function localInstant(wall: number, timeZone: string): number {
  const ms = ((wall % 1000) + 1000) % 1000;
  const { before, showing } = readings(wall - ms, timeZone);
  return (showing.length > 0 ? Math.min(...showing) : before) + ms;
}

/** What the clock in `timeZone` reads at `at`, as UTC ms, milliseconds kept. */
export function localWall(at: number, timeZone: string): number {
  return at + offsetAt(at, timeZone);
}
