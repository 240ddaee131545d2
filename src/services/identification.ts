/**
 * The identification pipeline shared by the synchronous route and the queue consumer:
 * Plant.id and Pl@ntNet are called concurrently (each behind its cache, single flight, timeout
 * and circuit breaker), then merged. Nothing is ever made up: when no provider answers there
 * are no suggestions, and callers report failure.
 */
import type { ProgressData, ProgressStage } from "../../durable-objects/user-hub-protocol";
import type { Bindings } from "../env";
import { type PlantNetOrgan, plantNetProjectFor } from "../providers/plantnet";

/** The organs a photo may show (Pl@ntNet's list), for validating uploads. */
export { PLANTNET_ORGANS as PLANT_ORGANS, type PlantNetOrgan as PlantOrgan } from "../providers/plantnet";
import { ProviderError, type HealthAssessment, type ProviderAnswer, type ProviderName } from "../providers/types";
import { mergeSuggestions, type MergedSuggestion } from "./merge";
import { cachedProviderCall, plantIdJob, plantNetJob, type CachedCallResult, type ProviderImage } from "./provider-calls";

export interface IdentifyInput {
  images: ProviderImage[];
  organs?: PlantNetOrgan[];
  latitude?: number | null;
  longitude?: number | null;
  language?: string;
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

export async function identifyPlant(
  env: Bindings,
  waitUntil: (p: Promise<unknown>) => void,
  input: IdentifyInput,
  report: ProgressReporter = () => {},
): Promise<IdentifyOutcome> {
  const language = input.language ?? "en";
  const latitude = input.latitude ?? null;
  const longitude = input.longitude ?? null;
  const organs = input.organs ?? input.images.map(() => "auto" as const);

  const plantIdCall = (async (): Promise<ProviderOutcome> => {
    await report("plant_id_start", {});
    const result = await cachedProviderCall(env, waitUntil, await plantIdJob(env, input.images, { latitude, longitude, language }));
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
      language,
      includeRelatedImages: true,
      maxResults: PLANTNET_MAX_RESULTS,
    });
    const result = await cachedProviderCall(env, waitUntil, job);
    await report("plantnet_done", summary(result));
    return result;
  })();

  // allSettled: one provider's crash must never cost us the other's answer.
  const [plantIdSettled, plantNetSettled] = await Promise.allSettled([plantIdCall, plantNetCall]);
  const plantId = settledOutcome("plant_id", plantIdSettled);
  const plantnet = settledOutcome("plantnet", plantNetSettled);

  const suggestions = mergeSuggestions({ plant_id: plantId.answer, plantnet: plantnet.answer });
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

function settledOutcome(provider: ProviderName, settled: PromiseSettledResult<ProviderOutcome>): ProviderOutcome {
  if (settled.status === "fulfilled") return settled.value;
  // cachedProviderCall turns provider failures into values; anything thrown here is our own
  // infrastructure (KV, a Durable Object) and counts as this provider failing.
  const message = settled.reason instanceof Error ? settled.reason.message : String(settled.reason);
  return { answer: null, cached: false, error: new ProviderError(provider, "server", message) };
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
