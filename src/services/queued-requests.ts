/**
 * The queued-request lifecycle, one for both kinds of request that run as a queue job:
 * identification (`identification_requests`, job `identify`) and diagnosis (`disease_requests`,
 * job `diagnose`). Each kind is a small descriptor; everything else is shared:
 *
 *   submit ─ photos stored, row inserted `pending`, `queued` told, job sent (or failed at once)
 *   claim ── `pending` → `processing` with a lease (JOB_LEASE_MS), one more attempt
 *   release  `processing` → `pending` until the retry message is deliverable
 *   complete the kind's own (services/identification-requests.ts, services/diseases.ts)
 *   fail ─── `pending`/`processing` → `failed` (job gave up, dead letter, queue refused)
 *   retry ── the owner re-queues a failed, needs-help or lost request
 *   delete ─ the owner deletes it: photos released, sockets closed
 *   sweep ── a request whose message was lost is re-queued or failed (jobs/stuck-requests.ts)
 *
 * Every transition is one conditional UPDATE … RETURNING, so of several deliveries of one job
 * exactly one does the work, and a final request is never moved again.
 */
import { and, desc, eq, inArray, isNull, lt, lte, or, type SQL, sql } from "drizzle-orm";
import { CLOSE_CODES, type CompletedMessage, FinalStatus } from "../../durable-objects/user-hub-protocol";
import { batchRows, changes, type Database, database, runBatch, type Statement, sqlNow, tableRows } from "../db/client";
import { type Page, type PageRequest, tablePage } from "../db/pagination";
import { diseaseRequests, diseaseResults, identificationRequests, identificationResults, notifications } from "../db/schema";
import type { Bindings } from "../env";
import { isoIn, JOB_LEASE_MS, type JobCounters, type JobKind, stuckCutoff } from "../jobs/job-policy";
import { AppError } from "../lib/errors";
import { apiFields } from "../lib/fields";
import { uuidv7 } from "../lib/ids";
import type { Logger } from "../lib/logger";
import { StageTimer } from "../lib/server-timing";
import { imageUrl, photoRef, photosOf, releasePhotos, type StoredImage, type storeImages, withStoredPhotos } from "./photos";
import { queuedDeliveriesQuery, queuedDeliveryIds } from "./notification-delivery";
import { announceNotifications, insertNotifications, type Notification } from "./notifications";
import { progress, publish, retellCompleted, userHub } from "./progress";
import { refundingOnFailure, spendIdentifyBudget } from "./rate-limits";

export type RequestStatus = (typeof identificationRequests.$inferSelect)["status"];

type RequestTable = typeof identificationRequests | typeof diseaseRequests;

export interface RequestKind<T extends RequestTable = RequestTable> {
  table: T;
  /** The queue message's `type`. */
  job: "identify" | "diagnose";
  /** How messages to the user name it. */
  noun: "identification" | "diagnosis";
  /** The 404 message for someone else's, or a missing, request. */
  notFound: string;
  /** Where its job's results go (one row per suggestion, `request_id` → the request). */
  results: typeof identificationResults | typeof diseaseResults;
}

export const IdentificationRequests: RequestKind<typeof identificationRequests> & { job: "identify" } = {
  table: identificationRequests,
  job: "identify",
  noun: "identification",
  notFound: "Identification request not found.",
  results: identificationResults,
};

export const DiseaseRequests: RequestKind<typeof diseaseRequests> & { job: "diagnose" } = {
  table: diseaseRequests,
  job: "diagnose",
  noun: "diagnosis",
  notFound: "Disease request not found.",
  results: diseaseResults,
};

export const REQUEST_KINDS: readonly RequestKind[] = [IdentificationRequests, DiseaseRequests];

export type IdentificationRequestRow = typeof identificationRequests.$inferSelect;
export type DiseaseRequestRow = typeof diseaseRequests.$inferSelect;
type RowOf<T extends RequestTable> = T["$inferSelect"];

/** The queue message of a request's job. */
export interface RequestJob<Type extends RequestKind["job"] = RequestKind["job"]> extends JobCounters {
  type: Type;
  request_id: string;
  user_id: string;
  /** The request's run the job was queued for (absent on messages queued before runs were sent). */
  run?: number;
}

/**
 * Both tables carry the lifecycle columns with the same types (checked below); the shared
 * statements are written against them once, through this view of the kind's table.
 */
