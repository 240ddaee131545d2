/**
 * Cron housekeeping (wrangler.toml [triggers], every 5 minutes; under `npm start`, which runs
 * `wrangler dev` where cron triggers do not fire, scripts/start.ts calls the same handler once
 * at start and then on the same schedule). Each task is idempotent and bounded so a missed or
 * doubled run is harmless.
 */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { describeError, type Logger } from "../lib/logger";
import { publishScheduledPosts } from "../services/blog-posts";
import { scheduledCalibrationFit } from "../services/calibration";
import { notifyStartingEvents } from "../services/calendar";
import { recountAgedAccounts } from "../services/community";
import { feedsPolledUnderPreviousSecret } from "../services/calendar-feed";
import { purgeWebhookEvents } from "../services/email-events";
import { reportError } from "../services/error-reporting";
import { purgeExpiredIdempotencyKeys } from "../services/idempotency";
import { gatherDigests, requeueStale } from "../services/notification-delivery";
import { purgeOldNotifications } from "../services/notifications";
import { deliverDueReminders } from "../services/reminders";
import { purgeExpiredTokens } from "../services/tokens";
import { resealTwoFactorSecrets } from "../services/two-factor";
import { sweepStuckRequests } from "./stuck-requests";

/**
 * Runs every task even when one fails: a failure is logged and reported (Sentry, tagged with
 * the task) and the others go on; the next run retries it.
 *
 * @param now the sweep's clock: the cron's scheduled time (tests pass later times to play a
 *   series of sweeps).
 */
export async function runHousekeeping(
  env: Bindings,
  logger: Logger,
  now = Date.now(),
  waitUntil?: (p: Promise<unknown>) => void,
): Promise<void> {
  const task = async <T>(name: string, work: () => Promise<T>): Promise<T | null> => {
    try {
      return await work();
    } catch (err) {
      logger.error("housekeeping task failed", { task: name, ...describeError(err) });
      reportError(env, err, { tags: { cron: "housekeeping", task: name } }, waitUntil);
      return null;
    }
  };
  // API.md §2.2: a request never stays pending/processing after its job is gone.
  const stuck = await task("stuck_requests", () => sweepStuckRequests(env, logger, now));
  await task("expired_tokens", () => purgeExpiredTokens(env));
  // Issue 13: stored Idempotency-Key answers past their 24 h.
  const idempotencyKeys = await task("expired_idempotency_keys", () => purgeExpiredIdempotencyKeys(env, now));
  // The email webhook's processed ids, once no replay of theirs could pass the signature check.
  const webhookIds = await task("email_webhook_events", () => purgeWebhookEvents(env, now));
  const reminders = await task("care_reminders", () => deliverDueReminders(env, logger));
  // Issue 9: scheduled blog posts whose time has come, each published by exactly one run.
  const published = await task("scheduled_blog_posts", () => publishScheduledPosts(env, now));
  const starting = await task("calendar_events_starting", () => notifyStartingEvents(env, now, logger));
  // Issue 10: email and push deliveries that never reached the queue or whose consumer died, then
  // the digests whose period began.
  const requeued = await task("notification_deliveries", () => requeueStale(env, now));
  const digests = await task("notification_digests", () => gatherDigests(env, now));
  // The in-app list's keeping: read notifications 90 days, unread a year.
  const oldNotifications = await task("notification_retention", () => purgeOldNotifications(env, now));
  // Issue 11: community votes of accounts whose age made them count since the last runs, recounted.
  const aged = await task("community_aged_accounts", () => recountAgedAccounts(env, now, logger));
  // Issue 11: the calibration maps, refitted daily from community-confirmed requests.
  const calibration = await task("calibration_fit", () => scheduledCalibrationFit(env, now));
  // A rotation of JWT_SECRET: two-factor secrets sealed under a previous one, sealed again, every
  // run while JWT_SECRET_PREVIOUS is set; else hourly (each run reads the whole table), which still
  // names secrets no accepted one opens (after a leaked secret was replaced without listing it).
  const config = getConfig(env);
  const rotating = config.JWT_SECRET_PREVIOUS.length > 0;
  const rotation =
    rotating || new Date(now).getUTCMinutes() < 5
      ? await task("two_factor_reseal", () => resealTwoFactorSecrets(env, config, logger))
      : null;
  if (rotating) {
    const feeds = await task("calendar_feeds_under_previous_secret", () => feedsPolledUnderPreviousSecret(env, now));
    logger.info("JWT_SECRET_PREVIOUS is set", {
      previous_secrets: config.JWT_SECRET_PREVIOUS.length,
      calendar_feeds_polled_under_previous_secret: feeds,
      two_factor_secrets_left: rotation?.secretsLeft ?? null,
      two_factor_recovery_code_sets_left: rotation?.recoveryCodeSetsLeft ?? null,
      advice:
        "Unsubscribe links (90 days) and calendar-feed URLs signed under a previous secret work only while it is listed (calendar_feeds_polled_under_previous_secret: subscriptions polled this week that would then answer 404); two-factor secrets need it until two_factor_secrets_left is 0, recovery codes made before the rotation until two_factor_recovery_code_sets_left is 0 (their owners replace them) or you accept losing them. README: Rotating JWT_SECRET.",
    });
  }
  logger.info("housekeeping", {
    calibration_versions: calibration?.map((r) => `${r.provider}:${r.version ?? "raw"}`).join(",") ?? null,
    calendar_starting_notifications: starting,
    community_aged_accounts_recounted: aged,
    idempotency_keys_purged: idempotencyKeys,
    email_webhook_ids_purged: webhookIds,
    notification_deliveries_requeued: requeued,
    notification_digests_queued: digests,
    notifications_purged: oldNotifications,
    stuck_requests_requeued: stuck?.requeued ?? null,
    stuck_requests_failed: stuck?.failed ?? null,
    reminder_notifications: reminders,
    blog_posts_published: published?.length ?? null,
    two_factor_secrets_resealed: rotation?.resealed ?? null,
    two_factor_secrets_unreadable: rotation?.unreadable ?? null,
  });
}
