// Plant.id v3 (Kindwise) emulator, as seen under the base URL https://api.plant.id/v3.
// Field names, statuses and quirks follow the Plant.id v3 API.
//
// Error bodies are plain text (`text/plain`), the documented v2 format; the v3 format is
// unconfirmed, so clients must read error bodies defensively either way.
// Invented where the spec is silent: the wording of the 400s for more than 5 images or bad
// health/classification values, credit costs (1 per call, 2 with `health: "all"`, as the
// Django code assumed), and the CDN host of image URLs.

import {
  COMMON_FAILURES,
  DEFAULT_API_KEY,
  decodeBase64,
  defineEmulator,
  descendingScores,
  drawFromImage,
  isRecord,
  jsonResponse,
  randomToken,
  rankDiseases,
  readJsonBody,
  sha256Hex,
  unit,
  type CommonFailure,
  type Emulator,
  type ImageDraw,
} from "./common";
import { fnv1a64Hex, LANGUAGES, type Disease, type Language, type Species } from "./species";

export interface PlantIdEmulatorOptions {
  apiKeys?: string[];
  /** Credits available before 429 (reported as the month limit by usage_info); null = unlimited. */
  creditLimit?: number | null;
  /**
   * Where the image URLs in answers point (similar images, entity and input images). Default
   * PLANT_ID_CDN, a host that never resolves; the local server sets its own /media/plant-id so
   * a browser shows real pictures.
   */
  mediaBaseUrl?: string;
}

export type PlantIdEmulator = Emulator<CommonFailure>;

export const PLANT_ID_CDN = "https://plant-id.emulator.invalid";
export const PLANT_ID_MODEL_VERSION = "plant_id:5.0.0";
export const PLANT_ID_MAX_IMAGES = 5;

const IS_PLANT_THRESHOLD = 0.5;
const IS_HEALTHY_THRESHOLD = 0.525;
const DEFAULT_DISEASE_SUGGESTIONS = 3;
const CREDITS_MESSAGE = "The specified api key does not have sufficient number of available credits.";

type HealthOption = "all" | "only";
type ClassificationLevel = "species" | "genus" | "all";

/** Everything needed to render an identification again (GET /identification/{token}). */
interface IdentificationRecord {
  accessToken: string;
  customId: number | null;
  created: number;
  completed: number;
  latitude: number | null;
  longitude: number | null;
  datetime: string;
  imageUrls: string[];
  similarImages: boolean;
  health: HealthOption | null;
  classificationLevel: ClassificationLevel | null;
  classificationRaw: boolean;
  draw: ImageDraw;
  /** The image host of this emulator (options.mediaBaseUrl). */
  cdn: string;
}

interface RenderOptions {
  details: string[];
  language: Language;
  fullDiseaseList: boolean;
  asyncCreated: boolean;
}

