/**
 * Queue consumer for identification jobs (API.md §2.2–§2.3).
 *
 * Each message is acked or retried on its own (a throw would retry the whole batch). Delivery
 * is at least once, so every step is idempotent: the request is claimed only while pending or
 * processing, results are upserted and the completion is guarded by the status, so a
 * re-delivered message never duplicates anything.
 *
 * Retries: exponential backoff with jitter (5 s, 10 s, 20 s, 40 s ± 50 %); a provider 429 waits
 * for its Retry-After instead, capped at 300 s. After MAX_ATTEMPTS the request fails and its
 * owner is told. Between attempts the request is back in `pending`, never left `processing`.
 */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { reportToSentry } from "../providers/sentry";
import { createLogger, describeError, type Logger } from "../lib/logger";
import { IMAGE_MIME } from "../lib/images";
import type { PlantNetOrgan } from "../providers/plantnet";
import type { ProviderError } from "../providers/types";
import { identifyPlant, type IdentifyOutcome } from "../services/identification";
import { progress, publish } from "../services/progress";
import { claimForProcessing, completeRequest, countResults, decodeImages, failRequest, imageKey, type RequestRow } from "../services/requests";
import { careInstructionsFor, findSpeciesForCare } from "../services/care-guides";
import { enrichSpecies } from "../services/enrichment";

export interface IdentifyJob {
  type: "identify";
  request_id: string;
  user_id: string;
}

export const MAX_ATTEMPTS = 5;
const BASE_DELAY_S = 5;
const MAX_DELAY_S = 300;

export function backoffDelayS(attempt: number, random = Math.random()): number {
  const exponential = BASE_DELAY_S * 2 ** Math.max(0, attempt - 1);
  return Math.min(MAX_DELAY_S, Math.max(1, Math.round(exponential * (0.5 + random))));
}

function isIdentifyJob(body: unknown): body is IdentifyJob {
  const b = body as Partial<IdentifyJob> | null;
  return !!b && b.type === "identify" && typeof b.request_id === "string" && typeof b.user_id === "string";
}

export async function handleIdentifyBatch(batch: MessageBatch<unknown>, env: Bindings, ctx: ExecutionContext): Promise<void> {
  const logger = createLogger({ queue: batch.queue });
  // Messages of one batch are independent: run them concurrently.
  await Promise.all(batch.messages.map((message) => handleMessage(message, env, ctx, logger)));
}

async function handleMessage(message: Message<unknown>, env: Bindings, ctx: ExecutionContext, parent: Logger): Promise<void> {
  if (!isIdentifyJob(message.body)) {
    parent.error("dropping malformed identification job", { message_id: message.id });
    message.ack();
    return;
  }
  const job = message.body;
  const logger = parent.child({ request_id: job.request_id, attempt: message.attempts });
  try {
    const outcome = await processJob(job, message.attempts, env, ctx, logger);
    if (outcome.kind === "retry") message.retry({ delaySeconds: outcome.delayS });
    else message.ack();
  } catch (err) {
    // Our own infrastructure failed (D1, R2…). Put the request back to pending so it is not
    // left processing, and let the queue retry (and dead-letter after max_retries).
    logger.error("identification job crashed", describeError(err));
    const config = getConfig(env);
    if (config.SENTRY_DSN) {
      ctx.waitUntil(
        reportToSentry(config.SENTRY_DSN, {
          error: err,
          environment: config.ENVIRONMENT,
          release: config.APP_VERSION,
          tags: { queue: "identify", request_id: job.request_id },
        }),
      );
    }
    await env.DB.prepare("UPDATE identification_requests SET status = 'pending' WHERE id = ? AND status = 'processing'")
      .bind(job.request_id)
      .run()
      .catch(() => {});
    message.retry({ delaySeconds: backoffDelayS(message.attempts) });
  }
}

type JobResult = { kind: "done" } | { kind: "retry"; delayS: number };

