/**
 * In-app notifications (API.md §5 "Notifications"): the owner's list, unread count and read
 * marks, plus the live push of new ones to the owner's UserHub (`/ws/` sockets). Other users'
 * notifications are "not found".
 */
import { apiFields } from "../lib/fields";
import { and, count, desc, eq, inArray, lt, or, type SQL, sql } from "drizzle-orm";
import { NOTIFICATION_TYPES, type NotificationPayload } from "../../durable-objects/user-hub-protocol";
import { changes, type Database, database, eqIfGiven } from "../db/client";
import { descending, type KeysetOrder, keysetAfter } from "../db/keyset";
import { type Page, type PageRequest, tablePage } from "../db/pagination";
import { notifications } from "../db/schema";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import type { Logger } from "../lib/logger";
import { dispatchDeliveries, notWithdrawn } from "./notification-delivery";
import { notifyUser, withdrawFromUser } from "./progress";
import { DAY_MS, HOUR_MS } from "../lib/durations";

/**
 * What a notification is about (declared with the WebSocket protocol, which pushes them). The
 * `type` column has no CHECK constraint (migrations/0007), so a new type needs no migration; the
 * drizzle enum in src/db/schema.ts is only a TypeScript hint.
 */
export { NOTIFICATION_TYPES };
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export type Notification = typeof notifications.$inferSelect;

export interface NotificationFilter {
  userId: string;
  unread?: boolean;
  /** Only these types. */
  types?: string[];
  /** Keyset pagination: only notifications older than this one (its `created_at` and `id`). */
  before?: { createdAt: string; id: string };
}

/**
 * An opaque cursor naming a position in the newest-first list. Unlike page numbers it does not
 * shift when new notifications arrive while a client pages through.
 */
