// HTTP email API emulator modelled on Resend (https://api.resend.com): `POST /emails` sends.
// The emulator keeps every accepted message in an outbox, readable in-process (`outbox`) and
// over HTTP (`GET /emails`, `GET /emails/{id}`), so tests and local runs can follow the links
// in password-reset and notification mails.
//
// Differences from Resend, on purpose: an unknown key is 401 `invalid_api_key` (Resend answers
// 403), every body problem is 422 `validation_error`, and `GET /emails` (not a Resend route)
// lists the outbox in send order, optionally filtered by `?to=`.
//
// It also plays the receiving mailbox for one-click unsubscribe: a message whose headers announce
// it (List-Unsubscribe-Post) must follow RFC 8058 §3.1 (List-Unsubscribe holds exactly one https
// URI, in RFC 2369's `<uri>, <uri>` list, and List-Unsubscribe-Post is exactly
// `List-Unsubscribe=One-Click`); otherwise it is refused, 422 `validation_error`, so a broken
// header fails every test that sends mail instead of passing unseen. (Resend itself would send it,
// and mailbox providers would then ignore the one-click.)
//
// A subject or header value with a line break is refused (422 `validation_error`): a header is one
// line (RFC 5322 §2.2), and one carrying user text must not start another.
//
// `Idempotency-Key` (as Resend documents it): a second `POST /emails` with the same key and the
// same body answers the first email's id and sends nothing; the same key with another body is
// 409 `invalid_idempotent_request`. Keys are kept until reset (Resend: 24 hours).

import {
  COMMON_FAILURES,
  DEFAULT_API_KEY,
  bearerToken,
  defineEmulator,
  isRecord,
  jsonResponse,
  readJsonBody,
  type CommonFailure,
  type Emulator,
} from "./common";

export interface EmailEmulatorOptions {
  apiKeys?: string[];
}

export interface SentEmail {
  id: string;
  object: "email";
  from: string;
  to: string[];
  subject: string;
  html: string | null;
  text: string | null;
  reply_to: string[] | null;
  headers: Record<string, string> | null;
  created_at: string;
  last_event: "delivered";
}

export type EmailEmulator = Emulator<CommonFailure> & {
  /** Accepted messages in send order. */
  readonly outbox: readonly SentEmail[];
  /**
   * A webhook delivery about one of its emails, signed as Resend signs them (Svix: `svix-id`,
   * `svix-timestamp`, `svix-signature: v1,<base64 HMAC-SHA-256 of "id.timestamp.body">` keyed
   * with the base64 part of the `whsec_…` secret). Tests pass it to the Worker's webhook route;
   * `POST /emails/{id}/events` `{type, url, secret}` sends one over HTTP (local runs).
   */
  webhook(
    emailId: string,
    type: WebhookType,
    secret: string,
    options?: { bounceType?: string; timestampS?: number; id?: string },
  ): Promise<WebhookDelivery>;
};

export type WebhookType = "email.delivered" | "email.bounced" | "email.complained" | "email.delivery_delayed";
export interface WebhookDelivery {
  headers: Record<string, string>;
  body: string;
}

