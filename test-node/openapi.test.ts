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

  it("names the sign-in schemes it uses, and marks the operations a client must be signed in for", () => {
    const schemes = Object.keys(doc.components?.securitySchemes ?? {});
    expect(schemes.sort()).toEqual(["bearerAuth", "cookieAuth", "csrfHeader"]);
    // A bearer token comes from the token route; login sets cookies.
    const bearer = doc.components?.securitySchemes?.bearerAuth as { description?: string };
    expect(bearer.description).toContain("`auth/token/`");
    expect(bearer.description).not.toContain("auth/login/");
    const protectedOps: string[] = [];
    for (const [path, item] of Object.entries(doc.paths ?? {})) {
      for (const [method, op] of Object.entries(item as Record<string, { security?: Record<string, string[]>[] }>)) {
        if (!op.security) continue;
        for (const requirement of op.security) expect(Object.keys(requirement).every((name) => schemes.includes(name))).toBe(true);
        protectedOps.push(`${method.toUpperCase()} ${path}`);
      }
    }
    for (const op of [
      "GET /api/v1/auth/user",
      "GET /api/v1/reminders",
      "POST /api/v1/plant-identification/plants",
      "POST /api/v1/forum/categories/{slug}/topics",
      "GET /api/v1/notifications",
      "PATCH /api/v1/forum/reports/{id}",
    ]) {
      expect(protectedOps).toContain(op);
    }
    expect(protectedOps).not.toContain("POST /api/v1/auth/login");
    expect(protectedOps).not.toContain("GET /api/v1/forum/categories");
  });

  it.each([
    ["/api/v1/plant-identification/requests", "post", ["image_1"]],
    ["/api/v1/plant-identification/disease-requests", "post", ["image_1", "symptoms_description"]],
    ["/api/v1/plant-identification/identify", "post", ["image"]],
  ])("marks the required parts of the multipart body of %s", (path, method, required) => {
    const op = ((doc.paths?.[path] ?? {}) as Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>)[method];
    let schema = op?.requestBody?.content["multipart/form-data"]?.schema as { $ref?: string; required?: string[] };
    if (schema?.$ref) schema = doc.components?.schemas?.[schema.$ref.split("/").pop()!] as { required?: string[] };
    expect(schema?.required ?? []).toEqual(expect.arrayContaining(required));
    expect(schema?.required ?? []).not.toContain("image_2");
  });

  it("states the bounds of every integer query parameter (the /api/v2 limits included), as the validator enforces them", () => {
    type Param = { name: string; in: string; schema?: Record<string, unknown> };
    const unbounded: string[] = [];
    let integers = 0;
    for (const [path, item] of Object.entries(doc.paths ?? {})) {
      for (const [method, op] of Object.entries(item as Record<string, { parameters?: Param[] }>)) {
        for (const p of op.parameters ?? []) {
          if (p.in !== "query" || p.schema?.type !== "integer") continue;
          integers++;
          if (p.schema.minimum === undefined || p.schema.maximum === undefined) unbounded.push(`${method.toUpperCase()} ${path} ${p.name}`);
        }
      }
    }
    expect(integers).toBeGreaterThan(40);
    expect(unbounded).toEqual([]);
    const v2 = (path: string, name: string) =>
      (((doc.paths?.[path] ?? {}) as { get?: { parameters?: Param[] } }).get?.parameters ?? []).find((p) => p.name === name)?.schema;
    expect(v2("/api/v2/blog-posts", "limit")).toMatchObject({ type: "integer", minimum: 1, maximum: 20, default: 20 });
    expect(v2("/api/v2/blog-posts/popular", "limit")).toMatchObject({ minimum: 1, maximum: 50, default: 10 });
    expect(v2("/api/v2/blog-posts/popular", "days")).toMatchObject({ minimum: 0, maximum: 3650, default: 30 });
    expect(v2("/api/v2/categories", "limit")).toMatchObject({ minimum: 1, maximum: 100, default: 20 });
    expect(v2("/api/v2/series", "offset")).toMatchObject({ minimum: 0, maximum: 100_000, default: 0 });
  });

  it("says the species list's search is a plain filter and points to the ranked search", () => {
    type Param = { name: string; in: string; description?: string };
    const list = (doc.paths?.["/api/v1/plant-identification/species"] ?? {}) as { get?: { parameters?: Param[] } };
    const params = list.get?.parameters ?? [];
    const search = params.find((p) => p.in === "query" && p.name === "search");
    expect(search?.description).toMatch(/plain filter/);
    expect(search?.description).toContain("/api/v1/plant-identification/search/plants/?q=");
  });

  it.each([
    ["RegisterRequest", "password"],
    ["PasswordChange", "new_password"],
    ["PasswordResetConfirm", "new_password"],
  ])("gives %s's new %s the policy's length and rules, not the schema's bare bounds", (schema, field) => {
    const component = (doc.components?.schemas?.[schema] ?? {}) as { properties?: Record<string, Record<string, unknown>> };
    const properties = component.properties ?? {};
    expect(properties[field]).toMatchObject({ minLength: 12, maxLength: 128 });
    expect(properties[field]?.description).toMatch(/common password/);
  });

  it("documents the new token pair a bearer caller gets from a password change (its old tokens stop working)", () => {
    type Schema = { anyOf?: { properties?: Record<string, unknown>; required?: string[] }[] };
    const op = ((doc.paths?.["/api/v1/auth/password/change"] ?? {}) as Record<string, { responses: Record<string, unknown> }>).post;
    const ok = op?.responses["200"] as { content?: Record<string, { schema?: Schema }> } | undefined;
    const variants = ok?.content?.["application/json"]?.schema?.anyOf ?? [];
    expect(variants.map((v) => v.required?.slice().sort())).toContainEqual(["access", "expires_in", "message", "refresh", "token_type"]);
  });

  it("lists 409, 422 and 429 on every operation that takes Idempotency-Key (a retry while the first runs, a key reused, the account's keys all in use)", () => {
    type Op = { parameters?: { name: string; in: string }[]; responses?: Record<string, unknown> };
    const missing: string[] = [];
    let keyed = 0;
    for (const [path, item] of Object.entries(doc.paths ?? {})) {
      for (const [method, op] of Object.entries(item as Record<string, Op>)) {
        if (!op.parameters?.some((p) => p.in === "header" && p.name === "Idempotency-Key")) continue;
        keyed++;
        for (const status of ["409", "422", "429"]) if (!op.responses?.[status]) missing.push(`${method.toUpperCase()} ${path} ${status}`);
      }
    }
    expect(keyed).toBeGreaterThan(30);
    expect(missing).toEqual([]);
  });

  it("lists 415 on every operation with a JSON body (the media-type gate answers it to any other type)", () => {
    type Op = { requestBody?: { content?: Record<string, unknown> }; responses?: Record<string, unknown> };
    const missing: string[] = [];
    let json = 0;
    for (const [path, item] of Object.entries(doc.paths ?? {})) {
      for (const [method, op] of Object.entries(item as Record<string, Op>)) {
        if (!op.requestBody?.content?.["application/json"]) continue;
        json++;
        if (!op.responses?.["415"]) missing.push(`${method.toUpperCase()} ${path}`);
      }
    }
    expect(json).toBeGreaterThan(50);
    expect(missing).toEqual([]);
  });

  it("says every request body, JSON or form, at any depth, takes only its own fields (additionalProperties: false)", () => {
    // Bodies that take fields they do not use, by decision (docs/api.md, "Unknown fields in
    // sign-in bodies"): clients and form libraries send extras to the sign-in routes, and a
    // misspelt field there is caught as the real one missing.
    const SIGN_IN = ["register", "login", "token", "token/refresh", "logout", "email/confirm", "password/change", "password/reset"];
    const allowed = new Set([
      ...[...SIGN_IN, "password/reset/confirm"].map((route) => `POST /api/v1/auth/${route} application/json`),
      // The seed-compatible identification answers in the original's shape and vocabulary
      // (docs/api.md, "Synchronous identification"); it reads `image` and `language` and leaves
      // any other part alone, as the original did. requests/ is the route that refuses them.
      "POST /api/v1/plant-identification/identify multipart/form-data",
    ]);
    type Schema = {
      $ref?: string;
      type?: string;
      properties?: Record<string, Schema>;
      additionalProperties?: boolean | Schema;
      items?: Schema;
      anyOf?: Schema[];
      oneOf?: Schema[];
      allOf?: Schema[];
    };
    const named = (schema: Schema) => (schema.$ref ? ((doc.components?.schemas?.[schema.$ref.split("/").pop()!] ?? {}) as Schema) : schema);
    /** Where below `schema` an object with named fields takes others too. */
    const open = (schema: Schema, at: string, seen = new Set<Schema>()): string[] => {
      const s = named(schema);
      if (seen.has(s)) return [];
      seen.add(s);
      const here = s.properties && s.additionalProperties !== false ? [at] : [];
      const inner = [
        ...Object.entries(s.properties ?? {}).map(([name, child]) => [`${at}.${name}`, child] as const),
        ...[s.items, typeof s.additionalProperties === "object" ? s.additionalProperties : undefined].map((c) => [`${at}[]`, c] as const),
        ...[...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])].map((c) => [at, c] as const),
      ];
      return [...here, ...inner.flatMap(([where, child]) => (child ? open(child, where, seen) : []))];
    };
    const found: string[] = [];
    const openByDecision: string[] = [];
    let bodies = 0;
    for (const [path, item] of Object.entries(doc.paths ?? {})) {
      for (const [method, op] of Object.entries(
        item as Record<string, { requestBody?: { content?: Record<string, { schema?: Schema }> } }>,
      )) {
        for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
          bodies++;
          const operation = `${method.toUpperCase()} ${path} ${type}`;
          const wrong = media.schema ? open(media.schema, "body") : [];
          if (!allowed.has(operation)) found.push(...wrong.map((at) => `${operation}: ${at}`));
          else if (wrong.length > 0) openByDecision.push(operation);
        }
      }
    }
    expect(bodies).toBeGreaterThan(60);
    expect(found).toEqual([]);
    // Each body on the list is still served and still takes extras; one that no longer does leaves the list.
    expect(openByDecision.sort()).toEqual([...allowed].sort());
  });

  it("shows, for every error envelope response, an example of that status", () => {
    for (const [path, item] of Object.entries(doc.paths ?? {})) {
      for (const [method, op] of Object.entries(item as Record<string, { responses?: Record<string, unknown> }>)) {
        for (const [status, response] of Object.entries(op.responses ?? {})) {
          if (Number(status) < 400) continue;
          type Json = { schema?: { $ref?: string }; example?: { status_code?: number } };
          const json = (response as { content?: Record<string, Json> }).content?.["application/json"];
          if (json?.schema?.$ref !== "#/components/schemas/Error") continue; // health's 503 answers its own body
          const example = json.example;
          expect(`${method} ${path} ${status}: ${example?.status_code}`).toBe(`${method} ${path} ${status}: ${status}`);
        }
      }
    }
  });
});
