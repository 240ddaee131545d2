/**
 * WebSocket routes (API.md §3): `/ws/plant-identification/requests/{id}/` follows one request
 * (identification or disease request),
 * `/ws/` all of the caller's. Authenticated by the access cookie (`__Host-access_token`; `access_token` locally), a bearer header, or a
 * single-use `?ticket=` from /auth/ws-ticket/ (long-lived tokens never go in URLs). The socket
 * itself lives in the caller's UserHub Durable Object.
 *
 * Refusals after an upgrade request are sent as WebSocket close codes, because browsers hide
 * the HTTP status of a failed handshake: 4401 unauthenticated, 4404 unknown — another user's
 * request included, with the same reason, so a stranger cannot learn that a request id exists.
 *
 * Cross-site WebSocket hijacking: a browser attaches cookies to an upgrade from any page, and
 * WebSockets are not covered by CORS. So an upgrade authenticated by cookie or ticket (the
 * browser's ways) must come from an allowed Origin — this site or a CORS_ORIGINS entry — or it
 * is refused with 403 before anything is opened. Bearer clients are not browsers' ambient
 * credentials, so their Origin (if any) does not matter.
 *
 * Every socket is tagged with the session (refresh family) that opened it, so ending the
 * session closes it (4401); a socket that joins just after its session ended is closed too (the
 * session is checked again, on the primary, once the hub has it).
 */
import { Hono, type Context } from "hono";
import { CLOSE_CODES } from "../../durable-objects/user-hub-protocol";
import { getCookie } from "hono/cookie";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { getConfig } from "../config";
import { isUuid, uuidv7Timestamp } from "../lib/ids";
import { accessCookieName } from "../lib/session-cookies";
import { bearerToken, userFromAccessToken } from "../middleware/auth";
import { consumeWsTicket } from "../services/accounts";
import { userHub } from "../services/progress";
import { closeSessionSockets, socketSessionLive } from "../services/sessions";
import { issuedAtMs } from "../services/tokens";
import { requestToFollow } from "../services/queued-requests";

/** Accepts the socket only to close it with an application close code the client can read. */
function refuse(code: (typeof CLOSE_CODES)[keyof typeof CLOSE_CODES], reason: string): Response {
  const pair = new WebSocketPair();
  const server = pair[1];
  server.accept();
  server.close(code, reason);
  return new Response(null, { status: 101, webSocket: pair[0] });
}

interface SocketIdentity {
  userId: string;
  sessionId: string | null;
  /** When its credential was issued (ms): the token's, or the ticket's session's start; null: unknown. */
  issuedAtMs: number | null;
  via: "ticket" | "bearer" | "cookie";
}

/** The Origin may open a cookie- or ticket-authenticated socket: this site or an allowed client. */
function originAllowed(c: Context<AppEnv>): boolean {
  const origin = c.req.header("Origin");
  if (origin === undefined) return true; // not a browser: nothing ambient to abuse
  return origin === new URL(c.req.url).origin || getConfig(c.env).CORS_ORIGINS.includes(origin);
}

async function socketUser(c: Context<AppEnv>): Promise<SocketIdentity | null> {
  const ticket = c.req.query("ticket");
  if (ticket) {
    const consumed = await consumeWsTicket(c.env, ticket);
    if (!consumed) return null;
    const started = consumed.sessionId ? uuidv7Timestamp(consumed.sessionId) : Number.NaN;
    return { ...consumed, issuedAtMs: Number.isNaN(started) ? null : started, via: "ticket" };
  }
  const bearer = bearerToken(c);
  const token = bearer ?? getCookie(c, accessCookieName(getConfig(c.env)));
  if (!token) return null;
  try {
    const { user, claims } = await userFromAccessToken(c, token);
    return { userId: user.id, sessionId: claims.sid ?? null, issuedAtMs: issuedAtMs(claims), via: bearer ? "bearer" : "cookie" };
  } catch (err) {
    if (err instanceof AppError) return null;
    throw err;
  }
}

async function connect(c: Context<AppEnv>, requestId: string | null): Promise<Response> {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new AppError("UPGRADE_REQUIRED", 426, "This endpoint speaks WebSocket only.", undefined, { Upgrade: "websocket" });
  }
  // Checked before a ticket is consumed, so a hijacking page cannot even burn one.
  const browserCredentials = Boolean(c.req.query("ticket")) || !bearerToken(c);
  if (browserCredentials && !originAllowed(c)) {
    throw new AppError("FORBIDDEN", 403, "WebSocket connections from this origin are not allowed.");
  }
  const identity = await socketUser(c);
  if (!identity) return refuse(CLOSE_CODES.SESSION_ENDED, "authentication required");
  const { userId } = identity;
  const headers = new Headers({ Upgrade: "websocket" });
  if (identity.sessionId) headers.set("X-Hub-Session-Id", identity.sessionId);
  if (requestId) {
    const request = isUuid(requestId) ? await requestToFollow(c.env, requestId) : null;
    if (request?.userId !== userId) return refuse(CLOSE_CODES.REQUEST_GONE, "unknown request");
    headers.set("X-Hub-Request-Id", requestId);
    // If the hub has forgotten a finished request (state is kept 7 days), D1 still knows.
    if (request.final) headers.set("X-Hub-Final-State", JSON.stringify(request.final));
  }
  const upgraded = await userHub(c.env, userId).fetch(new Request("https://user-hub/connect", { headers }));
  // The session may have ended between the check above and the hub accepting the socket, after
  // the hub closed that session's sockets: asked again now that this one has joined.
  if (upgraded.status === 101) {
    // Our end of the hub's socket answers its close, so the hub lets go of it at once.
    const letGo = (code: number, reason: string) => {
      upgraded.webSocket?.accept();
      upgraded.webSocket?.close(code, reason);
    };
    let live: boolean;
    try {
      live = await socketSessionLive(c.env, userId, identity.sessionId, identity.issuedAtMs);
    } catch (err) {
      // Not confirmed is not live: the socket does not stay joined, and the client is told to retry.
      c.get("logger").warn("socket session check failed", { user_id: userId, error: String(err) });
      letGo(CLOSE_CODES.TRY_AGAIN, "try again");
      return refuse(CLOSE_CODES.TRY_AGAIN, "try again");
    }
    if (!live) {
      await closeSessionSockets(c.env, userId, identity.sessionId ? { sessionId: identity.sessionId } : {}, c.get("logger"));
      letGo(CLOSE_CODES.SESSION_ENDED, "session ended");
      return refuse(CLOSE_CODES.SESSION_ENDED, "session ended");
    }
  }
  // A Response that crossed from the Durable Object has immutable headers; re-wrap it so the
  // app's middleware (security headers, CORS, request id) can add theirs as on any response.
  return new Response(null, { status: upgraded.status, webSocket: upgraded.webSocket, headers: upgraded.headers });
}

export function wsRoutes() {
  const app = new Hono<AppEnv>({ strict: false });
  app.get("/", (c) => connect(c, null));
  app.get("/plant-identification/requests/:id", (c) => connect(c, c.req.param("id")));
  return app;
}
