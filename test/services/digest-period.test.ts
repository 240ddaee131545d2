/**
 * Digest periods for readers worldwide: 08:00 local time on the days clocks change (both ways,
 * northern and southern, at 02:00, at midnight, a whole day skipped), half-hour and 45-minute
 * zones, +14 and −11 either side of the date line, a leap day and year's end.
 */
import { describe, expect, it } from "vitest";
import { digestPeriod } from "../../src/services/notification-delivery";

const at = (iso: string) => Date.parse(iso);

const clocks = new Map<string, Intl.DateTimeFormat>();
/** "2026-10-24 08:00:00" as the clock in `zone` reads at `instant`. */
function clock(instant: number, zone: string): string {
  if (!clocks.has(zone))
    clocks.set(
      zone,
      new Intl.DateTimeFormat("sv-SE", {
        timeZone: zone,
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        hourCycle: "h23",
      }),
    );
  return clocks.get(zone)!.format(new Date(instant));
}

describe("digest periods on the days clocks change", () => {
  it("Europe/Berlin, clocks back: a period begun at 08:00 summer time began at 06:00 UTC, also after the change", () => {
    // 25 October 2026, 03:00 CEST → 02:00 CET. 01:30 UTC is 02:30 CET, the night after.
    expect(digestPeriod("daily", "Europe/Berlin", at("2026-10-25T01:30:00Z"))).toEqual({
      key: "daily:2026-10-24",
      startedAt: at("2026-10-24T06:00:00Z"),
    });
    // The same period, seen in the repeated hour before the change (02:30 CEST).
    expect(digestPeriod("daily", "Europe/Berlin", at("2026-10-25T00:30:00Z")).startedAt).toBe(at("2026-10-24T06:00:00Z"));
    // The next one starts at 08:00 winter time: 07:00 UTC, 25 hours later.
    expect(digestPeriod("daily", "Europe/Berlin", at("2026-10-25T07:00:00Z"))).toEqual({
      key: "daily:2026-10-25",
      startedAt: at("2026-10-25T07:00:00Z"),
    });
    expect(digestPeriod("daily", "Europe/Berlin", at("2026-10-25T06:59:59Z")).key).toBe("daily:2026-10-24");
  });

  it("Europe/Berlin, clocks forward: the period begun at 08:00 winter time began at 07:00 UTC", () => {
    // 29 March 2026, 02:00 CET → 03:00 CEST. 05:30 UTC is 07:30 CEST, before that day's period.
    expect(digestPeriod("daily", "Europe/Berlin", at("2026-03-29T05:30:00Z"))).toEqual({
      key: "daily:2026-03-28",
      startedAt: at("2026-03-28T07:00:00Z"),
    });
    expect(digestPeriod("daily", "Europe/Berlin", at("2026-03-29T06:00:00Z"))).toEqual({
      key: "daily:2026-03-29",
      startedAt: at("2026-03-29T06:00:00Z"),
    });
  });

  it("America/New_York: daily and weekly periods across the change of 1 November 2026", () => {
    // 02:00 EDT → 01:00 EST; 07:30 UTC is 02:30 EST.
    expect(digestPeriod("daily", "America/New_York", at("2026-11-01T07:30:00Z"))).toEqual({
      key: "daily:2026-10-31",
      startedAt: at("2026-10-31T12:00:00Z"),
    });
    // Sunday 07:00 EST: the week began on Monday 26 October at 08:00 EDT.
    expect(digestPeriod("weekly", "America/New_York", at("2026-11-01T12:00:00Z"))).toEqual({
      key: "weekly:2026-W44",
      startedAt: at("2026-10-26T12:00:00Z"),
    });
    // Monday 2 November, 08:00 EST.
    expect(digestPeriod("weekly", "America/New_York", at("2026-11-02T13:00:00Z"))).toEqual({
      key: "weekly:2026-W45",
      startedAt: at("2026-11-02T13:00:00Z"),
    });
  });

  it("Australia/Adelaide (half-hour zone, southern summer time begins 4 October 2026)", () => {
    // 07:00 ACDT (+10:30) on 4 October: the period began on 3 October at 08:00 ACST (+09:30).
    expect(digestPeriod("daily", "Australia/Adelaide", at("2026-10-03T20:30:00Z"))).toEqual({
      key: "daily:2026-10-03",
      startedAt: at("2026-10-02T22:30:00Z"),
    });
  });

  it("Pacific/Apia skipped 30 December 2011: that day's period begins when the date jumped", () => {
    // Midnight at the end of 29 December (−10) became midnight at the start of 31 December (+14).
    expect(digestPeriod("daily", "Pacific/Apia", at("2011-12-30T17:00:00Z"))).toEqual({
      key: "daily:2011-12-30",
      startedAt: at("2011-12-30T10:00:00Z"),
    });
  });

  it("every period of a year starts when the local clock first reads 08:00, in zones that change at 00:00, 02:00 or not at all", () => {
    const zones = [
      "Europe/Berlin",
      "America/New_York",
      "America/Santiago", // changes at midnight
      "America/Havana", // changes at midnight (spring) and 01:00
      "Australia/Adelaide",
      "Australia/Lord_Howe", // a half-hour change
      "Pacific/Chatham", // +12:45 / +13:45
      "Asia/Kolkata",
      "Asia/Kathmandu",
      "Pacific/Kiritimati",
      "Pacific/Pago_Pago",
    ];
    for (const zone of zones) {
      for (let t = at("2026-01-01T00:00:00Z"); t < at("2027-01-01T00:00:00Z"); t += 13 * 3_600_000 + 7 * 60_000) {
        const { key, startedAt } = digestPeriod("daily", zone, t);
        expect(startedAt, `${zone} at ${new Date(t).toISOString()}`).toBeLessThanOrEqual(t);
        expect(clock(startedAt, zone), `${zone} at ${new Date(t).toISOString()}`).toBe(`${key.slice(6)} 08:00:00`);
        expect(clock(startedAt - 1000, zone) < `${key.slice(6)} 08:00:00`, zone).toBe(true);
        // The next period has not begun: 08:00 the next local day is still ahead.
        expect(digestPeriod("daily", zone, startedAt + 25 * 3_600_000).key, zone).not.toBe(key);
      }
    }
  });
});

