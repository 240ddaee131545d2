/**
 * The identification page (public/identify/) in real headless Chromium against the real stack
 * (`scripts/start.ts`: provider emulators, local D1/KV/R2/Queues/Durable Objects, wrangler dev).
 *
 *   a. anonymous: photo → POST identify/ → suggestion cards with confidence;
 *   b. signed in: register through the page → POST requests/ → live progress over the
 *      WebSocket → results from requests/{id}/results/ → sign out;
 *   c. a text file named .png → the server's own error message on the page.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { loginRefusal, pageProblems, useStackAndBrowser } from "./browser";
import { makePng } from "../test/helpers/images";

const e2e = useStackAndBrowser({
  purpose: "e2e",
  env: { REGISTER_RATE_LIMIT: "1000/3600", LOGIN_RATE_LIMIT: "1000/900", IDENTIFY_RATE_LIMIT: "1000/3600" },
});

// ---- A real, decodable PNG; `seed` varies the bytes ------------------------------------------

async function photo(width: number, height: number, seed: string): Promise<Buffer> {
  return Buffer.from(await makePng(width, height, { seed }));
}

// ---- Page helpers -------------------------------------------------------------------------

const PASSWORD = "Mossy-fern-grows-slowly-42";

interface OpenPage {
  page: Page;
  /** Uncaught exceptions and console errors (e.g. CSP violations) seen on the page. */
  problems: string[];
}

async function openIdentifyPage(): Promise<OpenPage> {
  const context = await e2e.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  // A rejected upload answers 400 and a wrong password 401: expected answers, not page bugs (the
  // session check answers a visitor 200). Similar images come from the local emulators and must load.
  const problems = pageProblems(page, (text, url) => /the server responded with a status of 400/i.test(text) || loginRefusal(text, url));
  const res = await page.goto(`${e2e.stack.baseUrl}/identify/`, { waitUntil: "domcontentloaded" });
  expect(res?.status()).toBe(200);
  // app.js has run once the session check has settled.
  await page.waitForSelector('#session-status:not([data-state="unknown"])');
  return { page, problems };
}

async function choosePhoto(page: Page, name: string, mimeType: string, bytes: Buffer) {
  await page.setInputFiles("#photo-input", { name, mimeType, buffer: bytes });
  await page.waitForSelector("#preview:not([hidden])");
  expect(await page.isEnabled("#identify-button")).toBe(true);
}

