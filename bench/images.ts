/**
 * `npm run bench:images` — what the structural checks of src/lib/images.ts cost. They run on every
 * upload, before storage, so they must stay a small fraction of a request's CPU. Timed in Node
 * (workerd's clock does not advance during pure computation). Figures never fail the run; the exit
 * code is 1 only when a check gives the wrong verdict. Correctness itself is tested in
 * test/lib/images.test.ts.
 */
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
// Checked with the Worker's types (it imports Worker code); run by tsx in Node.
process.exitCode = wrong ? 1 : 0;
