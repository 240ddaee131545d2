/**
 * Notifications that leave the app (API.md §5b, issue 10 items 3 and 6): email — one at a time or
 * gathered into a digest — and Web Push, each sent through the notification queue.
 *
 * The rows to send are written by triggers on `notifications` (migrations/0020) in the statement
 * that creates the notification, so an event can never be recorded without them. Then:
 * 1. `dispatchDeliveries` puts each `queued` row of new notifications on NOTIFY_QUEUE (best
 *    effort; the sweep re-sends any that did not get there).
 * 2. The consumer calls `sendDelivery`: it claims the row (`queued` → `sending`, one conditional
 *    UPDATE, so of two deliveries of one message only one works), checks again that the user
 *    still wants it, sends, and marks it `sent` or `skipped`. A failure puts it back to `queued`
 *    and the queue retries it with backoff; the dead-letter queue marks it `failed` (a push that
 *    reached some devices but not all: `sent`, as the devices that showed it did).
 * 3. Exactly once: an email is sent with the row id as the provider's Idempotency-Key, so even a
 *    consumer that crashes after the provider accepted it and is retried sends nothing twice;
 *    a push records each device reached (push_sends), and a retry sends only to the others,
 *    with the notification as the RFC 8030 Topic so a push service replaces, not repeats; the
 *    delivery's `sent_at` keeps when it first reached one, so it ends `sent` even if that device
 *    is removed before the retries for the others end.
 * 4. `gatherDigests` (cron): a daily or weekly reader's `held` emails become one digest email
 *    per period in the reader's time zone. A period starts at 08:00 local time; the digest of a
 *    period gathers what was held before it started, and its dedupe key (user + period) makes
 *    a second cron run in the same period a no-op.
 */
import { and, eq, gte, inArray, isNull, lt, lte, or, type SQL, sql } from "drizzle-orm";
import { getConfig } from "../config";
import { batchRows, changes, type Database, database, runBatch } from "../db/client";
import { notificationDeliveries, notifications, pushSends, pushSubscriptions, users } from "../db/schema";
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import { clientLabel } from "../lib/session-device";
import { sendPush } from "../lib/web-push";
import { cutText } from "../lib/text";
import { type EmailNotification, renderDigestEmail, renderNotificationEmail } from "./email-templates";
import { deliverEmail } from "./mailer";
import { ALWAYS_EMAILED, emailWanted, getPreferences, type PreferenceType } from "./notification-preferences";
import { pushServiceProblem } from "./push-subscriptions";
import { securityNoticeAction } from "./two-factor-reset-cancel";
import { listUnsubscribeHeaders } from "./unsubscribe";
import { DAY_MS, HOUR_MS } from "../lib/durations";
import { firstInstantAt, wallMs } from "../lib/wall-clock";

export type Delivery = typeof notificationDeliveries.$inferSelect;

/** The queue message: one delivery row. */
export interface DeliveryJob {
  delivery_id: string;
}

export function isDeliveryJob(body: unknown): body is DeliveryJob {
  return typeof body === "object" && body !== null && typeof (body as DeliveryJob).delivery_id === "string";
}

/** A claimed row nobody finished in this long is taken again (a crashed consumer). */
export const CLAIM_LEASE_MS = 2 * 60_000;
/** `queued` rows still unclaimed after this long are put on the queue again by the sweep. */
export const REQUEUE_AFTER_MS = 5 * 60_000;
/** Local hour at which a digest period starts. */
export const DIGEST_HOUR = 8;
/** How long a push service keeps a push for an offline device. */
const PUSH_TTL_S = 24 * 3600;
/**
 * A device whose push service has failed every attempt (5xx, or unreachable) for this long, and
 * at least DEAD_DEVICE_MIN_FAILURES times, is removed: one bad day or one long outage of a push
 * service is ridden out, an endpoint that died without a 404/410 is not posted to forever.
 */
export const DEAD_DEVICE_AFTER_MS = 7 * DAY_MS;
export const DEAD_DEVICE_MIN_FAILURES = 10;
const QUEUE_BATCH = 100;
/** Readers with held mail read at a time by `gatherDigests`. */
const READERS_PAGE = 1000;
/** Readers whose held mail one `gatherDigests` run writes (gathers or drops); the next run goes on. */
const MAX_DIGEST_WRITES = 1000;

