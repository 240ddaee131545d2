/**
 * The email provider's webhook (API.md §5b, issue 10 item 5), attacked: deliveries signed by the
 * email emulator the Svix way are accepted and a hard bounce or complaint suppresses the address
 * (its mail is then never sent); forged, re-signed, stale, future and replayed deliveries are
 * refused with nothing changed; soft bounces and deliveries change nothing.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { isSuppressed } from "../../src/services/email-events";
import { deliverEmail } from "../../src/services/mailer";
import { postEmailEvent as post, sentMail as sent, WEBHOOK_SECRET as SECRET } from "../helpers/email-webhook";
import { expectError, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";

const emulators = useEmulators();
const PATH = "/api/v1/notifications/email-events/";
const address = () => `grower-${crypto.randomUUID().slice(0, 8)}@example.com`;

describe("the email webhook", () => {
  it("suppresses a hard-bounced address: its next email is not sent", async () => {
    const to = address();
    const id = await sent(`Grower <${to}>`);
    const body = await json<{ suppressed: string[] }>(await post(await emulators.email.webhook(id, "email.bounced", SECRET)), 200);
    expect(body).toEqual({ received: true, type: "email.bounced", suppressed: [to] });
    expect(await isSuppressed(env, to.toUpperCase())).toBe(true);
    const before = emulators.email.outbox.length;
    expect(await deliverEmail(env, { to, subject: "Again", text: "Hi" })).toEqual({ sent: false, reason: "suppressed" });
    expect(emulators.email.outbox.length).toBe(before);
  });

  it("suppresses on a complaint; ignores deliveries, delays and soft bounces", async () => {
    const complainer = address();
    await json(await post(await emulators.email.webhook(await sent(complainer), "email.complained", SECRET)), 200);
    expect(await isSuppressed(env, complainer)).toBe(true);
    for (const [type, bounceType] of [
      ["email.delivered", undefined],
      ["email.delivery_delayed", undefined],
      ["email.bounced", "Transient"],
    ] as const) {
      const to = address();
      const body = await json<{ suppressed: string[] }>(
        await post(await emulators.email.webhook(await sent(to), type, SECRET, { bounceType })),
        200,
      );
      expect(body.suppressed, type).toEqual([]);
      expect(await isSuppressed(env, to)).toBe(false);
    }
  });

  it("refuses forged, tampered, stale, future and replayed deliveries with nothing changed", async () => {
    const to = address();
    const id = await sent(to);
    const good = await emulators.email.webhook(id, "email.bounced", SECRET);
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      await emulators.email.webhook(id, "email.bounced", "whsec_YW5vdGhlci1zZWNyZXQtb2YtdGhlLWF0dGFja2VyISE="),
      { headers: good.headers, body: good.body.replace("email.bounced", "email.complained") },
      { headers: { ...good.headers, "svix-id": `${good.headers["svix-id"]}x` }, body: good.body },
      { headers: { ...good.headers, "svix-signature": "v1,AAAA" }, body: good.body },
      { headers: { ...good.headers, "svix-signature": "" }, body: good.body },
      { headers: { "content-type": "application/json" }, body: good.body },
      await emulators.email.webhook(id, "email.bounced", SECRET, { timestampS: now - 6 * 60 }),
      await emulators.email.webhook(id, "email.bounced", SECRET, { timestampS: now + 6 * 60 }),
    ];
    for (const delivery of cases) {
      const error = await expectError(await post(delivery), 401, "INVALID_SIGNATURE");
      expect(error.message.length).toBeGreaterThan(0);
    }
    expect(await isSuppressed(env, to)).toBe(false);
    // Several signatures (a rotated secret): one match is enough.
    const rotated = { headers: { ...good.headers, "svix-signature": `v1,AAAA ${good.headers["svix-signature"]}` }, body: good.body };
    expect((await post(rotated)).status).toBe(200);
    expect(await isSuppressed(env, to)).toBe(true);
    // The same delivery again: refused, nothing changed.
    await expectError(await post(good), 409, "CONFLICT");
  });

  it("refuses a signed body that is not an event", async () => {
    const delivery = await emulators.email.webhook(await sent(address()), "email.delivered", SECRET);
    const body = "not json";
    const resigned = await emulators.email.webhook("x", "email.delivered", SECRET);
    // Re-sign the garbage with the real secret, as a confused (not malicious) sender would.
    const { signWebhook } = await import("../../src/services/email-events");
    const ts = Number(resigned.headers["svix-timestamp"]);
    const headers = {
      ...delivery.headers,
      "svix-timestamp": String(ts),
      "svix-signature": await signWebhook(SECRET, delivery.headers["svix-id"]!, ts, body),
    };
    await expectError(await post({ headers, body }), 400, "MALFORMED_REQUEST");
  });

  it("answers 503 when no secret is configured", async () => {
    const { createApp } = await import("../../src/app");
    const res = await createApp().request(
      PATH,
      { method: "POST", body: "{}", headers: { "CF-Connecting-IP": "203.0.113.9" } },
      { ...env, EMAIL_WEBHOOK_SECRET: "" },
    );
    expect(res.status).toBe(503);
  });
});

describe("the record of processed deliveries", () => {
  it("keeps an id only while its delivery could still be replayed: the cron drops it after a day, and a replay then is stale anyway", async () => {
    const { runHousekeeping } = await import("../../src/jobs/housekeeping");
    const { createLogger } = await import("../../src/lib/logger");
    const { sql } = await import("drizzle-orm");
    const { database } = await import("../../src/db/client");
    const db = database(env);
    const now = Date.now();
    const day = 24 * 3600_000;
    await db.run(sql`INSERT INTO email_webhook_events (id, type, received_at) VALUES
      ('msg_old_1', 'email.delivered', ${new Date(now - 2 * day).toISOString()}),
      ('msg_old_2', 'email.opened', ${new Date(now - day - 60_000).toISOString()}),
      ('msg_recent', 'email.delivered', ${new Date(now - 10 * 60_000).toISOString()})`);
    await runHousekeeping(env, createLogger({ test: "email-events-purge" }), now);
    const left = await db.all<{ id: string }>(sql`SELECT id FROM email_webhook_events WHERE id LIKE 'msg_old_%' OR id = 'msg_recent'`);
    expect(left.map((r) => r.id)).toEqual(["msg_recent"]);
    // A delivery older than that cannot be replayed: its signed timestamp is past the 5 minutes.
    const to = address();
    const stale = await emulators.email.webhook(await sent(to), "email.bounced", SECRET, {
      timestampS: Math.floor((now - day) / 1000),
    });
    await expectError(await post(stale), 401, "INVALID_SIGNATURE");
  });
});
