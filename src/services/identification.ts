/**
 * The identification pipeline shared by the synchronous route and the queue consumer:
 * Plant.id and Pl@ntNet are called concurrently (each behind its cache, single flight, timeout
 * and circuit breaker), then merged. Nothing is ever made up: when no provider answers there
 * are no suggestions, and callers report failure.
 */
import type { ProgressData, ProgressStage } from "../../durable-objects/user-hub-protocol";
import { getConfig } from "../config";
import { loggerFor } from "./logging";
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import type { StageRecorder } from "../lib/server-timing";
import { type PlantNetOrgan, plantNetLanguage, plantNetProjectFor } from "../providers/plantnet";

/** The organs a photo may show (Pl@ntNet's list), for validating uploads. */
export { PLANTNET_ORGANS as PLANT_ORGANS, type PlantNetOrgan as PlantOrgan } from "../providers/plantnet";
import { ProviderError, type HealthAssessment, type ProviderAnswer, type ProviderErrorKind, type ProviderName } from "../providers/types";
import { currentCalibrations } from "./calibration";
import { mergeSuggestions, type MergedSuggestion } from "./merge";
import { cachedProviderCall, plantIdJob, plantNetJob, type CachedCallResult, type ProviderImage } from "./provider-calls";

export interface IdentifyInput {
  images: ProviderImage[];
  organs?: PlantNetOrgan[];
  latitude?: number | null;
  longitude?: number | null;
  /**
   * The user's language (ISO 639-1), for the localised details — common names, and Plant.id's
   * descriptions — each provider answers in. Unset: English. Plant.id is asked in it as it is
   * (it falls back to English by itself); Pl@ntNet in it when it knows it, else in English.
   * Each language is its own provider-cache entry and single flight.
   */
  language?: string;
  /** The caller's continent (`request.cf.continent`), when known: its provider calls coordinate in that region's single-flight shards. */
  region?: string | null;
}

export type IdentifyStage = Extract<ProgressStage, "plant_id_start" | "plant_id_done" | "plantnet_start" | "plantnet_done" | "merge_done">;
/** Hears each stage of an identification with the data the UserHub protocol declares for it. */
export type ProgressReporter = <S extends IdentifyStage>(stage: S, data: ProgressData<S>) => Promise<void> | void;

export interface ProviderOutcome {
  answer: ProviderAnswer | null;
  error: ProviderError | null;
  cached: boolean;
  /** Why the provider was not asked at all (e.g. it cannot read WebP). */
  skipped?: string;
  /**
   * Still being asked when the caller stopped waiting (the synchronous grace, below): its call
   * goes on in the background and fills the provider cache, so the next identical photo gets it.
   */
  late?: boolean;
}

export interface IdentifyOptions {
  /**
   * Once one provider has answered with suggestions, wait at most this long for the other and
   * then answer without it (its call finishes in the background through `waitUntil`). Unset:
   * wait for both, each up to its own timeout (queued jobs, where nobody is waiting).
   */
  secondProviderGraceMs?: number;
  /** Where provider failures are logged; a plain logger at the configured level otherwise. */
  logger?: Logger;
  /** Hears each provider call's steps (cachedProviderCall names them), e.g. for Server-Timing. */
  stages?: StageRecorder;
  /** Hears each provider's answer as soon as it is in, before the other's and the merge. */
  onAnswer?: (answer: ProviderAnswer) => void;
}

export interface IdentifyOutcome {
  suggestions: MergedSuggestion[];
  providers: Record<ProviderName, ProviderOutcome>;
  health: HealthAssessment | null;
  /** true when at least one provider gave an answer (possibly "not a plant"). */
  anyAnswer: boolean;
  /** true when every provider that was asked failed (outage, circuit open, timeout…). */
  allFailed: boolean;
  isPlant: boolean;
}

const PLANTNET_MAX_RESULTS = 10;

/** The language identifications are asked in when the caller names none. */
export const DEFAULT_LANGUAGE = "en";

