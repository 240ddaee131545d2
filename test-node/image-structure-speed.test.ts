/**
 * The structural checks of src/lib/images.ts run on every upload, before storage: they must stay
 * a small fraction of a request's CPU. Timed in Node because workerd's clock does not advance
 * during pure computation. Bounds are generous (a shared 2-core CI box), yet far below what a
 * regex over the bytes or a CRC of the whole file would cost.
 */
import { describe, expect, it } from "vitest";
import { imageStructureProblem, type ImageType } from "../src/lib/images";
import { concatBytes, makeJpeg, makePng, padToSize } from "../test/helpers/images";

const MIB = 1024 * 1024;

/** Median milliseconds of `runs` calls (after a warm-up, so the JIT has compiled the walk). */
function medianMs(fn: () => unknown, runs = 21): number {
  for (let i = 0; i < 5; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(runs / 2)]!;
}

describe("image structure checks are fast", () => {
  it("a whole 1 MiB PNG or JPEG in well under a millisecond", async () => {
    const png = padToSize(await makePng(400, 300), MIB);
    const jpeg = padToSize(makeJpeg(400, 300), MIB);
    for (const [type, bytes] of [
      ["png", png],
      ["jpeg", jpeg],
    ] as [ImageType, Uint8Array][]) {
      expect(imageStructureProblem(bytes, type)).toBeNull();
      expect(
        medianMs(() => imageStructureProblem(bytes, type)),
        type,
      ).toBeLessThan(1);
    }
  });

  it("the worst case, a 1 MiB JPEG scan with no end marker, in a few milliseconds", () => {
    const noEoi = concatBytes(makeJpeg(400, 300).subarray(0, -2), new Uint8Array(MIB).fill(0xff));
    const trailer = concatBytes(makeJpeg(400, 300), new Uint8Array(MIB).fill(0xff));
    expect(imageStructureProblem(noEoi, "jpeg")).not.toBeNull();
    expect(imageStructureProblem(trailer, "jpeg")).toBeNull();
    expect(medianMs(() => imageStructureProblem(noEoi, "jpeg"))).toBeLessThan(5);
  });
});
