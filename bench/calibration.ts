/**
 * `npm run bench:calibration` — what calibration buys (issue 11 item 6), on a synthetic ground
 * truth built to look like the two engines: Plant.id over-confident (top scores 0.70–0.99, right
 * 60 % of the time), Pl@ntNet under-confident (top scores 0.15–0.50, right 75 % of the time).
 *
 * 8 000 requests are generated from a fixed seed. The first half plays the community-confirmed
 * requests: their samples (each engine suggestion's raw score, and whether it was the true
 * species) fit the isotonic maps exactly as the cron job does. The second half is held out: each
 * request is merged by the real mergeSuggestions twice, with raw scores and with the maps, and we
 * report the expected calibration error of the top suggestion's probability, top-1 accuracy, and
 * the reliability tables. Pure computation: no stack, no clock; the numbers are reproducible.
 */
import { expectedCalibrationError, fitIsotonic, MIN_SAMPLES, reliabilityTable, type Sample } from "../src/lib/calibration";
import { type Calibrations, mergeSuggestions } from "../src/services/merge";
import type { ProviderAnswer, ProviderName, ProviderSuggestion } from "../src/providers/types";

const REQUESTS = 8_000;
const SPECIES = 400;

/** mulberry32: a small seeded PRNG, so every run sees the same data. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(20261203);
const pick = (n: number) => Math.floor(rand() * n);
const name = (i: number) => `Genus${i % 40} species${i}`;

interface Engine {
  provider: ProviderName;
  /** How often its first suggestion is the true species. */
  top1: number;
  /** Its top score's range: over- or under-confident. */
  scores: [number, number];
}
const ENGINES: Engine[] = [
  { provider: "plant_id", top1: 0.6, scores: [0.7, 0.99] },
  { provider: "plantnet", top1: 0.75, scores: [0.15, 0.5] },
];

function suggestion(species: number, probability: number): ProviderSuggestion {
  return {
    scientificName: name(species),
    authorship: "",
    commonNames: [],
    family: "",
    genus: `Genus${species % 40}`,
    gbifId: null,
    probability,
    description: "",
    url: null,
    similarImages: [],
    watering: null,
    propagationMethods: [],
    edibleParts: [],
  };
}

/** Three suggestions: the true species first with probability top1, second or absent otherwise. */
function answer(engine: Engine, truth: number): ProviderAnswer {
  const wrong = () => {
    let s = pick(SPECIES);
    while (s === truth) s = pick(SPECIES);
    return s;
  };
  const top = engine.scores[0] + rand() * (engine.scores[1] - engine.scores[0]);
  const second = top * (0.3 + rand() * 0.3);
  const third = second * (0.3 + rand() * 0.4);
  let ranked: number[];
  if (rand() < engine.top1) ranked = [truth, wrong(), wrong()];
  else ranked = rand() < 0.5 ? [wrong(), truth, wrong()] : [wrong(), wrong(), wrong()];
  const unique = [...new Set(ranked)];
  return {
    provider: engine.provider,
    isPlant: true,
    health: null,
    suggestions: unique.map((s, i) => suggestion(s, [top, second, third][i]!)),
  };
}

const data = Array.from({ length: REQUESTS }, () => {
  const truth = pick(SPECIES);
  return { truth, plant_id: answer(ENGINES[0]!, truth), plantnet: answer(ENGINES[1]!, truth) };
});
const fitting = data.slice(0, REQUESTS / 2);
const heldOut = data.slice(REQUESTS / 2);

// Fit as the job does: one sample per engine suggestion that was stored (the merged top 10).
const samples: Record<ProviderName, Sample[]> = { plant_id: [], plantnet: [] };
for (const r of fitting) {
  for (const s of mergeSuggestions({ plant_id: r.plant_id, plantnet: r.plantnet })) {
    const correct = s.scientific_name === name(r.truth);
    if (s.plant_id_probability !== undefined) samples.plant_id.push({ score: s.plant_id_probability, correct });
    if (s.plantnet_score !== undefined) samples.plantnet.push({ score: s.plantnet_score, correct });
  }
}
const calibrations: Calibrations = {};
for (const provider of ["plant_id", "plantnet"] as const) {
  if (samples[provider].length >= MIN_SAMPLES) calibrations[provider] = { version: 1, map: fitIsotonic(samples[provider]) };
}

function evaluate(maps: Calibrations) {
  const predictions = heldOut.map((r) => {
    const [top] = mergeSuggestions({ plant_id: r.plant_id, plantnet: r.plantnet }, maps);
    return { p: top?.probability ?? 0, correct: top?.scientific_name === name(r.truth) };
  });
  return {
    ece: expectedCalibrationError(predictions),
    top1: predictions.filter((p) => p.correct).length / predictions.length,
    table: reliabilityTable(predictions),
  };
}

const before = evaluate({});
const after = evaluate(calibrations);
const pct = (n: number) => `${(n * 100).toFixed(1)} %`;

console.log(`Calibration on synthetic ground truth: ${REQUESTS} requests, ${SPECIES} species, seed 20261203`);
console.log(
  `Fitted on ${fitting.length} requests (${samples.plant_id.length} Plant.id and ${samples.plantnet.length} Pl@ntNet samples); evaluated on ${heldOut.length} held out.`,
);
console.log(`Maps: Plant.id ${calibrations.plant_id?.map.length ?? 0} points, Pl@ntNet ${calibrations.plantnet?.map.length ?? 0} points.`);
console.log("");
console.log("| Merged top suggestion | Raw scores | Calibrated |");
console.log("|---|---|---|");
console.log(`| Expected calibration error (10 bins) | ${before.ece.toFixed(3)} | ${after.ece.toFixed(3)} |`);
console.log(`| Top-1 accuracy | ${pct(before.top1)} | ${pct(after.top1)} |`);
console.log("");
console.log("Reliability (held-out top suggestions): confidence bin → count, mean confidence, accuracy");
console.log("| Bin | Raw: n | Raw: conf | Raw: acc | Calibrated: n | Calibrated: conf | Calibrated: acc |");
console.log("|---|---|---|---|---|---|---|");
for (let i = 0; i < before.table.length; i++) {
  const b = before.table[i]!;
  const a = after.table[i]!;
  console.log(
    `| ${b.from.toFixed(1)}–${b.to.toFixed(1)} | ${b.count} | ${b.count ? b.mean_confidence.toFixed(3) : "–"} | ${b.count ? b.accuracy.toFixed(3) : "–"} | ${a.count} | ${a.count ? a.mean_confidence.toFixed(3) : "–"} | ${a.count ? a.accuracy.toFixed(3) : "–"} |`,
  );
}
if (!(after.ece < before.ece)) {
  console.error("calibration did not lower the calibration error: something is wrong");
  process.exitCode = 1;
}