function lifecycle(kind: RequestKind): typeof identificationRequests {
  return kind.table as typeof identificationRequests;
}
type LifecycleColumns =
  | "id"
  | "status"
  | "imageHashes"
  | "attempts"
  | "leaseExpiresAt"
  | "requeueCount"
  | "run"
  | "claimToken"
  | "errorMessage"
  | "processedAt";
const _sameLifecycle: Pick<DiseaseRequestRow, LifecycleColumns> = {} as Pick<IdentificationRequestRow, LifecycleColumns>;
void _sameLifecycle;

/** The request's photos, in upload order. */
export function requestPhotos(row: { imageHashes: string[] }): StoredImage[] {
  return photosOf(row.imageHashes);
}

/** Its photos as the API shows them. */
export function requestImagesBody(row: { imageHashes: string[] }) {
  return requestPhotos(row).map((img) => ({ url: imageUrl(img) }));
}

/** Where the request's progress is streamed (API.md §2.3). */
export function requestWsUrl(id: string): string {
  return `/ws/plant-identification/requests/${id}/`;
}

/** The fields every request's body has, whatever its kind; each kind adds its own. */
export function queuedRequestBody(row: IdentificationRequestRow | DiseaseRequestRow) {
  return {
    request_id: row.id,
    status: row.status,
    ws_url: requestWsUrl(row.id),
    images: requestImagesBody(row),
    ...apiFields(row, "attempts errorMessage createdAt updatedAt processedAt"),
  };
}

export async function getRequest<T extends RequestTable>(env: Bindings, kind: RequestKind<T>, id: string): Promise<RowOf<T> | undefined> {
  const t = lifecycle(kind);
  return (await database(env).select().from(t).where(eq(t.id, id)).get()) as RowOf<T> | undefined;
}

/** The caller's own request, or 404 (also for other users' requests: no existence leak). */
export async function ownRequest<T extends RequestTable>(
  env: Bindings,
  kind: RequestKind<T>,
  userId: string,
  id: string,
): Promise<RowOf<T>> {
  const row = await getRequest(env, kind, id);
  if (!row || row.userId !== userId) throw new AppError("NOT_FOUND", 404, kind.notFound);
  return row;
}

/** A page of the user's own requests, newest first, optionally of one status. */
export function listOwnRequests<T extends RequestTable>(
  env: Bindings,
  kind: RequestKind<T>,
  userId: string,
  status: RequestStatus | undefined,
  page: PageRequest,
): Promise<Page<RowOf<T>>> {
  const t = lifecycle(kind);
  const where = and(eq(t.userId, userId), status ? eq(t.status, status) : undefined);
  return tablePage(database(env), t, where, [desc(t.createdAt), desc(t.id)], page) as Promise<Page<RowOf<T>>>;
}

/**
 * A new request: its photos stored (content-addressed), its row inserted with `values`, its job
 * queued. The caller spends the submitter's budget first (`withRequestBudget`), before the
 * upload is even read, and gives it back when this or the upload fails (`refundingOnFailure`).
 */
export async function submitRequest<T extends RequestTable>(
  env: Bindings,
  kind: RequestKind<T>,
  userId: string,
  photos: readonly Parameters<typeof storeImages>[1][number][],
  values: Omit<T["$inferInsert"], "id" | "userId" | "imageHashes">,
  logger: Logger,
  timer = new StageTimer(),
): Promise<RowOf<T>> {
  const t = lifecycle(kind);
  // The photo store's store-or-undo: a failed insert leaves no photo behind. (`store` includes `record`.)
  const row = (await timer.time(
    "store",
    withStoredPhotos(env, userId, photos, () =>
      timer.time(
        "record",
        database(env)
          .insert(t)
          .values({ ...(values as object), id: uuidv7(), userId, imageHashes: photos.map(photoRef) } as typeof t.$inferInsert)
          .returning()
          .get(),
      ),
    ),
  )) as RowOf<T>;
  await timer.time("queue", enqueueRequestJob(env, kind, row.id, userId, logger, row.run));
  return row;
}

/**
 * Identification and diagnosis share one budget of Plant.id calls per user, and one per client
 * address that every account from it shares (`spendIdentifyBudget`; 429 when either is spent). It
 * pays for a queued job: the refund gives it back when none is queued after all (an upload
 * refused, a request that cannot be retried, the queue down). Runs `work` (which queues a job) on
 * one of that budget, given back when it throws.
 */
