/**
 * One provider call with everything around it: the KV cache keyed by image bytes and
 * parameters (API.md §2.3), single flight through the SingleFlight Durable Object, the shared
 * circuit breaker, and exact hit/miss counters.
 */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { sha256Hex } from "../lib/hash";
import type { ImageMime } from "../lib/images";
import { identifyWithPlantId, PLANT_ID_API_VERSION } from "../providers/plant-id";
import { identifyWithPlantNet, PLANTNET_API_VERSION, type PlantNetOrgan } from "../providers/plantnet";
import { ProviderError, type ProviderAnswer, type ProviderName } from "../providers/types";
import type { CircuitPolicy } from "../../durable-objects/provider-circuit";

/** API.md §2.3: Plant.id opens after 3 failures for 60 s, Pl@ntNet after 5 for 30 s; 2 successes close. */
export const CIRCUIT_POLICIES: Record<ProviderName, CircuitPolicy> = {
  plant_id: { failureThreshold: 3, openMs: 60_000, successesToClose: 2 },
  plantnet: { failureThreshold: 5, openMs: 30_000, successesToClose: 2 },
};

export interface ProviderImage {
  bytes: Uint8Array;
  mime: ImageMime;
  sha256: string;
}

interface JobBase {
  cacheKey: string;
  ttlS: number;
  images: { bytes: Uint8Array; mime: ImageMime }[];
  /** Taken from the caller's configuration, so the call behaves the same wherever it runs. */
  settings: { baseUrl: string; apiKey: string; timeoutMs: number };
}

export type ProviderJob =
  | (JobBase & { provider: "plant_id"; latitude: number | null; longitude: number | null; language: string })
  | (JobBase & { provider: "plantnet"; project: string; organs: PlantNetOrgan[]; language: string; includeRelatedImages: boolean; maxResults: number });

/** Several images hash to one digest over their digests, in order. */
async function imagesDigest(images: ProviderImage[]): Promise<string> {
  return images.length === 1 ? images[0]!.sha256 : sha256Hex(images.map((i) => i.sha256).join(","));
}

/** Coordinates change Plant.id's answer; two decimals (~1 km) keep nearby photos cacheable. */
const coord = (v: number | null) => (v == null ? "none" : v.toFixed(2));

export async function plantIdJob(
  env: Bindings,
  images: ProviderImage[],
  opts: { latitude: number | null; longitude: number | null; language: string },
): Promise<ProviderJob> {
  const digest = await imagesDigest(images);
  const config = getConfig(env);
  return {
    provider: "plant_id",
    settings: { baseUrl: config.PLANT_ID_API_URL, apiKey: config.PLANT_ID_API_KEY, timeoutMs: config.PLANT_ID_TIMEOUT_MS },
    cacheKey: `plant_id:${PLANT_ID_API_VERSION}:${digest}:health=all:lang=${opts.language}:loc=${coord(opts.latitude)},${coord(opts.longitude)}`,
    ttlS: config.PLANT_ID_CACHE_TTL_S,
    images: images.map(({ bytes, mime }) => ({ bytes, mime })),
    ...opts,
  };
}

export async function plantNetJob(
  env: Bindings,
  images: ProviderImage[],
  opts: { project: string; organs: PlantNetOrgan[]; language: string; includeRelatedImages: boolean; maxResults: number },
): Promise<ProviderJob> {
  const digest = await imagesDigest(images);
  const config = getConfig(env);
  return {
    provider: "plantnet",
    settings: { baseUrl: config.PLANTNET_API_URL, apiKey: config.PLANTNET_API_KEY, timeoutMs: config.PLANTNET_TIMEOUT_MS },
    cacheKey:
      `plantnet:${PLANTNET_API_VERSION}:${opts.project}:${digest}:${opts.organs.join(",")}:` +
      `related=${opts.includeRelatedImages}:lang=${opts.language}:n=${opts.maxResults}`,
    ttlS: config.PLANTNET_CACHE_TTL_S,
    images: images.map(({ bytes, mime }) => ({ bytes, mime })),
    ...opts,
  };
}

export function circuitFor(env: Bindings, provider: ProviderName) {
  return env.PROVIDER_CIRCUIT.get(env.PROVIDER_CIRCUIT.idFromName(provider));
}

/**
 * The upstream call itself, behind the circuit breaker. Runs inside SingleFlight, so it happens
 * once per cache key however many callers wait.
 */
export async function callProviderUpstream(env: Bindings, job: ProviderJob): Promise<ProviderAnswer> {
  const policy = CIRCUIT_POLICIES[job.provider];
  const circuit = circuitFor(env, job.provider);
  const gate = await circuit.acquire(policy);
  if (!gate.allowed) throw new ProviderError(job.provider, "circuit_open", `${job.provider} is temporarily unavailable (circuit ${gate.state})`);
  try {
    const answer =
      job.provider === "plant_id"
        ? await identifyWithPlantId(
            job.settings,
            { images: job.images.map((i) => i.bytes), latitude: job.latitude, longitude: job.longitude, language: job.language },
          )
        : await identifyWithPlantNet(
            job.settings,
            {
              images: job.images,
              organs: job.organs,
              project: job.project,
              language: job.language,
              includeRelatedImages: job.includeRelatedImages,
              maxResults: job.maxResults,
            },
          );
    await circuit.recordSuccess(policy);
    return answer;
  } catch (err) {
    // A request we got wrong (4xx other than 429) says nothing about the provider's health.
    if (!(err instanceof ProviderError && err.kind === "bad_request")) await circuit.recordFailure(policy);
    throw err;
  }
}

export interface CachedCallResult {
  provider: ProviderName;
  answer: ProviderAnswer | null;
  error: ProviderError | null;
  /** Served without an upstream call made for this request. */
  cached: boolean;
}

/**
 * KV first (the fast path: a hit costs one KV read), then single flight. Counters are updated
 * after the response via waitUntil so they cost the caller nothing.
 */
export async function cachedProviderCall(env: Bindings, waitUntil: (p: Promise<unknown>) => void, job: ProviderJob): Promise<CachedCallResult> {
  const circuit = circuitFor(env, job.provider);
  const hit = await env.CACHE.get<ProviderAnswer>(job.cacheKey, "json");
  if (hit) {
    waitUntil(circuit.countCache(true));
    return { provider: job.provider, answer: hit, error: null, cached: true };
  }
  const flight = env.SINGLE_FLIGHT.get(env.SINGLE_FLIGHT.idFromName(job.cacheKey));
  const result = await flight.run(job);
  waitUntil(circuit.countCache(!result.upstream));
  if (result.ok) return { provider: job.provider, answer: result.answer, error: null, cached: !result.upstream };
  const e = result.error;
  return {
    provider: job.provider,
    answer: null,
    error: new ProviderError(e.provider, e.kind, e.message, e.status, e.retryAfterS),
    cached: false,
  };
}
