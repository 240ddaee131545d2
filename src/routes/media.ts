/**
 * GET /api/v1/media/images/{ref} — serves stored photos (of requests, plants, posts, avatars) from R2,
 * to whoever may see them now; `avatars/{ref}` is the older path of avatars, kept for links
 * already handed out. Keys are content addressed (SHA-256), so a photo's bytes never change;
 * who may fetch it does.
 */
import { z } from "@hono/zod-openapi";
import { createRouter, routeSet } from "./router";
import { AppError } from "../lib/errors";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { matchesEtag } from "../lib/http-caching";
import { isWriter } from "../services/blog-posts";
import { type PhotoAccess, photoAccess, photoObject, servablePhoto } from "../services/photos";
import { STAFF_ROLES } from "../services/users";
import { errorResponse } from "./schemas";

export function mediaRoutes() {
  const app = createRouter();
  const image = routeSet({ tags: ["Media"], errors: { 404: errorResponse(404, "No such image") } })
    .get("/{kind}/{file}", "A stored image")
    .io(
      { params: z.object({ kind: z.enum(["avatars", "images"]), file: z.string().max(80) }) },
      { 200: { description: "The image", content: { "image/*": { schema: z.any().openapi({ type: "string", format: "binary" }) } } } },
      {
        description:
          "Served to anyone while something shows it to everyone (a shared request, a public collection's plant, a live forum post, a published blog post): `Cache-Control: public, max-age=3600`; the avatar of a public profile to anyone too, kept by no shared cache: `private, max-age=3600`. Otherwise only to its owner (bearer or session cookie; an avatar of a profile that is not public included), blog writers for blog photos, and staff: `private, no-cache`. Anyone else gets 404, as for no photo.",
      },
    );
  app.openapi(image, async (c) => (await storedImageResponse(c, c.req.valid("param").file)) as never);
  return app;
}

/** How long anyone may keep a photo that is on show: an unshared one leaves shared caches within it. */
const PUBLIC_PHOTO_MAX_AGE_S = 3600;

/**
 * Who may keep a served photo. An avatar on show only beside a public profile is kept by each
 * reader's own browser and by no shared cache (an edge, a proxy): its owner making the profile
 * private stops it being served to anyone who has not fetched it already, at once.
 */
const CACHE_CONTROL: Record<NonNullable<PhotoAccess>, string> = {
  public: `public, max-age=${PUBLIC_PHOTO_MAX_AGE_S}`,
  profile: `private, max-age=${PUBLIC_PHOTO_MAX_AGE_S}`,
  private: "private, no-cache",
};

/**
 * A stored photo as an HTTP answer (here and under /media/ for the blog), to whoever may see it
 * now (services/photos.ts `photoAccess`; anyone else gets the same 404 as for no photo at all):
 * a photo on show is cacheable by anyone for an hour, a private one only by the viewer's own
 * browser, revalidated each time; sandboxed; 304 for a matching If-None-Match.
 */
export async function storedImageResponse(c: Context<AppEnv>, file: string): Promise<Response> {
  const user = c.get("user");
  const viewer = user ? { id: user.id, blogWriter: isWriter(user), staff: STAFF_ROLES.includes(user.role) } : undefined;
  // The check and the read run side by side: a photo on show costs one round trip, not two.
  const [access, found] = await Promise.all([photoAccess(c.env, file, viewer), photoObject(c.env, file)]);
  if (!access || !found) {
    await found?.object.body.cancel();
    throw new AppError("NOT_FOUND", 404, "Image not found.");
  }
  // A photo stored before the current metadata stripping leaves stripped (services/photos.ts).
  const photo = await servablePhoto(c.env, found, c.get("logger"));
  if (!photo) throw new AppError("NOT_FOUND", 404, "Image not found.");
  const ifNoneMatch = c.req.header("If-None-Match");
  const headers = new Headers();
  found.object.writeHttpMetadata(headers);
  if (photo.httpEtag) headers.set("ETag", photo.httpEtag);
  headers.set("Cache-Control", CACHE_CONTROL[access]);
  if (access === "private") headers.set("Vary", "Authorization, Cookie");
  headers.set("Content-Security-Policy", "default-src 'none'; sandbox");
  if (photo.httpEtag && matchesEtag(ifNoneMatch, photo.httpEtag)) return new Response(null, { status: 304, headers });
  return new Response(photo.body, { status: 200, headers });
}
