/**
 * The one queue consumer for every job kind (identification and disease diagnosis share the
 * queue; the message's `type` picks the kind, and messages without one are identification jobs
 * from before diagnosis existed).
 *
 * Each message is acked or retried on its own (a throw would retry the whole batch). Delivery
 * is at least once, so every kind's steps are idempotent. A crash of our own infrastructure
 * (D1, R2…) puts the request back to pending and lets the queue retry, then dead-letter; the
 * dead-letter consumer ends the request failed and tells its owner.
 */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { createLogger, describeError, type Logger } from "../lib/logger";
import { reportToSentry } from "../providers/sentry";
import { publish } from "../services/progress";
import { diagnoseJobs } from "./diagnose-consumer";
import { identifyJobs } from "./identify-consumer";
import { backoffDelayS, type JobKind } from "./job-policy";

type AnyJob = { request_id: string; user_id: string };
const KINDS: JobKind<AnyJob>[] = [identifyJobs, diagnoseJobs];

function kindOf(body: unknown): JobKind<AnyJob> | undefined {
  return KINDS.find((k) => k.matches(body));
}

export async function handleJobBatch(batch: MessageBatch<unknown>, env: Bindings, ctx: ExecutionContext): Promise<void> {
  const logger = createLogger({ queue: batch.queue });
  // Messages of one batch are independent: run them concurrently.
  await Promise.all(batch.messages.map((message) => handleMessage(message, env, ctx, logger)));
}

async function handleMessage(message: Message<unknown>, env: Bindings, ctx: ExecutionContext, parent: Logger): Promise<void> {
  const kind = kindOf(message.body);
  if (!kind) {
    parent.error("dropping malformed job", { message_id: message.id });
    message.ack();
    return;
  }
  const job = message.body as AnyJob;
  const logger = parent.child({ request_id: job.request_id, attempt: message.attempts, job: kind.name });
  try {
    const outcome = await kind.process(job, message.attempts, env, ctx, logger);
    if (outcome.kind === "retry") message.retry({ delaySeconds: outcome.delayS });
    else message.ack();
  } catch (err) {
    logger.error(`${kind.name} job crashed`, describeError(err));
    const config = getConfig(env);
    if (config.SENTRY_DSN) {
      ctx.waitUntil(
        reportToSentry(config.SENTRY_DSN, {
          error: err,
          environment: config.ENVIRONMENT,
          release: config.APP_VERSION,
          tags: { queue: kind.name, request_id: job.request_id },
        }),
      );
    }
    const delayS = backoffDelayS(message.attempts);
    await kind.release(env, job, delayS).catch(() => {});
    message.retry({ delaySeconds: delayS });
  }
}

/** The dead-letter queue: jobs the queue gave up on. The request ends failed; the owner is told. */
export async function handleDeadLetterBatch(batch: MessageBatch<unknown>, env: Bindings): Promise<void> {
  const logger = createLogger({ queue: batch.queue });
  for (const message of batch.messages) {
    const kind = kindOf(message.body);
    if (kind) {
      const job = message.body as AnyJob;
      try {
        if (await kind.fail(env, job, kind.deadLetterMessage)) {
          await publish(env, job.user_id, { type: "error", request_id: job.request_id, message: kind.deadLetterMessage }, logger);
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
