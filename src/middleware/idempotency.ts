/**
 * The Idempotency-Key header on unsafe POSTs (services/idempotency.ts has the rules). Runs after
 * authentication, for signed-in callers: keys are the caller's own, so one user's key can never
 * replay another's answer. Anonymous POSTs and the auth endpoints (whose answers carry tokens
 * and cookies, which must never be stored) ignore the header.
 *
 * The fingerprint covers method, path, query and payload, as one JSON array (parts cannot run
 * into each other). A JSON (or any non-multipart) body is hashed byte for byte; a multipart body
 * is hashed by its parts — names, values, and each file's name, type and bytes — not its
 * boundary, which a client re-encoding a retried upload chooses afresh. Reading the body here leaves it in Hono's body cache for the route.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { settleAfterAnswer } from "../lib/settle";
import { sha256Hex } from "../lib/hash";
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  MAX_LIVE_KEYS_PER_USER,
  MAX_STORED_BODY_BYTES,
  releaseIdempotencyKey,
  type StoredAnswer,
} from "../services/idempotency";

export const IDEMPOTENCY_HEADER = "Idempotency-Key";
export const REPLAYED_HEADER = "Idempotent-Replayed";
const AUTH_PATH = /^\/api(\/v1)?\/auth(\/|$)/;
/** A bare key: visible ASCII, 1–255 characters (clients that do not quote are accepted too). */
const KEY = /^[\x21-\x7e]{1,255}$/;
/**
 * The draft's form: an RFC 8941 sf-string, printable ASCII in quotes where `"` and `\` appear
 * only escaped (`\"`, `\\`); anything else inside the quotes is a parse failure (§4.2.5).
 */
const SF_STRING = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/;
/** Answer headers a replay repeats (the rest — request id, CORS, caching — are the replay's own). */
const KEPT_HEADERS = ["content-type", "location", "content-location", "etag", "last-modified", "link"];
const TEXT_TYPES = /^(application\/([\w.+-]*json|xml|[\w.+-]*\+xml)|text\/)/i;

