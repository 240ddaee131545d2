/**
 * The blog editor (/editor/) in headless Chromium against the real stack (`npm start`'s script):
 * an author writes a post with several block types and an uploaded image, reorders blocks, sees
 * a field error for a `javascript:` link with nothing saved, previews the saved post (script
 * stripped), and submits it; an editor opens it from "In review", publishes it (readers then see
 * it in the Wagtail-shaped public read), changes it, compares two revisions and restores one;
 * and a reader without a writing role is told so.
 */
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { makePng } from "../test/helpers/images";
import { useStackAndBrowser } from "./browser";

const e2e = useStackAndBrowser({ purpose: "e2e-editor" });
const PASSWORD = "Mossy-fern-grows-slowly-42";

async function register(username: string): Promise<void> {
  const res = await fetch(`${e2e.stack.baseUrl}/api/v1/auth/register/`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, email: `${username}@example.com`, password: PASSWORD, password_confirm: PASSWORD }),
  });
  expect(res.status, await res.text()).toBe(201);
}

async function openEditor(username: string): Promise<{ page: Page; problems: string[] }> {
  const context = await e2e.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(err.message));
  page.on("console", (msg) => {
    // The expected refusal (the 400 for a bad link) is logged as a failed resource; the session check logs nothing.
    if (msg.type() === "error" && !/\b400\b/.test(msg.text())) problems.push(msg.text());
  });
  page.on("dialog", (d) => void d.accept());
  await page.goto(`${e2e.stack.baseUrl}/editor/`);
  await page.waitForSelector("#signin-panel:not([hidden])");
  await page.fill("#signin-username", username);
  await page.fill("#signin-password", PASSWORD);
  await page.click("#signin-submit");
  await page.waitForSelector("#session-status[data-state='signed-in']");
  return { page, problems };
}

/** A new account with the author role (its name starts with `prefix`), signed in, its workspace shown. */
async function openAsAuthor(prefix: string): Promise<{ author: string; page: Page; problems: string[] }> {
  const author = `${prefix}_${Date.now().toString(36)}`;
  await register(author);
  e2e.grantRole(author, "author");
  const { page, problems } = await openEditor(author);
  await page.waitForSelector("#workspace:not([hidden])");
  return { author, page, problems };
}

/** The block at `index` (0-based) of the editor. */
const block = (page: Page, index: number) => page.locator("#blocks > li").nth(index);

async function addBlock(page: Page, type: string) {
  await page.selectOption("#add-block-type", type);
  await page.click("#add-block");
}

async function save(page: Page) {
  const saved = page.waitForResponse((r) => /\/api\/v1\/blog\/posts\/?/.test(r.url()) && ["POST", "PATCH"].includes(r.request().method()));
  await page.click("#save-post");
  return (await saved).status();
}

