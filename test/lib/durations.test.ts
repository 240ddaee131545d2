import { describe, expect, it } from "vitest";
import { humanDuration } from "../../src/lib/durations";

describe("humanDuration", () => {
  it.each([
    [0, "1 second"],
    [1, "1 second"],
    [0.2, "1 second"],
    [59, "59 seconds"],
    [60, "1 minute"],
    [61, "2 minutes"],
    [900, "15 minutes"],
    [3540, "59 minutes"],
    [3600, "60 minutes"],
    [7140, "119 minutes"],
    [7200, "2 hours"],
    [7201, "3 hours"],
    [86_400, "24 hours"],
  ])("%s s is said as %s (never shorter than the wait)", (seconds, said) => {
    expect(humanDuration(seconds)).toBe(said);
  });
});