export function parseIdempotencyKey(header: string): string {
  const trimmed = header.trim();
  const invalid = () =>
    new AppError(
      "IDEMPOTENCY_KEY_INVALID",
      400,
      `${IDEMPOTENCY_HEADER} must be a quoted string (RFC 8941) or 1 to 255 visible ASCII characters.`,
    );
  if (!trimmed.startsWith('"')) {
    if (!KEY.test(trimmed)) throw invalid();
    return trimmed;
  }
  const quoted = SF_STRING.exec(trimmed);
  if (!quoted) throw invalid();
  const key = quoted[1]!.replace(/\\(["\\])/g, "$1");
  if (key.length === 0 || key.length > 255) throw invalid();
  return key;
}

export const idempotency: MiddlewareHandler<AppEnv> = async (c, next) => {
  const header = c.req.method === "POST" ? c.req.header(IDEMPOTENCY_HEADER) : undefined;
  const user = c.get("user");
  if (header === undefined || !user || AUTH_PATH.test(c.req.path)) return next();
  const key = parseIdempotencyKey(header);
  const fingerprint = await requestFingerprint(c);
  const outcome = await claimIdempotencyKey(c.env, user.id, key, fingerprint);
  if (outcome.kind === "reused") {
    throw new AppError(
      "IDEMPOTENCY_KEY_REUSED",
      422,
      `This ${IDEMPOTENCY_HEADER} was already used for a different request. Use a new key for a new request.`,
    );
  }
  if (outcome.kind === "full") {
    const seconds = Math.max(1, Math.ceil((Date.parse(outcome.freeAt) - Date.now()) / 1000));
    throw new AppError(
      "IDEMPOTENCY_KEY_LIMIT",
      429,
      `You have used ${MAX_LIVE_KEYS_PER_USER} ${IDEMPOTENCY_HEADER}s in the last 24 hours. Retry after Retry-After, or send this request without the header.`,
      undefined,
      { "Retry-After": String(seconds) },
    );
  }
  if (outcome.kind === "running") {
    const seconds = Math.max(1, Math.ceil((Date.parse(outcome.lockedUntil) - Date.now()) / 1000));
    throw new AppError(
      "IDEMPOTENCY_KEY_IN_USE",
      409,
      `A request with this ${IDEMPOTENCY_HEADER} is still running. Retry when it has finished.`,
      undefined,
      {
        "Retry-After": String(Math.min(seconds, 5)),
      },
    );
  }
  if (outcome.kind === "replay") {
    const headers = new Headers(outcome.answer.headers);
    headers.set(REPLAYED_HEADER, "true");
    return new Response(outcome.answer.status === 204 ? null : outcome.answer.body, { status: outcome.answer.status, headers });
  }
  await next();
  const answer = await storableAnswer(c.res);
  const { claim } = outcome;
  // The route's work is done: whatever happens to the key now, its answer goes back. A failed
  // write is tried again (a D1 blip), since a key left running is taken over once its lock runs
  // out, and a retry then would run a done write a second time.
  const settle = answer
    ? () => completeIdempotencyKey(c.env, user.id, key, claim, answer)
    : () => releaseIdempotencyKey(c.env, user.id, key, claim);
  await settleAfterAnswer(settle, { logger: c.get("logger"), message: "could not record an idempotency key's outcome" });
};

/**
 * The answer to keep, or null when it must not be replayed: a failure, a cookie, a stream, or
 * an answer its route marked `Cache-Control: no-store` because it carries a secret (a calendar
 * subscription URL) that must not sit in the store for a day. A retry of such a request runs
 * again; the route is written so that a second run is safe.
 */
async function storableAnswer(res: Response): Promise<StoredAnswer | null> {
  if (res.status >= 400 || res.status < 200 || res.headers.has("Set-Cookie")) return null;
  if (/(^|[\s,])no-store([\s,]|$)/i.test(res.headers.get("Cache-Control") ?? "")) return null;
  const contentType = res.headers.get("Content-Type") ?? "";
  if (res.status !== 204 && !TEXT_TYPES.test(contentType)) return null;
  const declared = Number(res.headers.get("Content-Length") ?? "0");
  if (declared > MAX_STORED_BODY_BYTES) return null;
  const body = res.status === 204 ? "" : await res.clone().text();
  if (body.length > MAX_STORED_BODY_BYTES) return null;
  const headers: [string, string][] = [];
  for (const name of KEPT_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) headers.push([name, value]);
  }
  return { status: res.status, headers, body };
}

/**
 * SHA-256 over method, path, query, media type and payload (multipart by its parts), encoded as
 * one JSON array, so no part can end where another begins: a file named `leaf:x.png` of type
 * `image/png` and one named `leaf` of type `x.png:image/png` are two requests.
 */
async function requestFingerprint(c: Context<AppEnv>): Promise<string> {
  const url = new URL(c.req.url);
  const contentType = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  const parts: unknown[] = [c.req.method, url.pathname.replace(/\/+$/, ""), url.search, contentType];
  if (contentType.startsWith("multipart/")) {
    let form: FormData;
    try {
      form = await c.req.formData();
    } catch {
      throw new AppError("MALFORMED_REQUEST", 400, "The multipart body could not be parsed.");
    }
    for (const [name, value] of form.entries()) {
      if (typeof value === "string") {
        const hash = await sha256Hex(value);
        parts.push([name, hash]);
      } else {
        const hash = await sha256Hex(await value.arrayBuffer());
        parts.push([name, value.name, value.type, value.size, hash]);
      }
    }
  } else {
    const hash = await sha256Hex(await c.req.arrayBuffer());
    parts.push(hash);
  }
  return sha256Hex(JSON.stringify(parts));
}
