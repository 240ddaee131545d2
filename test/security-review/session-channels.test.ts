/**
 * Standing channels to an account (a Web Push device, the calendar feed's URL) against the end of
 * the session that set them up (found by review helper-46). Before, only "every session ends"
 * removed them: a thief whose stolen session was cut off by refresh-token reuse detection kept
 * receiving every notification's text on the device it subscribed and kept reading the calendar,
 * and a browser signed out on a shared computer kept getting the account's pushes.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { pushSubscriptions } from "../../src/db/schema";
import { createNotification } from "../../src/services/notifications";
import { call, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, tokenLogin } from "../helpers/users";
import { eventually } from "../helpers/wait";

const emulators = useEmulators();
const db = database(env);
const SUBS = "/api/v1/notifications/push/subscriptions/";
const FEED = "/api/v1/reminders/calendar-feed/";

async function subscribeDevice(access: string) {
  const { public_key } = await json<{ public_key: string }>(await call("/api/v1/notifications/push/vapid-public-key/"), 200);
  const sub = await emulators.push.subscribe({ applicationServerKey: public_key });
  await json(await call(SUBS, { bearer: access, json: { ...sub, expirationTime: null } }), 201);
  return sub;
}

const devicesOf = async (userId: string) =>
  (await db.select().from(pushSubscriptions).where(eq(pushSubscriptions.userId, userId)).all()).map((r) => r.endpoint);

const notify = (userId: string, title: string) =>
  createNotification(env, {
    userId,
    type: "identification_completed",
    title,
    body: "Monstera deliciosa, 94%.",
    data: { request_id: crypto.randomUUID() },
    dedupeKey: `session-channels:${crypto.randomUUID()}`,
  });

describe("a session's end takes the channels it set up", () => {
  it("a thief's session cut off by refresh-token reuse loses the push device and the calendar URL it set up", async () => {
    const owner = await bearerUser();
    const ownDevice = await subscribeDevice(owner.access);
    const thief = await tokenLogin(owner.username);
    const thiefDevice = await subscribeDevice(thief.access);
    const feed = await json<{ url: string }>(await call(FEED, { method: "POST", bearer: thief.access }), 201);
    expect((await call(new URL(feed.url).pathname)).status).toBe(200);

    // The family rotates on, and the old refresh token comes back: theft, the family is revoked.
    const rotated = await json<{ refresh: string }>(await call("/api/v1/auth/token/refresh/", { json: { refresh: thief.refresh } }), 200);
    await json(await call("/api/v1/auth/token/refresh/", { json: { refresh: rotated.refresh } }), 200);
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: thief.refresh } })).status).toBe(401);

    expect(await devicesOf(owner.userId)).toEqual([ownDevice.endpoint]);
    expect((await call(new URL(feed.url).pathname)).status).toBe(404);
    // The next notification reaches the owner's own device only.
    await notify(owner.userId, "Your plant is identified");
    await eventually(() => emulators.push.received.find((p) => p.endpoint === ownDevice.endpoint));
    await new Promise((r) => setTimeout(r, 200));
    expect(emulators.push.received.filter((p) => p.endpoint === thiefDevice.endpoint)).toEqual([]);
  });

  it("signing out unsubscribes that browser's push device, not another session's, and keeps the calendar URL", async () => {
    const owner = await bearerUser();
    const phone = await subscribeDevice(owner.access);
    const shared = await tokenLogin(owner.username);
    const sharedDevice = await subscribeDevice(shared.access);
    const feed = await json<{ url: string }>(await call(FEED, { method: "POST", bearer: shared.access }), 201);
    expect(new Set(await devicesOf(owner.userId))).toEqual(new Set([phone.endpoint, sharedDevice.endpoint]));

    await json(await call("/api/v1/auth/logout/", { method: "POST", bearer: shared.access, json: { refresh: shared.refresh } }), 200);
    expect(await devicesOf(owner.userId)).toEqual([phone.endpoint]);
    // A calendar app holds the URL, not the browser that asked for it: a plain sign-out keeps it.
    expect((await call(new URL(feed.url).pathname)).status).toBe(200);
  });

  it("a refresh token presented after a plain sign-out is refused without taking the calendar URL (review helper-49)", async () => {
    const owner = await bearerUser();
    const session = await tokenLogin(owner.username);
    const feed = await json<{ url: string }>(await call(FEED, { method: "POST", bearer: session.access }), 201);
    await json(await call("/api/v1/auth/logout/", { method: "POST", bearer: session.access, json: { refresh: session.refresh } }), 200);
    // A refresh already on its way, or a second app process with the last token: the session has
    // ended, which is not theft.
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: session.refresh } })).status).toBe(401);
    expect((await call(new URL(feed.url).pathname)).status).toBe(200);
    // Still so once the sign-out's record has been purged (review helper-50).
    await env.DB.prepare("DELETE FROM revoked_sessions WHERE family_id IN (SELECT family_id FROM refresh_tokens WHERE user_id = ?)")
      .bind(owner.userId)
      .run();
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: session.refresh } })).status).toBe(401);
    expect((await call(new URL(feed.url).pathname)).status).toBe(200);
  });

  it("a thief who signs out before the owner's old token comes back still loses the calendar URL (review helper-50)", async () => {
    const owner = await bearerUser();
    const session = await tokenLogin(owner.username); // the thief copied session.refresh
    const stolen = await json<{ access: string; refresh: string }>(
      await call("/api/v1/auth/token/refresh/", { json: { refresh: session.refresh } }),
      200,
    );
    const feed = await json<{ url: string }>(await call(FEED, { method: "POST", bearer: stolen.access }), 201);
    await json(await call("/api/v1/auth/logout/", { method: "POST", bearer: stolen.access, json: { refresh: stolen.refresh } }), 200);
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: session.refresh } })).status).toBe(401);
    expect((await call(new URL(feed.url).pathname)).status).toBe(404);
  });

  it("a device subscribed again by another session belongs to that session from then on", async () => {
    const owner = await bearerUser();
    const first = await tokenLogin(owner.username);
    const device = await subscribeDevice(first.access);
    const second = await tokenLogin(owner.username);
    await json(await call(SUBS, { bearer: second.access, json: { ...device, expirationTime: null } }), 200);

    await json(await call("/api/v1/auth/logout/", { method: "POST", bearer: first.access, json: { refresh: first.refresh } }), 200);
    expect(await devicesOf(owner.userId)).toEqual([device.endpoint]);
    await json(await call("/api/v1/auth/logout/", { method: "POST", bearer: second.access, json: { refresh: second.refresh } }), 200);
    expect(await devicesOf(owner.userId)).toEqual([]);
  });
});
