/**
 * Cron housekeeping (wrangler.toml [triggers], every 5 minutes; under `npm start`, which runs
 * `wrangler dev` where cron triggers do not fire, scripts/start.ts calls the same handler once
 * at start and then on the same schedule). Each task is idempotent and bounded so a missed or
 * doubled run is harmless.
 */
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import { deliverDueReminders } from "../services/reminders";
import { purgeExpiredTokens } from "../services/tokens";
import { sweepStuckRequests } from "./stuck-requests";

/**
 * @param now the sweep's clock: the cron's scheduled time (tests pass later times to play a
 *   series of sweeps).
 */
export async function runHousekeeping(env: Bindings, logger: Logger, now = Date.now()): Promise<void> {
  // API.md §2.2: a request never stays pending/processing after its job is gone.
  const stuck = await sweepStuckRequests(env, logger, now);
  await purgeExpiredTokens(env);
  const reminders = await deliverDueReminders(env, logger);
  logger.info("housekeeping", {
    stuck_requests_requeued: stuck.requeued,
    stuck_requests_failed: stuck.failed,
    reminder_notifications: reminders,
  });
}
