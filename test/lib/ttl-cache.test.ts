import { describe, expect, it } from "vitest";
import { TtlCache } from "../../src/lib/ttl-cache";

describe("TtlCache", () => {
  it("keeps an entry for its time to live, then forgets it", () => {
    const cache = new TtlCache<string>(1000, 10);
    cache.set("a", "fern", 0);
    expect(cache.get("a", 999)).toBe("fern");
    expect(cache.get("a", 1000)).toBeUndefined();
    expect(cache.get("a", 0)).toBeUndefined();
  });

  it("holds at most its capacity, dropping the oldest write first; a rewrite is new again", () => {
    const cache = new TtlCache<number>(60_000, 2);
    cache.set("a", 1, 0);
    cache.set("b", 2, 1);
    cache.set("a", 3, 2);
    cache.set("c", 4, 3);
    expect(cache.get("b", 4)).toBeUndefined();
    expect(cache.get("a", 4)).toBe(3);
    expect(cache.get("c", 4)).toBe(4);
    cache.clear();
    expect(cache.get("a", 4)).toBeUndefined();
  });
});
