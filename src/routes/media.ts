/**
 * GET /api/v1/media/images/{ref} — serves stored photos (of requests, plants, posts, avatars) from R2;
 * `avatars/{ref}` is the older path of avatars, kept for links already handed out.
 * Keys are content addressed (SHA-256), so responses are immutable and cache forever.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "./router";
import { AppError } from "../lib/errors";
import { photoObject } from "../services/photos";
import { errorResponse } from "./schemas";

export function mediaRoutes() {
  const app = createRouter();
  app.openapi(
    createRoute({
      method: "get",
      path: "/{kind}/{file}",
      tags: ["Media"],
      summary: "A stored image",
      request: { params: z.object({ kind: z.enum(["avatars", "images"]), file: z.string().max(80) }) },
      responses: {
        200: { description: "The image", content: { "image/*": { schema: z.any().openapi({ type: "string", format: "binary" }) } } },
        404: errorResponse("No such image"),
      },
    }),
    async (c) => {
      const object = await photoObject(c.env, c.req.valid("param").file);
      if (!object) throw new AppError("NOT_FOUND", 404, "Image not found.");
      const headers = new Headers();
      object.writeHttpMetadata(headers);
      headers.set("ETag", object.httpEtag);
      headers.set("Cache-Control", "public, max-age=31536000, immutable");
      headers.set("Content-Security-Policy", "default-src 'none'; sandbox");
      return new Response(object.body, { status: 200, headers }) as never;
    },
  );
  return app;
}
