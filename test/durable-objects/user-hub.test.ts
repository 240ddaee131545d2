import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseClientMessage, type UserHub } from "../../durable-objects/user-hub";
import { CLOSE_CODES } from "../../durable-objects/user-hub-protocol";
import { eventually } from "../helpers/wait";

function hub(name: string) {
  return env.USER_HUB.get(env.USER_HUB.idFromName(name));
}

async function connect(stub: ReturnType<typeof hub>, requestId?: string, sessionId?: string) {
  const headers: Record<string, string> = { Upgrade: "websocket" };
  if (requestId) headers["X-Hub-Request-Id"] = requestId;
  if (sessionId) headers["X-Hub-Session-Id"] = sessionId;
  const res = await stub.fetch("https://user-hub/connect", { headers });
  const ws = res.webSocket!;
  const messages: { type: string; request_id?: string; stage?: string }[] = [];
  ws.addEventListener("message", (e) => {
    messages.push(JSON.parse(e.data as string));
  });
  ws.accept();
  return { ws, messages };
}

/** Waits until `messages` holds at least `count` messages (socket delivery is asynchronous). */
async function received(messages: unknown[], count: number, timeoutMs = 10_000) {
  await eventually(
    () => messages.length >= count,
    timeoutMs,
    () => `expected ${count} messages, got ${messages.length}: ${JSON.stringify(messages)}`,
  );
}

