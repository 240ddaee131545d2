/**
 * The AsyncAPI document the Worker serves against what its WebSockets really send: real sockets
 * through the Worker, every kind of message the service can be made to send, each frame checked
 * against the JSON Schema the served document gives its type (with @cfworker/json-schema, an
 * interpreting validator: workerd forbids the code generation Ajv uses), and every close code seen
 * checked against the codes the document lists for its channel.
 */
import { Validator } from "@cfworker/json-schema";
import { createExecutionContext, createMessageBatch, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { deliverDueReminders } from "../../src/services/reminders";
import { BASE, call, jsonWithStatus } from "../helpers/http";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, registerWeb } from "../helpers/users";
import { eventually } from "../helpers/wait";
import { pendingRequest } from "../helpers/requests";
import { upgrade } from "../helpers/ws";

const emulators = useEmulators();

interface Doc {
  asyncapi: string;
  channels: Record<string, { address: string; messages: Record<string, { $ref: string }>; "x-close-codes": { code: number }[] }>;
  components: { messages: Record<string, { name: string; payload: Record<string, unknown> }> };
}

let doc: Doc;
const validators = new Map<string, Validator>();
/** What the sockets of this file received and closed with, over all tests. */
const seen = { types: new Set<string>(), stages: new Set<string>(), closeCodes: new Set<number>() };

beforeAll(async () => {
  const res = await call("/api/asyncapi.json");
  expect(res.status).toBe(200);
  expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
  doc = (await res.json()) as Doc;
  for (const [name, message] of Object.entries(doc.components.messages)) validators.set(name, new Validator(message.payload, "7", false));
});

type ChannelName = "userEvents" | "requestEvents";

/** The component message a channel lists under `name`, or undefined when the channel does not list it. */
function channelMessage(channel: ChannelName, name: string): string | undefined {
  const ref = doc.channels[channel]!.messages[name]?.$ref;
  return ref?.replace("#/components/messages/", "");
}

/**
 * Checks a frame as the document names it (the text `pong` is `pongText`, JSON frames go by their
 * `type`): the channel must list the message and the frame must match its payload schema.
 */
function checkFrame(channel: ChannelName, frame: string): void {
  const message = frame === "pong" ? null : (JSON.parse(frame) as Record<string, unknown>);
  const name = channelMessage(channel, message === null ? "pongText" : String(message.type));
  expect(name, `${channel} does not document ${frame}`).toBeDefined();
  const result = validators.get(name!)!.validate(message ?? frame);
  expect(result.errors, `${frame} breaks the ${name} schema`).toEqual([]);
  seen.types.add(name!);
  if (message?.type === "progress") seen.stages.add(String(message.stage));
}

interface Socket {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  texts: string[];
  closed: Promise<number>;
}

/** A real socket through the Worker; each frame is checked against the document as it arrives. */
async function open(
  channel: ChannelName,
  path: string,
  auth: { bearer?: string; cookie?: string } = {},
  failures: unknown[] = [],
): Promise<Socket> {
  const ws = await upgrade(path, auth);
  const socket: Socket = { ws, messages: [], texts: [], closed: Promise.resolve(0) };
  socket.closed = new Promise((resolve) =>
    ws.addEventListener("close", (e) => {
      const listed = doc.channels[channel]!["x-close-codes"].map((c) => c.code);
      // 1000/1005: a normal ending the test itself asked for.
      if (![1000, 1005].includes(e.code)) {
        if (!listed.includes(e.code)) failures.push(`close code ${e.code} not documented for ${channel}`);
        seen.closeCodes.add(e.code);
      }
      resolve(e.code);
    }),
  );
  ws.addEventListener("message", (e) => {
    const frame = String(e.data);
    if (frame === "pong") socket.texts.push(frame);
    else socket.messages.push(JSON.parse(frame) as Record<string, unknown>);
    try {
      checkFrame(channel, frame);
    } catch (err) {
      failures.push(err);
    }
  });
  ws.accept();
  return socket;
}

let seed = 0;
const photo = () => makePng(320, 240, { seed: `asyncapi-${++seed}-${Math.random()}` });

async function upload(path: string, bearer: string, fields: Record<string, string> = {}) {
  const form = new FormData();
  form.append("image_1", new File([await photo()], "p.png", { type: "image/png" }));
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return jsonWithStatus<{ request_id: string }>(
    await call(`/api/v1/plant-identification/${path}/`, { method: "POST", body: form, bearer }),
    202,
  );
}

/** A pending request row whose photo is in R2 (or not), for jobs delivered by the test itself. */
async function pendingIdentification(userId: string, keepPhoto = true) {
  return pendingRequest("identify", userId, await photo(), { keepPhoto });
}

