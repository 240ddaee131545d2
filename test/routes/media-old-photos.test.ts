// Photos stored before the metadata stripping (or before it learnt C2PA and PNG exIf/zxIf) kept
// where they were taken: EXIF GPS, and a C2PA manifest's stds.exif copy of it. They are served
// as clean as a photo uploaded today, and cleaned in R2 once, under the same key.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/lib/hash";
import { METADATA_STRIP_VERSION } from "../../src/lib/image-metadata";
import { type FoundPhoto, loadPhotos, parsePhotoRef, photoObject, servablePhoto } from "../../src/services/photos";
import { call } from "../helpers/http";
import { concatBytes, jpegSegment, makeJpeg, makePng, pngChunk } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { plantInPublicCollection } from "../helpers/public-plant";
import { bearerUser } from "../helpers/users";
import { withRole } from "./blog-editorial-setup";

useEmulators();

const text = (s: string) => new TextEncoder().encode(s);
const has = (bytes: Uint8Array, s: string) => Buffer.from(bytes).includes(Buffer.from(s, "latin1"));
const SECRETS = ["GPS 51.5074", "c2pa", "stds.exif"];

/** A JPEG as a phone wrote it: EXIF with a GPS position and C2PA content credentials (APP11) holding a copy. */
function oldJpeg(seed: string): Uint8Array {
  const plain = makeJpeg(320, 240, { comment: seed });
  const exif = jpegSegment(0xe1, concatBytes(text("Exif\0\0II*\0"), new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 0, 0]), text("GPS 51.5074 N")));
  const c2pa = jpegSegment(0xeb, text("JP\0\x01\0\0\0\x01jumbc2pa stds.exif GPS 51.5074 N"));
  return concatBytes(plain.subarray(0, 2), exif, c2pa, plain.subarray(2));
}

/** A PNG with an `exIf` chunk (the pre-registration name) and a `caBX` C2PA chunk, both with GPS. */
async function oldPng(seed: string): Promise<Uint8Array> {
  const plain = await makePng(32, 32, { seed });
  const afterIhdr = 8 + 25;
  return concatBytes(
    plain.subarray(0, afterIhdr),
    pngChunk("exIf", text("MM\0*GPS 51.5074 N")),
    pngChunk("caBX", text("jumbc2pa stds.exif GPS 51.5074 N")),
    plain.subarray(afterIhdr),
  );
}

/** Put straight into R2 the way an upload before the stripping did: its hash as key, no mark. */
async function storedTheOldWay(bytes: Uint8Array, ext: "jpg" | "png"): Promise<{ ref: string; key: string; url: string }> {
  const ref = `${await sha256Hex(bytes)}.${ext}`;
  await env.IMAGES.put(`images/${ref}`, bytes, { httpMetadata: { contentType: ext === "jpg" ? "image/jpeg" : "image/png" } });
  return { ref, key: `images/${ref}`, url: `/api/v1/media/images/${ref}` };
}

async function sharedRequestWith(ref: string): Promise<void> {
  const owner = await bearerUser();
  await env.DB.prepare(
    "INSERT INTO identification_requests (id, user_id, status, image_hashes, is_shared_with_community) VALUES (?, ?, 'identified', ?, 1)",
  )
    .bind(crypto.randomUUID(), owner.userId, JSON.stringify([ref]))
    .run();
}

async function publicPlantWith(ref: string): Promise<void> {
  await plantInPublicCollection((await bearerUser()).userId, ref);
}

const bytesOf = async (res: Response) => new Uint8Array(await res.arrayBuffer());