export async function withRequestBudget<R>(
  env: Bindings,
  caller: { userId: string; address: string },
  logger: Logger,
  timer: StageTimer,
  work: () => Promise<R>,
): Promise<R> {
  return refundingOnFailure(await timer.time("limit", spendIdentifyBudget(env, caller, logger)), work);
}

/**
 * `queued` goes to the owner's sockets before the send, so a fast consumer's first stage can
 * never overtake it. If the queue refuses the job, the request is failed at once (never left
 * pending with no job behind it), the sockets hear so, and the caller gets 503 with Retry-After.
 */
export async function enqueueRequestJob(
  env: Bindings,
  kind: RequestKind,
  requestId: string,
  userId: string,
  logger: Logger,
  /** The request's run (its row's `run`), which `queued` starts. */
  run: number,
): Promise<void> {
  const job: RequestJob = { type: kind.job, request_id: requestId, user_id: userId, run };
  await publish(env, userId, { ...progress(requestId, "queued", "pending", {}), run }, logger);
  try {
    await env.IDENTIFY_QUEUE.send(job, { contentType: "json" });
  } catch (err) {
    logger.error("enqueue failed", { request_id: requestId, error: String(err) });
    const message = `Could not queue the ${kind.noun}. Please retry.`;
    const { failedRun, notices } = await failRequest(env, kind, requestId, message);
    if (failedRun !== null) await tellFailed(env, userId, requestId, failedRun, message, notices, logger);
    throw new AppError("QUEUE_UNAVAILABLE", 503, `Could not queue the ${kind.noun} right now. Please retry in a moment.`, undefined, {
      "Retry-After": "10",
    });
  }
}

/**
 * The owner hears that the request failed: their sockets get `error`, then the final `completed`,
 * and `notices` (the failure notification the failing write's batch stored: `failureNotices`)
 * are pushed live and their email and push queued. `run`: the run the failing write ended.
 */
export async function tellFailed(
  env: Bindings,
  userId: string,
  requestId: string,
  run: number,
  message: string,
  notices: Notification[],
  logger?: Logger,
): Promise<void> {
  await tellSocketsFailed(env, userId, requestId, run, message, logger);
  await announceNotifications(env, notices, logger);
}

/**
 * The owner's sockets get `error`, then the final `completed` with status `failed`, both of `run`
 * (the run the failing write ended): should the owner's retry begin the next run before they
 * reach the hub, they are dropped there rather than end the new run on the owner's screen.
 */
export async function tellSocketsFailed(
  env: Bindings,
  userId: string,
  requestId: string,
  run: number,
  message: string,
  logger?: Logger,
): Promise<void> {
  await publish(env, userId, { type: "error", request_id: requestId, message, run }, logger);
  await publish(env, userId, { type: "completed", request_id: requestId, status: "failed", results_count: 0, run }, logger);
}

/**
 * The owners' "failed" notifications for the requests of `kind` that `open` selects, as a
 * statement for the batch that fails them, placed before its UPDATE (so both see the same rows):
 * stored in the same transaction as the failure, so no crash between the two can lose it, and
 * once per run (its dedupe key names the run), whichever path failed it.
 */
export function failureNotices(db: Database, kind: RequestKind, open: SQL, message: string) {
  const t = lifecycle(kind);
  return insertNotifications(
    db,
    "identification_failed",
    {
      userId: sql`${t.userId}`,
      title: sql`${kind.noun === "diagnosis" ? "Your plant health check failed" : "Your identification failed"}`,
      body: sql`${message}`,
      data: sql`json_object('request_id', ${t.id}, 'kind', ${kind.noun}, 'message', ${message})`,
      dedupeKey: sql`'identification_failed:' || ${t.id} || ':' || ${t.run}`,
      createdAt: new Date().toISOString(),
    },
    // The row exists only while the user does (a request may outlive a deleted account).
    sql`FROM ${t} JOIN users u ON u.id = ${t.userId} WHERE ${open}`,
  );
}

/**
 * The dedupe key of a request's "ready" notification: once per run (its owner's retry starts
 * another, which is told again; a redelivery of the same run is not). Failures are keyed the
 * same way (`failureNotices`).
 */
