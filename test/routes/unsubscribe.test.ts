/**
 * One-click unsubscribe (RFC 8058, API.md §5b; issue 10 item 4), attacked: the link works without
 * sign-in and only for email; GET changes nothing; tampered, truncated, foreign-key and expired
 * tokens are refused with nothing changed; a cookie of another user neither blocks it nor is
 * affected; security email stays on.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { NOTIFICATION_DEFAULTS, PREFERENCE_TYPES } from "../../src/services/notification-preferences";
import { listUnsubscribeHeaders, UNSUBSCRIBE_TTL_S, unsubscribeByMail, unsubscribeToken } from "../../src/services/unsubscribe";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { bearerUser, GOOD_PASSWORD, registerWeb } from "../helpers/users";

const PATH = "/api/v1/notifications/unsubscribe/";
type Prefs = { types: Record<string, { in_app: boolean; email: boolean; push: boolean }> };
const prefs = async (access: string) => json<Prefs>(await call("/api/v1/notifications/preferences/", { bearer: access }), 200);
const oneClick = (token: string, init: { headers?: Record<string, string>; cookies?: Record<string, string> } = {}) =>
  call(`${PATH}?token=${encodeURIComponent(token)}`, {
    method: "POST",
    body: "List-Unsubscribe=One-Click",
    headers: { "Content-Type": "application/x-www-form-urlencoded", ...init.headers },
    cookies: init.cookies,
  });

describe("one-click unsubscribe", () => {
  it("builds both RFC 8058 headers from the public origin", async () => {
    const headers = await listUnsubscribeHeaders(env, { id: crypto.randomUUID(), email: "reader@example.com" }, "forum_reply");
    expect(headers["List-Unsubscribe-Post"]).toBe("List-Unsubscribe=One-Click");
    expect(headers["List-Unsubscribe"]).toMatch(
      /^<https:\/\/api\.test\/api\/v1\/notifications\/unsubscribe\/\?token=[\w-]+\.[\w-]+>, <mailto:unsubscribe@[^?]+\?subject=unsubscribe%20[\w.-]+>$/,
    );
  });

  it("announces one-click only for an https link: a plain-http local run keeps RFC 2369's header alone", async () => {
    const local = { ...env, ENVIRONMENT: "local", PUBLIC_API_URL: "http://127.0.0.1:8787" } as typeof env;
    const headers = await listUnsubscribeHeaders(local, { id: crypto.randomUUID(), email: "reader@example.com" }, "forum_reply");
    expect(headers["List-Unsubscribe-Post"]).toBeUndefined();
    expect(headers["List-Unsubscribe"]).toMatch(
      /^<http:\/\/127\.0\.0\.1:8787\/api\/v1\/notifications\/unsubscribe\/\?token=[\w.-]+>, <mailto:/,
    );
  });

  // RFC 8058 §3.2: the POST SHOULD be multipart/form-data (what Gmail and Yahoo send) and MAY be
  // urlencoded; both work without a sign-in.
  it("accepts the one-click POST as multipart/form-data too", async () => {
    const u = await bearerUser();
    const token = await unsubscribeToken(env, u.userId, "forum_mention");
    const form = new FormData();
    form.append("List-Unsubscribe", "One-Click");
    const res = await call(`${PATH}?token=${encodeURIComponent(token)}`, { method: "POST", body: form });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await prefs(u.access)).types.forum_mention!.email).toBe(false);
  });

  it("GET shows a confirmation page and changes nothing; POST turns off that type's email only", async () => {
    const u = await bearerUser();
    const token = await unsubscribeToken(env, u.userId, "forum_mention");
    const page = await call(`${PATH}?token=${token}`);
    expect(page.status).toBe(200);
    expect(page.headers.get("Content-Type")).toMatch(/text\/html/);
    expect(page.headers.get("Content-Security-Policy")).toContain("form-action 'self'");
    const text = await page.text();
    expect(text).toContain('<form method="post"');
    expect(text).toContain("forum mention email");
    expect((await prefs(u.access)).types.forum_mention!.email).toBe(true);

    const body = await json<{ unsubscribed: boolean; types: string[] }>(await oneClick(token), 200);
    expect(body).toEqual({ unsubscribed: true, scope: "forum_mention", types: ["forum_mention"] });
    const after = await prefs(u.access);
    expect(after.types.forum_mention).toEqual({ ...NOTIFICATION_DEFAULTS.forum_mention, email: false });
    expect(after.types.identification_failed).toEqual(NOTIFICATION_DEFAULTS.identification_failed);
    // Again: the same answer, nothing else changes.
    expect((await oneClick(token)).status).toBe(200);
  });

  it("`all` turns off every email that can be turned off — never security mail", async () => {
    const u = await bearerUser();
    const res = await oneClick(await unsubscribeToken(env, u.userId, "all"), { headers: { Accept: "text/html" } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("You are unsubscribed");
    const after = await prefs(u.access);
    for (const type of PREFERENCE_TYPES) expect(after.types[type]!.email, type).toBe(type === "security");
    expect(after.types.forum_reply!.push).toBe(NOTIFICATION_DEFAULTS.forum_reply.push);
  });

  it("refuses tampered, truncated, re-signed, malformed and expired tokens with nothing changed", async () => {
    const u = await bearerUser();
    const victim = await bearerUser();
    const good = await unsubscribeToken(env, u.userId, "forum_mention");
    const [payload, mac] = good.split(".") as [string, string];
    // Another user's id under the first user's signature.
    const forgedPayload = btoa(JSON.stringify({ u: victim.userId, t: "all", e: Math.floor(Date.now() / 1000) + 3600 }))
      .replaceAll("+", "-")
      .replaceAll("/", "_")
      .replace(/=+$/, "");
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
    const foreign = await unsubscribeToken({ ...env, JWT_SECRET: "another-secret-0123456789abcdef0123456789" }, u.userId, "forum_mention");
    const expired = await unsubscribeToken(env, u.userId, "forum_mention", Date.now() - (UNSUBSCRIBE_TTL_S + 60) * 1000);
    for (const token of [
      `${forgedPayload}.${mac}`,
      `${flip(payload, 5)}.${mac}`,
      `${payload}.${flip(mac, 3)}`,
      `${payload}.${mac.slice(0, -4)}`,
      payload,
      `${payload}.${mac}.extra`,
      `${payload}.!!!`,
      foreign,
      expired,
    ]) {
      const error = await expectError(await oneClick(token), 400, "INVALID_TOKEN");
      expect(error.message).toMatch(/not valid/);
      await expectError(await call(`${PATH}?token=${encodeURIComponent(token)}`), 400, "INVALID_TOKEN");
    }
    await expectError(await call(PATH, { method: "POST" }), 400, "VALIDATION_ERROR");
    expect((await prefs(u.access)).types).toEqual(NOTIFICATION_DEFAULTS);
    expect((await prefs(victim.access)).types).toEqual(NOTIFICATION_DEFAULTS);
  });

  it("a link from mail sent before its account was deleted answers as for a live one (nothing to do, nothing revealed), by POST and by mail", async () => {
    const u = await bearerUser();
    const [token, mailed] = [await unsubscribeToken(env, u.userId, "forum_reply"), await unsubscribeToken(env, u.userId, "all")];
    const deleted = await call("/api/v1/auth/user/delete/", {
      method: "POST",
      bearer: u.access,
      json: { current_password: GOOD_PASSWORD },
    });
    expect(deleted.status, await deleted.clone().text()).toBe(200);
    const body = await json<{ unsubscribed: boolean; types: string[] }>(await oneClick(token), 200);
    expect(body).toEqual({ unsubscribed: true, scope: "forum_reply", types: ["forum_reply"] });
    expect((await unsubscribeByMail(env, `unsubscribe ${mailed}`)).scope).toBe("all");
    // Nothing private is written back for the deleted account.
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM notification_preferences WHERE user_id = ?")
      .bind(u.userId)
      .first<{ n: number }>();
    expect(rows!.n).toBe(0);
  });

  it("works for the token's user even when a browser sends another user's session cookie without a CSRF header", async () => {
    const owner = await bearerUser();
    const other = await registerWeb();
    const res = await oneClick(await unsubscribeToken(env, owner.userId, "forum_mention"), { cookies: other.cookies });
    expect(res.status).toBe(200);
    expect((await prefs(owner.access)).types.forum_mention!.email).toBe(false);
    const otherPrefs = await json<Prefs>(await call("/api/v1/notifications/preferences/", { cookies: other.cookies }), 200);
    expect(otherPrefs.types.forum_mention!.email).toBe(true);
  });
});

describe("unsubscribing by mail (the mailto: of List-Unsubscribe)", () => {
  /** What Email Routing hands the Worker for a message to the unsubscribe address. */
  function inbound(subject: string, to = "unsubscribe@plantcommunity.test") {
    const rejected: string[] = [];
    const message = {
      from: "someone@example.org",
      to,
      headers: new Headers({ Subject: subject }),
      raw: new ReadableStream(),
      rawSize: 0,
      setReject: (reason: string) => void rejected.push(reason),
      forward: async () => ({}),
      reply: async () => ({}),
    } as unknown as ForwardableEmailMessage;
    return { message, rejected };
  }
  const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;

  it("a mail client that sends the mailto: instead of the one-click POST unsubscribes just the same; a bad token is refused, nothing changed", async () => {
    const worker = (await import("../../src/index")).default as ExportedHandler<typeof env>;
    const u = await bearerUser();
    const headers = await listUnsubscribeHeaders(env, { id: u.userId, email: u.email }, "forum_mention");
    const mailto = /<mailto:([^>]+)>/.exec(headers["List-Unsubscribe"]!)![1]!;
    const subject = decodeURIComponent(new URL(`mailto:${mailto}`).searchParams.get("subject")!);
    expect(subject).toMatch(/^unsubscribe [\w-]+\.[\w-]+$/);
    expect(typeof worker.email).toBe("function");

    const forged = inbound(`${subject.slice(0, -2)}xx`);
    await worker.email!(forged.message, env, ctx);
    expect(forged.rejected).toHaveLength(1);
    expect((await prefs(u.access)).types.forum_mention!.email).toBe(true);

    const good = inbound(`Re: ${subject}`);
    await worker.email!(good.message, env, ctx);
    expect(good.rejected).toEqual([]);
    const after = await prefs(u.access);
    expect(after.types.forum_mention!.email).toBe(false);
    expect(after.types.forum_mention!.push).toBe(NOTIFICATION_DEFAULTS.forum_mention.push);
    expect(after.types.security!.email).toBe(true);
  });
});
