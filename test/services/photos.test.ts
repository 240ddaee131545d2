/**
 * The photo store (src/services/photos.ts): one reference form, a declared list of the columns
 * that refer to photos, release only when nothing refers to a photo, and store-or-undo.
 */
import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { sha256Hex } from "../../src/lib/hash";
import {
  imageKey,
  PHOTO_REFERENCES,
  parsePhotoRef,
  photoObject,
  photoRef,
  R2_DELETE_MAX_KEYS,
  releasePhotoRefs,
  releasePhotos,
  type StoredImage,
  withStoredPhotos,
} from "../../src/services/photos";
import type { Logger } from "../../src/lib/logger";
import { IdentificationRequests, submitRequest } from "../../src/services/queued-requests";
import { call } from "../helpers/http";
import { makePng } from "../helpers/images";
import { bearerUser } from "../helpers/users";

async function photo(seed: string) {
  const bytes = await makePng(8, 8, { seed });
  const sha256 = await sha256Hex(bytes);
  return { sha256, type: "png" as const, mime: "image/png" as const, bytes };
}

const i8 = (image: StoredImage) => Number.parseInt(image.sha256.slice(0, 2), 16);
const stored = async (image: StoredImage) => (await env.IMAGES.head(imageKey(image))) !== null;

async function avatar(access: string, seed: string): Promise<string> {
  const form = new FormData();
  form.append("avatar", new File([await makePng(64, 64, { seed })], "me.png", { type: "image/png" }));
  const res = await call("/api/v1/auth/user/", { method: "PATCH", bearer: access, body: form });
  expect(res.status).toBe(200);
  return ((await res.json()) as { avatar_url: string }).avatar_url.split("/").at(-1)!;
}

describe("references", () => {
  it("one form: <sha256>.<ext>, R2 key images/<ref>", async () => {
    const p = await photo("ref-form");
    expect(photoRef(p)).toBe(`${p.sha256}.png`);
    expect(imageKey(p)).toBe(`images/${p.sha256}.png`);
    expect(parsePhotoRef(photoRef(p))).toEqual({ sha256: p.sha256, type: "png" });
  });

  it.each(["images/0123.png", `${"a".repeat(64)}.gif`, `${"A".repeat(64)}.png`, `../${"a".repeat(64)}.png`, `${"a".repeat(63)}.png`, ""])(
    "refuses %j as a reference",
    (ref) => {
      expect(parsePhotoRef(ref)).toBeNull();
    },
  );

  it("declares every column that can refer to a photo", () => {
    expect(PHOTO_REFERENCES.map((r) => `${r.column.name}:${r.form}`).sort()).toEqual(
      [
        "avatar_key:ref",
        "image:ref",
        "image_hashes:refs",
        "image_hashes:refs",
        "image_key:ref",
        "featured_image:ref",
        "content_blocks:json",
        "snapshot:json",
        "cover_image:ref",
      ].sort(),
    );
  });
});

describe("release", () => {
  it("deletes a photo nothing refers to, and keeps one a declared column still uses", async () => {
    const free = await photo("release-free");
    const used = await photo("release-used");
    await withStoredPhotos(env, null, [free, used], async () => {});
    const u = await bearerUser();
    // An avatar is one of the declared references; any of them keeps the photo.
    await env.DB.prepare("UPDATE users SET avatar_key = ? WHERE id = ?").bind(photoRef(used), u.userId).run();
    await releasePhotos(env, [free, used]);
    expect(await stored(free)).toBe(false);
    expect(await stored(used)).toBe(true);
  });

  it("keeps a photo an identification request holds in its JSON list", async () => {
    const p = await photo("release-request");
    await withStoredPhotos(env, null, [p], async () => {});
    const u = await bearerUser();
    await env.DB.prepare("INSERT INTO identification_requests (id, user_id, status, image_hashes) VALUES (?, ?, 'identified', ?)")
      .bind(crypto.randomUUID(), u.userId, JSON.stringify(["x", photoRef(p)]))
      .run();
    await releasePhotoRefs(env, [photoRef(p), null, "not-a-ref"]);
    expect(await stored(p)).toBe(true);
  });

  it("a failed write undoes the upload; a successful one keeps it", async () => {
    const p = await photo("undo");
    await expect(
      withStoredPhotos(env, null, [p], async () => {
        throw new Error("write failed");
      }),
    ).rejects.toThrow("write failed");
    expect(await stored(p)).toBe(false);
    expect(await withStoredPhotos(env, null, [p], async () => "written")).toBe("written");
    expect(await stored(p)).toBe(true);
  });
});

