// Security review finding, fixed — this test keeps it fixed. The finding: a photo's URL names its
// content hash, and /media/ served any stored photo to anyone who had the URL, for a year from
// any cache. So unsharing a request, making a collection private or a banned account's removal
// from the feed hid the listing but not the photos: whoever had seen the feed (or was sent the
// link) kept fetching the pictures of someone's garden. Now what decides is where the photo is
// on show at the moment of the request.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/lib/hash";
import { photoRef, storeImages } from "../../src/services/photos";
import { call } from "../helpers/http";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { plantInPublicCollection } from "../helpers/public-plant";
import { bearerUser } from "../helpers/users";
import { upload, withRole } from "../routes/blog-editorial-setup";

useEmulators();
type User = Awaited<ReturnType<typeof bearerUser>>;

async function storedPhoto(seedOrBytes: string | Uint8Array): Promise<{ ref: string; url: string }> {
  const bytes = typeof seedOrBytes === "string" ? await makePng(16, 16, { seed: seedOrBytes }) : seedOrBytes;
  const image = { sha256: await sha256Hex(bytes), type: "png" as const, mime: "image/png" as const, bytes };
  await storeImages(env, [image]);
  const ref = photoRef(image);
  return { ref, url: `/api/v1/media/images/${ref}` };
}

async function requestWith(owner: User, ref: string): Promise<string> {
  const id = crypto.randomUUID();
  await env.DB.prepare("INSERT INTO identification_requests (id, user_id, status, image_hashes) VALUES (?, ?, 'identified', ?)")
    .bind(id, owner.userId, JSON.stringify([ref]))
    .run();
  return id;
}

const share = (u: User, id: string, method: "POST" | "DELETE") =>
  call(`/api/v1/plant-identification/requests/${id}/share/`, { method, bearer: u.access });

