/**
 * Idempotency-Key on unsafe POSTs (issue 13 item 1, API.md §5d), end to end through the Worker:
 * replay, payload mismatch, concurrent use of one key, a crashed holder, failures that release
 * the key, per-user scope, uploads re-encoded with a new multipart boundary, and the document.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { claimIdempotencyKey, IDEMPOTENCY_TTL_MS, purgeExpiredIdempotencyKeys } from "../../src/services/idempotency";
import { makePng } from "../helpers/images";
import { call, expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();

const TOPICS = "/api/v1/forum/categories/houseplants/topics/";
let n = 0;
const newKey = () => `key-${Date.now()}-${++n}-${Math.random().toString(36).slice(2)}`;

function postTopic(bearer: string, key: string | undefined, title: string) {
  return call(TOPICS, {
    bearer,
    json: { title, body: "Is this leaf spot a fungus, or too much sun?" },
    headers: key === undefined ? {} : { "Idempotency-Key": key },
  });
}

/** A queued identification of one leaf photo, `file`, under Idempotency-Key `key`. */
function postUpload(bearer: string, key: string, file: File) {
  const form = new FormData();
  form.append("image_1", file);
  form.append("organs", "leaf");
  return call("/api/v1/plant-identification/requests/", { method: "POST", body: form, bearer, headers: { "Idempotency-Key": key } });
}

async function topicsTitled(title: string): Promise<number> {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM forum_topics WHERE title = ?").bind(title).first<{ n: number }>();
  return row!.n;
}

