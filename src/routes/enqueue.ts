/**
 * Queueing a request's job, shared by identification and disease requests.
 */
import type { Context } from "hono";
import type { DiagnoseJob } from "../jobs/diagnose-consumer";
import type { IdentifyJob } from "../jobs/identify-consumer";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { progress, publish } from "../services/progress";

/**
 * `queued` goes to the owner's sockets before the send, so a fast consumer's first stage can
 * never overtake it. If the queue refuses the job, the request is failed at once (never left
 * pending with no job behind it), the sockets hear so, and the client gets 503 with Retry-After.
 */
export async function enqueueJob(
  c: Context<AppEnv>,
  job: IdentifyJob | DiagnoseJob,
  fail: (message: string) => Promise<unknown>,
  noun: "identification" | "diagnosis",
): Promise<void> {
  const logger = c.get("logger");
  await publish(c.env, job.user_id, progress(job.request_id, "queued", "pending", {}), logger);
  try {
    await c.env.IDENTIFY_QUEUE.send(job, { contentType: "json" });
  } catch (err) {
    logger.error("enqueue failed", { request_id: job.request_id, error: String(err) });
    const message = `Could not queue the ${noun}. Please retry.`;
    await fail(message);
    await publish(c.env, job.user_id, { type: "error", request_id: job.request_id, message }, logger);
    await publish(c.env, job.user_id, { type: "completed", request_id: job.request_id, status: "failed", results_count: 0 }, logger);
    throw new AppError("QUEUE_UNAVAILABLE", 503, `Could not queue the ${noun} right now. Please retry in a moment.`, undefined, {
      "Retry-After": "10",
    });
  }
}
