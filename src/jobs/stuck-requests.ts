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
import { and, asc, inArray, isNull, lt, or, sql } from "drizzle-orm";
import { database, sqlNow } from "../db/client";
import type { identificationRequests } from "../db/schema";
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import { progress, publish } from "../services/progress";
import { announceNotifications } from "../services/notifications";
import {
  ENDED,
  failureNotices,
  REQUEST_KINDS,
  type RequestJob,
  type RequestKind,
  stuckCondition,
  tellSocketsFailed,
} from "../services/queued-requests";
import { isoIn } from "./job-policy";
import { DAY_MS } from "../lib/durations";

/** After this many sweeps re-queued a request (its message lost each time), it fails instead. */
export const MAX_REQUEUES = 3;
/** A request this old is not worth re-running: the owner has long moved on; it fails. */
export const MAX_REQUEST_AGE_MS = DAY_MS;
/** Requests moved per table per sweep (Queues' sendBatch takes at most 100 messages). */
const SWEEP_BATCH = 100;
export const STUCK_MESSAGE = "Processing timed out. Please retry.";

export interface SweepResult {
  requeued: number;
  failed: number;
}

export async function sweepStuckRequests(env: Bindings, logger?: Logger, now = Date.now()): Promise<SweepResult> {
  const total: SweepResult = { requeued: 0, failed: 0 };
  for (const kind of REQUEST_KINDS) {
    const { requeued, failed } = await sweepKind(env, kind, logger, now);
    total.requeued += requeued;
    total.failed += failed;
  }
  return total;
}

async function sweepKind(env: Bindings, kind: RequestKind, logger: Logger | undefined, now: number): Promise<SweepResult> {
  const db = database(env);
  // Both kinds share the lifecycle columns (services/queued-requests.ts).
  const t = kind.table as typeof identificationRequests;
  const stuck = stuckCondition(kind, now);
  const tooOld = new Date(now - MAX_REQUEST_AGE_MS).toISOString();

  // Give up on the ones re-queued too often, too old, or without an owner to run them for.
  // Their owners' notifications go in the same batch, selected by the same condition before the
  // UPDATE, so a crash cannot fail a request without telling its owner.
  const giveUp = and(stuck, or(sql`${t.requeueCount} >= ${MAX_REQUEUES}`, lt(t.createdAt, tooOld), isNull(t.userId)))!;
  const [notices, failed] = await db.batch([
    failureNotices(db, kind, giveUp, STUCK_MESSAGE),
    db
      .update(t)
      .set({ status: "failed", errorMessage: STUCK_MESSAGE, ...ENDED })
      .where(giveUp)
      .returning({ id: t.id, userId: t.userId, run: t.run }),
  ]);
  await Promise.all(failed.filter((r) => r.userId).map((r) => tellSocketsFailed(env, r.userId!, r.id, r.run, STUCK_MESSAGE, logger)));
  await announceNotifications(env, notices, logger);

  // Re-queue the rest (oldest first, bounded): pending again, deliverable now.
  const oldest = db.select({ id: t.id }).from(t).where(stuck).orderBy(asc(t.createdAt)).limit(SWEEP_BATCH);
  const requeued = await db
    .update(t)
    .set({ status: "pending", requeueCount: sql`${t.requeueCount} + 1`, leaseExpiresAt: isoIn(0, now), updatedAt: sqlNow })
    .where(and(inArray(t.id, oldest), stuck))
    .returning({ id: t.id, userId: t.userId, requeueCount: t.requeueCount, run: t.run });
  if (requeued.length > 0) {
    // `queued` first, so the job's first stage can never overtake it (as at upload). It belongs
    // to the run the request is in: it starts that run's story again, and keeps the hub knowing
    // the run, so an earlier run's late message is still dropped after it.
    await Promise.all(
      requeued.map((r) =>
        publish(
          env,
          r.userId!,
          { ...progress(r.id, "queued", "pending", { requeued: true, requeue_count: r.requeueCount }), run: r.run },
          logger,
        ),
      ),
    );
    try {
      await env.IDENTIFY_QUEUE.sendBatch(
        requeued.map((r) => ({
          body: { type: kind.job, request_id: r.id, user_id: r.userId!, run: r.run } satisfies RequestJob,
          contentType: "json" as const,
        })),
      );
    } catch (err) {
      // They stay pending with a deadline of now: the next sweep after the margin tries again,
      // and the count already taken bounds how often.
      logger?.error("re-queue failed", { kind: kind.job, count: requeued.length, error: String(err) });
    }
    logger?.warn("re-queued requests whose queue message was lost", { kind: kind.job, ids: requeued.map((r) => r.id) });
  }
  return { requeued: requeued.length, failed: failed.length };
}
