/**
 * Identification jobs (API.md §2.2–§2.3), run by the shared queue consumer (jobs/queue.ts).
 *
 * Delivery is at least once, so every step is idempotent: the request is claimed only while
 * pending or processing, results are upserted and the completion is guarded by the status, so
 * a re-delivered message never duplicates anything.
 *
 * Retries (jobs/job-policy.ts): exponential backoff with jitter; a provider 429 waits for its
 * Retry-After instead, capped at 300 s; when both providers' circuits are open the job waits
 * until one may half-open, without spending an attempt. After MAX_ATTEMPTS the request fails
 * and its owner is told. Between attempts the request is back in `pending`, never left
 * `processing`.
 */
import type { Bindings } from "../env";
import { describeError, type Logger } from "../lib/logger";
import type { StageTimer } from "../lib/server-timing";
import type { PlantNetOrgan } from "../providers/plantnet";
import type { ProviderError } from "../providers/types";
import { careInstructionsFor, findSpeciesWithStoredGuide } from "../services/care-guides";
import { enrichSpecies } from "../services/enrichment";
import { completeIdentificationRequest } from "../services/identification-requests";
import { identifyPlant } from "../services/identification";
import type { MergedSuggestion } from "../services/merge";
import { progress } from "../services/progress";
import { IdentificationRequests, type RequestJob, requestJobKind } from "../services/queued-requests";
import type { JobKind } from "./job-policy";
import { endedMeanwhile, finishRequestJob, retryOrFailRequestJob, type Say, startRequestJob } from "./request-job";

export { backoffDelayS, MAX_ATTEMPTS } from "./job-policy";

export type IdentifyJob = RequestJob<"identify">;

/** Messages queued before job kinds existed carry no `type`: they are identification jobs. */
export const identifyJobs = requestJobKind(IdentificationRequests, {
  process: (job, attempt, env, ctx, logger, claimed) => processJob(job, attempt, env, ctx, logger, claimed),
  deadLetterMessage: "Identification failed after several attempts. Please retry.",
  untyped: true,
});

export const processJob: JobKind<IdentifyJob>["process"] = async (job, attempt, env, ctx, logger, claimed) => {
  const started = await startRequestJob(env, IdentificationRequests, job, attempt, logger, ctx, claimed);
  if (started.done) return started.done;
  const { request, images, say, timer } = started;

  const outcome = await timer.time(
    "providers",
    identifyPlant(
      env,
      (p) => ctx.waitUntil(p),
      {
        images,
        organs: request.organs as PlantNetOrgan[],
        latitude: request.latitude,
        longitude: request.longitude,
        // The request's language, kept on its row: every delivery and retry asks in the same one.
        language: request.language,
      },
      (stage, data) => say(progress(job.request_id, stage, "processing", data)),
      { logger },
    ),
  );

  if (outcome.allFailed) {
    const errors = [outcome.providers.plant_id.error, outcome.providers.plantnet.error].filter((e): e is ProviderError => e !== null);
    return retryOrFailRequestJob(env, IdentificationRequests, job, attempt, errors, { say, logger, claimToken: request.claimToken });
  }

  const { status, written, results, notices, deliveryIds } = await timer.time(
    "complete",
    completeIdentificationRequest(env, job.request_id, job.user_id, outcome.suggestions, outcome.health, job.user_id, request.language),
  );
  if (!written) return endedMeanwhile(IdentificationRequests, say, logger, timer);
  // The request is final now: a redelivery would find nothing to claim, so a failure in the
  // extras below must not keep the owner from hearing `completed` and their notification.
  try {
    await prepareExtras(env, job.request_id, request.language, outcome.suggestions, say, logger, timer);
  } catch (err) {
    logger.warn("catalogue enrichment or care advice failed after completion", describeError(err));
  }
  return finishRequestJob(env, IdentificationRequests, job, status, { say, logger, timer, results, notices, deliveryIds });
};

/**
 * After completion, so species new to the catalogue exist to be enriched. One read gives the
 * best suggestion's catalogue entry and its stored care guide in the request's `language` to both
 * steps; only when enrichment filled in the entry is it read again for the care advice.
 */
async function prepareExtras(
  env: Bindings,
  requestId: string,
  language: string,
  suggestions: MergedSuggestion[],
  say: Say,
  logger: Logger,
  timer: StageTimer,
) {
  const top = suggestions[0]?.scientific_name;
  const read = (name: string) => findSpeciesWithStoredGuide(env, name, language);
  const entry = top ? await timer.time("catalogue", read(top)) : null;
  const enriched = await timer.time("enrich", enrichSpecies(env, requestId, suggestions, say, logger, entry?.species ?? null));
  await timer.time("care", async () => prepareCare(env, requestId, language, top, top && enriched ? await read(top) : entry, say, logger));
}

/**
 * Writes the AI care guide for the best suggestion once, in the request's language (each species
 * has one per language), so the results page has it ready. When OpenAI cannot write it, the
 * advice is the rule-based one, as on the care route: a stored guide in another language is not
 * offered in its place. `entry`: its catalogue entry and stored guide as last read (null: not in
 * the catalogue).
 */
async function prepareCare(
  env: Bindings,
  requestId: string,
  language: string,
  scientificName: string | undefined,
  entry: Awaited<ReturnType<typeof findSpeciesWithStoredGuide>>,
  say: Say,
  logger: Logger,
): Promise<void> {
  if (!scientificName) return;
  await say(progress(requestId, "care_start", "processing", { scientific_name: scientificName }));
  const care = entry ? await careInstructionsFor(env, entry.species, language, logger, entry) : null;
  await say(progress(requestId, "care_done", "processing", { source: care?.source ?? null, language: care?.language ?? null }));
}
