/**
 * Jobs never stick. A queued request (identification or diagnosis) can be left `pending` or
 * `processing` with no live queue message: a lost delivery, a crash between a status update and
 * the send, a restart of the local stack that dropped in-flight messages. Nothing in the queue
 * will ever move it again, so the cron sweep does.
 *
 * "No live message" is judged from the request's own deadline (migration 0012,
 * `lease_expires_at`, falling back to `updated_at`): for `pending`, when its message becomes
 * deliverable (the send, plus any retry delay); for `processing`, when the consumer's lease runs
 * out (JOB_LEASE_MS). A request whose deadline passed more than STUCK_MARGIN_MS ago (twice the
 * longest delay any message gets) is stuck. It is re-queued — status `pending`, a fresh deadline,
 * `requeue_count + 1`, a new message — unless it was already re-queued MAX_REQUEUES times or was
 * created more than MAX_REQUEST_AGE_MS ago: then it fails and its owner is told (`error` then
 * `completed` on their hub, as the dead-letter path does).
 *
 * Should the old message turn up after all, the consumer's claim is exclusive (one delivery per
 * lease) and completion is guarded by the status, so nothing is written twice. Each request is
 * moved by one conditional UPDATE … RETURNING, so two overlapping sweeps never both re-queue it.
 */
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import { progress, publish } from "../services/progress";
import type { DiagnoseJob } from "./diagnose-consumer";
import type { IdentifyJob } from "./identify-consumer";
import { isoIn, STUCK_CONDITION, stuckCutoff } from "./job-policy";

/** After this many sweeps re-queued a request (its message lost each time), it fails instead. */
export const MAX_REQUEUES = 3;
/** A request this old is not worth re-running: the owner has long moved on; it fails. */
export const MAX_REQUEST_AGE_MS = 24 * 60 * 60 * 1000;
/** Requests moved per table per sweep (Queues' sendBatch takes at most 100 messages). */
const SWEEP_BATCH = 100;
export const STUCK_MESSAGE = "Processing timed out. Please retry.";

const NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

interface Table {
  name: "identification_requests" | "disease_requests";
  job: (row: { id: string; user_id: string }) => IdentifyJob | DiagnoseJob;
}

const TABLES: Table[] = [
  { name: "identification_requests", job: (r) => ({ type: "identify", request_id: r.id, user_id: r.user_id }) },
  { name: "disease_requests", job: (r) => ({ type: "diagnose", request_id: r.id, user_id: r.user_id }) },
];

export interface SweepResult {
  requeued: number;
  failed: number;
}

export async function sweepStuckRequests(env: Bindings, logger?: Logger, now = Date.now()): Promise<SweepResult> {
  const total: SweepResult = { requeued: 0, failed: 0 };
  for (const table of TABLES) {
    const { requeued, failed } = await sweepTable(env, table, logger, now);
    total.requeued += requeued;
    total.failed += failed;
  }
  return total;
}

async function sweepTable(env: Bindings, table: Table, logger: Logger | undefined, now: number): Promise<SweepResult> {
  const cutoff = stuckCutoff(now);
  const tooOld = new Date(now - MAX_REQUEST_AGE_MS).toISOString();

  // Give up on the ones re-queued too often, too old, or without an owner to run them for.
  const { results: failed } = await env.DB.prepare(
    `UPDATE ${table.name}
        SET status = 'failed', error_message = ?, lease_expires_at = NULL, processed_at = ${NOW}, updated_at = ${NOW}
      WHERE ${STUCK_CONDITION} AND (requeue_count >= ? OR created_at < ? OR user_id IS NULL)
      RETURNING id, user_id`,
  )
    .bind(STUCK_MESSAGE, cutoff, MAX_REQUEUES, tooOld)
    .all<{ id: string; user_id: string | null }>();
  await Promise.all(
    failed
      .filter((r) => r.user_id)
      .map(async (r) => {
        await publish(env, r.user_id!, { type: "error", request_id: r.id, message: STUCK_MESSAGE }, logger);
        await publish(env, r.user_id!, { type: "completed", request_id: r.id, status: "failed", results_count: 0 }, logger);
      }),
  );

  // Re-queue the rest (oldest first, bounded): pending again, deliverable now.
  const { results: requeued } = await env.DB.prepare(
    `UPDATE ${table.name}
        SET status = 'pending', requeue_count = requeue_count + 1, lease_expires_at = ?, updated_at = ${NOW}
      WHERE id IN (SELECT id FROM ${table.name} WHERE ${STUCK_CONDITION} ORDER BY created_at LIMIT ${SWEEP_BATCH})
        AND ${STUCK_CONDITION}
      RETURNING id, user_id, requeue_count`,
  )
    .bind(isoIn(0, now), cutoff, cutoff)
    .all<{ id: string; user_id: string; requeue_count: number }>();
  if (requeued.length > 0) {
    // `queued` first, so the job's first stage can never overtake it (as at upload).
    await Promise.all(
      requeued.map((r) =>
        publish(env, r.user_id, progress(r.id, "queued", "pending", { requeued: true, requeue_count: r.requeue_count }), logger),
      ),
    );
    try {
      await env.IDENTIFY_QUEUE.sendBatch(requeued.map((r) => ({ body: table.job(r), contentType: "json" as const })));
    } catch (err) {
      // They stay pending with a deadline of now: the next sweep after the margin tries again,
      // and the count already taken bounds how often.
      logger?.error("re-queue failed", { table: table.name, count: requeued.length, error: String(err) });
    }
    logger?.warn("re-queued requests whose queue message was lost", { table: table.name, ids: requeued.map((r) => r.id) });
  }
  return { requeued: requeued.length, failed: failed.length };
}
