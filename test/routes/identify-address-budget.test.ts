/**
 * The bill many accounts from one address can run up: each identification may cost a Plant.id
 * and a Pl@ntNet call, and an address makes REGISTER_RATE_LIMIT accounts an hour, each with its
 * own IDENTIFY_RATE_LIMIT. IDENTIFY_ADDRESS_RATE_LIMIT is the allowance every account (and the
 * anonymous caller) from one address shares, on every path that queues or makes paid calls.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { makePng } from "../helpers/images";
import { freshIp } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { queueWorkDone } from "../helpers/queue-work";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";

useEmulators();
// Accepted requests run on the real queue: done before the next test.
afterEach(() => queueWorkDone(15_000), 20_000);

/** Plenty per account, two per address: the address's allowance is what refuses. */
const LIMITS = { IDENTIFY_RATE_LIMIT: "100/3600", IDENTIFY_ADDRESS_RATE_LIMIT: "2/3600" };
const REQUESTS = "/api/v1/plant-identification/requests/";
const DISEASES = "/api/v1/plant-identification/disease-requests/";
const IDENTIFY = "/api/v1/plant-identification/identify/";

const photo = () => makePng(320, 240, { seed: `address-${Math.random()}` });

async function form(field: string, extra: Record<string, string> = {}): Promise<FormData> {
  const f = new FormData();
  f.append(field, new File([await photo()], "leaf.png", { type: "image/png" }));
  for (const [k, v] of Object.entries(extra)) f.append(k, v);
  return f;
}

async function post(path: string, body: FormData | undefined, headers: Record<string, string>, overrides: Partial<Env> = {}) {
  const ctx = createExecutionContext();
  const res = await createApp().request(path, { method: "POST", body, headers }, { ...env, ...LIMITS, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

const as = (user: { access: string }, ip: string) => ({ Authorization: `Bearer ${user.access}`, "CF-Connecting-IP": ip });

async function expectRateLimited(res: Response) {
  expect(res.status).toBe(429);
  expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
  const body = (await res.json()) as { code?: string; error?: unknown };
  // The queued routes answer the error envelope, the synchronous route its own `{success: false}` shape.
  expect(JSON.stringify(body)).toContain("RATE_LIMITED");
}

describe("paid identifications per address, across accounts (IDENTIFY_ADDRESS_RATE_LIMIT)", () => {
  const symptoms = { symptoms_description: "Yellow spots spreading on the older leaves." };
  for (const [name, path, extra] of [
    ["identification requests", REQUESTS, {}],
    ["disease requests", DISEASES, symptoms],
  ] as const) {
    it(`${name}: fresh accounts from one address share its allowance; another address is unaffected`, async () => {
      const ip = freshIp();
      const [a, b, c] = [await bearerUser(), await bearerUser(), await bearerUser()];
      expect((await post(path, await form("image_1", extra), as(a, ip))).status).toBe(202);
      expect((await post(path, await form("image_1", extra), as(b, ip))).status).toBe(202);
      await expectRateLimited(await post(path, await form("image_1", extra), as(c, ip)));
      // The refused account's own allowance was given back, not spent: with one an hour of its
      // own, it is still accepted from another address.
      expect((await post(path, await form("image_1", extra), as(c, freshIp()), { IDENTIFY_RATE_LIMIT: "1/3600" })).status).toBe(202);
    });
  }

  it("the synchronous identify/ shares it between signed-in and anonymous callers", async () => {
    const ip = freshIp();
    const [a, b] = [await bearerUser(), await bearerUser()];
    expect((await post(IDENTIFY, await form("image"), as(a, ip))).status).toBe(200);
    expect((await post(IDENTIFY, await form("image"), { "CF-Connecting-IP": ip })).status).toBe(200);
    await expectRateLimited(await post(IDENTIFY, await form("image"), as(b, ip)));
    await expectRateLimited(await post(IDENTIFY, await form("image"), { "CF-Connecting-IP": ip }));
  });

  it("a retry spends it too", async () => {
    const ip = freshIp();
    const u = await bearerUser();
    expect((await post(REQUESTS, await form("image_1"), as(u, ip))).status).toBe(202);
    expect((await post(REQUESTS, await form("image_1"), as(u, ip))).status).toBe(202);
    const id = await pendingRequest("identify", u.userId, await photo());
    await env.DB.prepare("UPDATE identification_requests SET status = 'failed' WHERE id = ?").bind(id).run();
    await expectRateLimited(await post(`${REQUESTS}${id}/retry/`, undefined, as(u, ip)));
    expect((await post(`${REQUESTS}${id}/retry/`, undefined, as(u, freshIp()))).status).toBe(202);
  });
});
