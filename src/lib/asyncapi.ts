/**
 * The WebSocket protocol as an AsyncAPI 3.0 document (served at `/api/asyncapi.json`). Every
 * message payload is generated from the zod schema in durable-objects/user-hub-protocol.ts that
 * also types what the services send, and the close codes come from the same module; only the
 * prose is written here. Payloads are JSON Schema draft-07, AsyncAPI 3.0's default schema format.
 */
import { z } from "zod";
import { CLOSE_CODE_MEANINGS, CLOSE_CODES, ClientPing, SERVER_MESSAGES } from "../../durable-objects/user-hub-protocol";

type JsonSchema = Record<string, unknown>;

/** A zod schema as a draft-07 JSON Schema, without `$schema` (the document sets the format). */
/** A plain-text frame whose whole content is one word (`ping`, `pong`): `pingText` carries "ping". */
function textMessage(name: "pingText" | "pongText", title: string, summary: string) {
  const word = name === "pingText" ? "ping" : "pong";
  return { name, title, summary, contentType: "text/plain", payload: { type: "string", const: word } };
}

export function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { target: "draft-7", io: "output" }) as JsonSchema;
  return rest;
}

const EXAMPLE_ID = "0192f1c2-7a3b-7c4d-8e5f-0a1b2c3d4e5f";

/** One example per server message: checked against its own payload schema by the tests. */
export const MESSAGE_EXAMPLES: Record<keyof typeof SERVER_MESSAGES, unknown> = {
  init: { type: "init", request_id: EXAMPLE_ID, message: "connected" },
  progress: {
    type: "progress",
    request_id: EXAMPLE_ID,
    stage: "plantnet_done",
    status: "processing",
    data: { ok: true, cached: false, suggestions: 5, is_plant: true },
  },
  completed: { type: "completed", request_id: EXAMPLE_ID, status: "identified", results_count: 7 },
  error: { type: "error", request_id: EXAMPLE_ID, message: "Plant identification services are unavailable. Please retry later." },
  notification: {
    type: "notification",
    notification: {
      id: "6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b",
      type: "care_reminder",
      title: "Water Monstera",
      body: "Your Monstera deliciosa is due for watering.",
      data: {
        reminder_id: "0192f1c2-0000-7000-8000-000000000001",
        plant_id: "0192f1c2-0000-7000-8000-000000000002",
        due_at: "2026-12-03T08:00:00.000Z",
      },
      is_read: false,
      created_at: "2026-12-03T08:00:01.123Z",
      read_at: null,
    },
  },
  notification_updated: {
    type: "notification_updated",
    notification: {
      id: "7a2d3b0f-4c5e-4f60-9b7c-8d9e0f1a2b3c",
      type: "forum_reply",
      title: 'sam_grows replied to "Brown tips on my calathea"',
      body: "Switch to rain water and keep it out of the draught.",
      data: {
        topic_id: "0192f1c2-0000-7000-8000-000000000003",
        post_id: "0192f1c2-0000-7000-8000-000000000004",
        category_slug: "houseplants",
      },
      is_read: true,
      created_at: "2026-12-03T09:15:00.000Z",
      read_at: "2026-12-03T09:20:00.000Z",
    },
  },
  notification_withdrawn: { type: "notification_withdrawn", ids: ["6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b"] },
  pong: { type: "pong" },
};

const TITLES: Record<keyof typeof SERVER_MESSAGES, string> = {
  init: "Connected",
  progress: "Progress of a request",
  completed: "Request completed",
  error: "Request failed",
  notification: "New notification",
  notification_updated: "Notification updated",
  notification_withdrawn: "Notifications withdrawn",
  pong: "Pong (JSON)",
};

type CloseCodeName = keyof typeof CLOSE_CODES;

function closeCodes(names: CloseCodeName[]) {
  return names.map((name) => ({
    code: CLOSE_CODES[name],
    name,
    when: CLOSE_CODE_MEANINGS[name].when,
    action: CLOSE_CODE_MEANINGS[name].action,
  }));
}

const ref = (path: string) => ({ $ref: path });