/**
 * The language of what is shared by everyone — the species catalogue's common names and
 * descriptions, the public disease database: only answers asked in it write there.
 */
export const CATALOGUE_LANGUAGE = "en";

/**
 * The synchronous identification (`identify/`): someone is waiting for the answer, so once one
 * provider has answered the other gets `IDENTIFY_SECOND_PROVIDER_GRACE_MS` more, not its whole
 * timeout (Plant.id's is 35 s).
 */
export function identifyNow(
  env: Bindings,
  waitUntil: (p: Promise<unknown>) => void,
  input: IdentifyInput,
  options: Pick<IdentifyOptions, "logger" | "stages" | "onAnswer"> = {},
): Promise<IdentifyOutcome> {
  return identifyPlant(env, waitUntil, input, undefined, {
    ...options,
    secondProviderGraceMs: getConfig(env).IDENTIFY_SECOND_PROVIDER_GRACE_MS,
  });
}

export async function identifyPlant(
  env: Bindings,
  waitUntil: (p: Promise<unknown>) => void,
  input: IdentifyInput,
  report: ProgressReporter = () => {},
  options: IdentifyOptions = {},
): Promise<IdentifyOutcome> {
  const logger = options.logger ?? loggerFor(env);
  const language = input.language ?? DEFAULT_LANGUAGE;
  const latitude = input.latitude ?? null;
  const longitude = input.longitude ?? null;
  const organs = input.organs ?? input.images.map(() => "auto" as const);

  const plantIdCall = (async (): Promise<ProviderOutcome> => {
    await report("plant_id_start", {});
    const job = await plantIdJob(env, input.images, { latitude, longitude, language });
    const result = await cachedProviderCall(env, waitUntil, job, { logger, stages: options.stages, region: input.region });
    if (result.answer) options.onAnswer?.(result.answer);
    await report("plant_id_done", summary(result));
    return result;
  })();

  // Pl@ntNet reads JPEG and PNG only (PROVIDERS.md §2.1); WebP photos go to Plant.id alone.
  const plantNetImages = input.images.filter((i) => i.mime !== "image/webp");
  const plantNetCall = (async (): Promise<ProviderOutcome> => {
    if (plantNetImages.length === 0) return { answer: null, error: null, cached: false, skipped: "Pl@ntNet accepts JPEG and PNG only" };
    await report("plantnet_start", {});
    const keptOrgans = input.images.flatMap((img, i) => (img.mime === "image/webp" ? [] : [organs[i] ?? "auto"]));
    const job = await plantNetJob(env, plantNetImages, {
      project: plantNetProjectFor(latitude, longitude),
      organs: keptOrgans,
      language: plantNetLanguage(language),
      includeRelatedImages: true,
      maxResults: PLANTNET_MAX_RESULTS,
    });
    const result = await cachedProviderCall(env, waitUntil, job, { logger, stages: options.stages, region: input.region });
    if (result.answer) options.onAnswer?.(result.answer);
    await report("plantnet_done", summary(result));
    return result;
  })();

  // One provider's crash must never cost us the other's answer: a rejection becomes a failed outcome.
  const calls = [settledOutcome("plant_id", plantIdCall, logger), settledOutcome("plantnet", plantNetCall, logger)] as const;
  const [plantId, plantnet] =
    options.secondProviderGraceMs === undefined
      ? await Promise.all(calls)
      : await withGrace(calls, options.secondProviderGraceMs, waitUntil, logger);

  // Calibrated scores when maps are fitted; a failed read of them must not fail an identification.
  const calibration = await currentCalibrations(env).catch((err) => {
    logger.warn("calibration maps unavailable; using raw scores", { error: String(err) });
    return {};
  });
  const suggestions = mergeSuggestions({ plant_id: plantId.answer, plantnet: plantnet.answer }, calibration);
  await report("merge_done", { suggestions: suggestions.length });

  const asked = [plantId, plantnet].filter((o) => !o.skipped);
  const answers = asked.map((o) => o.answer).filter((a): a is ProviderAnswer => a !== null);
  return {
    suggestions,
    providers: { plant_id: plantId, plantnet },
    health: plantId.answer?.health ?? null,
    anyAnswer: answers.length > 0,
    allFailed: asked.length > 0 && asked.every((o) => o.error !== null),
    isPlant: answers.some((a) => a.isPlant),
  };
}