export function encodeCursor(row: { createdAt: string; id: string }): string {
  return btoa(`${row.createdAt}|${row.id}`).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function decodeCursor(cursor: string): { createdAt: string; id: string } {
  let text = "";
  try {
    text = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    // falls through to the error below
  }
  const match = /^(\d{4}-\d{2}-\d{2}T[\d:.]+Z)\|([0-9a-f-]{36})$/.exec(text);
  if (!match) throw new AppError("VALIDATION_ERROR", 400, "Invalid cursor.", { cursor: ["Use the next_cursor of a previous page."] });
  return { createdAt: match[1] as string, id: match[2] as string };
}

export function notificationBody(row: Notification): NotificationPayload {
  return {
    ...apiFields(row, "id type title body data isRead createdAt readAt"),
  };
}

/** A random UUID v4 made by SQLite, so one INSERT … SELECT can create many notifications. */
const SQL_UUID_V4 = `lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
  || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))`;

/** SQL expressions (over the `source` rows) for the columns of each new notification. */
export interface NotificationColumns {
  userId: SQL;
  title: SQL;
  body: SQL;
  /** A JSON object, e.g. `json_object('k', r.v)`. */
  data: SQL;
  /** Unique per event and recipient: a second insert of the same one is skipped. */
  dedupeKey: SQL;
  /** ISO-8601 UTC, as every other timestamp. */
  createdAt: string;
}

/**
 * SQL: under `max` notifications of `type` that `authorId` caused `recipient` (an SQL expression,
 * e.g. the source row's user column) in the hour before `now` — a per-sender cap a notice's
 * `source` puts in its WHERE (forum mentions, blog comment replies, community proposals). The
 * notice's data must carry `author_id`; withdrawn ones keep it, so they count too. With `authorId`
 * null, a cap on all senders together (community agreements, where the flood is many accounts).
 * It reads the recipient's last hour by their (user_id, created_at) index.
 */
export function underHourlyCap(recipient: SQL, type: NotificationType, authorId: string | null, now: string, max: number): SQL {
  const hourAgo = new Date(Date.parse(now) - HOUR_MS).toISOString();
  const byAuthor = authorId === null ? sql`` : sql` AND json_extract(recent.data, '$.author_id') = ${authorId}`;
  return sql`(SELECT count(*) FROM notifications recent
              WHERE recent.user_id = ${recipient} AND recent.created_at > ${hourAgo}
                AND recent.type = ${type}${byAuthor}) < ${max}`;
}

/**
 * The one way notifications are written: `INSERT … SELECT` one row per `source` row, skipping
 * any whose `dedupe_key` exists already, returning only the rows really inserted (so callers
 * push exactly those live). `source` is the FROM/WHERE/ORDER/LIMIT part. A statement, not a
 * call (no await), so callers put it in the same `runBatch` as the write that causes it.
 */
export function insertNotifications(db: Database, type: NotificationType, columns: NotificationColumns, source: SQL) {
  // -- fan-out: one notification per source row in one statement, so SQL is the point. Each
  // value is named by its column: drizzle refuses a select whose fields are not the table's, in
  // its order, where a raw SELECT's values would silently shift. The WHERE is what SQLite needs
  // to parse ON CONFLICT after INSERT … SELECT (`source` has its own). A recipient who turned
  // this type off in-app (notification_preferences stores only changes from the defaults, and
  // every type is in-app by default) still gets the row — the delivery triggers (migrations/0020)
  // turn it into their email and push — but with in_app = 0, already read, out of the list.
  // A deleted account (services/account-deletion.ts) gets none: its row stays for what others
  // built on (its proposals, its comments), but nobody reads its notifications any more.
  const n = sql`(SELECT ${sql.raw(SQL_UUID_V4)} AS id, ${columns.userId} AS user_id, ${type} AS type, ${columns.title} AS title, ${columns.body} AS body, ${columns.data} AS data, ${columns.dedupeKey} AS dedupe_key, ${columns.createdAt} AS created_at,
      NOT EXISTS (SELECT 1 FROM notification_preferences p WHERE p.user_id = ${columns.userId} AND json_extract(p.types, '$.' || ${type} || '.in_app') = 0) AS in_app
    ${source}) n`;
  return db
    .insert(notifications)
    .select(
      db
        .select({
          id: sql<string>`n.id`.as("id"),
          userId: sql<string>`n.user_id`.as("user_id"),
          type: sql<NotificationType>`n.type`.as("type"),
          title: sql<string>`n.title`.as("title"),
          body: sql<string>`n.body`.as("body"),
          data: sql<string>`n.data`.as("data"),
          dedupeKey: sql<string>`n.dedupe_key`.as("dedupe_key"),
          inApp: sql<boolean>`n.in_app`.as("in_app"),
          isRead: sql<boolean>`1 - n.in_app`.as("is_read"),
          readAt: sql<string | null>`CASE WHEN n.in_app = 0 THEN n.created_at END`.as("read_at"),
          createdAt: sql<string>`n.created_at`.as("created_at"),
          withdrawnAt: sql<null>`NULL`.as("withdrawn_at"),
        })
        .from(n)
        .where(sql`NOT EXISTS (SELECT 1 FROM users gone WHERE gone.id = n.user_id AND gone.deleted_at IS NOT NULL)`),
    )
    .onConflictDoNothing({ target: notifications.dedupeKey })
    .returning();
}

/**
 * One notification for one user (an event about a single thing, e.g. a finished request), written
 * through insertNotifications — so the user's in-app preference and the dedupe key hold — and
 * announced (pushed live, email and push queued). Returns whether it was created (false: a duplicate).
 */
export async function createNotification(
  env: Bindings,
  n: { userId: string; type: NotificationType; title: string; body: string; data: Record<string, unknown>; dedupeKey: string },
  logger?: Logger,
): Promise<boolean> {
  const rows = await insertNotifications(
    database(env),
    n.type,
    {
      userId: sql`${n.userId}`,
      title: sql`${n.title}`,
      body: sql`${n.body}`,
      data: sql`${JSON.stringify(n.data)}`,
      dedupeKey: sql`${n.dedupeKey}`,
      createdAt: new Date().toISOString(),
    },
    // The row exists only while the user does (a request may outlive a deleted account).
    sql`FROM users u WHERE u.id = ${n.userId}`,
  );
  await announceNotifications(env, rows, logger);
  return rows.length > 0;
}

/**
 * What follows every write of notifications, with the rows `insertNotifications` returned: the
 * in-app ones are pushed to their owners' live sockets, and the email and push deliveries the
 * triggers wrote are queued. Best effort both (the delivery sweep catches what is missed).
 * `deliveryIds`: those deliveries, when the batch that wrote the rows also read them.
 */
export async function announceNotifications(env: Bindings, rows: Notification[], logger?: Logger, deliveryIds?: string[]): Promise<void> {
  await Promise.all([
    pushNotifications(env, inAppItems(rows), logger),
    dispatchDeliveries(
      env,
      rows.map((row) => row.id),
      logger,
      deliveryIds,
    ),
  ]);
}

/** The in-app ones of these rows, as their owners' sockets are sent them. */
function inAppItems(rows: Notification[]): { userId: string; notification: NotificationPayload }[] {
  return rows.filter((row) => row.inApp).map((row) => ({ userId: row.userId, notification: notificationBody(row) }));
}

/** Newest first: by `created_at`, then `id`, so pages neither repeat nor skip rows made in the same millisecond. */
export const NEWEST_FIRST: KeysetOrder<{ createdAt: string; id: string }> = descending(
  [notifications.createdAt, "createdAt"],
  [notifications.id, "id"],
);

/** Notifications after `position` in the newest-first order: the keyset of a page. */
export function olderThan(position: { createdAt: string; id: string }): SQL | undefined {
  return keysetAfter(NEWEST_FIRST, position);
}

/** The user's notifications, newest first; `unread` keeps only unread (true) or read (false) ones. */
export function listNotifications(env: Bindings, filter: NotificationFilter, page: PageRequest): Promise<Page<Notification>> {
  const n = notifications;
  const where = and(
    eq(n.userId, filter.userId),
    eq(n.inApp, true),
    eqIfGiven(n.isRead, filter.unread === undefined ? undefined : !filter.unread),
    filter.types?.length ? inArray(sql`${n.type}`, filter.types) : undefined,
    filter.before ? olderThan(filter.before) : undefined,
  );
  return tablePage(database(env), n, where, [desc(n.createdAt), desc(n.id)], page);
}

export async function unreadCount(env: Bindings, userId: string): Promise<number> {
  const n = notifications;
  const row = await database(env)
    .select({ n: count() })
    .from(n)
    .where(and(eq(n.userId, userId), eq(n.isRead, false)))
    .get();
  return row?.n ?? 0;
}

/** Marks one of the caller's notifications read; marking it again keeps the first `read_at`; a withdrawn one is not found. */
export async function markRead(env: Bindings, userId: string, id: string, now = Date.now()): Promise<Notification> {
  const n = notifications;
  const row = await database(env)
    .update(n)
    // -- COALESCE in the UPDATE keeps the first read time without a read-then-write race.
    .set({ isRead: true, readAt: sql`COALESCE(${n.readAt}, ${new Date(now).toISOString()})` })
    .where(and(eq(n.id, id), eq(n.userId, userId), notWithdrawn()))
    .returning()
    .get();
  if (!row) throw new AppError("NOT_FOUND", 404, "Notification not found.");
  return row;
}

export async function markAllRead(env: Bindings, userId: string, now = Date.now()): Promise<number> {
  const n = notifications;
  const result = await database(env)
    .update(n)
    .set({ isRead: true, readAt: new Date(now).toISOString() })
    .where(and(eq(n.userId, userId), eq(n.isRead, false)))
    .run();
  return changes(result);
}

/** Hubs reached at once: a cron run may have notifications for hundreds of users. */
const PUSH_CONCURRENCY = 6;

/** Calls `send` once per user with that user's items, PUSH_CONCURRENCY users at a time. */
async function perUser<T>(items: { userId: string; item: T }[], send: (userId: string, list: T[]) => Promise<void>): Promise<void> {
  const byUser = new Map<string, T[]>();
  for (const { userId, item } of items) {
    const list = byUser.get(userId) ?? [];
    list.push(item);
    byUser.set(userId, list);
  }
  const users = [...byUser.entries()];
  for (let i = 0; i < users.length; i += PUSH_CONCURRENCY) {
    await Promise.all(users.slice(i, i + PUSH_CONCURRENCY).map(([userId, list]) => send(userId, list)));
  }
}

/**
 * Pushes notifications to their owners' live sockets, one hub call per user. Best effort.
 * `updated`: they were sent before and have changed (the client replaces them).
 */
export async function pushNotifications(
  env: Bindings,
  items: { userId: string; notification: NotificationPayload }[],
  logger?: Logger,
  updated = false,
): Promise<void> {
  await perUser(
    items.map(({ userId, notification }) => ({ userId, item: notification })),
    (userId, list) => notifyUser(env, userId, list, logger, updated),
  );
}

/**
 * Tells the owners' live sockets of in-app notifications whose text changed (the rows are
 * already rewritten). Best effort: a client that misses it has the right text on its next read.
 */
export async function announceUpdates(env: Bindings, rows: Notification[], logger?: Logger): Promise<void> {
  await pushNotifications(env, inAppItems(rows), logger, true);
}

/** A notification that was removed, as its owner's sockets are told of it. */
export interface WithdrawnNotification {
  id: string;
  userId: string;
  inApp: boolean;
}

/**
 * Tells the owners' live sockets which of their in-app notifications were removed (the rows are
 * already gone), one hub call per user. Best effort: a client that misses it has the right list
 * on its next read.
 */
export async function announceWithdrawals(env: Bindings, rows: WithdrawnNotification[], logger?: Logger): Promise<void> {
  await perUser(
    rows.filter((row) => row.inApp).map((row) => ({ userId: row.userId, item: row.id })),
    (userId, ids) => withdrawFromUser(env, userId, ids, logger),
  );
}

/**
 * How long the in-app list keeps a notification: a read one 90 days, an unread one a year (the
 * list's own history; nothing else reads them later: caps and digests look back hours or a week).
 * Without it every account's list only grew — a daily care reminder is 365 rows a year — and with
 * it the account export.
 */
export const NOTIFICATION_RETENTION_DAYS = { read: 90, unread: 365 } as const;

/**
 * Deletes up to `limit` notifications past their keeping (oldest first; their delivery records
 * go with them), for the cron's housekeeping. Returns how many went.
 */
export async function purgeOldNotifications(env: Pick<Bindings, "DB">, now = Date.now(), limit = 1000): Promise<number> {
  const n = notifications;
  const readBefore = new Date(now - NOTIFICATION_RETENTION_DAYS.read * DAY_MS).toISOString();
  const unreadBefore = new Date(now - NOTIFICATION_RETENTION_DAYS.unread * DAY_MS).toISOString();
  const db = database(env);
  // Every candidate is older than the shorter keeping: one range over the created_at index.
  const old = db
    .select({ id: n.id })
    .from(n)
    .where(and(lt(n.createdAt, readBefore), or(eq(n.isRead, true), lt(n.createdAt, unreadBefore))))
    .orderBy(n.createdAt)
    .limit(limit);
  return changes(await db.delete(n).where(inArray(n.id, old)).run());
}
