/**
 * Live progress to a user's UserHub Durable Object (API.md §3). Best effort: a hub that
 * cannot be reached must never fail or slow an identification job beyond one RPC.
 */
import type {
  CompletedMessage,
  HubMessage,
  NotificationPayload,
  ProgressData,
  ProgressMessage,
  ProgressStage,
} from "../../durable-objects/user-hub-protocol";
import type { Bindings } from "../env";
import { withinDeadline } from "../lib/deadline";
import type { Logger } from "../lib/logger";

export function userHub(env: Bindings, userId: string) {
  return env.USER_HUB.get(env.USER_HUB.idFromName(userId));
}

/**
 * How long one hub call may take before it is given up (logged, its messages dropped). Durable
 * Object RPC has no deadline of its own, and a hub that never answers must not hold a job's final
 * flush, or a request's answer, until the runtime's limits end it.
 */
export const HUB_CALL_TIMEOUT_MS = 5_000;

/**
 * A hub call with a deadline on both ends: the caller stops waiting after `ms`, and a hub that
 * runs the call after that moment (`notAfter`) keeps only its `completed`, so a stale stage or
 * `queued` cannot land after what was said next (UserHub.publishAll). `-1` from the hub: the
 * call came too late.
 */
async function hubCall(call: (notAfter: number) => Promise<number>, ms: number): Promise<void> {
  const delivered = await withinDeadline(call(Date.now() + ms), ms, "user hub");
  if (delivered < 0) throw new Error(`user hub ran the call after its ${ms} ms deadline; only a completed in it was kept`);
}

/**
 * A request's message as told outside its job's channel (`queued`, a failure, a retold end):
 * tagged with the run it belongs to, as the job's own are, so the hub drops it once a later run
 * began (UserHub.record).
 */
export type RunMessage = HubMessage & { run: number };

export async function publish(env: Bindings, userId: string, message: RunMessage, logger?: Logger): Promise<void> {
  try {
    await hubCall((notAfter) => userHub(env, userId).publish(message, notAfter), HUB_CALL_TIMEOUT_MS);
  } catch (err) {
    logger?.warn("progress publish failed", { user_id: userId, request_id: message.request_id, error: String(err) });
  }
}

/**
 * A redelivered job's `completed` for a request final in D1 (UserHub.retellCompleted): `read`
 * gives the message, from D1, after the hub's mark for the request was taken, so a run started
 * meanwhile is never told this older end. Best effort, like `publish`: a failure is logged.
 * Returns how many sockets heard it now (0: dropped, held until the request goes quiet, or
 * nothing to tell).
 */
export async function retellCompleted(
  env: Bindings,
  userId: string,
  requestId: string,
  read: () => Promise<(CompletedMessage & { run: number }) | null>,
  logger?: Logger,
): Promise<number> {
  try {
    const hub = userHub(env, userId);
    const mark = await withinDeadline(hub.requestMark(requestId), HUB_CALL_TIMEOUT_MS, "user hub");
    const message = await read();
    if (!message) return 0;
    return await withinDeadline(hub.retellCompleted(message, mark), HUB_CALL_TIMEOUT_MS, "user hub");
  } catch (err) {
    logger?.warn("retelling a completion failed", { user_id: userId, request_id: requestId, error: String(err) });
    return 0;
  }
}

/** Says messages to one user's hub in order; `flush()` resolves once everything said so far was sent. */
export interface ProgressChannel {
  (message: HubMessage): Promise<void>;
  flush(): Promise<void>;
}

/**
 * A job's messages to its owner's hub, in order, without the job waiting for each: saying
 * resolves at once, and messages said while a call is in flight go together in the next one
 * (`publishAll`). A job of ~11 messages makes 2–4 hub calls instead of 11 sequential ones.
 * Best effort, like `publish`: a failed call, or one unanswered after `deadlineMs`, is logged and
 * its messages dropped (the hub drops them too, all but a `completed`, if the call reaches it
 * later); later messages still go. The job flushes
 * before it ends, and before anything else tells the owner about the request. `waitUntil` keeps
 * the sending alive past a job that crashes after saying something.
 */
export function progressChannel(
  env: Bindings,
  userId: string,
  logger?: Logger,
  {
    waitUntil,
    deadlineMs = HUB_CALL_TIMEOUT_MS,
    run,
  }: {
    waitUntil?: (promise: Promise<unknown>) => void;
    deadlineMs?: number;
    /** The request's run (its row's `run`): every message said is tagged with it (UserHub drops an earlier run's). */
    run?: number;
  } = {},
): ProgressChannel {
  let pending: HubMessage[] = [];
  let sending: Promise<void> | null = null;
  const pump = async () => {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        await hubCall((notAfter) => userHub(env, userId).publishAll(batch, notAfter), deadlineMs);
      } catch (err) {
        logger?.warn("progress publish failed", {
          user_id: userId,
          request_id: batch[0]?.request_id,
          count: batch.length,
          error: String(err),
        });
      }
    }
    sending = null;
  };
  const say = ((message: HubMessage) => {
    pending.push(run === undefined ? message : { ...message, run });
    if (!sending) {
      sending = pump();
      waitUntil?.(sending);
    }
    return Promise.resolve();
  }) as ProgressChannel;
  say.flush = () => sending ?? Promise.resolve();
  return say;
}

/** A progress message; `data` must have the shape the protocol declares for `stage`. */
export function progress<S extends ProgressStage>(
  requestId: string,
  stage: S,
  status: ProgressMessage["status"],
  data: ProgressData<S>,
): ProgressMessage {
  // TypeScript cannot correlate the generic stage with its data across the union; the signature does.
  return { type: "progress", request_id: requestId, stage, status, data } as ProgressMessage;
}

/** Removed notifications' ids to the user's `/ws/` sockets. Best effort, like progress. */
export async function withdrawFromUser(env: Bindings, userId: string, ids: string[], logger?: Logger): Promise<void> {
  try {
    await withinDeadline(userHub(env, userId).withdraw(ids), HUB_CALL_TIMEOUT_MS, "user hub");
  } catch (err) {
    logger?.warn("notification withdrawal push failed", { user_id: userId, count: ids.length, error: String(err) });
  }
}

/** New notifications (`updated`: new versions of ones sent before) to the user's `/ws/` sockets. Best effort, like progress. */
export async function notifyUser(
  env: Bindings,
  userId: string,
  notifications: NotificationPayload[],
  logger?: Logger,
  updated = false,
): Promise<void> {
  try {
    await withinDeadline(userHub(env, userId).notify(notifications, updated), HUB_CALL_TIMEOUT_MS, "user hub");
  } catch (err) {
    logger?.warn("notification push failed", { user_id: userId, count: notifications.length, error: String(err) });
  }
}
