/**
 * In-app notifications (API.md §5): `/api/v1/notifications/` list (newest first, `?unread=`),
 * `unread-count/`, `{id}/read/` and `read-all/`. Owner only; other users' answer 404.
 * `preferences/` (GET, PUT): per type and channel, the email digest and the time zone (§5b).
 * `unsubscribe/?token=` (no sign-in; RFC 8058): GET a confirmation page, POST one click.
 * `email-events/`: the email provider's signed delivery webhook (bounces and complaints).
 * New notifications also reach the owner's `/ws/` sockets as `{type:"notification", notification}`,
 * and removed ones (a deleted forum post's) as `{type:"notification_withdrawn", ids}`.
 */
import { z } from "@hono/zod-openapi";
import { accessClaimsOf, userIdOf } from "../middleware/auth";
import { createRouter, routeSet } from "./router";
import {
  decodeCursor,
  encodeCursor,
  listNotifications,
  markAllRead,
  markRead,
  NOTIFICATION_TYPES,
  notificationBody,
  unreadCount,
} from "../services/notifications";
import { listDevices, subscribe, unsubscribeDevice, vapidPublicKey } from "../services/push-subscriptions";
import {
  CHANNELS,
  DIGESTS,
  getPreferences,
  NOTIFICATION_DEFAULTS,
  PREFERENCE_TYPES,
  updatePreferences,
} from "../services/notification-preferences";
import { NotificationPayload } from "../../durable-objects/user-hub-protocol";
import { pageOf, PaginationQuery } from "./pagination";
import { escapeHtml } from "../lib/sanitise";
import { unsubscribe, verifyUnsubscribeToken } from "../services/unsubscribe";
import { handleEmailEvent, verifyWebhook } from "../services/email-events";
import { BooleanQuery, errorResponse, errorResponses, IdParam, jsonBody, pageSchema, requestJson, withoutProtoKey } from "./schemas";

const tags = ["Notifications"];
const errors = errorResponses(400, 401, 404);

/** The same schema the WebSocket protocol (and its AsyncAPI document) uses for pushed notifications. */
const NotificationSchema = NotificationPayload.openapi("Notification");

const ChannelChoice = z.object({ in_app: z.boolean(), email: z.boolean(), push: z.boolean() });
const PreferencesSchema = z
  .object({
    types: z.object(
      Object.fromEntries(PREFERENCE_TYPES.map((t) => [t, ChannelChoice])) as Record<
        (typeof PREFERENCE_TYPES)[number],
        typeof ChannelChoice
      >,
    ),
    digest: z
      .enum(DIGESTS)
      .openapi({ description: "How non-urgent email arrives: at once, gathered daily or weekly (in your time zone), or not at all." }),
    time_zone: z.string().openapi({
      description:
        "IANA time zone for digests and dates in email, as the zone's own name: one sent in another case or as an alias (europe/berlin, US/Pacific, Asia/Calcutta) is saved as Europe/Berlin, America/Los_Angeles, Asia/Kolkata.",
      example: "Europe/Berlin",
    }),
  })
  .openapi("NotificationPreferences", {
    description: `Defaults: ${PREFERENCE_TYPES.map((t) => `${t} → ${CHANNELS.filter((ch) => NOTIFICATION_DEFAULTS[t][ch]).join("+")}`).join("; ")}; digest daily; time zone UTC. \`security\` email cannot be turned off.`,
  });
const PreferencesUpdate = z
  .strictObject({
    types: withoutProtoKey(z.record(z.string().max(64), withoutProtoKey(z.record(z.string().max(32), z.unknown()))))
      .optional()
      .openapi({
        description: 'Only the types and channels to change, e.g. {"forum_reply": {"email": true}}.',
        example: { forum_reply: { email: true } },
      }),
    digest: z.string().max(16).optional(),
    time_zone: z
      .string()
      .max(64)
      .optional()
      .openapi({ description: "An IANA time zone name in any case, aliases included; saved as the zone's own name (see the answer)." }),
  })
  .openapi("NotificationPreferencesUpdate");

