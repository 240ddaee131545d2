/**
 * The queue work a test file set going, waited for before vitest closes the file's worker.
 *
 * A test that sends to a real queue (a request accepted, a notification made) leaves a job
 * that the queue delivers up to max_batch_timeout later and that may still run when the file's
 * last test has ended. A job running as vitest closes the worker fails its RPC calls
 * (EnvironmentTeardownError, vitest.config.ts) and dies half done. test/setup.ts waits, after
 * each file, until that work is done: every message sent to a queue delivered, no consumer batch
 * (or work it handed to waitUntil) running, no failed message on its way to its dead-letter
 * queue. vitest.config.ts turns the queues' retries off in tests (max_retries 0), so a failed
 * message goes to its dead-letter queue at once instead of coming back seconds later.
 *
 * Left out: a message sent with a delay (a job waiting out an open circuit) is not waited for.
 * Batches a test delivers itself (cloudflare:test createMessageBatch, helpers/queue.ts) reach
 * no queue: they are not counted, whatever their outcome.
 */
import { createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../../src/index";

type Consumer = (typeof worker)["queue"];

/** Consumer batches and the waitUntil work they started, still running. */
let running = 0;
let tracking = false;
/** Failed messages the queue is moving to a dead-letter queue, not yet delivered there. */
let deadLettersOnTheirWay = 0;
/** Messages sent without a delay and not yet delivered, by queue and body. */
const undelivered = new Map<string, number>();

const deadLetterQueueOf = env.TEST_QUEUES.deadLetterQueues;
const deadLetterQueues = new Set(Object.values(deadLetterQueueOf));
const testMadeBatch = createMessageBatch("test", []).constructor;

const keyOf = (queue: string, body: unknown) => `${queue} ${JSON.stringify(body)}`;
function count(key: string, by: number) {
  const n = (undelivered.get(key) ?? 0) + by;
  if (n > 0) undelivered.set(key, n);
  else undelivered.delete(key);
}

/** `queue` (named `name`), its sends without a delay counted until their delivery (or refusal). */
function countedProducer(queue: Queue, name: string): Queue {
  const counted = <T>(keys: string[], sent: Promise<T>) => {
    for (const key of keys) count(key, 1);
    return sent.catch((err) => {
      for (const key of keys) count(key, -1);
      throw err;
    });
  };
  return {
    send: (body, options) => counted(options?.delaySeconds ? [] : [keyOf(name, body)], queue.send(body, options)),
    sendBatch(messages, options) {
      const all = [...messages];
      const keys = all.filter((m) => !(m.delaySeconds ?? options?.delaySeconds)).map((m) => keyOf(name, m.body));
      return counted(keys, queue.sendBatch(all, options));
    },
    metrics: () => queue.metrics(),
  };
}

/**
 * The batch as the consumer sees it, recording which messages end retried, as the runtime
 * decides: a message's first ack() or retry() holds, neither counts after ackAll()/retryAll(),
 * retryAll() retries every message, and so does a consumer that throws.
 */
function watched(batch: MessageBatch<unknown>) {
  let all: "ack" | "retry" | undefined;
  const own = new Map<Message<unknown>, "ack" | "retry">();
  /** `target` whose methods run on itself, with `calls` seen first. */
  const seen = <T extends object>(target: T, calls: Partial<Record<keyof T, () => void>>, extra: Partial<Record<keyof T, unknown>> = {}) =>
    new Proxy(target, {
      get(t, key) {
        if (key in extra) return extra[key as keyof T];
        const value = Reflect.get(t, key, t);
        if (typeof value !== "function") return value;
        const call = calls[key as keyof T];
        return (...args: unknown[]) => {
          call?.();
          return value.apply(t, args);
        };
      },
    });
  const settle = (message: Message<unknown>, outcome: "ack" | "retry") => () => {
    if (all === undefined && !own.has(message)) own.set(message, outcome);
  };
  const messages = batch.messages.map((m) => seen(m, { ack: settle(m, "ack"), retry: settle(m, "retry") }));
  const proxy = seen(
    batch,
    {
      ackAll: () => {
        all ??= "ack";
      },
      retryAll: () => {
        all ??= "retry";
      },
    },
    { messages },
  );
  const retried = (threw: boolean) =>
    threw || all === "retry" ? batch.messages.length : [...own.values()].filter((o) => o === "retry").length;
  return { proxy, retried };
}

/**
 * Counts what is sent to the queues (through env's producer bindings) and the Worker's queue
 * consumer's real batches while they run (test/setup.ts, once per file).
 */
export function trackQueueWork(): void {
  if (tracking) return;
  tracking = true;
  const bindings = env as unknown as Record<string, Queue>;
  for (const { binding, queue } of env.TEST_QUEUES.producers) bindings[binding] = countedProducer(bindings[binding]!, queue);
  const consume: Consumer = worker.queue;
  worker.queue = async (batch, bindings, ctx) => {
    if (batch instanceof testMadeBatch) return consume.call(worker, batch, bindings, ctx);
    if (deadLetterQueues.has(batch.queue)) deadLettersOnTheirWay -= batch.messages.length;
    for (const m of batch.messages) if (undelivered.has(keyOf(batch.queue, m.body))) count(keyOf(batch.queue, m.body), -1);
    running++;
    const waitUntil = ctx.waitUntil.bind(ctx);
    ctx.waitUntil = (promise) => {
      running++;
      waitUntil(Promise.resolve(promise).finally(() => running--));
    };
    const { proxy, retried } = watched(batch);
    let threw = false;
    try {
      await consume.call(worker, proxy, bindings, ctx);
    } catch (err) {
      threw = true;
      throw err;
    } finally {
      // Counted before the runtime hears the outcome, so the hand-over is never unseen.
      if (deadLetterQueueOf[batch.queue]) deadLettersOnTheirWay += retried(threw);
      running--;
    }
  };
}

/** What is still to run: nothing when every count is zero. */
const pending = () => ({ running, deadLettersOnTheirWay, undelivered: [...undelivered.values()].reduce((a, b) => a + b, 0) });

/** Waits until the file's queue work is done, at most `timeoutMs`; throws naming what is left. */
export async function queueWorkDone(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = pending();
    if (left.running === 0 && left.deadLettersOnTheirWay <= 0 && left.undelivered === 0) return;
    if (Date.now() > deadline)
      throw new Error(`queue work still running ${timeoutMs} ms after the file's last test: ${JSON.stringify(left)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
