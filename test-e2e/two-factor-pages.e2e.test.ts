/**
 * The pages' sign-in with two-factor sign-in on (docs/api.md "Two-factor sign-in"), in headless
 * Chromium against the real stack: the password answers 401 TWO_FACTOR_REQUIRED, the page asks for
 * the authenticator's code (or a recovery code), and the second step signs the visitor in. Without
 * it an account with two-factor sign-in could not use the editor at all.
 * The one console error allowed is the challenge's own 401 from auth/login/.
 */
import type { BrowserContext, Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { codeAt, fromBase32, steadyStep } from "../test/helpers/totp";
import { loginRefusal, pageProblems, useStackAndBrowser } from "./browser";

const e2e = useStackAndBrowser({ purpose: "e2e-2fa", env: { REGISTER_RATE_LIMIT: "1000/3600" } });
const PASSWORD = "Mossy-fern-grows-slowly-42";

/** Registers an account and turns two-factor sign-in on through the API; its secret and recovery codes. */
async function accountWithTwoFactor(): Promise<{ username: string; secret: Uint8Array; recovery: string[] }> {
  const post = (path: string, body: unknown, access?: string) =>
    fetch(`${e2e.stack.baseUrl}/api/v1/auth/${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(access ? { Authorization: `Bearer ${access}` } : {}) },
      body: JSON.stringify(body),
    });
  const username = `tf_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const reg = await post("register/", { username, email: `${username}@example.com`, password: PASSWORD });
  expect(reg.status, await reg.text()).toBe(201);
  const { access } = (await (await post("token/", { username, password: PASSWORD })).json()) as { access: string };
  const setup = await post("2fa/setup/", { current_password: PASSWORD }, access);
  expect(setup.status, await setup.clone().text()).toBe(200);
  const secret = fromBase32(((await setup.json()) as { secret: string }).secret);
  const enable = await post("2fa/enable/", { code: await codeAt(secret, await steadyStep()) }, access);
  expect(enable.status, await enable.clone().text()).toBe(200);
  return { username, secret, recovery: ((await enable.json()) as { recovery_codes: string[] }).recovery_codes };
}

async function open(context: BrowserContext, path: string): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  const problems = pageProblems(page, loginRefusal);
  await page.goto(`${e2e.stack.baseUrl}${path}`, { waitUntil: "networkidle" });
  await page.waitForSelector('#session-status:not([data-state="unknown"])');
  return { page, problems };
}

const pages = [
  { path: "/identify/", username: "#auth-username", password: "#auth-password", code: "#auth-code", submit: "#auth-submit" },
  { path: "/editor/", username: "#signin-username", password: "#signin-password", code: "#signin-code", submit: "#signin-submit" },
] as const;

describe.each(pages)("$path sign-in with two-factor sign-in on", (p) => {
  it("asks for the authenticator's code after the password, and signs in with it", async () => {
    const account = await accountWithTwoFactor();
    if (p.path === "/editor/") e2e.grantRole(account.username, "author");
    const { page, problems } = await open(await e2e.newContext(), p.path);
    await page.fill(p.username, account.username);
    await page.fill(p.password, PASSWORD);
    await page.click(p.submit);
    await page.waitForSelector(`${p.code}:visible`);
    expect(await page.getAttribute("#session-status", "data-state")).toBe("anonymous");
    // The enabling code's step is spent; the next one is accepted (one step of skew).
    await page.fill(p.code, await codeAt(account.secret, (await steadyStep()) + 1));
    await page.click(p.submit);
    await page.waitForSelector('#session-status[data-state="signed-in"]');
    expect(await page.textContent("#session-status")).toContain(account.username);
    expect(problems).toEqual([]);
  });

  it("takes a recovery code in the same field, and says so when a code is wrong", async () => {
    const account = await accountWithTwoFactor();
    if (p.path === "/editor/") e2e.grantRole(account.username, "author");
    const { page } = await open(await e2e.newContext(), p.path);
    await page.fill(p.username, account.username);
    await page.fill(p.password, PASSWORD);
    await page.click(p.submit);
    await page.waitForSelector(`${p.code}:visible`);
    await page.fill(p.code, "000000");
    await page.click(p.submit);
    const error = p.path === "/editor/" ? "#signin-error" : "#auth-error";
    await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent ?? "").length > 0, error);
    expect(await page.textContent(error)).toMatch(/code/i);
    expect(await page.getAttribute("#session-status", "data-state")).toBe("anonymous");
    await page.fill(p.code, account.recovery[0]!.toUpperCase());
    await page.click(p.submit);
    await page.waitForSelector('#session-status[data-state="signed-in"]');
  });
});