function completionDedupeKey(kind: RequestKind, requestId: string) {
  const t = lifecycle(kind);
  return sql`'identification_completed:' || ${requestId} || ':' || (SELECT ${t.run} FROM ${t} WHERE ${t.id} = ${requestId})`;
}

/**
 * The owner's "ready" notification, as a statement for the completion's own batch, after its
 * results and before its status change: written only while the request is still `processing`
 * (so only by the batch that completes it) and its owner exists, in the same transaction as the
 * results, so a job that dies after completing cannot lose it (a redelivery finds the request
 * final and writes nothing: it only says `completed` again, `retellFinalState`). Its text counts the results the batch left; once per run (its
 * dedupe key).
 */
function completionNotice(db: Database, kind: RequestKind, requestId: string, userId: string) {
  const r = kind.results as typeof identificationResults;
  const t = lifecycle(kind);
  const n = sql`(SELECT count(*) FROM ${r} WHERE ${r.requestId} = ${requestId})`;
  return insertNotifications(
    db,
    "identification_completed",
    {
      userId: sql`${userId}`,
      title: sql`${`Your ${kind.noun === "diagnosis" ? "plant health check" : "identification"} is ready`}`,
      body: sql`CASE ${n} WHEN 0 THEN 'No match was found this time.' WHEN 1 THEN '1 suggestion to look at.'
        ELSE ${n} || ' suggestions to look at.' END`,
      data: sql`json_object('request_id', ${requestId}, 'kind', ${kind.noun}, 'results_count', ${n})`,
      dedupeKey: completionDedupeKey(kind, requestId),
      createdAt: new Date().toISOString(),
    },
    // The row exists only while the user does (a request may outlive a deleted account).
    sql`FROM users u WHERE u.id = ${userId} AND EXISTS (SELECT 1 FROM ${t} WHERE ${t.id} = ${requestId} AND ${t.status} = 'processing')`,
  );
}

/**
 * Claims the requests of one queue batch's jobs for one run each, in one round trip: `pending` →
 * `processing` with a lease of JOB_LEASE_MS (and one more attempt). A request already
 * `processing` is claimed only when its lease has run out (the delivery holding it died). Each
 * id's claim is its own statement of one D1 batch, answered in order: undefined where it found
 * nothing to take (the lease is live, or the request is final or deleted), and the job acks
 * without work. An id given twice is claimed once, by its first statement.
 */
export async function claimRequests<T extends RequestTable>(
  env: Bindings,
  kind: RequestKind<T>,
  ids: readonly string[],
  /** Each claim's token (the delivery's own; the row keeps it, and only it releases the claim). */
  tokens: readonly string[] = ids.map(() => crypto.randomUUID()),
  now = Date.now(),
): Promise<(RowOf<T> | undefined)[]> {
  const [first, ...rest] = ids;
  if (first === undefined) return [];
  const db = database(env);
  const claim = (id: string, i: number) => claimStatement(db, kind, id, tokens[i]!, now);
  const results = await db.batch([claim(first, 0), ...rest.map((id, i) => claim(id, i + 1))]);
  return results.map((rows) => (rows as RowOf<T>[])[0]);
}

function claimStatement(db: Database, kind: RequestKind, id: string, token: string, now: number) {
  const t = lifecycle(kind);
  const leaseOver = or(isNull(t.leaseExpiresAt), lte(t.leaseExpiresAt, isoIn(0, now)));
  return db
    .update(t)
    .set({
      status: "processing",
      attempts: sql`${t.attempts} + 1`,
      leaseExpiresAt: isoIn(JOB_LEASE_MS, now),
      claimToken: token,
      updatedAt: sqlNow,
    })
    .where(and(eq(t.id, id), or(eq(t.status, "pending"), and(eq(t.status, "processing"), leaseOver))))
    .returning();
}

/**
 * Between attempts a request waits in `pending`, never `processing`; its deadline becomes the
 * moment its retry message is deliverable, so the sweep does not take it for lost meanwhile.
 * Only the delivery holding the claim releases it: `token` is the one its claim wrote, so a
 * duplicate delivery that claimed nothing, or one whose lease ran out and was taken over, cannot
 * put back a request another delivery is running, while a delivery whose claim D1 committed but
 * answered with an error still can.
 */
