/**
 * Merging Plant.id and Pl@ntNet into one ranked list (API.md §2.3).
 *
 * Two suggestions are the same species when both carry the same GBIF id, or when their
 * scientific names match after normalisation (authorship dropped, hybrid sign unified,
 * case and spacing ignored).
 *
 * Combined confidence — the "noisy-OR" of the two scores:
 *
 *     combined = 1 − (1 − p_plant_id) × (1 − p_plantnet)
 *
 * Read it as "the chance that at least one independent provider is right". Agreement therefore
 * always raises confidence above either provider alone (for scores in (0, 1)), while a species
 * only one provider proposes keeps exactly that provider's score — never inflated. Sorted by
 * confidence (ties: both providers first, then name) and ranked 1..n.
 *
 * Calibration (issue 11): when a provider has a fitted calibration map (services/calibration.ts),
 * its raw score is first mapped to the probability that the species is right, as measured on
 * community-confirmed requests, and the noisy-OR combines those. `plant_id_probability` and
 * `plantnet_score` stay the providers' raw scores; `calibration_version` says which maps
 * produced `probability` (`plant_id:v3,plantnet:raw`).
 */
import { applyCalibration, type CalibrationMap } from "../lib/calibration";
import type { ProviderAnswer, ProviderName, ProviderSuggestion, SimilarImage } from "../providers/types";

/** The maps in use, per provider (absent: raw scores). */
export type Calibrations = Partial<Record<ProviderName, { version: number; map: CalibrationMap }>>;

export function calibrationVersion(calibrations: Calibrations): string {
  return (["plant_id", "plantnet"] as const).map((p) => `${p}:${calibrations[p] ? `v${calibrations[p].version}` : "raw"}`).join(",");
}

export interface MergedSuggestion {
  plant_name: string;
  scientific_name: string;
  probability: number;
  common_names: string[];
  description: string;
  family: string;
  genus: string;
  gbif_id?: number;
  similar_images: SimilarImage[];
  watering?: { min: number; max: number };
  propagation_methods?: string[];
  url?: string;
  sources: ProviderName[];
  plant_id_probability?: number;
  plantnet_score?: number;
  /** Which calibration maps produced `probability`. */
  calibration_version: string;
  rank: number;
}

export const MAX_MERGED_SUGGESTIONS = 10;
const MAX_SIMILAR_IMAGES = 6;

/** "Monstera deliciosa Liebm." → "monstera deliciosa"; "Mentha × piperita" → "mentha x piperita". */
export function normaliseScientificName(name: string): string {
  const words = name.normalize("NFKC").replace(/[×✕]/g, " x ").replace(/\s+/g, " ").trim().toLowerCase().split(" ");
  // Keep genus, optional hybrid marker, epithet and infraspecific rank + name; drop authorship
  // (which starts with a capital or parenthesis in the original, but we only have lower case
  // here, so stop at the first token that is not a plain epithet).
  const kept: string[] = [];
  const ranks = new Set(["subsp.", "ssp.", "var.", "f.", "cv."]);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (i === 0) kept.push(w);
    else if (w === "x") kept.push(w);
    else if (ranks.has(w) && words[i + 1]) {
      kept.push(w.replace("ssp.", "subsp."), words[i + 1]!);
      i++;
    } else if (kept.length < 2 || (kept.length === 2 && kept[1] === "x")) {
      if (/^[a-z-]+$/.test(w)) kept.push(w);
      else break;
    } else break;
  }
  return kept.join(" ");
}

function bestName(suggestion: ProviderSuggestion): string {
  return suggestion.commonNames[0] ?? suggestion.scientificName;
}

interface Bucket {
  key: string;
  plantId?: ProviderSuggestion;
  plantnet?: ProviderSuggestion;
}

export function combinedConfidence(pPlantId?: number, pPlantNet?: number): number {
  if (pPlantId === undefined) return pPlantNet ?? 0;
  if (pPlantNet === undefined) return pPlantId;
  return 1 - (1 - pPlantId) * (1 - pPlantNet);
}

export function mergeSuggestions(
  answers: { plant_id?: ProviderAnswer | null; plantnet?: ProviderAnswer | null },
  calibrations: Calibrations = {},
): MergedSuggestion[] {
  const version = calibrationVersion(calibrations);
  const calibrated = (provider: ProviderName, score: number | undefined) =>
    score === undefined ? undefined : applyCalibration(calibrations[provider]?.map, score);
  const buckets: Bucket[] = [];
  const byName = new Map<string, Bucket>();
  const byGbif = new Map<number, Bucket>();

  const place = (provider: ProviderName, s: ProviderSuggestion) => {
    const nameKey = normaliseScientificName(s.scientificName);
    let bucket = (s.gbifId != null ? byGbif.get(s.gbifId) : undefined) ?? byName.get(nameKey);
    // A provider's own list never merges with itself (two entries, one species: keep the first).
    if (bucket?.[provider === "plant_id" ? "plantId" : "plantnet"]) return;
    if (!bucket) {
      bucket = { key: nameKey };
      buckets.push(bucket);
    }
    if (provider === "plant_id") bucket.plantId = s;
    else bucket.plantnet = s;
    byName.set(nameKey, bucket);
    if (s.gbifId != null) byGbif.set(s.gbifId, bucket);
  };

  for (const s of answers.plant_id?.suggestions ?? []) place("plant_id", s);
  for (const s of answers.plantnet?.suggestions ?? []) place("plantnet", s);

  const merged = buckets.map((b) => {
    const primary = b.plantId ?? b.plantnet!;
    const other = b.plantId ? b.plantnet : undefined;
    const commonNames = [...new Set([...(b.plantId?.commonNames ?? []), ...(b.plantnet?.commonNames ?? [])])];
    const similar = [...(b.plantId?.similarImages ?? []), ...(b.plantnet?.similarImages ?? [])].slice(0, MAX_SIMILAR_IMAGES);
    const sources: ProviderName[] = [];
    if (b.plantId) sources.push("plant_id");
    if (b.plantnet) sources.push("plantnet");
    const gbif = b.plantId?.gbifId ?? b.plantnet?.gbifId ?? null;
    const suggestion: MergedSuggestion = {
      plant_name: commonNames[0] ?? bestName(primary),
      scientific_name: primary.scientificName,
      probability: round4(
        combinedConfidence(calibrated("plant_id", b.plantId?.probability), calibrated("plantnet", b.plantnet?.probability)),
      ),
      common_names: commonNames,
      description: primary.description || other?.description || "",
      family: primary.family || other?.family || "",
      genus: primary.genus || other?.genus || "",
      similar_images: similar,
      sources,
      calibration_version: version,
      rank: 0,
    };
    if (gbif != null) suggestion.gbif_id = gbif;
    if (b.plantId?.watering) suggestion.watering = b.plantId.watering;
    if (b.plantId?.propagationMethods.length) suggestion.propagation_methods = b.plantId.propagationMethods;
    if (b.plantId?.url) suggestion.url = b.plantId.url;
    if (b.plantId) suggestion.plant_id_probability = round4(b.plantId.probability);
    if (b.plantnet) suggestion.plantnet_score = round4(b.plantnet.probability);
    return suggestion;
  });

  merged.sort(
    (a, b) => b.probability - a.probability || b.sources.length - a.sources.length || a.scientific_name.localeCompare(b.scientific_name),
  );
  return merged.slice(0, MAX_MERGED_SUGGESTIONS).map((s, i) => ({ ...s, rank: i + 1 }));
}

const round4 = (n: number) => Math.round(n * 10_000) / 10_000;
