/**
 * The one queue consumer for every job kind (identification and disease diagnosis share the
 * queue; the message's `type` picks the kind, and messages without one are identification jobs
 * from before diagnosis existed).
 *
 * The requests of a batch's jobs are claimed together, in one D1 round trip (a lone job's too, so
 * every job is claimed the one way); after that each message is acked or retried on its own (a
 * throw would retry the whole batch). Delivery
 * is at least once, so every kind's steps are idempotent. A crash of our own infrastructure
 * (D1, R2…) puts the request this delivery claimed back to pending and lets the queue retry,
 * then dead-letter; the dead-letter consumer ends the request failed and tells its owner (on the
 * job's last attempt the consumer does that itself).
 */
import type { Bindings } from "../env";
import { loggerFor } from "../services/logging";
import { describeError, type Logger } from "../lib/logger";
import { reportError } from "../services/error-reporting";
import { diagnoseJobs } from "./diagnose-consumer";
import { identifyJobs } from "./identify-consumer";
import { backoffDelayS, type Claimed, counter, type JobKind, MAX_ATTEMPTS } from "./job-policy";

type AnyJob = { request_id: string; user_id: string; failures?: number };
const KINDS: JobKind<AnyJob>[] = [identifyJobs, diagnoseJobs];

function kindOf(body: unknown): JobKind<AnyJob> | undefined {
  return KINDS.find((k) => k.matches(body));
}

export async function handleJobBatch(batch: MessageBatch<unknown>, env: Bindings, ctx: ExecutionContext): Promise<void> {
  const logger = loggerFor(env, { queue: batch.queue });
  const claims = await claimBatch(batch.messages, env);
  // Messages of one batch are independent: run them concurrently.
  await Promise.all(batch.messages.map((message, i) => handleMessage(message, env, ctx, logger, claims[i])));
}

/**
 * What the batch claim gave one message (none when it is not a job): its claim, or the error the
 * claim answered with, and the token the claim wrote or would have written.
 */
type BatchClaim = ({ claimed: Claimed } | { failed: unknown }) & { token: string };

/**
 * Each kind's jobs of the batch claimed in one round trip. The claim is all or nothing: when it
 * fails, every job it was for is handled as crashed — released and retried with backoff.
 */
async function claimBatch(messages: readonly Message<unknown>[], env: Bindings): Promise<(BatchClaim | undefined)[]> {
  const claims: (BatchClaim | undefined)[] = messages.map(() => undefined);
  await Promise.all(
    KINDS.map(async (kind) => {
      const mine = messages.flatMap((m, i) => (kindOf(m.body) === kind ? [i] : []));
      if (mine.length === 0) return;
      const tokens = mine.map(() => crypto.randomUUID());
      const started = Date.now();
      try {
        const rows = await kind.claim(
          env,
          mine.map((i) => messages[i]!.body as AnyJob),
          tokens,
        );
        const ms = Date.now() - started;
        mine.forEach((i, n) => (claims[i] = { claimed: { row: rows[n], ms }, token: tokens[n]! }));
      } catch (err) {
        mine.forEach((i, n) => (claims[i] = { failed: err, token: tokens[n]! }));
      }
    }),
  );
  return claims;
}

