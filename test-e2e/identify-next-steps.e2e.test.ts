/**
 * The identification page's next steps (issue 12 item 7) in headless Chromium against the real
 * stack: care instructions, expandable descriptions, a link per species, credited similar images
 * the local emulators really serve, per-provider outcomes (a failed provider is never a tick),
 * one error message, the providers-down notice instead of rows, and — signed in — saving to a
 * collection, the history and "Try again".
 *
 * Strict about the console: any error (an image that does not load, a CSP refusal, a script
 * error) fails a test, except the "server responded with a status" lines Chromium prints for an
 * API answer that is expected: a 503 a test provoked. (The session check answers a visitor 200.)
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { makePng } from "../test/helpers/images";
import { useStackAndBrowser } from "./browser";

const e2e = useStackAndBrowser(
  {
    purpose: "e2e-next-steps",
    env: { REGISTER_RATE_LIMIT: "1000/3600", LOGIN_RATE_LIMIT: "1000/900", IDENTIFY_RATE_LIMIT: "1000/3600" },
  },
  { afterEachTest: () => emulator("reset", null) },
);

/** Switches an emulator's failure mode (POST /__control/{name}); "reset" puts every one back. */
async function emulator(name: "plant-id" | "plantnet" | "reset", mode: Record<string, unknown> | null) {
  const res = await fetch(`http://127.0.0.1:${e2e.stack.emulatorPort}/__control/${name}`, {
    method: "POST",
    body: mode ? JSON.stringify(mode) : "",
  });
  expect(res.status).toBe(200);
}

const photo = async (seed: string) => Buffer.from(await makePng(480, 360, { seed: `${seed}-${Date.now()}-${Math.random()}` }));
const PASSWORD = "Mossy-fern-grows-slowly-42";

interface OpenPage {
  page: Page;
  problems: string[];
}

async function openPage(): Promise<OpenPage> {
  const context = await e2e.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    if (/the server responded with a status of 503/.test(msg.text())) return;
    problems.push(`console: ${msg.text()}`);
  });
  page.on("requestfailed", (req) => problems.push(`requestfailed: ${req.url()} ${req.failure()?.errorText ?? ""}`));
  await page.goto(`${e2e.stack.baseUrl}/identify/`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector('#session-status:not([data-state="unknown"])');
  return { page, problems };
}

async function choose(page: Page, seed: string) {
  await page.setInputFiles("#photo-input", { name: `${seed}.png`, mimeType: "image/png", buffer: await photo(seed) });
  await page.waitForSelector("#preview:not([hidden])");
}