export async function releaseRequest(
  env: Bindings,
  kind: RequestKind,
  id: string,
  token: string | null,
  delayS: number,
  message: string | null = null,
): Promise<void> {
  if (token === null) return;
  const t = lifecycle(kind);
  await database(env)
    .update(t)
    .set({
      status: "pending",
      errorMessage: sql`coalesce(${message}, ${t.errorMessage})`,
      leaseExpiresAt: isoIn(delayS * 1000),
      updatedAt: sqlNow,
    })
    .where(and(eq(t.id, id), eq(t.status, "processing"), eq(t.claimToken, token)));
}

/**
 * What every write that ends a request (failed, identified, needs_help) sets besides its status:
 * it was processed now, and no delivery holds it any more, so it has no lease (claims, the stuck
 * sweep and the owner's retry look at the lease of `pending`/`processing` requests only).
 */
export const ENDED = { leaseExpiresAt: null, processedAt: sqlNow, updatedAt: sqlNow } as const;

/**
 * Ends a request as failed (job gave up, dead-lettered, queue refused) and stores its owner's
 * notification in the same batch. `failedRun`: the run this write ended (null once the request
 * is final: nothing is written then), which the owner's sockets are told of.
 * `token`: a delivery's own claim token, or null for a caller that holds no claim (the
 * dead-letter queue); the request is then left alone while another delivery holds it
 * (processing under another token, its lease live), which is finishing it, and — when `run`
 * (the job's) is given — once its owner's retry began a later run: that run's own job ends it.
 */
export async function failRequest(
  env: Bindings,
  kind: RequestKind,
  id: string,
  message: string,
  token?: string | null,
  run?: number,
): Promise<{ failedRun: number | null; notices: Notification[] }> {
  const db = database(env);
  const t = lifecycle(kind);
  const notHeldByAnother =
    token === undefined
      ? undefined
      : or(
          eq(t.status, "pending"),
          token === null ? undefined : eq(t.claimToken, token),
          isNull(t.claimToken),
          isNull(t.leaseExpiresAt),
          lte(t.leaseExpiresAt, isoIn(0)),
        );
  // A claim is the request's current run whichever message made it; without one, only the job's.
  const sameRun = token === null && run !== undefined ? eq(t.run, run) : undefined;
  const open = and(eq(t.id, id), inArray(t.status, ["pending", "processing"]), notHeldByAnother, sameRun)!;
  const [notices, result] = await db.batch([
    failureNotices(db, kind, open, message),
    db
      .update(t)
      .set({ status: "failed", errorMessage: message.slice(0, 500), ...ENDED })
      .where(open)
      .returning({ run: t.run }),
  ]);
  return { failedRun: result[0]?.run ?? null, notices };
}

/**
 * A request whose queue message is lost: `pending`/`processing` with its deadline (the lease,
 * else the last update) passed by the sweep's margin.
 */
export function stuckCondition(kind: RequestKind, now = Date.now()): SQL {
  const t = lifecycle(kind);
  return and(inArray(t.status, ["pending", "processing"]), lt(sql`coalesce(${t.leaseExpiresAt}, ${t.updatedAt})`, stuckCutoff(now)))!;
}

/** What the owner's retry/ takes: a `failed` or `needs_help` request, or one whose job was lost. */
function retryableCondition(kind: RequestKind, now: number): SQL {
  return or(inArray(lifecycle(kind).status, ["failed", "needs_help"]), stuckCondition(kind, now))!;
}

function notRetryable(status: string): AppError {
  return new AppError(
    "INVALID_STATE",
    409,
    `Only failed or needs-help requests, or pending/processing ones whose job was lost, can be retried (this one is ${status}).`,
  );
}

/**
 * The owner's retry/ (API.md §2.2, widened): a `failed` or `needs_help` request, or one whose
 * job was lost (stuckCondition) — exactly what the cron sweep would re-queue. A request with a
 * live message or lease is refused with 409, so a retry never races a running job. The sweep's
 * re-queue count starts again: this is the owner's explicit (rate-limited) request. It starts a
 * new run, whose end its owner is told of again.
 */
