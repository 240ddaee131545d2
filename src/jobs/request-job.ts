/**
 * The steps every queued-request job takes, whatever its kind (identification, diagnosis): the
 * kind's consumer supplies only the provider work between `startRequestJob` and
 * `finishRequestJob`, and hands provider failures to `retryOrFailRequestJob`.
 *
 *   start:  claim the request (or ack: leased by another delivery, deleted, or final — then its
 *           `completed` is said again from D1, for sockets that missed it), say
 *           processing_start, load the photos (gone → the request fails and the owner is told);
 *   retry:  an open circuit waits without spending an attempt; a retryable failure is retried
 *           with backoff (a 429 after its Retry-After) until MAX_ATTEMPTS; otherwise it fails;
 *   finish: say `completed` with the number of results.
 */
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import { StageTimer } from "../lib/server-timing";
import type { ProviderError } from "../providers/types";
import type { CompletedMessage } from "../../durable-objects/user-hub-protocol";
import { announceNotifications, type Notification } from "../services/notifications";
import { loadPhotos } from "../services/photos";
import { type ProgressChannel, progress, progressChannel } from "../services/progress";
import {
  failRequest,
  type RequestJob,
  type RequestKind,
  releaseRequest,
  requestPhotos,
  retellFinalState,
  tellFailed,
} from "../services/queued-requests";
import { type Claimed, type JobResult, MAX_ATTEMPTS, retryDelayFor, waitForCircuit } from "./job-policy";

/** Sends a message to the request owner's sockets (in order; `flush()` waits until sent). */
export type Say = ProgressChannel;

type Table = RequestKind["table"];
type RowOf<T extends Table> = T["$inferSelect"];

export async function startRequestJob<T extends Table>(
  env: Bindings,
  kind: RequestKind<T>,
  job: RequestJob,
  attempt: number,
  logger: Logger,
  ctx: Pick<ExecutionContext, "waitUntil">,
  /** The job's request as jobs/queue.ts claimed it with the rest of its batch. */
  claimed: Claimed,
) {
  // Each stage's time goes into the job's completion log line (`stages_ms`).
  const timer = new StageTimer();
  const request = claimed.row as RowOf<T> | undefined;
  timer.record("claim", claimed.ms);
  if (!request) {
    // A final one's `completed` may have died with the job that ended it: said again, from D1.
    const told = await retellFinalState(env, kind, job, logger);
    logger.info(`${kind.noun} already finished, running under another delivery's lease, or request deleted; acking`, {
      retold_completed_to: told,
    });
    return { done: { kind: "done" } as JobResult };
  }
  // Tagged with the request's run: a retry while this run says its extras starts a later run, and
  // the hub then drops what this one still says.
  const say = progressChannel(env, job.user_id, logger, { waitUntil: (p) => ctx.waitUntil(p), run: request.run });
  await say(progress(job.request_id, "processing_start", "processing", { attempt }));
  const images = await timer.time("photos", loadPhotos(env, requestPhotos(request)));
  if (!images) return { done: await failRequestJob(env, kind, job, "The uploaded images are no longer available.", logger, say) };
  return { request, images, say, timer };
}

/** The request fails with `message`, and its owner is told. */
export async function failRequestJob(
  env: Bindings,
  kind: RequestKind,
  job: RequestJob,
  message: string,
  logger: Logger,
  say: Say,
): Promise<JobResult> {
  await say.flush(); // the job's progress reaches the sockets before its end
  // Told only when this run failed it: a request already final was told by the path that ended it.
  const { failedRun, notices } = await failRequest(env, kind, job.request_id, message);
  if (failedRun !== null) await tellFailed(env, job.user_id, job.request_id, failedRun, message, notices, logger);
  return { kind: "done" };
}

/**
 * What each kind tells its owner when its providers fail: who they are (`what`), the message
 * when retrying could help but the attempts are spent (`unavailable`), and when retrying cannot
 * help, such as a refused key (`misconfigured`).
 */
const FAILURE_WORDS: Record<RequestKind["job"], { what: string; unavailable: string; misconfigured: string }> = {
  identify: {
    what: "Providers",
    unavailable: "Plant identification services are unavailable. Please retry later.",
    misconfigured: "Plant identification is misconfigured. Please contact support.",
  },
  diagnose: {
    what: "Plant health service",
    unavailable: "The plant health service is unavailable. Please retry later.",
    misconfigured: "Plant health diagnosis is misconfigured. Please contact support.",
  },
};

export async function retryOrFailRequestJob(
  env: Bindings,
  kind: RequestKind,
  job: RequestJob,
  attempt: number,
  errors: ProviderError[],
  /** `claimToken`: the token this delivery's claim wrote (only its holder releases the request). */
  run: { say: Say; logger: Logger; claimToken: string | null },
): Promise<JobResult> {
  const { say, logger } = run;
  const words = FAILURE_WORDS[kind.job];
  const release = (delayS: number, reason: string) => releaseRequest(env, kind, job.request_id, run.claimToken, delayS, reason);
  const waited = await waitForCircuit(job, errors, attempt, { release, say, logger, what: words.what });
  if (waited) {
    await say.flush();
    return waited;
  }
  const retryable = errors.some((e) => e.retryable);
  if (!retryable || attempt >= MAX_ATTEMPTS) {
    logger.warn(`${kind.noun} failed`, { errors: errors.map((e) => e.toJSON()) });
    return failRequestJob(env, kind, job, retryable ? words.unavailable : words.misconfigured, logger, say);
  }
  const { delayS, rateLimited } = retryDelayFor(errors, attempt);
  if (rateLimited) await say(progress(job.request_id, "rate_limited", "pending", { retry_after: delayS }));
  await release(delayS, `${words.what} unavailable; retrying in ${delayS} s`);
  await say(progress(job.request_id, "retry_scheduled", "pending", { delay_seconds: delayS, attempt, max_attempts: MAX_ATTEMPTS }));
  await say.flush();
  return { kind: "retry", delayS };
}

/**
 * The job's completion wrote nothing: the request was ended meanwhile by another path — the
 * stuck-request sweep or the dead-letter queue failing it, another delivery that took over an
 * expired lease finishing it first, its owner deleting it — which told the owner its end. This
 * run says nothing more: its own `completed` (or its care advice after that end) would contradict
 * what D1 has, live and on every later replay.
 */
export async function endedMeanwhile(kind: RequestKind, say: Say, logger: Logger, timer: StageTimer): Promise<JobResult> {
  await say.flush();
  logger.warn(`${kind.noun} was ended by another path while this job ran; its answer is dropped`, { stages_ms: timer.stagesMs() });
  return { kind: "done" };
}

export async function finishRequestJob(
  env: Bindings,
  kind: RequestKind,
  job: RequestJob,
  status: CompletedMessage["status"],
  /**
   * `results`: how many results the completion's own batch counted; `notices`: the "ready"
   * notification that batch wrote (none when a redelivery had written it already).
   */
  run: { say: Say; logger: Logger; timer: StageTimer; results: number; notices: Notification[]; deliveryIds?: string[] },
): Promise<JobResult> {
  const { timer, results } = run;
  await run.say({ type: "completed", request_id: job.request_id, status, results_count: results });
  await timer.time("flush", run.say.flush());
  // Pushed live and its email and push queued (best effort: the delivery sweep catches the rest).
  await timer.time("notify", announceNotifications(env, run.notices, run.logger, run.deliveryIds));
  run.logger.info(`${kind.noun} completed`, { status, results, stages_ms: timer.stagesMs() });
  return { kind: "done" };
}
