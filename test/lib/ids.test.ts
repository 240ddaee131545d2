import { describe, expect, it } from "vitest";
import { isUuid, uuidv7, uuidv7Timestamp } from "../../src/lib/ids";

describe("uuidv7", () => {
  it("is a valid, time-ordered UUID carrying its creation time in ms", () => {
    const t = Date.UTC(2026, 10, 26, 9, 0, 0, 123);
    const a = uuidv7(t);
    const b = uuidv7(t + 1);
    expect(isUuid(a)).toBe(true);
    expect(a[14]).toBe("7");
    expect(a < b).toBe(true);
    expect(uuidv7Timestamp(a)).toBe(t);
    expect(uuidv7Timestamp(crypto.randomUUID())).toBeNaN();
  });
});
