/**
 * Unauthenticated endpoints, attacked (security review of 2026-12-06). The finding: starting a
 * Google or GitHub sign-in (`GET auth/oauth/{provider}/login/`) writes a pending sign-in row each
 * time, and each one lets a callback make the service call the provider, with no count of its
 * own: every other sign-in (password, token, Firebase) has one per address, so one address could
 * write up to the coarse edge limit (600 a minute) of rows that live ten minutes.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectError, freshIp } from "../helpers/http";

const pending = async () => (await env.DB.prepare("SELECT count(*) AS n FROM oauth_states").first<{ n: number }>())!.n;

describe("starting an OAuth sign-in is counted per address", () => {
  it("past the sign-in limit (5 per 15 min) one address is refused 429 and writes nothing more; another address is not", async () => {
    const ip = freshIp();
    const before = await pending();
    for (let i = 0; i < 5; i++) {
      const provider = i % 2 ? "github" : "google";
      expect((await call(`/api/v1/auth/oauth/${provider}/login/`, { ip })).status).toBe(200);
    }
    const refused = await call("/api/v1/auth/oauth/google/login/", { ip });
    await expectError(refused, 429, "RATE_LIMITED");
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(0);
    // The older mount counts in the same bucket.
    await expectError(await call("/api/auth/oauth/github/login/", { ip }), 429, "RATE_LIMITED");
    expect(await pending()).toBe(before + 5);
    expect((await call("/api/v1/auth/oauth/google/login/", { ip: freshIp() })).status).toBe(200);
  });
});
