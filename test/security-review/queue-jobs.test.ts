// Review helper-52: queue jobs and Idempotency-Key. Each test failed on the code before its fix
// and names the promise it kept: "a failed job leaves consistent state and tells the user;
// nothing is lost, nothing is sent twice".
import { createExecutionContext, createMessageBatch, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { createLogger } from "../../src/lib/logger";
import { claimRequests, IdentificationRequests, retryOwnRequest } from "../../src/services/queued-requests";
import { makePng } from "../helpers/images";
import { BASE, freshIp } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { deliverJobs, NO_QUEUE } from "../helpers/queue";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";
import { openReadySocket } from "../helpers/ws";
import { eventually } from "../helpers/wait";

useEmulators();

const photo = () => makePng(320, 240, { seed: `h52-${Math.random()}` });

const deliver = deliverJobs;

const requestRow = async (id: string) =>
  (await env.DB.prepare(
    "SELECT status, lease_expires_at AS lease, (SELECT count(*) FROM identification_results r WHERE r.request_id = q.id) AS results FROM identification_requests q WHERE id = ?",
  )
    .bind(id)
    .first<{ status: string; lease: string | null; results: number }>())!;

const statementText = (st: D1PreparedStatement) => String((st as unknown as { statement?: string }).statement ?? "");

/** A D1 binding that refuses every batch (a D1 outage during a claim). */
const refusingDb = new Proxy(env.DB, {
  get(target, prop) {
    if (prop === "batch")
      return async () => {
        throw new Error("D1_ERROR: simulated outage");
      };
    const value = Reflect.get(target, prop, target);
    return typeof value === "function" ? value.bind(target) : value;
  },
});

describe("queue jobs: leases and completion", () => {
  it("a duplicate delivery whose batch claim fails must not release a request another delivery is running", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await photo());
    const job = { type: "identify", request_id: id, user_id: u.userId };

    // Delivery A runs the job for real. Just before A's completion batch reaches D1, a duplicate
    // of the same message (another batch, another isolate) is delivered while D1 hiccups on its
    // claim: the crash handler of jobs/queue.ts "releases" the request it never claimed.
    let duplicate: Awaited<ReturnType<typeof deliver>> | undefined;
    const racing = new Proxy(env.DB, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (prop !== "batch") return typeof value === "function" ? value.bind(target) : value;
        return async (statements: D1PreparedStatement[]) => {
          if (!duplicate && statements.some((st) => /identification_results/.test(statementText(st)))) {
            duplicate = await deliver([job], { ...env, DB: refusingDb });
          }
          return target.batch(statements);
        };
      },
    });
    const a = await deliver([job], { ...env, DB: racing });
    expect(duplicate, "the duplicate ran during A's job").toBeDefined();
    expect(duplicate!.retried).toHaveLength(1);
    expect(a.acked).toHaveLength(1);

    // A had the lease and the providers' answer: the request must end with A's results.
    const after = await requestRow(id);
    expect(after.status, "A's completion must not be voided by a delivery that never held the lease").toMatch(/identified|needs_help/);
    expect(after.results).toBeGreaterThan(0);
  });

  it("the same, directly: a failed claim leaves another delivery's live lease alone", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await photo());
    // Delivery A holds the lease (claimed, running).
    const [held] = await claimRequests(env, IdentificationRequests, [id]);
    expect(held?.status).toBe("processing");
    const before = await requestRow(id);

    const dup = await deliver([{ type: "identify", request_id: id, user_id: u.userId }], { ...env, DB: refusingDb });
    expect(dup.retried).toHaveLength(1);

    expect(await requestRow(id)).toMatchObject({ status: "processing", lease: before.lease });
  });

  it("a job that dies after its completion committed still tells the owner's socket it completed (here or on redelivery)", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await photo());
    const socket = await openReadySocket(`/ws/plant-identification/requests/${id}/`, { bearer: u.access });
    const job = { type: "identify", request_id: id, user_id: u.userId };

    // D1 answers the completion's batch, then goes away for the rest of this delivery (a D1 blip,
    // or the isolate evicted): the job throws after the request is already final.
    let completed = false;
    const dying = new Proxy(env.DB, {
      get(target, prop) {
        if (completed) throw new Error("D1_ERROR: simulated outage after completion");
        const value = Reflect.get(target, prop, target);
        if (prop !== "batch") return typeof value === "function" ? value.bind(target) : value;
        return async (statements: D1PreparedStatement[]) => {
          const result = await target.batch(statements);
          const texts = statements.map(statementText);
          // The completion's batch: its results and its "ready" notification.
          if (texts.some((t) => /identification_results/i.test(t)) && texts.some((t) => /into "?notifications"?/i.test(t)))
            completed = true;
          return result;
        };
      },
    });
    const first = await deliver([job], { ...env, DB: dying });
    expect(completed).toBe(true);
    expect(first.acked.length + first.retried.length).toBe(1);
    expect((await requestRow(id)).status).toMatch(/identified|needs_help/);

    // The queue redelivers the message, D1 is back.
    const again = await deliver([job], env, 2);
    expect(again.acked).toHaveLength(1);

    await eventually(
      () => socket.messages.find((m) => m.type === "completed" && m.request_id === id),
      3000,
      () => JSON.stringify(socket.messages.map((m) => m.stage ?? m.type)),
    );
    socket.ws.close(1000);
  });
});