describe("UserHub (RPC and hibernatable sockets)", () => {
  it("delivers a request's messages to its followers and to all-events sockets only", async () => {
    const stub = hub("hub-user-1");
    const all = await connect(stub);
    const followA = await connect(stub, "req-a");
    const followB = await connect(stub, "req-b");
    expect(await stub.connectionCount()).toBe(3);

    const delivered = await stub.publish({ type: "progress", request_id: "req-a", stage: "queued", status: "pending", data: {} });
    expect(delivered).toBe(2);
    await received(all.messages, 2);
    await received(followA.messages, 2);
    await received(followB.messages, 1);
    expect(all.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued"]);
    expect(followA.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued"]);
    expect(followB.messages.map((m) => m.type)).toEqual(["init"]);
  });

  it("replays the last state to a late subscriber and forgets a deleted request", async () => {
    const stub = hub("hub-user-2");
    await stub.publish({ type: "completed", request_id: "req-done", status: "identified", results_count: 4 });
    const late = await connect(stub, "req-done");
    await received(late.messages, 2);
    expect(late.messages).toEqual([
      { type: "init", request_id: "req-done", message: "connected" },
      { type: "completed", request_id: "req-done", status: "identified", results_count: 4 },
    ]);
    const closed = new Promise<number>((resolve) => late.ws.addEventListener("close", (e) => resolve(e.code)));
    await stub.closeRequest("req-done", 4404, "request deleted");
    expect(await closed).toBe(4404);
    await runInDurableObject(stub, async (instance: UserHub) => {
      expect(instance.lastState("req-done")).toBeNull();
    });
  });

  it("replays every message so far to a socket that joins a running request", async () => {
    const stub = hub("hub-user-5");
    await stub.publish({ type: "progress", request_id: "req-run", stage: "queued", status: "pending", data: {} });
    await stub.publish({ type: "progress", request_id: "req-run", stage: "processing_start", status: "processing", data: { attempt: 1 } });
    const late = await connect(stub, "req-run");
    await stub.publish({ type: "progress", request_id: "req-run", stage: "plant_id_start", status: "processing", data: {} });
    await received(late.messages, 4);
    expect(late.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued", "processing_start", "plant_id_start"]);
  });

  it("starts a fresh story when a finished request is queued again (a retry): no stale completed is replayed", async () => {
    const stub = hub("hub-user-retry");
    await stub.publish({ type: "progress", request_id: "req-again", stage: "queued", status: "pending", data: {} });
    await stub.publish({ type: "error", request_id: "req-again", message: "Providers unavailable." });
    await stub.publish({ type: "completed", request_id: "req-again", status: "failed", results_count: 0 });
    await stub.publish({ type: "progress", request_id: "req-again", stage: "queued", status: "pending", data: {} });
    await stub.publish({
      type: "progress",
      request_id: "req-again",
      stage: "processing_start",
      status: "processing",
      data: { attempt: 1 },
    });
    const late = await connect(stub, "req-again");
    await received(late.messages, 3);
    expect(late.messages.map((m) => m.stage ?? m.type)).toEqual(["init", "queued", "processing_start"]);
  });

  it("uses the hibernation API: sockets are tracked by the runtime with tags and attachments", async () => {
    const stub = hub("hub-user-3");
    await connect(stub, "req-x");
    await runInDurableObject(stub, async (_instance: UserHub, state) => {
      const sockets = state.getWebSockets("req:req-x");
      expect(sockets).toHaveLength(1);
      expect(sockets[0]!.deserializeAttachment()).toMatchObject({ requestId: "req-x" });
      expect(state.getWebSocketAutoResponse()).not.toBeNull();
    });
  });

  it("refuses a plain HTTP request", async () => {
    expect((await hub("hub-user-4").fetch("https://user-hub/connect")).status).toBe(426);
  });

  it("sockets survive hibernation: after the hub is evicted from memory they still get messages and still end with their session", async () => {
    const stub = hub("hub-user-evicted");
    const follower = await connect(stub, "req-h", "session-1");
    const other = await connect(stub, undefined, "session-2");
    await received(follower.messages, 1);
    await evictDurableObject(stub);
    // A new instance: the runtime kept the sockets, their tags and attachments.
    expect(await stub.publish({ type: "progress", request_id: "req-h", stage: "queued", status: "pending", data: {} })).toBe(2);
    await received(follower.messages, 2);
    await received(other.messages, 2);
    expect(follower.messages.at(-1)).toMatchObject({ type: "progress", request_id: "req-h", stage: "queued" });
    const closed = new Promise<number>((resolve) => follower.ws.addEventListener("close", (e) => resolve(e.code)));
    await evictDurableObject(stub);
    expect(await stub.closeSessions({ sessionId: "session-1" })).toBe(1);
    expect(await closed).toBe(CLOSE_CODES.SESSION_ENDED);
    expect(await stub.connectionCount()).toBe(1);
  });

  it("answers a JSON ping (parsed, not substring-matched) with pong, and ignores other text", async () => {
    const stub = hub("hub-user-ping");
    const socket = await connect(stub);
    await received(socket.messages, 1);
    socket.ws.send('this mentions "ping" but is not one');
    socket.ws.send('{"type":"pinged"}');
    socket.ws.send('  { "type" : "ping", "id": 7 }  ');
    await received(socket.messages, 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(socket.messages.slice(1)).toEqual([{ type: "pong" }]);
  });

  it.each([
    ['{"type":"ping"}', { type: "ping" }],
    [' {"type": "ping", "extra": true} ', { type: "ping" }],
    ['"ping"', null],
    ['{"type":"PING"}', null],
    ['{"message":"ping"}', null],
    ["ping", null],
    ["{not json", null],
    [`{"type":"ping","pad":"${"x".repeat(2000)}"}`, null],
  ])("reads the client frame %j as %j", (frame, expected) => {
    expect(parseClientMessage(frame)).toEqual(expected);
  });

  it("sends only to open sockets, and closes a socket whose send fails with 1011", async () => {
    const stub = hub("hub-user-broken");
    await runInDurableObject(stub, async (instance: UserHub) => {
      const fake = (readyState: number, fails: boolean) => ({
        readyState,
        sent: [] as string[],
        closedWith: null as number | null,
        send(text: string) {
          if (fails) throw new Error("socket broken");
          this.sent.push(text);
        },
        close(code: number) {
          this.closedWith = code;
        },
      });
      const send = (instance as unknown as { send(ws: unknown, text: string): boolean }).send.bind(instance);
      const open = fake(WebSocket.OPEN, false);
      const closing = fake(WebSocket.CLOSING, false);
      const broken = fake(WebSocket.OPEN, true);
      expect(send(open, "hello")).toBe(true);
      expect(open.sent).toEqual(["hello"]);
      expect(send(closing, "hello")).toBe(false);
      expect(closing.sent).toEqual([]);
      expect(closing.closedWith).toBeNull();
      expect(send(broken, "hello")).toBe(false);
      expect(broken.closedWith).toBe(CLOSE_CODES.SEND_FAILED);
    });
  });
});