describe("digest periods either side of the date line", () => {
  it("Pacific/Kiritimati (+14) is on Monday's weekly period while UTC is still Sunday", () => {
    // Sunday 29 November 20:00 UTC = Monday 30 November 10:00 at +14.
    expect(digestPeriod("weekly", "Pacific/Kiritimati", at("2026-11-29T20:00:00Z"))).toEqual({
      key: "weekly:2026-W49",
      startedAt: at("2026-11-29T18:00:00Z"),
    });
  });

  it("Pacific/Pago_Pago (−11) is still on Monday when UTC is Tuesday", () => {
    // Monday 30 November 07:00 at −11 = 18:00 UTC: last week's period still.
    expect(digestPeriod("weekly", "Pacific/Pago_Pago", at("2026-11-30T18:00:00Z")).key).toBe("weekly:2026-W48");
    // Monday 20:00 at −11 = Tuesday 1 December 07:00 UTC.
    expect(digestPeriod("weekly", "Pacific/Pago_Pago", at("2026-12-01T07:00:00Z"))).toEqual({
      key: "weekly:2026-W49",
      startedAt: at("2026-11-30T19:00:00Z"),
    });
  });

  it("half-hour and 45-minute zones start at their own 08:00", () => {
    expect(digestPeriod("daily", "Asia/Kolkata", at("2026-12-03T02:30:00Z"))).toEqual({
      key: "daily:2026-12-03",
      startedAt: at("2026-12-03T02:30:00Z"),
    });
    expect(digestPeriod("daily", "Asia/Kolkata", at("2026-12-03T02:29:59Z")).key).toBe("daily:2026-12-02");
    // Chatham in December is +13:45: 08:00 there is 18:15 UTC the day before.
    expect(digestPeriod("daily", "Pacific/Chatham", at("2026-12-02T18:15:00Z"))).toEqual({
      key: "daily:2026-12-03",
      startedAt: at("2026-12-02T18:15:00Z"),
    });
  });
});

describe("digest periods at the calendar's edges", () => {
  it("a leap day and year's end (ISO week 53 of 2026 runs into 2027)", () => {
    expect(digestPeriod("daily", "UTC", at("2028-02-29T08:00:00Z")).key).toBe("daily:2028-02-29");
    expect(digestPeriod("daily", "UTC", at("2028-03-01T07:59:00Z")).key).toBe("daily:2028-02-29");
    expect(digestPeriod("weekly", "UTC", at("2027-01-01T12:00:00Z"))).toEqual({
      key: "weekly:2026-W53",
      startedAt: at("2026-12-28T08:00:00Z"),
    });
    expect(digestPeriod("weekly", "UTC", at("2027-01-04T08:00:00Z")).key).toBe("weekly:2027-W01");
    expect(digestPeriod("daily", "Pacific/Kiritimati", at("2026-12-31T18:00:00Z")).key).toBe("daily:2027-01-01");
  });
});

describe("a zone this runtime does not know", () => {
  it("is read as UTC instead of stopping the digest run", () => {
    expect(digestPeriod("daily", "Mars/Olympus_Mons", at("2026-12-03T09:00:00Z"))).toEqual(
      digestPeriod("daily", "UTC", at("2026-12-03T09:00:00Z")),
    );
  });
});
