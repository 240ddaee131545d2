/**
 * The identification allowance (IDENTIFY_RATE_LIMIT) pays for provider work. Bad input loses
 * nothing: an upload refused with 400, a retry refused with 409 (or not counted at all, when its
 * request is read as not retryable), a job the queue refused (503) and a synchronous
 * identification no provider could answer each give the allowance back. Each
 * case spends the whole allowance on the failure first, then shows the next good call is not
 * refused with 429, as it was when the failure kept the hit.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app";
import { createLogger } from "../../src/lib/logger";
import { IdentificationRequests, retryOwnRequest } from "../../src/services/queued-requests";
import { spendRateLimit } from "../../src/services/rate-limits";
import { makePng } from "../helpers/images";
import { freshIp } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { queueWorkDone } from "../helpers/queue-work";
import { envRacingStatement } from "../helpers/racing-env";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();
// The requests a test accepted run on the real queue: done before the next test, whose provider
// failures (emulators' `times`) they would otherwise spend.
afterEach(() => queueWorkDone(15_000), 20_000);

const ONE_AN_HOUR = { IDENTIFY_RATE_LIMIT: "1/3600" };
const REQUESTS = "/api/v1/plant-identification/requests/";
const DISEASES = "/api/v1/plant-identification/disease-requests/";
const IDENTIFY = "/api/v1/plant-identification/identify/";

const photo = (seed: string) => makePng(320, 240, { seed: `${seed}-${Math.random()}` });

function form(field: string, bytes: Uint8Array | string, extra: Record<string, string> = {}): FormData {
  const f = new FormData();
  f.append(field, new File([bytes], "leaf.png", { type: "image/png" }));
  for (const [k, v] of Object.entries(extra)) f.append(k, v);
  return f;
}

/** POSTs `body` to `path` as the app runs with a one-an-hour allowance and `overrides`. */
async function post(path: string, body: FormData | undefined, headers: Record<string, string>, overrides: Partial<Env> = {}) {
  const ctx = createExecutionContext();
  const res = await createApp().request(path, { method: "POST", body, headers }, { ...env, ...ONE_AN_HOUR, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

describe("the identification allowance is given back when nothing was identified", () => {
  for (const [name, path, extra] of [
    ["an identification request", REQUESTS, {}],
    ["a disease request", DISEASES, { symptoms_description: "Yellow spots spreading on the older leaves." }],
  ] as const) {
    it(`${name} refused for its upload (400), then a good one is accepted`, async () => {
      const u = await bearerUser();
      const auth = { Authorization: `Bearer ${u.access}` };
      expect((await post(path, form("image_1", "not an image at all", extra), auth)).status).toBe(400);
      expect((await post(path, form("image_1", await photo("refund"), { ...extra, organz: "leaf" }), auth)).status).toBe(400);
      expect((await post(path, form("image_1", await photo("refund"), extra), auth)).status).toBe(202);
      // The allowance was spent by that one: the next is refused, so the budget still counts.
      expect((await post(path, form("image_1", await photo("refund"), extra), auth)).status).toBe(429);
    });
  }

  it("a request whose job the queue refused (503), then a good one is accepted", async () => {
    const u = await bearerUser();
    const auth = { Authorization: `Bearer ${u.access}` };
    const queueDown = { IDENTIFY_QUEUE: { send: () => Promise.reject(new Error("queue down")) } as unknown as Queue };
    expect((await post(REQUESTS, form("image_1", await photo("queue")), auth, queueDown)).status).toBe(503);
    expect((await post(REQUESTS, form("image_1", await photo("queue")), auth)).status).toBe(202);
  });

  it("a retry refused because the request is not retryable (409), then a good request is accepted", async () => {
    const u = await bearerUser();
    const auth = { Authorization: `Bearer ${u.access}` };
    const id = await pendingRequest("identify", u.userId, await photo("retry"));
    await env.DB.prepare("UPDATE identification_requests SET status = 'completed' WHERE id = ?").bind(id).run();
    expect((await post(`${REQUESTS}${id}/retry/`, undefined, auth)).status).toBe(409);
    expect((await post(REQUESTS, form("image_1", await photo("retry")), auth)).status).toBe(202);
  });

  it("a synchronous identification refused for its photo (400), or that no provider answered (503), then a good one answers", async () => {
    const ip = { "CF-Connecting-IP": freshIp() };
    expect((await post(IDENTIFY, form("image", "not an image at all"), ip)).status).toBe(400);
    emulators.plantId.setMode({ failure: "500", times: 1 });
    emulators.plantnet.setMode({ failure: "500", times: 1 });
    expect((await post(IDENTIFY, form("image", await photo("sync")), ip)).status).toBe(503);
    expect((await post(IDENTIFY, form("image", await photo("sync")), ip)).status).toBe(200);
    expect((await post(IDENTIFY, form("image", await photo("sync")), ip)).status).toBe(429);
  });
});

/**
 * The RATE_LIMITER binding, watched: `calls` lists the methods called on its objects, in order;
 * with `refund`, their `refund` is answered by it (the limiter unreachable or failing just then).
 */
function watchedLimiter(refund?: (at: number) => Promise<void>) {
  const calls: string[] = [];
  const RATE_LIMITER = new Proxy(env.RATE_LIMITER, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "get") return typeof value === "function" ? value.bind(target) : value;
      return (id: DurableObjectId) => {
        const stub = target.get(id);
        return new Proxy(stub, {
          get(s, p) {
            return (...args: unknown[]) => {
              calls.push(String(p));
              if (p === "refund" && refund) return refund(args[0] as number);
              // An RPC stub's members are themselves stubs (their `apply` would be a remote call): called by name.
              return (s as unknown as Record<string | symbol, (...a: unknown[]) => unknown>)[p]!(...args);
            };
          },
        });
      };
    },
  });
  return { RATE_LIMITER: RATE_LIMITER as unknown as Env["RATE_LIMITER"], calls: () => calls };
}