/** A failure worth retrying later (provider down, 429, 5xx); `delayS` when the provider said. */
export class DeliveryRetry extends Error {
  constructor(
    message: string,
    readonly delayS?: number,
  ) {
    super(message);
    this.name = "DeliveryRetry";
  }
}

// ---- Dispatch --------------------------------------------------------------------------------

export async function enqueueDeliveries(env: Bindings, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += QUEUE_BATCH) {
    await env.NOTIFY_QUEUE.sendBatch(
      ids.slice(i, i + QUEUE_BATCH).map((id) => ({ body: { delivery_id: id } satisfies DeliveryJob, contentType: "json" as const })),
    );
  }
}

/**
 * The queued email and push deliveries the triggers wrote for the notification with this dedupe
 * key: a statement for the batch that inserts it, so its deliveries are known without a read of
 * their own (read the answer with `queuedDeliveryIds`).
 */
export function queuedDeliveriesQuery(db: Database, dedupeKey: string | SQL) {
  const d = notificationDeliveries;
  return db
    .select({ id: d.id })
    .from(d)
    .innerJoin(notifications, eq(notifications.id, d.notificationId))
    .where(and(eq(notifications.dedupeKey, dedupeKey), eq(d.status, "queued")));
}

/** `queuedDeliveriesQuery`'s answer in a batch, whichever way `runBatch` sent it. */
export function queuedDeliveryIds(result: unknown): string[] {
  return batchRows(result).map((row) => String(row.id));
}

/**
 * Queues the email and push deliveries the triggers wrote for these new notifications: read by
 * their notification ids, or as `known` when the batch that wrote them also read them.
 */
export async function dispatchDeliveries(env: Bindings, notificationIds: string[], logger?: Logger, known?: string[]): Promise<void> {
  if (notificationIds.length === 0) return;
  try {
    const d = notificationDeliveries;
    const ids: string[] = known ? [...known] : [];
    for (let i = 0; !known && i < notificationIds.length; i += 90) {
      const rows = await database(env)
        .select({ id: d.id })
        .from(d)
        .where(and(inArray(d.notificationId, notificationIds.slice(i, i + 90)), eq(d.status, "queued")))
        .all();
      ids.push(...rows.map((r) => r.id));
    }
    await enqueueDeliveries(env, ids);
  } catch (err) {
    // The rows are written; the sweep queues them within REQUEUE_AFTER_MS.
    logger?.warn("could not queue notification deliveries; the sweep will", { error: String(err) });
  }
}

// ---- Sending ---------------------------------------------------------------------------------

/**
 * A withdrawn notification (the forum post it quoted was deleted; services/forum.ts) keeps its
 * row, blank, so that the mention cap still counts it, but nothing shows or sends it: its
 * `withdrawn_at` is set, it has no title, body or data but its author, and it is read and out of
 * the list. Every reader asks these three. A delivery claimed just before the withdrawal finds it so.
 */
export function isWithdrawn(n: { withdrawnAt: string | null }): boolean {
  return n.withdrawnAt !== null;
}

/** SQL: the notification is not withdrawn. */
export const notWithdrawn = () => isNull(notifications.withdrawnAt);

/** What a withdrawal writes into the row. */
export const withdrawnRow = (at: string) => ({
  withdrawnAt: sql`coalesce(${notifications.withdrawnAt}, ${at})`,
  title: "",
  body: "",
  data: sql`json_object('author_id', json_extract(${notifications.data}, '$.author_id'))`,
  inApp: false,
  isRead: true,
  readAt: sql`coalesce(${notifications.readAt}, ${at})`,
});

/**
 * Withdraws the notifications `ids` (a subquery of notification ids), for the caller's batch.
 * Three statements, in order:
 *   1. the ones still showing, with their owner and whether they were in-app (for the sockets:
 *      `announceWithdrawals`);
 *   2. their deliveries, sent or not (a digest that gathered one loses it);
 *   3. the rows themselves, blanked (`withdrawnRow`).
 */
export function withdrawStatements(db: Database, ids: SQL) {
  const n = notifications;
  return [
    db
      .select({ id: n.id, userId: n.userId, inApp: n.inApp })
      .from(n)
      .where(and(sql`${n.id} IN ${ids}`, notWithdrawn())),
    db.delete(notificationDeliveries).where(sql`${notificationDeliveries.notificationId} IN ${ids}`),
    db.update(n).set(withdrawnRow(new Date().toISOString())).where(sql`${n.id} IN ${ids}`),
  ] as const;
}

