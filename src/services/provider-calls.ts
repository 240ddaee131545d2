/**
 * One provider call with everything around it: the KV cache keyed by image bytes and
 * parameters (API.md §2.3), single flight through the SingleFlight Durable Object, the shared
 * circuit breaker, and exact hit/miss counters (hits: services/cache-hits.ts; misses: the breaker).
 */
import { getConfig } from "../config";
import { loggerFor } from "./logging";
import type { Bindings } from "../env";
import { withinDeadline } from "../lib/deadline";
import { sha256Hex } from "../lib/hash";
import type { ImageMime } from "../lib/images";
import type { Logger } from "../lib/logger";
import type { StageRecorder } from "../lib/server-timing";
import { recordProviderMetric } from "../lib/metrics";
import { countHit, readHits, resetHits } from "./cache-hits";
import { assessHealthWithPlantId, identifyWithPlantId, PLANT_ID_API_VERSION, PLANT_ID_HEALTH_DETAILS } from "../providers/plant-id";
import { identifyWithPlantNet, PLANTNET_API_VERSION, type PlantNetOrgan } from "../providers/plantnet";
import { ProviderError, type ProviderAnswer, type ProviderErrorKind, type ProviderName } from "../providers/types";
import type { CallOutcome, CircuitGate, CircuitPolicy } from "../../durable-objects/provider-circuit";
import type { FlightOutcome, JoinResult } from "../../durable-objects/single-flight";
import { flightShardName } from "../../durable-objects/single-flight-shards";

/** A single-flight join's answer, or a leader that joined no flight (its shard was unreachable). */
type Joined = JoinResult | { role: "leader"; token: null };

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
  /** The provider's URL, key and timeout from the caller's configuration. */
  settings: { baseUrl: string; apiKey: string; timeoutMs: number };
}

export type ProviderJob =
  | (JobBase & {
      provider: "plant_id";
      /** Which Plant.id call: species + health (`/identification`) or health only (`/health_assessment`). */
      endpoint: "identification" | "health_assessment";
      latitude: number | null;
      longitude: number | null;
      language: string;
    })
  | (JobBase & {
      provider: "plantnet";
      project: string;
      organs: PlantNetOrgan[];
      language: string;
      includeRelatedImages: boolean;
      maxResults: number;
    });

/** Several images hash to one digest over their digests, in order. */
async function imagesDigest(images: ProviderImage[]): Promise<string> {
  return images.length === 1 ? images[0]!.sha256 : sha256Hex(images.map((i) => i.sha256).join(","));
}

/**
 * Where a photo was taken, as Plant.id hears it and as its shared cache key names it: one
 * decimal (~11 km), the precision the community feed shows. Finer, and the shared cache becomes
 * an oracle: anyone holding a shared photo could submit it at each point of a fine grid and see
 * from `cached: true` where its owner stood. A regional prior needs no more, and the provider is
 * told no more than the public is.
 */
const coarse = (v: number | null) => (v == null ? null : Math.round(v * 10) / 10);
const coord = (v: number | null) => (v == null ? "none" : v.toFixed(1));

/**
 * A Plant.id call: `identification` (species, with `health: "all"`) or `health_assessment`
 * (disease requests). Each endpoint has its own cache key — the health one names the endpoint
 * and the disease details asked for, so neither ever serves the other's answer — and both share
 * the TTL, single flight and `plant_id` circuit breaker.
 */