export async function processJob(job: IdentifyJob, attempt: number, env: Bindings, ctx: ExecutionContext, logger: Logger): Promise<JobResult> {
  const request = await claimForProcessing(env, job.request_id);
  if (!request) {
    logger.info("job already finished or request deleted; acking");
    return { kind: "done" };
  }
  const say = (m: Parameters<typeof publish>[2]) => publish(env, job.user_id, m, logger);
  await say(progress(job.request_id, "processing_start", "processing", { attempt }));

  const images = await loadImages(env, request);
  if (!images) {
    await failRequest(env, job.request_id, "The uploaded images are no longer available.");
    await say({ type: "error", request_id: job.request_id, message: "The uploaded images are no longer available." });
    await say({ type: "completed", request_id: job.request_id, status: "failed", results_count: 0 });
    return { kind: "done" };
  }

  const outcome = await identifyPlant(
    env,
    (p) => ctx.waitUntil(p),
    {
      images,
      organs: JSON.parse(request.organs) as PlantNetOrgan[],
      latitude: request.latitude,
      longitude: request.longitude,
    },
    (stage, data) => say(progress(job.request_id, stage, "processing", data)),
  );

  if (outcome.allFailed) return retryOrFail(job, attempt, outcome, env, say, logger);

  const { status } = await completeRequest(env, job.request_id, job.user_id, outcome.suggestions, outcome.health);
  // After completion, so species new to the catalogue exist to be enriched.
  await enrichSpecies(env, job.request_id, outcome.suggestions, say, logger);
  await prepareCare(env, job.request_id, outcome.suggestions[0]?.scientific_name, say, logger);
  const results = await countResults(env, job.request_id);
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
  const retryable = errors.some((e) => e.retryable);
  if (!retryable || attempt >= MAX_ATTEMPTS) {
    const message = retryable
      ? "Plant identification services are unavailable. Please retry later."
      : "Plant identification is misconfigured. Please contact support.";
    await failRequest(env, job.request_id, message);
    await say({ type: "error", request_id: job.request_id, message });
    await say({ type: "completed", request_id: job.request_id, status: "failed", results_count: 0 });
    logger.warn("identification failed", { errors: errors.map((e) => e.toJSON()) });
    return { kind: "done" };
  }
  const rateLimits = errors.filter((e) => e.kind === "rate_limited" && e.retryAfterS !== undefined).map((e) => e.retryAfterS!);
  const delayS = rateLimits.length > 0 ? Math.min(MAX_DELAY_S, Math.max(1, ...rateLimits)) : backoffDelayS(attempt);
  if (rateLimits.length > 0) await say(progress(job.request_id, "rate_limited", "pending", { retry_after: delayS }));
  await env.DB.prepare(
    "UPDATE identification_requests SET status = 'pending', error_message = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ? AND status = 'processing'",
  )
    .bind(`Providers unavailable; retrying in ${delayS} s`, job.request_id)
    .run();
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

async function loadImages(env: Bindings, request: RequestRow) {
  const stored = decodeImages(request);
  const objects = await Promise.all(stored.map((img) => env.IMAGES.get(imageKey(img))));
  if (objects.some((o) => o === null)) return null;
  return Promise.all(
    objects.map(async (o, i) => ({ bytes: new Uint8Array(await o!.arrayBuffer()), mime: IMAGE_MIME[stored[i]!.type], sha256: stored[i]!.sha256 })),
  );
}

/** The dead-letter queue: jobs the queue gave up on. The request ends failed; the owner is told. */
export async function handleDeadLetterBatch(batch: MessageBatch<unknown>, env: Bindings): Promise<void> {
  const logger = createLogger({ queue: batch.queue });
  for (const message of batch.messages) {
    if (isIdentifyJob(message.body)) {
      const job = message.body;
      const message_ = "Identification failed after several attempts. Please retry.";
      try {
        const changed = await failRequest(env, job.request_id, message_);
        if (changed) {
          await publish(env, job.user_id, { type: "error", request_id: job.request_id, message: message_ }, logger);
          await publish(env, job.user_id, { type: "completed", request_id: job.request_id, status: "failed", results_count: 0 }, logger);
        }
      } catch (err) {
        logger.error("dead-letter handling failed", describeError(err));
        message.retry();
        continue;
      }
    }
    message.ack();
  }
}