describe("release of many photos at once", () => {
  it("a blog release of more photos than D1 binds to a statement (100) releases every one: library rows and R2 objects go", async () => {
    // A deleted post lets go of every photo its revisions showed: many more than 100.
    const images: StoredImage[] = [];
    for (let i = 0; i < 130; i++) images.push({ sha256: await sha256Hex(`many-photos-${i}`), type: "png" });
    await Promise.all(images.map((img) => env.IMAGES.put(imageKey(img), new Uint8Array([i8(img)]))));
    const insert = env.DB.prepare("INSERT INTO blog_images (ref) VALUES (?)");
    await env.DB.batch(images.map((img) => insert.bind(photoRef(img))));

    await releasePhotoRefs(env, images.map(photoRef), { fromBlog: true });

    const left = await env.DB.prepare("SELECT count(*) AS n FROM blog_images WHERE ref IN (SELECT value FROM json_each(?))")
      .bind(JSON.stringify(images.map(photoRef)))
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
    expect((await Promise.all(images.map(stored))).filter(Boolean)).toHaveLength(0);
  });

  it("a release of more keys than R2 deletes in one call (1000) deletes them in calls it takes, every one", async () => {
    // Two keys a photo (its key and the pre-0013 avatar key): 600 photos are 1200 keys. The local
    // bucket takes any number, so the calls' sizes are what the test reads.
    const images: StoredImage[] = [];
    for (let i = 0; i < 600; i++) images.push({ sha256: await sha256Hex(`r2-delete-bound-${i}`), type: "png" });
    await Promise.all(images.map((img) => env.IMAGES.put(imageKey(img), new Uint8Array([i8(img)]))));
    const deleteCalls: number[] = [];
    const bucketDelete = env.IMAGES.delete.bind(env.IMAGES);
    const spy = vi.spyOn(env.IMAGES, "delete").mockImplementation((keys) => {
      deleteCalls.push(Array.isArray(keys) ? keys.length : 1);
      return bucketDelete(keys);
    });
    try {
      await releasePhotoRefs(env, images.map(photoRef));
    } finally {
      spy.mockRestore();
    }
    expect(deleteCalls).toEqual([R2_DELETE_MAX_KEYS, 200]);
    expect((await Promise.all(images.map(stored))).filter(Boolean)).toHaveLength(0);
  });
});

describe("avatars are photos like any other", () => {
  it("a replaced avatar is released, unless something else shows it", async () => {
    const u = await bearerUser();
    const first = parsePhotoRef(await avatar(u.access, `first-${u.username}`))!;
    expect(await stored(first)).toBe(true);
    const second = parsePhotoRef(await avatar(u.access, `second-${u.username}`))!;
    expect(await stored(first)).toBe(false);
    expect(await stored(second)).toBe(true);

    // Another user shows the same picture: replacing it here keeps it for them.
    const other = await bearerUser();
    await env.DB.prepare("UPDATE users SET avatar_key = ? WHERE id = ?").bind(photoRef(second), other.userId).run();
    await avatar(u.access, `third-${u.username}`);
    expect(await stored(second)).toBe(true);
  });

  it("serves an avatar stored under the pre-0013 avatars/ prefix, and releases it there", async () => {
    const p = await photo("legacy-avatar");
    await env.IMAGES.put(`avatars/${photoRef(p)}`, p.bytes, { httpMetadata: { contentType: "image/png" } });
    const u = await bearerUser();
    await env.DB.prepare("UPDATE users SET avatar_key = ? WHERE id = ?").bind(photoRef(p), u.userId).run();
    const served = await call(`/api/v1/media/avatars/${photoRef(p)}`);
    expect(served.status).toBe(200);
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(p.bytes);
    expect(await photoObject(env, photoRef(p))).not.toBeNull();
    await env.DB.prepare("UPDATE users SET avatar_key = NULL WHERE id = ?").bind(u.userId).run();
    await releasePhotos(env, [p]);
    expect(await env.IMAGES.head(`avatars/${photoRef(p)}`)).toBeNull();
  });
});

describe("the request lifecycle uses store-or-undo", () => {
  it("a request row that cannot be written leaves no photo behind (no such owner: the foreign key refuses it)", async () => {
    const p = await photo("submit-undo");
    const logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => logger } as unknown as Logger;
    await expect(
      submitRequest(env, IdentificationRequests, crypto.randomUUID(), [p], { status: "pending", organs: ["auto"] }, logger),
    ).rejects.toThrow();
    expect(await stored(p)).toBe(false);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM identification_requests WHERE instr(image_hashes, ?) > 0")
      .bind(p.sha256)
      .first<{ n: number }>();
    expect(rows!.n).toBe(0);
  });
});
