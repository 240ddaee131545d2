/**
 * In-app notifications (API.md §5 "Notifications"): the owner's list, unread count and read
 * marks, plus the live push of new ones to the owner's UserHub (`/ws/` sockets). Other users'
 * notifications are "not found".
 */
import type { NotificationPayload } from "../../durable-objects/user-hub-protocol";
import { fetchPage, type Page, type PageRequest } from "../db/pagination";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import type { Logger } from "../lib/logger";
import { notifyUser } from "./progress";

/**
 * What a notification is about. The `type` column has no CHECK constraint (migrations/0007), so a
 * new type needs no migration; the drizzle enum in src/db/schema.ts is only a TypeScript hint.
 */
export const NOTIFICATION_TYPES = ["care_reminder", "forum_reply"] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export interface NotificationRow {
  id: string;
  user_id: string;
  type: NotificationType;
  title: string;
  body: string;
  data: string;
  is_read: number;
  read_at: string | null;
  created_at: string;
}

export function notificationBody(row: NotificationRow): NotificationPayload {
  return {
    id: row.id,
    type: row.type,
    title: row.title,
    body: row.body,
    data: JSON.parse(row.data) as Record<string, unknown>,
    is_read: Boolean(row.is_read),
    created_at: row.created_at,
    read_at: row.read_at,
  };
}

const COLUMNS = "id, user_id, type, title, body, data, is_read, read_at, created_at";

/** A random UUID v4 made by SQLite, so one INSERT … SELECT can create many notifications. */
const SQL_UUID_V4 = `lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
  || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))`;

/** SQL expressions (over the `source` rows) for the columns of each new notification. */
export interface NotificationColumns {
  userId: string;
  title: string;
  body: string;
  /** A JSON object, e.g. `json_object('k', r.v)`. */
  data: string;
  /** Unique per event and recipient: a second insert of the same one is skipped. */
  dedupeKey: string;
  createdAt: string;
}

/**
 * The one way notifications are written: `INSERT … SELECT` one row per `source` row, skipping
 * any whose `dedupe_key` exists already, returning only the rows really inserted (so callers
 * push exactly those live). `source` is the FROM/WHERE/ORDER/LIMIT part; its parameters and
 * those of `columns` are bound by the caller, in text order. A statement, not a call, so callers
 * put it in the same `db.batch` as the write that causes it.
 */
export function insertNotificationsStatement(
  db: D1Database,
  type: NotificationType,
  columns: NotificationColumns,
  source: string,
): D1PreparedStatement {
  // `source` must contain WHERE: SQLite needs it to parse ON CONFLICT after INSERT … SELECT.
  return db.prepare(
    `INSERT INTO notifications (id, user_id, type, title, body, data, dedupe_key, created_at)
     SELECT ${SQL_UUID_V4}, ${columns.userId}, '${type}', ${columns.title}, ${columns.body}, ${columns.data}, ${columns.dedupeKey}, ${columns.createdAt}
     ${source}
     ON CONFLICT (dedupe_key) DO NOTHING
     RETURNING ${COLUMNS}`,
  );
}

/** Pushes the rows an insert returned to their owners' live sockets (best effort). */
export function pushInserted(env: Bindings, rows: NotificationRow[], logger?: Logger): Promise<void> {
  return pushNotifications(
    env,
    rows.map((row) => ({ userId: row.user_id, notification: notificationBody(row) })),
    logger,
  );
}

/** The user's notifications, newest first; `unread` keeps only unread (true) or read (false) ones. */
export function listNotifications(
  env: Bindings,
  userId: string,
  unread: boolean | undefined,
  page: PageRequest,
): Promise<Page<NotificationRow>> {
  return fetchPage<NotificationRow>(env, notificationPageQuery(userId, unread), page);
}

function notificationPageQuery(userId: string, unread?: boolean) {
  const where = ["user_id = ?"];
  const binds: unknown[] = [userId];
  if (unread !== undefined) {
    where.push("is_read = ?");
    binds.push(unread ? 0 : 1);
  }
  return { select: COLUMNS, from: `FROM notifications WHERE ${where.join(" AND ")}`, order: "created_at DESC, id DESC", binds };
}

export async function unreadCount(env: Bindings, userId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM notifications WHERE user_id = ? AND is_read = 0")
    .bind(userId)
    .first<{ n: number }>();
  return row!.n;
}

/** Marks one of the caller's notifications read; marking it again keeps the first `read_at`. */
export async function markRead(env: Bindings, userId: string, id: string, now = Date.now()): Promise<NotificationRow> {
  const row = await env.DB.prepare(
    `UPDATE notifications SET is_read = 1, read_at = COALESCE(read_at, ?) WHERE id = ? AND user_id = ? RETURNING ${COLUMNS}`,
  )
    .bind(new Date(now).toISOString(), id, userId)
    .first<NotificationRow>();
  if (!row) throw new AppError("NOT_FOUND", 404, "Notification not found.");
  return row;
}

export async function markAllRead(env: Bindings, userId: string, now = Date.now()): Promise<number> {
  const result = await env.DB.prepare("UPDATE notifications SET is_read = 1, read_at = ? WHERE user_id = ? AND is_read = 0")
    .bind(new Date(now).toISOString(), userId)
    .run();
  return result.meta.changes;
}

/** Hubs reached at once: a cron run may have notifications for hundreds of users. */
const PUSH_CONCURRENCY = 6;

/** Pushes new notifications to their owners' live sockets, one hub call per user. Best effort. */
export async function pushNotifications(
  env: Bindings,
  items: { userId: string; notification: NotificationPayload }[],
  logger?: Logger,
): Promise<void> {
  const byUser = new Map<string, NotificationPayload[]>();
  for (const item of items) {
    const list = byUser.get(item.userId) ?? [];
    list.push(item.notification);
    byUser.set(item.userId, list);
  }
  const users = [...byUser.entries()];
  for (let i = 0; i < users.length; i += PUSH_CONCURRENCY) {
    await Promise.all(users.slice(i, i + PUSH_CONCURRENCY).map(([userId, list]) => notifyUser(env, userId, list, logger)));
  }
}
