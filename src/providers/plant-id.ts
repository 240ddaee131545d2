/**
 * Plant.id v3 (Kindwise) client — PROVIDERS.md §1. One call does species and health:
 * `POST /identification` with `health: "all"` and the details we display. Images go as raw
 * base64 (no data: prefix); auth is the `Api-Key` header.
 */
import { z } from "zod";
import { bytesToBase64 } from "../lib/images";
import { errorFromResponse, fetchWithTimeout, readJson } from "./http";
import { ProviderError, type DiseaseSuggestion, type ProviderAnswer, type ProviderSuggestion } from "./types";

export const PLANT_ID_API_VERSION = "v3";
export const PLANT_ID_DETAILS = [
  "common_names",
  "url",
  "description",
  "taxonomy",
  "gbif_id",
  "watering",
  "propagation_methods",
  "edible_parts",
  "treatment",
  "classification",
  "cause",
] as const;

export interface PlantIdSettings {
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
}

export interface PlantIdQuery {
  images: Uint8Array[];
  latitude?: number | null;
  longitude?: number | null;
  language: string;
}

// Only the fields we read are checked; everything else the provider adds is ignored.
const Probability = z.object({ probability: z.number(), binary: z.boolean().optional() });
const Described = z.union([z.string(), z.object({ value: z.string().nullish() }).passthrough()]).nullish();
const SuggestionSchema = z.object({
  name: z.string(),
  probability: z.number(),
  similar_images: z
    .array(z.object({ url: z.string(), url_small: z.string().nullish(), similarity: z.number().nullish(), license_name: z.string().nullish(), citation: z.string().nullish() }).passthrough())
    .nullish(),
  details: z
    .object({
      common_names: z.array(z.string()).nullish(),
      url: z.string().nullish(),
      description: Described,
      taxonomy: z.object({ family: z.string().nullish(), genus: z.string().nullish() }).passthrough().nullish(),
      gbif_id: z.number().nullish(),
      watering: z.object({ min: z.number(), max: z.number() }).nullish(),
      propagation_methods: z.array(z.string()).nullish(),
      edible_parts: z.array(z.string()).nullish(),
    })
    .passthrough()
    .nullish(),
});
const DiseaseSchema = z.object({
  name: z.string(),
  probability: z.number(),
  details: z
    .object({
      local_name: z.string().nullish(),
      description: Described,
      treatment: z.record(z.string(), z.array(z.string()).nullish()).nullish(),
      classification: z.array(z.string()).nullish(),
      common_names: z.array(z.string()).nullish(),
    })
    .passthrough()
    .nullish(),
});
const ResponseSchema = z.object({
  result: z.object({
    is_plant: Probability,
    classification: z.object({ suggestions: z.array(SuggestionSchema) }),
    is_healthy: Probability.nullish(),
    disease: z.object({ suggestions: z.array(DiseaseSchema) }).nullish(),
  }),
});

function text(value: z.infer<typeof Described>): string {
  if (!value) return "";
  return typeof value === "string" ? value : (value.value ?? "");
}

function normaliseSuggestion(s: z.infer<typeof SuggestionSchema>): ProviderSuggestion {
  const d = s.details ?? {};
  return {
    scientificName: s.name.trim(),
    authorship: "",
    commonNames: d.common_names ?? [],
    family: d.taxonomy?.family ?? "",
    genus: d.taxonomy?.genus ?? s.name.trim().split(/\s+/)[0] ?? "",
    gbifId: d.gbif_id ?? null,
    probability: clamp01(s.probability),
    description: text(d.description),
    url: d.url ?? null,
    similarImages: (s.similar_images ?? []).map((img) => ({
      url: img.url,
      ...(img.url_small ? { url_small: img.url_small } : {}),
      ...(img.similarity != null ? { similarity: img.similarity } : {}),
      ...(img.license_name ? { license: img.license_name } : {}),
      ...(img.citation ? { citation: img.citation } : {}),
    })),
    watering: d.watering ?? null,
    propagationMethods: d.propagation_methods ?? [],
    edibleParts: d.edible_parts ?? [],
  };
}

function normaliseDisease(s: z.infer<typeof DiseaseSchema>): DiseaseSuggestion {
  const d = s.details ?? {};
  const treatment = d.treatment ?? {};
  // Plant.id splits treatment into biological / chemical / prevention lists.
  const treatmentText = ["biological", "chemical", "prevention"]
    .flatMap((k) => (treatment[k] ?? []).map((line) => `${k[0]!.toUpperCase()}${k.slice(1)}: ${line}`))
    .join("\n");
  return {
    name: d.local_name ?? s.name,
    probability: clamp01(s.probability),
    description: text(d.description),
    treatment: treatmentText,
    classification: d.classification ?? [],
    commonNames: d.common_names ?? [],
  };
}

const clamp01 = (n: number) => Math.min(1, Math.max(0, n));

export async function identifyWithPlantId(settings: PlantIdSettings, query: PlantIdQuery, signal?: AbortSignal): Promise<ProviderAnswer> {
  if (!settings.apiKey) throw new ProviderError("plant_id", "auth", "PLANT_ID_API_KEY is not configured");
  const url = new URL(`${settings.baseUrl.replace(/\/+$/, "")}/identification`);
  url.searchParams.set("details", PLANT_ID_DETAILS.join(","));
  url.searchParams.set("language", query.language);
  const body: Record<string, unknown> = {
    images: query.images.map(bytesToBase64),
    similar_images: true,
    health: "all",
  };
  if (query.latitude != null && query.longitude != null) {
    body.latitude = query.latitude;
    body.longitude = query.longitude;
  }
  const res = await fetchWithTimeout(
    "plant_id",
    url.toString(),
    { method: "POST", headers: { "Api-Key": settings.apiKey, "Content-Type": "application/json" }, body: JSON.stringify(body) },
    settings.timeoutMs,
    signal,
  );
  if (!res.ok) throw await errorFromResponse("plant_id", res);
  const parsed = ResponseSchema.safeParse(await readJson("plant_id", res, settings.timeoutMs));
  if (!parsed.success) throw new ProviderError("plant_id", "malformed", "Plant.id answer does not have the v3 shape", res.status);
  const result = parsed.data.result;
  const isPlant = result.is_plant.binary ?? result.is_plant.probability >= 0.5;
  return {
    provider: "plant_id",
    isPlant,
    suggestions: isPlant ? result.classification.suggestions.map(normaliseSuggestion) : [],
    health: result.is_healthy
      ? {
          isHealthy: result.is_healthy.binary ?? result.is_healthy.probability >= 0.5,
          isHealthyProbability: clamp01(result.is_healthy.probability),
          diseases: (result.disease?.suggestions ?? []).map(normaliseDisease),
        }
      : null,
  };
}