describe("a refund the rate limiter does not take leaves the answer as it was, and is logged", () => {
  afterEach(() => vi.restoreAllMocks());

  const failures = {
    "rejects (unreachable)": () => Promise.reject(new Error("rate limiter unreachable")),
    "throws at once": () => {
      throw new Error("rate limiter binding broken");
    },
  } as const;

  for (const [how, refund] of Object.entries(failures)) {
    it(`its refund ${how}: 400, 503 and the synchronous 400 and 503 keep their status and code`, async () => {
      const warned = vi.spyOn(console, "warn").mockImplementation(() => {});
      // Ten an hour: each failure below keeps its hit, since its refund is lost.
      const failing = {
        RATE_LIMITER: watchedLimiter(refund).RATE_LIMITER,
        IDENTIFY_RATE_LIMIT: "10/3600",
      };
      const u = await bearerUser();
      const auth = { Authorization: `Bearer ${u.access}` };
      const answers: [Response, number, string][] = [];
      answers.push([await post(REQUESTS, form("image_1", "not an image at all"), auth, failing), 400, "VALIDATION_ERROR"]);
      const queueDown = { IDENTIFY_QUEUE: { send: () => Promise.reject(new Error("queue down")) } as unknown as Queue };
      answers.push([
        await post(REQUESTS, form("image_1", await photo("refund-fails")), auth, { ...failing, ...queueDown }),
        503,
        "QUEUE_UNAVAILABLE",
      ]);
      const ip = { "CF-Connecting-IP": freshIp() };
      answers.push([await post(IDENTIFY, form("image", "not an image at all"), ip, failing), 400, ""]);
      emulators.plantId.setMode({ failure: "500", times: 1 });
      emulators.plantnet.setMode({ failure: "500", times: 1 });
      answers.push([await post(IDENTIFY, form("image", await photo("refund-fails")), ip, failing), 503, "PROVIDERS_UNAVAILABLE"]);
      for (const [res, status, code] of answers) {
        expect(res.status).toBe(status);
        const body = (await res.json()) as { code?: string };
        if (code) expect(body.code).toBe(code);
      }
      // Each lost refund is logged, with the kind of limit and not its key (an IP address here).
      const lines = warned.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>);
      const lost = lines.filter((l) => l.msg === "giving back a rate-limit hit failed; it stays spent");
      // The synchronous calls, from an address, spend the address's allowance beside their own.
      expect(lost.map((l) => l.limit).sort()).toEqual(
        ["identify:user", "identify:user", "identify:ip", "identify-address:ip", "identify:ip", "identify-address:ip"].sort(),
      );
      expect(JSON.stringify(lost)).not.toContain(ip["CF-Connecting-IP"]);
    });
  }
});

