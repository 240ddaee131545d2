/**
 * UserHub — one Durable Object per user, holding that user's live-progress WebSockets. Sockets
 * on `/ws/` (all of the user's events) also get new in-app notifications (`notify`) and hear of
 * changed ones (`notify` with `updated`) and removed ones (`withdraw`).
 *
 * Uses the hibernation API: sockets are accepted with `ctx.acceptWebSocket`, so an idle hub is
 * evicted from memory while its sockets stay open; per-socket state lives in the socket
 * attachment; `ping` is answered with `pong` by the runtime without waking the object.
 * Every request's messages are kept in the object's SQLite storage, so a socket that subscribes
 * late gets the current state at once: the final `completed` alone when the job has finished,
 * or every progress message of the current run so far when it is still running (so a client
 * that connects a moment after submitting, or after retrying, sees each stage of this run).
 * Every message about a request carries its run (0, then one more per retry): once a later run
 * began, an earlier run's messages (its job still saying its extras, a failure or an end told late) are dropped.
 * A request D1 says is final while its progress is still arriving (the job that ended it saying
 * its extras) is replayed as running; D1's end, like a redelivered job's `completed`, is then
 * held, and the alarm tells it if the job's own never comes (`retellCompleted`).
 *
 * The Worker authenticates and authorises before forwarding the upgrade here; this class
 * trusts the X-Hub-* headers because only the Worker can reach it.
 */
import { DurableObject } from "cloudflare:workers";

import {
  type ClientMessage,
  CLOSE_CODES,
  type CompletedMessage,
  type HubMessage,
  type InitMessage,
  MAX_CLIENT_MESSAGES_PER_MINUTE,
  MAX_SOCKETS_PER_USER,
  type NotificationMessage,
  type NotificationUpdatedMessage,
  type NotificationPayload,
  type NotificationWithdrawnMessage,
  type PongMessage,
  type SessionScope,
} from "./user-hub-protocol";
import { DAY_MS } from "../src/lib/durations";

export type { HubMessage, NotificationPayload, ProgressStage, SessionScope } from "./user-hub-protocol";

interface SocketAttachment {
  /** null = the socket follows all of the user's requests (`/ws/`). */
  requestId: string | null;
  /** The session (refresh family) that opened it; null for tokens from before sessions had ids. */
  sessionId?: string | null;
  connectedAt: number;
  /**
   * Set when the socket was replayed D1's final `completed` on connect (the hub had none of its
   * own): the request's mark (`requestMark`) at that moment. A redelivery's `completed` is not
   * sent to it again while nothing newer was recorded (`retellCompleted`).
   */
  toldFinalAt?: number;
  /** The client's messages in the current minute (from `since`): MAX_CLIENT_MESSAGES_PER_MINUTE at most. */
  sent?: { since: number; count: number };
}

const ALL_TAG = "all";
const requestTag = (requestId: string) => `req:${requestId}`;
/** Finished requests' states are kept this long for late subscribers. */
const STATE_RETENTION_MS = 7 * DAY_MS;
/**
 * A redelivered `completed` waits while its request's story is still being written: until
 * nothing has been recorded for the request this long. The job that made the request final may
 * still be saying its extras (an identification's `enrich_*` and `care_*` come after the
 * completion is committed, and before its own `completed`); the longest silence between two of a
 * job's messages is one provider call, OpenAI's 45 s timeout at most (src/jobs/job-policy.ts).
 */
export const RETELL_QUIET_MS = 60_000;

