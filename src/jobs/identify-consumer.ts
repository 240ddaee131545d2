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
import type { Logger } from "../lib/logger";
import type { PlantNetOrgan } from "../providers/plantnet";
import type { ProviderError } from "../providers/types";
import { identifyPlant, type IdentifyOutcome } from "../services/identification";
import { progress, publish } from "../services/progress";
import { completeIdentificationRequest, countIdentificationResults } from "../services/identification-requests";
import { loadPhotos } from "../services/photos";
import {
  claimRequest,
  failRequest,
  IdentificationRequests,
  releaseRequest,
  type RequestJob,
  requestJobKind,
  requestPhotos,
  tellFailed,
} from "../services/queued-requests";
import { careInstructionsFor, findSpeciesForCare } from "../services/care-guides";
import { enrichSpecies } from "../services/enrichment";
import { MAX_ATTEMPTS, retryDelayFor, type JobResult, waitForCircuit } from "./job-policy";

export { backoffDelayS, MAX_ATTEMPTS } from "./job-policy";

export type IdentifyJob = RequestJob<"identify">;

/** Messages queued before job kinds existed carry no `type`: they are identification jobs. */
export const identifyJobs = requestJobKind(IdentificationRequests, {
  process: (job, attempt, env, ctx, logger) => processJob(job, attempt, env, ctx, logger),
  deadLetterMessage: "Identification failed after several attempts. Please retry.",
  untyped: true,
});

export async function processJob(
  job: IdentifyJob,
  attempt: number,
  env: Bindings,
  ctx: ExecutionContext,
  logger: Logger,
): Promise<JobResult> {
  const request = await claimRequest(env, IdentificationRequests, job.request_id);
  if (!request) {
    logger.info("job already finished, running under another delivery's lease, or request deleted; acking");
    return { kind: "done" };
  }
  const say = (m: Parameters<typeof publish>[2]) => publish(env, job.user_id, m, logger);
  await say(progress(job.request_id, "processing_start", "processing", { attempt }));

  const images = await loadPhotos(env, requestPhotos(request));
  if (!images) {
    const message = "The uploaded images are no longer available.";
    await failRequest(env, IdentificationRequests, job.request_id, message);
    await tellFailed(env, job.user_id, job.request_id, message, logger);
    return { kind: "done" };
  }

  const outcome = await identifyPlant(
    env,
    (p) => ctx.waitUntil(p),
    {
      images,
      organs: request.organs as PlantNetOrgan[],
      latitude: request.latitude,
      longitude: request.longitude,
    },
    (stage, data) => say(progress(job.request_id, stage, "processing", data)),
    { logger },
  );

  if (outcome.allFailed) return retryOrFail(job, attempt, outcome, env, say, logger);

  const { status } = await completeIdentificationRequest(env, job.request_id, job.user_id, outcome.suggestions, outcome.health);
  // After completion, so species new to the catalogue exist to be enriched.
  await enrichSpecies(env, job.request_id, outcome.suggestions, say, logger);
  await prepareCare(env, job.request_id, outcome.suggestions[0]?.scientific_name, say, logger);
  const results = await countIdentificationResults(env, job.request_id);
  await say({ type: "completed", request_id: job.request_id, status, results_count: results });
  logger.info("identification completed", { status, results });
  return { kind: "done" };
}

async function retryOrFail(
  job: IdentifyJob,
  attempt: number,
  outcome: IdentifyOutcome,
  env: Bindings,
  say: (m: Parameters<typeof publish>[2]) => Promise<void>,
  logger: Logger,
): Promise<JobResult> {
  const errors = [outcome.providers.plant_id.error, outcome.providers.plantnet.error].filter((e): e is ProviderError => e !== null);
  const waited = await waitForCircuit(job, errors, attempt, {
    release: (delayS, reason) => releaseRequest(env, IdentificationRequests, job.request_id, delayS, reason),
    say,
    logger,
    what: "Providers",
  });
  if (waited) return waited;
  const retryable = errors.some((e) => e.retryable);
  if (!retryable || attempt >= MAX_ATTEMPTS) {
    const message = retryable
      ? "Plant identification services are unavailable. Please retry later."
      : "Plant identification is misconfigured. Please contact support.";
    await failRequest(env, IdentificationRequests, job.request_id, message);
    await tellFailed(env, job.user_id, job.request_id, message, logger);
    logger.warn("identification failed", { errors: errors.map((e) => e.toJSON()) });
    return { kind: "done" };
  }
  const { delayS, rateLimited } = retryDelayFor(errors, attempt);
  if (rateLimited) await say(progress(job.request_id, "rate_limited", "pending", { retry_after: delayS }));
  await releaseRequest(env, IdentificationRequests, job.request_id, delayS, `Providers unavailable; retrying in ${delayS} s`);
  await say(progress(job.request_id, "retry_scheduled", "pending", { delay_seconds: delayS, attempt, max_attempts: MAX_ATTEMPTS }));
  return { kind: "retry", delayS };
}

/** Writes the AI care guide for the best suggestion once, so the results page has it ready. */
async function prepareCare(
  env: Bindings,
  requestId: string,
  scientificName: string | undefined,
  say: (m: Parameters<typeof publish>[2]) => Promise<void>,
  logger: Logger,
): Promise<void> {
  if (!scientificName) return;
  await say(progress(requestId, "care_start", "processing", { scientific_name: scientificName }));
  const species = await findSpeciesForCare(env, { scientificName });
  const care = species ? await careInstructionsFor(env, species, "en", logger) : null;
  await say(progress(requestId, "care_done", "processing", { source: care?.source ?? null }));
}
