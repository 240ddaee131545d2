/**
 * Every button the pages show can be read: its text against what is behind it has at least
 * WCAG's 3:1 (large text and interface components; most of these labels are bold). The pages
 * share one stylesheet, and a button style made for the dark header once painted white labels
 * on the white panels (the editor's Publish, Move up, Add block; the identification page's Try
 * again), invisible though clickable, which no click-driven test notices.
 */
import { describe, expect, it } from "vitest";
import { pageProblems, useStackAndBrowser } from "./browser";

const e2e = useStackAndBrowser({ purpose: "e2e-contrast" });

interface Shown {
  label: string;
  ratio: number;
  /** WCAG's large text (24px, or 18.66px bold), for which 3:1 is enough. */
  large: boolean;
}

/**
 * Shows every hidden part of the page (panels that wait for a sign-in, workflow buttons that wait
 * for a post), then measures each enabled button (or, with `text`, every element that holds text
 * of its own): its text colour against its own background, or the first ancestor's that is
 * painted, blended down to the page (white under everything).
 */
async function contrasts(path: string, prepare: string, what: "buttons" | "text" = "buttons"): Promise<Shown[]> {
  const context = await e2e.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  const problems = pageProblems(page);
  await page.goto(`${e2e.stack.baseUrl}${path}`, { waitUntil: "networkidle" });
  await page.evaluate(prepare);
  const shown = await page.evaluate((what) => {
    const parse = (c: string): number[] => {
      const m = /rgba?\(([^)]+)\)/.exec(c);
      if (!m) return [0, 0, 0, 0];
      const parts = (m[1] ?? "")
        .split(/[\s,/]+/)
        .filter(Boolean)
        .map(Number);
      return [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0, parts[3] ?? 1];
    };
    const over = (top: number[], under: number[]): number[] => {
      const a = top[3] ?? 1;
      return [0, 1, 2].map((i) => (top[i] ?? 0) * a + (under[i] ?? 0) * (1 - a)).concat(1);
    };
    const backdrop = (el: Element | null): number[] => {
      if (!el) return [255, 255, 255, 1];
      const bg = parse(getComputedStyle(el).backgroundColor);
      if ((bg[3] ?? 0) >= 1) return bg;
      const under = backdrop(el.parentElement);
      return (bg[3] ?? 0) > 0 ? over(bg, under) : under;
    };
    const luminance = (rgb: number[]): number => {
      const [r, g, b] = rgb.slice(0, 3).map((v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * (r ?? 0) + 0.7152 * (g ?? 0) + 0.0722 * (b ?? 0);
    };
    const ownText = (el: Element) =>
      [...el.childNodes]
        .filter((n) => n.nodeType === Node.TEXT_NODE)
        .map((n) => n.textContent ?? "")
        .join("")
        .trim();
    const elements =
      what === "buttons"
        ? [...document.querySelectorAll<HTMLElement>("button, .button")].filter(
            (b) => b.offsetParent !== null && !(b as HTMLButtonElement).disabled && (b.textContent ?? "").trim() !== "",
          )
        : [...document.querySelectorAll<HTMLElement>("body *:not(script):not(style):not(option)")].filter(
            (el) => el.getClientRects().length > 0 && !(el as HTMLButtonElement).disabled && ownText(el) !== "",
          );
    return elements.map((b) => {
      const style = getComputedStyle(b);
      const back = backdrop(b);
      const text = over(parse(style.color), back);
      const [hi, lo] = [luminance(text), luminance(back)].sort((x, y) => y - x);
      const size = Number.parseFloat(style.fontSize);
      return {
        label: `${b.id || (what === "buttons" ? (b.textContent ?? "").trim() : `${b.tagName.toLowerCase()}.${b.className}: ${ownText(b)}`)}`,
        ratio: ((hi ?? 0) + 0.05) / ((lo ?? 0) + 0.05),
        large: size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700),
      };
    });
  }, what);
  expect(problems).toEqual([]);
  return shown;
}

const unhide = (selectors: string[]) =>
  `for (const s of ${JSON.stringify(selectors)}) for (const el of document.querySelectorAll(s)) el.hidden = false;`;

describe("buttons people can read", () => {
  it("the editor's workflow, block and list buttons stand out from the panels (and the header's from the header)", async () => {
    const shown = await contrasts(
      "/editor/",
      `document.getElementById("signin-panel").hidden = true;
       ${unhide(["#workspace", "#signout-button", "#post-form button", "#schedule", "#schedule button", "#revisions-section"])}
       document.getElementById("add-block").click();`,
    );
    const labels = shown.map((s) => s.label);
    for (const expected of ["publish-post", "unpublish-post", "submit-post", "schedule-post", "add-block", "Move up", "signout-button"]) {
      expect(labels).toContain(expected);
    }
    expect(shown.filter((s) => s.ratio < 3)).toEqual([]);
  });

  it("a button styled as a link (the history's Refresh) has no browser button box around it", async () => {
    const context = await e2e.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    await page.goto(`${e2e.stack.baseUrl}/identify/`, { waitUntil: "networkidle" });
    const look = await page.evaluate(() => {
      const s = getComputedStyle(document.getElementById("history-refresh") as HTMLElement);
      return { background: s.backgroundColor, border: s.borderTopWidth, padding: s.paddingTop };
    });
    expect(look).toEqual({ background: "rgba(0, 0, 0, 0)", border: "0px", padding: "0px" });
  });

  it("the identification page's Try again and header buttons stand out", async () => {
    const shown = await contrasts("/identify/", unhide(["#retry-button", "#signin-link"]));
    expect(shown.map((s) => s.label)).toContain("retry-button");
    expect(shown.filter((s) => s.ratio < 3)).toEqual([]);
  });

  // Text proper (WCAG 1.4.3): 4.5:1, or 3:1 when large. Hidden panels are shown and the editor's
  // status badge is put in each state a post can have, since each state paints it differently.
  const readable = (shown: Shown[]) => shown.filter((s) => s.ratio < (s.large ? 3 : 4.5));

  it("every text of the editor reads at 4.5:1, the status badge in every state", async () => {
    for (const status of ["new", "draft", "review", "scheduled", "published", "unpublished"]) {
      const shown = await contrasts(
        "/editor/",
        `${unhide(["#signin-panel", "#no-access", "#workspace", "#signout-button", "#schedule", "#preview-section", "#revisions-section"])}
         const badge = document.getElementById("post-status");
         badge.dataset.status = ${JSON.stringify(status)};
         badge.textContent = ${JSON.stringify(status)};
         for (const p of document.querySelectorAll(".field__error, .form__error")) p.textContent = "This field may not be blank.";`,
        "text",
      );
      expect(shown.map((s) => s.label)).toContain("post-status");
      expect(readable(shown), status).toEqual([]);
    }
  });

  it("every text of the landing and identification pages reads at 4.5:1", async () => {
    const landing = await contrasts("/", "", "text");
    expect(landing.length).toBeGreaterThan(5);
    expect(readable(landing)).toEqual([]);
    const identify = await contrasts(
      "/identify/",
      `${unhide(["#retry-button", "#signin-link", "#auth-email-field", "#auth-password-hint", "#auth-code-field", "#signed-in", "#signed-in-note", "#verify-row", "#progress-panel", "#outage", "#history-panel", "#history-empty"])}
       for (const p of document.querySelectorAll(".field__error, .form__error")) p.textContent = "This field may not be blank.";`,
      "text",
    );
    expect(identify.length).toBeGreaterThan(10);
    expect(readable(identify)).toEqual([]);
  });
});