export type DeliveryOutcome = "sent" | "skipped" | "not_claimed";

/** Claims a row: `queued`, or `sending` past its lease. Undefined when someone else has it or it is done. */
async function claim(env: Bindings, id: string, now: number): Promise<Delivery | undefined> {
  const d = notificationDeliveries;
  return database(env)
    .update(d)
    .set({ status: "sending", claimedAt: new Date(now).toISOString(), attempts: sql`${d.attempts} + 1` })
    .where(
      and(
        eq(d.id, id),
        or(eq(d.status, "queued"), and(eq(d.status, "sending"), lt(d.claimedAt, new Date(now - CLAIM_LEASE_MS).toISOString()))),
      ),
    )
    .returning()
    .get();
}

async function finish(env: Bindings, id: string, status: "sent" | "skipped", detail: string | null, providerId: string | null = null) {
  const d = notificationDeliveries;
  await database(env)
    .update(d)
    // A push is sent as of the first device it reached (`firstReached`), however many attempts later it ends.
    .set({ status, detail, providerId, sentAt: status === "sent" ? sql`coalesce(${d.sentAt}, ${new Date().toISOString()})` : null })
    .where(and(eq(d.id, id), eq(d.status, "sending")));
}

/**
 * SQL: when the push delivery `d` first reached one of the user's devices, null if none took it
 * yet. Each device reached stamps the delivery's `sent_at` as it goes (its push_sends row goes
 * when that device is removed — signed out, unsubscribed, expired — and the reach must not go with
 * it); push_sends answers for a delivery reached before the stamp was written.
 */
function firstReached(d: typeof notificationDeliveries): SQL<string | null> {
  return sql`coalesce(${d.sentAt}, (SELECT min(${pushSends.sentAt}) FROM ${pushSends} WHERE ${pushSends.deliveryId} = ${d.id}))`;
}

/**
 * Gives a claimed row back after a failure, for the queue's retry in `retryInS`. A queued row's
 * `claimed_at` then says when that retry is due, so the sweep leaves it to the queue until
 * REQUEUE_AFTER_MS past then: clearing it made a row older than that look never queued, and every
 * five-minute sweep sent it again, ahead of the push service's Retry-After (up to an hour), each
 * time as one more message retrying on its own.
 */
export async function releaseDelivery(env: Bindings, id: string, detail: string, retryInS = 0, now = Date.now()): Promise<void> {
  const d = notificationDeliveries;
  await database(env)
    .update(d)
    .set({ status: "queued", claimedAt: new Date(now + retryInS * 1000).toISOString(), detail })
    .where(and(eq(d.id, id), eq(d.status, "sending")));
}

/**
 * The dead-letter queue gave up on it: `failed`, unless it is a push some device already took
 * (`firstReached`). That one is `sent` as of its first device, with a detail saying not every
 * device was reached: the user's phone showed it, and the laptop whose push service kept failing
 * must not turn that into a failure — nor may the phone's signing out since. One statement, so a
 * consumer still at work on the row cannot record a device between the look and the write.
 * Undefined when the row was not open.
 */
export async function failDelivery(env: Bindings, id: string, detail: string): Promise<"failed" | "sent" | undefined> {
  const d = notificationDeliveries;
  const reached = firstReached(d);
  const row = await database(env)
    .update(d)
    .set({
      status: sql`CASE WHEN ${reached} IS NULL THEN 'failed' ELSE 'sent' END`,
      sentAt: reached,
      detail: sql`CASE WHEN ${reached} IS NULL THEN ${detail} ELSE ${`not every device reached: ${detail}`} END`,
    })
    .where(and(eq(d.id, id), inArray(d.status, ["queued", "sending"])))
    .returning({ status: d.status })
    .get();
  return row?.status === "sent" ? "sent" : row ? "failed" : undefined;
}

/**
 * Who hears that a push device was removed for failing (the notify consumer's: a security notice
 * to its owner). Passed in, not imported: telling the owner is itself a notification, and this
 * module is what notifications are delivered through.
 */
export type DeviceRemoved = (removed: { userId: string; label: string }) => Promise<void>;

/** What one push attempt carries down to each device's answer. */
interface PushAttempt {
  logger: Logger | undefined;
  now: number;
  deviceRemoved: DeviceRemoved | undefined;
}

/**
 * Sends one delivery. Throws DeliveryRetry (or anything else) for the queue to retry; the row is
 * then back to `queued` only if the caller releases it (the consumer does).
 */