async function settledOutcome(provider: ProviderName, call: Promise<ProviderOutcome>, logger: Logger): Promise<ProviderOutcome> {
  try {
    return await call;
  } catch (err) {
    // cachedProviderCall turns provider failures into values; anything thrown here is our own
    // infrastructure (KV, a Durable Object) and counts as this provider failing.
    const message = err instanceof Error ? err.message : String(err);
    logger.warn("provider call failed", { provider, kind: "internal", detail: message.slice(0, 200) });
    return { answer: null, cached: false, error: new ProviderError(provider, "server", message) };
  }
}

/** An answer worth answering with: a provider that failed or found nothing starts no grace. */
function hasSuggestions(outcome: ProviderOutcome): boolean {
  return (outcome.answer?.suggestions.length ?? 0) > 0;
}

/**
 * Both outcomes, except that once one provider has answered with suggestions the other has
 * `graceMs` left; a provider still running then is `late` and its call is handed to
 * `waitUntil`, so it completes (and caches its answer, or logs its failure) after the response.
 * A provider that fails or finds nothing does not start the grace: the other is then the only
 * hope and keeps its full timeout.
 */
function withGrace(
  calls: readonly [Promise<ProviderOutcome>, Promise<ProviderOutcome>],
  graceMs: number,
  waitUntil: (p: Promise<unknown>) => void,
  logger: Logger,
): Promise<[ProviderOutcome, ProviderOutcome]> {
  const providers: readonly ProviderName[] = ["plant_id", "plantnet"];
  const started = Date.now();
  return new Promise((resolve) => {
    const outcomes: (ProviderOutcome | undefined)[] = [undefined, undefined];
    let timer: ReturnType<typeof setTimeout> | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      outcomes.forEach((outcome, i) => {
        if (outcome) return;
        logger.info("provider late, answered without it", {
          provider: providers[i],
          waited_ms: Date.now() - started,
          grace_ms: graceMs,
        });
        // Kept alive after the response: a late answer still reaches the cache.
        waitUntil(calls[i]!);
      });
      resolve([
        outcomes[0] ?? { answer: null, error: null, cached: false, late: true },
        outcomes[1] ?? { answer: null, error: null, cached: false, late: true },
      ]);
    };
    calls.forEach((call, i) => {
      void call.then((outcome) => {
        if (done) return;
        outcomes[i] = outcome;
        if (outcomes.every(Boolean)) finish();
        else if (hasSuggestions(outcome) && timer === undefined) timer = setTimeout(finish, graceMs);
      });
    });
  });
}

/** How each provider took part in an answer; anything but `answered` means its suggestions are missing. */
export type ProviderStatus =
  | { status: "answered" }
  | { status: "failed"; error: ProviderErrorKind }
  | { status: "pending" }
  | { status: "skipped"; reason: string };

export function providerStatuses(outcome: IdentifyOutcome): Record<ProviderName, ProviderStatus> {
  const one = (o: ProviderOutcome): ProviderStatus => {
    if (o.skipped) return { status: "skipped", reason: o.skipped };
    if (o.late) return { status: "pending" };
    if (o.error) return { status: "failed", error: o.error.kind };
    return { status: "answered" };
  };
  return { plant_id: one(outcome.providers.plant_id), plantnet: one(outcome.providers.plantnet) };
}

function summary(result: CachedCallResult): ProgressData<"plant_id_done"> {
  if (result.error) return { ok: false, error: result.error.kind, cached: false };
  return {
    ok: true,
    cached: result.cached,
    suggestions: result.answer?.suggestions.length ?? 0,
    is_plant: result.answer?.isPlant ?? false,
  };
}