const DESCRIPTION = `Live progress of queued plant identifications and diagnoses, and new (and withdrawn) in-app notifications.

**Connecting.** Open a WebSocket (HTTP GET with \`Upgrade: websocket\`) on one of the two channels:
\`/ws/\` carries every event of the signed-in user; \`/ws/plant-identification/requests/{request_id}/\`
follows one request (identification or diagnosis). The server sends \`init\` first. A socket that
follows a request which is still running then gets every message of it so far, in order; one that
follows a finished request gets its final \`completed\` at once — unless the job that finished it is
still saying its care advice (\`enrich_*\`, \`care_*\`): then the story so far, and the rest and its
\`completed\` as they come (the final state if nothing more arrives for a minute). Notifications are not replayed (read
them with \`GET /api/v1/notifications/\`).

**Authenticating** (any one of the three security schemes): the \`__Host-access_token\` cookie (\`access_token\` in local development) set by
\`POST /api/v1/auth/login/\`; an \`Authorization: Bearer <access>\` header; or, for browsers (which cannot
set headers on a WebSocket), a single-use ticket from \`POST /api/v1/auth/ws-ticket/\` (valid 60 s)
passed as \`?ticket=\`. A cookie or ticket upgrade that sends an Origin (every browser's does) must
come from this site's Origin or an allowed client origin, else the upgrade is refused with HTTP 403
before a ticket is spent; one without an Origin (an app's) is not checked. A plain GET
without \`Upgrade: websocket\` is answered 426.

**Refusals and endings** arrive as close codes (browsers hide the HTTP status of a failed
handshake), listed per channel under \`x-close-codes\`:

${closeCodes(Object.keys(CLOSE_CODES) as CloseCodeName[])
  .map(({ code, when, action }) => `- **${code}**: ${when} ${action}`)
  .join("\n")}

**\`completed\` is idempotent by \`request_id\`.** A request's end is said again when a job died after the
request became final but before its \`completed\` was sent: the queue's redelivery reads the final state
from the database and says it (same \`status\`; \`results_count\` as the request now has it), to the
sockets that have not heard that end — not to one that got it live, nor to one replayed it on connect
with nothing said since. While the request's progress is still arriving (the job that ended it may
still be writing its care advice, \`enrich_*\` and \`care_*\`, which come before its own \`completed\`)
that retelling waits: it is said only once nothing has been said about the request for a minute
and its end has still not been heard, so a \`completed\` never comes before its run's last progress. A socket can still hear one run's \`completed\` twice (it connected while
the hub lacked the end and was replayed the database's, then a late or redelivered one arrived; or a
duplicate delivery spoke while the first was finishing), so clients must treat a second
\`completed\` for a \`request_id\` they already hold as final as a repeat: update the shown state,
do not count or announce it again. Only \`queued\`, or a message of a later \`run\`, starts a new run of a
request. Every message about a request carries its \`run\` (0, then one more per retry), failures and
retold ends included: one of an earlier run that reaches the server after a later run began is dropped,
and a client may ignore any whose \`run\` is below the highest it has seen.

**Heartbeat.** Send the text \`ping\` (answered with the text \`pong\` without waking the server) or
the JSON \`{"type":"ping"}\` (answered with \`{"type":"pong"}\`). Anything else a client sends is ignored.`;

const built = new Map<string, ReturnType<typeof buildDocument>>();

/** The AsyncAPI 3.0 document for a deployment reachable at `publicApiUrl` (an http(s) origin). */
export function asyncApiDocument(opts: { publicApiUrl: string; version: string }): ReturnType<typeof buildDocument> {
  // A deployment has one URL and version: build once per isolate, not per request.
  const key = `${opts.publicApiUrl} ${opts.version}`;
  let doc = built.get(key);
  if (!doc) built.set(key, (doc = buildDocument(opts)));
  return doc;
}