export class UserHub extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** The account was deleted (`accountDeleted`): nothing is recorded any more. */
  private deleted: boolean;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // A request's state is its newest event (request_events keeps them in order). Hubs made
    // before that kept it a second time, in request_state, written with every message; that copy
    // is dropped.
    this.sql.exec(
      `CREATE TABLE IF NOT EXISTS request_events (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         request_id TEXT NOT NULL,
         message TEXT NOT NULL,
         created_at INTEGER NOT NULL
       );
       CREATE INDEX IF NOT EXISTS request_events_request ON request_events (request_id, seq);
       DROP TABLE IF EXISTS request_state;
       CREATE TABLE IF NOT EXISTS account_deleted (at INTEGER NOT NULL);
       CREATE TABLE IF NOT EXISTS held_retells (
         request_id TEXT PRIMARY KEY,
         message TEXT NOT NULL,
         mark INTEGER NOT NULL
       );
       CREATE TABLE IF NOT EXISTS closed_requests (
         request_id TEXT PRIMARY KEY,
         at INTEGER NOT NULL
       );`,
    );
    this.deleted = this.sql.exec("SELECT 1 FROM account_deleted LIMIT 1").toArray().length > 0;
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  /** Accepts an upgrade forwarded by the Worker (already authenticated and authorised). */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("Expected a WebSocket upgrade", { status: 426 });
    }
    const requestId = request.headers.get("X-Hub-Request-Id") || null;
    const sessionId = request.headers.get("X-Hub-Session-Id") || null;
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [requestId ? requestTag(requestId) : ALL_TAG]);
    const replay = requestId ? this.replayFor(requestId, request.headers.get("X-Hub-Final-State")) : null;
    if (requestId && replay?.held) await this.hold(requestId, replay.held.message, replay.mark, replay.held.quietAt);
    const attachment: SocketAttachment = {
      requestId,
      sessionId,
      connectedAt: Date.now(),
      ...(replay?.fromD1 ? { toldFinalAt: replay.mark } : {}),
    };
    server.serializeAttachment(attachment);
    this.closeOldestBeyondCap();

    server.send(
      JSON.stringify({ type: "init", ...(requestId ? { request_id: requestId } : {}), message: "connected" } satisfies InitMessage),
    );
    for (const message of replay?.messages ?? []) server.send(message);
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * At most MAX_SOCKETS_PER_USER sockets stay open: past it the oldest go (4429), so one account
   * (a script holding a stolen or its own token) cannot pile up sockets without end, each one
   * more for every message to go through, while the newest connection always works.
   */
  private closeOldestBeyondCap(): void {
    const sockets = this.ctx.getWebSockets().filter((ws) => ws.readyState === WebSocket.OPEN);
    if (sockets.length <= MAX_SOCKETS_PER_USER) return;
    const opened = (ws: WebSocket) => (ws.deserializeAttachment() as SocketAttachment | null)?.connectedAt ?? 0;
    // Stable: sockets opened in the same millisecond keep the runtime's (acceptance) order.
    const oldest = sockets.sort((a, b) => opened(a) - opened(b)).slice(0, sockets.length - MAX_SOCKETS_PER_USER);
    for (const ws of oldest) {
      try {
        ws.close(CLOSE_CODES.REPLACED, "too many sockets");
      } catch {
        // Already gone.
      }
    }
  }

  /**
   * Records a request's newest state and delivers it to every socket following that request
   * or all of the user's requests. Returns how many sockets it was sent to.
   *
   * `notAfter` (ms since the epoch) is when the caller stops waiting for this call. A call that
   * runs later returns -1, and of its messages only a `completed` is kept: the caller has logged
   * it lost and gone on, so newer messages of the request may already be here, and a stale stage
   * or a stale `queued` recorded now would replay a finished request as running, or wipe a run. A
   * `completed` is its run's last word, so it is kept late rather than lost.
   */
  async publish(message: HubMessage, notAfter?: number): Promise<number> {
    return this.publishAll([message], notAfter);
  }

  /**
   * `publish` for several messages in order, in one call: a job's progress said while an earlier
   * call was in flight arrives together (src/services/progress.ts `progressChannel`).
   */
  async publishAll(messages: HubMessage[], notAfter?: number): Promise<number> {
    const late = notAfter !== undefined && Date.now() > notAfter;
    let delivered = 0;
    for (const message of messages) if (!late || message.type === "completed") delivered += this.record(message);
    return late ? -1 : delivered;
  }

  /**
   * The newest event recorded for a request (its sequence number; 0 when there is none). A
   * redelivered job reads it before it reads the request's final state from D1, and hands it to
   * `retellCompleted`.
   */
  async requestMark(requestId: string): Promise<number> {
    return this.lastEvent(requestId)?.seq ?? 0;
  }

  /**
   * A redelivered job's `completed` for a request D1 has final already: the job that ended it may
   * have died before its own `completed` got here. Dropped (0) when:
   *  - a new run began since `mark` (read before D1 was): a retry's `queued` that came in
   *    meanwhile starts a run which this older end must not follow;
   *  - the hub's last word on the request is a `completed` already: every socket following it
   *    heard that one, live or on connect;
   *  - its run is earlier than one recorded: a later run began (where the hub had nothing at
   *    `mark`, or that run's `queued` was lost). Not held either: held, it would take the place of
   *    a later run's held end.
   * Held (0 now) while the request's story is still being written — something was recorded for
   * it less than RETELL_QUIET_MS ago: the job that ended it may be alive and saying its extras,
   * and its own `completed` comes after them. The alarm tells it once the request has been quiet
   * that long, if the hub has still not heard the end (the job died after all) and no new run
   * began; otherwise it is dropped. Told, it goes to the sockets that have not heard the end:
   * those replayed D1's final on connect with nothing recorded since (`toldFinalAt`) are skipped.
   * Returns how many sockets it was sent to now.
   */
  async retellCompleted(message: CompletedMessage, mark: number): Promise<number> {
    const id = message.request_id;
    if (this.newRunSince(id, mark) || this.ofEarlierRun(message)) return 0;
    const last = this.lastEvent(id);
    if (last && (JSON.parse(last.message) as HubMessage).type === "completed") return 0;
    if (last && this.stillArriving(last)) {
      await this.hold(id, JSON.stringify(message), mark, last.createdAt + RETELL_QUIET_MS);
      return 0;
    }
    return this.tellEnd(message, last?.seq ?? 0);
  }

  /** Whether the request's story may still be written: its last event is under RETELL_QUIET_MS old. */
  private stillArriving(last: { createdAt: number }): boolean {
    return last.createdAt + RETELL_QUIET_MS > Date.now();
  }

  /** Keeps D1's end of a request (`message`, as text) for the alarm to tell once the request has gone quiet. */
  private async hold(requestId: string, message: string, mark: number, quietAt: number): Promise<void> {
    this.sql.exec("INSERT OR REPLACE INTO held_retells (request_id, message, mark) VALUES (?, ?, ?)", requestId, message, mark);
    await this.alarmBy(quietAt);
  }

  /** The held retells whose request has gone quiet are told or dropped (`retellCompleted`). */
  override async alarm(): Promise<void> {
    const held = this.sql
      .exec<{ request_id: string; message: string; mark: number }>("SELECT request_id, message, mark FROM held_retells")
      .toArray();
    let next: number | null = null;
    for (const { request_id: id, message, mark } of held) {
      const last = this.lastEvent(id);
      const ended = !last || (JSON.parse(last.message) as HubMessage).type === "completed";
      if (!ended && !this.newRunSince(id, mark) && this.stillArriving(last)) {
        next = Math.min(next ?? Number.POSITIVE_INFINITY, last.createdAt + RETELL_QUIET_MS);
        continue;
      }
      this.sql.exec("DELETE FROM held_retells WHERE request_id = ?", id);
      if (!ended && !this.newRunSince(id, mark)) this.tellEnd(JSON.parse(message) as CompletedMessage, last.seq);
    }
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  /** A request's end, to the sockets that have not heard it: not those replayed D1's final at `mark` with nothing since. */
  private tellEnd(message: CompletedMessage, mark: number): number {
    return this.record(message, (ws) => (ws.deserializeAttachment() as SocketAttachment | null)?.toldFinalAt !== mark);
  }

  /**
   * Whether a new run of the request began after `mark`: a `queued` was recorded since (it wipes
   * what came before, so the event at `mark` is gone too), or the request's events were deleted.
   */
  private newRunSince(requestId: string, mark: number): boolean {
    const row = this.sql
      .exec<{ restarted: number; kept: number }>(
        `SELECT EXISTS (SELECT 1 FROM request_events WHERE request_id = ?1 AND seq > ?2
                          AND json_extract(message, '$.type') = 'progress' AND json_extract(message, '$.stage') = 'queued') AS restarted,
                EXISTS (SELECT 1 FROM request_events WHERE request_id = ?1 AND seq = ?2) AS kept`,
        requestId,
        mark,
      )
      .one();
    return row.restarted === 1 || (mark > 0 && row.kept === 0);
  }

  /** Makes sure the alarm runs by `at`. */
  private async alarmBy(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  /**
   * What `record` needs to know of a request before it writes, in one read: whether it was deleted
   * (`closeRequest`: nothing is recorded or sent for it any more), the highest run its events are
   * tagged with (null: none is), and the run its last event ended, when that is a tagged `completed`.
   */
  private storySoFar(requestId: string): { closed: boolean; latestRun: number | null; endedRun: number | null } {
    const row = this.sql
      .exec<{ closed: number; latest: number | null; ended: number | null }>(
        `SELECT EXISTS (SELECT 1 FROM closed_requests WHERE request_id = ?1) AS closed,
                (SELECT max(json_extract(message, '$.run')) FROM request_events WHERE request_id = ?1) AS latest,
                (SELECT CASE WHEN json_extract(message, '$.type') = 'completed' THEN json_extract(message, '$.run') END
                   FROM request_events WHERE request_id = ?1 ORDER BY seq DESC LIMIT 1) AS ended`,
        requestId,
      )
      .one();
    return { closed: row.closed === 1, latestRun: row.latest, endedRun: row.ended };
  }

  /** Records `message` and sends it to the sockets following its request (those `to` accepts). */
  private record(message: HubMessage, to: (ws: WebSocket) => boolean = () => true): number {
    if (this.deleted) return 0;
    const story = this.storySoFar(message.request_id);
    if (story.closed) return 0;
    const text = JSON.stringify(message);
    const now = Date.now();
    // `queued` starts a run (a submit, or a retry of a finished request): the earlier run's story
    // is over, and a socket joining now must not be replayed its stale `completed`.
    let startsRun = message.type === "progress" && message.stage === "queued";
    // A job tags what it says with its request's run (services/progress.ts). A retry while the
    // first run's job is still saying its extras (`care_*`, then its `completed`) begins a later
    // run: what the earlier one says after that is dropped, never sent or replayed. A later run's
    // first message starts its story as `queued` does, should that `queued` have been lost.
    if (message.run !== undefined) {
      const latest = story.latestRun;
      if (latest !== null && message.run < latest) return 0;
      if (latest !== null && message.run > latest) startsRun = true;
      // A run's `completed` is its last word: a job's progress of that run arriving after it (said
      // before another path ended the request — the sweep or the dead letter failing it — and
      // delayed on its way) is stale, and recorded it would replay the ended request as running.
      if (message.type === "progress" && !startsRun && story.endedRun === message.run) return 0;
    }
    if (startsRun) {
      this.sql.exec("DELETE FROM request_events WHERE request_id = ?", message.request_id);
    }
    // The run's own end (or a new run) makes a held retell of an older end moot.
    if (message.type === "completed" || startsRun) {
      this.sql.exec("DELETE FROM held_retells WHERE request_id = ?", message.request_id);
    }
    this.sql.exec("INSERT INTO request_events (request_id, message, created_at) VALUES (?, ?, ?)", message.request_id, text, now);
    // Pruning once per finished request keeps the per-progress-message path to one write. Events
    // are in time order by seq, so only the expired ones at the start are read: everything before
    // the first unexpired event goes (there is one: the event just written).
    if (message.type === "completed") {
      this.sql.exec(
        "DELETE FROM request_events WHERE seq < (SELECT seq FROM request_events WHERE created_at >= ? ORDER BY seq LIMIT 1)",
        now - STATE_RETENTION_MS,
      );
      // A deleted request's job is long over by then (a request lives at most a day).
      this.sql.exec("DELETE FROM closed_requests WHERE at < ?", now - STATE_RETENTION_MS);
    }
    let delivered = 0;
    for (const tag of [requestTag(message.request_id), ALL_TAG]) {
      for (const ws of this.ctx.getWebSockets(tag)) if (to(ws) && this.send(ws, text)) delivered++;
    }
    return delivered;
  }

  /**
   * Delivers new notifications (or, `updated`, new versions of ones sent before) to the sockets
   * following all of the user's events (`/ws/`). Nothing is stored: notifications live in D1.
   * Returns how many messages were sent.
   */
  async notify(notifications: NotificationPayload[], updated = false): Promise<number> {
    let delivered = 0;
    const texts = notifications.map((notification) =>
      JSON.stringify(
        updated
          ? ({ type: "notification_updated", notification } satisfies NotificationUpdatedMessage)
          : ({ type: "notification", notification } satisfies NotificationMessage),
      ),
    );
    for (const ws of this.ctx.getWebSockets(ALL_TAG)) {
      for (const text of texts) if (this.send(ws, text)) delivered++;
    }
    return delivered;
  }

  /** Tells the sockets on `/ws/` that these notifications were removed. Returns how many messages were sent. */
  async withdraw(ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const text = JSON.stringify({ type: "notification_withdrawn", ids } satisfies NotificationWithdrawnMessage);
    let delivered = 0;
    for (const ws of this.ctx.getWebSockets(ALL_TAG)) if (this.send(ws, text)) delivered++;
    return delivered;
  }

  /**
   * The account was deleted (src/services/account-deletion.ts): every request's stored messages go
   * at once, and none is recorded from now on (a job that was running when the deletion landed
   * reports on). They name species and diagnoses, and are pruned only when a later run
   * completes, which a deleted account never has.
   */
  async accountDeleted(): Promise<void> {
    this.deleted = true;
    this.sql.exec("DELETE FROM request_events");
    this.sql.exec("DELETE FROM held_retells");
    this.sql.exec("INSERT INTO account_deleted (at) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM account_deleted)", Date.now());
  }

  /**
   * The request was deleted: its stored messages go, its sockets close, and nothing more is
   * recorded for it. A job that was running when the deletion landed reports on until its
   * completion finds no row; what it says names species, and stored it would be kept (and
   * replayed to the owner's `/ws/` sockets) for STATE_RETENTION_MS after the request was gone.
   */
  async closeRequest(requestId: string, code: number, reason: string): Promise<void> {
    this.sql.exec("DELETE FROM request_events WHERE request_id = ?", requestId);
    this.sql.exec("DELETE FROM held_retells WHERE request_id = ?", requestId);
    this.sql.exec("INSERT OR REPLACE INTO closed_requests (request_id, at) VALUES (?, ?)", requestId, Date.now());
    for (const ws of this.ctx.getWebSockets(requestTag(requestId))) ws.close(code, reason);
  }

  /**
   * Ends the sockets of signed-out sessions with 4401: one session (sign-out, a family revoked
   * for reuse), or all of them but the caller's own (password change), or all (sign-out
   * everywhere, reset, deactivation). Returns how many were closed.
   */
  async closeSessions(scope: SessionScope, reason = "session ended"): Promise<number> {
    let closed = 0;
    for (const ws of this.ctx.getWebSockets()) {
      const sessionId = (ws.deserializeAttachment() as SocketAttachment | null)?.sessionId ?? null;
      const ends =
        "sessionId" in scope ? sessionId === scope.sessionId : scope.exceptSessionId === undefined || sessionId !== scope.exceptSessionId;
      if (!ends) continue;
      try {
        ws.close(CLOSE_CODES.SESSION_ENDED, reason);
        closed++;
      } catch {
        // Already closing.
      }
    }
    return closed;
  }

  async connectionCount(): Promise<number> {
    return this.ctx.getWebSockets().length;
  }

  lastState(requestId: string): HubMessage | null {
    const text = this.lastMessage(requestId);
    return text ? (JSON.parse(text) as HubMessage) : null;
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // Every message wakes the hub: a client sending without pause is closed (1008), so one
    // socket cannot keep it busy for nothing.
    if (!this.countMessage(ws)) {
      ws.close(CLOSE_CODES.TOO_MANY_MESSAGES, "too many messages");
      return;
    }
    // `ping` is answered by the auto-response without waking us; a JSON ping `{"type":"ping"}`
    // (from clients that send only JSON) gets the same answer. Anything else is ignored.
    if (parseClientMessage(message)?.type === "ping") this.send(ws, JSON.stringify({ type: "pong" } satisfies PongMessage));
  }

  /** Counts a client message in its socket's minute; false past MAX_CLIENT_MESSAGES_PER_MINUTE. */
  private countMessage(ws: WebSocket): boolean {
    const attachment = ws.deserializeAttachment() as SocketAttachment | null;
    if (!attachment) return true;
    const now = Date.now();
    const sent = attachment.sent && now - attachment.sent.since < 60_000 ? attachment.sent : { since: now, count: 0 };
    sent.count++;
    ws.serializeAttachment({ ...attachment, sent });
    return sent.count <= MAX_CLIENT_MESSAGES_PER_MINUTE;
  }

  /**
   * Sends to one socket if it is open. A send that fails means the socket is broken: it is
   * closed with 1011 so the client reconnects instead of waiting on a socket that hears nothing.
   */
  private send(ws: WebSocket, text: string): boolean {
    if (ws.readyState !== WebSocket.OPEN) return false;
    try {
      ws.send(text);
      return true;
    } catch {
      try {
        ws.close(CLOSE_CODES.SEND_FAILED, "send failed");
      } catch {
        // Already gone.
      }
      return false;
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Complete the closing handshake; 1005/1006 are reserved and cannot be sent back.
    ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    ws.close(CLOSE_CODES.SEND_FAILED, "socket error");
  }

  /**
   * Finished: the final state only (D1's, when the hub never heard the `completed` and nothing is
   * arriving any more). Running: every message so far, in order.
   */
  private replayFor(
    requestId: string,
    finalFromD1: string | null,
  ): { messages: string[]; fromD1: boolean; mark: number; held?: { message: string; quietAt: number } } {
    const last = this.lastEvent(requestId);
    const mark = last?.seq ?? 0;
    if (last && (JSON.parse(last.message) as HubMessage).type === "completed") return { messages: [last.message], fromD1: false, mark };
    // D1 has the request final while its progress is still arriving (the job that ended it saying
    // its extras): the socket joins the running story, and D1's end is held for the alarm in case
    // the job's own `completed` never comes.
    if (finalFromD1 && !(last && this.stillArriving(last))) return { messages: [finalFromD1], fromD1: true, mark };
    if (!last) return { messages: [], fromD1: false, mark };
    const messages = this.sql
      .exec<{ message: string }>("SELECT message FROM request_events WHERE request_id = ? ORDER BY seq", requestId)
      .toArray()
      .map((r) => r.message);
    return {
      messages,
      fromD1: false,
      mark,
      ...(finalFromD1 ? { held: { message: finalFromD1, quietAt: last.createdAt + RETELL_QUIET_MS } } : {}),
    };
  }

  /** Whether `message` belongs to an earlier run of its request than one recorded: a later run began. */
  private ofEarlierRun(message: HubMessage): boolean {
    if (message.run === undefined) return false;
    const latest = this.latestRun(message.request_id);
    return latest !== null && message.run < latest;
  }

  /** The highest run any recorded event of the request is tagged with (null: none is tagged). */
  private latestRun(requestId: string): number | null {
    return this.sql
      .exec<{ run: number | null }>("SELECT max(json_extract(message, '$.run')) AS run FROM request_events WHERE request_id = ?", requestId)
      .one().run;
  }

  private lastMessage(requestId: string): string | null {
    return this.lastEvent(requestId)?.message ?? null;
  }

  private lastEvent(requestId: string): { seq: number; message: string; createdAt: number } | null {
    return (
      this.sql
        .exec<{ seq: number; message: string; createdAt: number }>(
          "SELECT seq, message, created_at AS createdAt FROM request_events WHERE request_id = ? ORDER BY seq DESC LIMIT 1",
          requestId,
        )
        .toArray()[0] ?? null
    );
  }
}

/** A client's frame as the protocol reads it; null for anything that is not a known message. */
export function parseClientMessage(message: string | ArrayBuffer): ClientMessage | null {
  if (typeof message !== "string" || message.length > 1024) return null;
  try {
    const parsed = JSON.parse(message) as unknown;
    return typeof parsed === "object" && parsed !== null && (parsed as { type?: unknown }).type === "ping" ? { type: "ping" } : null;
  } catch {
    return null;
  }
}
