/**
 * A write that follows an answer already decided (a route's work is done and committed): it is
 * tried `attempts` times, 50 ms × the attempt number apart, so a D1 blip passes; if every try
 * fails it is logged and given up, and the answer still goes back. For what must never turn a
 * done write into an error: a 5xx would release the request's Idempotency-Key, and the client's
 * retry would do the write a second time.
 */
import { describeError, type Logger } from "./logger";

export async function settleAfterAnswer(
  write: () => Promise<unknown>,
  failure: { logger: Logger; message: string; attempts?: number },
): Promise<boolean> {
  const attempts = failure.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      await write();
      return true;
    } catch (err) {
      if (attempt >= attempts) {
        failure.logger.error(failure.message, { attempts: attempt, ...describeError(err) });
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}
