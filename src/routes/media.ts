/**
 * GET /api/v1/media/images/{ref} — serves stored photos (of requests, plants, posts, avatars) from R2;
 * `avatars/{ref}` is the older path of avatars, kept for links already handed out.
 * Keys are content addressed (SHA-256), so responses are immutable and cache forever.
 */
import { z } from "@hono/zod-openapi";
import { createRouter, routeSet } from "./router";
import { AppError } from "../lib/errors";
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
  app.openapi(image, async (c) => {
    const object = await photoObject(c.env, c.req.valid("param").file);
    if (!object) throw new AppError("NOT_FOUND", 404, "Image not found.");
    const headers = new Headers();
    object.writeHttpMetadata(headers);
    headers.set("ETag", object.httpEtag);
    headers.set("Cache-Control", "public, max-age=31536000, immutable");
    headers.set("Content-Security-Policy", "default-src 'none'; sandbox");
    return new Response(object.body, { status: 200, headers }) as never;
  });
  return app;
}
