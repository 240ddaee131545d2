import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app";

describe("OpenAPI document", () => {
  const doc = createApp().getOpenAPI31Document({ openapi: "3.1.0", info: { title: "Plant Community API", version: "test" } });

  it("is a valid OpenAPI 3.1 document", async () => {
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Parameters<Validator["validate"]>[0]);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("covers every route the app serves", () => {
    const app = createApp();
    const documented = new Set(
      Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
        Object.keys(item as object).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`),
      ),
    );
    const served = new Set(
      app.routes
        .filter((r) => r.method !== "ALL" && !r.path.includes("*"))
        .map((r) => `${r.method} ${r.path}`)
        // Documentation endpoints and WebSocket upgrades are not JSON API operations.
        .filter((r) => !/^GET \/(api\/openapi\.json|api\/asyncapi\.json|api\/docs|ws)/.test(r)),
    );
    expect(served.size).toBeGreaterThan(30);
    const missing = [...served].filter((r) => !documented.has(r));
    expect(missing).toEqual([]);
  });
});
