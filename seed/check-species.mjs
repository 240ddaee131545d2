// Validates seed/species.json. Usage (from repo root): node seed/check-species.mjs
// Plain Node, no dependencies. Exits 1 on any error.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const file = join(here, 'species.json');

const MIN_ENTRIES = 300;
const MAX_DESCRIPTION = 200;
const KEYS = [
  'scientific_name', 'family', 'genus', 'common_names', 'plant_type',
  'light_requirements', 'water_requirements', 'hardiness_zone_min',
  'hardiness_zone_max', 'bloom_time', 'flower_color', 'description',
];
const PLANT_TYPES = new Set([
  'tree', 'shrub', 'perennial', 'annual', 'biennial', 'succulent', 'cactus',
  'fern', 'vine', 'grass', 'bulb', 'houseplant', 'herb', 'aquatic',
]);
const LIGHT = new Set(['full_sun', 'partial_sun', 'partial_shade', 'full_shade']);
const WATER = new Set(['low', 'moderate', 'high']);

const errors = [];
const err = (i, name, msg) => errors.push(`#${i} ${name ?? '?'}: ${msg}`);
const isNonEmptyString = (v) => typeof v === 'string' && v.trim().length > 0;
const isNullableString = (v) => v === null || isNonEmptyString(v);
const isZone = (v) => v === null || (Number.isInteger(v) && v >= 1 && v <= 13);

let data;
try {
  data = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.error(`cannot read/parse ${file}: ${e.message}`);
  process.exit(1);
}
if (!Array.isArray(data)) {
  console.error('species.json must be a JSON array');
  process.exit(1);
}
if (data.length < MIN_ENTRIES) errors.push(`only ${data.length} entries (need >= ${MIN_ENTRIES})`);

const seen = new Map();
const typeCounts = {};
let withLight = 0;
let withWater = 0;

data.forEach((e, i) => {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) {
    err(i, null, 'entry is not an object');
    return;
  }
  const name = e.scientific_name;
  const keys = Object.keys(e);
  for (const k of KEYS) if (!keys.includes(k)) err(i, name, `missing key "${k}"`);
  for (const k of keys) if (!KEYS.includes(k)) err(i, name, `unexpected key "${k}"`);

  if (!isNonEmptyString(name)) {
    err(i, name, 'scientific_name must be a non-empty string');
  } else {
    if (name !== name.trim() || /\s{2,}/.test(name)) err(i, name, 'scientific_name has stray whitespace');
    const parts = name.split(' ');
    if (parts.length < 2) err(i, name, 'scientific_name is not a binomial');
    const lower = name.toLowerCase();
    if (seen.has(lower)) err(i, name, `duplicate scientific_name (also #${seen.get(lower)})`);
    else seen.set(lower, i);
    if (e.genus !== parts[0]) err(i, name, `genus "${e.genus}" != first word "${parts[0]}"`);
  }
  if (!isNonEmptyString(e.family)) err(i, name, 'family must be a non-empty string');
  else if (!/^[A-Z][a-z]+aceae$/.test(e.family)) err(i, name, `family "${e.family}" does not look like a family name`);
  if (!isNonEmptyString(e.genus)) err(i, name, 'genus must be a non-empty string');

  if (!Array.isArray(e.common_names) || e.common_names.length < 1 || e.common_names.length > 4) {
    err(i, name, 'common_names must be an array of 1-4 names');
  } else if (!e.common_names.every(isNonEmptyString)) {
    err(i, name, 'common_names contains an empty or non-string value');
  }

  if (!PLANT_TYPES.has(e.plant_type)) err(i, name, `bad plant_type "${e.plant_type}"`);
  else typeCounts[e.plant_type] = (typeCounts[e.plant_type] ?? 0) + 1;

  if (e.light_requirements !== null && !LIGHT.has(e.light_requirements)) err(i, name, `bad light_requirements "${e.light_requirements}"`);
  if (e.water_requirements !== null && !WATER.has(e.water_requirements)) err(i, name, `bad water_requirements "${e.water_requirements}"`);
  if (e.light_requirements !== null && e.light_requirements !== undefined) withLight++;
  if (e.water_requirements !== null && e.water_requirements !== undefined) withWater++;

  if (!isZone(e.hardiness_zone_min)) err(i, name, 'hardiness_zone_min must be an integer 1-13 or null');
  if (!isZone(e.hardiness_zone_max)) err(i, name, 'hardiness_zone_max must be an integer 1-13 or null');
  if ((e.hardiness_zone_min === null) !== (e.hardiness_zone_max === null)) err(i, name, 'hardiness zones must be both set or both null');
  if (Number.isInteger(e.hardiness_zone_min) && Number.isInteger(e.hardiness_zone_max) && e.hardiness_zone_min > e.hardiness_zone_max) {
    err(i, name, 'hardiness_zone_min > hardiness_zone_max');
  }

  if (!isNullableString(e.bloom_time)) err(i, name, 'bloom_time must be a non-empty string or null');
  if (!isNullableString(e.flower_color)) err(i, name, 'flower_color must be a non-empty string or null');

  if (!isNonEmptyString(e.description)) err(i, name, 'description must be a non-empty string');
  else if (e.description.length > MAX_DESCRIPTION) err(i, name, `description is ${e.description.length} chars (max ${MAX_DESCRIPTION})`);
});

const n = data.length;
const pct = (x) => (n ? ((100 * x) / n).toFixed(1) : '0.0');
if (n && withLight / n < 0.9) errors.push(`light_requirements filled for only ${pct(withLight)}% (need >= 90%)`);
if (n && withWater / n < 0.9) errors.push(`water_requirements filled for only ${pct(withWater)}% (need >= 90%)`);

for (const m of errors) console.error(`ERROR ${m}`);
const types = Object.entries(typeCounts).sort((a, b) => b[1] - a[1]).map(([t, c]) => `${t}=${c}`).join(' ');
console.log(
  `species.json: ${n} entries, ${seen.size} unique names, ${new Set(data.map((e) => e?.family)).size} families, ` +
  `light ${withLight}/${n} (${pct(withLight)}%), water ${withWater}/${n} (${pct(withWater)}%), ` +
  `${errors.length} error(s)`,
);
console.log(`plant_type: ${types}`);
process.exit(errors.length ? 1 : 0);