async function register(page: Page): Promise<string> {
  const username = `e2e_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  await page.click("#tab-register");
  await page.fill("#auth-username", username);
  await page.fill("#auth-email", `${username}@example.com`);
  await page.fill("#auth-password", PASSWORD);
  await page.click("#auth-submit");
  await page.waitForSelector('#session-status[data-state="signed-in"]');
  return username;
}

/** Progress rows as the page shows them: stage, kind (done / error / warn…) and text. */
function rows(page: Page) {
  return page.$$eval("#progress-list li", (items) =>
    items.map((li) => ({
      stage: (li as HTMLElement).dataset.stage ?? "",
      kind: [...li.classList].find((c) => c.startsWith("step--"))?.slice(6) ?? "",
      text: li.querySelector(".step__text")?.textContent ?? "",
    })),
  );
}

/** How many times `text` appears in what the page shows (hidden elements do not count). */
// biome-ignore lint/performance/useDomNodeTextContent: innerText is the rendered text, which is the point here.
const occurrences = (page: Page, text: string) => page.evaluate((t) => document.body.innerText.split(t).length - 1, text);

/**
 * Makes the page's next identification ask in `language` (the page itself never names one; a
 * mobile client does): the multipart body the page sends gets a `language` part.
 */
async function askNextIdentificationIn(page: Page, language: string) {
  const identify = /\/plant-identification\/identify\/?$/;
  await page.route(
    identify,
    async (route) => {
      const request = route.request();
      const boundary = /boundary=(.+)$/.exec(request.headers()["content-type"] ?? "")?.[1];
      const body = request.postDataBuffer();
      expect(boundary && body).toBeTruthy();
      const end = body!.lastIndexOf(`--${boundary}--`);
      const part = `--${boundary}\r\nContent-Disposition: form-data; name="language"\r\n\r\n${language}\r\n`;
      await route.continue({ postData: Buffer.concat([body!.subarray(0, end), Buffer.from(part), body!.subarray(end)]) });
    },
    { times: 1 },
  );
}

/** Each care row: its field, and the `lang` its label and its value are read in ("" for the page's). */
function careLanguages(page: Page) {
  return page.$$eval("#care-list .care__item", (items) =>
    items.map((i) => ({
      field: (i as HTMLElement).dataset.field ?? "",
      label: i.querySelector("dt")?.closest("[lang]")?.getAttribute("lang") ?? "",
      value: i.querySelector("dd")?.closest("[lang]")?.getAttribute("lang") ?? "",
    })),
  );
}

describe("identification page: results people can act on", () => {
  it("shows care instructions, folds long descriptions, links each species and credits similar images that load", async () => {
    const { page, problems } = await openPage();
    await choose(page, "care");
    const answer = page.waitForResponse((r) => r.url().includes("/plant-identification/identify") && r.request().method() === "POST");
    await page.click("#identify-button");
    const body = (await (await answer).json()) as {
      suggestions: { scientific_name: string; url?: string; gbif_id?: number; similar_images: { citation?: string }[] }[];
      care_instructions: Record<string, unknown> | null;
    };
    await page.waitForSelector("#results-panel:not([hidden]) .card");

    // Care: the instructions the server sent, under the best match's name.
    expect(body.care_instructions).not.toBeNull();
    await page.waitForSelector("#care:not([hidden])");
    expect(await page.textContent("#care-title")).toMatch(/^How to care for /);
    const careFields = await page.$$eval("#care-list .care__item", (items) => items.map((i) => (i as HTMLElement).dataset.field));
    expect(careFields.length).toBeGreaterThan(0);
    if (typeof body.care_instructions!.light === "string")
      expect(await page.textContent("#care-list")).toContain(body.care_instructions!.light);

    // A link per species, to the provider's page (or GBIF), opening safely in a new tab.
    const links = await page.$$eval(".card", (cards) =>
      cards.map((c) => {
        const a = c.querySelector<HTMLAnchorElement>("a.card__link");
        return a ? { href: a.href, target: a.target, rel: a.rel } : null;
      }),
    );
    expect(links).toHaveLength(body.suggestions.length);
    links.forEach((link, i) => {
      expect(link, `card ${i}`).not.toBeNull();
      expect(link!.href).toMatch(/^https:\/\//);
      expect(link!.target).toBe("_blank");
      expect(link!.rel).toContain("noopener");
      const s = body.suggestions[i]!;
      if (s.url) expect(link!.href).toBe(s.url);
      else if (s.gbif_id) expect(link!.href).toBe(`https://www.gbif.org/species/${s.gbif_id}`);
    });

    // Long descriptions start folded; "Show more" unfolds and says so.
    const folded = page.locator(".card__more").first();
    expect(await page.locator(".card__more").count()).toBeGreaterThan(0);
    const describedId = (await folded.getAttribute("aria-controls"))!;
    const heights = () => page.$eval(`#${describedId}`, (p) => ({ client: p.clientHeight, scroll: p.scrollHeight }));
    const before = await heights();
    expect(before.scroll).toBeGreaterThan(before.client);
    expect(await folded.getAttribute("aria-expanded")).toBe("false");
    await folded.click();
    expect(await folded.getAttribute("aria-expanded")).toBe("true");
    expect(await folded.textContent()).toBe("Show less");
    const after = await heights();
    expect(after.client).toBeGreaterThan(before.client);
    expect(after.scroll).toBeLessThanOrEqual(after.client + 1);

    // Similar images: served by the local emulators, really loaded, each with its credit. (A
    // tall window, so the lazy images of every card are in view and load.)
    await page.setViewportSize({ width: 1280, height: 6000 });
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>(".gallery__img")].every((img) => img.complete));
    const images = await page.$$eval(".gallery__item", (cells) =>
      cells.map((cell) => {
        const img = cell.querySelector("img")!;
        return { src: img.src, width: img.naturalWidth, credit: cell.querySelector(".gallery__credit")?.textContent ?? "" };
      }),
    );
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) {
      expect(image.src.startsWith(`http://127.0.0.1:${e2e.stack.emulatorPort}/media/`), image.src).toBe(true);
      expect(image.width, image.src).toBeGreaterThan(0);
      expect(image.credit).toMatch(/^© \S/);
    }
    expect(problems).toEqual([]);
  });

  it("marks the care guide's language, so a screen reader reads a French guide with a French voice", async () => {
    const { page, problems } = await openPage();
    await askNextIdentificationIn(page, "fr");
    await choose(page, "care-fr");
    const answer = page.waitForResponse((r) => r.url().includes("/plant-identification/identify") && r.request().method() === "POST");
    await page.click("#identify-button");
    const body = (await (await answer).json()) as { care_instructions: Record<string, unknown> | null };
    expect(body.care_instructions?.language).toBe("fr");
    await page.waitForSelector("#care:not([hidden])");
    const french = await careLanguages(page);
    expect(french.length).toBeGreaterThan(0);
    for (const row of french) {
      // The page's own words (labels, title) stay English; the guide's prose is French, an English
      // code such as "very_easy" is not.
      expect(row.label, row.field).toBe("en");
      expect(row.value, row.field).toBe(["difficulty_level", "plant_type"].includes(row.field) ? "en" : "fr");
    }
    expect(french.some((row) => row.value === "fr")).toBe(true);
    expect(await page.$eval("#care-title", (t) => t.closest("[lang]")?.getAttribute("lang"))).toBe("en");

    // The next guide, in English, is not left marked French.
    await choose(page, "care-en");
    const again = page.waitForResponse((r) => r.url().includes("/plant-identification/identify") && r.request().method() === "POST");
    await page.click("#identify-button");
    expect(((await (await again).json()) as { care_instructions: { language?: string } | null }).care_instructions?.language).toBe("en");
    await page.waitForFunction(() => !document.querySelector('#care-list [lang="fr"]'));
    for (const row of await careLanguages(page)) expect(row.value, row.field).toBe("en");
    expect(problems).toEqual([]);
  });

  it("marks a provider that failed as failed, not with a tick, and still shows the other's answer", async () => {
    await emulator("plant-id", { failure: "500" });
    const { page, problems } = await openPage();
    await choose(page, "one-down");
    await page.click("#identify-button");
    await page.waitForSelector("#results-panel:not([hidden]) .card");
    const shown = await rows(page);
    expect(shown.find((r) => r.stage === "provider_plant_id")).toMatchObject({
      kind: "error",
      text: expect.stringMatching(/Plant\.id failed/),
    });
    expect(shown.find((r) => r.stage === "provider_plantnet")).toMatchObject({
      kind: "done",
      text: expect.stringMatching(/Pl@ntNet answered/),
    });
    expect(await page.textContent("#identify-error")).toBe("");
    expect(problems).toEqual([]);
  });

  it("shows a provider that missed the deadline as slow, not answered", async () => {
    // Plant.id answers after 6 s; the stack's IDENTIFY_SECOND_PROVIDER_GRACE_MS is the default 2.5 s.
    await emulator("plant-id", { latencyMs: 6_000 });
    const { page, problems } = await openPage();
    await choose(page, "slow");
    const answer = page.waitForResponse((r) => r.url().includes("/plant-identification/identify") && r.request().method() === "POST");
    await page.click("#identify-button");
    const body = (await (await answer).json()) as { providers: Record<string, { status: string }> };
    // "pending" proves the answer did not wait the 6 s for Plant.id (that would be "answered").
    expect(body.providers.plant_id!.status).toBe("pending");
    await page.waitForSelector("#results-panel:not([hidden]) .card");
    const shown = await rows(page);
    expect(shown.find((r) => r.stage === "provider_plant_id")).toMatchObject({
      kind: "warn",
      text: expect.stringMatching(/Plant\.id is slow/),
    });
    expect(shown.find((r) => r.stage === "provider_plantnet")).toMatchObject({ kind: "done" });
    expect(problems).toEqual([]);
  });

  it("says at once, in one message, that the providers are down (anonymous)", async () => {
    await emulator("plant-id", { failure: "500" });
    await emulator("plantnet", { failure: "500" });
    const { page, problems } = await openPage();
    await choose(page, "all-down");
    await page.click("#identify-button");
    await page.waitForSelector("#outage:not([hidden])");
    expect(await page.textContent("#outage-title")).toBe("Plant.id and Pl@ntNet are not answering right now");
    expect(await page.textContent("#outage-text")).toMatch(/sign in/i);
    // One message: the notice; no second alert, no message repeated in the rows.
    expect(await page.textContent("#identify-error")).toBe("");
    expect(await occurrences(page, "not answering right now")).toBe(1);
    expect(await occurrences(page, "temporarily unavailable")).toBe(0);
    expect((await rows(page)).map((r) => r.stage)).toEqual(["asking", "failed"]);
    expect(problems).toEqual([]);
  });
});

