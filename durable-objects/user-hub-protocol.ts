/**
 * The UserHub's protocol: the messages it sends to sockets, what clients may send it, how
 * sign-outs are scoped and the close codes it uses. Each message is a zod schema; the TypeScript
 * types the services send are inferred from those schemas, and the AsyncAPI document served at
 * `/api/asyncapi.json` (src/lib/asyncapi.ts) is generated from the same schemas, so the document,
 * the types and what goes over the wire cannot drift apart. docs/api.md describes the protocol in
 * prose. Services import this module, never the Durable Object class; it depends on zod only.
 */
import { z } from "zod";

const RequestId = z.string().describe("The identification or disease request's id (a UUID).");
const Count = z.int().nonnegative();
const Run = z
  .int()
  .nonnegative()
  .optional()
  .describe(
    "Which run of the request the message belongs to: 0 for the first, one more for each retry by its owner. Every message about a request carries it (the job's own, a failure, a lost job's `queued`, a retold or replayed `completed`); one without it was recorded before runs were told and belongs to the run in progress. The hub drops a message of an earlier run once a later one has begun; a client following a request across retries can ignore messages whose `run` is below the highest it has seen.",
  );

/** Why a provider call failed (ProviderErrorKind in src/providers/types.ts). */
const ProviderErrorKind = z.enum(["timeout", "rate_limited", "auth", "server", "malformed", "network", "bad_request", "circuit_open"]);

/** What a provider call came to: an answer (from the cache or not) or a failure of some kind. */
const ProviderCallSummary = z.union([
  z.object({
    ok: z.literal(true),
    cached: z.boolean().describe("The answer came from the cache (no call to the provider)."),
    suggestions: Count.describe("How many suggestions the provider gave."),
    is_plant: z.boolean(),
  }),
  z.object({
    ok: z.literal(false),
    error: ProviderErrorKind,
    cached: z.literal(false),
  }),
]);

const HealthSummary = z.union([
  z.object({
    ok: z.literal(true),
    cached: z.boolean(),
    suggestions: Count.describe("How many disease suggestions Plant.id gave."),
    is_healthy: z.boolean(),
    is_plant: z.boolean(),
  }),
  z.object({
    ok: z.literal(false),
    error: ProviderErrorKind,
    cached: z.literal(false),
  }),
]);

const Empty = z.object({});

/**
 * Every progress stage with the shape of its `data`, in the order a job reports them. The keys
 * are the stage names; `progress()` (services/progress.ts) only accepts the data of its stage.
 */
export const PROGRESS_STAGES = {
  queued: {
    description: "The request is waiting in the queue (again, after a lost delivery, when `requeued` is set).",
    data: z.union([Empty, z.object({ requeued: z.literal(true), requeue_count: z.int().positive() })]),
  },
  processing_start: { description: "A job run started.", data: z.object({ attempt: z.int().positive() }) },
  plant_id_start: { description: "Asking Plant.id.", data: Empty },
  plant_id_done: { description: "Plant.id answered or failed.", data: ProviderCallSummary },
  plantnet_start: { description: "Asking Pl@ntNet (JPEG and PNG photos only).", data: Empty },
  plantnet_done: { description: "Pl@ntNet answered or failed.", data: ProviderCallSummary },
  merge_done: { description: "Both answers merged and ranked.", data: z.object({ suggestions: Count }) },
  enrich_start: {
    description: "Asking Trefle for the best suggestion's care data.",
    data: z.object({ source: z.literal("trefle"), scientific_name: z.string() }),
  },
  enrich_done: {
    description: "Trefle's light and water needs filled in what the catalogue lacked.",
    data: z.object({
      source: z.literal("trefle"),
      light: z.enum(["full_sun", "partial_sun", "partial_shade", "full_shade"]).nullable(),
      water: z.enum(["low", "moderate", "high"]).nullable(),
    }),
  },
  enrich_skipped: { description: "No enrichment, and why.", data: z.object({ reason: z.string() }) },
  care_start: { description: "Writing the care guide for the best suggestion.", data: z.object({ scientific_name: z.string() }) },
  care_done: {
    description:
      "The care guide is ready (`openai`, or `rules` as the fallback), or there is none (null); `language`: the two-letter code it is written in, as its `language` field says on the request's results (null with none).",
    data: z.object({ source: z.enum(["openai", "rules"]).nullable(), language: z.string().nullable() }),
  },
  health_start: { description: "Asking Plant.id's health assessment (disease requests).", data: Empty },
  health_done: { description: "The health assessment answered or failed (disease requests).", data: HealthSummary },
  rate_limited: {
    description: "A provider limited our rate; the job waits `retry_after` seconds.",
    data: z.object({ retry_after: Count }),
  },
  retry_scheduled: {
    description: "The job will run again in `delay_seconds` (`reason: circuit_open` when it waits for a provider's circuit to half-open).",
    data: z.object({
      delay_seconds: Count,
      attempt: z.int().positive(),
      max_attempts: z.int().positive(),
      reason: z.literal("circuit_open").optional(),
    }),
  },
} as const;