describe("a refund never gives back more than was spent", () => {
  const logger = createLogger({}, "error");

  it("a refund called twice reaches the limiter once", async () => {
    const limiter = watchedLimiter(async () => {});
    const spender = { ...env, RATE_LIMITER: limiter.RATE_LIMITER };
    const refund = await spendRateLimit(spender, `test:refund-twice:${crypto.randomUUID()}`, { limit: 2, windowMs: 3_600_000 }, logger);
    await refund();
    await refund();
    expect(limiter.calls()).toEqual(["consume", "refund"]);
  });

  it("a call refused by the limit has nothing to give back: a refused synchronous identification with a bad photo stays refused", async () => {
    const ip = { "CF-Connecting-IP": freshIp() };
    expect((await post(IDENTIFY, form("image", await photo("spent")), ip)).status).toBe(200);
    // Refused by the limit (429), with a photo that would have been refused too: no hit comes back.
    expect((await post(IDENTIFY, form("image", "not an image at all"), ip)).status).toBe(429);
    expect((await post(IDENTIFY, form("image", await photo("spent")), ip)).status).toBe(429);
  });
});

describe("a retry: refused for its request's state before the allowance is spent, counted when it queues", () => {
  it("a request that is not retryable is refused (409) without a round trip to the limiter", async () => {
    const u = await bearerUser();
    const auth = { Authorization: `Bearer ${u.access}` };
    const id = await pendingRequest("identify", u.userId, await photo("retry-read"));
    await env.DB.prepare("UPDATE identification_requests SET status = 'completed' WHERE id = ?").bind(id).run();
    const limiter = watchedLimiter();
    const res = await post(`${REQUESTS}${id}/retry/`, undefined, auth, { RATE_LIMITER: limiter.RATE_LIMITER });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { code: string }).code).toBe("INVALID_STATE");
    expect(limiter.calls()).toEqual([]);
  });

  it("retrying in a loop does not dodge the allowance: the queued retry is counted, the next is refused", async () => {
    const u = await bearerUser();
    const auth = { Authorization: `Bearer ${u.access}` };
    const id = await pendingRequest("identify", u.userId, await photo("retry-loop"));
    const fail = () => env.DB.prepare("UPDATE identification_requests SET status = 'failed' WHERE id = ?").bind(id).run();
    await fail();
    expect((await post(`${REQUESTS}${id}/retry/`, undefined, auth)).status).toBe(202);
    // Pending again: refused for its state, which spends nothing and gives nothing back.
    expect((await post(`${REQUESTS}${id}/retry/`, undefined, auth)).status).toBe(409);
    await fail();
    expect((await post(`${REQUESTS}${id}/retry/`, undefined, auth)).status).toBe(429);
  });

  it("a request ended between the read and the UPDATE is still refused there (409), and the allowance comes back", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await photo("retry-race"));
    await env.DB.prepare("UPDATE identification_requests SET status = 'failed' WHERE id = ?").bind(id).run();
    const racing = envRacingStatement(/^update "identification_requests"/i, () =>
      env.DB.prepare("UPDATE identification_requests SET status = 'completed' WHERE id = ?").bind(id).run(),
    );
    const limiter = watchedLimiter();
    const raced = { ...racing.env, RATE_LIMITER: limiter.RATE_LIMITER };
    const refused = await retryOwnRequest(
      raced,
      IdentificationRequests,
      { userId: u.userId, address: "unknown" },
      id,
      createLogger({}, "error"),
    ).catch((e: unknown) => e);
    expect(racing.fired()).toBe(true);
    expect(refused).toMatchObject({ status: 409, code: "INVALID_STATE" });
    expect(limiter.calls()).toEqual(["consume", "refund"]);
    const row = await env.DB.prepare("SELECT status, run FROM identification_requests WHERE id = ?").bind(id).first();
    expect(row).toMatchObject({ status: "completed" });
  });
});
