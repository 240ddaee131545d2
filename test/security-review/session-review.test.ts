// Review helper-56, an attack on this session's own changes (c248750..): each test failed on the
// code before its fix and says what the promise was.
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { blogPost } from "../helpers/blog";
import { fillTo } from "../helpers/caps";
import { call } from "../helpers/http";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { deliverJobs } from "../helpers/queue";
import { identifiedResult, pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";

useEmulators();

const API = "/api/v1/plant-identification";

describe("per-user caps (migration 0035) and idempotent inserts", () => {
  // The BEFORE INSERT trigger fires for INSERT … ON CONFLICT DO NOTHING too, before the conflict
  // is found: at the cap, the documented idempotent add_to_collection (a second call answers 200
  // with the plant the first made, created: false) is refused 409 PLANT_LIMIT instead.
  it("add_to_collection stays idempotent at the plant cap: the repeat answers 200 created:false, not 409 PLANT_LIMIT", async () => {
    const u = await bearerUser();
    const { resultId } = await identifiedResult(u.userId);
    await fillTo("user_plants", u.userId, 4999);
    const add = () => call(`${API}/results/${resultId}/add_to_collection/`, { bearer: u.access, json: {} });
    const first = await add();
    expect(first.status).toBe(201); // the 5 000th plant
    const firstBody = (await first.json()) as { id: string };
    const again = await add();
    const body = (await again.json()) as { id?: string; created?: boolean; code?: string };
    expect({ status: again.status, id: body.id, created: body.created }, JSON.stringify(body)).toEqual({
      status: 200,
      id: firstBody.id,
      created: false,
    });
  });
});

describe("per-user caps and duplicates", () => {
  // At the cap, a duplicate is still answered as a duplicate, not as the cap.
  it("a duplicate collection name or care card at the cap answers its own 409", async () => {
    const u = await bearerUser();
    await fillTo("collections", u.userId, 200);
    await fillTo("saved_care_instructions", u.userId, 1000);
    const dupCollection = await call(`${API}/collections/`, { bearer: u.access, json: { name: "shelf 7" } });
    expect(((await dupCollection.json()) as { code: string }).code).toBe("DUPLICATE_COLLECTION");
    const dupCard = await call(`${API}/saved-care-instructions/`, { bearer: u.access, json: { scientific_name: "Ficus Capped7" } });
    expect(((await dupCard.json()) as { code: string }).code).toBe("DUPLICATE_CARE_CARD");
  });
});

describe("Wagtail API v2: unknown query parameters", () => {
  // Test files share the Cache API: a fresh generation keeps other files' cached reads out.
  beforeEach(async () => {
    const version = Math.floor(Math.random() * 1e9);
    await env.DB.prepare("INSERT INTO blog_cache_state (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = ?")
      .bind(version, version)
      .run();
  });

  // Wagtail's own known_query_parameters include `_` (jQuery's cache-buster, wagtail#1671) and
  // `format` (DRF's renderer switch), and its detail view checks no query parameter at all: a
  // client that worked against the original gets 400 here.
  it("accepts what Wagtail accepts: `_` and `format` on the listing, a cache-buster on the detail", async () => {
    const post = await blogPost({ title: "Cache-busted read" });
    const statuses: Record<string, number> = {};
    for (const path of [
      `/api/v2/blog-posts/?_=${Date.now()}`,
      "/api/v2/blog-posts/?format=json",
      `/api/v2/blog-posts/${post.id}/?_=${Date.now()}`,
    ]) {
      statuses[path.replace(/_=\d+/, "_=<ts>")] = (await call(path)).status;
    }
    expect(statuses).toEqual({
      "/api/v2/blog-posts/?_=<ts>": 200,
      "/api/v2/blog-posts/?format=json": 200,
      [`/api/v2/blog-posts/${post.id}/?_=<ts>`]: 200,
    });
  });
});

describe("queue jobs: only the claim's own delivery releases it", () => {
  const deliver = deliverJobs;
  const status = async (id: string) =>
    (await env.DB.prepare("SELECT status FROM identification_requests WHERE id = ?").bind(id).first<{ status: string }>())!.status;

  // D1 commits the claim batch but the Worker sees an error (the connection drops after the
  // commit). Before this session the crash handler put the request back to pending; now it
  // releases nothing ("a failed claim took nothing"), so the request sits in `processing` with a
  // 5-minute lease, the queue's retry (seconds later) finds the lease live and acks without work,
  // and only the cron sweep (lease + STUCK_MARGIN) ever picks it up again.
  it("a claim that committed but reported failure does not strand the request in processing", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await makePng(320, 240, { seed: `h56-${Math.random()}` }));
    const job = { type: "identify", request_id: id, user_id: u.userId };
    let lost = false;
    const commitsThenFails = new Proxy(env.DB, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (prop !== "batch") return typeof value === "function" ? value.bind(target) : value;
        return async (statements: D1PreparedStatement[]) => {
          const result = await target.batch(statements);
          if (!lost) {
            lost = true; // the claim: committed, but its answer never arrives
            throw new Error("D1_ERROR: Network connection lost.");
          }
          return result;
        };
      },
    });
    const first = await deliver([job], { ...env, DB: commitsThenFails }, 1);
    expect(lost).toBe(true);
    expect(first.retried).toHaveLength(1);

    // The queue retries the message after its backoff (seconds, well inside the 5-minute lease).
    const retry = await deliver([job], env, 2);
    expect(retry.acked).toHaveLength(1);
    expect(await status(id), "the retry must run the job, not ack it while the request stays processing").toMatch(/identified|needs_help/);
  });
});

describe("identify/ failure codes as documented", () => {
  // docs/api.md and the OpenAPI IdentifyFailure schema now say identify/'s failures, its 413
  // PAYLOAD_TOO_LARGE for the whole body included, are `{success: false, error, code}`, not the
  // error envelope. The body limit runs as app middleware before the route: a body whose
  // Content-Length is over the limit is refused there, in the envelope the seed client cannot read.
  it("a body over the upload limit answers 413 in the seed shape ({success: false, error, code})", async () => {
    const u = await bearerUser();
    const boundary = "h56boundary";
    const huge = new Uint8Array(53477376 + 1024);
    const head = new TextEncoder().encode(
      `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.png"\r\nContent-Type: image/png\r\n\r\n`,
    );
    huge.set(head, 0);
    const res = await call(`${API}/identify/`, {
      method: "POST",
      bearer: u.access,
      body: huge,
      headers: { "Content-Type": `multipart/form-data; boundary=${boundary}`, "Content-Length": String(huge.length) },
    });
    const body = (await res.json()) as Record<string, unknown>;
    expect(
      { status: res.status, success: body.success, code: body.code, hasError: typeof body.error === "string" },
      JSON.stringify(body),
    ).toEqual({
      status: 413,
      success: false,
      code: "PAYLOAD_TOO_LARGE",
      hasError: true,
    });
  });
});