describe("the blog editor page", () => {
  it("an author writes, previews and submits; an editor publishes, compares and restores revisions", async () => {
    const tag = Date.now().toString(36);
    const author = `author_${tag}`;
    const editor = `editor_${tag}`;
    await register(author);
    await register(editor);
    e2e.grantRole(author, "author");
    e2e.grantRole(editor, "editor");

    // --- The author writes a post.
    const { page, problems } = await openEditor(author);
    await page.waitForSelector("#workspace:not([hidden])");
    const title = `Growing basil on a windowsill ${tag}`;
    await page.fill("#post-title", title);
    await page.fill("#post-introduction", "<p>Basil wants <strong>sun</strong> and warmth.</p>");
    await block(page, 0).locator("textarea").fill('<p>Pinch out the tips.</p><script>alert("x")</script><img src=x onerror=alert(1)>');
    await addBlock(page, "heading");
    await block(page, 1).locator("input").fill("Before you sow");
    // Move the heading above the paragraph.
    await block(page, 1).locator("button[data-action='up']").click();
    await addBlock(page, "image");
    const upload = page.waitForResponse((r) => r.url().includes("/api/v1/blog/images") && r.request().method() === "POST");
    await block(page, 2)
      .locator("input[type=file]")
      .setInputFiles({ name: "basil.png", mimeType: "image/png", buffer: Buffer.from(await makePng(640, 480, { seed: tag })) });
    expect((await upload).status()).toBe(201);
    await block(page, 2).locator("[data-name='alt']").fill("Basil seedlings on a sunny sill");
    await addBlock(page, "call_to_action");
    const cta = block(page, 3);
    await cta.locator("[data-name='cta_title']").fill("Grow along");
    await cta.locator("[data-name='button_text']").fill("Click");
    await cta.locator("[data-name='button_url']").fill("javascript:alert(document.cookie)");

    // A dangerous link: a field error under it, nothing saved.
    expect(await save(page)).toBe(400);
    await page.waitForFunction(
      () => document.querySelector("#blocks > li:nth-child(4) [data-block-field='button_url']")?.textContent !== "",
    );
    expect(await page.textContent("#post-status")).toBe("not saved");
    await cta.locator("[data-name='button_url']").fill("/identify/");
    expect(await save(page)).toBe(201);
    await page.waitForSelector("#post-status[data-status='draft']");

    // The preview is the saved post: heading first, the script and the handler gone, the image sized.
    await page.waitForSelector("#preview-section:not([hidden])");
    const preview = page.locator("#preview");
    expect(await preview.locator("h2").first().textContent()).toBe("Before you sow");
    const previewHtml = await preview.innerHTML();
    expect(previewHtml).toContain("Pinch out the tips.");
    expect(previewHtml).not.toMatch(/<script|onerror|javascript:/i);
    const img = preview.locator("figure img");
    expect(await img.getAttribute("alt")).toBe("Basil seedlings on a sunny sill");
    expect(await img.getAttribute("src")).toMatch(/^\/media\/images\/[0-9a-f]{64}\.png$/);
    expect(await img.evaluate((node: HTMLImageElement) => node.complete && node.naturalWidth)).toBe(640);

    // Authors cannot publish; they submit for review.
    expect(await page.isHidden("#publish-post")).toBe(true);
    await page.click("#submit-post");
    await page.waitForSelector("#post-status[data-status='review']");
    expect(problems).toEqual([]);

    // --- An editor publishes it from the review queue.
    const ed = await openEditor(editor);
    await ed.page.click("#status-tabs [data-status='review']");
    await ed.page.waitForSelector("#post-items[data-status='review']");
    await ed.page.click(`#post-items button:has-text("${title}")`);
    await ed.page.waitForSelector("#post-status[data-status='review']");
    await ed.page.click("#publish-post");
    await ed.page.waitForSelector("#post-status[data-status='published']");
    const slug = await ed.page.inputValue("#post-slug");
    const read = await fetch(`${e2e.stack.baseUrl}/api/v2/blog-posts/?slug=${slug}`);
    const listed = (await read.json()) as { meta: { total_count: number }; items: { title: string; content_blocks: { type: string }[] }[] };
    expect(listed.meta.total_count).toBe(1);
    expect(listed.items[0]!.content_blocks.map((b) => b.type)).toEqual(["heading", "paragraph", "image", "call_to_action"]);

    // --- The editor changes the title, compares revisions 1 and 2, and restores 1.
    await ed.page.fill("#post-title", `${title} (updated)`);
    expect(await save(ed.page)).toBe(200);
    await ed.page.waitForSelector("#revisions li:nth-child(2)");
    const boxes = ed.page.locator("#revisions input[type=checkbox]");
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await ed.page.click("#compare-revisions");
    await ed.page.waitForSelector("#diff .diff__field");
    expect(await ed.page.textContent("#diff")).toContain(`${title} (updated)`);
    await ed.page.locator("#revisions button[data-revision='1']").click();
    await ed.page.waitForFunction((t) => (document.querySelector("#post-title") as HTMLInputElement).value === t, title);
    expect(await ed.page.textContent("#editor-message")).toMatch(/restored/);
    expect(ed.problems).toEqual([]);
  }, 180_000);

  it("leaves the new post's empty starter paragraph out of the saved post, and still puts a block's error under that block", async () => {
    const { author, page, problems } = await openAsAuthor("starter");
    await page.fill("#post-title", `Only a heading ${author}`);
    // The starter paragraph (block 0) stays empty; a call to action after it has a bad link.
    await addBlock(page, "heading");
    await block(page, 1).locator("input").fill("Before you sow");
    await addBlock(page, "call_to_action");
    await block(page, 2).locator("[data-name='cta_title']").fill("Read more");
    await block(page, 2).locator("[data-name='button_text']").fill("Go");
    await block(page, 2).locator("[data-name='button_url']").fill("javascript:alert(1)");
    expect(await save(page)).toBe(400);
    // The refusal names the call to action's link, and the page shows it under that block's field.
    await page.waitForFunction(
      () => (document.querySelector("#blocks > li:nth-child(3) [data-block-field='button_url']")?.textContent ?? "") !== "",
    );
    expect(await block(page, 0).locator(".field__error").first().textContent()).toBe("");

    await block(page, 2).locator("button[data-action='remove']").click();
    const saved = page.waitForResponse((r) => /\/api\/v1\/blog\/posts\/?$/.test(r.url()) && r.request().method() === "POST");
    await page.click("#save-post");
    const post = (await (await saved).json()) as { content_blocks: { type: string; value: unknown }[] };
    expect(post.content_blocks.map((b) => b.type)).toEqual(["heading"]);
    await page.waitForFunction(() => document.querySelectorAll("#blocks > li").length === 1);
    expect(problems).toEqual([]);
  }, 120_000);

  it("marks each refused field invalid, tied to its message, and moves the focus to the first one", async () => {
    const { author, page, problems } = await openAsAuthor("fixer");
    // What a screen reader reads for a control: invalid or not, and the text of what describes it.
    const described = (selector: string) =>
      page.evaluate((s) => {
        const input = document.querySelector(s) as HTMLElement;
        const ids = (input.getAttribute("aria-describedby") ?? "").split(/\s+/).filter(Boolean);
        return {
          invalid: input.getAttribute("aria-invalid"),
          description: ids
            .map((id) => document.getElementById(id)?.textContent ?? "")
            .join(" ")
            .trim(),
        };
      }, selector);
    const focusedId = () => page.evaluate(() => document.activeElement?.id ?? "");
    const linkSelector = "#blocks > li:nth-child(2) [data-name='button_url']";

    // A call to action whose link is refused (the block check runs once the post's own fields pass).
    await page.fill("#post-title", `Fixed ${author}`);
    await addBlock(page, "call_to_action");
    await block(page, 1).locator("[data-name='cta_title']").fill("Read more");
    await block(page, 1).locator("[data-name='button_text']").fill("Go");
    await block(page, 1).locator("[data-name='button_url']").fill("javascript:alert(1)");
    expect(await save(page)).toBe(400);
    await page.waitForFunction((s) => document.querySelector(s)?.getAttribute("aria-invalid") === "true", linkSelector);
    const link = await described(linkSelector);
    expect(link.description).not.toBe("");
    // Its neighbours in the block and the title were not refused.
    expect((await described("#blocks > li:nth-child(2) [data-name='button_text']")).invalid).toBeNull();
    expect((await described("#post-title")).invalid).toBeNull();
    // The keyboard is taken to the thing to fix, not left on the Save button below the form.
    expect(await focusedId()).toBe(await page.locator(linkSelector).getAttribute("id"));

    // No title now, the link fixed: the title is the one marked, and the link no longer is.
    await page.fill("#post-title", "");
    await page.locator(linkSelector).fill("/identify/");
    expect(await save(page)).toBe(400);
    await page.waitForFunction(() => (document.getElementById("post-title-error")?.textContent ?? "") !== "");
    const title = await described("#post-title");
    expect(title.invalid).toBe("true");
    expect(title.description).toMatch(/blank/i);
    expect((await described(linkSelector)).invalid).toBeNull();
    expect(await focusedId()).toBe("post-title");

    // Fixed and saved: nothing is marked invalid any more.
    await page.fill("#post-title", `Fixed ${author}`);
    expect(await save(page)).toBe(201);
    await page.waitForSelector("#post-status[data-status='draft']");
    expect(await page.locator("#post-form [aria-invalid='true']").count()).toBe(0);
    expect(problems).toEqual([]);
  }, 120_000);

  it("moves between the post status tabs with the arrow keys, and Tab leaves the tab list in one step", async () => {
    const { page, problems } = await openAsAuthor("keys");
    const focused = () =>
      page.evaluate(() => ({
        status: (document.activeElement as HTMLElement | null)?.dataset.status ?? null,
        id: document.activeElement?.id ?? "",
        selected: document.querySelector("#status-tabs [aria-selected='true']")?.getAttribute("data-status"),
      }));
    await page.focus("#status-tabs [data-status='draft']");
    await page.keyboard.press("ArrowRight");
    expect(await focused()).toMatchObject({ status: "review", selected: "review" });
    await page.keyboard.press("End");
    expect(await focused()).toMatchObject({ status: "unpublished", selected: "unpublished" });
    await page.keyboard.press("ArrowRight");
    expect(await focused()).toMatchObject({ status: "draft", selected: "draft" });
    await page.keyboard.press("ArrowLeft");
    expect(await focused()).toMatchObject({ status: "unpublished", selected: "unpublished" });
    // One Tab stop for the whole list: from the selected tab, Tab goes past the other four.
    await page.keyboard.press("Tab");
    expect((await focused()).status).toBeNull();
    await page.keyboard.press("Shift+Tab");
    expect(await focused()).toMatchObject({ status: "unpublished" });
    expect(problems).toEqual([]);
  });

  it("says the post list's count once per tab switch or change, in a status region, and does not read the list aloud", async () => {
    const { author, page, problems } = await openAsAuthor("count");
    // Nothing around the list is live: a re-render would otherwise be read out whole.
    expect(await page.$eval("#post-items", (list) => list.closest("[aria-live]") === null)).toBe(true);
    expect(await page.getAttribute("#post-list-status", "role")).toBe("status");
    // Not shown: the visible list and its "No posts here yet." say the same to the eye.
    const box = await page.locator("#post-list-status").boundingBox();
    expect(box && box.width <= 1 && box.height <= 1, JSON.stringify(box)).toBe(true);
    /** What the status region should say for the list as shown (fewer than 100 posts in these tests). */
    const expected = (one: string, many: string) =>
      page.$$eval("#post-items > li", (items) => items.length).then((n) => (n === 0 ? `No ${many}` : `${n} ${n === 1 ? one : many}`));
    const said = () => page.textContent("#post-list-status");
    await page.waitForFunction(() => (document.getElementById("post-list-status")?.textContent ?? "") !== "");
    expect(await said()).toBe(await expected("draft", "drafts"));

    // Every change the region makes from now on is a separate announcement.
    await page.evaluate(() => {
      const w = window as unknown as { __said: string[] };
      w.__said = [];
      const region = document.getElementById("post-list-status") as HTMLElement;
      new MutationObserver(() => w.__said.push(region.textContent ?? "")).observe(region, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    const announcements = () => page.evaluate(() => (window as unknown as { __said: string[] }).__said);

    await page.click("#status-tabs [data-status='review']");
    await page.waitForSelector("#post-items[data-status='review']", { state: "attached" });
    const review = await expected("post in review", "posts in review");
    expect(await said()).toBe(review);
    expect(await announcements()).toEqual([review]);

    // Back to the drafts, then a saved new draft: each says its count once.
    await page.click("#status-tabs [data-status='draft']");
    await page.waitForSelector("#post-items[data-status='draft']", { state: "attached" });
    const drafts = await page.$$eval("#post-items > li", (items) => items.length);
    await page.fill("#post-title", `Counted ${author}`);
    expect(await save(page)).toBe(201);
    const before = drafts === 0 ? "No drafts" : `${drafts} ${drafts === 1 ? "draft" : "drafts"}`;
    const after = `${drafts + 1} ${drafts + 1 === 1 ? "draft" : "drafts"}`;
    await page.waitForFunction((n) => document.querySelectorAll("#post-items > li").length === n + 1, drafts);
    await page.waitForFunction((text) => document.getElementById("post-list-status")?.textContent === text, after);
    expect(await announcements()).toEqual([review, before, after]);
    expect(problems).toEqual([]);
  }, 120_000);

  it("says a list that could not be loaded failed, to the eye and to a screen reader alike", async () => {
    const { page } = await openAsAuthor("failed");
    await page.waitForFunction(() => (document.getElementById("post-list-status")?.textContent ?? "") !== "");
    await page.route(/\/api\/v1\/blog\/posts\/\?status=review/, (route) =>
      route.fulfill({ status: 503, contentType: "application/json", body: JSON.stringify({ error: "unavailable", code: "UNAVAILABLE" }) }),
    );
    await page.click("#status-tabs [data-status='review']");
    await page.waitForSelector("#post-items[data-status='review']", { state: "attached" });
    expect(await page.textContent("#post-list-status")).toBe("The posts in review could not be loaded.");
    expect(await page.isVisible("#post-list-empty")).toBe(true);
    expect(await page.textContent("#post-list-empty")).toBe("The posts in review could not be loaded.");
    // Loaded again, an empty list reads as empty once more.
    await page.unroute(/\/api\/v1\/blog\/posts\/\?status=review/);
    await page.click("#status-tabs [data-status='draft']");
    await page.waitForSelector("#post-items[data-status='draft']", { state: "attached" });
    await page.click("#status-tabs [data-status='review']");
    await page.waitForFunction(() => !document.getElementById("post-list-status")?.textContent?.includes("could not"));
    expect(await page.textContent("#post-list-empty")).toBe("No posts here yet.");
  }, 120_000);

  it("lines the sign-in form up under the header's brand, the width of a form, not of the page", async () => {
    const context = await e2e.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${e2e.stack.baseUrl}/editor/`);
    await page.waitForSelector("#signin-panel:not([hidden])");
    const brand = (await page.locator(".brand").boundingBox())!;
    const panel = (await page.locator("#signin-panel").boundingBox())!;
    expect(Math.abs(panel.x - brand.x)).toBeLessThanOrEqual(1);
    expect(panel.width).toBeLessThanOrEqual(480);
  });

  it("tells a signed-in reader without a writing role that the editor is not for them", async () => {
    const reader = `reader_${Date.now().toString(36)}`;
    await register(reader);
    const { page, problems } = await openEditor(reader);
    await page.waitForSelector("#no-access:not([hidden])");
    expect(await page.isHidden("#workspace")).toBe(true);
    // It names the account to ask about, and no command line a reader could not run.
    expect(await page.textContent("#no-access-username")).toBe(reader);
    expect(await page.textContent("#no-access")).not.toContain("npm");
    expect(problems).toEqual([]);
  });
});
