/**
 * Queue batches delivered to the Worker's consumer by the test itself, as the queue would deliver
 * them, with a queue binding that sends nothing (so only the test's deliveries run jobs).
 */
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../../src/index";

export type JobBody = { type: string; request_id: string; user_id: string; run?: number };

/** A queue binding that takes every message and sends nothing: only the test's own deliveries run jobs. */
export const NO_QUEUE = { send: async () => {}, sendBatch: async () => {} } as unknown as Queue;

/** Delivers one batch of `bodies` (each delivery's `attempts`) with `bindings`; the acked and retried message ids. */
export async function deliverJobs(bodies: JobBody[], bindings: typeof env = env, attempts = 1) {
  const batch = createMessageBatch(
    "plant-identify",
    bodies.map((body, i) => ({ id: `job-${i}-${crypto.randomUUID()}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...bindings, IDENTIFY_QUEUE: NO_QUEUE }, ctx);
  await waitOnExecutionContext(ctx);
  const result = await getQueueResult(batch, ctx);
  return { acked: result.explicitAcks, retried: result.retryMessages.map((m) => m.msgId) };
}

/**
 * Delivers one message of `body` (delivery number `attempts`) with `bindings` and NO_QUEUE: acked
 * or retried, and the delay its retry asked for.
 */
export async function deliverJob(body: JobBody, attempts = 1, bindings: Partial<typeof env> = {}) {
  const batch = createMessageBatch("plant-identify", [{ id: `job-${crypto.randomUUID()}`, timestamp: new Date(), attempts, body }]);
  let delay: number | undefined;
  const message = batch.messages[0]!;
  const retry = message.retry.bind(message);
  Object.defineProperty(message, "retry", {
    value: (o?: QueueRetryOptions) => {
      delay = o?.delaySeconds;
      retry(o);
    },
  });
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...bindings, IDENTIFY_QUEUE: NO_QUEUE }, ctx);
  await waitOnExecutionContext(ctx);
  const result = await getQueueResult(batch, ctx);
  return { acked: result.explicitAcks.length, retried: result.retryMessages.length, delay };
}
