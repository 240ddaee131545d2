/**
 * Notification email through the queue (issue 10 item 3): each event's email as its preferences
 * ask, rendered (HTML and text) with RFC 8058 headers; verified addresses only (security aside);
 * exactly one email under duplicate delivery and after a crash mid-send; retries that give the
 * row back; the dead-letter queue marking it failed; the digest, once per period in the reader's
 * time zone, with everything it gathered.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database, runBatch } from "../../src/db/client";
import { notificationDeliveries, notifications, notificationTypeDefaults, users } from "../../src/db/schema";
import { handleNotifyBatch, handleNotifyDeadLetters } from "../../src/jobs/notify-consumer";
import { digestPeriod, gatherDigests, releaseDelivery, sendDelivery, withdrawnRow } from "../../src/services/notification-delivery";
import { NOTIFICATION_DEFAULTS } from "../../src/services/notification-preferences";
import { createNotification, insertNotifications, type NotificationType } from "../../src/services/notifications";
import { BASE, call, jsonWithStatus as json, type Page } from "../helpers/http";
import { mailTo } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { envRacingStatement } from "../helpers/racing-env";
import { bearerUser, GOOD_PASSWORD } from "../helpers/users";
import { eventually } from "../helpers/wait";

const emulators = useEmulators();
const db = database(env);

async function verifiedUser(prefs?: Record<string, unknown>) {
  const u = await bearerUser();
  await db.update(users).set({ emailVerified: true }).where(eq(users.id, u.userId));
  if (prefs) await json(await call("/api/v1/notifications/preferences/", { method: "PUT", bearer: u.access, json: prefs }), 200);
  return u;
}

/** A notification written as the services write them, but not announced: nothing is queued. */
async function quietNotification(userId: string, type: NotificationType, title: string, at = new Date().toISOString()) {
  const [rows] = (await runBatch(db, [
    insertNotifications(
      db,
      type,
      {
        userId: sql`${userId}`,
        title: sql`${title}`,
        body: sql`'Something happened.'`,
        data: sql`json_object('request_id', 'r-1', 'topic_id', 't-1', 'post_slug', 'a-post')`,
        dedupeKey: sql`${`test:${crypto.randomUUID()}`}`,
        createdAt: at,
      },
      sql`FROM users u WHERE u.id = ${userId}`,
    ),
  ])) as [{ id: string }[]];
  return rows[0]!.id;
}

const deliveriesOf = (notificationId: string) =>
  db.select().from(notificationDeliveries).where(eq(notificationDeliveries.notificationId, notificationId)).all();