export async function sendDelivery(
  env: Bindings,
  id: string,
  logger?: Logger,
  now = Date.now(),
  deviceRemoved?: DeviceRemoved,
): Promise<DeliveryOutcome> {
  const row = await claim(env, id, now);
  if (!row) return "not_claimed";
  const result =
    row.channel === "email" ? await sendEmailDelivery(env, row) : await sendPushDelivery(env, row, { logger, now, deviceRemoved });
  await finish(env, row.id, result.status, result.detail, result.providerId ?? null);
  return result.status;
}

type Result = { status: "sent" | "skipped"; detail: string | null; providerId?: string };

async function recipient(env: Bindings, userId: string) {
  return database(env)
    .select({ id: users.id, username: users.username, email: users.email, verified: users.emailVerified, active: users.isActive })
    .from(users)
    .where(eq(users.id, userId))
    .get();
}

function asEmailNotification(n: typeof notifications.$inferSelect): EmailNotification {
  return { type: n.type, title: n.title, body: n.body, data: n.data, createdAt: n.createdAt };
}

async function sendEmailDelivery(env: Bindings, row: Delivery): Promise<Result> {
  const user = await recipient(env, row.userId);
  if (!user?.active) return { status: "skipped", detail: "account inactive" };
  const security = ALWAYS_EMAILED.includes(row.type as PreferenceType);
  const prefs = await getPreferences(env, user.id);
  // The user may have changed their mind (or address) since the event: ask again.
  if (!security) {
    if (!user.verified) return { status: "skipped", detail: "address not verified" };
    if (prefs.digest === "off") return { status: "skipped", detail: "email turned off" };
    if (row.type !== "digest" && !emailWanted(prefs, row.type)) return { status: "skipped", detail: "type turned off" };
  }
  const config = getConfig(env);
  const recipientInfo = { username: user.username, timeZone: prefs.time_zone };
  // Every attempt must send the same bytes: a retry reuses the delivery's Idempotency-Key, and
  // the provider refuses a reused key with another payload (409). So the unsubscribe link is
  // dated from the delivery's creation, not from this attempt.
  const issuedAt = Date.parse(row.createdAt);
  let mail: { subject: string; html: string; text: string };
  let headers: Record<string, string> | undefined;
  if (row.type === "digest") {
    const items = await database(env)
      .select({ n: notifications })
      .from(notificationDeliveries)
      .innerJoin(notifications, eq(notifications.id, notificationDeliveries.notificationId))
      .where(eq(notificationDeliveries.digestId, row.id))
      .all();
    if (items.length === 0) return { status: "skipped", detail: "nothing gathered" };
    // Held while the reader wanted that type by email; a type turned off since (one-click
    // unsubscribe, or the app) stays out, as a single email of it would be skipped.
    const wanted = items.filter((i) => emailWanted(prefs, i.n.type));
    if (wanted.length === 0) return { status: "skipped", detail: "types turned off" };
    headers = await listUnsubscribeHeaders(env, user, "all", issuedAt);
    const period = row.period?.startsWith("weekly") ? "weekly" : "daily";
    mail = renderDigestEmail(
      wanted.map((i) => asEmailNotification(i.n)),
      recipientInfo,
      { frontend: config.FRONTEND_URL, unsubscribe: unsubscribeUrl(headers) },
      period,
    );
  } else {
    const n = row.notificationId
      ? await database(env).select().from(notifications).where(eq(notifications.id, row.notificationId)).get()
      : undefined;
    if (!n || isWithdrawn(n)) return { status: "skipped", detail: "notification gone" };
    headers = security ? undefined : await listUnsubscribeHeaders(env, user, row.type as PreferenceType, issuedAt);
    mail = renderNotificationEmail(asEmailNotification(n), recipientInfo, {
      frontend: config.FRONTEND_URL,
      unsubscribe: headers ? unsubscribeUrl(headers) : "",
      action: security ? await securityNoticeAction(env, config, n) : undefined,
    });
  }
  // Asked again just before the provider call: an account deleted (or deactivated) since the
  // check above must not get mail at its old address; one that moved to another address gets
  // it there, on the retry.
  const recipientStill = async () => {
    const current = await database(env)
      .select({ email: users.email, active: users.isActive })
      .from(notificationDeliveries)
      .innerJoin(users, eq(users.id, notificationDeliveries.userId))
      .where(eq(notificationDeliveries.id, row.id))
      .get();
    if (!current?.active) return false;
    if (current.email !== user.email) throw new DeliveryRetry("the address changed while the email was made");
    return true;
  };
  try {
    const sent = await deliverEmail(env, { to: user.email, ...mail, headers, idempotencyKey: row.id }, { recipientStill });
    if (sent.sent) return { status: "sent", detail: null, providerId: sent.id ?? undefined };
    return { status: "skipped", detail: sent.reason === "suppressed" ? "address suppressed" : "account inactive" };
  } catch (err) {
    const { status, code, retryAfterS } = err as { status?: number; code?: string; retryAfterS?: number };
    // The provider took an earlier attempt under this delivery's key, and this one's bytes differ
    // (the post it quotes was edited, or left a digest, in between): the email went out.
    if (status === 409 && code === "invalid_idempotent_request") return { status: "sent", detail: "accepted by an earlier attempt" };
    // 4xx other than 409/429 means this email can never be accepted as it is: retrying is useless.
    if (status !== undefined && status >= 400 && status < 500 && status !== 409 && status !== 429)
      return { status: "skipped", detail: `refused by the provider (${status})` };
    // A 429 (or 503) names its wait: the next attempt keeps to it rather than the short backoff.
    throw new DeliveryRetry(err instanceof Error ? err.message : String(err), retryAfterS);
  }
}

