// Pl@ntNet identify API v2 emulator, as seen under the base URL https://my-api.plantnet.org.
// Shapes and statuses follow the Pl@ntNet v2 API.
//
// Errors use the Hapi/Boom JSON shape `{statusCode, error, message}`. Only the 404 message
// "Species not found" is confirmed upstream; the other messages, 413/415 as the codes for
// oversize and non-jpeg/png parts, and the `/v2/projects` item fields are assumptions.

import {
  COMMON_FAILURES,
  DEFAULT_API_KEY,
  defineEmulator,
  descendingScores,
  drawFromImage,
  jsonResponse,
  sha256Hex,
  unit,
  type CommonFailure,
  type Emulator,
  type ImageDraw,
} from "./common";
import { fnv1a64Hex, type Species } from "./species";

export interface PlantNetEmulatorOptions {
  apiKeys?: string[];
  /** Identify requests per day (free tier: 500). */
  dailyQuota?: number;
  /**
   * Where related-image URLs point. Default PLANTNET_IMAGE_HOST, a host that never resolves;
   * the local server sets its own /media/plantnet so a browser shows real pictures.
   */
  mediaBaseUrl?: string;
}

export type PlantNetEmulator = Emulator<CommonFailure> & {
  /** Identify requests left today, as reported in `remainingIdentificationRequests`. */
  readonly remainingIdentificationRequests: number;
};

export const PLANTNET_IMAGE_HOST = "https://plantnet.emulator.invalid";
export const PLANTNET_VERSION = "2026-03-20 (7.5)";
export const PLANTNET_MAX_IMAGES = 5;
export const PLANTNET_MAX_TOTAL_BYTES = 50 * 1024 * 1024;
export const PLANTNET_ORGANS = ["auto", "leaf", "flower", "fruit", "bark", "habit", "other"] as const;

const DEFAULT_DAILY_QUOTA = 500;
const DEFAULT_RESULT_COUNT = 5;
const ACCEPTED_IMAGE_TYPES = new Set(["image/jpeg", "image/png"]);
/** Pl@ntNet ships common names in many languages; the emulator has en and fr data. */
const SUPPORTED_LANGUAGES = ["en", "fr", "de", "es", "it", "pt", "nl", "cs"];

interface Project {
  id: string;
  name: string;
  description: string;
  nbSpecies: number;
  nbImages: number;
  /** Reported as `preferedReferential` (sic) in identify responses. */
  referential: string;
}

export const PLANTNET_PROJECTS: readonly Project[] = [
  { id: "all", name: "All", description: "All floras combined", nbSpecies: 78_412, nbImages: 14_873_204, referential: "k-world-flora" },
  {
    id: "k-world-flora",
    name: "World flora",
    description: "Plants of the world",
    nbSpecies: 77_905,
    nbImages: 14_512_077,
    referential: "k-world-flora",
  },
  {
    id: "weurope",
    name: "Western Europe",
    description: "Flora of Western Europe",
    nbSpecies: 7_904,
    nbImages: 6_210_335,
    referential: "weurope",
  },
  {
    id: "k-middle-europe",
    name: "Middle Europe",
    description: "Flora of Middle Europe",
    nbSpecies: 6_120,
    nbImages: 5_402_118,
    referential: "k-middle-europe",
  },
  { id: "canada", name: "Canada", description: "Flora of Canada", nbSpecies: 4_877, nbImages: 1_120_456, referential: "canada" },
  {
    id: "useful",
    name: "Useful plants",
    description: "Cultivated and useful plants of the world",
    nbSpecies: 5_931,
    nbImages: 2_348_902,
    referential: "useful",
  },
];

const PREDICTABLE_ORGANS = ["leaf", "flower", "fruit", "bark"] as const;

