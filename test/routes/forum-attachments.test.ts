/**
 * Forum image attachments (API.md §5: ≤ 6 per post, trust level ≥ basic; images per §2.4):
 * multipart topics and replies, ordering, /media serving, the trust gate, all-or-nothing
 * validation, soft deletes, and photo lifetime shared with identification requests.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/lib/hash";
import { call, expectError, jsonWithStatus as json, type Page } from "../helpers/http";
import { makeJpeg, makePng, makeWebp } from "../helpers/images";
import { bearerUser } from "../helpers/users";
import type { z } from "zod";
import type { PostSchema, TopicDetailSchema } from "../../src/routes/forum";

const API = "/api/v1/forum";

type Post = z.infer<typeof PostSchema>;
type TopicDetail = z.infer<typeof TopicDetailSchema>;

let seq = 0;
const uniq = () => `${++seq}-${crypto.randomUUID()}`;
const png = (w = 320, h = 240) => makePng(w, h, { seed: `fa-${uniq()}` });
const jpeg = (w = 400, h = 300) => makeJpeg(w, h, { seed: `fa-${uniq()}` });

interface Part {
  bytes: Uint8Array;
  name?: string;
  type?: string;
}
const file = (p: Part) => new File([p.bytes], p.name ?? "photo.png", { type: p.type ?? "image/png" });

function form(text: Record<string, string>, images: (Part | null)[]): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(text)) f.append(k, v);
  images.forEach((p, i) => {
    if (p) f.append(`image_${i + 1}`, file(p));
  });
  return f;
}

const postTopic = (bearer: string, body: FormData, slug = "houseplants") =>
  call(`${API}/categories/${slug}/topics/`, { method: "POST", bearer, body });
const postReply = (bearer: string, topicId: string, body: FormData) =>
  call(`${API}/topics/${topicId}/posts/`, { method: "POST", bearer, body });
const posts = async (topicId: string) => json<Page<Post>>(await call(`${API}/topics/${topicId}/posts/`), 200);

/** A signed-in user at the given stored trust level (the computed level never drops below it). */
async function userAt(level: "new" | "basic" | "trusted") {
  const u = await bearerUser();
  await env.DB.prepare("UPDATE users SET trust_level = ? WHERE id = ?").bind(level, u.userId).run();
  return u;
}

const keyOf = async (bytes: Uint8Array, ext: string) => `images/${await sha256Hex(bytes)}.${ext}`;
const urlOf = async (bytes: Uint8Array, ext: string) => `/api/v1/media/${await keyOf(bytes, ext)}`;
const count = async (sql: string, ...binds: unknown[]) =>
  (await env.DB.prepare(sql)
    .bind(...binds)
    .first<{ n: number }>())!.n;