function unsubscribeUrl(headers: Record<string, string>): string {
  return /<(https?:[^>]+)>/.exec(headers["List-Unsubscribe"] ?? "")?.[1] ?? "";
}

/** What a device receives: small (a push is at most 4 KiB), with where a tap should lead. */
export function pushPayload(n: typeof notifications.$inferSelect, frontend: string): string {
  const payload = {
    id: n.id,
    type: n.type,
    title: cutText(n.title, 200),
    body: cutText(n.body, 1000),
    data: n.data,
    created_at: n.createdAt,
    url: `${frontend}/notifications`,
  };
  const text = JSON.stringify(payload);
  return text.length <= 3000 ? text : JSON.stringify({ ...payload, data: {} });
}

/**
 * A push: to each of the user's devices it has not reached yet. A push that reached a device on an
 * earlier attempt is `sent` whatever this attempt finds (the type turned off since, the others
 * refused or removed): the user has seen it.
 */
async function sendPushDelivery(env: Bindings, row: Delivery, attempt: PushAttempt): Promise<Result> {
  const result = await pushToDevices(env, row, attempt);
  if (result.status === "sent") return result;
  const d = notificationDeliveries;
  const reached = await database(env)
    .select({ at: firstReached(d) })
    .from(d)
    .where(eq(d.id, row.id))
    .get();
  if (!reached?.at) return result;
  // Every device left was reached before, refused this message or is gone: that push is done.
  return { status: "sent", detail: result.detail === NO_DEVICE_REACHED ? null : `not every device reached: ${result.detail}` };
}

const NO_DEVICE_REACHED = "no device reached";

