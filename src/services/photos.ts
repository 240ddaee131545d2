/**
 * The photo store. Every photo — of an identification or diagnosis request, a plant, a forum
 * post, an avatar — is kept once in R2, content-addressed, and referred to by one form: its
 * reference `<sha256>.<ext>` (`PhotoRef`), the R2 key being `images/<ref>`. Photos are shared
 * (the same picture may belong to rows of any user), so one is deleted only when no row refers
 * to it any more; which rows can refer to a photo is the declared list in photo-references.ts.
 */
import type { Bindings } from "../env";
import { IMAGE_EXTENSION, IMAGE_MIME, type ImageMime, type ImageType } from "../lib/images";

/** A stored photo: its content hash and image type. */
export interface StoredImage {
  sha256: string;
  type: ImageType;
}

/** A photo with its bytes, as an upload or a load gives it. */
export interface PhotoBytes extends StoredImage {
  mime: ImageMime;
  bytes: Uint8Array;
}

const REF_RE = /^([0-9a-f]{64})\.(jpg|png|webp)$/;
const EXT_TYPE: Record<string, ImageType> = { jpg: "jpeg", png: "png", webp: "webp" };

/** The stored reference form of a photo: `<sha256>.<ext>`. */
export function photoRef(image: StoredImage): string {
  return `${image.sha256}.${IMAGE_EXTENSION[image.type]}`;
}

/** The photo a stored reference names, or null for anything that is not one. */
export function parsePhotoRef(ref: string): StoredImage | null {
  const match = REF_RE.exec(ref);
  return match ? { sha256: match[1]!, type: EXT_TYPE[match[2]!]! } : null;
}

/** The photos of a list of references (entries that are not references are skipped). */
export function photosOf(refs: readonly string[]): StoredImage[] {
  return refs.map(parsePhotoRef).filter((p): p is StoredImage => p !== null);
}

/** The R2 key of a photo. */
export function imageKey(image: StoredImage): string {
  return `images/${photoRef(image)}`;
}

/** Where clients fetch a photo (routes/media.ts serves it). */
export function imageUrl(image: StoredImage): string {
  return `/api/v1/media/${imageKey(image)}`;
}

/** Content-addressed: the same photo uploaded twice is stored once. */
export async function storeImages(env: Bindings, images: readonly (StoredImage & { mime: ImageMime; bytes: Uint8Array })[]) {
  await Promise.all(
    images.map(async (image) => {
      const key = imageKey(image);
      if (await env.IMAGES.head(key)) return;
      await env.IMAGES.put(key, image.bytes, { httpMetadata: { contentType: image.mime }, sha256: image.sha256 });
    }),
  );
}

/** Photos from R2, in the given order; null when any of them is gone. */
export async function loadPhotos(
  env: Bindings,
  images: readonly StoredImage[],
): Promise<{ bytes: Uint8Array; mime: ImageMime; sha256: string }[] | null> {
  const objects = await Promise.all(images.map((img) => env.IMAGES.get(imageKey(img))));
  if (objects.some((o) => o === null)) return null;
  return Promise.all(
    objects.map(async (o, i) => ({
      bytes: new Uint8Array(await o!.arrayBuffer()),
      mime: IMAGE_MIME[images[i]!.type],
      sha256: images[i]!.sha256,
    })),
  );
}