export function createPlantNetEmulator(options: PlantNetEmulatorOptions = {}): PlantNetEmulator {
  const apiKeys = new Set(options.apiKeys ?? [DEFAULT_API_KEY]);
  const dailyQuota = options.dailyQuota ?? DEFAULT_DAILY_QUOTA;
  const imageHost = (options.mediaBaseUrl ?? PLANTNET_IMAGE_HOST).replace(/\/+$/, "");
  let remaining = dailyQuota;

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.replace(/\/+$/, "");
    const identifyMatch = /^\/v2\/identify\/([^/]+)$/.exec(path);
    if (path !== "/v2/projects" && !identifyMatch) return boom(404, "Not Found");

    const apiKey = url.searchParams.get("api-key");
    if (!apiKey) return boom(401, "Unauthorized", "Missing API key");
    if (!apiKeys.has(apiKey)) return boom(401, "Unauthorized", "Invalid API key");

    if (path === "/v2/projects") {
      if (req.method !== "GET") return boom(405, "Method Not Allowed");
      // Listing projects does not count against the identify quota.
      return jsonResponse(PLANTNET_PROJECTS.map(({ referential: _referential, ...project }) => project));
    }
    if (req.method !== "POST") return boom(405, "Method Not Allowed");
    const project = PLANTNET_PROJECTS.find((p) => p.id === decodeURIComponent(identifyMatch?.[1] ?? ""));
    if (!project) return boom(404, "Not Found", "Project not found");

    if (remaining <= 0) {
      // Retry-After (not documented upstream) repeats the RateLimit `t`: seconds until 00:00 UTC.
      const headers = { ...quotaHeaders(dailyQuota, 0, apiKey), "retry-after": String(secondsUntilQuotaReset()) };
      return boom(429, "Too Many Requests", "Too many requests: daily identification quota exceeded", headers);
    }

    const declaredLength = Number(req.headers.get("content-length") ?? "0");
    if (declaredLength > PLANTNET_MAX_TOTAL_BYTES)
      return boom(413, "Request Entity Too Large", "Payload content length greater than maximum allowed: 52428800");

    const query = parseQuery(url);
    if (!query.ok) return boom(400, "Bad Request", query.error);

    const form = await parseMultipart(req);
    if (!form.ok)
      return boom(
        form.status,
        form.status === 413 ? "Request Entity Too Large" : form.status === 415 ? "Unsupported Media Type" : "Bad Request",
        form.error,
      );

    // Quota counts every accepted identify call, including those answered "Species not found".
    remaining -= 1;
    const headers = quotaHeaders(dailyQuota, remaining, apiKey);
    const draw = await drawFromImage(form.images[0]?.bytes as Uint8Array);
    if (!draw.isPlant && !query.noReject) return boom(404, "Not Found", "Species not found", headers);

    const imageHashes = await Promise.all(form.images.map(async (image) => (await sha256Hex(image.bytes)).slice(0, 32)));
    const ranked = rankForPlantNet(draw);
    const scores = draw.isPlant
      ? descendingScores(draw.hash, 24, ranked.length, 0.35, 0.9)
      : descendingScores(draw.hash, 24, ranked.length, 0.005, 0.05);
    const results = ranked.slice(0, query.nbResults).map((species, i) => result(species, scores[i] as number, query, draw, imageHost));
    const top = ranked[0] as Species;

    return jsonResponse(
      {
        query: {
          project: project.id,
          images: imageHashes,
          organs: form.organs,
          includeRelatedImages: query.includeRelatedImages,
          noReject: query.noReject,
          type: query.type,
        },
        predictedOrgans: form.images.map((image, i) => ({
          image: imageHashes[i],
          filename: image.filename,
          organ: form.organs[i] === "auto" ? PREDICTABLE_ORGANS[(draw.hash[28 + i] ?? 0) % PREDICTABLE_ORGANS.length] : form.organs[i],
          score: Math.round((0.55 + 0.44 * unit(draw.hash, 29 + i)) * 10000) / 10000,
        })),
        language: query.lang,
        preferedReferential: project.referential,
        bestMatch: top.scientificNameWithAuthor,
        results,
        version: PLANTNET_VERSION,
        remainingIdentificationRequests: remaining,
      },
      200,
      headers,
    );
  }

  const emulator = defineEmulator<CommonFailure>({
    name: "plantnet",
    failures: COMMON_FAILURES,
    route,
    faults: {
      rateLimited: (retryAfterSeconds) =>
        boom(429, "Too Many Requests", "Too many requests", {
          ...quotaHeaders(dailyQuota, 0, DEFAULT_API_KEY),
          "retry-after": String(Math.ceil(retryAfterSeconds)),
        }),
      serverError: () => boom(500, "Internal Server Error", "An internal server error occurred"),
      malformedSample: {
        query: { project: "all", images: [], organs: ["leaf"] },
        language: "en",
        preferedReferential: "k-world-flora",
        results: [],
      },
    },
    resetState() {
      remaining = dailyQuota;
    },
  });
  return Object.defineProperty(emulator, "remainingIdentificationRequests", { get: () => remaining, enumerable: true }) as PlantNetEmulator;
}