async function svixSignature(secret: string, id: string, timestampS: number, body: string): Promise<string> {
  if (!secret.startsWith("whsec_")) throw new Error("webhook secrets start with whsec_");
  const raw = Uint8Array.from(atob(secret.slice(6)), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestampS}.${body}`)));
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}

const MAX_RECIPIENTS = 50;
/** `user@example.com` or `Name <user@example.com>`. */
const ADDRESS = /^(?:[^<>]*<\s*[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+\s*>|[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+)$/;

export function createEmailEmulator(options: EmailEmulatorOptions = {}): EmailEmulator {
  const apiKeys = new Set(options.apiKeys ?? [DEFAULT_API_KEY]);
  let outbox: SentEmail[] = [];
  let idempotency = new Map<string, { body: string; id: string }>();

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.replace(/\/+$/, "");
    const idMatch = /^\/emails\/([^/]+)$/.exec(path);
    if (path !== "/emails" && !idMatch && !/^\/emails\/[^/]+\/events$/.test(path))
      return resendError(404, "not_found", "The requested endpoint does not exist.");

    const key = bearerToken(req);
    if (!key)
      return resendError(
        401,
        "missing_api_key",
        "Missing API key in the authorization header. Include the following header in the request: Authorization: Bearer YOUR_API_KEY.",
      );
    if (!apiKeys.has(key)) return resendError(401, "invalid_api_key", "API key is invalid");

    const eventMatch = /^\/emails\/([^/]+)\/events$/.exec(path);
    if (eventMatch && req.method === "POST") {
      const json = await readJsonBody(req);
      const body = json.ok && isRecord(json.value) ? json.value : {};
      const { type, url: target, secret } = body as { type?: unknown; url?: unknown; secret?: unknown };
      if (typeof type !== "string" || typeof target !== "string" || typeof secret !== "string")
        return resendError(422, "validation_error", "Send {type, url, secret}.");
      const delivery = await webhook(decodeURIComponent(eventMatch[1] as string), type as WebhookType, secret);
      const answer = await fetch(target, { method: "POST", headers: delivery.headers, body: delivery.body });
      return jsonResponse({ delivered: answer.status, answer: await answer.text() });
    }
    if (idMatch) {
      if (req.method !== "GET") return resendError(405, "method_not_allowed", "Method is not allowed for the requested path.");
      const email = outbox.find((sent) => sent.id === decodeURIComponent(idMatch[1] as string));
      return email ? jsonResponse(email) : resendError(404, "not_found", "Email not found");
    }
    if (req.method === "GET") {
      const to = url.searchParams.get("to")?.toLowerCase();
      const data = to ? outbox.filter((email) => email.to.some((address) => addressOf(address) === to)) : outbox;
      return jsonResponse({ object: "list", data });
    }
    if (req.method !== "POST") return resendError(405, "method_not_allowed", "Method is not allowed for the requested path.");

    const idemKey = req.headers.get("idempotency-key");
    if (idemKey !== null && (idemKey.length === 0 || idemKey.length > 256))
      return resendError(422, "validation_error", "The `Idempotency-Key` header must be 1 to 256 characters.");
    const raw = await req.clone().text();
    const seen = idemKey === null ? undefined : idempotency.get(idemKey);
    if (seen) {
      if (seen.body !== raw)
        return resendError(409, "invalid_idempotent_request", "Same idempotency key used with a different request payload.");
      return jsonResponse({ id: seen.id });
    }
    const parsed = await parseEmail(req);
    if (!parsed.ok) return resendError(422, "validation_error", parsed.error);
    outbox.push(parsed.email);
    if (idemKey !== null) idempotency.set(idemKey, { body: raw, id: parsed.email.id });
    return jsonResponse({ id: parsed.email.id });
  }

  async function webhook(
    emailId: string,
    type: WebhookType,
    secret: string,
    options: { bounceType?: string; timestampS?: number; id?: string } = {},
  ): Promise<WebhookDelivery> {
    const email = outbox.find((sent) => sent.id === emailId);
    const data: Record<string, unknown> = {
      email_id: emailId,
      from: email?.from ?? "",
      to: email?.to ?? [],
      subject: email?.subject ?? "",
      created_at: email?.created_at ?? new Date().toISOString(),
    };
    if (type === "email.bounced")
      data.bounce = { type: options.bounceType ?? "Permanent", message: "The recipient's mailbox does not exist." };
    const body = JSON.stringify({ type, created_at: new Date().toISOString(), data });
    const id = options.id ?? `msg_${crypto.randomUUID().replaceAll("-", "")}`;
    const timestampS = options.timestampS ?? Math.floor(Date.now() / 1000);
    return {
      headers: {
        "content-type": "application/json",
        "svix-id": id,
        "svix-timestamp": String(timestampS),
        "svix-signature": await svixSignature(secret, id, timestampS, body),
      },
      body,
    };
  }

  const emulator = defineEmulator<CommonFailure>({
    name: "email",
    failures: COMMON_FAILURES,
    route,
    faults: {
      rateLimited: (retryAfterSeconds) =>
        resendError(
          429,
          "rate_limit_exceeded",
          "Too many requests. You can only make 2 requests per second. See rate limit response headers for more information.",
          {
            "ratelimit-limit": "2",
            "ratelimit-remaining": "0",
            "ratelimit-reset": String(Math.ceil(retryAfterSeconds)),
            "retry-after": String(Math.ceil(retryAfterSeconds)),
          },
        ),
      serverError: () => resendError(500, "application_error", "An unexpected error occurred, please try again later."),
      malformedSample: { id: "00000000-0000-4000-8000-000000000000" },
    },
    resetState() {
      outbox = [];
      idempotency = new Map();
    },
  });
  Object.defineProperty(emulator, "webhook", { value: webhook, enumerable: true });
  return Object.defineProperty(emulator, "outbox", { get: () => outbox, enumerable: true }) as EmailEmulator;
}

function resendError(statusCode: number, name: string, message: string, headers: Record<string, string> = {}): Response {
  return jsonResponse({ statusCode, name, message }, statusCode, headers);
}

/** The bare, lower-cased address of `Name <user@example.com>` or `user@example.com`. */
function addressOf(address: string): string {
  return (/<([^>]+)>/.exec(address)?.[1] ?? address).trim().toLowerCase();
}

type ParsedEmail = { ok: true; email: SentEmail } | { ok: false; error: string };

async function parseEmail(req: Request): Promise<ParsedEmail> {
  const json = await readJsonBody(req);
  if (!json.ok || !isRecord(json.value)) return { ok: false, error: "Invalid JSON body." };
  const body = json.value;

  const addressError = (field: string) =>
    `Invalid \`${field}\` field. The email address needs to follow the \`email@example.com\` or \`Name <email@example.com>\` format.`;
  const addressList = (value: unknown): string[] | null =>
    typeof value === "string" ? [value] : Array.isArray(value) && value.every((v) => typeof v === "string") ? (value as string[]) : null;

  if (body.from === undefined || body.from === "") return { ok: false, error: "Missing `from` field." };
  if (typeof body.from !== "string" || !ADDRESS.test(body.from)) return { ok: false, error: addressError("from") };
  if (body.to === undefined || (Array.isArray(body.to) && body.to.length === 0) || body.to === "")
    return { ok: false, error: "Missing `to` field." };
  const to = addressList(body.to);
  if (!to?.every((address) => ADDRESS.test(address))) return { ok: false, error: addressError("to") };
  if (to.length > MAX_RECIPIENTS)
    return { ok: false, error: `Too many recipients. The \`to\` field can contain at most ${MAX_RECIPIENTS} addresses.` };
  if (typeof body.subject !== "string" || body.subject === "") return { ok: false, error: "Missing `subject` field." };
  // A header is one line (RFC 5322 §2.2): a line break in the subject would start another header.
  if (/[\r\n]/.test(body.subject)) return { ok: false, error: "Invalid `subject` field. It must not contain line breaks." };
  const html = typeof body.html === "string" && body.html !== "" ? body.html : null;
  const text = typeof body.text === "string" && body.text !== "" ? body.text : null;
  if (html === null && text === null) return { ok: false, error: "Missing `html` or `text` field." };

  let replyTo: string[] | null = null;
  if (body.reply_to !== undefined) {
    replyTo = addressList(body.reply_to);
    if (!replyTo?.every((address) => ADDRESS.test(address))) return { ok: false, error: addressError("reply_to") };
  }
  let headers: Record<string, string> | null = null;
  if (body.headers !== undefined) {
    if (!isRecord(body.headers) || !Object.values(body.headers).every((v) => typeof v === "string")) {
      return { ok: false, error: "Invalid `headers` field. Expected an object of string values." };
    }
    headers = body.headers as Record<string, string>;
    if (Object.values(headers).some((v) => /[\r\n]/.test(v)))
      return { ok: false, error: "Invalid `headers` field. A header value must not contain line breaks." };
    const problem = listUnsubscribeProblem(headers);
    if (problem) return { ok: false, error: problem };
  }

  return {
    ok: true,
    email: {
      id: crypto.randomUUID(),
      object: "email",
      from: body.from,
      to,
      subject: body.subject,
      html,
      text,
      reply_to: replyTo,
      headers,
      created_at: new Date().toISOString(),
      last_event: "delivered",
    },
  };
}