describe("who may fetch a stored photo", () => {
  it("a request's photo: its owner's alone; anyone's while shared; nobody else's again once unshared", async () => {
    const [owner, stranger] = await Promise.all([bearerUser(), bearerUser()]);
    const photo = await storedPhoto(`req-${owner.userId}`);
    const id = await requestWith(owner, photo.ref);

    expect((await call(photo.url)).status).toBe(404);
    expect((await call(photo.url, { bearer: stranger.access })).status).toBe(404);
    const own = await call(photo.url, { bearer: owner.access });
    expect(own.status).toBe(200);
    expect(own.headers.get("Cache-Control")).toBe("private, no-cache");
    // A stranger who has the ETag learns nothing either: 404, not 304.
    expect((await call(photo.url, { headers: { "If-None-Match": own.headers.get("ETag")! } })).status).toBe(404);

    expect((await share(owner, id, "POST")).status).toBe(200);
    const shown = await call(photo.url);
    expect(shown.status).toBe(200);
    expect(shown.headers.get("Cache-Control")).toBe("public, max-age=3600");

    expect((await share(owner, id, "DELETE")).status).toBe(200);
    expect((await call(photo.url)).status).toBe(404);
    expect((await call(photo.url, { bearer: stranger.access })).status).toBe(404);
    expect((await call(photo.url, { bearer: owner.access })).status).toBe(200);
  });

  it("a shared request's photo goes with its account's deactivation; staff still see it", async () => {
    const owner = await bearerUser();
    const moderator = await withRole("moderator");
    const photo = await storedPhoto(`banned-${owner.userId}`);
    const id = await requestWith(owner, photo.ref);
    expect((await share(owner, id, "POST")).status).toBe(200);
    expect((await call(photo.url)).status).toBe(200);
    await env.DB.prepare("UPDATE users SET is_active = 0 WHERE id = ?").bind(owner.userId).run();
    expect((await call(photo.url)).status).toBe(404);
    expect((await call(photo.url, { bearer: moderator.access })).status).toBe(200);
  });

  it("a plant's photo is anyone's while its collection (and profile) is public, and its owner's alone once private", async () => {
    const [owner, stranger] = await Promise.all([bearerUser(), bearerUser()]);
    const photo = await storedPhoto(`plant-${owner.userId}`);
    const collection = await plantInPublicCollection(owner.userId, photo.ref);
    expect((await call(photo.url)).status).toBe(200);
    // A private profile hides its public collections, and so their photos.
    await env.DB.prepare("UPDATE users SET profile_visibility = 'private' WHERE id = ?").bind(owner.userId).run();
    expect((await call(photo.url)).status).toBe(404);
    await env.DB.prepare("UPDATE users SET profile_visibility = 'public' WHERE id = ?").bind(owner.userId).run();
    expect((await call(photo.url)).status).toBe(200);
    await env.DB.prepare("UPDATE collections SET is_public = 0 WHERE id = ?").bind(collection).run();
    expect((await call(photo.url)).status).toBe(404);
    expect((await call(photo.url, { bearer: stranger.access })).status).toBe(404);
    expect((await call(photo.url, { bearer: owner.access })).status).toBe(200);
  });

  it("a blog upload not yet placed is for blog writers; a draft's photo under /media/ too; a published post's for anyone", async () => {
    const [author, editor, reader] = [await withRole("author"), await withRole("editor"), await bearerUser()];
    const res = await upload(author.access);
    expect(res.status).toBe(201);
    const { id: ref } = (await res.json()) as { id: string };
    const blogUrl = `/media/images/${ref}`;
    for (const url of [blogUrl, `/api/v1/media/images/${ref}`]) {
      expect((await call(url)).status, url).toBe(404);
      expect((await call(url, { bearer: reader.access })).status, url).toBe(404);
      expect((await call(url, { bearer: author.access })).status, url).toBe(200);
    }
    const created = await call("/api/v1/blog/posts/", {
      bearer: author.access,
      json: { title: `Draft ${ref.slice(0, 8)}`, featured_image: ref, featured_image_alt: "Seedlings" },
    });
    expect(created.status).toBe(201);
    const post = (await created.json()) as { id: string };
    expect((await call(blogUrl)).status).toBe(404);
    expect((await call(blogUrl, { bearer: editor.access })).status).toBe(200);
    expect((await call(`/api/v1/blog/posts/${post.id}/publish/`, { method: "POST", bearer: editor.access })).status).toBe(200);
    expect((await call(blogUrl)).status).toBe(200);
  });

  // Review finding (twelfth session's note): a writer who kept the reference of a photo once
  // shared in the community feed could place it in a draft — every writer then saw it — and an
  // editor publishing the post made it public again. Blog images are now the blog's own uploads.
  it("a writer cannot place someone's identification photo in a post or a series, nor fetch a photo nobody shows", async () => {
    const [owner, author, editor] = [await bearerUser(), await withRole("author"), await withRole("editor")];
    // Large enough to pass the blog's upload rules too (last step).
    const bytes = await makePng(320, 200, { seed: `once-shared-${owner.userId}` });
    const photo = await storedPhoto(bytes);
    const id = await requestWith(owner, photo.ref);
    expect((await share(owner, id, "POST")).status).toBe(200);
    expect((await share(owner, id, "DELETE")).status).toBe(200);

    const refused = async (res: Response, field: string) => {
      expect(res.status, field).toBe(400);
      const body = (await res.json()) as { errors: Record<string, string[]> };
      expect(body.errors[field]?.[0], JSON.stringify(body)).toMatch(/No such uploaded image/);
    };
    await refused(
      await call("/api/v1/blog/posts/", {
        bearer: author.access,
        json: { title: "Found it", featured_image: photo.ref, featured_image_alt: "x" },
      }),
      "featured_image",
    );
    await refused(
      await call("/api/v1/blog/posts/", {
        bearer: author.access,
        json: { title: "Found it", content_blocks: [{ type: "image", value: { image: photo.ref, alt: "x" } }] },
      }),
      "content_blocks.0.value.image",
    );
    const draft = (await (await call("/api/v1/blog/posts/", { bearer: author.access, json: { title: "Innocent" } })).json()) as {
      id: string;
    };
    await refused(
      await call(`/api/v1/blog/posts/${draft.id}/`, {
        method: "PATCH",
        bearer: editor.access,
        json: { featured_image: photo.ref, featured_image_alt: "x" },
      }),
      "featured_image",
    );
    await refused(
      await call("/api/v1/blog/series/", {
        bearer: editor.access,
        json: { title: `Series ${id.slice(0, 6)}`, cover_image: photo.ref, cover_image_alt: "x" },
      }),
      "cover_image",
    );

    // Text that spells the reference is not an image: published, the post still shows nobody the photo.
    const spelled = (await (
      await call("/api/v1/blog/posts/", {
        bearer: author.access,
        json: {
          title: "Hashes",
          content_blocks: [
            { type: "heading", value: photo.ref },
            { type: "code", value: { code: photo.ref } },
            { type: "quote", value: { quote_text: photo.ref } },
          ],
        },
      })
    ).json()) as { id: string };
    expect((await call(`/api/v1/blog/posts/${spelled.id}/publish/`, { method: "POST", bearer: editor.access })).status).toBe(200);
    expect((await call(photo.url)).status).toBe(404);

    // Nothing shows it and it is not the blog's: no writer may fetch it (its owner still may).
    for (const url of [photo.url, `/media/images/${photo.ref}`]) {
      expect((await call(url, { bearer: author.access })).status, url).toBe(404);
      expect((await call(url, { bearer: editor.access })).status, url).toBe(200); // staff
    }
    expect((await call(photo.url, { bearer: owner.access })).status).toBe(200);

    // Uploading the same bytes through the blog is having the picture: then it is the blog's.
    const res = await upload(author.access, bytes);
    expect(res.status).toBe(201);
    expect(((await res.json()) as { id: string }).id).toBe(photo.ref);
    expect((await call(photo.url, { bearer: author.access })).status).toBe(200);
  });

  it("someone else dropping the same picture does not delete a blog upload not yet placed", async () => {
    const [author, other] = [await withRole("author"), await bearerUser()];
    const bytes = await makePng(320, 200, { seed: `library-${author.userId}` });
    const res = await upload(author.access, bytes);
    expect(res.status).toBe(201);
    const { id: ref } = (await res.json()) as { id: string };
    // Another user makes the same bytes their avatar, then replaces it (the old avatar is released).
    const avatar = async (png: Uint8Array) => {
      const form = new FormData();
      form.append("avatar", new File([png], "me.png", { type: "image/png" }));
      const r = await call("/api/v1/auth/user/", { method: "PATCH", bearer: other.access, body: form });
      expect(r.status).toBe(200);
      return ((await r.json()) as { avatar_url: string }).avatar_url;
    };
    expect(await avatar(bytes)).toContain(ref);
    await avatar(await makePng(64, 64, { seed: `next-${other.userId}` }));
    expect(await env.IMAGES.head(`images/${ref}`)).not.toBeNull();
    expect((await call(`/media/images/${ref}`, { bearer: author.access })).status).toBe(200);
    const placed = await call("/api/v1/blog/posts/", {
      bearer: author.access,
      json: { title: "Still mine", content_blocks: [{ type: "image", value: { image: ref, alt: "Seedlings" } }] },
    });
    expect(placed.status).toBe(201);
  });
});