async function handleMessage(
  message: Message<unknown>,
  env: Bindings,
  ctx: ExecutionContext,
  parent: Logger,
  batchClaim: BatchClaim | undefined,
): Promise<void> {
  const kind = kindOf(message.body);
  if (!kind) {
    parent.error("dropping malformed job", { message_id: message.id });
    message.ack();
    return;
  }
  const job = message.body as AnyJob;
  // The job's attempt number: failed attempts carried by the message (it may be a re-send after
  // a circuit wait) plus this message's own deliveries.
  const attempt = counter(job.failures) + message.attempts;
  const logger = parent.child({ request_id: job.request_id, attempt, job: kind.name });
  try {
    if (!batchClaim) throw new Error("the job was not claimed with its batch"); // claimBatch claims every kind's jobs
    if ("failed" in batchClaim) throw batchClaim.failed;
    const outcome = await kind.process(job, attempt, env, ctx, logger, batchClaim.claimed);
    if (outcome.kind === "retry") message.retry({ delaySeconds: outcome.delayS });
    else if (outcome.kind === "wait") await waitAsNewMessage(message, outcome.body, outcome.delayS, env, logger);
    else message.ack();
  } catch (err) {
    logger.error(`${kind.name} job crashed`, describeError(err));
    reportError(env, err, { tags: { queue: kind.name, request_id: job.request_id } }, (p) => ctx.waitUntil(p));
    const delayS = backoffDelayS(attempt);
    // Only what this delivery claimed, by its token: a duplicate's crash must not put back a
    // request another delivery is running, while a claim D1 committed but answered with an error
    // is still this delivery's to put back.
    if (batchClaim) await kind.release(env, job, batchClaim.token, delayS).catch(() => {});
    // The last of MAX_ATTEMPTS (API.md §2.3): no further try. Queues would deliver once more
    // (max_retries counts retries, not attempts) and so would a re-sent message; end the job as
    // the dead-letter consumer does. Should that fail too, the queue's retries and its
    // dead-letter queue still end it. Not a request another delivery holds (a duplicate whose
    // claim crashed): that one is finishing it, and carries the job on as a duplicate that
    // claimed nothing would leave it to.
    if (attempt >= MAX_ATTEMPTS) {
      try {
        await kind.fail(env, job, kind.deadLetterMessage, logger, batchClaim?.token ?? null);
        message.ack();
        return;
      } catch (failErr) {
        logger.error("could not end a job out of attempts; the queue retries it", describeError(failErr));
      }
    }
    message.retry({ delaySeconds: delayS });
  }
}

/**
 * A circuit wait. Queues counts every retry of a message in `message.attempts` and dead-letters
 * it after max_retries (wrangler.toml: 5) whatever the reason, so waiting out an open circuit
 * with message.retry() would spend the job's attempts on calls never made — a 45-second outage
 * (the circuit stays open 60 s) could exhaust them. Instead the message is acked and the job
 * sent again with the delay, carrying its own counters (failures so far, circuit waits), from
 * which the next delivery computes its attempt number; the queue's own retries and dead-letter
 * queue still catch crashes. Send first, then ack: a crash in between leaves two messages, which
 * the exclusive claim makes harmless; a failed send falls back to an ordinary retry.
 */
async function waitAsNewMessage(message: Message<unknown>, body: unknown, delayS: number, env: Bindings, logger: Logger): Promise<void> {
  try {
    await env.IDENTIFY_QUEUE.send(body, { contentType: "json", delaySeconds: delayS });
    message.ack();
  } catch (err) {
    logger.warn("could not re-send a waiting job; retrying it instead", { error: String(err) });
    message.retry({ delaySeconds: delayS });
  }
}

/**
 * The dead-letter queue: jobs the queue gave up on. The request ends failed and the owner is
 * told — unless another delivery of the job holds it (processing, its lease live: a duplicate
 * copy of the message is running it), which finishes it; should that one die, the lease runs out
 * and the stuck-request sweep takes it.
 */
export async function handleDeadLetterBatch(batch: MessageBatch<unknown>, env: Bindings, ctx?: ExecutionContext): Promise<void> {
  const logger = loggerFor(env, { queue: batch.queue });
  for (const message of batch.messages) {
    const kind = kindOf(message.body);
    if (kind) {
      const job = message.body as AnyJob;
      try {
        await kind.fail(env, job, kind.deadLetterMessage, logger, null);
      } catch (err) {
        logger.error("dead-letter handling failed", describeError(err));
        reportError(
          env,
          err,
          { tags: { queue: `${kind.name}-dead-letter`, request_id: job.request_id } },
          ctx && ((p) => ctx.waitUntil(p)),
        );
        message.retry();
        continue;
      }
    }
    message.ack();
  }
}