// ---------------------------------------------------------------------------------------------

function boom(statusCode: number, error: string, message = error, headers: Record<string, string> = {}): Response {
  return jsonResponse({ statusCode, error, message }, statusCode, headers);
}

/**
 * IETF ratelimit-headers (draft 08) as documented by Pl@ntNet: the daily identify quota, the
 * requests left and the seconds until the reset at 00:00 UTC. `pk` partitions by api key.
 */
function quotaHeaders(quota: number, remaining: number, apiKey: string): Record<string, string> {
  const partition = `:${btoa(fnv1a64Hex(`plantnet-key:${apiKey}`))}:`;
  return {
    "ratelimit-policy": `"dailyQuota";q=${quota};w=86400;pk=${partition}`,
    ratelimit: `"dailyQuota";r=${Math.max(0, remaining)};t=${secondsUntilQuotaReset()};pk=${partition}`,
  };
}

/** The identify quota resets at 00:00 UTC. */
function secondsUntilQuotaReset(): number {
  const now = new Date();
  const nextMidnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((nextMidnight - now.getTime()) / 1000));
}

interface IdentifyQuery {
  includeRelatedImages: boolean;
  noReject: boolean;
  nbResults: number;
  lang: string;
  type: string | null;
}

function parseQuery(url: URL): ({ ok: true } & IdentifyQuery) | { ok: false; error: string } {
  const params = url.searchParams;
  const flags: Record<string, boolean> = {};
  for (const name of ["include-related-images", "no-reject"]) {
    const value = params.get(name);
    if (value !== null && value !== "true" && value !== "false") return { ok: false, error: `"${name}" must be a boolean` };
    flags[name] = value === "true";
  }
  let nbResults = DEFAULT_RESULT_COUNT;
  const rawNbResults = params.get("nb-results");
  if (rawNbResults !== null) {
    nbResults = Number(rawNbResults);
    if (!Number.isInteger(nbResults) || nbResults < 1)
      return { ok: false, error: '"nb-results" must be an integer greater than or equal to 1' };
  }
  const lang = params.get("lang") ?? "en";
  if (!SUPPORTED_LANGUAGES.includes(lang)) return { ok: false, error: `"lang" must be one of [${SUPPORTED_LANGUAGES.join(", ")}]` };
  return {
    ok: true,
    includeRelatedImages: flags["include-related-images"] === true,
    noReject: flags["no-reject"] === true,
    nbResults,
    lang,
    type: params.get("type"),
  };
}

interface UploadedImage {
  bytes: Uint8Array;
  filename: string;
}

type ParsedForm = { ok: true; images: UploadedImage[]; organs: string[] } | { ok: false; status: 400 | 413 | 415; error: string };

