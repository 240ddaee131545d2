/**
 * Disease diagnosis jobs (API.md §4), run by the shared queue consumer (jobs/queue.ts) on the
 * identification queue with `type: "diagnose"`. One Plant.id `/health_assessment` call behind
 * the same KV cache, single flight and `plant_id` circuit breaker as identification.
 *
 * Progress to the owner's UserHub: queued (at upload) → processing_start → health_start →
 * health_done → completed; on a retryable provider failure rate_limited? → retry_scheduled and
 * the request waits in `pending` (an open circuit: retry_scheduled with reason circuit_open, a
 * wait that spends no attempt); after MAX_ATTEMPTS (or a failure retrying cannot fix) it ends
 * `failed` with an `error` then `completed` message. Idempotent like identification jobs.
 */
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import { ProviderError } from "../providers/types";
import { completeDiseaseRequest } from "../services/diseases";
import { loadPhotos } from "../services/photos";
import { progress, publish } from "../services/progress";
import { cachedProviderCall, plantIdJob } from "../services/provider-calls";
import {
  claimRequest,
  countRequestResults,
  DiseaseRequests,
  failRequest,
  releaseRequest,
  type RequestJob,
  requestJobKind,
  requestPhotos,
  tellFailed,
} from "../services/queued-requests";
import { MAX_ATTEMPTS, retryDelayFor, type JobResult, waitForCircuit } from "./job-policy";

export type DiagnoseJob = RequestJob<"diagnose">;

export const diagnoseJobs = requestJobKind(DiseaseRequests, {
  process: (job, attempt, env, ctx, logger) => processDiagnoseJob(job, attempt, env, ctx, logger),
  deadLetterMessage: "Diagnosis failed after several attempts. Please submit the photos again.",
});

type Say = (m: Parameters<typeof publish>[2]) => Promise<void>;

export async function processDiagnoseJob(
  job: DiagnoseJob,
  attempt: number,
  env: Bindings,
  ctx: ExecutionContext,
  logger: Logger,
): Promise<JobResult> {
  const request = await claimRequest(env, DiseaseRequests, job.request_id);
  if (!request) {
    logger.info("diagnosis already finished, running under another delivery's lease, or request deleted; acking");
    return { kind: "done" };
  }
  const say: Say = (m) => publish(env, job.user_id, m, logger);
  await say(progress(job.request_id, "processing_start", "processing", { attempt }));

  const images = await loadPhotos(env, requestPhotos(request));
  if (!images) return fail(env, job, "The uploaded images are no longer available.", logger);

  await say(progress(job.request_id, "health_start", "processing", {}));
  const call = await cachedProviderCall(
    env,
    (p) => ctx.waitUntil(p),
    await plantIdJob(env, images, { latitude: null, longitude: null, language: "en" }, "health_assessment"),
    logger,
  );
  const health = call.answer?.health ?? null;
  await say(
    progress(
      job.request_id,
      "health_done",
      "processing",
      call.error || !health
        ? { ok: false, error: call.error?.kind ?? "malformed", cached: false }
        : {
            ok: true,
            cached: call.cached,
            suggestions: health.diseases.length,
            is_healthy: health.isHealthy,
            is_plant: call.answer!.isPlant,
          },
    ),
  );

  if (call.error || !call.answer || !health) {
    const error = call.error ?? new ProviderError("plant_id", "malformed", "Plant.id answered without a health assessment");
    const waited = await waitForCircuit(job, [error], attempt, {
      release: (delayS, reason) => releaseRequest(env, DiseaseRequests, job.request_id, delayS, reason),
      say,
      logger,
      what: "Plant health service",
    });
    if (waited) return waited;
    if (!error.retryable || attempt >= MAX_ATTEMPTS) {
      logger.warn("diagnosis failed", { error: error.toJSON() });
      return fail(
        env,
        job,
        error.retryable
          ? "The plant health service is unavailable. Please retry later."
          : "Plant health diagnosis is misconfigured. Please contact support.",
        logger,
      );
    }
    const { delayS, rateLimited } = retryDelayFor([error], attempt);
    if (rateLimited) await say(progress(job.request_id, "rate_limited", "pending", { retry_after: delayS }));
    await releaseRequest(env, DiseaseRequests, job.request_id, delayS, `Plant health service unavailable; retrying in ${delayS} s`);
    await say(progress(job.request_id, "retry_scheduled", "pending", { delay_seconds: delayS, attempt, max_attempts: MAX_ATTEMPTS }));
    return { kind: "retry", delayS };
  }

  const { status } = await completeDiseaseRequest(env, job.request_id, health, call.answer.isPlant);
  const results = await countRequestResults(env, DiseaseRequests, job.request_id);
  await say({ type: "completed", request_id: job.request_id, status, results_count: results });
  logger.info("diagnosis completed", { status, results });
  return { kind: "done" };
}

async function fail(env: Bindings, job: DiagnoseJob, message: string, logger: Logger): Promise<JobResult> {
  await failRequest(env, DiseaseRequests, job.request_id, message);
  await tellFailed(env, job.user_id, job.request_id, message, logger);
  return { kind: "done" };
}