export async function plantIdJob(
  env: Bindings,
  images: ProviderImage[],
  opts: { latitude: number | null; longitude: number | null; language: string },
  endpoint: "identification" | "health_assessment" = "identification",
): Promise<ProviderJob> {
  const digest = await imagesDigest(images);
  const config = getConfig(env);
  const latitude = coarse(opts.latitude);
  const longitude = coarse(opts.longitude);
  const where = `lang=${opts.language}:loc=${coord(latitude)},${coord(longitude)}`;
  return {
    provider: "plant_id",
    endpoint,
    settings: { baseUrl: config.PLANT_ID_API_URL, apiKey: config.PLANT_ID_API_KEY, timeoutMs: config.PLANT_ID_TIMEOUT_MS },
    cacheKey:
      endpoint === "identification"
        ? `plant_id:${PLANT_ID_API_VERSION}:${digest}:health=all:${where}`
        : `plant_id:${PLANT_ID_API_VERSION}:health_assessment:${digest}:details=${PLANT_ID_HEALTH_DETAILS.join(",")}:${where}`,
    ttlS: config.PLANT_ID_CACHE_TTL_S,
    images: images.map(({ bytes, mime }) => ({ bytes, mime })),
    ...opts,
    latitude,
    longitude,
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

/** The upstream call itself: the provider's client with this job's parameters. */
function callUpstream(job: ProviderJob): Promise<ProviderAnswer> {
  if (job.provider === "plant_id") {
    const query = { images: job.images.map((i) => i.bytes), latitude: job.latitude, longitude: job.longitude, language: job.language };
    return job.endpoint === "health_assessment" ? assessHealthWithPlantId(job.settings, query) : identifyWithPlantId(job.settings, query);
  }
  return identifyWithPlantNet(job.settings, {
    images: job.images,
    organs: job.organs,
    project: job.project,
    language: job.language,
    includeRelatedImages: job.includeRelatedImages,
    maxResults: job.maxResults,
  });
}

function asProviderError(provider: ProviderName, err: unknown): ProviderError {
  return err instanceof ProviderError ? err : new ProviderError(provider, "server", err instanceof Error ? err.message : String(err));
}

export interface CachedCallResult {
  provider: ProviderName;
  answer: ProviderAnswer | null;
  error: ProviderError | null;
  /** Served without an upstream call made for this request. */
  cached: boolean;
}

/** What a caller may add to a provider call. */
export interface CallOptions {
  logger?: Logger;
  /** Hears each step's time (see `cachedProviderCall`). */
  stages?: StageRecorder;
  /** The caller's continent, when known (see `flightShardName`); queue jobs have none. */
  region?: string | null;
}

/** How long followers wait for a leader before taking over: its timeout plus a margin. */
const LEASE_MARGIN_MS = 5_000;

/**
 * How long a call to the breaker or a single-flight shard may take beyond the time it may
 * rightly wait, before it is given up. Durable Object RPC has no deadline of its own, and an
 * object that hangs must not hold an identification until the runtime's limits end it. The
 * breaker and a leader's join answer at once; a follower's join rightly waits for its leader, up
 * to the leader's lease. A join given up on leads without a flight; a breaker given up on fails
 * the call like an unreachable one.
 */
export const COORDINATION_TIMEOUT_MS = 3_000;
const coordinated = <T>(call: Promise<T>, what: string, mayWaitMs = 0) => withinDeadline(call, mayWaitMs + COORDINATION_TIMEOUT_MS, what);

/**
 * The breaker's `acquire`, within the coordination deadline. An answer that comes after it may
 * still have reserved the half-open probe, which nobody would then use: the probe is abandoned
 * (in the background), so recovery does not wait out the probe's 60-second lease.
 */
async function acquireProbe(
  circuit: ReturnType<typeof circuitFor>,
  policy: CircuitPolicy,
  waitUntil: (promise: Promise<unknown>) => void,
  unkept: (err: unknown) => void,
): Promise<CircuitGate> {
  const holder = crypto.randomUUID();
  try {
    return await coordinated(circuit.acquire(policy, undefined, holder), "circuit breaker");
  } catch (err) {
    waitUntil(circuit.abandon(holder).catch(unkept));
    throw err;
  }
}

/**
 * KV first (the fast path: a hit costs one KV read); on a miss, single flight: the SingleFlight
 * shard of this cache key makes this request the leader (which calls the provider, behind the
 * circuit breaker, and caches the answer) or lets it wait for the leader's outcome. Counters are
 * updated after the response via waitUntil so they cost the caller nothing.
 *
 * `stages` hears each step's time as `<provider>_kv`, `_flight` (joining the single flight and,
 * in the same round trip, asking the breaker), `_circuit` (taking a half-open circuit's probe,
 * only then), `_call` (the upstream call, building its body included) and `_settle` (the
 * breaker's bookkeeping and releasing followers); a cache hit has only `_kv`.
 */
export async function cachedProviderCall(
  env: Bindings,
  waitUntil: (p: Promise<unknown>) => void,
  job: ProviderJob,
  options: CallOptions = {},
): Promise<CachedCallResult> {
  const logger = options.logger ?? loggerFor(env);
  const stages = options.stages ?? (() => {});
  const region = options.region ?? null;
  const started = Date.now();
  const result = await cachedProviderCallInner(env, waitUntil, job, logger, stepTimer(job.provider, stages), region);
  const outcome = result.error ? `error:${result.error.kind}` : result.cached ? "hit" : "miss";
  recordProviderMetric(env.METRICS, { provider: job.provider, outcome, durationMs: Date.now() - started });
  return result;
}

/** Each call reports the time since the previous one (or since it was made) under `<provider>_<step>`. */
function stepTimer(provider: ProviderName, stages: StageRecorder): (step: string) => void {
  let since = Date.now();
  return (step) => {
    const now = Date.now();
    stages(`${provider}_${step}`, now - since);
    since = now;
  };
}

async function cachedProviderCallInner(
  env: Bindings,
  waitUntil: (p: Promise<unknown>) => void,
  job: ProviderJob,
  logger: Logger,
  step: (name: string) => void,
  region: string | null,
): Promise<CachedCallResult> {
  const circuit = circuitFor(env, job.provider);
  const hit = await env.CACHE.get<ProviderAnswer>(job.cacheKey, "json");
  step("kv");
  // The counters and the breaker's bookkeeping are best effort (this request keeps its answer),
  // but a failure of theirs is logged, not dropped.
  const unkept = (what: string) => (err: unknown) =>
    logger.warn("provider bookkeeping failed", { provider: job.provider, what, error: String(err) });
  if (hit) {
    countHit(env, waitUntil, job.provider, unkept("cache count"));
    return { provider: job.provider, answer: hit, error: null, cached: true };
  }
  const flight = env.SINGLE_FLIGHT.get(env.SINGLE_FLIGHT.idFromName(flightShardName(job.cacheKey, region)));
  const policy = CIRCUIT_POLICIES[job.provider];
  // The breaker is asked while the single flight is joined, so a closed (or plainly open)
  // circuit costs no round trip of its own before the call. That question reserves nothing;
  // only when the circuit is half-open does the leader then ask for the probe (`acquire`), as it
  // does when the question failed (acquire then fails or answers as it always did).
  // Single flight is an economy, not a rule: when the shard cannot be reached (one shard serves
  // many keys), this request calls the provider itself rather than failing, and settles nothing.
  const leaseMs = job.settings.timeoutMs + LEASE_MARGIN_MS;
  const [joined, checked] = await Promise.all([
    coordinated<Joined>(flight.join(job.cacheKey, leaseMs), "single flight", leaseMs).catch((err: unknown): Joined => {
      unkept("single flight")(err);
      return { role: "leader", token: null };
    }),
    coordinated(circuit.check(policy), "circuit breaker").catch(() => null),
  ]);
  step("flight");
  if (joined.role === "follower") {
    const outcome = joined.outcome;
    if (outcome.ok) {
      countHit(env, waitUntil, job.provider, unkept("cache count"));
      return { provider: job.provider, answer: outcome.answer, error: null, cached: true };
    }
    const e = outcome.error;
    return {
      provider: job.provider,
      answer: null,
      error: new ProviderError(job.provider, e.kind as ProviderErrorKind, e.message, e.status, e.retryAfterS),
      cached: false,
    };
  }
  const gate = checked ?? (await acquireProbe(circuit, policy, waitUntil, unkept("circuit probe")));
  if (!checked) step("circuit");

  // The leader calls upstream, behind the circuit breaker shared by every isolate.
  let result: CachedCallResult;
  let outcome: FlightOutcome;
  /** What the call says about the provider; null when the circuit refused it (nothing was called). */
  let said: CallOutcome | null = null;
  if (!gate.allowed) {
    // retryAfterS: when the circuit may let a call through (half-open), so a queued job waits that long.
    const retryAfterS = gate.retryAfterMs === undefined ? undefined : Math.ceil(gate.retryAfterMs / 1000);
    const error = new ProviderError(
      job.provider,
      "circuit_open",
      `${job.provider} is temporarily unavailable (circuit ${gate.state})`,
      undefined,
      retryAfterS,
    );
    result = { provider: job.provider, answer: null, error, cached: false };
    outcome = { ok: false, error: { kind: error.kind, message: error.message, retryAfterS } };
    logProviderFailure(logger, job, error, 0);
  } else {
    const calledAt = Date.now();
    try {
      const answer = await callUpstream(job);
      step("call");
      result = { provider: job.provider, answer, error: null, cached: false };
      outcome = { ok: true, answer };
      said = "success";
      waitUntil(env.CACHE.put(job.cacheKey, JSON.stringify(answer), { expirationTtl: job.ttlS }));
    } catch (err) {
      step("call");
      const error = asProviderError(job.provider, err);
      logProviderFailure(logger, job, error, Date.now() - calledAt);
      result = { provider: job.provider, answer: null, error, cached: false };
      outcome = { ok: false, error: { kind: error.kind, message: error.message, status: error.status, retryAfterS: error.retryAfterS } };
      // A request we got wrong (4xx other than 429) says nothing about the provider's health, and
      // a 429 is rate limiting (its Retry-After is honoured by the caller), not an outage: neither
      // counts toward opening the circuit.
      said = error.kind === "rate_limited" ? "rate_limited" : error.kind === "bad_request" ? "neutral" : "failure";
    }
  }
  // The circuit's bookkeeping (with this call's cache miss) and releasing the followers share one
  // round trip. Both are best effort: this request keeps its own answer, and unreleased followers
  // take over when the lease ends. Both calls are made now either way; only a success through a
  // closed circuit does not wait for them, since it changes nothing a later caller could see but
  // the failure streak's reset (followers are released by the same call, not by this answer).
  // A failure, or a half-open probe's success, is recorded before this request answers.
  const bookkeeping = Promise.all([
    said ? coordinated(circuit.recordCall(said, policy), "circuit breaker").catch(unkept("circuit")) : null,
    joined.token === null
      ? null
      : coordinated(flight.settle(job.cacheKey, joined.token, outcome), "single flight").catch(unkept("single flight")),
  ]);
  if (said === "success" && gate.state === "closed") waitUntil(bookkeeping);
  else await bookkeeping;
  step("settle");
  return result;
}

/**
 * What a failure log line calls a provider error, in an operator's words: `timeout`, `429`,
 * `5xx`, `malformed`, `network`, and the rarer `auth`, `4xx` (a request we got wrong),
 * `circuit_open` (refused without a call) and `internal` (the client itself threw).
 */
export function failureKind(error: ProviderError): string {
  switch (error.kind) {
    case "rate_limited":
      return "429";
    case "server":
      return error.status !== undefined && error.status >= 500 ? "5xx" : "internal";
    case "bad_request":
      return "4xx";
    default:
      return error.kind;
  }
}

/**
 * One structured line per failed provider call (only the caller that made the call logs it:
 * followers of a single flight share its outcome without a second line). `latency_ms` is the
 * upstream call's duration, 0 when the circuit refused it.
 */
function logProviderFailure(logger: Logger, job: ProviderJob, error: ProviderError, latencyMs: number): void {
  logger.warn("provider call failed", {
    provider: job.provider,
    ...(job.provider === "plant_id" ? { endpoint: job.endpoint } : {}),
    kind: failureKind(error),
    latency_ms: latencyMs,
    ...(error.status !== undefined ? { status: error.status } : {}),
    ...(error.retryAfterS !== undefined ? { retry_after_s: error.retryAfterS } : {}),
    detail: error.message.slice(0, 200),
  });
}

/** The identification providers, in the order health and statistics list them. */
export const IDENTIFICATION_PROVIDERS = ["plant_id", "plantnet"] as const satisfies readonly ProviderName[];

/** Each identification provider's circuit state, and whether it may be called (not open). */
export async function identificationProviderHealth(env: Bindings) {
  const [plantId, plantNet] = await Promise.all(IDENTIFICATION_PROVIDERS.map((p) => circuitFor(env, p).snapshot(CIRCUIT_POLICIES[p])));
  return {
    plant_id: { state: plantId!.state, available: plantId!.state !== "open" },
    plantnet: { state: plantNet!.state, available: plantNet!.state !== "open" },
  };
}

/**
 * The exact provider-cache counters since the last reset (and a reset, when asked): misses from
 * each provider's breaker, hits from the hit counters (plus any a breaker still holds from before
 * hits were counted apart).
 */
export async function providerCacheCounters(env: Bindings, reset: boolean) {
  const [hits, plantId, plantNet] = await Promise.all([
    readHits(env),
    circuitFor(env, "plant_id").cacheCounters(),
    circuitFor(env, "plantnet").cacheCounters(),
  ]);
  if (reset) await Promise.all([resetHits(env), ...IDENTIFICATION_PROVIDERS.map((p) => circuitFor(env, p).resetCacheCounters())]);
  return {
    plant_id: { ...plantId, hits: plantId.hits + (hits.plant_id ?? 0) },
    plantnet: { ...plantNet, hits: plantNet.hits + (hits.plantnet ?? 0) },
  };
}