async function parseMultipart(req: Request): Promise<ParsedForm> {
  if (!(req.headers.get("content-type") ?? "").toLowerCase().startsWith("multipart/form-data")) {
    return { ok: false, status: 400, error: "Request body must be multipart/form-data" };
  }
  let form: FormData;
  try {
    form = await req.formData();
  } catch {
    return { ok: false, status: 400, error: "Invalid multipart payload" };
  }
  const parts = form.getAll("images");
  const organs = form.getAll("organs").map(String);
  if (parts.length === 0) return { ok: false, status: 400, error: '"images" is required' };
  if (parts.length > PLANTNET_MAX_IMAGES)
    return { ok: false, status: 400, error: `"images" must contain at most ${PLANTNET_MAX_IMAGES} items` };
  if (organs.length !== parts.length) return { ok: false, status: 400, error: '"organs" and "images" must have the same number of items' };
  const badOrgan = organs.find((organ) => !(PLANTNET_ORGANS as readonly string[]).includes(organ));
  if (badOrgan !== undefined) return { ok: false, status: 400, error: `"organs" must be one of [${PLANTNET_ORGANS.join(", ")}]` };

  const images: UploadedImage[] = [];
  let totalBytes = 0;
  for (const part of parts) {
    if (typeof part === "string") return { ok: false, status: 400, error: '"images" must be files' };
    const type = part.type.split(";")[0]?.trim().toLowerCase() ?? "";
    if (!ACCEPTED_IMAGE_TYPES.has(type))
      return { ok: false, status: 415, error: `Unsupported image type: ${type || "unknown"}. Allowed: image/jpeg, image/png` };
    const bytes = new Uint8Array(await part.arrayBuffer());
    totalBytes += bytes.byteLength;
    images.push({ bytes, filename: part.name });
  }
  if (totalBytes > PLANTNET_MAX_TOTAL_BYTES)
    return { ok: false, status: 413, error: "Payload content length greater than maximum allowed: 52428800" };
  return { ok: true, images, organs };
}

/** Same top species as Plant.id; ranks 2 and 3 swap on some images, as independent models do. */
function rankForPlantNet(draw: ImageDraw): Species[] {
  const [first, second, third, ...rest] = draw.ranking as [Species, Species, Species, ...Species[]];
  return (draw.hash[27] ?? 0) % 2 === 0 ? [first, second, third, ...rest] : [first, third, second, ...rest];
}

function result(species: Species, score: number, query: IdentifyQuery, draw: ImageDraw, imageHost: string): Record<string, unknown> {
  const taxon = (name: string) => ({ scientificNameWithoutAuthor: name, scientificNameAuthorship: "", scientificName: name });
  const entry: Record<string, unknown> = {
    score,
    species: {
      scientificNameWithoutAuthor: species.scientificName,
      scientificNameAuthorship: species.authorship,
      genus: taxon(species.genus),
      family: taxon(species.family),
      commonNames: query.lang === "en" || query.lang === "fr" ? species.commonNames[query.lang] : [],
      scientificName: species.scientificNameWithAuthor,
    },
    // Real payloads carry the GBIF id as a string.
    gbif: { id: String(species.gbifId) },
    powo: { id: species.powoId },
  };
  if (species.iucn) entry.iucn = species.iucn;
  if (query.includeRelatedImages) entry.images = relatedImages(species, draw, imageHost);
  return entry;
}

function relatedImages(species: Species, draw: ImageDraw, imageHost: string) {
  return [0, 1, 2].map((index) => {
    const id = fnv1a64Hex(`plantnet:${species.scientificName}:${index}`);
    const organ = PREDICTABLE_ORGANS[(index + (draw.hash[30] ?? 0)) % PREDICTABLE_ORGANS.length];
    const timestamp = Date.UTC(2020 + index, 6, 16);
    return {
      organ,
      author: "Emulator Contributor",
      license: "cc-by-sa",
      date: { timestamp, string: formatDate(new Date(timestamp)) },
      citation: "Emulator Contributor / Pl@ntNet, cc-by-sa",
      url: {
        o: `${imageHost}/image/o/${id}`,
        m: `${imageHost}/image/m/${id}`,
        s: `${imageHost}/image/s/${id}`,
      },
    };
  });
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** "July 16, 2020", the format seen in related-image dates. */
function formatDate(date: Date): string {
  return `${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()}, ${date.getUTCFullYear()}`;
}
