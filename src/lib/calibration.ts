/**
 * Score calibration (issue 11 item 6): turning a provider's raw score into the probability that
 * its species is right, learned from what the community confirmed.
 *
 * Method: isotonic regression by pool-adjacent-violators (PAV). Samples (raw score, right or
 * wrong) are sorted by score; adjacent blocks whose mean accuracy decreases are pooled until the
 * means never decrease. Each block becomes a point (mean raw score, mean accuracy); a score is
 * mapped by linear interpolation between neighbouring points and held flat beyond the ends. The
 * map is monotone (a higher raw score never means a lower probability) and makes no assumption
 * about the shape of the miscalibration, which is why it beats Platt scaling when a provider is
 * over-confident at the top and under-confident in the middle. Below MIN_SAMPLES samples the raw
 * score is kept: a map from a handful of requests would be noise.
 *
 * Pure functions, shared by the fitting job (services/calibration.ts), the merge and bench/.
 */

export interface Sample {
  score: number;
  correct: boolean;
}

/** Points (x = raw score, y = calibrated probability), x strictly increasing, y non-decreasing. */
export type CalibrationMap = [number, number][];

/** Samples below which a provider keeps its raw scores. */
export const MIN_SAMPLES = 200;
/** Probabilities are kept off 0 and 1: one unlucky block must not make a score impossible or certain. */
const FLOOR = 0.001;

export function fitIsotonic(samples: Sample[]): CalibrationMap {
  const sorted = samples.filter((s) => Number.isFinite(s.score)).sort((a, b) => a.score - b.score);
  // Equal scores are one block from the start: their order among themselves means nothing.
  const ties: { sx: number; sy: number; n: number; score: number }[] = [];
  for (const s of sorted) {
    const last = ties[ties.length - 1];
    if (last?.score === s.score) {
      last.sx += s.score;
      last.sy += s.correct ? 1 : 0;
      last.n += 1;
    } else ties.push({ score: s.score, sx: s.score, sy: s.correct ? 1 : 0, n: 1 });
  }
  // Pool adjacent violators: sum of scores, sum of outcomes, count per block.
  const blocks: { sx: number; sy: number; n: number }[] = [];
  for (const t of ties) {
    blocks.push({ sx: t.sx, sy: t.sy, n: t.n });
    // Pool while the last block's mean accuracy is below the one before it.
    while (blocks.length > 1) {
      const last = blocks[blocks.length - 1]!;
      const prev = blocks[blocks.length - 2]!;
      if (prev.sy / prev.n <= last.sy / last.n) break;
      blocks.splice(blocks.length - 2, 2, { sx: prev.sx + last.sx, sy: prev.sy + last.sy, n: prev.n + last.n });
    }
  }
  const points: CalibrationMap = [];
  for (const b of blocks) {
    const x = round6(b.sx / b.n);
    const y = round6(Math.min(1 - FLOOR, Math.max(FLOOR, b.sy / b.n)));
    const last = points[points.length - 1];
    // Means that round to the same x: keep the later (higher or equal) y.
    if (last && last[0] === x) last[1] = Math.max(last[1], y);
    else points.push([x, y]);
  }
  return points;
}

/** The calibrated probability of `score` under `map` (the raw score when there is no map). */
export function applyCalibration(map: CalibrationMap | null | undefined, score: number): number {
  if (!map || map.length === 0) return score;
  const first = map[0]!;
  const last = map[map.length - 1]!;
  if (score <= first[0]) return first[1];
  if (score >= last[0]) return last[1];
  let lo = 0;
  let hi = map.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (map[mid]![0] <= score) lo = mid;
    else hi = mid;
  }
  const [x0, y0] = map[lo]!;
  const [x1, y1] = map[hi]!;
  return y0 + ((score - x0) * (y1 - y0)) / (x1 - x0);
}

export interface ReliabilityBin {
  from: number;
  to: number;
  count: number;
  mean_confidence: number;
  accuracy: number;
}

/** Predictions grouped into `bins` equal-width confidence bins. */
export function reliabilityTable(predictions: { p: number; correct: boolean }[], bins = 10): ReliabilityBin[] {
  const table = Array.from({ length: bins }, (_, i) => ({ from: i / bins, to: (i + 1) / bins, count: 0, sp: 0, sc: 0 }));
  for (const { p, correct } of predictions) {
    const bin = table[Math.min(bins - 1, Math.max(0, Math.floor(p * bins)))]!;
    bin.count += 1;
    bin.sp += p;
    bin.sc += correct ? 1 : 0;
  }
  return table.map((b) => ({
    from: b.from,
    to: b.to,
    count: b.count,
    mean_confidence: b.count ? round6(b.sp / b.count) : 0,
    accuracy: b.count ? round6(b.sc / b.count) : 0,
  }));
}

/** Expected calibration error: the count-weighted mean gap between confidence and accuracy per bin. */
export function expectedCalibrationError(predictions: { p: number; correct: boolean }[], bins = 10): number {
  const total = predictions.length;
  if (total === 0) return 0;
  return round6(
    reliabilityTable(predictions, bins).reduce((sum, b) => sum + (b.count / total) * Math.abs(b.mean_confidence - b.accuracy), 0),
  );
}

const round6 = (n: number) => Math.round(n * 1e6) / 1e6;