describe("photos stored before the current metadata stripping", () => {
  it("a shared request's old JPEG reaches a stranger without GPS or C2PA, the same bytes each time, and is cleaned and marked in R2", async () => {
    const original = oldJpeg("shared-old-jpeg");
    for (const secret of SECRETS) expect(has(original, secret), secret).toBe(true);
    const photo = await storedTheOldWay(original, "jpg");
    const oldEtag = (await env.IMAGES.head(photo.key))!.httpEtag;
    await sharedRequestWith(photo.ref);
    const stranger = await bearerUser();

    const first = await call(photo.url, { bearer: stranger.access });
    expect(first.status).toBe(200);
    const served = await bytesOf(first);
    for (const secret of SECRETS) expect(has(served, secret), secret).toBe(false);
    expect(has(served, "shared-old-jpeg")).toBe(true); // the comment (and the pixels) stay
    expect(first.headers.get("Content-Type")).toBe("image/jpeg");
    expect(first.headers.get("Cache-Control")).toBe("public, max-age=3600");
    const etag = first.headers.get("ETag");
    expect(etag).toBeTruthy();
    expect(etag).not.toBe(oldEtag);

    const second = await call(photo.url);
    expect(second.status).toBe(200);
    expect(await bytesOf(second)).toEqual(served);
    expect(second.headers.get("ETag")).toBe(etag);

    // The object itself: cleaned, marked, under the same key.
    const stored = await env.IMAGES.get(photo.key);
    expect(stored?.customMetadata?.["metadata-stripped"]).toBe(String(METADATA_STRIP_VERSION));
    expect(stored?.httpMetadata?.contentType).toBe("image/jpeg");
    expect(new Uint8Array(await stored!.arrayBuffer())).toEqual(served);
  });

  it("a browser holding the unstripped copy revalidates with its old ETag and gets the clean bytes, not a 304", async () => {
    const photo = await storedTheOldWay(oldJpeg("revalidated"), "jpg");
    const oldEtag = (await env.IMAGES.head(photo.key))!.httpEtag;
    await sharedRequestWith(photo.ref);
    const res = await call(photo.url, { headers: { "If-None-Match": oldEtag } });
    expect(res.status).toBe(200);
    const served = await bytesOf(res);
    for (const secret of SECRETS) expect(has(served, secret), secret).toBe(false);
    expect((await call(photo.url, { headers: { "If-None-Match": res.headers.get("ETag")! } })).status).toBe(304);
  });

  it("a public plant's old PNG loses its exIf and caBX chunks", async () => {
    const photo = await storedTheOldWay(await oldPng("plant-old-png"), "png");
    await publicPlantWith(photo.ref);
    const res = await call(photo.url);
    expect(res.status).toBe(200);
    const served = await bytesOf(res);
    for (const secret of SECRETS) expect(has(served, secret), secret).toBe(false);
    expect(has(served, "IHDR") && has(served, "IDAT") && has(served, "IEND")).toBe(true);
    expect((await env.IMAGES.head(photo.key))?.customMetadata?.["metadata-stripped"]).toBe(String(METADATA_STRIP_VERSION));
  });

  it("an old avatar under the pre-0013 avatars/ prefix is cleaned there, and no copy appears under images/", async () => {
    const bytes = oldJpeg("legacy-avatar-old");
    const ref = `${await sha256Hex(bytes)}.jpg`;
    await env.IMAGES.put(`avatars/${ref}`, bytes, { httpMetadata: { contentType: "image/jpeg" } });
    const u = await bearerUser();
    await env.DB.prepare("UPDATE users SET avatar_key = ? WHERE id = ?").bind(ref, u.userId).run();
    const res = await call(`/api/v1/media/avatars/${ref}`);
    expect(res.status).toBe(200);
    const served = await bytesOf(res);
    for (const secret of SECRETS) expect(has(served, secret), secret).toBe(false);
    const stored = await env.IMAGES.get(`avatars/${ref}`);
    expect(stored?.customMetadata?.["metadata-stripped"]).toBe(String(METADATA_STRIP_VERSION));
    expect(new Uint8Array(await stored!.arrayBuffer())).toEqual(served);
    expect(await env.IMAGES.head(`images/${ref}`)).toBeNull();
  });

  it("the blog's own /media/ route serves an old photo of its library clean too", async () => {
    const photo = await storedTheOldWay(oldJpeg("blog-library-old"), "jpg");
    const author = await withRole("author");
    await env.DB.prepare("INSERT INTO blog_images (ref, uploaded_by) VALUES (?, ?)").bind(photo.ref, author.userId).run();
    const res = await call(`/media/images/${photo.ref}`, { bearer: author.access });
    expect(res.status).toBe(200);
    const served = await bytesOf(res);
    for (const secret of SECRETS) expect(has(served, secret), secret).toBe(false);
    expect((await env.IMAGES.head(photo.key))?.customMetadata?.["metadata-stripped"]).toBe(String(METADATA_STRIP_VERSION));
  });

  it("a photo nobody may see is neither served nor rewritten", async () => {
    const photo = await storedTheOldWay(oldJpeg("unshown"), "jpg");
    expect((await call(photo.url)).status).toBe(404);
    expect((await env.IMAGES.head(photo.key))?.customMetadata?.["metadata-stripped"]).toBeUndefined();
  });

  it("an uploaded photo is stored with the mark, and an unmarked object of the same bytes gets it", async () => {
    const u = await bearerUser();
    const png = await makePng(64, 64, { seed: `marked-${u.userId}` });
    const ref = `${await sha256Hex(png)}.png`;
    // The same picture stored before the mark existed (it had nothing to strip).
    await env.IMAGES.put(`images/${ref}`, png, { httpMetadata: { contentType: "image/png" } });
    const form = new FormData();
    form.append("avatar", new File([png], "me.png", { type: "image/png" }));
    const res = await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, body: form });
    expect(res.status).toBe(200);
    const stored = await env.IMAGES.head(`images/${ref}`);
    expect(stored?.customMetadata?.["metadata-stripped"]).toBe(String(METADATA_STRIP_VERSION));
  });
});

