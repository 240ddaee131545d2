/**
 * The static files in public/ (the landing page, /identify/, the docs UI's scripts), served
 * through the Worker (`run_worker_first = true` in wrangler.toml) so they get the same
 * security headers as the API — the assets layer on its own would send them bare. The
 * Worker's security-header middleware adds X-Frame-Options, nosniff and the Referrer-Policy
 * (and HSTS when deployed) to whatever this returns; HTML pages get pageCsp() here, other files
 * keep the API's `default-src 'none'`.
 */
import type { Context } from "hono";
import type { AppEnv } from "../env";

/**
 * For our own pages: scripts and styles only from our origin, in files (no inline script or
 * style anywhere in public/). Images may also be the photo being uploaded (blob:) and the
 * providers' similar-species photos (https:, plus the identification providers' own origins
 * when they are plain http — the local emulators, which serve those photos themselves). Sockets
 * and API calls go to our own origin.
 */
export function pageCsp(env: { PLANT_ID_API_URL?: string; PLANTNET_API_URL?: string }): string {
  const providerImages = [env.PLANT_ID_API_URL, env.PLANTNET_API_URL].flatMap((u) => {
    try {
      const url = new URL(u ?? "");
      return url.protocol === "http:" ? [url.origin] : [];
    } catch {
      return [];
    }
  });
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    ["img-src 'self' data: blob: https:", ...new Set(providerImages)].join(" "),
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

const WORKER_PATHS = /^\/(api|ws)(\/|$)/;

/**
 * The asset for this request, or null when there is none (API and WebSocket paths, methods
 * other than GET/HEAD, or no such file) so the caller answers with its own 404/405.
 */
export async function serveStaticAsset(c: Context<AppEnv>): Promise<Response | null> {
  if (c.req.method !== "GET" && c.req.method !== "HEAD") return null;
  if (WORKER_PATHS.test(c.req.path)) return null;
  const asset = await c.env.ASSETS.fetch(c.req.raw);
  if (asset.status === 404) return null;
  // Responses from a binding have immutable headers; copy so the middleware can add to them.
  const res = new Response(asset.body, asset);
  if ((res.headers.get("Content-Type") ?? "").toLowerCase().startsWith("text/html")) {
    res.headers.set("Content-Security-Policy", pageCsp(c.env));
  }
  return res;
}
