/**
 * Notification preferences (API.md §5b, issue 10 item 2): defaults, partial changes per type and
 * channel, digest and time zone; every bad value refused with nothing changed; security email
 * cannot be turned off; one user's preferences are theirs alone.
 */
import { describe, expect, it } from "vitest";
import { NOTIFICATION_DEFAULTS, PREFERENCE_TYPES } from "../../src/services/notification-preferences";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { bearerUser } from "../helpers/users";

const PATH = "/api/v1/notifications/preferences/";
interface Prefs {
  types: Record<string, { in_app: boolean; email: boolean; push: boolean }>;
  digest: string;
  time_zone: string;
}
const get = async (access: string) => json<Prefs>(await call(PATH, { bearer: access }), 200);
const put = (access: string, body: unknown) => call(PATH, { method: "PUT", bearer: access, json: body });

describe("notification preferences", () => {
  it("start at the documented defaults", async () => {
    const u = await bearerUser();
    const prefs = await get(u.access);
    expect(Object.keys(prefs.types).sort()).toEqual([...PREFERENCE_TYPES].sort());
    expect(prefs.types).toEqual(NOTIFICATION_DEFAULTS);
    expect(prefs).toMatchObject({ digest: "daily", time_zone: "UTC" });
    expect(prefs.types.security!.email).toBe(true);
  });

  it("change only what is named, and keep it", async () => {
    const u = await bearerUser();
    const after = await json<Prefs>(
      await put(u.access, {
        types: { forum_reply: { email: true }, care_reminder: { push: false } },
        digest: "weekly",
        time_zone: "Europe/Berlin",
      }),
      200,
    );
    expect(after.types.forum_reply).toEqual({ ...NOTIFICATION_DEFAULTS.forum_reply, email: true });
    expect(after.types.care_reminder).toEqual({ ...NOTIFICATION_DEFAULTS.care_reminder, push: false });
    expect(after.types.forum_mention).toEqual(NOTIFICATION_DEFAULTS.forum_mention);
    expect(after).toMatchObject({ digest: "weekly", time_zone: "Europe/Berlin" });
    expect(await get(u.access)).toEqual(after);

    // A second change keeps the first.
    const again = await json<Prefs>(await put(u.access, { types: { forum_reply: { in_app: false } } }), 200);
    expect(again.types.forum_reply).toEqual({ in_app: false, email: true, push: NOTIFICATION_DEFAULTS.forum_reply.push });
    expect(again).toMatchObject({ digest: "weekly", time_zone: "Europe/Berlin" });
    // Back to a default is stored as "no override".
    const reset = await json<Prefs>(
      await put(u.access, { types: { forum_reply: { in_app: true, email: false } }, digest: "daily", time_zone: "UTC" }),
      200,
    );
    expect(reset.types).toEqual({ ...NOTIFICATION_DEFAULTS, care_reminder: { ...NOTIFICATION_DEFAULTS.care_reminder, push: false } });
  });

  it("accept every IANA zone name in any case, legacy ones and aliases too, saved and answered as the zone's own name", async () => {
    const u = await bearerUser();
    const cases: [string, string][] = [
      ["Europe/Berlin", "Europe/Berlin"],
      ["europe/berlin", "Europe/Berlin"],
      ["AMERICA/PORT-AU-PRINCE", "America/Port-au-Prince"],
      ["US/Pacific", "America/Los_Angeles"],
      ["Asia/Calcutta", "Asia/Kolkata"],
      ["asia/kolkata", "Asia/Kolkata"],
      ["Europe/Kiev", "Europe/Kyiv"],
      ["Europe/Kyiv", "Europe/Kyiv"],
      ["NZ-CHAT", "Pacific/Chatham"],
      ["GMT0", "UTC"],
      ["Etc/UTC", "UTC"],
      ["est5edt", "EST5EDT"],
      ["EST5EDT", "EST5EDT"],
      ["etc/gmt+5", "Etc/GMT+5"],
      ["Etc/GMT-14", "Etc/GMT-14"],
      ["Pacific/Kiritimati", "Pacific/Kiritimati"],
      ["America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"],
      ["America/Buenos_Aires", "America/Argentina/Buenos_Aires"],
    ];
    for (const [sent, saved] of cases) {
      const prefs = await json<Prefs>(await put(u.access, { time_zone: sent }), 200);
      expect(prefs.time_zone, sent).toBe(saved);
      expect((await get(u.access)).time_zone, sent).toBe(saved);
    }
  });

  it("save every zone this runtime knows as one name that names the same zone and saves as itself", async () => {
    const { canonicalTimeZone } = await import("../../src/services/notification-preferences");
    const zones = Intl.supportedValuesOf("timeZone");
    expect(zones.length).toBeGreaterThan(300);
    const runtimeName = (zone: string) => new Intl.DateTimeFormat("en", { timeZone: zone }).resolvedOptions().timeZone;
    for (const zone of zones) {
      const saved = canonicalTimeZone(zone);
      expect(saved, zone).not.toBeNull();
      expect(runtimeName(saved!), zone).toBe(runtimeName(zone));
      expect(canonicalTimeZone(saved!), zone).toBe(saved);
      expect(canonicalTimeZone(zone.toLowerCase()), zone).toBe(saved);
    }
  });

  it("answer a zone saved before names were made canonical by its own name (no migration needed)", async () => {
    const { env } = await import("cloudflare:workers");
    const { database } = await import("../../src/db/client");
    const { notificationPreferences } = await import("../../src/db/schema");
    const { eq } = await import("drizzle-orm");
    const u = await bearerUser();
    await json(await put(u.access, { digest: "weekly", time_zone: "UTC" }), 200);
    const np = notificationPreferences;
    for (const [stored, answered] of [
      ["europe/berlin", "Europe/Berlin"],
      ["US/Pacific", "America/Los_Angeles"],
      ["Asia/Calcutta", "Asia/Kolkata"],
    ]) {
      await database(env).update(np).set({ timeZone: stored }).where(eq(np.userId, u.userId));
      expect((await get(u.access)).time_zone, stored).toBe(answered);
      // A change that leaves the zone alone answers it canonical too, and the change holds.
      const after = await json<Prefs>(await put(u.access, { types: { forum_reply: { push: false } } }), 200);
      expect(after.time_zone, stored).toBe(answered);
      await json(await put(u.access, { types: { forum_reply: { push: true } } }), 200);
    }
  });

  it("refuse unknown types and channels, non-booleans, security email off, bad digests and time zones — nothing changed", async () => {
    const u = await bearerUser();
    await json(await put(u.access, { digest: "weekly" }), 200);
    const before = await get(u.access);
    const cases: [unknown, string][] = [
      [{ types: { forum_replies: { email: true } } }, "types.forum_replies"],
      [{ types: { forum_reply: { sms: true } } }, "types.forum_reply.sms"],
      [{ types: { forum_reply: { email: "yes" } } }, "types.forum_reply.email"],
      [{ types: { security: { email: false } } }, "types.security.email"],
      [{ digest: "hourly" }, "digest"],
      [{ time_zone: "Mars/Olympus_Mons" }, "time_zone"],
      [{ time_zone: "../../etc/passwd" }, "time_zone"],
      [{ time_zone: "+05:30" }, "time_zone"], // an offset, not a zone: it would not follow summer time
      [{ time_zone: "Europe/Berlin\n" }, "time_zone"],
    ];
    for (const [body, field] of cases) {
      const error = await expectError(
        await put(u.access, {
          ...(body as object),
          types: { care_reminder: { push: false }, ...((body as { types?: object }).types ?? {}) },
        }),
        400,
        "VALIDATION_ERROR",
      );
      expect(Object.keys(error.errors ?? {}), JSON.stringify(body)).toContain(field);
    }
    await expectError(await put(u.access, { types: { forum_reply: true } }), 400, "VALIDATION_ERROR");
    await expectError(await put(u.access, { colour: "green" }), 400, "VALIDATION_ERROR");
    await expectError(await put(u.access, [1, 2]), 400, "VALIDATION_ERROR");
    // A "__proto__" key, at either level, would set the parsed object's prototype: refused.
    for (const raw of [
      '{"types":{"__proto__":{"forum_reply":{"email":false}}}}',
      '{"types":{"forum_reply":{"__proto__":{"email":false}}}}',
    ]) {
      const res = await call(PATH, { method: "PUT", bearer: u.access, body: raw, headers: { "Content-Type": "application/json" } });
      expect(Object.keys((await expectError(res, 400, "VALIDATION_ERROR")).errors ?? {}).join(), raw).toMatch(/^types/);
    }
    // The valid part of each refused request (care_reminder.push) was not applied either.
    expect(await get(u.access)).toEqual(before);
  });

  it("are private: signed-in only, and one user's change is not another's", async () => {
    await expectError(await call(PATH), 401, "AUTHENTICATION_REQUIRED");
    await expectError(await call(PATH, { method: "PUT", json: { digest: "off" } }), 401, "AUTHENTICATION_REQUIRED");
    const [a, b] = [await bearerUser(), await bearerUser()];
    await json(await put(a.access, { digest: "off", types: { forum_mention: { email: false } } }), 200);
    expect(await get(b.access)).toMatchObject({ digest: "daily", types: { forum_mention: NOTIFICATION_DEFAULTS.forum_mention } });
  });
});

describe("concurrent changes", () => {
  it("two changes at once both hold: a one-click unsubscribe landing beside a PUT from the app is not undone by it", async () => {
    const { env } = await import("cloudflare:workers");
    const { unsubscribe, unsubscribeToken } = await import("../../src/services/unsubscribe");
    const u = await bearerUser();
    await json(await put(u.access, { digest: "weekly" }), 200); // the row exists: both writers read it
    for (let round = 0; round < 3; round += 1) {
      const token = await unsubscribeToken(env, u.userId, "forum_mention");
      const flip = round % 2 === 0;
      const [answer] = await Promise.all([
        put(u.access, { types: { forum_reply: { push: !flip } } }),
        unsubscribe(env, token),
        put(u.access, { types: { care_reminder: { in_app: !flip } } }),
      ]);
      expect(answer.status).toBe(200);
      const after = await get(u.access);
      expect(after.types.forum_mention!.email, `round ${round}`).toBe(false);
      expect(after.types.forum_reply!.push, `round ${round}`).toBe(!flip);
      expect(after.types.care_reminder!.in_app, `round ${round}`).toBe(!flip);
      expect(after.digest).toBe("weekly");
      await json(await put(u.access, { types: { forum_mention: { email: true } } }), 200);
    }
  });
});
