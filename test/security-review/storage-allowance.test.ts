// Helper-146: R2 storage had no per-user byte allowance, and avatar uploads had no budget. One
// cheap account could keep storing photos (plants, requests, forum attachments, avatars) for as
// long as its rows kept them. Each test fails on the code before the allowance.
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { UPLOAD_RULES, validateImageUpload } from "../../src/lib/images";
import { photoRef } from "../../src/services/photos";
import { freshIp } from "../helpers/http";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

useEmulators();

const API = "/api/v1/plant-identification";

/** A photo's upload bytes, with the size and reference the store keeps for it. */
async function photo(seed: string) {
  const bytes = await makePng(320, 240, { seed: `storage-${seed}-${Math.random()}` });
  const result = await validateImageUpload({ bytes, declaredType: "image/png", filename: "p.png" }, UPLOAD_RULES);
  if (!result.ok) throw new Error(result.message);
  return { bytes, size: result.image.bytes.byteLength, ref: photoRef(result.image) };
}

type Photo = Awaited<ReturnType<typeof photo>>;

function client(settings: Record<string, string>) {
  const limited = { ...env, ...settings };
  return async (method: string, path: string, bearer: string, body?: FormData) => {
    const ctx = createExecutionContext();
    const headers = { Authorization: `Bearer ${bearer}`, "CF-Connecting-IP": freshIp() };
    const res = await createApp().request(path, { method, body, headers }, limited, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };
}

const plantForm = (p: Photo, name: string) => {
  const form = new FormData();
  form.append("nickname", name);
  form.append("image", new File([p.bytes], "p.png", { type: "image/png" }));
  return form;
};

const avatarForm = (p: Photo) => {
  const form = new FormData();
  form.append("avatar", new File([p.bytes], "a.png", { type: "image/png" }));
  return form;
};

const stored = async (p: Photo) => (await env.IMAGES.head(`images/${p.ref}`)) !== null;

async function usage(send: ReturnType<typeof client>, bearer: string) {
  const res = await send("GET", "/api/v1/auth/user/storage/", bearer);
  expect(res.status).toBe(200);
  return (await res.json()) as { used_bytes: number; limit_bytes: number };
}

describe("each account has a storage allowance in bytes", () => {
  it("refuses an upload past it with 413 STORAGE_FULL before storing anything; deleting frees the bytes", async () => {
    const u = await bearerUser();
    // `c`, the smallest, fits once `a` is gone.
    const [a, b, c] = (await Promise.all([photo("a"), photo("b"), photo("c")])).sort((x, y) => y.size - x.size) as [Photo, Photo, Photo];
    const send = client({ USER_STORAGE_BYTES: String(a.size + b.size), PLANT_PHOTO_RATE_LIMIT: "100/3600" });
    const first = await send("POST", `${API}/plants/`, u.access, plantForm(a, "a"));
    expect(first.status).toBe(201);
    expect((await send("POST", `${API}/plants/`, u.access, plantForm(b, "b"))).status).toBe(201);
    // The same photo again costs nothing more: a photo counts once for its owner.
    expect((await send("POST", `${API}/plants/`, u.access, plantForm(a, "a again"))).status).toBe(201);
    expect(await usage(send, u.access)).toEqual({ used_bytes: a.size + b.size, limit_bytes: a.size + b.size });

    const refused = await send("POST", `${API}/plants/`, u.access, plantForm(c, "c"));
    expect(refused.status).toBe(413);
    const body = (await refused.json()) as { code: string; message: string };
    expect(body.code).toBe("STORAGE_FULL");
    // In units a person reads, not a count of bytes.
    const kb = ((a.size + b.size) / 1024).toFixed(1);
    expect(body.message).toBe(
      `Your photos take ${kb} KB of the ${kb} KB your account may keep; this upload would go over. Delete some photos first.`,
    );
    expect(await stored(c)).toBe(false);
    const plants = await env.DB.prepare("SELECT count(*) AS n FROM user_plants WHERE user_id = ?").bind(u.userId).first<{ n: number }>();
    expect(plants!.n).toBe(3);

    // Deleting the plants that show `a` frees its bytes: `c` now fits.
    const { results } = await env.DB.prepare("SELECT id FROM user_plants WHERE user_id = ? AND image_key = ?")
      .bind(u.userId, a.ref)
      .all<{ id: string }>();
    for (const { id } of results) expect((await send("DELETE", `${API}/plants/${id}/`, u.access)).status).toBe(204);
    expect((await usage(send, u.access)).used_bytes).toBe(b.size);
    expect((await send("POST", `${API}/plants/`, u.access, plantForm(c, "c"))).status).toBe(201);
    expect(await stored(c)).toBe(true);
  });

  it("another account keeping the same photo is charged for it too, and is not refused for someone else's bytes", async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    const a = await photo("shared");
    const send = client({ USER_STORAGE_BYTES: String(a.size), PLANT_PHOTO_RATE_LIMIT: "100/3600" });
    expect((await send("POST", `${API}/plants/`, u.access, plantForm(a, "mine"))).status).toBe(201);
    expect((await send("POST", `${API}/plants/`, other.access, plantForm(a, "theirs"))).status).toBe(201);
    expect((await usage(send, other.access)).used_bytes).toBe(a.size);
  });

  it("concurrent uploads near the allowance cannot pass it together", async () => {
    const u = await bearerUser();
    const photos = await Promise.all(["c1", "c2", "c3", "c4", "c5"].map(photo));
    const sizes = photos.map((p) => p.size).sort((x, y) => y - x);
    const limit = sizes[0]! + sizes[1]!;
    // Any three of them are over the allowance, any two within it.
    expect(sizes[2]! + sizes[3]! + sizes[4]!).toBeGreaterThan(limit);
    const send = client({ USER_STORAGE_BYTES: String(limit), PLANT_PHOTO_RATE_LIMIT: "100/3600" });
    const statuses = await Promise.all(
      photos.map((p, i) => send("POST", `${API}/plants/`, u.access, plantForm(p, `race ${i}`)).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s === 201)).toHaveLength(2);
    expect(statuses.filter((s) => s === 413)).toHaveLength(3);
    const kept = photos.filter((_, i) => statuses[i] === 201);
    expect((await usage(send, u.access)).used_bytes).toBe(kept[0]!.size + kept[1]!.size);
    for (const [i, p] of photos.entries()) expect(await stored(p), `photo ${i}`).toBe(statuses[i] === 201);
  });
});

