/** The calibration maths (lib/calibration.ts): PAV isotonic fits, interpolation, ECE, reliability. */
import { describe, expect, it } from "vitest";
import { applyCalibration, expectedCalibrationError, fitIsotonic, reliabilityTable, type Sample } from "../../src/lib/calibration";

const many = (score: number, right: number, wrong: number): Sample[] => [
  ...Array.from({ length: right }, () => ({ score, correct: true })),
  ...Array.from({ length: wrong }, () => ({ score, correct: false })),
];

describe("isotonic fit", () => {
  it("keeps monotone evidence as it is: one point per distinct score", () => {
    expect(fitIsotonic([...many(0.3, 3, 7), ...many(0.9, 5, 5)])).toEqual([
      [0.3, 0.3],
      [0.9, 0.5],
    ]);
  });

  it("pools a violation into one block at the mean score and mean accuracy", () => {
    // Higher raw score, fewer right: not allowed to map lower, so both become 0.4.
    expect(fitIsotonic([...many(0.2, 5, 5), ...many(0.6, 3, 7)])).toEqual([[0.4, 0.4]]);
  });

  it("pools across several blocks (PAV backtracks) and stays non-decreasing", () => {
    const map = fitIsotonic([...many(0.1, 1, 9), ...many(0.5, 8, 2), ...many(0.6, 2, 8), ...many(0.7, 1, 9), ...many(0.9, 9, 1)]);
    for (let i = 1; i < map.length; i++) {
      expect(map[i]![0]).toBeGreaterThan(map[i - 1]![0]);
      expect(map[i]![1]).toBeGreaterThanOrEqual(map[i - 1]![1]);
    }
    // 0.5, 0.6, 0.7 pooled: 11 right of 30 at mean score 0.6.
    expect(map).toEqual([
      [0.1, 0.1],
      [0.6, 0.366667],
      [0.9, 0.9],
    ]);
  });

  it("never says 0 or 1", () => {
    expect(fitIsotonic([...many(0.2, 0, 10), ...many(0.8, 10, 0)])).toEqual([
      [0.2, 0.001],
      [0.8, 0.999],
    ]);
  });
});

describe("applying a map", () => {
  const map: [number, number][] = [
    [0.2, 0.1],
    [0.6, 0.5],
  ];
  it("interpolates between points and holds flat beyond them; no map keeps the raw score", () => {
    expect(applyCalibration(map, 0.4)).toBeCloseTo(0.3, 10);
    expect(applyCalibration(map, 0.05)).toBe(0.1);
    expect(applyCalibration(map, 0.99)).toBe(0.5);
    expect(applyCalibration(null, 0.42)).toBe(0.42);
    expect(applyCalibration([], 0.42)).toBe(0.42);
  });
});

describe("measuring", () => {
  it("ECE is zero for honest scores and the gap for over-confident ones", () => {
    const honest = Array.from({ length: 8 }, (_, i) => ({ p: 0.75, correct: i < 6 }));
    expect(expectedCalibrationError(honest)).toBe(0);
    const over = Array.from({ length: 100 }, (_, i) => ({ p: 0.95, correct: i < 50 }));
    expect(expectedCalibrationError(over)).toBeCloseTo(0.45, 6);
    const table = reliabilityTable(over);
    expect(table[9]).toEqual({ from: 0.9, to: 1, count: 100, mean_confidence: 0.95, accuracy: 0.5 });
    expect(table.slice(0, 9).every((b) => b.count === 0)).toBe(true);
  });
});
