/**
 * The UserHub's protocol: the messages it sends to sockets (API.md §3), what
 * clients may send it, how sign-outs are scoped and the close codes it uses. Services import
 * these, never the Durable Object class; the module has no runtime dependencies.
 */

export type ProgressStage =
  | "queued"
  | "processing_start"
  | "plant_id_start"
  | "plant_id_done"
  | "plantnet_start"
  | "plantnet_done"
  | "merge_done"
  | "enrich_start"
  | "enrich_done"
  | "enrich_skipped"
  | "care_start"
  | "care_done"
  // Disease requests (Plant.id health assessment).
  | "health_start"
  | "health_done"
  | "rate_limited"
  | "retry_scheduled";

export type HubMessage =
  | { type: "progress"; request_id: string; stage: ProgressStage; status: string; data: Record<string, unknown> }
  | { type: "completed"; request_id: string; status: string; results_count: number }
  | { type: "error"; request_id: string; message: string };

/** An in-app notification as the API shows it (API.md §5 "Notifications"). */
export interface NotificationPayload {
  id: string;
  type: "care_reminder" | "forum_reply";
  title: string;
  body: string;
  data: Record<string, unknown>;
  is_read: boolean;
  created_at: string;
  read_at: string | null;
}

/** Sent to the user's `/ws/` sockets when a notification is created; not replayed (the list API has them). */
export interface NotificationMessage {
  type: "notification";
  notification: NotificationPayload;
}

/** What a client may send: a ping (as the bare text `ping`, answered by the runtime, or as JSON). */
export type ClientMessage = { type: "ping" };

/** Which sockets a sign-out ends: one session's, or every session's but (optionally) one. */
export type SessionScope = { sessionId: string } | { exceptSessionId?: string };

/**
 * Close codes (API.md §3): 4401 the session ended or the socket was not authenticated, 4403 not
 * the caller's request, 4404 the request is unknown or was deleted; 1011 a send to the socket
 * failed (the server gave up on it).
 */
export const CLOSE_CODES = {
  SESSION_ENDED: 4401,
  NOT_YOURS: 4403,
  REQUEST_GONE: 4404,
  SEND_FAILED: 1011,
} as const;

/** Close code for a socket whose session ended. */
export const SESSION_ENDED_CODE = CLOSE_CODES.SESSION_ENDED;
