/**
 * Routes whose JSON body is optional (routes/router.ts): an empty JSON body is no body, a broken
 * one is still refused, and a body of another type is never read by the route's own middleware
 * (so an anonymous client cannot make it buffer a large multipart upload into a string).
 */
import { z } from "@hono/zod-openapi";
import { describe, expect, it } from "vitest";
import { createRouter, routeSet } from "../../src/routes/router";
import { requestJson } from "../../src/routes/schemas";

function app() {
  const router = createRouter();
  const open = routeSet({ tags: ["Test"], errors: {} });
  const route = open
    .post("/thing", "An optional body")
    .io({ body: requestJson(z.strictObject({ revision: z.number().int().optional() }), false) }, { 200: { description: "ok" } });
  router.openapi(route, (c) => c.json({ got: c.req.valid("json") ?? null }, 200));
  router.onError((err, c) => c.json({ error: String(err) }, ((err as { status?: number }).status ?? 500) as 400));
  return router;
}

/** A request body that records whether anything read it. */
function watchedBody(text: string) {
  const seen = { read: false };
  const bytes = new TextEncoder().encode(text);
  // highWaterMark 0: the stream is pulled only when something reads it, not on creation.
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        seen.read = true;
        controller.enqueue(bytes);
        controller.close();
      },
    },
    { highWaterMark: 0 },
  );
  return { body, seen };
}

const post = (headers: Record<string, string>, body?: BodyInit) =>
  app().request("/thing", { method: "POST", headers, body, duplex: "half" } as RequestInit);

describe("an optional JSON body", () => {
  it("empty, with Content-Type: application/json (or a +json type, with parameters), is no body", async () => {
    for (const type of ["application/json", "application/json; charset=utf-8", "application/merge-patch+json"]) {
      const res = await post({ "Content-Type": type }, "");
      expect(res.status, type).toBe(200);
      expect(await res.json()).toEqual({ got: {} });
    }
    expect((await post({ "Content-Type": "application/json" }, "  \n")).status).toBe(200);
  });

  it("present is validated as before: a revision is taken, broken JSON and unknown fields are refused", async () => {
    expect(await (await post({ "Content-Type": "application/json" }, '{"revision":3}')).json()).toEqual({ got: { revision: 3 } });
    expect((await post({ "Content-Type": "application/json" }, "{revision")).status).toBe(400);
    expect((await post({ "Content-Type": "application/json" }, '{"other":1}')).status).toBe(400);
  });

  it("of another type is not read by the middleware (refused as an unsupported type)", async () => {
    const { body, seen } = watchedBody('--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nbig\r\n--x--\r\n');
    const res = await post({ "Content-Type": "multipart/form-data; boundary=x" }, body);
    expect(res.status).toBe(415); // the route's media-type gate, after the middleware
    expect(seen.read).toBe(false);
    // A JSON body is read (and checked), as the validator reads it.
    const json = watchedBody("");
    expect((await post({ "Content-Type": "application/json" }, json.body)).status).toBe(200);
    expect(json.seen.read).toBe(true);
  });
});
