/**
 * The OpenAPI document's `security` is the truth a client (and the docs page's Authorize) relies
 * on: every operation it marks as signed-in refuses an anonymous caller with 401, and every
 * operation that refuses an anonymous caller with AUTHENTICATION_REQUIRED is marked.
 */
import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";

interface Operation {
  security?: Record<string, string[]>[];
}

const SOME_ID = "0190a0b4-0000-7000-8000-000000000000";

describe("OpenAPI security declarations", () => {
  it("match what each operation does with an anonymous caller", async () => {
    const doc = (await (await call("/api/openapi.json")).json()) as { paths: Record<string, Record<string, Operation>> };
    const marked: string[] = [];
    const wrong: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const url = path.replace(/\{(\w+)\}/g, (_, name: string) => (name === "slug" ? "houseplants" : SOME_ID));
        const res = await call(url, { method: method.toUpperCase() });
        const body = res.headers.get("Content-Type")?.includes("json") ? ((await res.json()) as { code?: string }) : {};
        const refused = res.status === 401 && body.code === "AUTHENTICATION_REQUIRED";
        if (op.security) marked.push(`${method} ${path}`);
        if (Boolean(op.security) !== refused)
          wrong.push(
            `${method.toUpperCase()} ${path}: security ${op.security ? "declared" : "absent"}, anonymous → ${res.status} ${body.code ?? ""}`,
          );
      }
    }
    expect(wrong).toEqual([]);
    expect(marked.length).toBeGreaterThan(50);
  });
});
