/**
 * In-app notifications (API.md §5): `/api/v1/notifications/` list (newest first, `?unread=`),
 * `unread-count/`, `{id}/read/` and `read-all/`. Owner only; other users' answer 404.
 * New notifications also reach the owner's `/ws/` sockets as `{type:"notification", notification}`.
 */
import { z } from "@hono/zod-openapi";
import { userIdOf } from "../middleware/auth";
import { createRouter, routeSet } from "./router";
import { markAllRead, markRead, notificationBody, listNotifications, unreadCount } from "../services/notifications";
import { NotificationPayload } from "../../durable-objects/user-hub-protocol";
import { pageOf, PaginationQuery } from "./pagination";
import { BooleanQuery, jsonBody, pageSchema, IdParam, errorResponses } from "./schemas";

const tags = ["Notifications"];
const errors = errorResponses(400, 401, 404);

/** The same schema the WebSocket protocol (and its AsyncAPI document) uses for pushed notifications. */
const NotificationSchema = NotificationPayload.openapi("Notification");

export function notificationRoutes() {
  const app = createRouter();
  const plain = routeSet({ tags, errors: {} });
  const open = routeSet({ tags, errors });
  const plainSignedIn = plain.signedIn();
  const mine = open.signedIn();

  const getRoot = mine.get("/", "Your notifications, newest first").io(
    {
      query: PaginationQuery.extend({ unread: BooleanQuery.optional().openapi({ description: "true: unread only; false: read only" }) }),
    },
    { 200: jsonBody(pageSchema(NotificationSchema, "NotificationPage"), "Page of notifications") },
  );
  app.openapi(getRoot, async (c) => {
    const { page, page_size, unread } = c.req.valid("query");
    const isUnread = unread === undefined ? undefined : unread === "true";
    const { count, rows } = await listNotifications(c.env, { userId: userIdOf(c), unread: isUnread }, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(notificationBody)), 200);
  });

  const getUnreadCount = plainSignedIn
    .get(`/unread-count`, "How many of your notifications are unread")
    .io({}, { 200: jsonBody(z.object({ unread_count: z.number().int() }).openapi("UnreadCount"), "Unread count"), 401: errors[401] });
  app.openapi(getUnreadCount, async (c) => c.json({ unread_count: await unreadCount(c.env, userIdOf(c)) }, 200));

  const postReadAll = plainSignedIn.post(`/read-all`, "Mark all your notifications read").io(
    {},
    {
      200: jsonBody(z.object({ marked_read: z.number().int() }).openapi("MarkedRead"), "How many were unread"),
      401: errors[401],
    },
  );
  app.openapi(postReadAll, async (c) => c.json({ marked_read: await markAllRead(c.env, userIdOf(c)) }, 200));

  const postByIdRead = mine
    .post(`/{id}/read`, "Mark one of your notifications read (again: no change)")
    .io({ params: IdParam }, { 200: jsonBody(NotificationSchema, "The notification") });
  app.openapi(postByIdRead, async (c) => c.json(notificationBody(await markRead(c.env, userIdOf(c), c.req.valid("param").id)), 200));

  return app;
}
