/**
 * Plant.id v3 (Kindwise) client — PROVIDERS.md §1. Identification is one call for species and
 * health: `POST /identification` with `health: "all"` and the details we display. Disease
 * requests use `POST /health_assessment` (§1.5), which answers the health part only. Images go
 * as raw base64 (no data: prefix); auth is the `Api-Key` header.
 */
import { z } from "zod";
import { bytesToBase64 } from "../lib/images";
import { errorFromResponse, fetchWithTimeout, readJson } from "./http";
import {
  ProviderError,
  type DiseaseSuggestion,
  type ProviderAnswer,
  type ProviderSuggestion,
  type SimilarImage,
  similarImage,
  type TreatmentPlan,
  webUrl,
} from "./types";

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
/** Disease details for `/health_assessment` (PROVIDERS.md §1.5). */
export const PLANT_ID_HEALTH_DETAILS = [
  "local_name",
  "description",
  "url",
  "treatment",
  "classification",
  "common_names",
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
const SimilarImagesSchema = z
  .array(
    z
      .object({
        url: z.string(),
        url_small: z.string().nullish(),
        similarity: z.number().nullish(),
        license_name: z.string().nullish(),
        citation: z.string().nullish(),
      })
      .passthrough(),
  )
  .nullish();
const SuggestionSchema = z.object({
  name: z.string(),
  probability: z.number(),
  similar_images: SimilarImagesSchema,
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
// The fields added for disease requests (id, url, cause, similar images) are display extras:
// an unexpected shape there degrades to "absent" instead of failing a whole identification.
const DiseaseSchema = z.object({
  id: z.string().nullish().catch(null),
  name: z.string(),
  probability: z.number(),
  similar_images: SimilarImagesSchema.catch(null),
  details: z
    .object({
      local_name: z.string().nullish(),
      description: Described,
      treatment: z.record(z.string(), z.array(z.string()).nullish()).nullish(),
      classification: z.array(z.string()).nullish(),
      common_names: z.array(z.string()).nullish(),
      url: z.string().nullish().catch(null),
      cause: z.string().nullish().catch(null),
    })
    .passthrough()
    .nullish(),
});
/**
 * The health part of an identification's answer (`health: "all"`). A side product of the call:
 * when it has a shape we do not expect, the answer has no health assessment, and the species —
 * what the call is for — are still given.
 */
const HealthPartSchema = z.object({
  is_healthy: Probability,
  disease: z.object({ suggestions: z.array(DiseaseSchema) }).nullish(),
});
const ResponseSchema = z.object({
  result: z
    .object({
      is_plant: Probability,
      classification: z.object({ suggestions: z.array(SuggestionSchema) }),
    })
    .passthrough(),
});
/** `/health_assessment` answers `{is_plant, is_healthy, disease}` without a classification. */
const HealthResponseSchema = z.object({ result: HealthPartSchema.extend({ is_plant: Probability }) });

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
    url: webUrl(d.url),
    similarImages: similarImages(s.similar_images),
    watering: d.watering ?? null,
    propagationMethods: d.propagation_methods ?? [],
    edibleParts: d.edible_parts ?? [],
  };
}

function similarImages(images: z.infer<typeof SimilarImagesSchema>): SimilarImage[] {
  return (images ?? []).flatMap((img) =>
    similarImage({ url: img.url, small: img.url_small, similarity: img.similarity, license: img.license_name, citation: img.citation }),
  );
}

function normaliseDisease(s: z.infer<typeof DiseaseSchema>): DiseaseSuggestion {
  const d = s.details ?? {};
  const treatment = d.treatment ?? {};
  // Plant.id splits treatment into biological / chemical / prevention lists.
  const plan: TreatmentPlan = {
    biological: treatment.biological ?? [],
    chemical: treatment.chemical ?? [],
    prevention: treatment.prevention ?? [],
  };
  const treatmentText = (["biological", "chemical", "prevention"] as const)
    .flatMap((k) => plan[k].map((line) => `${k[0]!.toUpperCase()}${k.slice(1)}: ${line}`))
    .join("\n");
  return {
    name: d.local_name ?? s.name,
    probability: clamp01(s.probability),
    description: text(d.description),
    treatment: treatmentText,
    classification: d.classification ?? [],
    commonNames: d.common_names ?? [],
    entityId: s.id ?? null,
    treatmentPlan: plan,
    cause: d.cause ?? null,
    url: webUrl(d.url),
    similarImages: similarImages(s.similar_images),
  };
}

const clamp01 = (n: number) => Math.min(1, Math.max(0, n));

/**
 * One POST to Plant.id v3 — images as raw base64 JSON, `Api-Key` auth, `details` and `language`
 * in the query — answering the JSON body, or throwing a typed ProviderError.
 */
async function postToPlantId(
  settings: PlantIdSettings,
  endpoint: "identification" | "health_assessment",
  details: readonly string[],
  query: PlantIdQuery,
  extra: Record<string, unknown>,
  signal?: AbortSignal,
): Promise<{ json: unknown; status: number }> {
  if (!settings.apiKey) throw new ProviderError("plant_id", "auth", "PLANT_ID_API_KEY is not configured");
  const url = new URL(`${settings.baseUrl.replace(/\/+$/, "")}/${endpoint}`);
  url.searchParams.set("details", details.join(","));
  url.searchParams.set("language", query.language);
  const body: Record<string, unknown> = { images: query.images.map(bytesToBase64), similar_images: true, ...extra };
  if (query.latitude != null && query.longitude != null) {
    body.latitude = query.latitude;
    body.longitude = query.longitude;
  }
  const res = await fetchWithTimeout(
    "plant_id",
    url.toString(),
    { method: "POST", headers: { "Api-Key": settings.apiKey, "Content-Type": "application/json" }, body: JSON.stringify(body) },
    { timeoutMs: settings.timeoutMs, credentials: [settings.apiKey], signal },
  );
  if (!res.ok) throw await errorFromResponse("plant_id", res);
  return { json: await readJson("plant_id", res, settings.timeoutMs), status: res.status };
}

export async function identifyWithPlantId(settings: PlantIdSettings, query: PlantIdQuery, signal?: AbortSignal): Promise<ProviderAnswer> {
  const { json, status } = await postToPlantId(settings, "identification", PLANT_ID_DETAILS, query, { health: "all" }, signal);
  const parsed = ResponseSchema.safeParse(json);
  if (!parsed.success) throw new ProviderError("plant_id", "malformed", "Plant.id answer does not have the v3 shape", status);
  const result = parsed.data.result;
  const isPlant = result.is_plant.binary ?? result.is_plant.probability >= 0.5;
  const health = HealthPartSchema.safeParse(result);
  return {
    provider: "plant_id",
    isPlant,
    suggestions: isPlant ? result.classification.suggestions.map(normaliseSuggestion) : [],
    health: health.success
      ? {
          isHealthy: health.data.is_healthy.binary ?? health.data.is_healthy.probability >= 0.5,
          isHealthyProbability: clamp01(health.data.is_healthy.probability),
          diseases: (health.data.disease?.suggestions ?? []).map(normaliseDisease),
        }
      : null,
  };
}

/**
 * `POST /health_assessment` (PROVIDERS.md §1.5): the same body as identification, disease
 * details in `details`. Normalised to a ProviderAnswer with no species suggestions and the
 * assessment in `health`, so it shares the cache, single flight and circuit of identification.
 */
export async function assessHealthWithPlantId(
  settings: PlantIdSettings,
  query: PlantIdQuery,
  signal?: AbortSignal,
): Promise<ProviderAnswer> {
  const { json, status } = await postToPlantId(settings, "health_assessment", PLANT_ID_HEALTH_DETAILS, query, {}, signal);
  const parsed = HealthResponseSchema.safeParse(json);
  if (!parsed.success) throw new ProviderError("plant_id", "malformed", "Plant.id health assessment does not have the v3 shape", status);
  const result = parsed.data.result;
  const diseases = (result.disease?.suggestions ?? []).map(normaliseDisease).sort((a, b) => b.probability - a.probability);
  return {
    provider: "plant_id",
    isPlant: result.is_plant.binary ?? result.is_plant.probability >= 0.5,
    suggestions: [],
    health: {
      isHealthy: result.is_healthy.binary ?? result.is_healthy.probability >= 0.5,
      isHealthyProbability: clamp01(result.is_healthy.probability),
      diseases,
    },
  };
}