export function notificationRoutes() {
  const app = createRouter();
  const plain = routeSet({ tags, errors: {} });
  const open = routeSet({ tags, errors });
  const plainSignedIn = plain.signedIn();
  const mine = open.signedIn();

  const NotificationPage = pageSchema(NotificationSchema, "NotificationPageBase")
    .extend({
      next_cursor: z.string().nullable().openapi({
        description: "Pass as `cursor` for the notifications after this page (null: none). Stable while new ones arrive.",
      }),
    })
    .openapi("NotificationPage");
  const TypeList = z
    .string()
    .max(400)
    .refine((v) => v.split(",").every((t) => (NOTIFICATION_TYPES as readonly string[]).includes(t.trim())), {
      message: `Comma-separated types, each one of: ${NOTIFICATION_TYPES.join(", ")}.`,
    });
  const getRoot = mine.get("/", "Your notifications, newest first").io(
    {
      query: PaginationQuery.extend({
        unread: BooleanQuery.optional().openapi({ description: "true: unread only; false: read only" }),
        type: TypeList.optional().openapi({ description: "Only these types (comma-separated), e.g. `forum_reply,forum_mention`." }),
        cursor: z
          .string()
          .max(200)
          .optional()
          .openapi({ description: "Keyset pagination: the `next_cursor` of the previous page (then `page` is ignored)." }),
      }),
    },
    { 200: jsonBody(NotificationPage, "Page of notifications") },
    {
      description:
        "Two ways to page: `page`/`page_size` (numbers, `next`/`previous` links), or `cursor` (`next_cursor`, which does not shift when new notifications arrive; `count` is then how many remain from the cursor on).",
    },
  );
  app.openapi(getRoot, async (c) => {
    const { page, page_size, unread, type, cursor } = c.req.valid("query");
    const filter = {
      userId: userIdOf(c),
      unread: unread === undefined ? undefined : unread === "true",
      types: type?.split(",").map((t) => t.trim()),
      before: cursor ? decodeCursor(cursor) : undefined,
    };
    const { count, rows } = await listNotifications(c.env, filter, { page: cursor ? 1 : page, pageSize: page_size });
    const last = rows.at(-1);
    const more = cursor ? rows.length < count : page * page_size < count;
    const next_cursor = last && more ? encodeCursor(last) : null;
    if (!cursor) return c.json({ ...pageOf(c.req.url, page, page_size, count, rows.map(notificationBody)), next_cursor }, 200);
    const nextUrl = new URL(c.req.url);
    if (next_cursor) nextUrl.searchParams.set("cursor", next_cursor);
    nextUrl.searchParams.delete("page");
    return c.json(
      { count, next: next_cursor ? nextUrl.toString() : null, previous: null, results: rows.map(notificationBody), next_cursor },
      200,
    );
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

  const getPrefs = mine
    .get(`/preferences`, "Your notification preferences (defaults until you change them)")
    .io({}, { 200: jsonBody(PreferencesSchema, "Per type and channel, digest and time zone") });
  app.openapi(getPrefs, async (c) => c.json(await getPreferences(c.env, userIdOf(c)), 200));

  const putPrefs = mine.put(`/preferences`, "Change some of your notification preferences").io(
    { body: requestJson(PreferencesUpdate) },
    { 200: jsonBody(PreferencesSchema, "All your preferences after the change") },
    {
      description:
        "Unknown types or channels, non-boolean values, turning off security email, an unknown digest or time zone: 400 naming each, nothing changed. Changes made at once (another device, an email's unsubscribe link) all hold; 409 CONFLICT only if the preferences kept changing under this one.",
    },
  );
  app.openapi(putPrefs, async (c) => c.json(await updatePreferences(c.env, userIdOf(c), c.req.valid("json")), 200));

  // RFC 8058: the link itself authorises (a signed token), so no sign-in and no CSRF check.
  const TokenQuery = z.object({
    token: z.string().min(1).max(1024).openapi({ description: "The signed token from the email's List-Unsubscribe link." }),
  });
  const html = (description: string) => ({ description, content: { "text/html": { schema: z.string() } } });
  const page = (title: string, body: string) =>
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex"><title>${escapeHtml(title)} · Plant Community</title></head><body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
  const PAGE_CSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
  const typeName = (scope: string) => (scope === "all" ? "all notification email" : `${scope.replaceAll("_", " ")} email`);

  const getUnsubscribe = open
    .get(`/unsubscribe`, "The confirmation page of an email's unsubscribe link (changes nothing)")
    .io(
      { query: TokenQuery },
      { 200: html("A page with one button that unsubscribes") },
      { description: "GET never unsubscribes (mail scanners follow links); the page's button POSTs. A tampered or expired token: 400." },
    );
  app.openapi(getUnsubscribe, async (c) => {
    const { token } = c.req.valid("query");
    const { scope } = await verifyUnsubscribeToken(c.env, token);
    c.header("Content-Security-Policy", PAGE_CSP);
    c.header("Cache-Control", "no-store");
    c.header("Referrer-Policy", "no-referrer");
    const action = `?token=${encodeURIComponent(token)}`;
    return c.html(
      page(
        "Unsubscribe",
        `<p>Stop ${escapeHtml(typeName(scope))} from Plant Community? Security email (password changes, sign-in alerts) is always sent.</p><form method="post" action="${escapeHtml(action)}"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`,
      ),
      200,
    ) as never;
  });

  const Unsubscribed = z
    .object({
      unsubscribed: z.literal(true),
      scope: z.string(),
      types: z.array(z.string()).openapi({ description: "The types now off by email." }),
    })
    .openapi("Unsubscribed");
  const postUnsubscribe = open.post(`/unsubscribe`, "One-click unsubscribe (RFC 8058): turns email off for the link's type, or all").io(
    { query: TokenQuery },
    {
      200: {
        description: "Done (JSON, or a small page when the client accepts HTML)",
        content: { "application/json": { schema: Unsubscribed }, "text/html": { schema: z.string() } },
      },
    },
    {
      description:
        "Mail clients POST `List-Unsubscribe=One-Click`; the body is not needed. A tampered or expired token: 400, nothing changed. A link mailed to an address the account has since left: answered the same, nothing changed. Security email stays on.",
    },
  );
  app.openapi(postUnsubscribe, async (c) => {
    const result = await unsubscribe(c.env, c.req.valid("query").token);
    c.header("Cache-Control", "no-store");
    if ((c.req.header("Accept") ?? "").includes("text/html")) {
      c.header("Content-Security-Policy", PAGE_CSP);
      return c.html(
        page(
          "You are unsubscribed",
          `<p>You will no longer get ${escapeHtml(typeName(result.scope))}. You can turn it back on in the app's notification settings.</p>`,
        ),
        200,
      ) as never;
    }
    return c.json({ unsubscribed: true as const, ...result }, 200);
  });

  const EmailEventResult = z
    .object({
      received: z.literal(true),
      type: z.string(),
      suppressed: z.array(z.string()).openapi({
        description: "Addresses that get no more email until lifted (its user asking again for a bounce; support for any).",
      }),
    })
    .openapi("EmailEventResult");
  const postEmailEvents = routeSet({ tags, errors: errorResponses(400, 401) })
    .post(`/email-events`, "The email provider's delivery webhook (Svix-signed): hard bounces and complaints suppress the address")
    .io(
      {
        headers: z.object({
          "svix-id": z.string().max(200).optional(),
          "svix-timestamp": z.string().max(20).optional(),
          "svix-signature": z.string().max(2000).optional(),
        }),
      },
      {
        200: jsonBody(EmailEventResult, "Processed"),
        409: errorResponse(409, "This delivery (svix-id) was already processed; nothing changed", "CONFLICT"),
        503: errorResponse(503, "No webhook secret is configured", "SERVICE_UNAVAILABLE"),
      },
      {
        description:
          "Body: the provider's event JSON (`{type, data: {to, bounce?}}`; `email.bounced`, `email.complained`, `email.delivered`, `email.delivery_delayed`). The signature covers `svix-id.svix-timestamp.body`; a timestamp more than 5 minutes off, a missing or wrong signature: 401, nothing changed.",
      },
    );
  app.openapi(postEmailEvents, async (c) => {
    const headers = c.req.valid("header");
    const body = await c.req.text();
    await verifyWebhook(
      c.env,
      { id: headers["svix-id"], timestamp: headers["svix-timestamp"], signature: headers["svix-signature"] },
      body,
    );
    const result = await handleEmailEvent(c.env, headers["svix-id"]!, body);
    return c.json({ received: true as const, ...result }, 200);
  });

  // ---- Web Push (RFC 8030/8291/8292) ------------------------------------------------------
  const unavailable = errorResponse(503, "Push is not configured on this server", "SERVICE_UNAVAILABLE");
  const getVapid = routeSet({ tags, errors: {} })
    .get(`/push/vapid-public-key`, "The VAPID public key to pass to PushManager.subscribe() as applicationServerKey")
    .io(
      {},
      {
        200: jsonBody(
          z
            .object({ public_key: z.string().openapi({ description: "base64url, the uncompressed P-256 point (65 bytes)" }) })
            .openapi("VapidPublicKey"),
          "The key",
        ),
        503: unavailable,
      },
    );
  app.openapi(getVapid, (c) => c.json({ public_key: vapidPublicKey(c.env) }, 200));

  const SubscriptionBody = z
    .strictObject({
      endpoint: z.string().max(2048).openapi({
        description:
          "The push service URL: https, on a known push service (FCM, Mozilla autopush, Apple, WNS; the server's PUSH_SERVICE_HOSTS).",
      }),
      keys: z.strictObject({
        p256dh: z.string().max(200).openapi({ description: "base64url, the 65-byte uncompressed P-256 public key" }),
        auth: z.string().max(100).openapi({ description: "base64url, the 16-byte authentication secret" }),
      }),
      expirationTime: z.number().nullable().optional().openapi({ description: "As PushSubscription.toJSON() gives it; ignored." }),
    })
    .openapi("PushSubscription");
  const Device = z
    .object({
      endpoint: z.string(),
      created_at: z.string(),
      last_success_at: z.string().nullable(),
      failing_since: z.string().nullable().openapi({
        description:
          "Since when every push to this device has failed (its push service answering 5xx or not at all); null while pushes reach it. A device failing for 7 days and 10 attempts is removed.",
      }),
      user_agent: z.string().nullable(),
    })
    .openapi("PushDevice");
  // The same body the subscription was made with may come back (PushSubscription.toJSON()): only
  // its endpoint counts.
  const EndpointBody = z
    .strictObject({
      endpoint: z.string().max(2048),
      keys: SubscriptionBody.shape.keys.optional().openapi({ description: "As PushSubscription.toJSON() gives it; ignored." }),
      expirationTime: SubscriptionBody.shape.expirationTime,
    })
    .openapi("PushEndpoint");

  const getDevices = mine
    .get(`/push/subscriptions`, "Your devices subscribed to push")
    .io({}, { 200: jsonBody(z.object({ results: z.array(Device) }).openapi("PushDevices"), "Devices") });
  app.openapi(getDevices, async (c) => c.json({ results: await listDevices(c.env, userIdOf(c)) }, 200));

  const postSubscription = mine.post(`/push/subscriptions`, "Subscribe this device to push notifications").io(
    { body: requestJson(SubscriptionBody) },
    {
      200: jsonBody(Device.pick({ endpoint: true }).extend({ created: z.literal(false) }), "Already subscribed (keys refreshed)"),
      201: jsonBody(Device.pick({ endpoint: true }).extend({ created: z.literal(true) }), "Subscribed"),
      503: unavailable,
    },
    {
      description:
        "The body is `PushSubscription.toJSON()`: a Web Push subscription, as a browser's PushManager makes it. A native app's FCM registration token or APNs device token is not one and cannot be registered. A non-https endpoint, a p256dh that is not a 65-byte P-256 point, an auth secret that is not 16 bytes: 400 naming the field, nothing stored. An endpoint another account subscribed moves to you.",
    },
  );
  app.openapi(postSubscription, async (c) => {
    const result = await subscribe(c.env, userIdOf(c), c.req.valid("json"), c.req.header("User-Agent"), accessClaimsOf(c));
    return result.created
      ? c.json({ endpoint: result.endpoint, created: true as const }, 201)
      : c.json({ endpoint: result.endpoint, created: false as const }, 200);
  });

  const deleteSubscription = mine
    .delete(`/push/subscriptions`, "Unsubscribe a device (by its endpoint)")
    .io({ body: requestJson(EndpointBody) }, { 204: { description: "Removed" } });
  app.openapi(deleteSubscription, async (c) => {
    await unsubscribeDevice(c.env, userIdOf(c), c.req.valid("json").endpoint);
    return c.body(null, 204);
  });

  return app;
}