describe("identification page, signed in", () => {
  it("waits out an outage in one row, shows the failure once, and retries it to a result", async () => {
    const { page, problems } = await openPage();
    await register(page);
    // Both providers refuse (429, retry after 1 s): the job retries until its 5 attempts are spent.
    await emulator("plant-id", { failure: "429", retryAfterSeconds: 1 });
    await emulator("plantnet", { failure: "429", retryAfterSeconds: 1 });
    const frames: string[] = [];
    page.on("websocket", (ws) => ws.on("framereceived", (f) => frames.push(String(f.payload))));

    await choose(page, "outage");
    // The progress list is a polite live region: each rewrite of the waiting row's detail is read
    // aloud, so a rewrite must say something new (a change), not the same words again (a tick).
    await page.evaluate(() => {
      const rewrites: { before: string; after: string }[] = [];
      (window as unknown as { rewrites: typeof rewrites }).rewrites = rewrites;
      new MutationObserver((records) => {
        for (const r of records) {
          if (r.type !== "childList" || !(r.target as Element).classList?.contains("step__detail")) continue;
          const text = (nodes: NodeList) => [...nodes].map((n) => n.textContent ?? "").join("");
          rewrites.push({ before: text(r.removedNodes), after: text(r.addedNodes) });
        }
      }).observe(document.getElementById("progress-list") as HTMLElement, { childList: true, subtree: true, characterData: true });
    });
    const submitted = Date.now();
    await page.click("#identify-button");
    await page.waitForSelector('#outage[data-state="waiting"]:not([hidden])', { timeout: 15_000 });
    // At once: on the first attempt's failure, before any retry ran.
    expect(Date.now() - submitted).toBeLessThan(15_000);
    expect(await page.textContent("#outage-text")).toMatch(/saved.*as soon as they are back.*tells you when it completes/);

    // The job gives up after 5 attempts: one message, a "Try again" button.
    await page.waitForSelector("#identify-error:not(:empty)", { timeout: 90_000 });
    const message = (await page.textContent("#identify-error"))!;
    expect(await occurrences(page, message)).toBe(1);
    expect(await page.isVisible("#retry-button")).toBe(true);
    expect(await page.isHidden("#outage")).toBe(true);
    const shown = await rows(page);
    // Five attempts' worth of stages arrived, yet the list stayed short.
    const progressFrames = frames.filter((f) => f.includes('"progress"')).length;
    expect(progressFrames).toBeGreaterThan(20);
    // Upload, connection, the first attempt's stages, one waiting row and where it stopped.
    expect(shown.length, JSON.stringify(shown)).toBeLessThanOrEqual(12);
    expect(shown.filter((r) => r.stage === "waiting")).toHaveLength(1);
    // A failed provider is never a tick.
    for (const r of shown.filter((x) => /_done$/.test(x.stage))) expect(r.kind).toBe("error");
    const rewrites = await page.evaluate(() => (window as unknown as { rewrites: { before: string; after: string }[] }).rewrites);
    expect(rewrites.length).toBeGreaterThan(0);
    expect(rewrites.filter((r) => r.before === r.after)).toEqual([]);

    // The history lists it as failed, with its own "Try again".
    await page.waitForSelector('#history-list .history__item[data-status="failed"]');

    await emulator("reset", null);
    const retried = page.waitForResponse((r) => /\/retry\/?$/.test(new URL(r.url()).pathname) && r.request().method() === "POST");
    await page.click("#retry-button");
    expect((await retried).status()).toBe(202);
    await page.waitForSelector("#results-panel:not([hidden]) .card", { timeout: 90_000 });
    expect(await page.textContent("#identify-error")).toBe("");
    expect(await page.isHidden("#retry-button")).toBe(true);
    await page.waitForSelector(
      '#history-list .history__item[data-status="identified"], #history-list .history__item[data-status="needs_help"]',
    );
    expect(problems).toEqual([]);
  });

  it("shows the written care guide, saves a result to a collection and reopens it from the history", async () => {
    const { page, problems } = await openPage();
    await register(page);
    await choose(page, "saved");
    await page.click("#identify-button");
    await page.waitForSelector("#results-panel:not([hidden]) .card", { timeout: 90_000 });

    // The care guide the job wrote ("Care instructions ready") is on the page.
    expect((await rows(page)).map((r) => r.stage)).toContain("care_done");
    await page.waitForSelector("#care:not([hidden])");
    expect(await page.textContent("#care-source")).toMatch(/care guide written for this species/);
    const careFields = await page.$$eval("#care-list .care__item", (items) => items.map((i) => (i as HTMLElement).dataset.field));
    expect(careFields).toContain("overview");

    // Save the best match to the default collection.
    const first = page.locator(".card").first();
    await first.locator(".save select:not([disabled])").waitFor();
    expect(await first.locator(".save select option").first().textContent()).toBe("My Plants");
    const saved = page.waitForResponse((r) => r.url().includes("/add_to_collection") && r.request().method() === "POST");
    await first.locator(".save__button").click();
    expect((await saved).status()).toBe(201);
    await expect.poll(() => first.locator(".save__status").textContent()).toBe("Saved to My Plants.");
    // Saving again is harmless and says so.
    await first.locator(".save__button").click();
    await expect.poll(() => first.locator(".save__status").textContent()).toBe("Already in My Plants.");
    const collections = (await page.evaluate(async () =>
      (await fetch("/api/v1/plant-identification/collections/", { credentials: "same-origin" })).json(),
    )) as { results: { name: string; plant_count: number }[] };
    expect(collections.results.find((c) => c.name === "My Plants")?.plant_count).toBe(1);

    // History: the identification is listed; "View" shows its results again.
    const entry = page.locator("#history-list .history__item").first();
    await entry.waitFor();
    const scientific = await first.locator(".card__scientific").textContent();
    await page.evaluate(() => {
      document.getElementById("results-panel")!.hidden = true;
    });
    await entry.locator(".history__view").click();
    await page.waitForSelector("#results-panel:not([hidden]) .card");
    expect(await page.locator(".card").first().locator(".card__scientific").textContent()).toBe(scientific);
    expect(problems).toEqual([]);
  });
});

