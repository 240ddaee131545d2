/**
 * The pages' session check (public/identify/, public/editor/) in headless Chromium against the
 * real stack: a visitor who is not signed in sees no error in the console (the check asks csrf/,
 * which answers everyone 200 and says `signed_in`, instead of taking auth/user/'s 401 for "not
 * signed in" — a 401 the browser logs as a failed resource), while a signed-in visitor is still
 * recognised, and one whose 15-minute access cookie has expired is still signed in by a refresh
 * (on either page: the check is one shared script, public/shared/session.js).
 * Every console error counts here: nothing is filtered out.
 */
import type { BrowserContext, Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { pageProblems, useStackAndBrowser } from "./browser";

const e2e = useStackAndBrowser({ purpose: "e2e-session", env: { REGISTER_RATE_LIMIT: "1000/3600" } });
const PASSWORD = "Mossy-fern-grows-slowly-42";

/** Opens `path` in `context`, recording every console error and uncaught exception. */
async function open(context: BrowserContext, path: string): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  const problems = pageProblems(page);
  const res = await page.goto(`${e2e.stack.baseUrl}${path}`, { waitUntil: "networkidle" });
  expect(res?.status()).toBe(200);
  await page.waitForSelector('#session-status:not([data-state="unknown"])');
  return { page, problems };
}

/** Registers through the context's own cookie jar, so its pages are signed in. */
async function signIn(context: BrowserContext): Promise<string> {
  const username = `sess_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const res = await context.request.post(`${e2e.stack.baseUrl}/api/v1/auth/register/`, {
    data: { username, email: `${username}@example.com`, password: PASSWORD },
  });
  expect(res.status(), await res.text()).toBe(201);
  return username;
}

describe.each(["/identify/", "/editor/"])("%s session check", (path) => {
  it("an anonymous visit logs no console error", async () => {
    const { page, problems } = await open(await e2e.newContext(), path);
    expect(await page.getAttribute("#session-status", "data-state")).toBe("anonymous");
    expect(problems).toEqual([]);
  });

  it("a signed-in visit is recognised, without a console error", async () => {
    const context = await e2e.newContext();
    const username = await signIn(context);
    const { page, problems } = await open(context, path);
    expect(await page.getAttribute("#session-status", "data-state")).toBe("signed-in");
    expect(await page.textContent("#session-status")).toContain(username);
    expect(problems).toEqual([]);
  });
});

describe("/identify/ with an expired access cookie", () => {
  it("is signed in again by a refresh, without a console error", async () => {
    const context = await e2e.newContext();
    const username = await signIn(context);
    // The first visit sees the session and remembers that this browser signed in.
    const first = await open(context, "/identify/");
    expect(await first.page.getAttribute("#session-status", "data-state")).toBe("signed-in");
    await first.page.close();
    // The browser drops the access cookie when its 15 minutes are over; the refresh cookie stays.
    await context.clearCookies({ name: "access_token" });
    const refreshed = context.waitForEvent("response", (r) => r.url().includes("/api/v1/auth/token/refresh"));
    const { page, problems } = await open(context, "/identify/");
    expect((await refreshed).status()).toBe(200);
    expect(await page.textContent("#session-status")).toBe(`Signed in as ${username}`);
    expect(problems).toEqual([]);
  });
});

describe("/editor/ with an expired access cookie", () => {
  it("an editor who reloads is signed in again by a refresh and sees the editor, without a console error", async () => {
    const context = await e2e.newContext();
    const username = await signIn(context);
    e2e.grantRole(username, "editor");
    // The first visit sees the session and remembers that this browser signed in.
    const first = await open(context, "/editor/");
    expect(await first.page.isVisible("#workspace")).toBe(true);
    await first.page.close();
    // The browser drops the access cookie when its 15 minutes are over; the refresh cookie stays.
    await context.clearCookies({ name: "access_token" });
    const refreshed = context.waitForEvent("response", (r) => r.url().includes("/api/v1/auth/token/refresh"));
    const { page, problems } = await open(context, "/editor/");
    expect((await refreshed).status()).toBe(200);
    expect(await page.textContent("#session-status")).toBe(`Signed in as ${username} (editor)`);
    expect(await page.isVisible("#workspace")).toBe(true);
    expect(await page.isVisible("#signin-panel")).toBe(false);
    expect(problems).toEqual([]);
  });
});
