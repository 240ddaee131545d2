/**
 * Headless Chromium for end-to-end tests: the distribution's `chromium` package (installed on
 * demand with apt — tests and CI run as root), driven by playwright-core (no bundled browser
 * download). `launch()` gives every run a fresh, throw-away user data directory.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { type Stack, type StartStackOptions, startStack } from "../scripts/local-stack";

export const CHROMIUM_PATH = "/usr/bin/chromium";
const ROOT = join(import.meta.dirname, "..");
const INSTALL_TIMEOUT_MS = 10 * 60 * 1000;

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, {
    stdio: "inherit",
    timeout: INSTALL_TIMEOUT_MS,
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  if (result.error) throw new Error(`${command} ${args.join(" ")} failed: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${result.status ?? result.signal}`);
}

/** Installs Debian's chromium package when it is missing. */
export function ensureChromium(): string {
  if (existsSync(CHROMIUM_PATH)) return CHROMIUM_PATH;
  try {
    run("apt-get", ["update"]);
    run("apt-get", ["install", "-y", "chromium"]);
  } catch (err) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM_PATH} and installing it failed ` +
        `(${err instanceof Error ? err.message : String(err)}). Install it by hand as root: ` +
        "apt-get update && apt-get install -y chromium",
    );
  }
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`apt-get installed chromium but ${CHROMIUM_PATH} does not exist`);
  return CHROMIUM_PATH;
}

export async function launchBrowser(): Promise<Browser> {
  const executablePath = ensureChromium();
  return chromium.launch({
    executablePath,
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * One stack (`npm start`'s script on free ports, fresh storage) and one browser for an e2e file:
 * both started before its tests and stopped after them. Browser contexts made with `newContext`
 * are closed after each test, and a failing test prints the tail of the stack's log.
 */
export function useStackAndBrowser(options: StartStackOptions, hooks: { afterEachTest?: () => Promise<void> } = {}) {
  let stack: Stack | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    [stack, browser] = await Promise.all([startStack(options), launchBrowser()]);
  });

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === "fail" && stack) console.error(`--- stack log tail (${stack.logFile}) ---\n${stack.logTail(80)}`);
    await Promise.all(contexts.splice(0).map((c) => c.close().catch(() => {})));
    if (stack) await hooks.afterEachTest?.();
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await stack?.stop();
  });

  return {
    get stack(): Stack {
      if (!stack) throw new Error("the stack is not started (use it inside a test)");
      return stack;
    },
    /** A fresh browser context (cookies, storage), closed after the test. */
    async newContext(contextOptions?: BrowserContextOptions): Promise<BrowserContext> {
      if (!browser) throw new Error("the browser is not started (use it inside a test)");
      const context = await browser.newContext(contextOptions);
      contexts.push(context);
      return context;
    },
    /** `npm run admin -- grant-role` against the stack's own storage. */
    grantRole(username: string, role: string): void {
      if (!stack) throw new Error("the stack is not started (use it inside a test)");
      const result = spawnSync(join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/admin.ts", "grant-role", username, role], {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...process.env, STATE_DIR: stack.stateDir },
        timeout: 60_000,
      });
      expect(result.status, `${result.stdout}\n${result.stderr}`).toBe(0);
    },
  };
}

/** The login's own 401 (a wrong password, or two-factor sign-in's challenge): an answer, not a page bug. */
export const loginRefusal = (text: string, url: string) => /status of 401/i.test(text) && /\/api\/v1\/auth\/login\/?$/.test(url);

/**
 * Records a page's uncaught exceptions and console errors (a CSP violation, a failed request),
 * but for those `expected(text, url)` says are answers the test asked for.
 */
export function pageProblems(page: Page, expected: (text: string, url: string) => boolean = () => false): string[] {
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error" || expected(msg.text(), msg.location().url)) return;
    problems.push(`console: ${msg.text()}`);
  });
  return problems;
}
