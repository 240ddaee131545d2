import { ProviderError } from "../providers/types";
import { completeDiseaseRequest } from "../services/diseases";
import { progress } from "../services/progress";
import { cachedProviderCall, plantIdJob } from "../services/provider-calls";
import { DiseaseRequests, type RequestJob, requestJobKind } from "../services/queued-requests";
import type { JobKind } from "./job-policy";
import { endedMeanwhile, finishRequestJob, retryOrFailRequestJob, startRequestJob } from "./request-job";

export type DiagnoseJob = RequestJob<"diagnose">;

export const diagnoseJobs = requestJobKind(DiseaseRequests, {
  process: (job, attempt, env, ctx, logger, claimed) => processDiagnoseJob(job, attempt, env, ctx, logger, claimed),
  deadLetterMessage: "Diagnosis failed after several attempts. Please submit the photos again.",
});

export const processDiagnoseJob: JobKind<DiagnoseJob>["process"] = async (job, attempt, env, ctx, logger, claimed) => {
  const started = await startRequestJob(env, DiseaseRequests, job, attempt, logger, ctx, claimed);
  if (started.done) return started.done;
  const { request, images, say, timer } = started;

  await say(progress(job.request_id, "health_start", "processing", {}));
  const call = await timer.time(
    "providers",
    cachedProviderCall(
      env,
      (p) => ctx.waitUntil(p),
      await plantIdJob(env, images, { latitude: null, longitude: null, language: request.language }, "health_assessment"),
      { logger },
    ),
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
    return retryOrFailRequestJob(env, DiseaseRequests, job, attempt, [error], { say, logger, claimToken: request.claimToken });
  }

  const { status, written, results, notices, deliveryIds } = await timer.time(
    "complete",
    completeDiseaseRequest(env, job.request_id, health, call.answer.isPlant, job.user_id),
  );
  if (!written) return endedMeanwhile(DiseaseRequests, say, logger, timer);
  return finishRequestJob(env, DiseaseRequests, job, status, { say, logger, timer, results, notices, deliveryIds });
};
