// Review helper-65: the access cookie was plain `access_token` everywhere. A sibling subdomain can
// set a cookie of that name for the whole site (Domain=<parent>, a longer Path so the browser sends
// it first): the visitor's browser is then signed in to the attacker's account, and `csrf/` hands
// it that session's CSRF token, so what the visitor writes (plants, photos, notes) lands in the
// attacker's account. The CSRF and D1-bookmark cookies were already `__Host-` for this reason.
import { describe, expect, it } from "vitest";
import { fetchStaging, setCookies } from "../helpers/http";
import { GOOD_PASSWORD, uniqueName } from "../helpers/users";

async function register() {
  const username = uniqueName("fixed");
  const res = await fetchStaging("/api/v1/auth/register/", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, email: `${username}@example.com`, password: GOOD_PASSWORD }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return { username, cookies: setCookies(res) };
}

describe("session cookies a sibling subdomain cannot set (review helper-65)", () => {
  it("outside local development the access cookie is __Host-access_token, and a plain access_token signs nobody in", async () => {
    const attacker = await register();
    const victim = await register();
    const session = victim.cookies["__Host-access_token"];
    expect(session, "the sign-in sets __Host-access_token").toBeDefined();
    expect(session!.attributes).toMatchObject({ secure: true, path: "/", httponly: true });
    expect(session!.attributes.domain).toBeUndefined();
    expect(victim.cookies.access_token, "no plain-named access cookie").toBeUndefined();

    // The attacker's token under the plain name (what a sibling subdomain can toss in) is ignored.
    const attackerToken = attacker.cookies["__Host-access_token"]?.value ?? attacker.cookies.access_token!.value;
    const tossed = await fetchStaging("/api/v1/auth/user/", {
      cookies: { access_token: attackerToken, "__Host-access_token": session!.value },
    });
    expect(tossed.status).toBe(200);
    expect(((await tossed.json()) as { username: string }).username).toBe(victim.username);
    const alone = await fetchStaging("/api/v1/auth/user/", { cookies: { access_token: attackerToken } });
    expect(alone.status).toBe(401);
  });
});