describe("attachments on topics and replies", () => {
  it("stores them in upload order, returns them on every read, and /media serves them", async () => {
    const u = await userAt("basic");
    const a = await png(320, 240);
    const b = jpeg(400, 300);
    const webpWidth = 600 + (++seq % 100);
    const c = makeWebp("VP8X", webpWidth, 250);
    const topic = await json<TopicDetail>(
      await postTopic(
        u.access,
        form({ title: "My variegated monstera", body: "Three photos of the leaves." }, [
          { bytes: a },
          { bytes: b, name: "leaf.jpg", type: "image/jpeg" },
          { bytes: c, name: "whole.webp", type: "image/webp" },
        ]),
      ),
      201,
    );
    expect(topic.title).toBe("My variegated monstera");
    const expected = [
      { url: await urlOf(a, "png"), width: 320, height: 240, content_type: "image/png" },
      { url: await urlOf(b, "jpg"), width: 400, height: 300, content_type: "image/jpeg" },
      { url: await urlOf(c, "webp"), width: webpWidth, height: 250, content_type: "image/webp" },
    ];
    expect(topic.first_post!.body).toBe("Three photos of the leaves.");
    expect(topic.first_post!.attachments).toEqual(expected);

    // A reply with its photos in a different order (one shared with the topic: stored once).
    const d = await png(800, 200);
    const reply = await json<Post>(
      await postReply(u.access, topic.id, form({ body: "And the roots." }, [{ bytes: d }, { bytes: a }])),
      201,
    );
    expect(reply.attachments).toEqual([{ url: await urlOf(d, "png"), width: 800, height: 200, content_type: "image/png" }, expected[0]]);

    // Every read shows them: the topic, the thread.
    expect((await json<TopicDetail>(await call(`${API}/topics/${topic.id}/`), 200)).first_post!.attachments).toEqual(expected);
    const thread = await posts(topic.id);
    expect(thread.results.map((p) => p.attachments.map((x) => x.url))).toEqual([
      expected.map((x) => x.url),
      [await urlOf(d, "png"), expected[0]!.url],
    ]);

    // D1 holds one row per photo, positions 1..n, as "<sha256>.<ext>".
    const rows = await env.DB.prepare("SELECT position, image, width, height FROM forum_attachments WHERE post_id = ? ORDER BY position")
      .bind(reply.id)
      .all();
    expect(rows.results).toEqual([
      { position: 1, image: `${await sha256Hex(d)}.png`, width: 800, height: 200 },
      { position: 2, image: `${await sha256Hex(a)}.png`, width: 320, height: 240 },
    ]);

    // /media serves the exact bytes with the right type.
    for (const [bytes, att] of [
      [a, expected[0]!],
      [b, expected[1]!],
      [c, expected[2]!],
      [d, reply.attachments[0]!],
    ] as const) {
      const res = await call(att.url);
      expect(res.status).toBe(200);
      expect(res.headers.get("Content-Type")).toBe(att.content_type);
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    }
  });

  it("JSON and text-only multipart posts still work and have no attachments", async () => {
    const u = await userAt("new");
    const viaJson = await json<TopicDetail>(
      await call(`${API}/categories/houseplants/topics/`, { bearer: u.access, json: { title: "Plain JSON topic", body: "No photos." } }),
      201,
    );
    expect(viaJson.first_post!.attachments).toEqual([]);
    const viaForm = await json<TopicDetail>(
      await postTopic(u.access, form({ title: "Plain form topic", body: "No photos either." }, [])),
      201,
    );
    expect(viaForm.first_post).toMatchObject({ body: "No photos either.", attachments: [] });
    const reply = await json<Post>(await postReply(u.access, viaForm.id, form({ body: "Form reply" }, [])), 201);
    expect(reply.attachments).toEqual([]);
    // Unknown text fields are refused as they are in JSON; so are other content types.
    const e = await expectError(
      await postTopic(u.access, form({ title: "Plain form topic", body: "x", pinned: "1" }, [])),
      400,
      "VALIDATION_ERROR",
    );
    expect(Object.keys(e.errors!)).toEqual(["non_field_errors"]);
    await expectError(
      await call(`${API}/topics/${viaForm.id}/posts/`, {
        method: "POST",
        bearer: u.access,
        body: "hello",
        headers: { "Content-Type": "text/plain" },
      }),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
  });
});

describe("who may attach, and how many", () => {
  it("refuses photos below trust level basic (403 TRUST_LEVEL_TOO_LOW), storing nothing; earned trust counts", async () => {
    const u = await userAt("new");
    const photo = await png();
    const before = await count("SELECT count(*) AS n FROM forum_posts WHERE author_id = ?", u.userId);
    await expectError(
      await postTopic(u.access, form({ title: "Look at this leaf", body: "See photo." }, [{ bytes: photo }])),
      403,
      "TRUST_LEVEL_TOO_LOW",
    );
    const topic = await json<TopicDetail>(
      await call(`${API}/categories/houseplants/topics/`, { bearer: u.access, json: { title: "Text only topic", body: "ok" } }),
      201,
    );
    await expectError(await postReply(u.access, topic.id, form({ body: "See photo." }, [{ bytes: photo }])), 403, "TRUST_LEVEL_TOO_LOW");
    expect(await env.IMAGES.head(await keyOf(photo, "png"))).toBeNull();
    expect(await count("SELECT count(*) AS n FROM forum_posts WHERE author_id = ?", u.userId)).toBe(before + 1);

    // Earned by activity (≥ 5 posts, ≥ 7 days) although the stored level is still "new".
    await env.DB.prepare("UPDATE users SET post_count = 5, date_joined = ? WHERE id = ?")
      .bind(new Date(Date.now() - 8 * 86_400_000).toISOString(), u.userId)
      .run();
    const ok = await json<Post>(await postReply(u.access, topic.id, form({ body: "See photo." }, [{ bytes: photo }])), 201);
    expect(ok.attachments.map((x) => x.width)).toEqual([320]);
    expect(await env.IMAGES.head(await keyOf(photo, "png"))).not.toBeNull();
  });

  it("accepts six photos and refuses seven (400), storing nothing", async () => {
    const u = await userAt("trusted");
    const six = await Promise.all(Array.from({ length: 6 }, (_, i) => png(300 + i, 300)));
    const okTopic = await json<TopicDetail>(
      await postTopic(
        u.access,
        form(
          { title: "Six photos here", body: "A full set." },
          six.map((bytes) => ({ bytes })),
        ),
      ),
      201,
    );
    expect(okTopic.first_post!.attachments.map((x) => x.width)).toEqual([300, 301, 302, 303, 304, 305]);
    // A reply takes six too (its attachments are written only if the reply lands, in one statement).
    const okReply = await json<Post>(
      await postReply(
        u.access,
        okTopic.id,
        form(
          { body: "Six more." },
          six.map((bytes) => ({ bytes })),
        ),
      ),
      201,
    );
    expect(okReply.attachments.map((x) => x.width)).toEqual([300, 301, 302, 303, 304, 305]);

    const seven = await Promise.all(Array.from({ length: 7 }, () => png()));
    const postsBefore = await count("SELECT count(*) AS n FROM forum_posts");
    const e = await expectError(
      await postTopic(
        u.access,
        form(
          { title: "Seven photos here", body: "Too many." },
          seven.map((bytes) => ({ bytes })),
        ),
      ),
      400,
      "VALIDATION_ERROR",
    );
    expect(Object.keys(e.errors!)).toEqual(["image_7"]);
    await expectError(
      await postReply(
        u.access,
        okTopic.id,
        form(
          { body: "Too many." },
          seven.map((bytes) => ({ bytes })),
        ),
      ),
      400,
      "VALIDATION_ERROR",
    );
    expect(await count("SELECT count(*) AS n FROM forum_posts")).toBe(postsBefore);
    for (const bytes of seven) expect(await env.IMAGES.head(await keyOf(bytes, "png"))).toBeNull();
  });
});

describe("all or nothing", () => {
  it("a bad image among good ones stores nothing in R2 or D1, and names every problem", async () => {
    const u = await userAt("basic");
    const topic = await json<TopicDetail>(
      await call(`${API}/categories/houseplants/topics/`, { bearer: u.access, json: { title: "All or nothing", body: "ok" } }),
      201,
    );
    const good1 = await png();
    const good2 = jpeg();
    const tiny = await png(100, 100);
    const postsBefore = await count("SELECT count(*) AS n FROM forum_posts");
    const attachmentsBefore = await count("SELECT count(*) AS n FROM forum_attachments");

    const notImage: Part = { bytes: new TextEncoder().encode("not an image at all"), name: "notes.txt", type: "text/plain" };
    const e1 = await expectError(
      await postTopic(
        u.access,
        form({ title: "Good and bad photos", body: "Mixed." }, [
          { bytes: good1 },
          notImage,
          { bytes: good2, name: "b.jpg", type: "image/jpeg" },
          { bytes: tiny },
        ]),
      ),
      400,
      "VALIDATION_ERROR",
    );
    expect(e1.errors!.image_2![0]).toMatch(/^Invalid file type: text\/plain/);
    expect(e1.errors!.image_4![0]).toMatch(/^Image too small: 100x100px/);
    expect(Object.keys(e1.errors!).sort()).toEqual(["image_2", "image_4"]);

    await expectError(await postReply(u.access, topic.id, form({ body: "Mixed." }, [{ bytes: good1 }, notImage])), 400, "VALIDATION_ERROR");
    // Good photos with a bad text field: refused as well.
    const e2 = await expectError(
      await postReply(u.access, topic.id, form({ body: "   " }, [{ bytes: good1 }, { bytes: good2, name: "b.jpg", type: "image/jpeg" }])),
      400,
      "VALIDATION_ERROR",
    );
    expect(Object.keys(e2.errors!)).toEqual(["body"]);
    // A photo declared as something it is not.
    const e3 = await expectError(
      await postReply(u.access, topic.id, form({ body: "Liar" }, [{ bytes: good1 }, { bytes: good2, name: "b.png", type: "image/png" }])),
      400,
      "VALIDATION_ERROR",
    );
    expect(e3.errors!.image_2![0]).toMatch(/does not match/);

    for (const [bytes, ext] of [
      [good1, "png"],
      [good2, "jpg"],
      [tiny, "png"],
    ] as const)
      expect(await env.IMAGES.head(await keyOf(bytes, ext))).toBeNull();
    expect(await count("SELECT count(*) AS n FROM forum_posts")).toBe(postsBefore);
    expect(await count("SELECT count(*) AS n FROM forum_attachments")).toBe(attachmentsBefore);
  });

  it("a reply refused after validation (locked topic) stores no photo either", async () => {
    const u = await userAt("basic");
    const topic = await json<TopicDetail>(
      await call(`${API}/categories/houseplants/topics/`, { bearer: u.access, json: { title: "Soon to be locked", body: "ok" } }),
      201,
    );
    await env.DB.prepare("UPDATE forum_topics SET is_locked = 1 WHERE id = ?").bind(topic.id).run();
    const photo = await png();
    await expectError(await postReply(u.access, topic.id, form({ body: "Photo reply" }, [{ bytes: photo }])), 403, "TOPIC_LOCKED");
    expect(await env.IMAGES.head(await keyOf(photo, "png"))).toBeNull();
    expect(await count("SELECT count(*) AS n FROM forum_posts WHERE topic_id = ?", topic.id)).toBe(1);
  });
});

describe("deletes", () => {
  it("a soft-deleted post shows no attachments; the others keep theirs", async () => {
    const u = await userAt("basic");
    const first = await png();
    const second = await png();
    const topic = await json<TopicDetail>(
      await postTopic(u.access, form({ title: "Deleting a photo reply", body: "Opening." }, [{ bytes: first }])),
      201,
    );
    const reply = await json<Post>(await postReply(u.access, topic.id, form({ body: "Oops, wrong plant." }, [{ bytes: second }])), 201);
    expect(reply.attachments).toHaveLength(1);
    expect((await call(`${API}/posts/${reply.id}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);

    const thread = await posts(topic.id);
    const deleted = thread.results.find((p) => p.id === reply.id)!;
    expect(deleted).toMatchObject({ is_deleted: true, body: "[deleted]", attachments: [] });
    expect(thread.results.find((p) => p.is_first_post)!.attachments.map((x) => x.url)).toEqual([await urlOf(first, "png")]);
    expect((await json<TopicDetail>(await call(`${API}/topics/${topic.id}/`), 200)).first_post!.attachments).toHaveLength(1);
  });

  // Review helper-148: a deleted post kept its attachment rows, so its photos stayed stored (and
  // their URLs served) for nobody, and counted toward its author's storage allowance for good —
  // while docs/api.md § Your photo storage says deleting a forum post frees its bytes.
  it("deleting a post removes its attachments: its photo is released and its bytes leave the author's storage", async () => {
    const u = await userAt("basic");
    const first = await png();
    const second = await png();
    const used = async () =>
      (await json<{ used_bytes: number }>(await call("/api/v1/auth/user/storage/", { bearer: u.access }), 200)).used_bytes;
    const topic = await json<TopicDetail>(
      await postTopic(u.access, form({ title: "Freeing a photo", body: "Opening." }, [{ bytes: first }])),
      201,
    );
    const withTopic = await used();
    const reply = await json<Post>(await postReply(u.access, topic.id, form({ body: "Wrong plant, sorry." }, [{ bytes: second }])), 201);
    expect(await used()).toBeGreaterThan(withTopic);
    const key = await keyOf(second, "png");

    expect((await call(`${API}/posts/${reply.id}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    expect(await count("SELECT count(*) AS n FROM forum_attachments WHERE post_id = ?", reply.id)).toBe(0);
    expect(await env.IMAGES.head(key)).toBeNull();
    await expectError(await call(await urlOf(second, "png")), 404, "NOT_FOUND");
    expect(await used()).toBe(withTopic);
    // The opening post keeps its photo.
    expect(await env.IMAGES.head(await keyOf(first, "png"))).not.toBeNull();
  });

  it("deleting an identification request keeps a photo a post still shows; deleting the topic releases it", async () => {
    const u = await userAt("basic");
    const photo = await png();
    const key = await keyOf(photo, "png");
    const topic = await json<TopicDetail>(
      await postTopic(u.access, form({ title: "Same photo as my ID", body: "What is it?" }, [{ bytes: photo }])),
      201,
    );

    // An identification request of the same user with the same photo (content-addressed: one object).
    const requestId = crypto.randomUUID();
    await env.DB.prepare(
      "INSERT INTO identification_requests (id, user_id, status, image_hashes, organs) VALUES (?, ?, 'pending', ?, '[\"auto\"]')",
    )
      .bind(requestId, u.userId, JSON.stringify([key.slice("images/".length)]))
      .run();
    expect((await call(`/api/v1/plant-identification/requests/${requestId}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    expect(await env.IMAGES.head(key)).not.toBeNull();
    expect((await call(topic.first_post!.attachments[0]!.url)).status).toBe(200);

    // Removing the topic removes its attachments, and the photo nothing else uses any more.
    expect((await call(`${API}/topics/${topic.id}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    expect(await count("SELECT count(*) AS n FROM forum_attachments WHERE image = ?", key.slice("images/".length))).toBe(0);
    expect(await env.IMAGES.head(key)).toBeNull();
    await expectError(await call(topic.first_post!.attachments[0]!.url), 404, "NOT_FOUND");
  });
});
