/**
 * The notification queue's consumer (email and Web Push deliveries, services/notification-
 * delivery.ts). Each message is acked or retried on its own: a failure gives the row back
 * (`queued`) and retries the message with backoff (or the push service's Retry-After); after
 * max_retries the dead-letter consumer marks the delivery `failed` (or `sent`: a push some of the
 * user's devices took). Duplicate deliveries of a message are harmless: only one consumer can
 * claim the row.
 */
import type { Bindings } from "../env";
import { loggerFor } from "../services/logging";
import { describeError } from "../lib/logger";
import { reportError } from "../services/error-reporting";
import {
  DeliveryRetry,
  type DeviceRemoved,
  failDelivery,
  isDeliveryJob,
  releaseDelivery,
  sendDelivery,
} from "../services/notification-delivery";
import { tellSecurityEvent } from "../services/security-notices";
import { backoffDelayS } from "./job-policy";

export async function handleNotifyBatch(batch: MessageBatch<unknown>, env: Bindings, ctx: ExecutionContext): Promise<void> {
  const logger = loggerFor(env, { queue: batch.queue });
  await Promise.all(
    batch.messages.map(async (message) => {
      if (!isDeliveryJob(message.body)) {
        logger.error("dropping malformed notification job", { message_id: message.id });
        message.ack();
        return;
      }
      const id = message.body.delivery_id;
      try {
        const log = logger.child({ delivery_id: id });
        // A device removed for failing for a week: its owner gets a security notice naming it.
        const deviceRemoved: DeviceRemoved = ({ userId, label }) =>
          tellSecurityEvent(env, { id: userId }, "push_device_removed", label, log);
        const outcome = await sendDelivery(env, id, log, Date.now(), deviceRemoved);
        logger.debug("notification delivery", { delivery_id: id, outcome });
        message.ack();
      } catch (err) {
        const delayS =
          err instanceof DeliveryRetry && err.delayS !== undefined ? Math.min(err.delayS, 3600) : backoffDelayS(message.attempts);
        if (!(err instanceof DeliveryRetry)) {
          logger.error("notification delivery crashed", { delivery_id: id, ...describeError(err) });
          reportError(env, err, { tags: { queue: "notify", delivery_id: id } }, (p) => ctx.waitUntil(p));
        } else logger.warn("notification delivery will be retried", { delivery_id: id, error: err.message, delay_s: delayS });
        await releaseDelivery(env, id, err instanceof Error ? err.message.slice(0, 500) : String(err), delayS).catch(() => {});
        message.retry({ delaySeconds: delayS });
      }
    }),
  );
}

/**
 * Deliveries the queue gave up on: marked `failed` (the in-app notification is still there), or
 * `sent` for a push that some of the user's devices took before the others' retries ran out.
 */
export async function handleNotifyDeadLetters(batch: MessageBatch<unknown>, env: Bindings): Promise<void> {
  const logger = loggerFor(env, { queue: batch.queue });
  for (const message of batch.messages) {
    if (isDeliveryJob(message.body)) {
      try {
        const ended = await failDelivery(env, message.body.delivery_id, "gave up after retries");
        if (ended === "failed") logger.warn("notification delivery failed for good", { delivery_id: message.body.delivery_id });
        else if (ended === "sent")
          logger.warn("push reached some devices; gave up on the others", { delivery_id: message.body.delivery_id });
      } catch (err) {
        logger.error("notification dead-letter handling failed", describeError(err));
        message.retry();
        continue;
      }
    }
    message.ack();
  }
}
