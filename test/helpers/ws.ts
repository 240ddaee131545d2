/** Real WebSockets to the Worker (through its default export), recording every message. */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { RETELL_QUIET_MS, type UserHub } from "../../durable-objects/user-hub";
import { BASE } from "./http";
import { eventually } from "./wait";

export interface Socket {
  ws: WebSocket;
  /** Parsed JSON frames in arrival order; the auto-response "pong" is recorded as {type: "pong"}. */
  messages: Record<string, unknown>[];
  closed: Promise<{ code: number; reason: string }>;
}

/** The upgrade of `path` through the Worker, with a bearer token or a Cookie header; expects 101. */
export async function upgrade(path: string, auth: { bearer?: string; cookie?: string } = {}): Promise<WebSocket> {
  const headers: Record<string, string> = { Upgrade: "websocket" };
  if (auth.bearer) headers.Authorization = `Bearer ${auth.bearer}`;
  if (auth.cookie) headers.Cookie = auth.cookie;
  const res = await exports.default.fetch(new Request(`${BASE}${path}`, { headers }));
  expect(res.status).toBe(101);
  return res.webSocket!;
}

/** Opens `path` with a bearer token or a Cookie header; expects the upgrade (101). */
export async function openSocket(path: string, auth: { bearer?: string; cookie?: string } = {}): Promise<Socket> {
  const ws = await upgrade(path, auth);
  const messages: Record<string, unknown>[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })),
  );
  ws.addEventListener("message", (e) => {
    if (typeof e.data === "string") messages.push(e.data === "pong" ? { type: "pong" } : (JSON.parse(e.data) as Record<string, unknown>));
  });
  ws.accept();
  return { ws, messages, closed };
}

/** openSocket, then waits for the hub's `init`. */
export async function openReadySocket(path: string, auth: { bearer?: string; cookie?: string }): Promise<Socket> {
  const socket = await openSocket(path, auth);
  await eventually(() => socket.messages.find((m) => m.type === "init"));
  return socket;
}

/** Every frame the hub sent `socket` before now has arrived (a JSON ping's pong comes after them). */
export async function settled(socket: Socket) {
  const pongs = socket.messages.filter((m) => m.type === "pong").length;
  socket.ws.send(JSON.stringify({ type: "ping" }));
  await eventually(() => socket.messages.filter((m) => m.type === "pong").length > pongs);
}

/** The user's hub (UserHub Durable Object). */
export const hubOf = (userId: string) => env.USER_HUB.get(env.USER_HUB.idFromName(userId));

/**
 * A minute passes with nothing said about the request (its events move back in time): the user's
 * hub no longer takes its story for one still being written (UserHub.retellCompleted).
 */
export async function quietFor(userId: string, requestId: string) {
  await runInDurableObject(hubOf(userId), async (_instance: UserHub, state) => {
    state.storage.sql.exec("UPDATE request_events SET created_at = created_at - ? WHERE request_id = ?", RETELL_QUIET_MS, requestId);
  });
}