export function createPlantIdEmulator(options: PlantIdEmulatorOptions = {}): PlantIdEmulator {
  const apiKeys = new Set(options.apiKeys ?? [DEFAULT_API_KEY]);
  const creditLimit = options.creditLimit ?? null;
  const cdn = (options.mediaBaseUrl ?? PLANT_ID_CDN).replace(/\/+$/, "");
  let creditsUsed = 0;
  let identifications = new Map<string, IdentificationRecord>();

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.replace(/\/+$/, "");
    const tokenMatch = /^\/v3\/identification\/([^/]+)$/.exec(path);
    const known = path === "/v3/identification" || path === "/v3/health_assessment" || path === "/v3/usage_info" || tokenMatch;
    if (!known) return textError(404, "Not found");

    const authError = checkAuth(req, apiKeys);
    if (authError) return authError;

    if (path === "/v3/usage_info") {
      return req.method === "GET" ? jsonResponse(usageInfo(creditLimit, creditsUsed)) : textError(405, "Method not allowed");
    }
    if (tokenMatch) {
      if (req.method !== "GET") return textError(405, "Method not allowed");
      const record = identifications.get(decodeURIComponent(tokenMatch[1] as string));
      if (!record) return textError(404, "Identification not found");
      return jsonResponse(render(record, { ...renderOptions(url), asyncCreated: false }));
    }
    if (req.method !== "POST") return textError(405, "Method not allowed");

    const parsed = await parseIdentificationBody(req);
    if (!parsed.ok) return textError(400, parsed.error);
    const body = parsed.value;
    const health = path === "/v3/health_assessment" ? "only" : body.health;

    const cost = health === "all" ? 2 : 1;
    if (creditLimit !== null && creditsUsed + cost > creditLimit) return textError(429, CREDITS_MESSAGE);
    creditsUsed += cost;

    const created = Date.now() / 1000;
    const record: IdentificationRecord = {
      accessToken: randomToken(15),
      customId: body.customId,
      created,
      completed: created + 0.4,
      latitude: body.latitude,
      longitude: body.longitude,
      datetime: body.datetime ?? new Date(created * 1000).toISOString(),
      imageUrls: await Promise.all(body.images.map(async (bytes) => `${cdn}/media/imgs/${await sha256Hex(bytes)}.jpg`)),
      similarImages: body.similarImages,
      health,
      classificationLevel: body.classificationLevel,
      classificationRaw: body.classificationRaw,
      draw: await drawFromImage(body.images[0] as Uint8Array),
      cdn,
    };
    identifications.set(record.accessToken, record);
    return jsonResponse(render(record, { ...renderOptions(url), asyncCreated: url.searchParams.get("async") === "true" }));
  }

  return defineEmulator<CommonFailure>({
    name: "plant-id",
    failures: COMMON_FAILURES,
    route,
    faults: {
      rateLimited: () => textError(429, CREDITS_MESSAGE),
      serverError: () => textError(500, "Internal server error"),
      malformedSample: {
        access_token: "emulatorSample1",
        model_version: PLANT_ID_MODEL_VERSION,
        result: { is_plant: { probability: 0.99, binary: true, threshold: 0.5 } },
      },
    },
    resetState() {
      creditsUsed = 0;
      identifications = new Map();
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Auth and request parsing

function textError(status: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(message, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
}

/** `Api-Key: <key>`, or HTTP Basic with user `client` and the key as password. */
function checkAuth(req: Request, apiKeys: Set<string>): Response | null {
  let key = req.headers.get("api-key");
  const authorization = req.headers.get("authorization");
  if (key === null && authorization !== null) {
    const basic = /^Basic\s+(.+)$/i.exec(authorization.trim());
    const decoded = basic ? decodeBase64(basic[1] as string) : null;
    const credentials = decoded ? new TextDecoder().decode(decoded) : "";
    if (!credentials.startsWith("client:")) return textError(401, "Invalid authorization header.");
    key = credentials.slice("client:".length);
  }
  if (key === null || key === "") return textError(401, "No api key provided.");
  if (!apiKeys.has(key)) return textError(401, "The specified api key not found.");
  return null;
}

interface IdentificationBody {
  images: Uint8Array[];
  latitude: number | null;
  longitude: number | null;
  similarImages: boolean;
  datetime: string | null;
  customId: number | null;
  health: HealthOption | null;
  classificationLevel: ClassificationLevel | null;
  classificationRaw: boolean;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

async function parseIdentificationBody(req: Request): Promise<Parsed<IdentificationBody>> {
  const json = await readJsonBody(req);
  if (!json.ok || !isRecord(json.value)) return { ok: false, error: "Invalid json data" };
  const raw = json.value;

  if (raw.images === undefined || raw.images === null || (Array.isArray(raw.images) && raw.images.length === 0)) {
    return { ok: false, error: "Missing image data" };
  }
  if (!Array.isArray(raw.images) || !raw.images.every((image) => typeof image === "string")) {
    return { ok: false, error: "Images have to be list of base64 strings" };
  }
  if (raw.images.length > PLANT_ID_MAX_IMAGES) {
    return { ok: false, error: `Too many images. Maximum is ${PLANT_ID_MAX_IMAGES}.` };
  }
  // Raw base64 only, as in the official examples; data: URIs and URLs are unconfirmed upstream.
  const images: Uint8Array[] = [];
  for (const image of raw.images as string[]) {
    const bytes = decodeBase64(image);
    if (!bytes) return { ok: false, error: "Invalid base64 image data" };
    images.push(bytes);
  }

  for (const field of ["latitude", "longitude"] as const) {
    const value = raw[field];
    if (value !== undefined && value !== null && (typeof value !== "number" || !Number.isFinite(value))) {
      return { ok: false, error: `Invalid ${field}` };
    }
  }
  if (raw.similar_images !== undefined && typeof raw.similar_images !== "boolean") {
    return { ok: false, error: "similar_images has to be boolean" };
  }
  if (raw.health !== undefined && raw.health !== "all" && raw.health !== "only") {
    return { ok: false, error: 'health has to be one of "all", "only"' };
  }
  if (raw.classification_level !== undefined && !["species", "genus", "all"].includes(raw.classification_level as string)) {
    return { ok: false, error: 'classification_level has to be one of "species", "genus", "all"' };
  }
  if (raw.custom_id !== undefined && raw.custom_id !== null) {
    if (!Number.isInteger(raw.custom_id)) return { ok: false, error: "Custom id has to be integer" };
    if ((raw.custom_id as number) > 2 ** 31 - 1) return { ok: false, error: "Custom id is too large" };
  }

  return {
    ok: true,
    value: {
      images,
      latitude: (raw.latitude as number | undefined) ?? null,
      longitude: (raw.longitude as number | undefined) ?? null,
      // The SDK always sends it (default true); we assume the same server default.
      similarImages: (raw.similar_images as boolean | undefined) ?? true,
      datetime: typeof raw.datetime === "string" ? raw.datetime : null,
      customId: (raw.custom_id as number | undefined) ?? null,
      health: (raw.health as HealthOption | undefined) ?? null,
      classificationLevel: (raw.classification_level as ClassificationLevel | undefined) ?? null,
      classificationRaw: raw.classification_raw === true,
    },
  };
}

function renderOptions(url: URL): Omit<RenderOptions, "asyncCreated"> {
  const details = (url.searchParams.get("details") ?? "")
    .split(",")
    .map((key) => key.trim())
    .filter((key) => key !== "");
  // Up to 3 languages may be asked for; details use the first one the emulator has data for.
  const requested = (url.searchParams.get("language") ?? "en")
    .split(",")
    .map((code) => code.trim().toLowerCase())
    .slice(0, 3);
  const language = (requested.find((code) => (LANGUAGES as readonly string[]).includes(code)) ?? "en") as Language;
  return { details, language, fullDiseaseList: url.searchParams.get("full_disease_list") === "true" };
}

// ---------------------------------------------------------------------------------------------
// Rendering

function render(record: IdentificationRecord, options: RenderOptions): Record<string, unknown> {
  const input: Record<string, unknown> = {
    latitude: record.latitude,
    longitude: record.longitude,
    similar_images: record.similarImages,
    images: record.imageUrls,
    datetime: record.datetime,
  };
  if (record.health) input.health = record.health;
  if (record.classificationLevel) input.classification_level = record.classificationLevel;

  const envelope: Record<string, unknown> = {
    access_token: record.accessToken,
    model_version: PLANT_ID_MODEL_VERSION,
    custom_id: record.customId,
    input,
  };
  if (!options.asyncCreated) envelope.result = renderResult(record, options);
  return {
    ...envelope,
    status: options.asyncCreated ? "CREATED" : "COMPLETED",
    sla_compliant_client: true,
    sla_compliant_system: true,
    created: record.created,
    completed: options.asyncCreated ? null : record.completed,
  };
}

function renderResult(record: IdentificationRecord, options: RenderOptions): Record<string, unknown> {
  const { draw } = record;
  const isPlantProbability = draw.isPlant ? 0.9 + 0.0999 * unit(draw.hash, 12) : 0.01 + 0.2 * unit(draw.hash, 12);
  const result: Record<string, unknown> = {
    is_plant: probabilityFlag(isPlantProbability, IS_PLANT_THRESHOLD),
  };
  if (record.health !== "only") result.classification = renderClassification(record, options);
  if (record.health) {
    result.is_healthy = probabilityFlag(0.05 + 0.9 * unit(draw.hash, 17), IS_HEALTHY_THRESHOLD);
    result.disease = renderDiseases(record, options);
  }
  return result;
}

function probabilityFlag(probability: number, threshold: number) {
  const rounded = Math.round(probability * 1000) / 1000;
  return { probability: rounded, binary: rounded >= threshold, threshold };
}

/** Top species in 0.55–0.97 for plants; everything low for the non-plant marker. */
function speciesProbabilities(draw: ImageDraw): number[] {
  return draw.isPlant ? descendingScores(draw.hash, 8, 3, 0.55, 0.97) : descendingScores(draw.hash, 8, 3, 0.02, 0.12);
}

function renderClassification(record: IdentificationRecord, options: RenderOptions): Record<string, unknown> {
  const probabilities = speciesProbabilities(record.draw);
  const species = record.draw.ranking
    .slice(0, probabilities.length)
    .map((s, i) => speciesSuggestion(s, probabilities[i] as number, record, options));
  const genera = genusSuggestions(record.draw.ranking.slice(0, probabilities.length), probabilities, record, options);
  if (record.classificationRaw) {
    return record.classificationLevel === "all" ? { genus: genera, species, infraspecies: [] } : { genus: genera, species };
  }
  return { suggestions: record.classificationLevel === "genus" ? genera : species };
}

const PLANT_DETAIL_KEYS = new Set([
  "common_names",
  "url",
  "description",
  "taxonomy",
  "name_authority",
  "rank",
  "gbif_id",
  "inaturalist_id",
  "image",
  "images",
  "synonyms",
  "edible_parts",
  "propagation_methods",
  "watering",
  "best_watering",
  "best_light_condition",
  "best_soil_type",
  "common_uses",
  "toxicity",
  "cultural_significance",
]);
const DISEASE_DETAIL_KEYS = new Set(["local_name", "description", "url", "treatment", "classification", "common_names", "cause"]);

/**
 * Only the requested keys, plus `language` and `entity_id`. A requested key this kind of
 * suggestion knows but has no data for is null; so is a key neither kind knows. Keys that
 * belong only to the other kind (one `details` list serves plants and diseases) are left out.
 */
function selectDetails(
  requested: string[],
  ownKeys: Set<string>,
  otherKeys: Set<string>,
  values: Record<string, unknown>,
  entityId: string,
  language: Language,
): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  for (const key of requested) {
    if (!ownKeys.has(key) && otherKeys.has(key)) continue;
    details[key] = values[key] ?? null;
  }
  details.language = language;
  details.entity_id = entityId;
  return details;
}

function speciesSuggestion(species: Species, probability: number, record: IdentificationRecord, options: RenderOptions) {
  const suggestion: Record<string, unknown> = { id: species.entityId, name: species.scientificName, probability };
  if (record.similarImages) suggestion.similar_images = similarImages(record.cdn, species.entityId, probability);
  suggestion.details = selectDetails(
    options.details,
    PLANT_DETAIL_KEYS,
    DISEASE_DETAIL_KEYS,
    plantDetailValues(species, options.language, record.cdn),
    species.entityId,
    options.language,
  );
  return suggestion;
}

function genusSuggestions(ranked: Species[], probabilities: number[], record: IdentificationRecord, options: RenderOptions) {
  const byGenus = new Map<string, { species: Species; probability: number }>();
  ranked.forEach((species, i) => {
    const entry = byGenus.get(species.genus);
    const probability = probabilities[i] as number;
    if (entry) entry.probability += probability;
    else byGenus.set(species.genus, { species, probability });
  });
  return [...byGenus.values()]
    .sort((a, b) => b.probability - a.probability)
    .map(({ species, probability }) => {
      const entityId = fnv1a64Hex(`genus:${species.genus}`);
      const rounded = Math.round(probability * 10000) / 10000;
      const suggestion: Record<string, unknown> = { id: entityId, name: species.genus, probability: rounded };
      if (record.similarImages) suggestion.similar_images = similarImages(record.cdn, entityId, rounded);
      const { genus: _genus, ...taxonomyAboveGenus } = species.taxonomy;
      suggestion.details = selectDetails(
        options.details,
        PLANT_DETAIL_KEYS,
        DISEASE_DETAIL_KEYS,
        { taxonomy: taxonomyAboveGenus, rank: "genus", url: wikipediaUrl(species.genus, options.language) },
        entityId,
        options.language,
      );
      return suggestion;
    });
}

function similarImages(cdn: string, entityId: string, probability: number) {
  return [0, 1].map((index) => {
    const id = fnv1a64Hex(`similar:${entityId}:${index}`) + fnv1a64Hex(`similar:${index}:${entityId}`);
    const base = `${cdn}/similar_images/${entityId}/${id}`;
    return {
      id,
      url: `${base}.jpg`,
      url_small: `${base}.small.jpg`,
      similarity: Math.round((0.35 + 0.6 * probability - 0.08 * index) * 1000) / 1000,
      license_name: "CC BY 4.0",
      license_url: "https://creativecommons.org/licenses/by/4.0/",
      citation: "Emulator Contributor",
    };
  });
}

function wikipediaUrl(title: string, language: Language): string {
  return `https://${language}.wikipedia.org/wiki/${title.replace(/ /g, "_")}`;
}

function plantDetailValues(species: Species, language: Language, cdn: string): Record<string, unknown> {
  const url = wikipediaUrl(species.scientificName, language);
  const licensed = (value: string) => ({
    value,
    citation: url,
    license_name: "CC BY-SA 3.0",
    license_url: "https://creativecommons.org/licenses/by-sa/3.0/",
  });
  const imageUrl = `${cdn}/entity_images/${species.entityId}.jpg`;
  const { growth } = species;
  return {
    common_names: species.commonNames[language],
    url,
    // Descriptions exist in English only; other languages get the English text.
    description: licensed(species.description),
    taxonomy: species.taxonomy,
    name_authority: species.scientificNameWithAuthor,
    rank: species.rank,
    gbif_id: species.gbifId,
    inaturalist_id: species.inaturalistId,
    image: { value: imageUrl, citation: url, license_name: "CC BY-SA 4.0", license_url: "https://creativecommons.org/licenses/by-sa/4.0/" },
    images: [
      { value: imageUrl, citation: url, license_name: "CC BY-SA 4.0", license_url: "https://creativecommons.org/licenses/by-sa/4.0/" },
    ],
    synonyms: species.synonyms,
    edible_parts: species.edibleParts,
    propagation_methods: species.propagationMethods,
    watering: species.watering,
    best_watering: wateringAdvice(species),
    best_light_condition:
      growth.light >= 8
        ? "Full sun for most of the day."
        : growth.light >= 5
          ? "Bright light, out of harsh midday sun."
          : "Tolerates shade and low indoor light.",
    best_soil_type: `Well-drained soil with a pH between ${growth.phMinimum} and ${growth.phMaximum}.`,
    common_uses: species.commonUses,
    toxicity: TOXICITY_TEXT[species.toxicity],
    cultural_significance: null,
  };
}

function wateringAdvice(species: Species): string {
  switch (species.watering.max) {
    case 1:
      return "Water sparingly and let the soil dry out completely between waterings.";
    case 2:
      return "Water when the top few centimetres of soil are dry.";
    case 3:
      return "Keep the soil evenly moist but never waterlogged.";
  }
}

const TOXICITY_TEXT: Record<Species["toxicity"], string> = {
  none: "Not known to be toxic to people or pets.",
  low: "Mildly toxic if eaten; may irritate the mouth and stomach of people and pets.",
  medium: "Toxic to people and pets if eaten; causes pain and swelling of the mouth and vomiting.",
  high: "Highly toxic if eaten; keep away from children and pets.",
};

function renderDiseases(record: IdentificationRecord, options: RenderOptions): Record<string, unknown> {
  const ranked = rankDiseases(record.draw.hash);
  const count = options.fullDiseaseList ? ranked.length : DEFAULT_DISEASE_SUGGESTIONS;
  const probabilities = descendingScores(record.draw.hash, 20, count, 0.3, 0.9);
  const suggestions = ranked.slice(0, count).map((disease, i) => diseaseSuggestion(disease, probabilities[i] as number, record, options));
  const [first, second] = ranked;
  if (!first || !second) return { suggestions };
  const yes = options.language === "fr" ? "Oui" : "Yes";
  const no = options.language === "fr" ? "Non" : "No";
  return {
    suggestions,
    question: {
      text: first.question,
      translation: first.question,
      options: {
        yes: { suggestion_index: 0, entity_id: first.entityId, name: first.name, translation: yes },
        no: { suggestion_index: 1, entity_id: second.entityId, name: second.name, translation: no },
      },
    },
  };
}

function diseaseSuggestion(disease: Disease, probability: number, record: IdentificationRecord, options: RenderOptions) {
  const suggestion: Record<string, unknown> = { id: disease.entityId, name: disease.name, probability };
  if (record.similarImages) suggestion.similar_images = similarImages(record.cdn, disease.entityId, probability);
  suggestion.details = selectDetails(
    options.details,
    DISEASE_DETAIL_KEYS,
    PLANT_DETAIL_KEYS,
    {
      local_name: disease.localName,
      description: disease.description,
      url: disease.url,
      treatment: disease.treatment,
      classification: disease.classification,
      common_names: disease.commonNames,
      cause: disease.cause,
    },
    disease.entityId,
    options.language,
  );
  return suggestion;
}

function usageInfo(creditLimit: number | null, used: number) {
  return {
    active: true,
    credit_limits: { day: null, week: null, month: creditLimit, total: null },
    used: { day: used, week: used, month: used, total: used },
    can_use_credits:
      creditLimit === null || used < creditLimit ? { value: true, reason: null } : { value: false, reason: "Credit limit reached" },
    remaining: { day: null, week: null, month: creditLimit === null ? null : Math.max(0, creditLimit - used), total: null },
  };
}