function buildDocument(opts: { publicApiUrl: string; version: string }) {
  const url = new URL(opts.publicApiUrl);
  const serverMessages = Object.keys(SERVER_MESSAGES) as (keyof typeof SERVER_MESSAGES)[];
  // Notifications, and their updates and withdrawals, go to `/ws/` only (UserHub.notify, .withdraw).
  const requestMessages = serverMessages.filter((name) => !name.startsWith("notification"));

  const messages: Record<string, unknown> = {};
  for (const name of serverMessages) {
    messages[name] = {
      name,
      title: TITLES[name],
      summary: SERVER_MESSAGES[name].summary,
      contentType: "application/json",
      payload: jsonSchemaOf(SERVER_MESSAGES[name].schema),
      examples: [{ name, payload: MESSAGE_EXAMPLES[name] }],
    };
  }
  messages.pongText = textMessage(
    "pongText",
    "Pong (text)",
    "The answer to the text `ping`, sent by the runtime without waking the server.",
  );
  messages.ping = {
    name: "ping",
    title: "Ping (JSON)",
    summary: "A heartbeat from clients that send only JSON; answered with `pong`.",
    contentType: "application/json",
    payload: jsonSchemaOf(ClientPing),
    examples: [{ name: "ping", payload: { type: "ping" } }],
  };
  messages.pingText = textMessage("pingText", "Ping (text)", "A heartbeat; answered with the text `pong`.");

  const channelMessages = (names: string[]) => Object.fromEntries(names.map((name) => [name, ref(`#/components/messages/${name}`)]));
  const wsBinding = {
    ws: {
      method: "GET",
      query: {
        type: "object",
        properties: { ticket: { type: "string", description: "A single-use ticket from `POST /api/v1/auth/ws-ticket/` (browsers)." } },
      },
      headers: {
        type: "object",
        properties: { Authorization: { type: "string", description: "`Bearer <access token>` (apps)." } },
      },
      bindingVersion: "0.1.0",
    },
  };
  const security = [
    ref("#/components/securitySchemes/bearer"),
    ref("#/components/securitySchemes/cookie"),
    ref("#/components/securitySchemes/ticket"),
  ];

  const channels = {
    userEvents: {
      address: "/ws/",
      title: "All of the user's events",
      description: "Progress of every request of the signed-in user, and their new notifications.",
      messages: channelMessages([...serverMessages, "pongText", "ping", "pingText"]),
      bindings: wsBinding,
      "x-close-codes": closeCodes(["SESSION_ENDED", "SEND_FAILED", "TRY_AGAIN", "REPLACED", "TOO_MANY_MESSAGES"]),
    },
    requestEvents: {
      address: "/ws/plant-identification/requests/{request_id}/",
      title: "One request",
      description: "Progress of one identification or disease request of the signed-in user, replayed to late subscribers.",
      parameters: {
        request_id: { description: "The request's id (`request_id` in the answer of `POST …/requests/` or `POST …/disease-requests/`)." },
      },
      messages: channelMessages([...requestMessages, "pongText", "ping", "pingText"]),
      bindings: wsBinding,
      "x-close-codes": closeCodes(["SESSION_ENDED", "REQUEST_GONE", "SEND_FAILED", "TRY_AGAIN", "REPLACED", "TOO_MANY_MESSAGES"]),
    },
  };

  const operation = (channel: keyof typeof channels, action: "send" | "receive", names: string[], summary: string, extra = {}) => ({
    action,
    channel: ref(`#/channels/${channel}`),
    summary,
    security,
    messages: names.map((name) => ref(`#/channels/${channel}/messages/${name}`)),
    ...extra,
  });
  const heartbeat = (channel: keyof typeof channels) =>
    operation(channel, "receive", ["ping", "pingText"], "Answers a heartbeat.", {
      reply: {
        channel: ref(`#/channels/${channel}`),
        messages: [ref(`#/channels/${channel}/messages/pong`), ref(`#/channels/${channel}/messages/pongText`)],
      },
    });

  return {
    asyncapi: "3.0.0",
    id: "urn:plant-community:websocket",
    info: {
      title: "Plant Community WebSocket API",
      version: opts.version,
      description: DESCRIPTION,
      externalDocs: { description: "The HTTP API (OpenAPI 3.1)", url: `${url.origin}/api/docs` },
    },
    defaultContentType: "application/json",
    servers: {
      api: {
        host: url.host,
        protocol: url.protocol === "https:" ? "wss" : "ws",
        description: "The Worker; sockets live in one UserHub Durable Object per user.",
        security,
      },
    },
    channels,
    operations: {
      sendUserEvents: operation("userEvents", "send", serverMessages, "Pushes the user's request progress and notifications."),
      receiveUserHeartbeat: heartbeat("userEvents"),
      sendRequestEvents: operation(
        "requestEvents",
        "send",
        requestMessages,
        "Pushes one request's progress, replayed to late subscribers.",
      ),
      receiveRequestHeartbeat: heartbeat("requestEvents"),
    },
    components: {
      messages,
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "The access token from `POST /api/v1/auth/token/` (apps).",
        },
        cookie: {
          type: "httpApiKey",
          in: "cookie",
          name: "__Host-access_token",
          description:
            "The HttpOnly cookie (`access_token` in local development) set by `POST /api/v1/auth/login/` (web); the upgrade's Origin must be allowed.",
        },
        ticket: {
          type: "httpApiKey",
          in: "query",
          name: "ticket",
          description: "Single-use, valid 60 s, from `POST /api/v1/auth/ws-ticket/` (browsers); the upgrade's Origin must be allowed.",
        },
      },
    },
  };
}
