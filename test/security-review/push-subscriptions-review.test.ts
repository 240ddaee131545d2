// Security review: Web Push subscriptions, attacked as a deployed server sees them. The test runs
// are local (ENVIRONMENT=test), where localhost and 127.0.0.1 are allowed so the emulator can be
// the push service; these attacks run the same request against a deployed configuration, where
// nothing but the listed push services may be the endpoint: no loopback spelling, no IP literal
// (v4 in any notation, v6, v4-mapped v6), no plain http, no other port, no credentials. Each is
// refused at subscribe time with nothing stored, and a row holding one (written before a list
// change, say) is refused again at send time. The attacks held; these tests keep them held.
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { pushSubscriptions } from "../../src/db/schema";
import { pushServiceProblem } from "../../src/services/push-subscriptions";
import { BASE, call, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();
const SUBS = "/api/v1/notifications/push/subscriptions/";
const deployed = { ...env, ENVIRONMENT: "production" } as typeof env;

/** POSTs a subscription as the deployed Worker would receive it. */
async function subscribeDeployed(access: string, body: unknown): Promise<Response> {
  const worker = (await import("../../src/index")).default as ExportedHandler<typeof env>;
  const ctx = createExecutionContext();
  const res = await worker.fetch!(
    new Request(`${BASE}${SUBS}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${access}`, "Content-Type": "application/json", "CF-Connecting-IP": "203.0.113.78" },
      body: JSON.stringify(body),
    }) as Request<unknown, IncomingRequestCfProperties>,
    deployed,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

const HOSTILE = [
  "http://localhost/x",
  "https://localhost/x",
  "https://localhost./x",
  "http://127.0.0.1:8787/api/v1/auth/logout-all/",
  "https://127.0.0.1/x",
  "https://127.1/x",
  "https://2130706433/x",
  "https://0x7f000001/x",
  "https://0.0.0.0/x",
  "https://[::1]/x",
  "https://[::ffff:127.0.0.1]/x",
  "https://[fd00::1]/x",
  "https://169.254.169.254/latest/meta-data/",
  "https://10.0.0.1/x",
  "http://fcm.googleapis.com/fcm/send/x",
  "https://fcm.googleapis.com:444/fcm/send/x",
  "https://user@fcm.googleapis.com/fcm/send/x",
  "https://fcm.googleapis.com.attacker.test/fcm/send/x",
  "https://attacker.test/?fcm.googleapis.com",
  "https://push.apple.com.attacker.test/x",
];

describe("a deployed server posts pushes to the listed push services only", () => {
  it("the deployed configuration is not local: no loopback exception", () => {
    expect(pushServiceProblem(deployed, "https://fcm.googleapis.com/fcm/send/abc")).toBeNull();
    expect(pushServiceProblem(deployed, "https://web.push.apple.com/abc")).toBeNull();
    expect(pushServiceProblem(env, "http://127.0.0.1:9999/x")).toBeNull();
    expect(pushServiceProblem(deployed, "http://127.0.0.1:9999/x")).not.toBeNull();
  });

  it("refuses every loopback, private, IP-literal, plain-http, odd-port, credentialed or look-alike endpoint: 400, nothing stored", async () => {
    const u = await bearerUser();
    const good = await emulators.push.subscribe();
    for (const endpoint of HOSTILE) {
      const res = await subscribeDeployed(u.access, { endpoint, keys: good.keys });
      const body = await json<{ code: string; errors?: Record<string, string[]> }>(res, 400);
      expect(body.code, endpoint).toBe("VALIDATION_ERROR");
      expect(Object.keys(body.errors ?? {}), endpoint).toEqual(["endpoint"]);
    }
    expect(await database(env).select().from(pushSubscriptions).where(eq(pushSubscriptions.userId, u.userId)).all()).toEqual([]);
    // Control: the same request with a listed push service is taken.
    const listed = await subscribeDeployed(u.access, { endpoint: "https://fcm.googleapis.com/fcm/send/review-control", keys: good.keys });
    expect(listed.status).toBe(201);
    await call(SUBS, { method: "DELETE", bearer: u.access, json: { endpoint: "https://fcm.googleapis.com/fcm/send/review-control" } });
  });

  it("a row already holding one is refused again before any send", () => {
    for (const endpoint of HOSTILE) expect(pushServiceProblem(deployed, endpoint), endpoint).not.toBeNull();
  });
});
