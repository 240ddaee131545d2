// Absolute URLs the API hands out come from PUBLIC_API_URL, never from the Host header
// (security issue item 13): a request sent with `Host: evil.example` (a poisoned cache key,
// a misrouted proxy) must not get pagination links, an OpenAPI server or an OAuth redirect_uri
// pointing at evil.example. The tests' PUBLIC_API_URL is https://api.test (vitest.config.ts).
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { getConfig } from "../../src/config";
import { BASE, freshIp, setCookies, type Page } from "../helpers/http";
import { bearerUser } from "../helpers/users";

const EVIL = "https://evil.example";

function fromEvilHost(path: string, init: { method?: string; bearer?: string; json?: unknown; cookies?: Record<string, string> } = {}) {
  const headers = new Headers({ Host: "evil.example", "X-Forwarded-Host": "evil.example", "CF-Connecting-IP": freshIp() });
  if (init.bearer) headers.set("Authorization", `Bearer ${init.bearer}`);
  if (init.json !== undefined) headers.set("Content-Type", "application/json");
  if (init.cookies)
    headers.set(
      "Cookie",
      Object.entries(init.cookies)
        .map(([k, v]) => `${k}=${v}`)
        .join("; "),
    );
  return exports.default.fetch(
    new Request(`${EVIL}${path}`, {
      method: init.method ?? (init.json !== undefined ? "POST" : "GET"),
      headers,
      body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
      redirect: "manual",
    }),
  );
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("links come from PUBLIC_API_URL", () => {
  it("the tests configure a public URL other than the hostile host", () => {
    expect(getConfig(env).PUBLIC_API_URL).toBe(BASE);
  });

  it("pagination next/previous ignore the Host header", async () => {
    const u = await bearerUser();
    for (const name of ["Herbs", "Cacti"]) {
      const created = await fromEvilHost("/api/v1/plant-identification/collections/", { bearer: u.access, json: { name } });
      expect(created.status, await created.clone().text()).toBe(201);
    }
    const first = await fromEvilHost("/api/v1/plant-identification/collections/?page_size=1", { bearer: u.access });
    expect(first.status).toBe(200);
    const page1 = (await first.json()) as Page<unknown>;
    expect(page1.count).toBe(3);
    expect(page1.next).toBe(`${BASE}/api/v1/plant-identification/collections/?page_size=1&page=2`);

    const second = await fromEvilHost("/api/v1/plant-identification/collections/?page=2&page_size=1", { bearer: u.access });
    const page2 = (await second.json()) as Page<unknown>;
    expect(page2.previous).toBe(`${BASE}/api/v1/plant-identification/collections/?page=1&page_size=1`);
    expect(page2.next).toBe(`${BASE}/api/v1/plant-identification/collections/?page=3&page_size=1`);
  });

  it("the OpenAPI document's server is the configured URL", async () => {
    const res = await fromEvilHost("/api/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { servers: { url: string }[] };
    expect(doc.servers).toEqual([{ url: BASE }]);
  });

  for (const provider of ["google", "github"] as const) {
    it(`${provider}: the redirect_uri sent to the provider is the configured callback`, async () => {
      const login = await fromEvilHost(`/api/v1/auth/oauth/${provider}/login/`);
      expect(login.status, await login.clone().text()).toBe(200);
      const oauthUrl = new URL(((await login.json()) as { oauth_url: string }).oauth_url);
      const callback = `${BASE}/api/v1/auth/oauth/${provider}/callback/`;
      expect(oauthUrl.searchParams.get("redirect_uri")).toBe(callback);

      // The code exchange must repeat the same redirect_uri (byte for byte), whatever the Host
      // of the callback request.
      const exchanged: string[] = [];
      vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
        const req = new Request(input, init);
        exchanged.push(new URLSearchParams(await req.text()).get("redirect_uri") ?? "(none)");
        return Response.json({ error: "invalid_grant" }, { status: 400 });
      });
      const state = oauthUrl.searchParams.get("state")!;
      const cookie = setCookies(login)[`oauth_state_${provider}`]!.value;
      const back = await fromEvilHost(`/api/v1/auth/oauth/${provider}/callback/?code=any&state=${encodeURIComponent(state)}`, {
        cookies: { [`oauth_state_${provider}`]: cookie },
      });
      expect(back.status).toBe(302);
      expect(back.headers.get("Location")).toContain("error=token_exchange_failed");
      expect(exchanged).toEqual([callback]);
    });
  }
});

describe("PUBLIC_API_URL is validated", () => {
  for (const bad of [
    "",
    "api.example.com",
    "ftp://api.example.com",
    "https://api.example.com/",
    "https://api.example.com/v1",
    "https://api.example.com?x=1",
  ]) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      expect(() => getConfig({ ...env, PUBLIC_API_URL: bad })).toThrow(/PUBLIC_API_URL/);
    });
  }

  it("accepts an origin, with or without a port", () => {
    expect(getConfig({ ...env, PUBLIC_API_URL: "https://api.example.com" }).PUBLIC_API_URL).toBe("https://api.example.com");
    expect(getConfig({ ...env, PUBLIC_API_URL: "http://127.0.0.1:8787" }).PUBLIC_API_URL).toBe("http://127.0.0.1:8787");
  });

  // Mail links are built on it, and RFC 8058 says a one-click List-Unsubscribe MUST be https.
  it("refuses plain http outside local and test runs", () => {
    for (const environment of ["staging", "production"]) {
      expect(() => getConfig({ ...env, ENVIRONMENT: environment, PUBLIC_API_URL: "http://api.example.com" })).toThrow(
        /PUBLIC_API_URL must be an https origin/,
      );
      expect(getConfig({ ...env, ENVIRONMENT: environment, PUBLIC_API_URL: "https://api.example.com" }).isLocal).toBe(false);
    }
  });
});