describe("queue jobs: telling the owner", () => {
  it("a request the owner retried that fails again tells them again (not only an already-read notice of the first failure)", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await photo());
    const job = { type: "identify", request_id: id, user_id: u.userId };
    const dlq = async () => {
      const batch = createMessageBatch("plant-identify-dlq", [
        { id: `dlq-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body: job },
      ]);
      const ctx = createExecutionContext();
      await worker.queue(batch, env, ctx);
      await waitOnExecutionContext(ctx);
    };
    const unreadFailures = async () =>
      (await env.DB.prepare(
        "SELECT count(*) AS n FROM notifications WHERE user_id = ? AND type = 'identification_failed' AND is_read = 0 AND json_extract(data, '$.request_id') = ?",
      )
        .bind(u.userId, id)
        .first<{ n: number }>())!.n;

    // First run dead-letters: failed, and the owner is told (they read it).
    await dlq();
    expect(await unreadFailures()).toBe(1);
    await env.DB.prepare("UPDATE notifications SET is_read = 1 WHERE user_id = ?").bind(u.userId).run();

    // The owner retries it (API.md §2.2 retry/); the queue is replaced so only our deliveries run it.
    const retried = await retryOwnRequest(
      { ...env, IDENTIFY_QUEUE: NO_QUEUE },
      IdentificationRequests,
      { userId: u.userId, address: "unknown" },
      id,
      createLogger({}),
    );
    expect(retried.status).toBe("pending");

    // The retried job fails again (dead-lettered): the request is failed — and the owner?
    await dlq();
    const row = await env.DB.prepare("SELECT status FROM identification_requests WHERE id = ?").bind(id).first<{ status: string }>();
    expect(row!.status).toBe("failed");
    expect(await unreadFailures(), "the second failure must reach the owner (in-app, email, push), not be dropped as a duplicate").toBe(1);
  });
});

describe("Idempotency-Key: recording the answer", () => {
  const post = (u: { access: string }, key: string, title: string, bindings: typeof env) => {
    const ctx = createExecutionContext();
    const req = new Request(`${BASE}/api/v1/forum/categories/houseplants/topics/`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${u.access}`,
        "Idempotency-Key": key,
        "CF-Connecting-IP": freshIp(),
      },
      body: JSON.stringify({ title, body: "Yellow leaves after repotting: too much water?" }),
    });
    return Promise.resolve(worker.fetch!(req as Request<unknown, IncomingRequestCfProperties>, bindings, ctx)).then(async (res) => {
      await waitOnExecutionContext(ctx);
      return res;
    });
  };
  const topics = async (title: string) =>
    (await env.DB.prepare("SELECT count(*) AS n FROM forum_topics WHERE title = ?").bind(title).first<{ n: number }>())!.n;

  /** A D1 binding that refuses the write storing a key's answer `times` times (then lets it through). */
  function refusingStore(times: number) {
    let refused = 0;
    // The request's queries run in a D1 session (middleware/d1-session.ts): intercept its prepare too.
    const refusing = <T extends object>(binding: T): T =>
      new Proxy(binding, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target) as unknown;
          if (prop === "withSession") return (...args: unknown[]) => refusing((value as (...a: unknown[]) => object).apply(target, args));
          if (prop !== "prepare") return typeof value === "function" ? value.bind(target) : value;
          return (query: string) => {
            if (refused < times && /^update "idempotency_keys" set "state"/i.test(query)) {
              refused++;
              throw new Error("D1_ERROR: simulated blip storing the answer");
            }
            return (value as (q: string) => unknown).call(target, query);
          };
        },
      });
    return { db: refusing(env.DB), refused: () => refused };
  }

  it("a write that succeeded is not run a second time when storing its answer failed (no 500 for a done write, no duplicate on retry)", async () => {
    const u = await bearerUser();
    const key = `h52-${crypto.randomUUID()}`;
    const title = `Idem store failure ${key}`;

    // D1 refuses the one write that stores the answer (after the topic was written).
    const store = refusingStore(1);
    const first = await post(u, key, title, { ...env, DB: store.db });
    expect(store.refused()).toBe(1);
    expect(await topics(title)).toBe(1); // the write happened
    const firstStatus = first.status;

    // The client saw a failure and retries with the same key once the lock runs out (2 min).
    await env.DB.prepare("UPDATE idempotency_keys SET locked_until = ? WHERE user_id = ? AND key = ?")
      .bind(new Date(Date.now() - 1000).toISOString(), u.userId, key)
      .run();
    const retry = await post(u, key, title, env);
    expect(retry.status).toBeLessThan(300);
    expect(
      { firstStatus, topics: await topics(title) },
      "one write for one key: the retry must replay (or the first must have answered its success), never write again",
    ).toEqual({ firstStatus: 201, topics: 1 });
  });

  it("when D1 refuses every try at storing it, the done write still answers 201, and a retry meanwhile waits (409)", async () => {
    const u = await bearerUser();
    const key = `h52-${crypto.randomUUID()}`;
    const title = `Idem store down ${key}`;
    const store = refusingStore(Number.POSITIVE_INFINITY);
    const first = await post(u, key, title, { ...env, DB: store.db });
    expect(store.refused()).toBe(3);
    expect(first.status).toBe(201);
    expect(await topics(title)).toBe(1);
    // The key was left running: a retry within its lock is told to wait, and writes nothing.
    const retry = await post(u, key, title, env);
    expect(retry.status).toBe(409);
    expect(((await retry.json()) as { code: string }).code).toBe("IDEMPOTENCY_KEY_IN_USE");
    expect(await topics(title)).toBe(1);
  });
});
