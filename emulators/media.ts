// The image files the emulators' answers link to (similar images, related images, entity
// images), served by the combined server under /media/… so a browser on a local stack shows
// real pictures instead of failing on a host that does not resolve.
//
// Each path gets its own small SVG drawing of a leaf: colours and angle are drawn from the
// path, so one URL always shows the same picture and two similar images look different.
// Web-standard APIs only (the handlers also run inside workerd).

import { fnv1a64Hex } from "./species";

const SIZES: Record<string, number> = { s: 160, m: 320, o: 640 };

/** `GET /media/<anything>`: an SVG for that path; 405 for other methods. */
export function mediaResponse(req: Request, path: string): Response {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  const svg = leafSvg(path);
  return new Response(req.method === "HEAD" ? null : svg, {
    status: 200,
    headers: {
      "content-type": "image/svg+xml; charset=utf-8",
      "content-length": String(new TextEncoder().encode(svg).length),
      "cache-control": "public, max-age=86400, immutable",
      // Pages on another local origin (the Worker) embed these.
      "cross-origin-resource-policy": "cross-origin",
      "x-content-type-options": "nosniff",
    },
  });
}

/** A leaf on a background, both coloured from the path's hash; sized by a Pl@ntNet-style s/m/o segment. */
export function leafSvg(path: string): string {
  const hex = fnv1a64Hex(path);
  const byte = (i: number) => Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  const size = SIZES[/\/image\/([smo])\//.exec(path)?.[1] ?? ""] ?? (/\.small\./.test(path) ? 160 : 320);
  const hue = 80 + (byte(0) % 70); // greens to yellow-greens
  const backgroundHue = (hue + 150 + (byte(1) % 60)) % 360;
  const angle = (byte(2) % 90) - 45;
  const light = 28 + (byte(3) % 22);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 100 100">` +
    `<rect width="100" height="100" fill="hsl(${backgroundHue} 35% 88%)"/>` +
    `<g transform="rotate(${angle} 50 50)">` +
    `<path d="M50 8C78 26 80 64 50 92C20 64 22 26 50 8Z" fill="hsl(${hue} 55% ${light}%)"/>` +
    `<path d="M50 14V88" stroke="hsl(${hue} 40% ${light + 25}%)" stroke-width="2" fill="none"/>` +
    `</g></svg>`
  );
}