export async function retryOwnRequest<T extends RequestTable>(
  env: Bindings,
  kind: RequestKind<T>,
  { userId, address }: { userId: string; address: string },
  id: string,
  logger: Logger,
  now = Date.now(),
): Promise<RowOf<T>> {
  const t = lifecycle(kind);
  // The read that finds the request says whether it may be retried (the UPDATE's own condition):
  // one that may not is refused before the budget is spent, without two limiter round trips.
  const before = await database(env)
    .select({ userId: t.userId, status: t.status, retryable: sql<number>`${retryableCondition(kind, now)}` })
    .from(t)
    .where(eq(t.id, id))
    .get();
  if (!before || before.userId !== userId) throw new AppError("NOT_FOUND", 404, kind.notFound);
  if (!before.retryable) throw notRetryable(before.status);
  // The UPDATE holds the condition again (the request may have moved since the read). A retry
  // refused there (409) or whose job the queue refused (503) queued nothing: its budget comes back.
  return refundingOnFailure(await spendIdentifyBudget(env, { userId, address }, logger), async () => {
    const updated = (await database(env)
      .update(t)
      .set({
        status: "pending",
        errorMessage: null,
        leaseExpiresAt: isoIn(0, now),
        requeueCount: 0,
        run: sql`${t.run} + 1`,
        updatedAt: sqlNow,
      })
      .where(and(eq(t.id, id), retryableCondition(kind, now)))
      .returning()
      .get()) as RowOf<T> | undefined;
    if (!updated) throw notRetryable(before.status);
    await enqueueRequestJob(env, kind, id, userId, logger, updated.run);
    return updated;
  });
}

/**
 * The owner deletes a request: its row (results and votes go with it), the photos no other row
 * uses, and its progress sockets (closed with 4404, in the background via `waitUntil`).
 */
export async function deleteOwnRequest(
  env: Bindings,
  kind: RequestKind,
  userId: string,
  id: string,
  waitUntil: (p: Promise<unknown>) => void,
  /** Statements of the kind's own to run in the same batch, before the delete. */
  before: SQL[] = [],
): Promise<void> {
  const row = await ownRequest(env, kind, userId, id);
  const t = lifecycle(kind);
  const db = database(env);
  await runBatch(db, [...before, db.delete(t).where(eq(t.id, id))]);
  await releasePhotos(env, requestPhotos(row));
  waitUntil(
    userHub(env, userId)
      .closeRequest(id, CLOSE_CODES.REQUEST_GONE, "request deleted")
      .catch(() => {}),
  );
}

/**
 * Runs a completion's batch, the same for every kind: the kind's own result writes
 * (`statements`, each guarded by the request still being `processing`), then the owner's "ready"
 * notification when `notify` names them (`completionNotice`), the status change (`statusChange`,
 * conditional on `processing`), and the count of the results the owner is told, all in one
 * transaction. `written`: this batch completed the request (a redelivery's writes nothing).
 */
export async function runCompletion(
  db: Database,
  kind: RequestKind,
  requestId: string,
  statements: (Statement | SQL)[],
  statusChange: Statement,
  notify: string | null,
): Promise<{ written: boolean; results: number; notices: Notification[]; deliveryIds: string[] }> {
  const noticeAt = notify ? statements.push(completionNotice(db, kind, requestId, notify)) - 1 : -1;
  // The notice's email and push deliveries (its insert's triggers wrote them), so queueing them
  // needs no read of its own.
  const deliveriesAt = notify ? statements.push(queuedDeliveriesQuery(db, completionDedupeKey(kind, requestId))) - 1 : -1;
  const updateAt = statements.push(statusChange) - 1;
  const countAt = statements.push(countResultsQuery(db, kind, requestId)) - 1;
  const results = await runBatch(db, statements);
  const notices = noticeAt < 0 ? [] : tableRows(notifications, results[noticeAt]);
  return {
    written: changes(results[updateAt]) > 0,
    results: resultsCounted(results[countAt]),
    notices,
    // Only a batch that wrote the notice queues its deliveries (a redelivery's finds them queued already).
    deliveryIds: notices.length > 0 && deliveriesAt >= 0 ? queuedDeliveryIds(results[deliveriesAt]) : [],
  };
}

/** How many results the request's job left. */
export async function countRequestResults(env: Bindings, kind: RequestKind, requestId: string): Promise<number> {
  return (await countResultsQuery(database(env), kind, requestId).get())?.n ?? 0;
}

/**
 * The count of a request's results: run alone by `countRequestResults`, or as the last statement
 * of a completion's batch, so the count the owner is told comes from the same transaction as the
 * results without a round trip of its own (read that answer with `resultsCounted`).
 */
