/**
 * GET /api/v1/media/images/{ref} — serves stored photos (of requests, plants, posts, avatars) from R2;
 * `avatars/{ref}` is the older path of avatars, kept for links already handed out.
 * Keys are content addressed (SHA-256), so responses are immutable and cache forever.
 */
import { z } from "@hono/zod-openapi";
import { createRouter, routeSet } from "./router";
import { AppError } from "../lib/errors";
import type { Bindings } from "../env";
import { matchesEtag } from "../lib/http-caching";
import { photoObject } from "../services/photos";
import { errorResponse } from "./schemas";

export function mediaRoutes() {
  const app = createRouter();
  const image = routeSet({ tags: ["Media"], errors: { 404: errorResponse(404, "No such image") } })
    .get("/{kind}/{file}", "A stored image")
    .io(
      { params: z.object({ kind: z.enum(["avatars", "images"]), file: z.string().max(80) }) },
      { 200: { description: "The image", content: { "image/*": { schema: z.any().openapi({ type: "string", format: "binary" }) } } } },
    );
  app.openapi(image, async (c) => (await storedImageResponse(c.env, c.req.valid("param").file, c.req.header("If-None-Match"))) as never);
  return app;
}

/**
 * A stored photo as an HTTP answer (here and under /media/ for the blog): content-addressed, so
 * immutable and cacheable forever; sandboxed; 304 for a matching If-None-Match; 404 otherwise.
 */
export async function storedImageResponse(env: Bindings, file: string, ifNoneMatch: string | undefined): Promise<Response> {
  const object = await photoObject(env, file);
  if (!object) throw new AppError("NOT_FOUND", 404, "Image not found.");
  const headers = new Headers();
  object.writeHttpMetadata(headers);
  headers.set("ETag", object.httpEtag);
  headers.set("Cache-Control", "public, max-age=31536000, immutable");
  headers.set("Content-Security-Policy", "default-src 'none'; sandbox");
  if (matchesEtag(ifNoneMatch, object.httpEtag)) return new Response(null, { status: 304, headers });
  return new Response(object.body, { status: 200, headers });
}
