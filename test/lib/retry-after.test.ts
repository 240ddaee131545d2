import { describe, expect, it } from "vitest";
import { MAX_RETRY_AFTER_S, parseRetryAfter } from "../../src/lib/retry-after";

const NOW = Date.parse("2026-12-07T04:00:00Z");

describe("parseRetryAfter", () => {
  it("reads delay-seconds, and holds an absurd one at a finite maximum", () => {
    expect(parseRetryAfter("0", NOW)).toBe(0);
    expect(parseRetryAfter(" 42 ", NOW)).toBe(42);
    expect(parseRetryAfter("9".repeat(400), NOW)).toBe(MAX_RETRY_AFTER_S);
  });

  it("reads the three HTTP-date forms as GMT; a past date is 0", () => {
    expect(parseRetryAfter("Mon, 07 Dec 2026 04:02:00 GMT", NOW)).toBe(120);
    expect(parseRetryAfter("Monday, 07-Dec-26 04:02:00 GMT", NOW)).toBe(120);
    expect(parseRetryAfter("Mon Dec  7 04:02:00 2026", NOW)).toBe(120);
    expect(parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", NOW)).toBe(0);
  });

  it("answers undefined for an absent header and for anything else (V8 would read some of these as dates in 2001)", () => {
    for (const value of [null, "", "-5", "1.5", "1e3", "soon", "5 minutes", "2026-12-07", "12/31/2099", "Infinity"]) {
      expect(parseRetryAfter(value, NOW), String(value)).toBeUndefined();
    }
  });
});
