import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { bearerUser } from "../helpers/users";

const BASE = "https://api.test";

function call(path: string, init?: RequestInit) {
  return exports.default.fetch(new Request(`${BASE}${path}`, init));
}

async function expectEnvelope(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/application\/json/);
  const requestId = res.headers.get("X-Request-ID");
  expect(requestId).toBeTruthy();
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ error: true, code, status_code: status, request_id: requestId });
  expect(typeof body.message).toBe("string");
  expect(JSON.stringify(body)).not.toMatch(/at .*\.(ts|js):\d+/); // no stack traces
  return body;
}

describe("health", () => {
  it("reports every storage binding, with and without a trailing slash", async () => {
    for (const path of ["/api/v1/health/", "/api/v1/health"]) {
      const res = await call(path);
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toMatchObject({ status: "ok", checks: { d1: "ok", kv: "ok", r2: "ok", queue: "ok" } });
    }
  });
});

describe("error envelope", () => {
  it("404 for an unknown route", async () => {
    await expectEnvelope(await call("/api/v1/nope/"), 404, "NOT_FOUND");
  });

  it("404 for an API path points at the docs, and at the route it may have meant when only the prefix is missing", async () => {
    const message = async (path: string) => ((await (await call(path)).json()) as { message: string }).message;
    expect(await message("/api/v1/plants/")).toBe(
      "No route for GET /api/v1/plants. Did you mean /api/v1/plant-identification/plants/? Every route is listed at /api/docs.",
    );
    expect(await message(`/api/v1/species/${crypto.randomUUID()}/care`)).toMatch(
      /Did you mean \/api\/v1\/plant-identification\/species\/\{id\}\/care\/\?/,
    );
    expect(await message("/api/v1/reminder/")).toBe("No route for GET /api/v1/reminder. Every route is listed at /api/docs.");
    // The API's own roots, where a newcomer starts, point at the docs too.
    for (const root of ["/api/v1/", "/api/v1", "/api/", "/api/v2/"]) {
      expect(await message(root)).toBe(`No route for GET ${root.replace(/\/$/, "")}. Every route is listed at /api/docs.`);
    }
    // A path outside the API is not told about the API's docs.
    expect(await message("/nope/")).toBe("No route for GET /nope.");
  });

  it("405 with Allow for a known path and the wrong method", async () => {
    const res = await call("/api/v1/health/", { method: "DELETE" });
    await expectEnvelope(res, 405, "METHOD_NOT_ALLOWED");
    expect(res.headers.get("Allow")).toContain("GET");
  });

  it("405 names the methods the path takes in its message, for a client that guessed", async () => {
    const res = await call("/api/v1/auth/user/", { method: "DELETE" });
    const body = (await res.json()) as { message: string };
    expect(res.status).toBe(405);
    // Deleting the account is an action route of its own; the 405 points at it.
    expect(body.message).toBe(
      'Method "DELETE" not allowed on /api/v1/auth/user; it takes GET, PATCH. To delete, POST /api/v1/auth/user/delete/.',
    );
  });

  it("405 on a fixed path that also fits a sibling's {id} route, not that route's 400 about the id", async () => {
    const { access } = await bearerUser();
    const headers = { Authorization: `Bearer ${access}` };
    for (const [method, path, takes] of [
      ["GET", "/api/v1/reminders/calendar-feed/", "DELETE, POST"],
      ["PATCH", "/api/v1/reminders/calendar-feed", "DELETE, POST"],
      ["DELETE", "/api/v1/reminders/preview/", "GET"],
      ["PATCH", "/api/v1/reminders/calendar.ics", "GET"],
      ["DELETE", "/api/v1/blog/comments/moderation/", "GET"],
    ] as const) {
      const res = await call(path, { method, headers });
      const body = await expectEnvelope(res, 405, "METHOD_NOT_ALLOWED");
      expect(body.message, `${method} ${path}`).toBe(`Method "${method}" not allowed on ${path.replace(/\/$/, "")}; it takes ${takes}.`);
      expect(res.headers.get("Allow"), path).toContain(takes.split(", ")[0]);
    }
    // The sibling still answers for its own ids, and the fixed path for its own methods.
    const reminder = await call(`/api/v1/reminders/${crypto.randomUUID()}/`, { headers });
    await expectEnvelope(reminder, 404, "NOT_FOUND");
    const preview = await call("/api/v1/reminders/preview/?days=3", { headers });
    expect(preview.status).toBe(200);
  });

  it("415 saying to send JSON for a form-encoded or plain-text body to a JSON route, signed in or not", async () => {
    const { access } = await bearerUser();
    for (const [path, bearer, type] of [
      ["/api/v1/plant-identification/collections/", access, "application/x-www-form-urlencoded"],
      ["/api/v1/auth/token/", undefined, "application/x-www-form-urlencoded"],
      ["/api/v1/reminders/", access, "text/plain"],
    ] as const) {
      const headers: Record<string, string> = { "Content-Type": type, ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}) };
      const body = await expectEnvelope(await call(path, { method: "POST", headers, body: "name=x" }), 415, "UNSUPPORTED_MEDIA_TYPE");
      expect(body.message, path).toBe("Send the body as application/json.");
    }
  });

  it("echoes a sane client request id and replaces a hostile one", async () => {
    const ok = await call("/api/v1/nope", { headers: { "X-Request-ID": "client-abc-12345" } });
    expect(ok.headers.get("X-Request-ID")).toBe("client-abc-12345");
    const bad = await call("/api/v1/nope", { headers: { "X-Request-ID": "<script>alert(1)</script>" } });
    expect(bad.headers.get("X-Request-ID")).not.toContain("<");
  });
});