// Last: it leaves both circuit breakers open (Plant.id's for a minute), which later tests in this
// stack would meet.
describe("identification page, signed in, circuits open", () => {
  it("says at once that the providers are paused, then tells the user when the waiting request completes", async () => {
    // Open both circuits: Plant.id after 3 failures, Pl@ntNet after 5.
    await emulator("plant-id", { failure: "500" });
    await emulator("plantnet", { failure: "500" });
    for (let i = 0; i < 5; i++) {
      const form = new FormData();
      form.append("image", new Blob([await photo(`open-${i}`)], { type: "image/png" }), "leaf.png");
      const res = await fetch(`${e2e.stack.baseUrl}/api/v1/plant-identification/identify/`, { method: "POST", body: form });
      expect(res.status).toBe(503);
    }
    const health = (await (await fetch(`${e2e.stack.baseUrl}/api/v1/plant-identification/identify/health/`)).json()) as { status: string };
    expect(health.status).toBe("unavailable");
    // The providers are healthy again, but the circuits stay open until they may half-open.
    await emulator("reset", null);

    const { page, problems } = await openPage();
    await register(page);
    await choose(page, "paused");
    const submitted = Date.now();
    await page.click("#identify-button");
    await page.waitForSelector('#outage[data-state="waiting"]:not([hidden])', { timeout: 10_000 });
    expect(Date.now() - submitted).toBeLessThan(10_000);
    expect(await page.textContent("#progress-list")).toMatch(/Waiting for the identification services/);
    // The user looks at another tab meanwhile.
    await page.evaluate(() => {
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    });

    // Pl@ntNet's circuit half-opens after 30 s; the job tries again then and completes.
    await page.waitForSelector("#results-panel:not([hidden]) .card", { timeout: 100_000 });
    await page.waitForSelector('#outage[data-state="done"]:not([hidden])');
    expect(await page.textContent("#outage-title")).toBe("Your identification is complete");
    // The tab's title tells them, until they come back.
    expect(await page.title()).toMatch(/^Identified: .+ · Plant Community$/);
    await page.evaluate(() => {
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    expect(await page.title()).toBe("Identify a plant · Plant Community");
    const shown = await rows(page);
    expect(shown.filter((r) => r.stage === "waiting")).toEqual([expect.objectContaining({ kind: "done" })]);
    expect(shown.length, JSON.stringify(shown)).toBeLessThanOrEqual(14);
    expect(problems).toEqual([]);
  }, 180_000);
});
