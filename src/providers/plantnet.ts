/**
 * Pl@ntNet v2 client — PROVIDERS.md §2. Multipart `images` files with one `organs` field per
 * image, `api-key` in the query (not the body), options in the query too (the Django client
 * sent them as form fields, which is why related images never came back). A 404 "Species not
 * found" means the image was rejected as a non-plant or matched nothing: an answer, not an
 * outage.
 */
import { z } from "zod";
import type { ImageMime } from "../lib/images";
import { errorFromResponse, fetchWithTimeout, readJson } from "./http";
import { ProviderError, type ProviderAnswer, type ProviderSuggestion, similarImage, webUrl } from "./types";

export const PLANTNET_API_VERSION = "v2";
export const PLANTNET_ORGANS = ["auto", "leaf", "flower", "fruit", "bark", "habit", "other"] as const;
export type PlantNetOrgan = (typeof PLANTNET_ORGANS)[number];

/**
 * The `lang` values we ask Pl@ntNet in (its `/v2/languages`; PROVIDERS.md §2.2). It answers 400
 * to a code it does not know, which would cost the whole call, so any other language is asked
 * in English: the answer is the same apart from `commonNames`.
 */
export const PLANTNET_LANGUAGES = ["en", "fr", "de", "es", "it", "pt", "nl", "cs"] as const;

/** The `lang` to send for a user's language: itself when Pl@ntNet knows it, else English. */
export function plantNetLanguage(language: string): string {
  return (PLANTNET_LANGUAGES as readonly string[]).includes(language) ? language : "en";
}

export interface PlantNetSettings {
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
}

export interface PlantNetQuery {
  images: { bytes: Uint8Array; mime: ImageMime }[];
  organs: PlantNetOrgan[];
  project: string;
  language: string;
  includeRelatedImages: boolean;
  maxResults: number;
}

/**
 * Regional projects chosen from coordinates (rough bounding boxes of the Pl@ntNet floras);
 * anything else uses the world flora `all`.
 */
const REGIONAL_PROJECTS: { project: string; latMin: number; latMax: number; lonMin: number; lonMax: number }[] = [
  { project: "weurope", latMin: 35, latMax: 61, lonMin: -11, lonMax: 10 },
  { project: "k-middle-europe", latMin: 43, latMax: 56, lonMin: 10, lonMax: 25 },
  { project: "canada", latMin: 42, latMax: 84, lonMin: -141, lonMax: -52 },
];

export function plantNetProjectFor(latitude?: number | null, longitude?: number | null): string {
  if (latitude == null || longitude == null) return "all";
  return (
    REGIONAL_PROJECTS.find((r) => latitude >= r.latMin && latitude <= r.latMax && longitude >= r.lonMin && longitude <= r.lonMax)
      ?.project ?? "all"
  );
}

const NameSchema = z.object({ scientificNameWithoutAuthor: z.string().nullish(), scientificName: z.string().nullish() }).passthrough();
const ResultSchema = z.object({
  score: z.number(),
  species: z.object({
    scientificNameWithoutAuthor: z.string(),
    scientificNameAuthorship: z.string().nullish(),
    genus: NameSchema.nullish(),
    family: NameSchema.nullish(),
    // Current payloads use strings; old ones used {value} objects.
    commonNames: z.array(z.union([z.string(), z.object({ value: z.string() })])).nullish(),
  }),
  gbif: z.object({ id: z.union([z.string(), z.number()]) }).nullish(),
  images: z
    .array(
      z
        .object({
          url: z.object({ o: z.string().nullish(), m: z.string().nullish(), s: z.string().nullish() }),
          author: z.string().nullish(),
          license: z.string().nullish(),
          citation: z.string().nullish(),
        })
        .passthrough(),
    )
    .nullish(),
});
const ResponseSchema = z.object({ results: z.array(ResultSchema), remainingIdentificationRequests: z.number().nullish() });

function normalise(r: z.infer<typeof ResultSchema>): ProviderSuggestion {
  const gbif = r.gbif?.id != null ? Number(r.gbif.id) : NaN;
  const name = r.species.scientificNameWithoutAuthor.trim();
  return {
    scientificName: name,
    authorship: r.species.scientificNameAuthorship ?? "",
    commonNames: (r.species.commonNames ?? []).map((c) => (typeof c === "string" ? c : c.value)),
    family: r.species.family?.scientificNameWithoutAuthor ?? r.species.family?.scientificName ?? "",
    genus: r.species.genus?.scientificNameWithoutAuthor ?? r.species.genus?.scientificName ?? name.split(/\s+/)[0] ?? "",
    gbifId: Number.isFinite(gbif) ? gbif : null,
    probability: Math.min(1, Math.max(0, r.score)),
    description: "",
    url: null,
    // The medium size, else the original: whichever is an http(s) URL (similarImage).
    similarImages: (r.images ?? []).flatMap((img) =>
      similarImage({ url: webUrl(img.url.m) ?? img.url.o, small: img.url.s, license: img.license, citation: img.citation }),
    ),
    watering: null,
    propagationMethods: [],
    edibleParts: [],
  };
}

export async function identifyWithPlantNet(
  settings: PlantNetSettings,
  query: PlantNetQuery,
  signal?: AbortSignal,
): Promise<ProviderAnswer> {
  if (!settings.apiKey) throw new ProviderError("plantnet", "auth", "PLANTNET_API_KEY is not configured");
  if (query.images.length === 0 || query.images.length !== query.organs.length) {
    throw new ProviderError("plantnet", "bad_request", "Pl@ntNet needs one organ per image");
  }
  const url = new URL(`${settings.baseUrl.replace(/\/+$/, "")}/v2/identify/${encodeURIComponent(query.project)}`);
  url.searchParams.set("api-key", settings.apiKey);
  url.searchParams.set("include-related-images", String(query.includeRelatedImages));
  url.searchParams.set("nb-results", String(query.maxResults));
  url.searchParams.set("lang", query.language);
  const form = new FormData();
  query.images.forEach((image, i) => {
    form.append("images", new Blob([image.bytes], { type: image.mime }), `photo_${i}.${image.mime === "image/png" ? "png" : "jpg"}`);
    form.append("organs", query.organs[i]!);
  });
  const res = await fetchWithTimeout(
    "plantnet",
    url.toString(),
    { method: "POST", body: form },
    { timeoutMs: settings.timeoutMs, credentials: [settings.apiKey], signal },
  );
  if (res.status === 404) {
    await res.body?.cancel();
    return { provider: "plantnet", isPlant: false, suggestions: [], health: null };
  }
  if (!res.ok) throw await errorFromResponse("plantnet", res);
  const parsed = ResponseSchema.safeParse(await readJson("plantnet", res, settings.timeoutMs));
  if (!parsed.success) throw new ProviderError("plantnet", "malformed", "Pl@ntNet answer does not have the v2 shape", res.status);
  return { provider: "plantnet", isPlant: true, suggestions: parsed.data.results.map(normalise), health: null };
}
