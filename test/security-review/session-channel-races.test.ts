// Standing channels to an account (the calendar feed's URL, a Web Push device) asked for by a
// session just before every session ends (sign-out everywhere, a password change, a provider taking
// over an account a stranger set up): the request was authorised before, its write lands after.
// Sign-out everywhere removes the channels it finds; one written after it must not survive it, or
// an intruder who keeps asking for them in a loop keeps reading the account after being thrown out.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../src/config";
import { issueCalendarFeed } from "../../src/services/calendar-feed";
import { subscribe } from "../../src/services/push-subscriptions";
import { verifyToken } from "../../src/services/tokens";
import { call, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { envRacingStatement } from "../helpers/racing-env";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();

async function intruder() {
  const owner = await bearerUser();
  const claims = await verifyToken(getConfig(env), owner.access, "access");
  const signOutEverywhere = async () => {
    expect((await call("/api/v1/auth/logout-all/", { method: "POST", bearer: owner.access })).status).toBe(200);
  };
  return { owner, claims, signOutEverywhere };
}

const count = async (table: string, userId: string) =>
  (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE user_id = ?`).bind(userId).first<{ n: number }>())?.n;

describe("a channel asked for just before sign-out everywhere", () => {
  it("a calendar feed URL is not issued after it", async () => {
    const { owner, claims, signOutEverywhere } = await intruder();
    const racing = envRacingStatement(/^insert into "calendar_feeds"/i, signOutEverywhere);
    const outcome = await issueCalendarFeed(racing.env, owner.userId, claims).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(outcome).toMatchObject({ status: 401, code: "TOKEN_INVALID" });
    expect(await count("calendar_feeds", owner.userId)).toBe(0);
  });

  it("a push device is not subscribed after it", async () => {
    const { owner, claims, signOutEverywhere } = await intruder();
    const { public_key } = await json<{ public_key: string }>(await call("/api/v1/notifications/push/vapid-public-key/"), 200);
    const device = await emulators.push.subscribe({ applicationServerKey: public_key });
    const racing = envRacingStatement(/^insert into "push_subscriptions"/i, signOutEverywhere);
    const outcome = await subscribe(racing.env, owner.userId, device, "intruder", claims).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(outcome).toMatchObject({ status: 401, code: "TOKEN_INVALID" });
    expect(await count("push_subscriptions", owner.userId)).toBe(0);
  });
});