export type ProgressStage = keyof typeof PROGRESS_STAGES;
export type ProgressData<S extends ProgressStage> = z.infer<(typeof PROGRESS_STAGES)[S]["data"]>;
const STAGE_NAMES = Object.keys(PROGRESS_STAGES) as [ProgressStage, ...ProgressStage[]];

/** A request's status while its job runs, and once it is final. */
const RunningStatus = z.enum(["pending", "processing"]);
export const FinalStatus = z.enum(["identified", "needs_help", "failed"]);

const progressVariant = <S extends ProgressStage>(stage: S) =>
  z
    .object({
      type: z.literal("progress"),
      request_id: RequestId,
      stage: z.literal(stage),
      status: RunningStatus,
      data: PROGRESS_STAGES[stage].data,
      run: Run,
    })
    .describe(PROGRESS_STAGES[stage].description);

/** A progress message: `data` is the shape of its `stage` (a union over every stage). */
export type ProgressMessage = {
  [S in ProgressStage]: {
    type: "progress";
    request_id: string;
    stage: S;
    status: z.infer<typeof RunningStatus>;
    data: ProgressData<S>;
    run?: number;
  };
}[ProgressStage];

export const ProgressMessage = z.discriminatedUnion(
  "stage",
  STAGE_NAMES.map(progressVariant) as unknown as [ReturnType<typeof progressVariant>, ...ReturnType<typeof progressVariant>[]],
) as unknown as z.ZodType<ProgressMessage>;

export const CompletedMessage = z.object({
  type: z.literal("completed"),
  request_id: RequestId,
  status: FinalStatus.describe("`identified` (best confidence ≥ 0.5), `needs_help`, or `failed`."),
  results_count: Count,
  run: Run,
});

export type CompletedMessage = z.infer<typeof CompletedMessage>;

export const ErrorMessage = z.object({
  type: z.literal("error"),
  request_id: RequestId,
  message: z.string().describe("What went wrong, for people."),
  run: Run,
});

export type ErrorMessage = z.infer<typeof ErrorMessage>;

export const InitMessage = z.object({
  type: z.literal("init"),
  request_id: RequestId.optional().describe("Set on a request's channel."),
  message: z.literal("connected"),
});

export const NOTIFICATION_TYPES = [
  "care_reminder",
  "forum_reply",
  "forum_mention",
  "identification_completed",
  "identification_failed",
  "security",
  "blog_comment_approved",
  "blog_comment_reply",
  "calendar_event_changed",
  "calendar_event_starting",
  "community_proposal",
  "community_agreement",
  "community_consensus",
] as const;

/** An in-app notification as the API shows it (`GET /api/v1/notifications/`). */
export const NotificationPayload = z.object({
  id: z.uuid(),
  type: z.enum(NOTIFICATION_TYPES),
  title: z.string(),
  body: z.string(),
  data: z
    .record(z.string(), z.unknown())
    .describe(
      "care_reminder: {reminder_id, plant_id, due_at}; forum_reply: {topic_id, post_id, category_slug}; forum_mention: {topic_id, post_id, category_slug, author_id}; identification_completed: {request_id, kind (identification|diagnosis), results_count}; identification_failed: {request_id, kind, message}; security: {event (password_changed|password_reset|account_locked|sign_in_method_linked), detail}; blog_comment_approved: {post_id, post_slug, comment_id}; blog_comment_reply: {post_id, post_slug, comment_id, author_id}; calendar_event_changed: {event_id, change (updated|cancelled), starts_at}; calendar_event_starting: {event_id, starts_at}; community_proposal: {request_id, result_id, scientific_name, author_id}; community_agreement: {request_id, result_id}; community_consensus: {request_id, result_id, scientific_name}. `author_id` is the user whose post, reply or proposal raised it.",
    ),
  is_read: z.boolean(),
  created_at: z.string().describe("ISO-8601 UTC"),
  read_at: z.string().nullable(),
});
export type NotificationPayload = z.infer<typeof NotificationPayload>;

/** Sent to the user's `/ws/` sockets when a notification is created; not replayed (the list API has them). */
export const NotificationMessage = z.object({ type: z.literal("notification"), notification: NotificationPayload });
export type NotificationMessage = z.infer<typeof NotificationMessage>;

/**
 * Sent to the user's `/ws/` sockets when a notification they may have been shown changes (the
 * forum post it quotes was edited, or its topic's title changed): the client replaces the one
 * with this id, keeping its place.
 */
export const NotificationUpdatedMessage = z.object({
  type: z.literal("notification_updated"),
  notification: NotificationPayload.describe("The notification as it is now; an id the client never saw can be ignored."),
});
export type NotificationUpdatedMessage = z.infer<typeof NotificationUpdatedMessage>;

/**
 * Sent to the user's `/ws/` sockets when notifications they may have been shown are removed (the
 * forum post, blog comment or proposal they quote was deleted, rejected or hidden): the client
 * drops them from its list and unread count.
 */
