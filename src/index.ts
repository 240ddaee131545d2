/**
 * The Worker: HTTP (Hono app), queue consumers, cron and inbound email (unsubscribe), plus the Durable Object classes the
 * runtime must find on the main module.
 */
import { createApp } from "./app";
import type { Bindings } from "./env";
import { runHousekeeping } from "./jobs/housekeeping";
import { handleNotifyBatch, handleNotifyDeadLetters } from "./jobs/notify-consumer";
import { handleDeadLetterBatch, handleJobBatch } from "./jobs/queue";
import { AppError } from "./lib/errors";
import { loggerFor } from "./services/logging";
import { unsubscribeByMail } from "./services/unsubscribe";

export { HitCounter } from "../durable-objects/hit-counter";
export { ProviderCircuit } from "../durable-objects/provider-circuit";
export { RateLimiter } from "../durable-objects/rate-limiter";
export { SingleFlight } from "../durable-objects/single-flight";
export { UserHub } from "../durable-objects/user-hub";

const app = createApp();

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),

  /**
   * Identification and diagnosis jobs, notification deliveries (plant-notify…), and their dead
   * letters (queue names differ per environment).
   */
  async queue(batch, env, ctx) {
    const dead = batch.queue.endsWith("-dlq");
    if (batch.queue.startsWith("plant-notify")) await (dead ? handleNotifyDeadLetters(batch, env) : handleNotifyBatch(batch, env, ctx));
    else if (dead) await handleDeadLetterBatch(batch, env, ctx);
    else await handleJobBatch(batch, env, ctx);
  },

  /**
   * Mail to EMAIL_UNSUBSCRIBE_ADDRESS (the `mailto:` of every notification email's
   * List-Unsubscribe), routed here by Cloudflare Email Routing: its subject's token unsubscribes
   * as the one-click POST does. Without a valid token the message is rejected (bounced).
   */
  async email(message, env) {
    const logger = loggerFor(env, { email: "unsubscribe" });
    try {
      const { scope } = await unsubscribeByMail(env, message.headers.get("subject") ?? "");
      logger.info("unsubscribed by mail", { scope });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      message.setReject(err.message);
    }
  },

  async scheduled(controller, env, ctx) {
    const logger = loggerFor(env, { cron: controller.cron });
    ctx.waitUntil(runHousekeeping(env, logger, controller.scheduledTime, (p) => ctx.waitUntil(p)));
  },
} satisfies ExportedHandler<Bindings>;
