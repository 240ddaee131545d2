import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { createEmulators, hostMap } from "../../emulators/index";
import type { EmulatedSubscription } from "../../emulators/push";
import { encryptPushPayload, generateVapidKeys, sendPush, vapidHeaders, type VapidKeys } from "../../src/lib/web-push";

const emulators = createEmulators();
const push = emulators.push;
let vapid: VapidKeys;
let spy: ReturnType<typeof vi.spyOn> | undefined;

beforeEach(async () => {
  emulators.reset();
  vapid = { ...(await generateVapidKeys()), subject: "mailto:push@plantcommunity.test" };
  const route = hostMap(emulators);
  spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const answer = route(input, init);
    if (!answer) throw new TypeError(`test tried to reach the internet: ${String(input)}`);
    return answer;
  });
});

afterEach(() => {
  spy?.mockRestore();
});

/** A push request built by hand, for what sendPush would never send. */
async function pushRequest(
  subscription: EmulatedSubscription,
  options: { authorization?: string | null; body?: Uint8Array; headers?: Record<string, string> } = {},
): Promise<Request> {
  const authorization =
    options.authorization === undefined ? (await vapidHeaders(subscription.endpoint, vapid)).Authorization : options.authorization;
  const body = options.body ?? (await encryptPushPayload(new TextEncoder().encode("hi"), subscription.keys));
  return new Request(subscription.endpoint, {
    method: "POST",
    headers: { TTL: "60", "Content-Encoding": "aes128gcm", ...(authorization ? { Authorization: authorization } : {}), ...options.headers },
    body,
  });
}

async function reason(response: Response): Promise<string> {
  return ((await response.json()) as { reason: string }).reason;
}

