/**
 * Cron housekeeping (wrangler.toml [triggers]). Each task is idempotent and bounded so a
 * missed or doubled run is harmless.
 */
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import { failStaleDiseaseRequests } from "../services/diseases";
import { publish } from "../services/progress";
import { deliverDueReminders } from "../services/reminders";
import { purgeExpiredTokens } from "../services/tokens";

/** A job that has not reported for this long is taken to have died with its isolate. */
export const STALE_PROCESSING_MS = 15 * 60 * 1000;

/**
 * API.md §2.2: a request never stays in `processing` after its job ends. Queue retries end a
 * crashed job normally; this catches the rest (e.g. an isolate killed mid-write).
 */
export async function failStaleProcessingRequests(env: Bindings, logger?: Logger, now = Date.now()): Promise<number> {
  const cutoff = new Date(now - STALE_PROCESSING_MS).toISOString();
  const message = "Processing timed out. Please retry.";
  const { results } = await env.DB.prepare(
    `UPDATE identification_requests
        SET status = 'failed', error_message = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
      WHERE status = 'processing' AND updated_at < ?
      RETURNING id, user_id`,
  )
    .bind(message, cutoff)
    .all<{ id: string; user_id: string | null }>();
  results.push(...(await failStaleDiseaseRequests(env, cutoff, message)));
  // Their owners are told, as for any other failure.
  await Promise.all(
    results
      .filter((r) => r.user_id)
      .map(async (r) => {
        await publish(env, r.user_id!, { type: "error", request_id: r.id, message }, logger);
        await publish(env, r.user_id!, { type: "completed", request_id: r.id, status: "failed", results_count: 0 }, logger);
      }),
  );
  return results.length;
}

export async function runHousekeeping(env: Bindings, logger: Logger): Promise<void> {
  const failed = await failStaleProcessingRequests(env, logger);
  await purgeExpiredTokens(env);
  const reminders = await deliverDueReminders(env, logger);
  logger.info("housekeeping", { stale_requests_failed: failed, reminder_notifications: reminders });
}
