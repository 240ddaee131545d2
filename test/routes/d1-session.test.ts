/**
 * D1 sessions (issue 13 item 2, API.md §5d): every request runs in one, starting where its kind
 * of request may — a client's bookmark, any replica for anonymous reads, the primary otherwise —
 * and every answer carries the bookmark that lets the client read its own writes next time.
 *
 * Locally D1 has no replicas, so a stale read cannot be staged; the tests prove the contract
 * around it instead: which constraint each request opens its session with (recorded by wrapping
 * the binding's `withSession`), that bookmarks come back and only move forward, and that a client
 * sending its bookmark starts from it and sees its write.
 */
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sessionConstraint } from "../../src/services/db-sessions";
import { call, setCookies } from "../helpers/http";
import { bearerUser, GOOD_PASSWORD, registerWeb } from "../helpers/users";

const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;

let opened: string[] = [];
let original: D1Database["withSession"] | undefined;

beforeEach(() => {
  opened = [];
  original = env.DB.withSession;
  const real = original.bind(env.DB);
  env.DB.withSession = ((constraint?: string) => {
    opened.push(String(constraint));
    return real(constraint);
  }) as D1Database["withSession"];
});
afterEach(() => {
  if (original) env.DB.withSession = original;
});

describe("D1 sessions and bookmarks", () => {
  it.each([
    ["GET", undefined, false, "first-unconstrained"],
    ["HEAD", undefined, false, "first-unconstrained"],
    ["GET", undefined, true, "first-primary"],
    ["POST", undefined, false, "first-primary"],
    ["DELETE", undefined, true, "first-primary"],
    [
      "GET",
      "0000002a-00000010-00000000-00000000000000000000000000000000",
      false,
      "0000002a-00000010-00000000-00000000000000000000000000000000",
    ],
    // A bookmark never chooses where a write or a request with credentials starts.
    ["POST", "0000002a-00000010-00000000-00000000000000000000000000000000", true, "first-primary"],
    ["POST", "0000002a-00000010-00000000-00000000000000000000000000000000", false, "first-primary"],
    ["GET", "0000002a-00000010-00000000-00000000000000000000000000000000", true, "first-primary"],
    ["GET", "first-primary", false, "first-unconstrained"],
    ["GET", "'; DROP TABLE users; --", false, "first-unconstrained"],
    ["POST", "ffffffff", true, "first-primary"],
  ])("%s with bookmark %s, credentials %s → %s", (method, bookmark, credentials, expected) => {
    expect(sessionConstraint(method, bookmark, credentials)).toBe(expected);
  });

  it("opens one session per request: anonymous reads from any replica, signed-in reads and writes from the primary", async () => {
    const res = await call("/api/v1/plant-identification/species/?page_size=1");
    expect(res.status).toBe(200);
    expect(res.headers.get("x-d1-bookmark")).toMatch(BOOKMARK);
    expect(opened).toEqual(["first-unconstrained"]);

    const u = await bearerUser();
    opened = [];
    expect((await call("/api/v1/plant-identification/collections/", { bearer: u.access })).status).toBe(200);
    expect((await call("/api/v1/plant-identification/collections/", { bearer: u.access, json: { name: "Windowsill" } })).status).toBe(201);
    expect(opened).toEqual(["first-primary", "first-primary"]);
  });

  it("gives a client that sends its bookmark its own write in the public reads it makes next, from a session that starts there", async () => {
    const u = await bearerUser();
    const write = await call("/api/v1/forum/categories/houseplants/topics/", {
      bearer: u.access,
      json: { title: "Read my writes", body: "Does the public list show my topic?" },
    });
    expect(write.status).toBe(201);
    const bookmark = write.headers.get("x-d1-bookmark")!;
    expect(bookmark).toMatch(BOOKMARK);
    const { id } = (await write.json()) as { id: string };

    opened = [];
    const read = await call(`/api/v1/forum/topics/${id}/`, { headers: { "x-d1-bookmark": bookmark } });
    expect(read.status).toBe(200);
    expect(((await read.json()) as { title: string }).title).toBe("Read my writes");
    expect(opened).toEqual([bookmark]);
    // Bookmarks only move forward: the read's is at or after the write's.
    expect(read.headers.get("x-d1-bookmark")! >= bookmark).toBe(true);
  });

  it("checks credentials at the primary whatever bookmark the client sends (an old one must not pick a replica that missed a revocation)", async () => {
    const u = await bearerUser();
    const old = (await call("/api/v1/plant-identification/species/?page_size=1")).headers.get("x-d1-bookmark")!;
    expect(old).toMatch(BOOKMARK);
    opened = [];
    // A signed-in read, a sign-in and a socket ticket's redemption, each with the old bookmark.
    expect((await call("/api/v1/plant-identification/collections/", { bearer: u.access, headers: { "x-d1-bookmark": old } })).status).toBe(
      200,
    );
    const signIn = await call("/api/v1/auth/token/", {
      json: { username: u.username, password: GOOD_PASSWORD },
      headers: { "x-d1-bookmark": old },
    });
    expect(signIn.status).toBe(200);
    await call("/ws/?ticket=not-a-ticket", { headers: { "x-d1-bookmark": old, Upgrade: "websocket" } });
    expect(opened).toEqual(["first-primary", "first-primary", "first-primary"]);
  });

  it("keeps a web session's bookmark in an HttpOnly cookie that the next request starts from", async () => {
    const web = await registerWeb();
    const write = await call("/api/v1/plant-identification/collections/", {
      cookies: web.cookies,
      headers: { "X-CSRFToken": web.csrf },
      json: { name: "Cookie bookmark" },
    });
    expect(write.status).toBe(201);
    const cookie = setCookies(write).d1_bookmark;
    expect(cookie?.value).toMatch(BOOKMARK);
    expect(cookie?.attributes.httponly).toBe(true);
    expect(cookie?.attributes.samesite).toBe("Lax");
    expect(cookie?.value).toBe(write.headers.get("x-d1-bookmark"));

    // Signed in, the browser's reads start at the primary; signed out, from its bookmark.
    opened = [];
    const read = await call("/api/v1/plant-identification/collections/", { cookies: { ...web.cookies, d1_bookmark: cookie!.value } });
    expect(read.status).toBe(200);
    const anonymous = await call("/api/v1/plant-identification/species/?page_size=1", { cookies: { d1_bookmark: cookie!.value } });
    expect(anonymous.status).toBe(200);
    expect(opened).toEqual(["first-primary", cookie!.value]);
  });

  it("sets no bookmark cookie on a public answer, which a shared cache may keep for others (helper-46)", async () => {
    const web = await registerWeb();
    const read = await call("/api/v1/plant-identification/species/?page_size=1", { cookies: web.cookies });
    expect(read.status).toBe(200);
    expect(read.headers.get("Cache-Control")).toMatch(/\bpublic\b/);
    expect(read.headers.get("Set-Cookie")).toBeNull();
    // A private answer to the same browser still carries it.
    const mine = await call("/api/v1/plant-identification/collections/", { cookies: web.cookies });
    expect(mine.headers.get("Cache-Control")).not.toMatch(/\bpublic\b/);
    expect(setCookies(mine).d1_bookmark?.value).toMatch(BOOKMARK);
  });

  it("ignores a malformed bookmark instead of passing it to D1 (no 500, a fresh session)", async () => {
    for (const bad of ["garbage", "'; DROP TABLE users; --", "00000000-0000001a-00000000", "x".repeat(5000)]) {
      opened = [];
      const res = await call("/api/v1/plant-identification/species/?page_size=1", { headers: { "x-d1-bookmark": bad } });
      expect(res.status).toBe(200);
      expect(opened).toEqual(["first-unconstrained"]);
      expect(res.headers.get("x-d1-bookmark")).toMatch(BOOKMARK);
    }
  });

  it("hands back the client's own bookmark on an answer that ran no query, and a malformed one never", async () => {
    const bookmark = (await call("/api/v1/plant-identification/species/?page_size=1")).headers.get("x-d1-bookmark")!;
    expect(bookmark).toMatch(BOOKMARK);
    const echoed = await call("/api/csrf/", { headers: { "x-d1-bookmark": bookmark } });
    expect(echoed.status).toBe(200);
    expect(echoed.headers.get("x-d1-bookmark")).toBe(bookmark);
    // Nothing sent, nothing read: there is no point in the history to tell.
    expect((await call("/api/csrf/")).headers.get("x-d1-bookmark")).toBeNull();
    expect((await call("/api/csrf/", { headers: { "x-d1-bookmark": "garbage" } })).headers.get("x-d1-bookmark")).toBeNull();
  });

  it("lets browsers send and read the bookmark across origins (CORS)", async () => {
    const res = await call("/api/v1/plant-identification/species/", {
      method: "OPTIONS",
      headers: {
        Origin: "http://localhost:5173",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-d1-bookmark",
      },
    });
    expect(res.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toContain("x-d1-bookmark");
    const get = await call("/api/v1/plant-identification/species/?page_size=1", { headers: { Origin: "http://localhost:5173" } });
    expect(get.headers.get("Access-Control-Expose-Headers")?.toLowerCase()).toContain("x-d1-bookmark");
  });
});