describe("push emulator: delivery", () => {
  it("accepts a push sent with sendPush, decrypts it and records what a device would get", async () => {
    const subscription = await push.subscribe();
    expect(subscription.endpoint).toMatch(/^https:\/\/push\.emulator\.test\/push\/[A-Za-z0-9]+$/);

    const payload = JSON.stringify({ title: "Your monstera needs water", url: "/plants/42" });
    const answer = await sendPush(subscription, payload, vapid, { ttlS: 3600, urgency: "high", topic: "plant42" });

    expect(answer).toEqual({ status: 201 });
    expect(push.received).toEqual([
      { endpoint: subscription.endpoint, payload, ttl: 3600, urgency: "high", topic: "plant42", receivedAt: expect.any(String) },
    ]);
  });

  it("answers 201 with a Location and defaults Urgency to normal", async () => {
    const subscription = await push.subscribe();
    const response = await push.handle(await pushRequest(subscription));
    expect(response.status).toBe(201);
    expect(response.headers.get("location")).toMatch(/^https:\/\/push\.emulator\.test\/message\//);
    expect(push.received[0]).toMatchObject({ payload: "hi", ttl: 60, urgency: "normal", topic: null });
  });

  it("answers 404 for an unknown subscription and 410 once it expired", async () => {
    const subscription = await push.subscribe();
    const unknown = { ...subscription, endpoint: "https://push.emulator.test/push/nobody" };
    expect(await sendPush(unknown, "x", vapid, { ttlS: 60 })).toEqual({ status: 404 });

    push.expire(subscription.endpoint);
    expect(await sendPush(subscription, "x", vapid, { ttlS: 60 })).toEqual({ status: 410 });
    expect(push.received).toHaveLength(0);
  });

  it("answers 413 for a body over 4096 bytes", async () => {
    const subscription = await push.subscribe();
    const response = await push.handle(await pushRequest(subscription, { body: new Uint8Array(4097) }));
    expect(response.status).toBe(413);
    expect(await reason(response)).toMatch(/4097 bytes/);
  });

  it("answers 400 for a body it cannot decrypt (encrypted for another browser, or modified)", async () => {
    const subscription = await push.subscribe();
    const someoneElse = await push.subscribe();
    const forOther = await encryptPushPayload(new TextEncoder().encode("secret"), someoneElse.keys);
    const wrongKeys = await push.handle(await pushRequest(subscription, { body: forOther }));
    expect(wrongKeys.status).toBe(400);
    expect(await reason(wrongKeys)).toMatch(/^cannot decrypt: AES-GCM authentication failed/);

    const body = await encryptPushPayload(new TextEncoder().encode("secret"), subscription.keys);
    body[body.length - 1]! ^= 0x80;
    expect((await push.handle(await pushRequest(subscription, { body }))).status).toBe(400);
    expect(push.received).toHaveLength(0);
  });

  it("answers 400 for a wrong Content-Encoding or TTL", async () => {
    const subscription = await push.subscribe();
    const aesgcm = await push.handle(await pushRequest(subscription, { headers: { "Content-Encoding": "aesgcm" } }));
    expect(aesgcm.status).toBe(400);
    expect(await reason(aesgcm)).toBe("Content-Encoding must be aes128gcm");
    for (const ttl of ["-1", "1.5", "soon"]) {
      expect((await push.handle(await pushRequest(subscription, { headers: { TTL: ttl } }))).status).toBe(400);
    }
  });

  it("failNext scripts the next answers, Retry-After included, then delivers again", async () => {
    const subscription = await push.subscribe();
    push.failNext(429, 7);
    push.failNext(500);
    expect(await sendPush(subscription, "x", vapid, { ttlS: 60 })).toEqual({ status: 429, retryAfterS: 7 });
    expect(await sendPush(subscription, "x", vapid, { ttlS: 60 })).toEqual({ status: 500 });
    expect(await sendPush(subscription, "x", vapid, { ttlS: 60 })).toEqual({ status: 201 });
    expect(push.received).toHaveLength(1);
  });

  it("sendPush throws when the push service cannot be reached", async () => {
    const subscription = await push.subscribe();
    await expect(sendPush({ ...subscription, endpoint: "https://push.elsewhere.test/push/x" }, "x", vapid, { ttlS: 60 })).rejects.toThrow(
      /reach the internet/,
    );
  });

  it("sendPush's error names the endpoint by its origin only, keeping the error's kind", async () => {
    // The endpoint is a capability; whoever calls sendPush logs what its failure says. The runtime
    // names the URL as parsed (a host given in capitals is lower-case there).
    const subscription = await push.subscribe();
    const endpoint = new URL("https://push.elsewhere.test/push/a-device-capability");
    for (const given of [endpoint.href, endpoint.href.replace(endpoint.host, endpoint.host.toUpperCase())]) {
      spy?.mockImplementationOnce(async (input: RequestInfo | URL) => {
        throw new TypeError(`Network connection lost: ${new URL(String(input)).href}`);
      });
      const failure = await sendPush({ ...subscription, endpoint: given }, "x", vapid, { ttlS: 60 }).then(
        () => null,
        (err: unknown) => err as Error,
      );
      expect(failure?.name).toBe("TypeError");
      expect(failure?.message).toBe(`Network connection lost: ${endpoint.origin}/[endpoint]`);
      expect(String(failure)).not.toContain(endpoint.pathname);
    }
  });
});

describe("push emulator: VAPID", () => {
  it("answers 401 without a vapid Authorization", async () => {
    const subscription = await push.subscribe();
    expect((await push.handle(await pushRequest(subscription, { authorization: null }))).status).toBe(401);
    expect((await push.handle(await pushRequest(subscription, { authorization: "Bearer abc" }))).status).toBe(401);
  });

  it("answers 403 when the JWT was not signed by the key in k", async () => {
    const subscription = await push.subscribe();
    const other = await generateVapidKeys();
    const { Authorization } = await vapidHeaders(subscription.endpoint, vapid);
    const swapped = Authorization.replace(/k=[\w-]+$/, `k=${other.publicKey}`);
    const response = await push.handle(await pushRequest(subscription, { authorization: swapped }));
    expect(response.status).toBe(403);
    expect(await reason(response)).toMatch(/signature verification failed/);
  });

  it("answers 403 when a restricted subscription gets another application server key", async () => {
    const subscription = await push.subscribe({ applicationServerKey: vapid.publicKey });
    expect(await sendPush(subscription, "x", vapid, { ttlS: 60 })).toEqual({ status: 201 });
    const other = { ...(await generateVapidKeys()), subject: vapid.subject };
    expect(await sendPush(subscription, "x", other, { ttlS: 60 })).toEqual({ status: 403 });
  });

  it("answers 403 for a JWT meant for another origin", async () => {
    const subscription = await push.subscribe();
    const { Authorization } = await vapidHeaders("https://fcm.googleapis.com/fcm/send/abc", vapid);
    const response = await push.handle(await pushRequest(subscription, { authorization: Authorization }));
    expect(response.status).toBe(403);
    expect(await reason(response)).toMatch(/"aud"/);
  });

  it("answers 403 for an expired JWT and one valid for more than 24 hours", async () => {
    const subscription = await push.subscribe();
    const nowS = Math.floor(Date.now() / 1000);
    const expired = await vapidHeaders(subscription.endpoint, vapid, nowS - 13 * 3600);
    const expiredAnswer = await push.handle(await pushRequest(subscription, { authorization: expired.Authorization }));
    expect(expiredAnswer.status).toBe(403);
    expect(await reason(expiredAnswer)).toMatch(/"exp"/);

    const tooLong = await vapidHeaders(subscription.endpoint, vapid, nowS + 13 * 3600);
    const tooLongAnswer = await push.handle(await pushRequest(subscription, { authorization: tooLong.Authorization }));
    expect(tooLongAnswer.status).toBe(403);
    expect(await reason(tooLongAnswer)).toBe("JWT exp is more than 24 hours ahead");
  });
});

describe("push emulator: combined server", () => {
  const origin = "http://127.0.0.1:8790";

  it("hands out endpoints on the server's origin over HTTP and delivers through /push", async () => {
    const local = createEmulators();
    const created = await local.route(new Request(`${origin}/push`, { method: "POST" }));
    expect(created.status).toBe(201);
    const subscription = (await created.json()) as EmulatedSubscription;
    expect(subscription.endpoint.startsWith(`${origin}/push/`)).toBe(true);

    const delivered = await local.route(await pushRequest(subscription));
    expect(delivered.status).toBe(201);
    const list = (await (await local.route(new Request(`${origin}/push`))).json()) as { received: { payload: string }[] };
    expect(list.received.map((r) => r.payload)).toEqual(["hi"]);

    local.reset();
    expect(local.push.received).toHaveLength(0);
    expect((await local.route(await pushRequest(subscription))).status).toBe(404);
  });

  it("uses pushBaseUrl for subscriptions made in-process", async () => {
    const local = createEmulators({ pushBaseUrl: `${origin}/` });
    expect((await local.push.subscribe()).endpoint.startsWith(`${origin}/push/`)).toBe(true);
  });
});