describe("cleaning a photo as it is served (servablePhoto)", () => {
  const found = async (ref: string) => (await photoObject(env, ref)) as FoundPhoto;

  it("a failed write-back still answers the stripped bytes, without an ETag", async () => {
    const photo = await storedTheOldWay(oldJpeg("write-back-fails"), "jpg");
    const failing = {
      ...env,
      IMAGES: Object.assign(Object.create(env.IMAGES), {
        put: () => Promise.reject(new Error("R2 is down")),
      }),
    } as typeof env;
    const result = await servablePhoto(failing, await found(photo.ref));
    expect(result).not.toBeNull();
    expect(result!.httpEtag).toBeNull();
    const body = result!.body as Uint8Array;
    for (const secret of SECRETS) expect(has(body, secret), secret).toBe(false);
    // Not marked: the next serve tries again.
    expect((await env.IMAGES.head(photo.key))?.customMetadata?.["metadata-stripped"]).toBeUndefined();
  });

  it("a photo deleted while it is being served is not brought back by the write-back", async () => {
    const photo = await storedTheOldWay(oldJpeg("released-meanwhile"), "jpg");
    const before = await found(photo.ref);
    await env.IMAGES.delete(photo.key);
    const result = await servablePhoto(env, before);
    for (const secret of SECRETS) expect(has(result!.body as Uint8Array, secret), secret).toBe(false);
    expect(await env.IMAGES.head(photo.key)).toBeNull();
  });

  it("stored bytes that cannot be read as their type are not served", async () => {
    const bytes = concatBytes(oldJpeg("broken").subarray(0, 200));
    const photo = await storedTheOldWay(bytes, "jpg");
    expect(await servablePhoto(env, await found(photo.ref))).toBeNull();
  });

  it("the photos sent to the identification services are stripped too (loadPhotos)", async () => {
    const photo = await storedTheOldWay(oldJpeg("to-the-providers"), "jpg");
    const [loaded] = (await loadPhotos(env, [parsePhotoRef(photo.ref)!]))!;
    for (const secret of SECRETS) expect(has(loaded!.bytes, secret), secret).toBe(false);
    expect(loaded!.sha256).toBe(photo.ref.slice(0, 64));
  });
});