describe("Idempotency-Key", () => {
  it("replays the first answer to a retry with the same key and payload, and writes once", async () => {
    const u = await bearerUser();
    const key = newKey();
    const title = `Leaf spots ${key}`;
    const first = await postTopic(u.access, key, title);
    expect(first.status).toBe(201);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    const firstBody = await first.json();

    const retry = await postTopic(u.access, key, title);
    expect(retry.status).toBe(201);
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    expect(retry.headers.get("Content-Type")).toMatch(/application\/json/);
    expect(retry.headers.get("Cache-Control")).toBe("private, no-store");
    expect(await retry.json()).toEqual(firstBody);
    expect(await topicsTitled(title)).toBe(1);

    // Without a key, the same payload is a new write (the header is what makes retries safe).
    expect((await postTopic(u.access, undefined, title)).status).toBe(201);
    expect(await topicsTitled(title)).toBe(2);
  });

  it("refuses the same key with another payload or on another path (422), changing nothing", async () => {
    const u = await bearerUser();
    const key = newKey();
    const title = `First ${key}`;
    expect((await postTopic(u.access, key, title)).status).toBe(201);

    const other = `Second ${key}`;
    await expectError(await postTopic(u.access, key, other), 422, "IDEMPOTENCY_KEY_REUSED");
    expect(await topicsTitled(other)).toBe(0);

    const elsewhere = await call("/api/v1/plant-identification/collections/", {
      bearer: u.access,
      json: { name: `Balcony ${key}` },
      headers: { "Idempotency-Key": key },
    });
    await expectError(elsewhere, 422, "IDEMPOTENCY_KEY_REUSED");
    const made = await env.DB.prepare("SELECT count(*) AS n FROM collections WHERE name = ?").bind(`Balcony ${key}`).first<{ n: number }>();
    expect(made!.n).toBe(0);
  });

  it("lets exactly one of many concurrent requests with one key run; the others wait (409) or replay it", async () => {
    const u = await bearerUser();
    const key = newKey();
    const title = `Concurrent ${key}`;
    const answers = await Promise.all(Array.from({ length: 8 }, () => postTopic(u.access, key, title)));
    const statuses = answers.map((r) => r.status);
    expect(
      statuses.every((s) => s === 201 || s === 409),
      statuses.join(","),
    ).toBe(true);
    const created = answers.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    const ids = new Set(await Promise.all(created.map(async (r) => ((await r.json()) as { id: string }).id)));
    expect(ids.size).toBe(1);
    for (const r of answers.filter((a) => a.status === 409)) {
      const body = (await r.json()) as { code: string };
      expect(body.code).toBe("IDEMPOTENCY_KEY_IN_USE");
      expect(Number(r.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    }
    expect(await topicsTitled(title)).toBe(1);
    // Once it has finished, every retry replays the one answer.
    const later = await postTopic(u.access, key, title);
    expect(later.status).toBe(201);
    expect(((await later.json()) as { id: string }).id).toBe([...ids][0]);
  });

  it("answers 409 while another request holds the key, and lets a retry take over a holder that died", async () => {
    const u = await bearerUser();
    const key = newKey();
    const title = `Held ${key}`;
    // Claim the key as the request itself would (same fingerprint), then leave it running.
    const probe = await postTopic(u.access, key, title);
    expect(probe.status).toBe(201);
    const { fingerprint } = (await env.DB.prepare("SELECT fingerprint FROM idempotency_keys WHERE user_id = ? AND key = ?")
      .bind(u.userId, key)
      .first<{ fingerprint: string }>())!;
    const held = newKey();
    const soon = new Date(Date.now() + 60_000).toISOString();
    await env.DB.prepare(
      "INSERT INTO idempotency_keys (user_id, key, fingerprint, claim, state, locked_until, expires_at) VALUES (?, ?, ?, 'crashed', 'running', ?, ?)",
    )
      .bind(u.userId, held, fingerprint, soon, new Date(Date.now() + IDEMPOTENCY_TTL_MS).toISOString())
      .run();
    // The fingerprint covers method, path and body, not the key: the held key's payload is the same topic.
    await expectError(await postTopic(u.access, held, title), 409, "IDEMPOTENCY_KEY_IN_USE");

    // The holder's lock runs out (its isolate died): the next retry runs the request.
    await env.DB.prepare("UPDATE idempotency_keys SET locked_until = ? WHERE user_id = ? AND key = ?")
      .bind(new Date(Date.now() - 1000).toISOString(), u.userId, held)
      .run();
    const taken = await postTopic(u.access, held, title);
    expect(taken.status).toBe(201);
    expect(taken.headers.get("Idempotent-Replayed")).toBeNull();
    const row = await env.DB.prepare("SELECT state, claim FROM idempotency_keys WHERE user_id = ? AND key = ?")
      .bind(u.userId, held)
      .first<{ state: string; claim: string }>();
    expect(row).toMatchObject({ state: "done" });
    expect(row!.claim).not.toBe("crashed");
  });

  it("does not keep failures: a refused request releases its key and the corrected retry runs", async () => {
    const u = await bearerUser();
    const key = newKey();
    const bad = await call(TOPICS, { bearer: u.access, json: { title: "", body: "" }, headers: { "Idempotency-Key": key } });
    await expectError(bad, 400, "VALIDATION_ERROR");
    const row = await env.DB.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE user_id = ? AND key = ?")
      .bind(u.userId, key)
      .first<{ n: number }>();
    expect(row!.n).toBe(0);
    const title = `Corrected ${key}`;
    expect((await postTopic(u.access, key, title)).status).toBe(201);
    expect(await topicsTitled(title)).toBe(1);
  });

  it("does not keep an answer that carries a secret: a calendar feed URL is never stored, and a retry issues a new one", async () => {
    const u = await bearerUser();
    const key = newKey();
    const issue = () => call("/api/v1/reminders/calendar-feed/", { method: "POST", bearer: u.access, headers: { "Idempotency-Key": key } });
    const first = await issue();
    expect(first.status).toBe(201);
    const { url } = await first.json<{ url: string }>();
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE user_id = ? AND key = ?")
      .bind(u.userId, key)
      .first<{ n: number }>();
    expect(stored!.n).toBe(0);
    const retry = await issue();
    expect(retry.status).toBe(201);
    expect(retry.headers.get("Idempotent-Replayed")).toBeNull();
    const second = await retry.json<{ url: string }>();
    expect(second.url).not.toBe(url);
    // The URL the client may never have seen is revoked; only the one it holds now works.
    expect((await call(new URL(url).pathname)).status).toBe(404);
    expect((await call(new URL(second.url).pathname)).status).toBe(200);
    const leaked = await env.DB.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE body LIKE '%calendar-feed%'").first<{
      n: number;
    }>();
    expect(leaked!.n).toBe(0);
  });

  it("does not keep a server failure: a 503 releases its key, and the same retry then runs and is kept", async () => {
    const u = await bearerUser();
    const key = newKey();
    const bytes = await makePng(320, 240, { seed: `idem-5xx-${key}` });
    const identify = () => {
      const form = new FormData();
      form.append("image", new File([bytes], "leaf.png", { type: "image/png" }));
      return call("/api/v1/plant-identification/identify/", {
        method: "POST",
        body: form,
        bearer: u.access,
        headers: { "Idempotency-Key": key },
      });
    };
    const held = async () =>
      (await env.DB.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE user_id = ? AND key = ?")
        .bind(u.userId, key)
        .first<{ n: number }>())!.n;

    emulators.plantId.setMode({ failure: "500", times: 1 });
    emulators.plantnet.setMode({ failure: "500", times: 1 });
    const failed = await identify();
    expect(failed.status).toBe(503);
    expect(failed.headers.get("Idempotent-Replayed")).toBeNull();
    expect(await held()).toBe(0);

    // The identical retry is not answered with the stored failure: it runs, reaches the providers and succeeds.
    const callsBefore = emulators.plantId.calls;
    const retry = await identify();
    expect(retry.status).toBe(200);
    expect(retry.headers.get("Idempotent-Replayed")).toBeNull();
    expect(((await retry.json()) as { success: boolean }).success).toBe(true);
    expect(emulators.plantId.calls).toBeGreaterThan(callsBefore);
    expect(await held()).toBe(1);

    // Its success is what is kept now.
    const again = await identify();
    expect(again.status).toBe(200);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
  });

  it("keeps each user's keys their own: another user's identical key and payload is a write of theirs", async () => {
    const [a, b] = [await bearerUser(), await bearerUser()];
    const key = newKey();
    const title = `Shared key ${key}`;
    const first = (await (await postTopic(a.access, key, title)).json()) as { id: string };
    const second = await postTopic(b.access, key, title);
    expect(second.status).toBe(201);
    expect(second.headers.get("Idempotent-Replayed")).toBeNull();
    expect(((await second.json()) as { id: string }).id).not.toBe(first.id);
    expect(await topicsTitled(title)).toBe(2);
  });

  it("refuses a malformed key (400) before anything runs", async () => {
    const u = await bearerUser();
    // Not RFC 8941 strings: an unescaped quote, a lone or unknown escape, an empty string.
    for (const bad of ["", " ", "x".repeat(256), "tab\there", "two words", '"a"b"', '"a\\"', '"a\\nb"', '""', `"${"x".repeat(256)}"`]) {
      const title = `Malformed ${newKey()}`;
      await expectError(await postTopic(u.access, bad, title), 400, "IDEMPOTENCY_KEY_INVALID");
      expect(await topicsTitled(title)).toBe(0);
    }
    // A structured-field string ("…") is the same key as its content.
    const key = newKey();
    const title = `Quoted ${key}`;
    expect((await postTopic(u.access, `"${key}"`, title)).status).toBe(201);
    expect((await postTopic(u.access, key, title)).headers.get("Idempotent-Replayed")).toBe("true");
    // A quoted key may hold spaces and escaped quotes; it is the unescaped text.
    const spaced = `${newKey()} "x" \\`;
    const spacedTitle = `Spaced ${key}`;
    const sf = `"${spaced.replace(/["\\]/g, "\\$&")}"`;
    expect((await postTopic(u.access, sf, spacedTitle)).status).toBe(201);
    expect((await postTopic(u.access, sf, spacedTitle)).headers.get("Idempotent-Replayed")).toBe("true");
    expect(await topicsTitled(spacedTitle)).toBe(1);
  });

  it("replays an upload retried with a new multipart boundary: one request, one stored photo set", async () => {
    const u = await bearerUser();
    const key = newKey();
    const bytes = await makePng(320, 240, { seed: `idem-${key}` });
    // A new FormData each time: the client re-encodes the retry with a fresh boundary.
    const send = () => postUpload(u.access, key, new File([bytes], "leaf.png", { type: "image/png" }));
    const first = await send();
    expect(first.status).toBe(202);
    const { request_id } = (await first.json()) as { request_id: string };
    const retry = await send();
    expect(retry.status).toBe(202);
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await retry.json()) as { request_id: string }).request_id).toBe(request_id);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM identification_requests WHERE user_id = ?")
      .bind(u.userId)
      .first<{ n: number }>();
    expect(rows!.n).toBe(1);

    // The same key with another photo is another payload.
    const otherPhoto = await makePng(320, 240, { seed: `other-${key}` });
    const mismatch = await postUpload(u.access, key, new File([otherPhoto], "leaf.png", { type: "image/png" }));
    await expectError(mismatch, 422, "IDEMPOTENCY_KEY_REUSED");
  });

  it("tells apart uploads whose file name and type differ only where a colon falls (422, not a replay)", async () => {
    const u = await bearerUser();
    const key = newKey();
    const bytes = await makePng(320, 240, { seed: `colon-${key}` });
    // Joined with separators, ("leaf:x.png", "image/png") and ("leaf", "x.png:image/png") read
    // the same; they are two different files.
    const send = (name: string, type: string) => postUpload(u.access, key, new File([bytes], name, { type }));
    expect((await send("leaf:x.png", "image/png")).status).toBe(202);
    const other = await send("leaf", "x.png:image/png");
    expect(other.headers.get("Idempotent-Replayed")).toBeNull();
    await expectError(other, 422, "IDEMPOTENCY_KEY_REUSED");
  });

  it("refuses a malformed multipart body with a key (400) and keeps no claim on the key", async () => {
    const u = await bearerUser();
    const key = newKey();
    const res = await call("/api/v1/plant-identification/requests/", {
      method: "POST",
      body: "--nope\r\nnot a multipart body",
      bearer: u.access,
      headers: { "Content-Type": "multipart/form-data; boundary=xyz", "Idempotency-Key": key },
    });
    await expectError(res, 400, "MALFORMED_REQUEST");
    const held = await env.DB.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE user_id = ? AND key = ?")
      .bind(u.userId, key)
      .first<{ n: number }>();
    expect(held!.n).toBe(0);
  });

  it("ignores the header where keys cannot be a user's own: anonymous and auth requests", async () => {
    const u = await bearerUser();
    const key = newKey();
    const login = () =>
      call("/api/v1/auth/token/", { json: { username: u.username, password: "Fern-Gully-Moss-42!" }, headers: { "Idempotency-Key": key } });
    const [a, b] = [await login(), await login()];
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.headers.get("Idempotent-Replayed")).toBeNull();
    expect(((await a.json()) as { access: string }).access).not.toBe(((await b.json()) as { access: string }).access);
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE key = ?").bind(key).first<{ n: number }>();
    expect(stored!.n).toBe(0);
  });

  it("expires answers after 24 h: the key is then free for a new request, and housekeeping drops it", async () => {
    const u = await bearerUser();
    const key = newKey();
    expect((await postTopic(u.access, key, `Day one ${key}`)).status).toBe(201);
    const later = Date.now() + IDEMPOTENCY_TTL_MS + 1000;
    expect(await claimIdempotencyKey(env, u.userId, key, "another-fingerprint", Date.now())).toEqual({ kind: "reused" });
    expect((await claimIdempotencyKey(env, u.userId, key, "another-fingerprint", later)).kind).toBe("claimed");
    const purged = await purgeExpiredIdempotencyKeys(env, later + IDEMPOTENCY_TTL_MS + 1000);
    expect(purged).toBeGreaterThanOrEqual(1);
    const left = await env.DB.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE user_id = ? AND key = ?")
      .bind(u.userId, key)
      .first<{ n: number }>();
    expect(left!.n).toBe(0);
  });

  it("is declared in the OpenAPI document on signed-in POSTs, not on the auth endpoints", async () => {
    const doc = (await (await call("/api/openapi.json")).json()) as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; responses: Record<string, unknown> }>>;
    };
    const has = (path: string, method: string) =>
      (doc.paths[path]?.[method]?.parameters ?? []).some((p) => p.name === "Idempotency-Key" && p.in === "header");
    const posts = Object.entries(doc.paths).filter(([path, ops]) => ops.post && !path.includes("/auth/"));
    const declared = posts.filter(([path]) => has(path, "post")).map(([path]) => path);
    expect(declared).toContain("/api/v1/forum/categories/{slug}/topics");
    expect(declared.length).toBeGreaterThan(20);
    expect(doc.paths["/api/v1/forum/categories/{slug}/topics"]!.post!.responses["422"]).toBeDefined();
    expect(has("/api/v1/auth/login", "post")).toBe(false);
  });
});
