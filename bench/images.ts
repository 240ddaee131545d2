/**
 * `npm run bench:images` — what the structural checks of src/lib/images.ts cost. They run on every
 * upload, before storage, so they must stay a small fraction of a request's CPU; so does the
 * location-metadata stripping after them (src/lib/image-metadata.ts), which walks a JPEG's scans
 * to its end-of-image marker. Timed in Node
 * (workerd's clock does not advance during pure computation). Figures never fail the run; the exit
 * code is 1 only when a check gives the wrong verdict. Correctness itself is tested in
 * test/lib/images.test.ts.
 */
import { withoutLocationMetadata } from "../src/lib/image-metadata";
import { imageStructureProblem, type ImageType } from "../src/lib/images";
import { concatBytes, makeJpeg, makePng, padToSize } from "../test/helpers/images";

const MIB = 1024 * 1024;
const RUNS = 51;

/** Median and p90 milliseconds of RUNS calls, after a warm-up so the JIT has compiled the walk. */
function timeIt(fn: () => unknown): { p50: number; p90: number } {
  for (let i = 0; i < 10; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(RUNS / 2)]!, p90: times[Math.floor(RUNS * 0.9)]! };
}

const cases: { name: string; type: ImageType; bytes: Uint8Array; valid: boolean; target: number }[] = [
  { name: "1 MiB PNG (valid)", type: "png", bytes: padToSize(await makePng(400, 300), MIB), valid: true, target: 1 },
  { name: "1 MiB JPEG (valid)", type: "jpeg", bytes: padToSize(makeJpeg(400, 300), MIB), valid: true, target: 1 },
  {
    name: "1 MiB JPEG, no end marker (worst case: full scan)",
    type: "jpeg",
    bytes: concatBytes(makeJpeg(400, 300).subarray(0, -2), new Uint8Array(MIB).fill(0xff)),
    valid: false,
    target: 5,
  },
  {
    name: "JPEG + 1 MiB trailer",
    type: "jpeg",
    bytes: concatBytes(makeJpeg(400, 300), new Uint8Array(MIB).fill(0xff)),
    valid: true,
    target: 5,
  },
];

let wrong = 0;
console.log(`| input | p50 ms | p90 ms | target p50 | |`);
console.log(`|---|---|---|---|---|`);
for (const c of cases) {
  const verdict = imageStructureProblem(c.bytes, c.type) === null;
  if (verdict !== c.valid) {
    wrong++;
    console.error(`wrong verdict for ${c.name}: expected ${c.valid ? "valid" : "a problem"}`);
  }
  const { p50, p90 } = timeIt(() => imageStructureProblem(c.bytes, c.type));
  console.log(`| ${c.name} | ${p50.toFixed(3)} | ${p90.toFixed(3)} | < ${c.target} | ${p50 < c.target ? "PASS" : "MISS"} |`);
}
/** A JPEG whose scan is `size` bytes of random entropy-coded data (each FF stuffed as FF 00), then EOI. */
function jpegWithScan(size: number, fill?: number): Uint8Array {
  const data = new Uint8Array(size);
  if (fill === undefined) for (let i = 0; i < size; i++) data[i] = (Math.random() * 256) | 0;
  else data.fill(fill);
  const stuffed: number[] = [];
  for (const b of data) b === 0xff ? stuffed.push(0xff, 0x00) : stuffed.push(b);
  return concatBytes(makeJpeg(400, 300).subarray(0, -2), new Uint8Array(stuffed), new Uint8Array([0xff, 0xd9]));
}
const stripCases = [
  { name: "1 MiB JPEG scan, random data", bytes: jpegWithScan(MIB), target: 5 },
  { name: "1 MiB JPEG scan, all FF (stuffed: 2 MiB)", bytes: jpegWithScan(MIB, 0xff), target: 10 },
  { name: "JPEG + 1 MiB appended image (dropped)", bytes: concatBytes(jpegWithScan(64 * 1024), jpegWithScan(MIB)), target: 5 },
];
console.log(`\nLocation-metadata stripping (the whole walk; a JPEG's scans are walked to its EOI):\n`);
console.log(`| input | p50 ms | p90 ms | target p50 | |`);
console.log(`|---|---|---|---|---|`);
for (const c of stripCases) {
  if (imageStructureProblem(c.bytes, "jpeg") !== null) {
    wrong++;
    console.error(`wrong verdict for ${c.name}: expected valid`);
  }
  const { p50, p90 } = timeIt(() => withoutLocationMetadata(c.bytes, "jpeg"));
  console.log(`| ${c.name} | ${p50.toFixed(3)} | ${p90.toFixed(3)} | < ${c.target} | ${p50 < c.target ? "PASS" : "MISS"} |`);
}

// Checked with the Worker's types (it imports Worker code); run by tsx in Node.
process.exitCode = wrong ? 1 : 0;