describe("security headers and CORS", () => {
  it("sets the security headers on API responses", async () => {
    const res = await call("/api/v1/health/");
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(res.headers.get("Content-Security-Policy")).toContain("frame-ancestors 'none'");
    expect(res.headers.get("Referrer-Policy")).toBeTruthy();
    // HSTS only outside local development.
    expect(res.headers.get("Strict-Transport-Security")).toBeNull();
  });

  it("allows the web client's origin with credentials", async () => {
    const res = await call("/api/v1/health/", {
      method: "OPTIONS",
      headers: {
        Origin: "http://localhost:5173",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-csrftoken",
      },
    });
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("http://localhost:5173");
    expect(res.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    expect(res.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toContain("x-csrftoken");
  });

  it("refuses an origin that is not on the list", async () => {
    const res = await call("/api/v1/health/", { headers: { Origin: "https://evil.example" } });
    expect(res.headers.get("Access-Control-Allow-Origin")).toBeNull();
    expect(res.headers.get("Access-Control-Allow-Credentials")).not.toBe("true");
  });
});

describe("OpenAPI and docs", () => {
  it("serves an OpenAPI 3.1 document", async () => {
    const res = await call("/api/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toContain("/api/v1/health");
  });

  it("serves the interactive docs page", async () => {
    const res = await call("/api/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain("swagger-ui-bundle.js");
    expect(res.headers.get("Content-Security-Policy")).toContain("script-src 'self'");
  });

  it("gives the docs page landmarks and a title that say where you are, and a way back to the site", async () => {
    const html = await (await call("/api/docs")).text();
    // Swagger UI draws into the page's one main landmark (a screen reader's "jump to main" lands on the reference).
    expect(html).toMatch(/<main id="swagger-ui"[^>]*><\/main>/);
    expect(html).toMatch(/<nav aria-label="[^"]+"/);
    expect(html).toContain('<a href="/">Plant Community</a>');
    expect(/<title>([^<]+)<\/title>/.exec(html)?.[1]).toBe("API documentation · Plant Community");
  });

  it("names an icon the service serves, so a browser does not ask for a missing /favicon.ico", async () => {
    const html = await (await call("/api/docs")).text();
    const href = /<link rel="icon" href="([^"]+)"/.exec(html)?.[1];
    expect(href).toBeDefined();
    const icon = await call(href as string);
    expect(icon.status).toBe(200);
    expect(icon.headers.get("content-type")).toMatch(/^image\//);
  });
});

describe("validation messages", () => {
  it("say what to send in words, not zod's (a number, a whole number, a bound)", async () => {
    const cases: [string, string, string][] = [
      ["/api/v1/plant-identification/species/?page=abc", "page", "Enter a number."],
      ["/api/v1/plant-identification/species/?page=1.5", "page", "Enter a whole number."],
      ["/api/v1/plant-identification/species/?page_size=0", "page_size", "Ensure this value is greater than or equal to 1."],
      ["/api/v1/plant-identification/species/?page_size=101", "page_size", "Ensure this value is less than or equal to 100."],
      ["/api/v1/search/?q=fern&limit=lots", "limit", "Enter a number."],
      ["/api/v2/blog-posts/?offset=x", "offset", "Enter a number."],
    ];
    for (const [path, field, message] of cases) {
      const body = await expectEnvelope(await call(path), 400, "VALIDATION_ERROR");
      expect(body.errors, path).toEqual({ [field]: [message] });
    }
  });
});
