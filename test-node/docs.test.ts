/**
 * The repository's own docs agree with the code: docs/api.md names every error code, every
 * WebSocket message type, progress stage and close code; its local-email commands work against
 * the emulator server `npm start` runs; links between the docs resolve; and nothing points
 * outside the clone.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLOSE_CODES, PROGRESS_STAGES, SERVER_MESSAGES } from "../durable-objects/user-hub-protocol";
import { DEFAULT_API_KEY } from "../emulators/common";
import { type EmulatorServer, startEmulatorServer } from "../emulators/server";
import { ERROR_CODES } from "../src/lib/errors";

const ROOT = resolve(import.meta.dirname, "..");
const apiGuide = readFileSync(join(ROOT, "docs/api.md"), "utf8");

/** The repository's own text files (not dependencies, build output or local state). */
function repositoryFiles(dir = ROOT): string[] {
  return readdirSync(dir).flatMap((name) => {
    if ([".git", "node_modules", ".wrangler", "dist", "vendor"].includes(name)) return [];
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return repositoryFiles(path);
    return /\.(ts|mjs|js|md|toml|json|jsonc|html|css|sh)$/.test(name) && !name.endsWith("package-lock.json") ? [path] : [];
  });
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#+ (.+)$/gm)].map((m) =>
      m[1]!
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, "")
        .replace(/ /g, "-"),
    ),
  );
}

describe("docs/api.md agrees with the code", () => {
  it("lists every error code", () => {
    const missing = Object.keys(ERROR_CODES).filter((code) => !apiGuide.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });

  it("describes every WebSocket message type, progress stage and close code, and links the AsyncAPI document", () => {
    expect(Object.keys(SERVER_MESSAGES).filter((type) => !apiGuide.includes(`| \`${type}\` |`))).toEqual([]);
    expect(Object.keys(PROGRESS_STAGES).filter((stage) => !apiGuide.includes(`\`${stage}\``))).toEqual([]);
    expect(Object.values(CLOSE_CODES).filter((code) => !apiGuide.includes(`**${code}**`))).toEqual([]);
    expect(apiGuide).toContain("`GET /api/asyncapi.json`");
    expect(apiGuide).toContain("`GET /api/openapi.json`");
  });
});

describe("docs/api.md § Local email works as written", () => {
  let server: EmulatorServer;
  beforeAll(async () => {
    server = await startEmulatorServer({ port: 0, env: {} });
  });
  afterAll(async () => {
    await server.close();
  });

  it("lists, filters and reads the outbox with the documented key and paths", async () => {
    const section = apiGuide.slice(apiGuide.indexOf("## Local email"));
    const commands = [...section.matchAll(/^curl -s -H 'Authorization: Bearer ([^']+)' '?(\S+?)'?(?: \| jq '[^']*')?$/gm)].map((m) => ({
      key: m[1]!,
      url: m[2]!.replace("http://127.0.0.1:8790", server.url),
    }));
    expect(commands).toHaveLength(3);
    for (const { key } of commands) expect(key).toBe(DEFAULT_API_KEY);

    const send = (to: string, subject: string) =>
      fetch(`${server.url}/email/emails`, {
        method: "POST",
        headers: { Authorization: `Bearer ${DEFAULT_API_KEY}`, "Content-Type": "application/json" },
        body: JSON.stringify({ from: "Plant Community <no-reply@plantcommunity.example>", to, subject, text: "Reset token: abc" }),
      }).then((r) => r.json() as Promise<{ id: string }>);
    const { id } = await send("ann@example.com", "Reset your Plant Community password");
    await send("bob@example.com", "Confirm your new Plant Community email address");

    const get = async (url: string) => {
      const res = await fetch(url, { headers: { Authorization: `Bearer ${DEFAULT_API_KEY}` } });
      expect(res.status, url).toBe(200);
      return res.json() as Promise<Record<string, unknown>>;
    };
    const [all, filtered, one] = commands;
    expect(((await get(all!.url)).data as unknown[]).length).toBe(2);
    const toAnn = (await get(filtered!.url)).data as { to: string[]; subject: string }[];
    expect(toAnn.map((m) => m.to)).toEqual([["ann@example.com"]]);
    expect(await get(one!.url.replace("<id>", id))).toMatchObject({ id, subject: "Reset your Plant Community password" });
    // The documented reset empties the outbox.
    expect((await fetch(`${server.url}/__control/reset`, { method: "POST" })).status).toBe(200);
    expect(((await get(all!.url)).data as unknown[]).length).toBe(0);
  });
});

describe("the repository stands on its own", () => {
  it("nothing points outside the clone, at the shared folder beside it", () => {
    const outside = new RegExp(["\\.\\./", "/work/"].map((prefix) => `${prefix}shared\\b`).join("|"));
    const offenders = repositoryFiles()
      .filter((path) => outside.test(readFileSync(path, "utf8")))
      .map((path) => relative(ROOT, path));
    expect(offenders).toEqual([]);
  });

  it("the README's and docs' relative links and anchors resolve", () => {
    const pages = ["README.md", ...readdirSync(join(ROOT, "docs")).map((name) => `docs/${name}`)].filter((p) => p.endsWith(".md"));
    const broken: string[] = [];
    for (const page of pages) {
      const text = readFileSync(join(ROOT, page), "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:)/.test(target!)) continue;
        const [file, anchor] = target!.split("#");
        const path = file ? resolve(dirname(join(ROOT, page)), file) : join(ROOT, page);
        let ok = statSync(path, { throwIfNoEntry: false }) !== undefined;
        if (ok && anchor && path.endsWith(".md")) ok = anchors(readFileSync(path, "utf8")).has(anchor);
        if (!ok) broken.push(`${page} → ${target}`);
      }
    }
    expect(pages).toContain("docs/api.md");
    expect(readFileSync(join(ROOT, "README.md"), "utf8")).toContain("](docs/api.md)");
    expect(broken).toEqual([]);
  });
});