/** Header lookup ignoring case, as mail headers are. */
function header(headers: Record<string, string>, name: string): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : headers[key];
}

/**
 * What is wrong with the message's unsubscribe headers, or null: List-Unsubscribe is RFC 2369's
 * comma-separated list of `<uri>`s; with List-Unsubscribe-Post (RFC 8058 §3.1) it must hold
 * exactly one https URI, and the Post header must be exactly `List-Unsubscribe=One-Click`.
 */
export function listUnsubscribeProblem(headers: Record<string, string>): string | null {
  const list = header(headers, "List-Unsubscribe");
  const post = header(headers, "List-Unsubscribe-Post");
  if (list === undefined) return post === undefined ? null : "List-Unsubscribe-Post needs a List-Unsubscribe header (RFC 8058 §3.1).";
  const items = list.split(",").map((item) => item.trim());
  const uris: URL[] = [];
  for (const item of items) {
    const uri = /^<([^<>\s]+)>$/.exec(item)?.[1];
    if (uri === undefined) return `List-Unsubscribe must be a list of <uri> (RFC 2369); got ${JSON.stringify(item)}.`;
    try {
      uris.push(new URL(uri));
    } catch {
      return `List-Unsubscribe holds an invalid URI: ${uri}.`;
    }
  }
  if (post === undefined) return null;
  if (post.trim() !== "List-Unsubscribe=One-Click")
    return 'List-Unsubscribe-Post must be exactly "List-Unsubscribe=One-Click" (RFC 8058 §3.1).';
  const https = uris.filter((u) => u.protocol === "https:");
  if (https.length !== 1) return `One-click List-Unsubscribe must hold exactly one https URI (RFC 8058 §3.1); it holds ${https.length}.`;
  if (uris.some((u) => u.protocol === "http:")) return "One-click List-Unsubscribe may not hold a plain http URI (RFC 8058 §3.1).";
  return null;
}
