/**
 * WebSocket routes (API.md §3): `/ws/plant-identification/requests/{id}/` follows one request
 * (identification or disease request),
 * `/ws/` all of the caller's. Authenticated by the access_token cookie, a bearer header, or a
 * single-use `?ticket=` from /auth/ws-ticket/ (long-lived tokens never go in URLs). The socket
 * itself lives in the caller's UserHub Durable Object.
 *
 * Refusals after an upgrade request are sent as WebSocket close codes, because browsers hide
 * the HTTP status of a failed handshake: 4401 unauthenticated, 4403 not yours, 4404 unknown.
 */
import { Hono, type Context } from "hono";
import { getCookie } from "hono/cookie";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { sha256Hex } from "../lib/hash";
import { isUuid } from "../lib/ids";
import { ACCESS_COOKIE, bearerToken, userFromAccessToken } from "../middleware/auth";
import { userHub } from "../services/progress";
import { countDiseaseResults, getDiseaseRequest } from "../services/diseases";
import { countResults, FINAL_STATUSES, getRequest } from "../services/requests";

/** Accepts the socket only to close it with an application close code the client can read. */
function refuse(code: 4401 | 4403 | 4404, reason: string): Response {
  const pair = new WebSocketPair();
  const server = pair[1];
  server.accept();
  server.close(code, reason);
  return new Response(null, { status: 101, webSocket: pair[0] });
}

async function socketUser(c: Context<AppEnv>): Promise<string | null> {
  const ticket = c.req.query("ticket");
  if (ticket) {
    // Atomic single use: the first upgrade with this ticket wins, any replay finds it used.
    const row = await c.env.DB.prepare(
      "UPDATE ws_tickets SET used_at = ? WHERE ticket_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING user_id",
    )
      .bind(Math.floor(Date.now() / 1000), await sha256Hex(ticket), Math.floor(Date.now() / 1000))
      .first<{ user_id: string }>();
    return row?.user_id ?? null;
  }
  const token = bearerToken(c) ?? getCookie(c, ACCESS_COOKIE);
  if (!token) return null;
  try {
    return (await userFromAccessToken(c, token)).user.id;
  } catch (err) {
    if (err instanceof AppError) return null;
    throw err;
  }
}

async function connect(c: Context<AppEnv>, requestId: string | null): Promise<Response> {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new AppError("UPGRADE_REQUIRED", 426, "This endpoint speaks WebSocket only.", undefined, { Upgrade: "websocket" });
  }
  const userId = await socketUser(c);
  if (!userId) return refuse(4401, "authentication required");
  const headers = new Headers({ Upgrade: "websocket" });
  if (requestId) {
    if (!isUuid(requestId)) return refuse(4404, "unknown request");
    // Identification and disease requests share this route (their UUIDs never collide).
    const identification = await getRequest(c.env, requestId);
    const request = identification ?? (await getDiseaseRequest(c.env, requestId));
    if (!request) return refuse(4404, "unknown request");
    if (request.user_id !== userId) return refuse(4403, "not your request");
    headers.set("X-Hub-Request-Id", requestId);
    // If the hub has forgotten a finished request (state is kept 7 days), D1 still knows.
    if ((FINAL_STATUSES as readonly string[]).includes(request.status)) {
      const count = identification ? await countResults(c.env, requestId) : await countDiseaseResults(c.env, requestId);
      headers.set("X-Hub-Final-State", JSON.stringify({ type: "completed", request_id: requestId, status: request.status, results_count: count }));
    }
  }
  return userHub(c.env, userId).fetch(new Request("https://user-hub/connect", { headers }));
}

export function wsRoutes() {
  const app = new Hono<AppEnv>({ strict: false });
  app.get("/ws", (c) => connect(c, null));
  app.get("/ws/plant-identification/requests/:id", (c) => connect(c, c.req.param("id")));
  return app;
}