async function deliver(requestId: string, userId: string) {
  const batch = createMessageBatch("plant-identify", [
    { id: `asyncapi-${requestId}`, timestamp: new Date(), attempts: 1, body: { type: "identify", request_id: requestId, user_id: userId } },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  await waitOnExecutionContext(ctx);
}

const completedFor = (socket: Socket, requestId: string) =>
  eventually(() => socket.messages.find((m) => m.type === "completed" && m.request_id === requestId), 45_000);

describe("the served AsyncAPI document matches what the sockets send", () => {
  const failures: unknown[] = [];
  afterAll(() => expect(failures).toEqual([]));

  it("is AsyncAPI 3.0 with both channels, served on the public URL", async () => {
    expect(doc.asyncapi).toBe("3.0.0");
    expect(Object.values(doc.channels).map((c) => c.address)).toEqual(["/ws/", "/ws/plant-identification/requests/{request_id}/"]);
    expect((doc as unknown as { servers: { api: { host: string } } }).servers.api.host).toBe(new URL(BASE).host);
    // Built on PUBLIC_API_URL, never on the Host header.
    const spoofed = (await (await exports.default.fetch(new Request("https://evil.example/api/asyncapi.json"))).json()) as typeof doc;
    expect((spoofed as unknown as { servers: { api: { host: string } } }).servers.api.host).toBe(new URL(BASE).host);
  });

  it("is linked from the docs page", async () => {
    const page = await call("/api/docs");
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('href="/api/asyncapi.json"');
  });

  it("a queued identification: init, every progress stage of a real job, completed; replayed to a late request socket", async () => {
    const u = await bearerUser();
    const all = await open("userEvents", "/ws/", { bearer: u.access }, failures);
    await eventually(() => all.messages.find((m) => m.type === "init"));
    const { request_id } = await upload("requests", u.access);
    // Opened with a ticket, as a browser would, while the job may still be running.
    const { ticket } = await jsonWithStatus<{ ticket: string }>(
      await call("/api/v1/auth/ws-ticket/", { method: "POST", bearer: u.access }),
      200,
    );
    const one = await open("requestEvents", `/ws/plant-identification/requests/${request_id}/?ticket=${ticket}`, {}, failures);
    await completedFor(all, request_id);
    await completedFor(one, request_id);
    expect(one.messages[0]).toEqual({ type: "init", request_id, message: "connected" });
    for (const stage of [
      "queued",
      "processing_start",
      "plant_id_start",
      "plant_id_done",
      "plantnet_start",
      "plantnet_done",
      "merge_done",
      "care_start",
      "care_done",
    ]) {
      expect(seen.stages).toContain(stage);
    }
    all.ws.close(1000);
    one.ws.close(1000);
    expect(failures).toEqual([]);
  }, 60_000);

  it("heartbeats: the text ping gets the text pong, the JSON ping the JSON pong", async () => {
    const u = await bearerUser();
    const socket = await open("userEvents", "/ws/", { bearer: u.access }, failures);
    await eventually(() => socket.messages.find((m) => m.type === "init"));
    socket.ws.send("ping");
    await eventually(() => socket.texts.includes("pong"));
    socket.ws.send(JSON.stringify({ type: "ping" }));
    await eventually(() => socket.messages.find((m) => m.type === "pong"));
    socket.ws.close(1000);
    expect(failures).toEqual([]);
  });

  it("a failing job: rate_limited and retry_scheduled; a job that cannot run: error then completed (failed)", async () => {
    const u = await bearerUser();
    const socket = await open("userEvents", "/ws/", { bearer: u.access }, failures);
    await eventually(() => socket.messages.find((m) => m.type === "init"));
    emulators.plantId.setMode({ failure: "429", retryAfterSeconds: 30 });
    emulators.plantnet.setMode({ failure: "500" });
    await deliver(await pendingIdentification(u.userId), u.userId);
    await eventually(() => socket.messages.find((m) => m.stage === "retry_scheduled"));
    expect(seen.stages).toContain("rate_limited");

    const gone = await pendingIdentification(u.userId, false);
    const follower = await open("requestEvents", `/ws/plant-identification/requests/${gone}/`, { bearer: u.access }, failures);
    await deliver(gone, u.userId);
    const completed = await completedFor(follower, gone);
    expect(completed.status).toBe("failed");
    expect(follower.messages.map((m) => m.type)).toEqual(["init", "progress", "error", "completed"]);
    socket.ws.close(1000);
    follower.ws.close(1000);
    expect(failures).toEqual([]);
  });

  it("a diagnosis: health_start and health_done", async () => {
    const u = await bearerUser();
    const socket = await open("userEvents", "/ws/", { bearer: u.access }, failures);
    await eventually(() => socket.messages.find((m) => m.type === "init"));
    const { request_id } = await upload("disease-requests", u.access, {
      symptoms_description: "Yellow leaves with brown spots spreading fast.",
    });
    await completedFor(socket, request_id);
    expect(seen.stages).toContain("health_start");
    expect(seen.stages).toContain("health_done");
    socket.ws.close(1000);
    expect(failures).toEqual([]);
  }, 60_000);

  it("a notification, on the user's channel (cookie-authenticated)", async () => {
    const web = await registerWeb();
    const socket = await open("userEvents", "/ws/", { cookie: `access_token=${web.cookies.access_token}` }, failures);
    await eventually(() => socket.messages.find((m) => m.type === "init"));
    const cookieCall = { cookies: web.cookies, headers: { "X-CSRFToken": web.csrf } };
    const plant = await jsonWithStatus<{ id: string }>(
      await call("/api/v1/plant-identification/plants/", { json: { nickname: "Ficus" }, ...cookieCall }),
      201,
    );
    await jsonWithStatus(
      await call("/api/v1/reminders/", {
        json: {
          plant_id: plant.id,
          reminder_type: "water",
          frequency: "weekly",
          first_due_at: new Date(Date.now() - 3_600_000).toISOString(),
        },
        ...cookieCall,
      }),
      201,
    );
    await deliverDueReminders(env);
    await eventually(() => socket.messages.find((m) => m.type === "notification"));
    socket.ws.close(1000);
    expect(failures).toEqual([]);
  });

  it("an updated and then a withdrawn notification, on the user's channel (a reply the user was told of is edited, then deleted)", async () => {
    const author = await bearerUser();
    const replier = await bearerUser();
    const socket = await open("userEvents", "/ws/", { bearer: author.access }, failures);
    await eventually(() => socket.messages.find((m) => m.type === "init"));
    // A socket on one of the author's requests hears none of it, and the document lists none of it there.
    const follower = await open(
      "requestEvents",
      `/ws/plant-identification/requests/${await pendingIdentification(author.userId)}/`,
      { bearer: author.access },
      failures,
    );
    await eventually(() => follower.messages.find((m) => m.type === "init"));
    const topic = await jsonWithStatus<{ id: string }>(
      await call("/api/v1/forum/categories/houseplants/topics/", {
        bearer: author.access,
        json: { title: "Leaf drop", body: "After repotting." },
      }),
      201,
    );
    const post = await jsonWithStatus<{ id: string }>(
      await call(`/api/v1/forum/topics/${topic.id}/posts/`, { bearer: replier.access, json: { body: "It will settle." } }),
      201,
    );
    await eventually(() => socket.messages.find((m) => m.type === "notification"));
    expect(
      (
        await call(`/api/v1/forum/posts/${post.id}/`, {
          method: "PATCH",
          bearer: replier.access,
          json: { body: "It will settle in a week." },
        })
      ).status,
    ).toBe(200);
    await eventually(() => socket.messages.find((m) => m.type === "notification_updated"));
    expect((await call(`/api/v1/forum/posts/${post.id}/`, { method: "DELETE", bearer: replier.access })).status).toBe(204);
    await eventually(() => socket.messages.find((m) => m.type === "notification_withdrawn"));
    expect(follower.messages.filter((m) => String(m.type).startsWith("notification"))).toEqual([]);
    expect(Object.keys(doc.channels.requestEvents!.messages).filter((name) => name.startsWith("notification"))).toEqual([]);
    socket.ws.close(1000);
    follower.ws.close(1000);
    expect(failures).toEqual([]);
  });

  it("refusals and endings close with documented codes: 4401, 4404 (another user's request as an unknown one)", async () => {
    const owner = await bearerUser();
    const other = await bearerUser();
    const id = await pendingIdentification(owner.userId);
    expect(await (await open("userEvents", "/ws/", {}, failures)).closed).toBe(4401);
    expect(await (await open("requestEvents", `/ws/plant-identification/requests/${id}/`, { bearer: other.access }, failures)).closed).toBe(
      4404,
    );
    const unknown = `/ws/plant-identification/requests/${crypto.randomUUID()}/`;
    expect(await (await open("requestEvents", unknown, { bearer: owner.access }, failures)).closed).toBe(4404);
    // A live socket whose session ends (sign-out everywhere) is closed with 4401.
    const live = await open("userEvents", "/ws/", { bearer: owner.access }, failures);
    await eventually(() => live.messages.find((m) => m.type === "init"));
    expect((await call("/api/v1/auth/logout-all/", { method: "POST", bearer: owner.access })).status).toBe(200);
    expect(await live.closed).toBe(4401);
    expect(failures).toEqual([]);
  });

  it("over this file, every message the document lists for the server was sent and matched", () => {
    const serverMessages = Object.keys(doc.components.messages).filter((name) => !["ping", "pingText"].includes(name));
    expect([...seen.types].sort()).toEqual(serverMessages.sort());
    expect([...seen.closeCodes].sort()).toEqual([4401, 4404]);
  });
});
