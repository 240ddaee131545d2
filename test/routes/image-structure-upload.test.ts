/**
 * Truncated photos are refused at the door (security item 11): a PNG, JPEG or WebP cut off
 * mid-upload still has readable headers, so only the structural checks of src/lib/images.ts
 * catch it. Through the Worker: 400, and nothing stored — no row in D1, no object in R2.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/lib/hash";
import { makeJpeg, makePng, makeWebp } from "../helpers/images";
import { call, expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

// Should a truncated photo slip through, its job must not reach the internet.
useEmulators();

const API = "/api/v1/plant-identification";

/** Whole and cut-off versions of one image of each type, distinct per call. */
async function truncatedImages() {
  const seed = `cut-${Math.random()}`;
  const png = await makePng(320, 240, { seed });
  const jpeg = makeJpeg(400, 300, { seed });
  const webp = makeWebp("VP8X", 400, 300);
  webp.set(new TextEncoder().encode(seed.slice(0, 8).padEnd(8, "x")).subarray(0, 8), webp.length - 8); // distinct bytes, same structure
  return [
    {
      type: "image/png",
      name: "cut.png",
      ext: "png",
      whole: png,
      cut: png.subarray(0, png.length - 40),
      problem: "a PNG chunk runs past the end of the file",
    },
    {
      type: "image/jpeg",
      name: "cut.jpg",
      ext: "jpg",
      whole: jpeg,
      cut: jpeg.subarray(0, jpeg.length - 2),
      problem: "the JPEG ends before its end-of-image marker (EOI)",
    },
    {
      type: "image/webp",
      name: "cut.webp",
      ext: "webp",
      whole: webp,
      cut: webp.subarray(0, webp.length - 6),
      problem: "the WebP file is shorter than its RIFF header says",
    },
  ];
}

async function storedUnder(sha: string): Promise<string[]> {
  return (await env.IMAGES.list({ prefix: `images/${sha}` })).objects.map((o) => o.key);
}

describe("truncated photos are refused before anything is stored", () => {
  it("identification requests: 400 on image_1, no request row, no R2 object", async () => {
    const u = await bearerUser();
    for (const image of await truncatedImages()) {
      const form = new FormData();
      form.append("image_1", new File([image.cut], image.name, { type: image.type }));
      const err = await expectError(
        await call(`${API}/requests/`, { method: "POST", body: form, bearer: u.access }),
        400,
        "VALIDATION_ERROR",
      );
      expect(err.message, image.type).toBe(
        `The image file is incomplete or corrupted: ${image.problem}. Please upload the whole file again.`,
      );
      expect(Object.keys(err.errors ?? {})).toEqual(["image_1"]);
      expect(await storedUnder(await sha256Hex(image.cut))).toEqual([]);
    }
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM identification_requests WHERE user_id = ?")
      .bind(u.userId)
      .first<{ n: number }>();
    expect(rows?.n).toBe(0);
  });

  it("plants: 400, no plant row, no R2 object; the whole file of the same photo is accepted", async () => {
    const u = await bearerUser();
    const images = await truncatedImages();
    for (const image of images) {
      const form = new FormData();
      form.append("nickname", `Cut ${image.ext}`);
      form.append("image", new File([image.cut], image.name, { type: image.type }));
      const err = await expectError(
        await call(`${API}/plants/`, { method: "POST", body: form, bearer: u.access }),
        400,
        "VALIDATION_ERROR",
      );
      expect(err.message, image.type).toContain("incomplete or corrupted");
      expect(await storedUnder(await sha256Hex(image.cut))).toEqual([]);
    }
    const plants = await env.DB.prepare("SELECT count(*) AS n FROM user_plants WHERE user_id = ?").bind(u.userId).first<{ n: number }>();
    expect(plants?.n).toBe(0);

    // The check refuses only the cut: the same photo whole is stored as usual.
    const whole = images[0]!;
    const form = new FormData();
    form.append("nickname", "Whole");
    form.append("image", new File([whole.whole], whole.name, { type: whole.type }));
    const res = await call(`${API}/plants/`, { method: "POST", body: form, bearer: u.access });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await storedUnder(await sha256Hex(whole.whole))).toEqual([`images/${await sha256Hex(whole.whole)}.${whole.ext}`]);
  });
});