describe("avatars", () => {
  it("are charged to the allowance, the replaced one freed", async () => {
    const u = await bearerUser();
    const [a, b] = await Promise.all([photo("av-a"), photo("av-b")]);
    // Replacing needs room for the new photo while the old one is still kept.
    const send = client({ USER_STORAGE_BYTES: String(a.size + b.size), AVATAR_RATE_LIMIT: "10/3600" });
    expect((await send("PATCH", "/api/v1/auth/user/", u.access, avatarForm(a))).status).toBe(200);
    expect((await usage(send, u.access)).used_bytes).toBe(a.size);
    expect((await send("PATCH", "/api/v1/auth/user/", u.access, avatarForm(b))).status).toBe(200);
    // The replaced avatar's photo is released, and its bytes count no more.
    expect(await stored(a)).toBe(false);
    expect((await usage(send, u.access)).used_bytes).toBe(b.size);
    // An avatar over what is left is refused, and the one shown stays.
    const tight = client({ USER_STORAGE_BYTES: String(b.size), AVATAR_RATE_LIMIT: "10/3600" });
    const refused = await tight("PATCH", "/api/v1/auth/user/", u.access, avatarForm(a));
    expect(refused.status).toBe(413);
    expect(((await refused.json()) as { code: string }).code).toBe("STORAGE_FULL");
    const row = await env.DB.prepare("SELECT avatar_key FROM users WHERE id = ?").bind(u.userId).first<{ avatar_key: string }>();
    expect(row!.avatar_key).toBe(b.ref);
    expect(await stored(a)).toBe(false);
  });

  it("are spent from a budget like other uploads (429 past it)", async () => {
    const u = await bearerUser();
    const photos = await Promise.all(["r1", "r2", "r3"].map(photo));
    const send = client({ AVATAR_RATE_LIMIT: "2/3600" });
    const statuses: number[] = [];
    for (const p of photos) statuses.push((await send("PATCH", "/api/v1/auth/user/", u.access, avatarForm(p))).status);
    expect(statuses).toEqual([200, 200, 429]);
    expect(await stored(photos[2]!)).toBe(false);
  });
});

describe("the synchronous identify endpoint", () => {
  it("answers a full account's identification (paid for already) without recording it or storing its photo", async () => {
    const u = await bearerUser();
    const p = await photo("identify");
    const send = client({ USER_STORAGE_BYTES: "1" });
    const form = new FormData();
    form.append("image", new File([p.bytes], "leaf.png", { type: "image/png" }));
    const res = await send("POST", `${API}/identify/`, u.access, form);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { success: boolean; request_id?: string };
    expect(body.success).toBe(true);
    expect(body.request_id).toBeUndefined();
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM identification_requests WHERE user_id = ?")
      .bind(u.userId)
      .first<{ n: number }>();
    expect(rows!.n).toBe(0);
    expect(await stored(p)).toBe(false);
  });
});
