// Token refresh was limited per address only (10 an hour). A 15-minute access token needs four
// refreshes an hour, so three people behind one address (a household, a mobile carrier's NAT) ran
// out and were signed out. A refresh token we signed now spends its own session's budget; anything
// else (no token, a forged or expired one) still spends the address's.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { call, expectError, freshIp } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, registerWeb } from "../helpers/users";

useEmulators();

const limited = { ...env, REFRESH_RATE_LIMIT: "2/3600", REFRESH_SESSION_RATE_LIMIT: "3/3600" };

async function refresh(ip: string, token?: string) {
  const ctx = createExecutionContext();
  const res = await createApp().request(
    "/api/v1/auth/token/refresh/",
    {
      method: "POST",
      headers: { "CF-Connecting-IP": ip, "Content-Type": "application/json" },
      body: JSON.stringify(token === undefined ? {} : { refresh: token }),
    },
    limited,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

/** Refreshes `token` `times` times in a row from `ip`, each with the token the last one issued; the statuses. */
async function refreshChain(ip: string, token: string, times: number) {
  const statuses: number[] = [];
  for (let i = 0; i < times; i++) {
    const res = await refresh(ip, token);
    statuses.push(res.status);
    if (res.status === 200) token = ((await res.json()) as { refresh: string }).refresh;
  }
  return statuses;
}

describe("token refresh limits", () => {
  it("people behind one address do not spend each other's refreshes", async () => {
    const ip = freshIp();
    const people = [await bearerUser(), await bearerUser(), await bearerUser()];
    // Three sessions on one address, each refreshing: more than the address's 2, each within its own 3.
    for (const person of people) expect(await refreshChain(ip, person.refresh, 2)).toEqual([200, 200]);
  });

  it("one session is limited on its own (429 with Retry-After), from any address", async () => {
    const me = await bearerUser();
    const statuses = [];
    let token = me.refresh;
    for (let i = 0; i < 4; i++) {
      const res = await refresh(freshIp(), token);
      statuses.push(res.status);
      if (res.status === 200) token = ((await res.json()) as { refresh: string }).refresh;
      else {
        await expectError(res.clone(), 429, "RATE_LIMITED");
        expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
      }
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it("forged, missing or garbage tokens spend the address's budget, whatever session they name", async () => {
    const ip = freshIp();
    const me = await bearerUser();
    const [header, payload] = me.refresh.split(".");
    const forged = `${header}.${payload}.${"A".repeat(43)}`;
    await expectError(await refresh(ip, forged), 401, "TOKEN_INVALID");
    await expectError(await refresh(ip), 400, "VALIDATION_ERROR");
    await expectError(await refresh(ip, "not-a-token"), 429, "RATE_LIMITED");
    // The session the forgery named keeps its own budget.
    expect(await refreshChain(ip, me.refresh, 1)).toEqual([200]);
  });
});

/** A cookie refresh from a web session, with `csrf` as its X-CSRFToken header (none when undefined). */
async function cookieRefresh(ip: string, cookies: Record<string, string>, csrf?: string) {
  const ctx = createExecutionContext();
  const headers: Record<string, string> = {
    "CF-Connecting-IP": ip,
    Cookie: Object.entries(cookies)
      .map(([k, v]) => `${k}=${v}`)
      .join("; "),
  };
  if (csrf !== undefined) headers["X-CSRFToken"] = csrf;
  const res = await createApp().request("/api/v1/auth/token/refresh/", { method: "POST", headers }, limited, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

describe("token refresh limits: what an attacker can spend (review helper-65)", () => {
  // The refresh cookie goes with any same-site request (a sibling subdomain's page, or any site
  // under SameSite=None), but such a page cannot read the CSRF token. While the access cookie is
  // live the CSRF middleware refuses first; once it has expired only the route's check stands. Its refreshes fail the CSRF
  // check; they must not spend the victim's session budget, or a page could sign its visitor out.
  it("cookie refreshes that fail the CSRF check do not spend the session's budget", async () => {
    const victim = await registerWeb();
    // The access cookie has expired (15 minutes away from the app); the refresh cookie lasts.
    const cookies = { refresh_token: victim.cookies.refresh_token!, csrftoken: victim.csrf };
    for (let i = 0; i < 4; i++) {
      await expectError(await cookieRefresh(freshIp(), cookies), 403, "CSRF_FAILED");
      await expectError(await cookieRefresh(freshIp(), cookies, "forged-csrf-token-value"), 403, "CSRF_FAILED");
    }
    const res = await cookieRefresh(freshIp(), cookies, victim.csrf);
    expect(res.status, await res.clone().text()).toBe(200);
  });

  // A thief holding a session's refresh token keeps rotating it and so keeps the session's budget
  // spent (a sliding window: each freed slot taken again). The owner's next refresh presents the
  // token the thief rotated away — the theft signal that ends the session — and must still end
  // it, not be answered 429 while the thief stays signed in.
  it("a rotated-away token ends the session even when the session's budget is spent", async () => {
    const owner = await bearerUser();
    const thiefIp = freshIp();
    let token = owner.refresh;
    let access = "";
    for (let i = 0; i < 3; i++) {
      const res = await refresh(thiefIp, token);
      expect(res.status).toBe(200);
      ({ refresh: token, access } = (await res.json()) as { refresh: string; access: string });
    }
    await expectError(await refresh(thiefIp, token), 429, "RATE_LIMITED");
    // The owner comes back with the token the thief rotated away.
    const res = await refresh(freshIp(), owner.refresh);
    await expectError(res, 401, "TOKEN_REUSED");
    // The session has ended: the thief's access token is refused.
    await expectError(await call("/api/v1/auth/user/", { bearer: access }), 401, "TOKEN_INVALID");
  });

  // A 429 to a retry whose answer was lost sent the phone back after Retry-After, outside the reuse
  // window, where the same token is theft: the budget signed the owner out.
  it("past the budget, a retry inside the reuse window still gets the pair it missed; an ended session gets 429", async () => {
    const me = await bearerUser();
    const ip = freshIp();
    let previous = me.refresh;
    let token = me.refresh;
    let access = "";
    for (let i = 0; i < 3; i++) {
      const res = await refresh(ip, token);
      expect(res.status).toBe(200);
      previous = token;
      ({ refresh: token, access } = (await res.json()) as { refresh: string; access: string });
    }
    // The token rotated a moment ago (a lost answer, or another tab): the same pair, nothing new.
    const retried = await refresh(ip, previous);
    expect(retried.status, await retried.clone().text()).toBe(200);
    expect(await retried.json()).toMatchObject({ refresh: token, access });
    // New pairs stay refused over the budget.
    await expectError(await refresh(ip, token), 429, "RATE_LIMITED");
    expect((await call("/api/v1/auth/user/", { bearer: access })).status).toBe(200);
    // Signed out: the session's last token costs no more than the 429.
    expect((await call("/api/v1/auth/logout/", { method: "POST", bearer: access, json: { refresh: token } })).status).toBe(200);
    await expectError(await refresh(ip, token), 429, "RATE_LIMITED");
  });
});