/** Creates an account with the page's "Create account" form; the page is then signed in. */
async function registerThroughPage(page: Page): Promise<string> {
  const username = `e2e_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  await page.click("#tab-register");
  await page.waitForSelector("#auth-email-field:not([hidden])");
  await page.fill("#auth-username", username);
  await page.fill("#auth-email", `${username}@example.com`);
  await page.fill("#auth-password", PASSWORD);
  const registered = page.waitForResponse((r) => r.url().includes("/api/v1/auth/register") && r.request().method() === "POST");
  await page.click("#auth-submit");
  expect((await registered).status()).toBe(201);
  await page.waitForSelector('#session-status[data-state="signed-in"]');
  expect(await page.textContent("#session-status")).toBe(`Signed in as ${username}`);
  return username;
}

/** The text of every rendered suggestion card (name, scientific name, confidence). */
async function cardSummaries(page: Page) {
  return page.$$eval(".card", (cards) =>
    cards.map((card) => ({
      name: card.querySelector(".card__name")?.textContent ?? "",
      scientific: card.querySelector(".card__scientific")?.textContent ?? "",
      confidence: card.querySelector(".confidence__value")?.textContent ?? "",
      badges: [...card.querySelectorAll(".badge")].map((b) => b.textContent ?? ""),
      images: [...card.querySelectorAll("img")].map((img) => ({
        loading: img.getAttribute("loading"),
        referrerpolicy: img.getAttribute("referrerpolicy"),
      })),
    })),
  );
}

describe("identification page", () => {
  it("serves a landing page that links to the identification page and the API docs", async () => {
    const context = await e2e.newContext();
    const page = await context.newPage();
    await page.goto(`${e2e.stack.baseUrl}/`, { waitUntil: "domcontentloaded" });
    const links = await page.$$eval("a", (as) => as.map((a) => a.getAttribute("href")));
    expect(links).toContain("/identify/");
    expect(links).toContain("/api/docs");
  });

  it("a. identifies a photo without an account", async () => {
    const { page, problems } = await openIdentifyPage();
    expect(await page.textContent("#session-status")).toBe("Not signed in");

    await choosePhoto(page, "garden-plant.png", "image/png", await photo(480, 360, `e2e-anon-${Date.now()}`));
    const answer = page.waitForResponse(
      (r) => r.url().includes("/api/v1/plant-identification/identify") && r.request().method() === "POST",
    );
    await page.click("#identify-button");
    const res = await answer;
    expect(res.status()).toBe(200);
    const body = (await res.json()) as { success: boolean; suggestions: { scientific_name: string; probability: number }[] };
    expect(body.success).toBe(true);

    await page.waitForSelector("#results-panel:not([hidden]) .card");
    const cards = await cardSummaries(page);
    expect(cards.length).toBe(body.suggestions.length);
    expect(cards[0]!.scientific).toBe(body.suggestions[0]!.scientific_name);
    expect(cards[0]!.confidence).toBe(`${Math.round(body.suggestions[0]!.probability * 100)}%`);
    for (const card of cards) {
      expect(card.name.length).toBeGreaterThan(0);
      expect(card.confidence).toMatch(/^\d{1,3}%$/);
      expect(card.badges.length).toBeGreaterThan(0);
      expect(card.images.length).toBeLessThanOrEqual(4);
      for (const img of card.images) expect(img).toEqual({ loading: "lazy", referrerpolicy: "no-referrer" });
    }
    expect(await page.getAttribute("#progress-bar", "aria-valuenow")).toBe("100");
    expect(await page.textContent("#identify-error")).toBe("");

    await page.screenshot({ path: "/tmp/identify-anon.png", fullPage: true });
    expect(problems).toEqual([]);
  });

  it("b. signs up through the page and shows live progress for a saved identification", async () => {
    const { page, problems } = await openIdentifyPage();

    // The page's WebSocket traffic, to prove progress arrived live rather than by polling.
    const socketUrls: string[] = [];
    const frames: { type?: string; stage?: string }[] = [];
    page.on("websocket", (ws) => {
      socketUrls.push(ws.url());
      ws.on("framereceived", (frame) => {
        if (typeof frame.payload !== "string" || frame.payload === "pong") return;
        try {
          frames.push(JSON.parse(frame.payload) as { type?: string; stage?: string });
        } catch {
          // not JSON: ignore
        }
      });
    });

    const _username = await registerThroughPage(page);
    // The new account is told where its confirmation link went.
    await page.waitForSelector("#signed-in-note:not([hidden])");
    expect(await page.textContent("#signed-in-note")).toMatch(/email to confirm your address/);

    // Record each progress step as it is added, with the time, before the upload starts.
    await page.evaluate(() => {
      const w = window as unknown as { __steps: { stage: string; source: string; at: number }[] };
      w.__steps = [];
      new MutationObserver((records) => {
        for (const record of records) {
          for (const node of record.addedNodes) {
            if (node instanceof HTMLElement && node.matches("li.step")) {
              w.__steps.push({ stage: node.dataset.stage ?? "", source: node.dataset.source ?? "", at: performance.now() });
            }
          }
        }
      }).observe(document.getElementById("progress-list")!, { childList: true });
    });

    await choosePhoto(page, "leaf.png", "image/png", await photo(400, 320, `e2e-live-${Date.now()}`));
    await page.selectOption("#organ-select", "leaf");
    const accepted = page.waitForResponse(
      (r) => /\/api\/v1\/plant-identification\/requests\/?$/.test(new URL(r.url()).pathname) && r.request().method() === "POST",
    );
    await page.click("#identify-button");
    const acceptedRes = await accepted;
    expect(acceptedRes.status()).toBe(202);
    const request = (await acceptedRes.json()) as { request_id: string; ws_url: string };

    await page.waitForSelector("#results-panel:not([hidden]) .card", { timeout: 90_000 });

    const steps = await page.evaluate(() => (window as unknown as { __steps: { stage: string; source: string; at: number }[] }).__steps);
    const stages = steps.map((s) => s.stage);
    const serverStages = steps.filter((s) => s.source === "server").map((s) => s.stage);
    // Live: the socket reported the job starting, each before the final state was shown.
    expect(serverStages.some((s) => s === "queued" || s === "processing_start")).toBe(true);
    expect(stages.at(-1)).toBe("completed");
    const firstLive = steps.find((s) => s.stage === "queued" || s.stage === "processing_start")!;
    const completed = steps.find((s) => s.stage === "completed")!;
    expect(firstLive.at).toBeLessThan(completed.at);
    expect(stages).not.toContain("polling");

    expect(socketUrls).toEqual([`${e2e.stack.baseUrl.replace(/^http/, "ws")}${request.ws_url}`]);
    expect(frames[0]?.type).toBe("init");
    expect(frames.some((f) => f.type === "progress")).toBe(true);
    expect(frames.some((f) => f.type === "completed")).toBe(true);

    const progressText = await page.textContent("#progress-list");
    expect(progressText).toMatch(/Started working on your photo|Waiting in the queue/);
    expect(progressText).toMatch(/Identified|Not sure/);
    // Each step shows its time, but the live region announces the step without it.
    const times = page.locator("#progress-list .step__time");
    expect(await times.count()).toBe(steps.length);
    expect(await times.first().isVisible()).toBe(true);
    expect(await times.first().textContent()).toMatch(/\d{1,2}:\d{2}:\d{2}/);
    const spoken = await page.locator("#progress-list").ariaSnapshot();
    expect(spoken).toMatch(/Identified|Not sure/);
    expect(spoken).not.toMatch(/\d{1,2}:\d{2}:\d{2}/);
    expect(await page.getAttribute("#progress-bar", "aria-valuenow")).toBe("100");

    const results = (await page.evaluate(async (id) => {
      const res = await fetch(`/api/v1/plant-identification/requests/${id}/results/`, { credentials: "same-origin" });
      return res.json();
    }, request.request_id)) as { results: { scientific_name: string; confidence_score: number }[] };
    const cards = await cardSummaries(page);
    expect(cards.length).toBe(results.results.length);
    expect(cards[0]!.scientific).toBe(results.results[0]!.scientific_name);
    expect(cards[0]!.confidence).toBe(`${Math.round(results.results[0]!.confidence_score * 100)}%`);

    await page.screenshot({ path: "/tmp/identify-live.png", fullPage: true });

    // Sign out (CSRF header from the csrftoken cookie) returns the page to the anonymous mode.
    const loggedOut = page.waitForResponse((r) => r.url().includes("/api/v1/auth/logout") && r.request().method() === "POST");
    await page.click("#signout-button");
    expect((await loggedOut).status()).toBe(200);
    await page.waitForSelector('#session-status[data-state="anonymous"]');
    expect(problems).toEqual([]);
  });

  it("offers a new account the confirmation link again, and mails it", async () => {
    const { page, problems } = await openIdentifyPage();
    const username = await registerThroughPage(page);
    const address = `${username}@example.com`;
    const mailsTo = async () => {
      const res = await fetch(`http://127.0.0.1:${e2e.stack.emulatorPort}/email/emails?to=${encodeURIComponent(address)}`, {
        headers: { Authorization: "Bearer emulator-key" },
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { data: { subject: string }[] }).data.filter((m) => /confirm/i.test(m.subject)).length;
    };
    await page.waitForSelector("#verify-row:not([hidden])");
    const before = await mailsTo();
    expect(before).toBe(1); // the one registration mailed
    const asked = page.waitForResponse((r) => r.url().includes("/api/v1/auth/email/verify") && r.request().method() === "POST");
    await page.click("#resend-verification");
    expect((await asked).status()).toBe(202);
    await page.waitForFunction(() => /confirmation link to/.test(document.querySelector("#verify-status")?.textContent ?? ""));
    expect(await page.textContent("#verify-status")).toBe(`We sent a confirmation link to ${address}.`);
    expect(await mailsTo()).toBe(2);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it("c. shows the server's message for a file that is not an image", async () => {
    const { page, problems } = await openIdentifyPage();
    await choosePhoto(page, "notes.png", "image/png", Buffer.from("These are my garden notes, not a photo.\n"));

    const answer = page.waitForResponse(
      (r) => r.url().includes("/api/v1/plant-identification/identify") && r.request().method() === "POST",
    );
    await page.click("#identify-button");
    const res = await answer;
    expect(res.status()).toBe(400);
    const body = (await res.json()) as { success: boolean; error: string };
    expect(body.success).toBe(false);
    expect(body.error).toMatch(/Invalid file type/);

    await page.waitForSelector("#identify-error:not(:empty)");
    expect(await page.textContent("#identify-error")).toBe(body.error);
    expect(await page.isHidden("#results-panel")).toBe(true);
    expect(await page.getAttribute("#progress-panel", "data-state")).toBe("failed");
    expect(problems).toEqual([]);
  });

  it("takes a photo by drag and drop, and refuses a dropped file that is not a photo", async () => {
    const { page, problems } = await openIdentifyPage();
    const drop = (name: string, type: string, base64: string) =>
      page.evaluate(
        ({ name, type, base64 }) => {
          const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
          const data = new DataTransfer();
          data.items.add(new File([bytes], name, { type }));
          const zone = document.getElementById("dropzone")!;
          for (const kind of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(kind, { dataTransfer: data, bubbles: true, cancelable: true }));
          }
        },
        { name, type, base64 },
      );

    await drop("notes.txt", "text/plain", Buffer.from("not a photo").toString("base64"));
    expect(await page.textContent("#identify-error")).toBe("That file is text/plain. Please choose a JPEG, PNG or WebP photo.");
    expect(await page.isDisabled("#identify-button")).toBe(true);

    await drop("dropped.png", "image/png", (await photo(320, 240, `e2e-drop-${Date.now()}`)).toString("base64"));
    await page.waitForSelector("#preview:not([hidden])");
    expect(await page.textContent("#preview-name")).toMatch(/^dropped\.png · \d+ KB$/);
    expect(await page.textContent("#identify-error")).toBe("");
    expect(await page.isEnabled("#identify-button")).toBe(true);
    expect(await page.getAttribute("#dropzone", "class")).not.toContain("is-dragging");
    expect(problems).toEqual([]);
  });

  it("shows field errors, signs in with the form, and polls when the live connection fails", async () => {
    const { page, problems } = await openIdentifyPage();

    // The password policy's message from the envelope's `errors.password`, under the field.
    await page.click("#tab-register");
    await page.fill("#auth-username", `e2e_weak_${Date.now().toString(36)}`);
    await page.fill("#auth-email", `e2e_weak_${Date.now().toString(36)}@example.com`);
    await page.fill("#auth-password", "short");
    const rejected = page.waitForResponse((r) => r.url().includes("/api/v1/auth/register") && r.request().method() === "POST");
    await page.click("#auth-submit");
    const rejectedBody = (await (await rejected).json()) as { errors?: { password?: string[] } };
    expect(rejectedBody.errors?.password?.length).toBeGreaterThan(0);
    await page.waitForSelector("#auth-password-error:not(:empty)");
    expect(await page.textContent("#auth-password-error")).toBe(rejectedBody.errors!.password!.join(" "));
    expect(await page.getAttribute("#auth-password", "aria-invalid")).toBe("true");

    const username = await registerThroughPage(page);
    await page.click("#signout-button");
    await page.waitForSelector('#session-status[data-state="anonymous"]');

    // Wrong password: the envelope's message, no account enumeration.
    await page.fill("#auth-username", username);
    await page.fill("#auth-password", "not-the-right-password");
    await page.click("#auth-submit");
    await page.waitForSelector("#auth-error:not(:empty)");
    expect(await page.textContent("#auth-error")).toBe("Invalid username or password.");

    await page.fill("#auth-password", PASSWORD);
    await page.click("#auth-submit");
    await page.waitForSelector('#session-status[data-state="signed-in"]');

    // Every WebSocket the page opens is refused at once: the page must poll instead.
    await page.routeWebSocket(/\/ws\//, (ws) => ws.close({ code: 1011, reason: "e2e: socket refused" }));
    const polls: string[] = [];
    page.on("request", (r) => {
      if (r.method() === "GET" && /\/plant-identification\/requests\/[0-9a-f-]+\/?$/.test(new URL(r.url()).pathname)) polls.push(r.url());
    });

    await choosePhoto(page, "bark.png", "image/png", await photo(360, 480, `e2e-poll-${Date.now()}`));
    await page.selectOption("#organ-select", "bark");
    await page.click("#identify-button");
    await page.waitForSelector("#results-panel:not([hidden]) .card", { timeout: 90_000 });

    const stages = await page.$$eval("#progress-list li", (items) => items.map((li) => (li as HTMLElement).dataset.stage));
    expect(stages).toContain("polling");
    expect(stages.at(-1)).toBe("completed");
    expect(polls.length).toBeGreaterThan(0);
    expect((await cardSummaries(page))[0]!.confidence).toMatch(/^\d{1,3}%$/);
    expect(problems).toEqual([]);
  });
});