export const NotificationWithdrawnMessage = z.object({
  type: z.literal("notification_withdrawn"),
  ids: z.array(z.uuid()).min(1).describe("The removed notifications' ids; ids the client never saw can be ignored."),
});
export type NotificationWithdrawnMessage = z.infer<typeof NotificationWithdrawnMessage>;

export type InitMessage = z.infer<typeof InitMessage>;

export const PongMessage = z.object({ type: z.literal("pong") });
export type PongMessage = z.infer<typeof PongMessage>;

/** What the hub records per request and replays to late subscribers. */
export type HubMessage = ProgressMessage | CompletedMessage | ErrorMessage;

/** What a client may send as JSON (the bare text `ping` is answered by the runtime). */
export const ClientPing = z.object({ type: z.literal("ping") });
export type ClientMessage = z.infer<typeof ClientPing>;

/** Every JSON message the server sends, by `type`: what the AsyncAPI document lists. */
export const SERVER_MESSAGES = {
  init: { schema: InitMessage, summary: "Sent once on connect." },
  progress: { schema: ProgressMessage, summary: "One step of a request's job; `data` depends on `stage`." },
  completed: {
    schema: CompletedMessage,
    summary:
      "The request is final; nothing more comes for it unless its owner retries an identification (`POST …/requests/{id}/retry/`), which starts a new run at `queued`. It may arrive more than once for the same run: treat it as idempotent by `request_id` (see the document's description).",
  },
  error: { schema: ErrorMessage, summary: "The request failed; `completed` with status `failed` follows." },
  notification: { schema: NotificationMessage, summary: "A new in-app notification (`/ws/` only, not replayed)." },
  notification_updated: {
    schema: NotificationUpdatedMessage,
    summary:
      "An in-app notification changed since (the post it quotes was edited, or its topic's title changed): replace it (`/ws/` only, not replayed).",
  },
  notification_withdrawn: {
    schema: NotificationWithdrawnMessage,
    summary:
      "In-app notifications removed since (the post, comment or proposal they quote was deleted, rejected or hidden): drop them (`/ws/` only, not replayed).",
  },
  pong: { schema: PongMessage, summary: 'The answer to a JSON `{"type":"ping"}`.' },
} as const;

/** Which sockets a sign-out ends: one session's, or every session's but (optionally) one. */
export type SessionScope = { sessionId: string } | { exceptSessionId?: string };

/**
 * Close codes: 4401 the session ended or the socket was not authenticated; 4404 the request is
 * unknown, was deleted or is another user's (one answer for all three, with one reason text, so
 * a socket cannot tell a stranger that a request id exists); 1011 a send to the socket failed
 * (the server gave up on it).
 */
export const CLOSE_CODES = {
  SESSION_ENDED: 4401,
  REQUEST_GONE: 4404,
  SEND_FAILED: 1011,
  TRY_AGAIN: 1013,
  REPLACED: 4429,
  TOO_MANY_MESSAGES: 1008,
} as const;

/** Sockets one account may hold open at once (every tab's and device's, every channel's). */
export const MAX_SOCKETS_PER_USER = 30;
/** Messages one socket may send in a minute (the text `ping`, answered by the runtime, aside). */
export const MAX_CLIENT_MESSAGES_PER_MINUTE = 120;

/** What each close code means to a client and what it should do; the AsyncAPI document lists these. */
export const CLOSE_CODE_MEANINGS = {
  SESSION_ENDED: {
    when: "Not signed in (no, invalid, expired or spent credentials: an access token or cookie past its 15 minutes, a used ticket), or the session ended: sign-out, sign-out everywhere, a password change or reset, deactivation.",
    action:
      "Refresh the access token (a new ticket for browsers) and reconnect once; if the refresh is refused, sign in again before reconnecting.",
  },
  REQUEST_GONE: {
    when: "The request is unknown, was deleted, or is another user's (request channel only; the three are not told apart).",
    action: "Do not reconnect.",
  },
  SEND_FAILED: { when: "The server could not send to the socket and gave up on it.", action: "Reconnect." },
  TRY_AGAIN: {
    when: "The server could not confirm the session while the socket was opening (its database did not answer).",
    action: "Reconnect after a few seconds, with backoff.",
  },
  REPLACED: {
    when: `The account opened more than ${MAX_SOCKETS_PER_USER} sockets at once: the oldest was closed to make room for the newest.`,
    action: "Do not reconnect on your own: one of your newer tabs or devices took its place (close sockets you no longer read).",
  },
  TOO_MANY_MESSAGES: {
    when: `The client sent more than ${MAX_CLIENT_MESSAGES_PER_MINUTE} messages in a minute (the text \`ping\` aside: the runtime answers it).`,
    action: "Reconnect after a minute, and send less: a ping every 30 seconds or so keeps a socket alive.",
  },
} satisfies Record<keyof typeof CLOSE_CODES, { when: string; action: string }>;

/** Close code for a socket whose session ended. */
export const SESSION_ENDED_CODE = CLOSE_CODES.SESSION_ENDED;
