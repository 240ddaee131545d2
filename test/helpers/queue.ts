/**
 * Queue batches delivered to the Worker's consumer by the test itself, as the queue would deliver
 * them. `deliverBatch` is the one way to do it and to learn the delay each retry asked for (the
 * harness reports which messages were retried, not their delay), and `recordingQueue` the one way
 * to learn what a job re-sent and with which delay; `deliverJob`/`deliverJobs` use a queue
 * binding that sends nothing, so only the test's own deliveries run jobs.
 */
import { createExecutionContext, createMessageBatch, getQueueResult, type QueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../../src/index";

export type JobBody = { type: string; request_id: string; user_id: string; run?: number };

/** A queue binding that takes every message and sends nothing: only the test's own deliveries run jobs. */
export const NO_QUEUE = { send: async () => {}, sendBatch: async () => {} } as unknown as Queue;

/** What a job sent to a queue: the body, and the delay it asked for (a re-send that waits). */
export type Sent<Body = JobBody> = { body: Body; delaySeconds?: number };

/** A queue binding that records what is sent (with each message's delay) instead of delivering it. */
export function recordingQueue<Body = JobBody>() {
  const sent: Sent<Body>[] = [];
  const queue = {
    send: async (body: Body, o?: QueueSendOptions) => void sent.push({ body, delaySeconds: o?.delaySeconds }),
    sendBatch: async (messages: Iterable<MessageSendRequest<Body>>) => {
      for (const m of messages) sent.push({ body: m.body, delaySeconds: m.delaySeconds });
    },
  } as unknown as Queue;
  return { queue, sent };
}

/**
 * Delivers one batch of `bodies` on `queue` (each delivery number `attempts`) to the consumer
 * with exactly `bindings`. The harness's result, with each retried message's `delaySeconds` as
 * its `retry()` asked for (undefined when it asked for none).
 */
export async function deliverBatch(queue: string, bodies: unknown[], bindings: typeof env, attempts = 1): Promise<QueueResult> {
  const batch = createMessageBatch(
    queue,
    bodies.map((body, i) => ({ id: `job-${i}-${crypto.randomUUID()}`, timestamp: new Date(), attempts, body })),
  );
  const delays = new Map<string, number | undefined>();
  for (const message of batch.messages) {
    const retry = message.retry.bind(message);
    Object.defineProperty(message, "retry", {
      value: (options?: QueueRetryOptions) => {
        delays.set(message.id, options?.delaySeconds);
        retry(options);
      },
    });
  }
  const ctx = createExecutionContext();
  await worker.queue(batch, bindings, ctx);
  await waitOnExecutionContext(ctx);
  const result = await getQueueResult(batch, ctx);
  return { ...result, retryMessages: result.retryMessages.map((m) => ({ ...m, delaySeconds: delays.get(m.msgId) })) };
}

/** Delivers one batch of `bodies` (each delivery's `attempts`) with `bindings` and NO_QUEUE; the acked and retried message ids. */
export async function deliverJobs(bodies: JobBody[], bindings: typeof env = env, attempts = 1) {
  const result = await deliverBatch("plant-identify", bodies, { ...bindings, IDENTIFY_QUEUE: NO_QUEUE }, attempts);
  return { acked: result.explicitAcks, retried: result.retryMessages.map((m) => m.msgId) };
}

/**
 * Delivers one message of `body` (delivery number `attempts`) with `bindings` over `env`, sending
 * to NO_QUEUE unless `bindings` names an IDENTIFY_QUEUE: acked or retried, and the delay its retry
 * asked for.
 */
export async function deliverJob(body: JobBody, attempts = 1, bindings: Partial<typeof env> = {}) {
  const result = await deliverBatch("plant-identify", [body], { ...env, IDENTIFY_QUEUE: NO_QUEUE, ...bindings }, attempts);
  return { acked: result.explicitAcks.length, retried: result.retryMessages.length, delay: result.retryMessages[0]?.delaySeconds };
}