async function pushToDevices(env: Bindings, row: Delivery, attempt: PushAttempt): Promise<Result> {
  const { logger } = attempt;
  const config = getConfig(env);
  if (!config.VAPID_PUBLIC_KEY || !config.VAPID_PRIVATE_KEY) return { status: "skipped", detail: "push not configured" };
  const prefs = await getPreferences(env, row.userId);
  if (!prefs.types[row.type as PreferenceType]?.push) return { status: "skipped", detail: "type turned off" };
  const n = row.notificationId
    ? await database(env).select().from(notifications).where(eq(notifications.id, row.notificationId)).get()
    : undefined;
  if (!n || isWithdrawn(n)) return { status: "skipped", detail: "notification gone" };
  // "Starting soon" is worth nothing once the event has begun: a device offline until then is not
  // told it (the push service drops it at the start), and a retry past the start sends nothing.
  let ttlS = PUSH_TTL_S;
  const startsAt = row.type === "calendar_event_starting" ? Date.parse(String(n.data?.starts_at ?? "")) : Number.NaN;
  if (!Number.isNaN(startsAt)) {
    const left = Math.floor((startsAt - Date.now()) / 1000);
    if (left <= 0) return { status: "skipped", detail: "event already started" };
    ttlS = Math.min(ttlS, left);
  }
  const db = database(env);
  const s = pushSubscriptions;
  const devices = await db
    .select()
    .from(s)
    .where(
      and(
        eq(s.userId, row.userId),
        sql`NOT EXISTS (SELECT 1 FROM ${pushSends} ps WHERE ps.delivery_id = ${row.id} AND ps.subscription_id = ${s.id})`,
      ),
    )
    .all();
  const payload = pushPayload(n, config.FRONTEND_URL);
  const vapid = { publicKey: config.VAPID_PUBLIC_KEY, privateKey: config.VAPID_PRIVATE_KEY, subject: config.VAPID_SUBJECT };
  // RFC 8030 Topic: ≤ 32 URL-safe characters; the notification id without dashes is exactly 32.
  const topic = n.id.replaceAll("-", "").slice(0, 32);
  const urgency = row.type === "security" || row.type === "calendar_event_starting" ? "high" : "normal";
  let reached = false;
  let retryAfterS: number | undefined;
  let transient = "";
  for (const device of devices) {
    // Stored before the allow-list existed, or the list has since changed: never posted to, but
    // kept — a mistaken PUSH_SERVICE_HOSTS must not unsubscribe every device for good.
    if (pushServiceProblem(env, device.endpoint)) {
      logger?.warn("push subscription not on a known push service; skipped", { subscription_id: device.id });
      continue;
    }
    let answer: { status: number; retryAfterS?: number };
    try {
      answer = await sendPush({ endpoint: device.endpoint, keys: { p256dh: device.p256dh, auth: device.auth } }, payload, vapid, {
        ttlS,
        urgency,
        topic,
      });
    } catch (err) {
      // Logged and kept on the delivery: sendPush's error names the endpoint by its origin only.
      if (!(await failedAgain(env, device, attempt))) transient = `push service unreachable: ${String(err)}`;
      continue;
    }
    const at = new Date().toISOString();
    if (answer.status >= 200 && answer.status < 300) {
      reached = true;
      const d = notificationDeliveries;
      await runBatch(db, [
        db.insert(pushSends).values({ deliveryId: row.id, subscriptionId: device.id, sentAt: at }).onConflictDoNothing(),
        db.update(s).set({ lastSuccessAt: at, failingSince: null, failedAttempts: 0 }).where(eq(s.id, device.id)),
        // The delivery's own record that it reached the user, which outlives this device's row.
        db
          .update(d)
          .set({ sentAt: sql`coalesce(${d.sentAt}, ${at})` })
          .where(eq(d.id, row.id)),
      ]);
    } else if (answer.status === 404 || answer.status === 410) {
      // The subscription is gone for good (RFC 8030 §7.3): forget it.
      await db.delete(s).where(eq(s.id, device.id));
      logger?.info("push subscription expired; removed", { subscription_id: device.id, status: answer.status });
    } else if (answer.status === 429 || answer.status >= 500) {
      // A 429 asks this server to slow down; it says nothing about the device.
      if (answer.status !== 429 && (await failedAgain(env, device, attempt))) continue;
      transient = `push service answered ${answer.status}`;
      if (answer.retryAfterS !== undefined) retryAfterS = Math.max(retryAfterS ?? 0, answer.retryAfterS);
    } else {
      // 400/403/413, or a redirect (never followed): this message can never be delivered to this
      // device, and it does not make the job retry. It is not a push_sends row: those are the
      // devices reached, and a delivery no device took is not "sent" (a retry for another
      // device's sake asks this one again, which refuses again).
      logger?.warn("push refused", { subscription_id: device.id, status: answer.status });
    }
  }
  if (transient) throw new DeliveryRetry(transient, retryAfterS);
  // Reached on an earlier attempt too counts: sendPushDelivery looks that up for a "skipped".
  return reached ? { status: "sent", detail: null } : { status: "skipped", detail: NO_DEVICE_REACHED };
}

/**
 * Counts a failed attempt (5xx, unreachable) against `device`, and removes it when it has failed
 * every attempt for DEAD_DEVICE_AFTER_MS and at least DEAD_DEVICE_MIN_FAILURES times; its owner
 * is then told through `deviceRemoved` (the notify consumer's security notice naming the device,
 * in the app and by email: a device that stopped getting their notifications is a change to their
 * account they should hear of, and not on that device). The removal is conditional on the count
 * it read, so a success that landed in between (it resets the count) keeps the device. True when
 * removed: it no longer holds the push back.
 */
