/**
 * The interactive API docs (/api/docs, Swagger UI) in headless Chromium against the real stack:
 * a client pastes a bearer token into Authorize, runs `GET /api/v1/auth/user` from the page and
 * gets 200 with its own profile — possible only because the OpenAPI document declares the
 * security schemes on protected operations. Without authorizing, the same call answers 401.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { useStackAndBrowser } from "./browser";

const e2e = useStackAndBrowser({ purpose: "e2e" });

async function accessToken(username: string): Promise<string> {
  const password = "Mossy-fern-grows-slowly-42";
  const register = await fetch(`${e2e.stack.baseUrl}/api/v1/auth/register/`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, email: `${username}@example.com`, password, password_confirm: password }),
  });
  expect(register.status).toBe(201);
  const token = await fetch(`${e2e.stack.baseUrl}/api/v1/auth/token/`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  expect(token.status).toBe(200);
  return ((await token.json()) as { access: string }).access;
}

async function openDocs(): Promise<{ page: Page; problems: string[] }> {
  const context = await e2e.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(err.message));
  page.on("console", (msg) => {
    // The anonymous call's 401 is logged by the browser as a failed resource: expected here.
    if (msg.type() === "error" && !/401/.test(msg.text())) problems.push(msg.text());
  });
  await page.goto(`${e2e.stack.baseUrl}/api/docs`);
  await page.locator(".opblock-summary").first().waitFor({ timeout: 30_000 });
  return { page, problems };
}

/** Runs GET /api/v1/auth/user from its operation block; returns the status and body shown. */
async function tryUserProfile(page: Page): Promise<{ status: string; body: string }> {
  const block = page.locator(".opblock-get").filter({ has: page.locator(".opblock-summary-path[data-path='/api/v1/auth/user']") });
  // Swagger UI renders only the operations near the viewport: scroll until this one is.
  for (let i = 0; i < 60 && (await block.count()) === 0; i++) {
    await page.mouse.wheel(0, 600);
    await page.waitForTimeout(100);
  }
  if (!((await block.first().getAttribute("class")) ?? "").includes("is-open")) await block.locator(".opblock-summary").first().click();
  const tryOut = block.locator(".try-out__btn");
  if (await tryOut.isVisible().catch(() => false)) {
    if (((await tryOut.textContent()) ?? "").includes("Try it out")) await tryOut.click();
  }
  await block.locator(".execute").click();
  const status = block.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor({ timeout: 15_000 });
  const body = (await block.locator(".live-responses-table .response-col_description pre").first().textContent()) ?? "";
  return { status: ((await status.textContent()) ?? "").trim(), body };
}

describe("the API docs page", () => {
  it("authorizes with a bearer token and runs a protected call (200); without it the call is refused (401)", async () => {
    const token = await accessToken(`docs_${Date.now().toString(36)}`);

    const anonymous = await openDocs();
    expect((await tryUserProfile(anonymous.page)).status).toBe("401");

    const { page, problems } = await openDocs();
    await page.locator("button.authorize").first().click();
    const bearer = page.locator(".auth-container").filter({ hasText: "bearerAuth" });
    await bearer.locator("input").first().fill(token);
    await bearer.locator("button.authorize").click();
    await page.locator(".btn-done").first().click();

    const { status, body } = await tryUserProfile(page);
    expect(status).toBe("200");
    expect(body).toContain("docs_");
    expect(problems).toEqual([]);
  });

  it("links the WebSocket protocol's AsyncAPI document", async () => {
    const { page } = await openDocs();
    const href = await page.locator("#asyncapi-link").getAttribute("href");
    const res = await fetch(`${e2e.stack.baseUrl}${href}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { asyncapi: string }).asyncapi).toBe("3.0.0");
  });

  it("lets a local tester sign up more often than production would (npm start's relaxed limits)", async () => {
    // Production allows 3 sign-ups an hour per address; locally a tester keeps going.
    for (let i = 0; i < 5; i++) await accessToken(`local_${Date.now().toString(36)}_${i}`);
  });
});