async function runJobs(ids: string[], queue = "plant-notify") {
  const batch = createMessageBatch(
    queue,
    ids.map((id, i) => ({ id: `m-${i}-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body: { delivery_id: id } })),
  );
  const ctx = createExecutionContext();
  if (queue.endsWith("-dlq")) await handleNotifyDeadLetters(batch, env);
  else await handleNotifyBatch(batch, env, ctx);
  await waitOnExecutionContext(ctx);
  return getQueueResult(batch, ctx);
}

/** Notification mail to `address` (sign-up's address confirmation left out). */
/** The reader turns off email for one notification type, through the API. */
const emailOff = async (access: string, type: NotificationType) =>
  json(
    await call("/api/v1/notifications/preferences/", { method: "PUT", bearer: access, json: { types: { [type]: { email: false } } } }),
    200,
  );

/** The reader's digest delivery, if one was gathered. */
const digestOf = async (userId: string) =>
  (await db.select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, userId)).all()).find((r) => r.type === "digest");

const mailsTo = (address: string) => emulators.email.outbox.filter((m) => m.to.includes(address) && !/^Confirm your/.test(m.subject));

describe("delivery rules", () => {
  it("the triggers' defaults table is NOTIFICATION_DEFAULTS, with security and starting-soon urgent", async () => {
    const rows = await db.select().from(notificationTypeDefaults).all();
    const table = Object.fromEntries(rows.map((r) => [r.type, { in_app: r.inApp, email: r.email, push: r.push }]));
    expect(table).toEqual(NOTIFICATION_DEFAULTS);
    expect(
      rows
        .filter((r) => r.urgent)
        .map((r) => r.type)
        .sort(),
    ).toEqual(["calendar_event_starting", "security"]);
  });

  it("an immediate reader gets one email per event, rendered, with the RFC 8058 headers, through the real queue", async () => {
    const u = await verifiedUser({ digest: "immediate", time_zone: "Asia/Tokyo" });
    await createNotification(env, {
      userId: u.userId,
      type: "identification_failed",
      title: "Your identification failed",
      body: "Both engines were down. Try again.",
      data: { request_id: "req-42" },
      dedupeKey: `t:${crypto.randomUUID()}`,
    });
    const mail = await mailTo(emulators.email, u.email, /identification failed/);
    expect(mail.headers?.["List-Unsubscribe-Post"]).toBe("List-Unsubscribe=One-Click");
    const link = /<(https:\/\/api\.test\/api\/v1\/notifications\/unsubscribe\/\?token=[^>]+)>, <mailto:[^>]+>/.exec(
      mail.headers?.["List-Unsubscribe"] ?? "",
    );
    expect(link).not.toBeNull();
    expect(mail.text).toContain(`Hello ${u.username},`);
    expect(mail.text).toContain("Both engines were down.");
    expect(mail.text).toContain("/identify/requests/req-42");
    expect(mail.text).toContain("(Asia/Tokyo)");
    expect(mail.html).toContain('<html lang="en">');
    expect(mail.html).toContain(link![1]!.replaceAll("&", "&amp;"));
    // The link in the mail unsubscribes with one POST, no sign-in.
    expect((await call(link![1]!.replace("https://api.test", ""), { method: "POST", body: "List-Unsubscribe=One-Click" })).status).toBe(
      200,
    );
    const prefs = await json<{ types: Record<string, { email: boolean }> }>(
      await call("/api/v1/notifications/preferences/", { bearer: u.access }),
      200,
    );
    expect(prefs.types.identification_failed!.email).toBe(false);
    const [row] = await db.select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, u.userId)).all();
    expect(row).toMatchObject({ channel: "email", status: "sent", attempts: 1 });
  });

  it("a topic title with line breaks becomes a one-line subject: nothing in it can start a header of its own", async () => {
    const author = await bearerUser();
    const named = await verifiedUser({ digest: "immediate" });
    // The forum's title rule trims the ends only: a line break inside is accepted as written.
    const title = "Ferns\r\nBcc: everyone@example.org\nX-Spam: no\u2028ok";
    const created = await call("/api/v1/forum/categories/houseplants/topics/", {
      bearer: author.access,
      json: { title, body: `<p>@${named.username} have a look</p>` },
    });
    expect(created.status).toBe(201);
    const [d] = await db.select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, named.userId)).all();
    await runJobs([d!.id]);
    const [mail] = mailsTo(named.email);
    expect(mail).toBeDefined();
    expect(mail!.subject).not.toMatch(/[\r\n\u2028\u2029]/);
    expect(mail!.subject).toContain("Ferns Bcc: everyone@example.org X-Spam: no ok");
  });

  it("what a user turned off, or an unverified address, writes no email; security mail goes regardless", async () => {
    const off = await verifiedUser({ digest: "immediate", types: { forum_mention: { email: false } } });
    expect(await deliveriesOf(await quietNotification(off.userId, "forum_mention", "Mentioned"))).toEqual([]);
    const digestOff = await verifiedUser({ digest: "off" });
    expect(await deliveriesOf(await quietNotification(digestOff.userId, "forum_mention", "Mentioned"))).toEqual([]);
    const unverified = await bearerUser();
    expect(await deliveriesOf(await quietNotification(unverified.userId, "forum_mention", "Mentioned"))).toEqual([]);
    const security = await deliveriesOf(await quietNotification(unverified.userId, "security", "Password changed"));
    expect(security.map((d) => [d.channel, d.status])).toEqual([["email", "queued"]]);
    // Unverified again (a changed address) before the job runs: asked again at send time.
    const n = await quietNotification(off.userId, "identification_failed", "Failed");
    expect(await deliveriesOf(n)).toHaveLength(1);
    await db.update(users).set({ emailVerified: false }).where(eq(users.id, off.userId));
    const [d] = await deliveriesOf(n);
    await runJobs([d!.id]);
    expect((await deliveriesOf(n))[0]).toMatchObject({ status: "skipped", detail: "address not verified" });
    expect(mailsTo(off.email)).toEqual([]);
  });

  it("in-app off keeps the notification out of the list but still emails it", async () => {
    const u = await verifiedUser({ digest: "immediate", types: { identification_failed: { in_app: false } } });
    const n = await quietNotification(u.userId, "identification_failed", "Quietly failed");
    const list = await json<Page<{ id: string }>>(await call("/api/v1/notifications/", { bearer: u.access }), 200);
    expect(list.results.map((r) => r.id)).not.toContain(n);
    expect(await json(await call("/api/v1/notifications/unread-count/", { bearer: u.access }), 200)).toEqual({ unread_count: 0 });
    const [d] = await deliveriesOf(n);
    await runJobs([d!.id]);
    expect(mailsTo(u.email).map((m) => m.subject)).toEqual(["Quietly failed"]);
  });
});

describe("exactly once", () => {
  it("duplicate deliveries of one message, and the same message again later, send one email", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const [d] = await deliveriesOf(await quietNotification(u.userId, "forum_mention", "You were mentioned"));
    const first = await runJobs([d!.id, d!.id, d!.id]);
    expect(first.explicitAcks).toHaveLength(3);
    await runJobs([d!.id]);
    expect(mailsTo(u.email)).toHaveLength(1);
    expect((await deliveriesOf(d!.notificationId!))[0]).toMatchObject({ status: "sent", attempts: 1 });
  });

  it("a consumer that died after the provider accepted the email: the retry re-sends with the same Idempotency-Key, and nothing new goes out", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const [d] = await deliveriesOf(await quietNotification(u.userId, "forum_mention", "Mentioned once"));
    await runJobs([d!.id]);
    const sent = mailsTo(u.email);
    expect(sent).toHaveLength(1);
    // Rewind to the state a crash between the provider's answer and the write would leave.
    const past = new Date(Date.now() - 10 * 60_000).toISOString();
    await db.update(notificationDeliveries).set({ status: "sending", claimedAt: past }).where(eq(notificationDeliveries.id, d!.id));
    // The retry comes in a later second than the first send: the email (its unsubscribe link
    // included) must still be the same bytes, or the provider refuses the reused key with 409.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await sendDelivery(env, d!.id)).toBe("sent");
    expect(mailsTo(u.email)).toHaveLength(1);
    expect((await deliveriesOf(d!.notificationId!))[0]).toMatchObject({ status: "sent", attempts: 2, providerId: sent[0]!.id });
  });

  it("a retry after the provider accepted, of a notification edited in between, is sent (not refused until it fails), and nothing new goes out", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const [d] = await deliveriesOf(await quietNotification(u.userId, "forum_mention", "Mentioned, then edited"));
    await runJobs([d!.id]);
    expect(mailsTo(u.email)).toHaveLength(1);
    const past = new Date(Date.now() - 10 * 60_000).toISOString();
    await db.update(notificationDeliveries).set({ status: "sending", claimedAt: past }).where(eq(notificationDeliveries.id, d!.id));
    // The post was edited meanwhile: its notification quotes the new text, so the retry's bytes differ.
    await db.update(notifications).set({ body: "What the post says after its edit" }).where(eq(notifications.id, d!.notificationId!));
    expect(await sendDelivery(env, d!.id)).toBe("sent");
    expect(mailsTo(u.email)).toHaveLength(1);
    expect((await deliveriesOf(d!.notificationId!))[0]).toMatchObject({
      status: "sent",
      attempts: 2,
      detail: "accepted by an earlier attempt",
    });
  });

  it("a delivery whose notification was withdrawn after it was queued (its post deleted) sends nothing, not a blank email", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const nid = await quietNotification(u.userId, "forum_mention", "Mentioned, then removed");
    const [d] = await deliveriesOf(nid);
    // The withdrawal blanks the row (services/forum.ts) just after this consumer read the delivery.
    await db.update(notifications).set(withdrawnRow(new Date().toISOString())).where(eq(notifications.id, nid));
    expect(await sendDelivery(env, d!.id)).toBe("skipped");
    expect(mailsTo(u.email)).toEqual([]);
    expect((await deliveriesOf(nid))[0]).toMatchObject({ status: "skipped", detail: "notification gone" });
  });

  it("a delivery queued before its reader deleted the account is not sent to the old address when the deletion lands as it is made", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const nid = await quietNotification(u.userId, "forum_mention", "Mentioned before leaving");
    const [d] = await deliveriesOf(nid);
    // The deletion lands after the consumer checked the recipient and read the notification,
    // as the email is being made (just before the address's suppression check).
    const racing = envRacingStatement(/from "email_suppressions"/i, async () => {
      const deleted = await call("/api/v1/auth/user/delete/", { bearer: u.access, json: { current_password: GOOD_PASSWORD } });
      expect(deleted.status).toBe(200);
    });
    expect(await sendDelivery(racing.env, d!.id)).toBe("skipped");
    expect(racing.fired()).toBe(true);
    // Only the deletion's own last email reached the old address.
    expect(mailsTo(u.email).map((m) => m.subject)).toEqual(["Your Plant Community account was deleted"]);
  });

  it("a delivery whose reader moved to another address as it was made is sent to the new one on its retry", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const nid = await quietNotification(u.userId, "forum_mention", "Mentioned before moving");
    const [d] = await deliveriesOf(nid);
    const newAddress = `moved-${crypto.randomUUID()}@example.com`;
    const racing = envRacingStatement(/from "email_suppressions"/i, () =>
      db.update(users).set({ email: newAddress }).where(eq(users.id, u.userId)),
    );
    const first = await sendDelivery(racing.env, d!.id).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(first).toBeInstanceOf(Error);
    expect(mailsTo(u.email)).toEqual([]);
    await releaseDelivery(env, d!.id, "retry", 0);
    expect(await sendDelivery(env, d!.id)).toBe("sent");
    expect(mailsTo(newAddress).map((m) => m.subject)).toHaveLength(1);
  });

  it("a claim still within its lease is left alone (another consumer has it)", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const [d] = await deliveriesOf(await quietNotification(u.userId, "forum_mention", "Busy"));
    await db
      .update(notificationDeliveries)
      .set({ status: "sending", claimedAt: new Date().toISOString() })
      .where(eq(notificationDeliveries.id, d!.id));
    expect(await sendDelivery(env, d!.id)).toBe("not_claimed");
    expect(mailsTo(u.email)).toEqual([]);
  });
});

describe("failures", () => {
  it("a provider outage gives the row back for the queue's retry; the next attempt sends; the dead-letter queue marks failed", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const [d] = await deliveriesOf(await quietNotification(u.userId, "forum_mention", "Retry me"));
    emulators.email.setMode({ failure: "500" });
    const result = await runJobs([d!.id]);
    expect(result.retryMessages).toHaveLength(1);
    expect((await deliveriesOf(d!.notificationId!))[0]).toMatchObject({ status: "queued", attempts: 1 });
    emulators.email.setMode({ failure: "none" });
    await runJobs([d!.id]);
    expect(mailsTo(u.email)).toHaveLength(1);

    const [gone] = await deliveriesOf(await quietNotification(u.userId, "forum_mention", "Never"));
    emulators.email.setMode({ failure: "500" });
    await runJobs([gone!.id]);
    await runJobs([gone!.id], "plant-notify-dlq");
    expect((await deliveriesOf(gone!.notificationId!))[0]).toMatchObject({ status: "failed" });
    emulators.email.setMode({ failure: "none" });
    await runJobs([gone!.id]);
    expect(mailsTo(u.email).map((m) => m.subject)).toEqual(["Retry me"]);
  });

  it("a 409 while the provider still runs an earlier attempt (concurrent_idempotent_requests) is retried, not taken as sent", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const [d] = await deliveriesOf(await quietNotification(u.userId, "forum_mention", "Still sending"));
    emulators.overrides["email.emulator.test"] = async () =>
      Response.json(
        {
          statusCode: 409,
          name: "concurrent_idempotent_requests",
          message: "Same idempotency key used while original request is still in progress.",
        },
        { status: 409 },
      );
    const result = await runJobs([d!.id]);
    expect(result.retryMessages).toHaveLength(1);
    expect((await deliveriesOf(d!.notificationId!))[0]).toMatchObject({ status: "queued", attempts: 1 });
    delete emulators.overrides["email.emulator.test"];
    await runJobs([d!.id]);
    expect(mailsTo(u.email).map((m) => m.subject)).toEqual(["Still sending"]);
    expect((await deliveriesOf(d!.notificationId!))[0]).toMatchObject({ status: "sent", attempts: 2, detail: null });
  });

  it("a 429 from the provider waits for its Retry-After before the next attempt, not the short backoff", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const [d] = await deliveriesOf(await quietNotification(u.userId, "forum_mention", "Slow down"));
    emulators.overrides["email.emulator.test"] = async () =>
      Response.json(
        { statusCode: 429, name: "rate_limit_exceeded", message: "Too many requests. You can only make 2 requests per second." },
        { status: 429, headers: { "Retry-After": "600" } },
      );
    const before = Date.now();
    const result = await runJobs([d!.id]);
    delete emulators.overrides["email.emulator.test"];
    expect(result.retryMessages).toHaveLength(1);
    const row = (await deliveriesOf(d!.notificationId!))[0]!;
    expect(row.status).toBe("queued");
    // claimed_at of a row given back says when its retry is due: the provider's ten minutes.
    expect(Date.parse(row.claimedAt!)).toBeGreaterThanOrEqual(before + 600_000);
  });

  it("a 2xx whose body is not the expected JSON is still an accepted email: marked sent, not retried into a second send", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const [d] = await deliveriesOf(await quietNotification(u.userId, "forum_mention", "Accepted oddly"));
    emulators.overrides["email.emulator.test"] = async () => new Response("<html>OK</html>", { status: 200 });
    const result = await runJobs([d!.id]);
    delete emulators.overrides["email.emulator.test"];
    expect(result.retryMessages).toHaveLength(0);
    expect((await deliveriesOf(d!.notificationId!))[0]).toMatchObject({ status: "sent", attempts: 1 });
  });

  it("a malformed job is dropped, not retried forever", async () => {
    const batch = createMessageBatch("plant-notify", [{ id: "junk", timestamp: new Date(), attempts: 1, body: { nope: 1 } }]);
    const ctx = createExecutionContext();
    await handleNotifyBatch(batch, env, ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["junk"]);
  });
});

describe("digest", () => {
  it("periods start at 08:00 in the reader's zone; weekly ones on Monday", () => {
    // 2026-12-03 is a Thursday. 06:00 UTC = 15:00 in Tokyo (past 08:00) = 07:00 in Berlin (not yet).
    const at = Date.parse("2026-12-03T06:00:00Z");
    expect(digestPeriod("daily", "Asia/Tokyo", at)).toEqual({ key: "daily:2026-12-03", startedAt: Date.parse("2026-12-02T23:00:00Z") });
    expect(digestPeriod("daily", "Europe/Berlin", at)).toEqual({ key: "daily:2026-12-02", startedAt: Date.parse("2026-12-02T07:00:00Z") });
    expect(digestPeriod("weekly", "UTC", at)).toEqual({ key: "weekly:2026-W49", startedAt: Date.parse("2026-11-30T08:00:00Z") });
    expect(digestPeriod("weekly", "UTC", Date.parse("2026-11-30T07:59:00Z")).key).toBe("weekly:2026-W48");
  });

  it("after clocks go back, mail from the period's first hour waits for 08:00, not 02:00 that night", async () => {
    const u = await verifiedUser({ time_zone: "Europe/Berlin" }); // daily by default
    // 08:30 CEST on Saturday 24 October 2026: after that day's period began, with nothing held then.
    await quietNotification(u.userId, "forum_mention", "Early in the period", "2026-10-24T06:30:00.000Z");
    // 02:05 CET on Sunday 25 October, the hour after clocks went back from 03:00 to 02:00.
    await gatherDigests(env, Date.parse("2026-10-25T01:05:00Z"));
    expect(await digestOf(u.userId)).toBeUndefined();
    await gatherDigests(env, Date.parse("2026-10-25T07:05:00Z")); // 08:05 CET
    expect(await digestOf(u.userId)).toMatchObject({ status: "queued", period: "daily:2026-10-25" });
  });

  it("gathers what was held before the period began into one email, once per period", async () => {
    const u = await verifiedUser({ time_zone: "Europe/Berlin" }); // daily by default
    const yesterday = "2026-12-02T12:00:00.000Z";
    const titles = ["Mentioned in Ferns", "Reply to your comment", "Identification failed"];
    const types: NotificationType[] = ["forum_mention", "blog_comment_reply", "identification_failed"];
    for (const [i, t] of types.entries()) await quietNotification(u.userId, t, titles[i]!, yesterday);
    const late = await quietNotification(u.userId, "forum_mention", "After the period began", "2026-12-03T07:30:00.000Z");
    const held = await db.select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, u.userId)).all();
    expect(held.map((h) => h.status)).toEqual(["held", "held", "held", "held"]);

    const now = Date.parse("2026-12-03T08:30:00Z"); // 09:30 in Berlin: the 3 December period began at 07:00 UTC
    expect(await gatherDigests(env, now)).toBeGreaterThanOrEqual(1);
    expect(await gatherDigests(env, now + 60_000)).toBe(0);
    const rows = await db.select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, u.userId)).all();
    const digest = rows.find((r) => r.type === "digest")!;
    expect(digest).toMatchObject({ status: "queued", period: "daily:2026-12-03", channel: "email" });
    expect(rows.filter((r) => r.digestId === digest.id)).toHaveLength(3);
    expect(rows.find((r) => r.notificationId === late)!.status).toBe("held");

    await runJobs([digest.id, digest.id]);
    const mails = mailsTo(u.email);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.subject).toBe("Your daily Plant Community digest: 3 updates");
    for (const t of titles) expect(mails[0]!.text).toContain(t);
    expect(mails[0]!.text).not.toContain("After the period began");
    expect(mails[0]!.headers?.["List-Unsubscribe-Post"]).toBe("List-Unsubscribe=One-Click");
    // The digest's one-click link, followed as a mailbox provider does, stops every email that can
    // be stopped (a digest gathers many types), and the mail's own link is the same one.
    const link = /<(https:[^>]+)>/.exec(mails[0]!.headers?.["List-Unsubscribe"] ?? "")?.[1];
    expect(link).toBeDefined();
    expect(mails[0]!.text).toContain(link!);
    const unsubscribed = await call(link!.replace(BASE, ""), {
      method: "POST",
      body: "List-Unsubscribe=One-Click",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    expect(unsubscribed.status).toBe(200);
    const after = await json<{ types: Record<string, { email: boolean }> }>(
      await call("/api/v1/notifications/preferences/", { bearer: u.access }),
      200,
    );
    for (const [type, channels] of Object.entries(after.types)) expect(channels.email, type).toBe(type === "security");
    // The late one goes in the next day's digest, not in a second one today.
    expect(await gatherDigests(env, now + 3600_000)).toBe(0);
    await gatherDigests(env, Date.parse("2026-12-04T07:05:00Z"));
    const next = (await db.select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, u.userId)).all()).find(
      (r) => r.period === "daily:2026-12-04",
    );
    expect(next?.status).toBe("queued");
  });

  it("a type whose email was turned off (one-click unsubscribe) after its mail was held is left out of the digest", async () => {
    const u = await verifiedUser(); // daily by default
    await quietNotification(u.userId, "forum_mention", "Mention after unsubscribing", "2026-12-02T10:00:00.000Z");
    await quietNotification(u.userId, "identification_failed", "Still wanted", "2026-12-02T11:00:00.000Z");
    await quietNotification(u.userId, "blog_comment_reply", "Reply after unsubscribing", "2026-12-02T12:00:00.000Z");
    // The reader stops mention mail by the one-click link of an earlier email, and reply mail in the app.
    const { listUnsubscribeHeaders } = await import("../../src/services/unsubscribe");
    const link = /<(https:[^>]+)>/.exec(
      (await listUnsubscribeHeaders(env, { id: u.userId, email: u.email }, "forum_mention"))["List-Unsubscribe"]!,
    )![1]!;
    const unsubscribed = await call(link.replace(BASE, ""), {
      method: "POST",
      body: "List-Unsubscribe=One-Click",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    expect(unsubscribed.status).toBe(200);
    await emailOff(u.access, "blog_comment_reply");
    await gatherDigests(env, Date.parse("2026-12-03T09:00:00Z"));
    const digest = (await digestOf(u.userId))!;
    await runJobs([digest.id]);
    const mails = mailsTo(u.email);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.subject).toBe("Your daily Plant Community digest: 1 update");
    expect(mails[0]!.text).toContain("Still wanted");
    expect(mails[0]!.text).not.toContain("after unsubscribing");

    // Everything in it turned off: no digest at all.
    const v = await verifiedUser();
    await quietNotification(v.userId, "forum_mention", "Nobody wants this", "2026-12-02T10:00:00.000Z");
    await emailOff(v.access, "forum_mention");
    await gatherDigests(env, Date.parse("2026-12-03T09:00:00Z"));
    const second = await digestOf(v.userId);
    if (second) {
      await runJobs([second.id]);
      expect((await db.select().from(notificationDeliveries).where(eq(notificationDeliveries.id, second.id)).get())?.status).toBe(
        "skipped",
      );
    }
    expect(mailsTo(v.email)).toHaveLength(0);
  });

  it("a reader whose period began is gathered even when more than a thousand others hold mail that is not due yet", async () => {
    // 1 001 weekly readers holding Tuesday's mail (their week began Monday: not due until next
    // Monday), all listed before the daily reader below by id and by the age of their mail.
    const many = sql`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001)`;
    const id = sql`'00000000-0000-7000-8000-' || printf('%012d', i)`;
    await runBatch(db, [
      sql`${many} INSERT INTO users (id, username, email) SELECT ${id}, 'weekly_reader_' || i, 'weekly' || i || '@example.org' FROM n`,
      sql`${many} INSERT INTO notification_preferences (user_id, digest) SELECT ${id}, 'weekly' FROM n`,
      sql`${many} INSERT INTO notification_deliveries (id, user_id, channel, type, dedupe_key, status, created_at)
          SELECT 'w-' || i, ${id}, 'email', 'forum_mention', 'weekly-test:' || i, 'held', '2026-12-01T10:00:00.000Z' FROM n`,
    ]);
    const u = await verifiedUser(); // daily, UTC
    const n = await quietNotification(u.userId, "forum_mention", "Due this morning", "2026-12-02T12:00:00.000Z");
    expect((await deliveriesOf(n))[0]!.status).toBe("held");
    await gatherDigests(env, Date.parse("2026-12-03T09:00:00Z"));
    expect((await deliveriesOf(n))[0]!.status).toBe("digested");
    const weekly = await db.all<{ n: number }>(
      sql`SELECT count(*) AS n FROM notification_deliveries WHERE id LIKE 'w-%' AND status = 'held'`,
    );
    expect(weekly[0]!.n).toBe(1001);
  });

  it("a reader who turns email off has their held mail dropped, not sent", async () => {
    const u = await verifiedUser();
    const n = await quietNotification(u.userId, "forum_mention", "Held", "2026-12-01T10:00:00.000Z");
    await json(await call("/api/v1/notifications/preferences/", { method: "PUT", bearer: u.access, json: { digest: "off" } }), 200);
    await gatherDigests(env, Date.parse("2026-12-03T12:00:00Z"));
    expect((await deliveriesOf(n))[0]).toMatchObject({ status: "skipped" });
  });
});

describe("security mail through the queue", () => {
  it("reaches an unverified address at once, with no unsubscribe headers", async () => {
    const u = await bearerUser();
    await quietNotification(u.userId, "security", "Your Plant Community password was changed");
    const [d] = await db.select().from(notificationDeliveries).where(eq(notificationDeliveries.userId, u.userId)).all();
    await runJobs([d!.id]);
    const [mail] = mailsTo(u.email);
    expect(mail!.headers?.["List-Unsubscribe"]).toBeUndefined();
    expect(mail!.text).not.toMatch(/unsubscribe/i);
  });

  it("the sweep re-queues what never reached the queue", async () => {
    const u = await verifiedUser({ digest: "immediate" });
    const [d] = await deliveriesOf(await quietNotification(u.userId, "forum_mention", "Lost on the way", "2026-12-01T10:00:00.000Z"));
    const { requeueStale } = await import("../../src/services/notification-delivery");
    expect(await requeueStale(env, Date.parse("2026-12-01T10:10:00Z"))).toBeGreaterThanOrEqual(1);
    await eventually(async () => (await deliveriesOf(d!.notificationId!))[0]!.status === "sent");
    expect(mailsTo(u.email)).toHaveLength(1);
  });
});