async function failedAgain(
  env: Bindings,
  device: typeof pushSubscriptions.$inferSelect,
  { logger, now, deviceRemoved }: PushAttempt,
): Promise<boolean> {
  const db = database(env);
  const s = pushSubscriptions;
  const at = new Date(now).toISOString();
  const counted = await db
    .update(s)
    .set({ failingSince: sql`coalesce(${s.failingSince}, ${at})`, failedAttempts: sql`${s.failedAttempts} + 1` })
    .where(eq(s.id, device.id))
    .returning({ failingSince: s.failingSince, failedAttempts: s.failedAttempts })
    .get();
  if (!counted?.failingSince || counted.failedAttempts < DEAD_DEVICE_MIN_FAILURES) return false;
  if (Date.parse(counted.failingSince) > now - DEAD_DEVICE_AFTER_MS) return false;
  const removed = await db
    .delete(s)
    .where(
      and(
        eq(s.id, device.id),
        lte(s.failingSince, new Date(now - DEAD_DEVICE_AFTER_MS).toISOString()),
        gte(s.failedAttempts, DEAD_DEVICE_MIN_FAILURES),
      ),
    )
    .returning({ userId: s.userId, userAgent: s.userAgent })
    .get();
  if (!removed) return false;
  logger?.info("push device failing for a week; removed", { subscription_id: device.id, failed_attempts: counted.failedAttempts });
  await deviceRemoved?.({ userId: removed.userId, label: clientLabel(removed.userAgent) });
  return true;
}

// ---- Sweep and digests (cron) ----------------------------------------------------------------

/**
 * Puts back on the queue what never got there, whose consumer died, or whose retry (given back by
 * `releaseDelivery`) was due REQUEUE_AFTER_MS ago and never came. Returns how many.
 */
export async function requeueStale(env: Bindings, now = Date.now()): Promise<number> {
  const rows = await database(env).all<{ id: string }>(staleDeliveries(now));
  await enqueueDeliveries(
    env,
    rows.map((r) => r.id),
  );
  return rows.length;
}

/**
 * The sweep's query: queued rows older than REQUEUE_AFTER_MS whose given-back retry (claimed_at)
 * is as overdue, and claims past their lease. Each branch repeats the open index's own condition
 * word for word (migration 0020 `notification_deliveries_open_idx`, partial on `status IN
 * ('held', 'queued', 'sending')`): SQLite uses a partial index only for a query that states its
 * WHERE exactly, and without it every five-minute run read every delivery ever written (sent,
 * skipped and digested rows are kept).
 */
export function staleDeliveries(now: number): SQL {
  const before = new Date(now - REQUEUE_AFTER_MS).toISOString();
  const leaseEnd = new Date(now - CLAIM_LEASE_MS).toISOString();
  const open = sql.raw(`status IN ('held', 'queued', 'sending')`);
  return sql`
    SELECT id FROM notification_deliveries
     WHERE ${open} AND status = 'queued' AND created_at < ${before} AND (claimed_at IS NULL OR claimed_at < ${before})
    UNION ALL
    SELECT id FROM notification_deliveries
     WHERE ${open} AND status = 'sending' AND claimed_at < ${leaseEnd}
    LIMIT 500`;
}

/**
 * The digest period `at` falls in, for a reader in `timeZone`, and the instant it started (UTC
 * ms). Daily periods start at DIGEST_HOUR local time; weekly ones on Monday at that hour — the
 * local hour also on days clocks change, so a period is 23 or 25 hours long then.
 */
export function digestPeriod(kind: "daily" | "weekly", timeZone: string, at: number): { key: string; startedAt: number } {
  const wall = wallMs(at, timeZone);
  // The local calendar day the period belongs to: before 08:00 it is still yesterday's.
  let start = Math.floor(wall / DAY_MS) * DAY_MS + DIGEST_HOUR * HOUR_MS;
  if (wall < start) start -= DAY_MS;
  if (kind === "weekly") {
    const weekday = (new Date(start).getUTCDay() + 6) % 7; // Monday 0
    start -= weekday * DAY_MS;
  }
  const day = new Date(start);
  const key = kind === "daily" ? `daily:${day.toISOString().slice(0, 10)}` : `weekly:${isoWeek(day)}`;
  // Not `at - (wall - start)`: across a clock change that is off by the change (an hour late
  // after clocks go back, so mail held in the period's first hour went out at 02:00 that night).
  return { key, startedAt: firstInstantAt(start, timeZone) };
}