function countResultsQuery(db: Database, kind: RequestKind, requestId: string) {
  const r = kind.results as typeof identificationResults;
  // Aliased in the SQL itself, so D1's own rows name the column as drizzle's do.
  return db
    .select({ n: sql<number>`count(*)`.as("n") })
    .from(r)
    .where(eq(r.requestId, requestId));
}

/**
 * `countResultsQuery`'s answer in a batch's results: drizzle's rows, or D1's when the batch held
 * raw SQL (`runBatch`); either way the one row's `n`.
 */
function resultsCounted(result: unknown): number {
  const n = batchRows(result)[0]?.n;
  return typeof n === "number" ? n : 0;
}

/**
 * A request of either kind, for following it over a WebSocket (identification and disease
 * request ids never collide): its owner and status, and for a final one the `completed`
 * message the hub would have sent.
 */
export async function requestToFollow(env: Bindings, requestId: string) {
  for (const kind of REQUEST_KINDS) {
    const row = await getRequest(env, kind, requestId);
    if (!row) continue;
    return { userId: row.userId, status: row.status, final: await finalMessage(env, kind, row) };
  }
  return null;
}

/** The `completed` message of a final request, as D1 has it (status and result count); null while it runs. */
async function finalMessage(
  env: Bindings,
  kind: RequestKind,
  row: { id: string; status: string; run: number },
): Promise<(CompletedMessage & { run: number }) | null> {
  const finalStatus = FinalStatus.safeParse(row.status);
  if (!finalStatus.success) return null;
  const results_count = await countRequestResults(env, kind, row.id);
  // Of the run D1 has final: retold late, after the owner's retry began the next, the hub drops it.
  return { type: "completed", request_id: row.id, status: finalStatus.data, results_count, run: row.run };
}

/**
 * A delivery of a job that found nothing to claim. When its request is final, the job that ended
 * it may have died before its owner's sockets heard `completed` (the request, its results and
 * its notification were committed together; the notification's email and push are swept): the
 * owner's sockets that have not heard the end are told it again, as D1 has it — the same message
 * a socket connecting now would get (`requestToFollow`). Nothing else: no provider call, no
 * write, no notification. A request still running (another delivery's lease) or deleted is left
 * alone. Best effort; see UserHub.retellCompleted for who hears it, and when: the hub holds it
 * while the request's progress is still arriving (the job that ended it saying its extras).
 */
export async function retellFinalState(env: Bindings, kind: RequestKind, job: RequestJob, logger?: Logger): Promise<number> {
  return retellCompleted(
    env,
    job.user_id,
    job.request_id,
    async () => {
      const row = await getRequest(env, kind, job.request_id);
      return row && row.userId === job.user_id ? finalMessage(env, kind, row) : null;
    },
    logger,
  );
}

/**
 * The queue side of a request kind: which messages are its jobs, and how a crashed or
 * dead-lettered job puts its request back or ends it. `process` is the kind's own job.
 * `untyped`: messages queued before job kinds existed carry no `type` (identification's).
 */
export function requestJobKind<Type extends RequestKind["job"]>(
  kind: RequestKind & { job: Type },
  job: { process: JobKind<RequestJob<Type>>["process"]; deadLetterMessage: string; untyped?: boolean },
): JobKind<RequestJob<Type>> {
  return {
    name: kind.job,
    matches: (body: unknown): body is RequestJob<Type> => {
      const b = body as Partial<RequestJob> | null;
      return (
        !!b &&
        (b.type === kind.job || (job.untyped === true && b.type === undefined)) &&
        typeof b.request_id === "string" &&
        typeof b.user_id === "string" &&
        (b.run === undefined || Number.isInteger(b.run))
      );
    },
    process: job.process,
    claim: (env, jobs, tokens) =>
      claimRequests(
        env,
        kind,
        jobs.map((j) => j.request_id),
        tokens,
      ),
    release: (env, j, token, delayS) => releaseRequest(env, kind, j.request_id, token, delayS),
    fail: async (env, j, message, logger, token) => {
      const { failedRun, notices } = await failRequest(env, kind, j.request_id, message, token, j.run);
      if (failedRun !== null) await tellFailed(env, j.user_id, j.request_id, failedRun, message, notices, logger);
      return failedRun !== null;
    },
    deadLetterMessage: job.deadLetterMessage,
  };
}
