/**
 * Lifetime of the photos in R2. They are content-addressed (`images/<sha256>.<ext>`) and shared:
 * the same photo may belong to identification requests, diagnoses, plants and forum posts of any user, so a
 * photo is deleted only when no row refers to it any more.
 */
import type { Bindings } from "../env";
import type { ImageType } from "../lib/images";
import { imageKey, type StoredImage } from "./requests";

const KEY_RE = /^images\/([0-9a-f]{64})\.(jpg|png|webp)$/;
const EXT_TYPE: Record<string, ImageType> = { jpg: "jpeg", png: "png", webp: "webp" };

/** The photo behind an R2 key as plants store it (`images/<sha256>.<ext>`), or null for any other key. */
export function storedImageFromKey(key: string): StoredImage | null {
  const match = KEY_RE.exec(key);
  return match ? { sha256: match[1]!, type: EXT_TYPE[match[2]!]! } : null;
}

/** Deletes those of `images` that no identification request, diagnosis, plant or forum post attachment refers to. */
export async function deleteUnusedImages(env: Bindings, images: StoredImage[]): Promise<void> {
  if (images.length === 0) return;
  const entries = JSON.stringify(images.map((img) => imageKey(img).slice("images/".length)));
  const { results } = await env.DB.prepare(
    `SELECT value AS entry FROM identification_requests, json_each(identification_requests.image_hashes)
      WHERE value IN (SELECT value FROM json_each(?1))
     UNION
     SELECT value AS entry FROM disease_requests, json_each(disease_requests.image_hashes)
      WHERE value IN (SELECT value FROM json_each(?1))
     UNION
     SELECT substr(image_key, 8) AS entry FROM user_plants
      WHERE image_key IN (SELECT 'images/' || value FROM json_each(?1))
     UNION
     SELECT image AS entry FROM forum_attachments
      WHERE image IN (SELECT value FROM json_each(?1))`,
  )
    .bind(entries)
    .all<{ entry: string }>();
  const used = new Set(results.map((r) => r.entry.split(".")[0]));
  const orphans = [...new Set(images.filter((img) => !used.has(img.sha256)).map(imageKey))];
  if (orphans.length > 0) await env.IMAGES.delete(orphans);
}
