// "Where you're signed in": GET auth/sessions/ lists the caller's live sessions (enough to
// recognise each, never an address or the raw User-Agent), and DELETE auth/sessions/{id}/ ends
// one of them exactly as its own sign-out would — tokens, sockets, push devices — leaving the
// others signed in.
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { createFirebaseEmulator } from "../../emulators/firebase";
import { database } from "../../src/db/client";
import { pushSubscriptions, refreshTokens } from "../../src/db/schema";
import { call, expectError, jsonWithStatus as json, setCookies } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { GOOD_PASSWORD, uniqueName } from "../helpers/users";
import { openReadySocket } from "../helpers/ws";

// Firebase's signing service, for the app's Firebase sign-in.
const firebase = createFirebaseEmulator({ projectId: env.FIREBASE_PROJECT_ID, keyId: "sessions-test-key" });
const emulators = useEmulators({ overrides: { "firebase.emulator.test": (req) => firebase.handle(req) } });
const SESSIONS = "/api/v1/auth/sessions/";
const CHROME_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
const APP_ANDROID = "PlantCommunity/2.4.1 (Android 14; Pixel 8)";

interface Session {
  id: string;
  client: string;
  country: string | null;
  created_at: string;
  last_used_at: string;
  current: boolean;
}

/** A web sign-up from a browser: its cookies and CSRF token. */
async function registerFrom(userAgent: string, country?: string) {
  const username = uniqueName("sessions");
  const res = await call("/api/v1/auth/register/", {
    json: { username, email: `${username}@example.com`, password: GOOD_PASSWORD },
    headers: { "User-Agent": userAgent, ...(country ? { "CF-IPCountry": country } : {}) },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  const { user } = (await res.json()) as { user: { id: string } };
  const set = setCookies(res);
  const cookies = {
    access_token: set.access_token!.value,
    refresh_token: set.refresh_token!.value,
    csrftoken: set.csrftoken!.value,
  };
  return { userId: user.id, username, cookies, csrf: cookies.csrftoken };
}

/** A token sign-in (the app, a script) from `userAgent`. */
async function signInFrom(username: string, userAgent: string, country?: string) {
  return json<{ access: string; refresh: string }>(
    await call("/api/v1/auth/token/", {
      json: { username, password: GOOD_PASSWORD },
      headers: { "User-Agent": userAgent, ...(country ? { "CF-IPCountry": country } : {}) },
    }),
    200,
  );
}

const list = async (bearer: string) => json<Session[]>(await call(SESSIONS, { bearer }), 200);
const sidOf = (access: string) => (JSON.parse(atob(access.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as { sid: string }).sid;
const end = (id: string, bearer: string) => call(`${SESSIONS}${id}/`, { method: "DELETE", bearer });
const refresh = (token: string, headers?: Record<string, string>) =>
  call("/api/v1/auth/token/refresh/", { json: { refresh: token }, headers });

describe("GET auth/sessions/", () => {
  it("lists each live session with its client, country, times and which one is this one; never an address or the User-Agent", async () => {
    const web = await registerFrom(CHROME_MAC, "NL");
    const phone = await signInFrom(web.username, APP_ANDROID, "BE");
    const script = await signInFrom(web.username, "curl/8.5.0");

    const res = await call(SESSIONS, { bearer: phone.access, ip: "203.0.113.77" });
    expect(res.headers.get("Cache-Control")).toBe("private, no-store");
    const sessions = await json<Session[]>(res, 200);
    expect(sessions.map((s) => Object.keys(s).sort())).toEqual(
      Array(3).fill(["client", "country", "created_at", "current", "id", "last_used_at"]),
    );
    // Newest use first: the script signed in last, the web session first.
    expect(sessions.map((s) => [s.id, s.client, s.country, s.current])).toEqual([
      [sidOf(script.access), "curl", null, false],
      [sidOf(phone.access), "Plant Community app on Android", "BE", true],
      [sidOf(web.cookies.access_token), "Chrome on macOS", "NL", false],
    ]);
    for (const s of sessions) {
      expect(Date.parse(s.created_at)).toBeLessThanOrEqual(Date.parse(s.last_used_at));
      expect(Date.now() - Date.parse(s.created_at)).toBeLessThan(60_000);
    }
    const text = JSON.stringify(sessions);
    expect(text).not.toMatch(/203\.0\.113|198\.51\.|Mozilla|AppleWebKit|Pixel|2\.4\.1|8\.5\.0/);

    // A cookie caller is told which one is its own, too.
    const fromWeb = await json<Session[]>(await call(SESSIONS, { cookies: web.cookies }), 200);
    expect(fromWeb.filter((s) => s.current).map((s) => s.id)).toEqual([sidOf(web.cookies.access_token)]);
  });

  it("a refresh is a use: the session moves to the top with a later last_used_at and the same created_at and label", async () => {
    const web = await registerFrom(FIREFOX_WINDOWS, "DE");
    const phone = await signInFrom(web.username, APP_ANDROID);
    const [before] = (await list(phone.access)).filter((s) => s.id === sidOf(web.cookies.access_token));
    expect(before).toMatchObject({ client: "Firefox on Windows", country: "DE" });
    await new Promise((r) => setTimeout(r, 20));
    await json(await refresh(web.cookies.refresh_token), 200);

    const after = await list(phone.access);
    expect(after[0]).toMatchObject({ id: before!.id, client: "Firefox on Windows", country: "DE", created_at: before!.created_at });
    expect(Date.parse(after[0]!.last_used_at)).toBeGreaterThan(Date.parse(before!.last_used_at));
    expect(after).toHaveLength(2);
  });

  it("a session begun before labels were kept takes its client and country from its next labelled refresh, and keeps them", async () => {
    const web = await registerFrom(FIREFOX_WINDOWS, "DE");
    const phone = await signInFrom(web.username, APP_ANDROID, "BE");
    const old = sidOf(phone.access);
    // As migration 0045 left every session begun before it: no client, no country.
    await database(env).update(refreshTokens).set({ client: null, country: null }).where(eq(refreshTokens.familyId, old));
    const clientOf = async () => (await list(web.cookies.access_token)).find((s) => s.id === old);
    expect(await clientOf()).toMatchObject({ client: "Unknown client", country: null });

    // A refresh that sends no User-Agent cannot tell: the session waits for one that can.
    const blind = await json<{ refresh: string }>(await refresh(phone.refresh, { "CF-IPCountry": "FR" }), 200);
    expect(await clientOf()).toMatchObject({ client: "Unknown client", country: null });
    const labelled = await json<{ refresh: string }>(
      await refresh(blind.refresh, { "User-Agent": APP_ANDROID, "CF-IPCountry": "BE" }),
      200,
    );
    expect(await clientOf()).toMatchObject({ client: "Plant Community app on Android", country: "BE" });

    // Once known, a label is never replaced: not by the next refresh from elsewhere, nor on a labelled session.
    await json(await refresh(labelled.refresh, { "User-Agent": "curl/8.5.0", "CF-IPCountry": "US" }), 200);
    expect(await clientOf()).toMatchObject({ client: "Plant Community app on Android", country: "BE" });
    await json(await refresh(web.cookies.refresh_token, { "User-Agent": "curl/8.5.0", "CF-IPCountry": "US" }), 200);
    expect((await list(web.cookies.access_token)).find((s) => s.id === sidOf(web.cookies.access_token))).toMatchObject({
      client: "Firefox on Windows",
      country: "DE",
    });
  });

  it("labels every way in: a password change's new session and a Firebase sign-in too", async () => {
    const web = await registerFrom(CHROME_MAC, "NL");
    const changed = await json<{ access: string }>(
      await call("/api/v1/auth/password/change/", {
        bearer: (await signInFrom(web.username, APP_ANDROID)).access,
        json: { old_password: GOOD_PASSWORD, new_password: "Another-Fine-Fern-77" },
        headers: { "User-Agent": APP_ANDROID, "CF-IPCountry": "FR" },
      }),
      200,
    );
    // Every earlier session ended with the change; the one it started is the caller's.
    expect((await list(changed.access)).map((s) => [s.client, s.country, s.current])).toEqual([
      ["Plant Community app on Android", "FR", true],
    ]);

    const email = `${uniqueName("fb")}@example.com`;
    const token = await firebase.issueIdToken({ uid: `uid-${email}`, email, email_verified: true, name: "Ivy Green" });
    const signedIn = await json<{ access_token: string }>(
      await call("/api/v1/auth/firebase-token-exchange/", {
        json: { firebase_token: token },
        headers: { "User-Agent": "PlantCommunity/2.4.1 (iOS 18.1; iPhone15,2)", "CF-IPCountry": "JP" },
      }),
      200,
    );
    expect((await list(signedIn.access_token)).map((s) => [s.client, s.country])).toEqual([["Plant Community app on iOS", "JP"]]);
  });
});

async function subscribeDevice(access: string) {
  const { public_key } = await json<{ public_key: string }>(await call("/api/v1/notifications/push/vapid-public-key/"), 200);
  const sub = await emulators.push.subscribe({ applicationServerKey: public_key });
  await json(await call("/api/v1/notifications/push/subscriptions/", { bearer: access, json: { ...sub, expirationTime: null } }), 201);
  return sub.endpoint;
}

const devicesOf = async (userId: string) =>
  (await database(env).select().from(pushSubscriptions).where(eq(pushSubscriptions.userId, userId)).all()).map((r) => r.endpoint);

const stillOpen = (closed: Promise<unknown>, ms = 300) =>
  Promise.race([closed.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), ms))]);

describe("DELETE auth/sessions/{id}/", () => {
  it("ends that session only: its tokens are refused, its socket closes and its push device goes; the others carry on", async () => {
    const web = await registerFrom(CHROME_MAC);
    const lost = await signInFrom(web.username, APP_ANDROID);
    const laptop = await signInFrom(web.username, FIREFOX_WINDOWS);
    const lostDevice = await subscribeDevice(lost.access);
    const laptopDevice = await subscribeDevice(laptop.access);
    const lostSocket = await openReadySocket("/ws/", { bearer: lost.access });
    const laptopSocket = await openReadySocket("/ws/", { bearer: laptop.access });

    expect((await end(sidOf(lost.access), laptop.access)).status).toBe(204);

    expect(await lostSocket.closed).toMatchObject({ code: 4401 });
    expect(await stillOpen(laptopSocket.closed)).toBe(true);
    await expectError(await call("/api/v1/auth/user/", { bearer: lost.access }), 401, "TOKEN_INVALID");
    expect((await refresh(lost.refresh)).status).toBe(401);
    expect(await devicesOf(web.userId)).toEqual([laptopDevice]);
    expect(await devicesOf(web.userId)).not.toContain(lostDevice);
    // The others: still signed in, still refreshing, and the list no longer shows the lost phone.
    expect((await call("/api/v1/auth/user/", { bearer: laptop.access })).status).toBe(200);
    expect((await call("/api/v1/auth/user/", { cookies: web.cookies })).status).toBe(200);
    const rotated = await json<{ access: string }>(await refresh(laptop.refresh), 200);
    expect((await list(rotated.access)).map((s) => s.id).sort()).toEqual([sidOf(laptop.access), sidOf(web.cookies.access_token)].sort());
    // Once it has ended, its id is as unknown as any other.
    await expectError(await end(sidOf(lost.access), laptop.access), 404, "NOT_FOUND");
    laptopSocket.ws.close();
  });

  it("another user's session, an unknown id and a malformed one are the same 404, and nothing ends", async () => {
    const alice = await registerFrom(CHROME_MAC);
    const aliceApp = await signInFrom(alice.username, APP_ANDROID);
    const mallory = await registerFrom(FIREFOX_WINDOWS);
    const malloryApp = await signInFrom(mallory.username, APP_ANDROID);
    const aliceSocket = await openReadySocket("/ws/", { bearer: aliceApp.access });

    const theirs = await expectError(await end(sidOf(aliceApp.access), malloryApp.access), 404, "NOT_FOUND");
    const unknown = await expectError(await end(crypto.randomUUID(), malloryApp.access), 404, "NOT_FOUND");
    const malformed = await expectError(await end("not-a-session", malloryApp.access), 404, "NOT_FOUND");
    expect(theirs.message).toBe(unknown.message);
    expect(malformed.message).toBe(unknown.message);

    expect(await stillOpen(aliceSocket.closed)).toBe(true);
    expect((await call("/api/v1/auth/user/", { bearer: aliceApp.access })).status).toBe(200);
    expect((await list(aliceApp.access)).map((s) => s.id)).toContain(sidOf(aliceApp.access));
    // And Mallory's list holds only Mallory's sessions.
    expect((await list(malloryApp.access)).map((s) => s.id).sort()).toEqual(
      [sidOf(malloryApp.access), sidOf(mallory.cookies.access_token)].sort(),
    );
    aliceSocket.ws.close();
  });

  it("a session that has ended is not listed, however it ended: sign-out, reuse of a rotated token, or here", async () => {
    const web = await registerFrom(CHROME_MAC);
    const signedOut = await signInFrom(web.username, APP_ANDROID);
    const stolen = await signInFrom(web.username, APP_ANDROID);
    const ended = await signInFrom(web.username, FIREFOX_WINDOWS);
    const watcher = await signInFrom(web.username, "curl/8.5.0");

    await json(await call("/api/v1/auth/logout/", { method: "POST", bearer: signedOut.access, json: { refresh: signedOut.refresh } }), 200);
    await json(await refresh(stolen.refresh), 200);
    // Past the reuse window the rotated-away token coming back is theft: the family is revoked.
    await env.DB.prepare("UPDATE refresh_tokens SET revoked_at = revoked_at - 90 WHERE family_id = ? AND revoked_at IS NOT NULL")
      .bind(sidOf(stolen.access))
      .run();
    expect((await refresh(stolen.refresh)).status).toBe(401);
    expect((await end(sidOf(ended.access), watcher.access)).status).toBe(204);

    expect((await list(watcher.access)).map((s) => s.id).sort()).toEqual([sidOf(watcher.access), sidOf(web.cookies.access_token)].sort());
    // Still so once the sign-outs' records (revoked_sessions) have been purged.
    await env.DB.prepare("DELETE FROM revoked_sessions WHERE family_id IN (SELECT family_id FROM refresh_tokens WHERE user_id = ?)")
      .bind(web.userId)
      .run();
    expect((await list(watcher.access)).map((s) => s.id).sort()).toEqual([sidOf(watcher.access), sidOf(web.cookies.access_token)].sort());
    // Sign-out everywhere leaves nothing to list; the next sign-in lists itself alone.
    await json(await call("/api/v1/auth/logout-all/", { method: "POST", bearer: watcher.access }), 200);
    const next = await signInFrom(web.username, APP_ANDROID);
    expect((await list(next.access)).map((s) => s.id)).toEqual([sidOf(next.access)]);
  });

  it("a cookie caller needs the CSRF header, and ending its own session signs it out as logout does", async () => {
    const web = await registerFrom(CHROME_MAC);
    const phone = await signInFrom(web.username, APP_ANDROID);
    const path = `${SESSIONS}${sidOf(phone.access)}/`;

    // A cross-site form or fetch carries the cookies but cannot read the CSRF token.
    await expectError(await call(path, { method: "DELETE", cookies: web.cookies }), 403, "CSRF_FAILED");
    await expectError(
      await call(path, { method: "DELETE", cookies: web.cookies, headers: { "X-CSRFToken": "x".repeat(43) } }),
      403,
      "CSRF_FAILED",
    );
    expect((await call("/api/v1/auth/user/", { bearer: phone.access })).status).toBe(200);

    const webSocket = await openReadySocket("/ws/", { cookie: `access_token=${web.cookies.access_token}` });
    const own = `${SESSIONS}${sidOf(web.cookies.access_token)}/`;
    const res = await call(own, { method: "DELETE", cookies: web.cookies, headers: { "X-CSRFToken": web.csrf } });
    expect(res.status).toBe(204);
    const cleared = setCookies(res);
    expect(cleared.access_token!.attributes["max-age"]).toBe("0");
    expect(cleared.refresh_token!.attributes["max-age"]).toBe("0");
    expect(await webSocket.closed).toMatchObject({ code: 4401 });
    await expectError(await call("/api/v1/auth/user/", { cookies: web.cookies }), 401, "TOKEN_INVALID");
    expect(
      (await call("/api/v1/auth/token/refresh/", { method: "POST", cookies: web.cookies, headers: { "X-CSRFToken": web.csrf } })).status,
    ).toBe(401);
    // The phone is still in.
    expect((await list(phone.access)).map((s) => [s.id, s.current])).toEqual([[sidOf(phone.access), true]]);
  });

  it("a bearer caller may end its own session too: its access token is refused from then on", async () => {
    const web = await registerFrom(CHROME_MAC);
    const phone = await signInFrom(web.username, APP_ANDROID);
    expect((await end(sidOf(phone.access), phone.access)).status).toBe(204);
    await expectError(await call(SESSIONS, { bearer: phone.access }), 401, "TOKEN_INVALID");
    expect((await refresh(phone.refresh)).status).toBe(401);
    expect((await call("/api/v1/auth/user/", { cookies: web.cookies })).status).toBe(200);
  });

  it("is signed-in only", async () => {
    await expectError(await call(SESSIONS), 401, "AUTHENTICATION_REQUIRED");
    await expectError(await call(`${SESSIONS}${crypto.randomUUID()}/`, { method: "DELETE" }), 401, "AUTHENTICATION_REQUIRED");
  });
});