function isoWeek(day: Date): string {
  const thursday = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate() + 3 - ((day.getUTCDay() + 6) % 7)));
  const yearStart = Date.UTC(thursday.getUTCFullYear(), 0, 1);
  const week = Math.floor((thursday.getTime() - yearStart) / DAY_MS / 7) + 1;
  return `${thursday.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

/**
 * One page of the readers holding mail (after `after`, in id order), each with its oldest held
 * mail and digest preferences. Read through migration 0040's index of held mail, which holds only
 * what is held: the (user_id, status) index would walk every delivery ever written (sent, skipped
 * and digested rows are kept) on each five-minute run.
 */
export function heldReadersPage(after: string): SQL {
  return sql`
    SELECT h.user_id, h.oldest, COALESCE(p.digest, 'daily') AS digest, COALESCE(p.time_zone, 'UTC') AS time_zone
    FROM (SELECT user_id, MIN(created_at) AS oldest FROM notification_deliveries
          WHERE status = 'held' AND user_id > ${after} GROUP BY user_id ORDER BY user_id LIMIT ${READERS_PAGE}) h
    LEFT JOIN notification_preferences p ON p.user_id = h.user_id
    ORDER BY h.user_id`;
}

/**
 * Gathers `held` emails into digests whose period has begun. For each reader with held mail:
 * one batch inserts the period's digest row (skipped if that period's digest exists) and moves
 * the mail held before the period started onto it — only while the digest is still `queued`, so
 * nothing joins a digest already being sent. Readers who turned email off have their held mail
 * skipped. Returns the digests that gathered something in this run (each is queued).
 */
export async function gatherDigests(env: Bindings, now = Date.now()): Promise<number> {
  const db = database(env);
  const queued: string[] = [];
  const d = notificationDeliveries;
  let after = "";
  let writes = 0;
  // Every reader holding mail is looked at, a page at a time in id order; one whose oldest held
  // mail is not due yet costs no write. A fixed first page let a thousand readers with mail not
  // due (weekly readers mid-week, anyone notified since their period began) keep every later
  // reader's digest from ever being gathered.
  pages: for (;;) {
    const readers = await db.all<{ user_id: string; oldest: string; digest: string; time_zone: string }>(heldReadersPage(after));
    if (readers.length === 0) break;
    after = readers[readers.length - 1]!.user_id;
    for (const reader of readers) {
      // Bounded per run: the next run (five minutes on) takes the rest, as those gathered are no longer due.
      if (writes >= MAX_DIGEST_WRITES) break pages;
      if (reader.digest === "off") {
        writes += 1;
        await db
          .update(d)
          .set({ status: "skipped", detail: "email turned off" })
          .where(and(eq(d.userId, reader.user_id), eq(d.status, "held")));
        continue;
      }
      // A reader who switched to `immediate` gets what was held in the next daily digest.
      const period = digestPeriod(reader.digest === "weekly" ? "weekly" : "daily", reader.time_zone, now);
      const startedAt = new Date(period.startedAt).toISOString();
      if (reader.oldest >= startedAt) continue; // all of it arrived after the period began
      writes += 1;
      const dedupeKey = `digest:${reader.user_id}:${period.key}`;
      const id = crypto.randomUUID();
      const heldBefore = sql`user_id = ${reader.user_id} AND status = 'held' AND created_at < ${startedAt}`;
      const openDigest = sql`(SELECT id FROM notification_deliveries WHERE dedupe_key = ${dedupeKey} AND status = 'queued')`;
      const [, attached] = await runBatch(db, [
        sql`INSERT INTO notification_deliveries (id, user_id, channel, type, dedupe_key, status, period, created_at)
            SELECT ${id}, ${reader.user_id}, 'email', 'digest', ${dedupeKey}, 'queued', ${period.key}, ${new Date(now).toISOString()}
            WHERE EXISTS (SELECT 1 FROM notification_deliveries WHERE ${heldBefore})
            ON CONFLICT (dedupe_key) DO NOTHING`,
        sql`UPDATE notification_deliveries SET status = 'digested', digest_id = ${openDigest}
            WHERE ${heldBefore} AND ${openDigest} IS NOT NULL`,
      ]);
      if (changes(attached) === 0) continue;
      const digest = await db
        .select({ id: d.id })
        .from(d)
        .where(and(eq(d.dedupeKey, dedupeKey), eq(d.status, "queued")))
        .get();
      if (digest) queued.push(digest.id);
    }
  }
  await enqueueDeliveries(env, queued);
  return queued.length;
}
