/**
 * The email provider's delivery webhook (API.md §5b, issue 10 item 5). Resend signs its webhooks
 * the Svix way (PROVIDERS.md §4a): `svix-id`, `svix-timestamp` (seconds) and `svix-signature`
 * (space-separated `v1,<base64 HMAC-SHA-256>` over `${id}.${timestamp}.${raw body}`, keyed with
 * the base64 part of the `whsec_…` secret). We accept a delivery only when one signature matches
 * (compared in constant time by crypto.subtle.verify), its timestamp is within 5 minutes of our
 * clock, and its id has not been processed before (a replay changes nothing, 409).
 *
 * A hard bounce or a complaint suppresses the address: `isSuppressed` is checked before every
 * email we send. Soft bounces (`email.delivery_delayed`) and deliveries are accepted and ignored.
 * A bounce is lifted when the account holding the address asks for mail to it itself
 * (accounts.ts `openForAskedMail`: a recreated mailbox, a typo fixed), as providers reactivate a
 * bounced address; a complaint (someone said "spam") only by support (`liftSuppression`: the
 * admin route and `npm run admin -- lift-suppression`).
 */
import { and, eq, lt, sql } from "drizzle-orm";
import { getConfig } from "../config";
import { changes, database, runBatch } from "../db/client";
import { emailSuppressions, emailWebhookEvents } from "../db/schema";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import { DAY_MS } from "../lib/durations";

export const WEBHOOK_TOLERANCE_S = 5 * 60;
/**
 * How long a processed delivery's id is kept. Only a replay inside WEBHOOK_TOLERANCE_S of its
 * signed timestamp gets past the signature check, so a day is ample (clock skew, provider retries);
 * kept for ever, the table took one row per event of every email sent.
 */
export const WEBHOOK_ID_RETENTION_MS = DAY_MS;

function base64Decode(text: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** The HMAC key of a `whsec_<base64>` secret; null when the secret is not one. */
async function webhookKey(secret: string): Promise<CryptoKey | null> {
  const raw = secret.startsWith("whsec_") ? base64Decode(secret.slice(6)) : null;
  if (!raw || raw.length < 16) return null;
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

/** Signs a delivery as the provider would (the email emulator and tests use it). */
export async function signWebhook(secret: string, id: string, timestampS: number, body: string): Promise<string> {
  const key = await webhookKey(secret);
  if (!key) throw new Error("not a whsec_ secret");
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestampS}.${body}`));
  return `v1,${btoa(String.fromCharCode(...new Uint8Array(mac)))}`;
}

const refused = (message: string) => new AppError("INVALID_SIGNATURE", 401, message);

/** Checks a delivery's signature and timestamp; throws 401 INVALID_SIGNATURE (or 503 when no secret is configured). */
export async function verifyWebhook(
  env: Bindings,
  headers: { id?: string; timestamp?: string; signature?: string },
  body: string,
  nowMs = Date.now(),
) {
  const key = await webhookKey(getConfig(env).EMAIL_WEBHOOK_SECRET ?? "");
  if (!key) throw new AppError("SERVICE_UNAVAILABLE", 503, "Email webhooks are not configured on this deployment (EMAIL_WEBHOOK_SECRET).");
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature) throw refused("The svix-id, svix-timestamp and svix-signature headers are required.");
  if (!/^\d{1,12}$/.test(timestamp)) throw refused("svix-timestamp must be seconds since the epoch.");
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > WEBHOOK_TOLERANCE_S)
    throw refused("The delivery's timestamp is too far from now (more than 5 minutes).");
  const signed = new TextEncoder().encode(`${id}.${timestamp}.${body}`);
  for (const entry of signature.split(" ").slice(0, 10)) {
    const [version, value] = entry.split(",");
    if (version !== "v1" || !value) continue;
    const mac = base64Decode(value);
    if (mac && mac.length === 32 && (await crypto.subtle.verify("HMAC", key, mac, signed))) return;
  }
  throw refused("No signature of the delivery matches.");
}

interface WebhookEvent {
  type: string;
  data?: { to?: unknown; email_id?: unknown; bounce?: { type?: unknown } };
}

/** The bare, lower-cased address of `Name <user@example.com>` or `user@example.com`. */
export function bareAddress(address: string): string {
  return (/<([^>]+)>/.exec(address)?.[1] ?? address).trim().toLowerCase();
}

/**
 * Processes one verified delivery: records its id (a replay → 409, nothing changed) and, for a
 * hard bounce or complaint, suppresses its recipients — in one batch.
 */
export async function handleEmailEvent(env: Bindings, id: string, body: string): Promise<{ type: string; suppressed: string[] }> {
  let event: WebhookEvent;
  try {
    event = JSON.parse(body) as WebhookEvent;
  } catch {
    throw new AppError("MALFORMED_REQUEST", 400, "The webhook body is not JSON.");
  }
  if (typeof event?.type !== "string")
    throw new AppError("VALIDATION_ERROR", 400, "The webhook body has no event type.", { type: ["Required."] });
  const recipients = (Array.isArray(event.data?.to) ? event.data.to : [event.data?.to])
    .filter((a): a is string => typeof a === "string")
    .map(bareAddress);
  const bounceType = typeof event.data?.bounce?.type === "string" ? event.data.bounce.type.toLowerCase() : "permanent";
  const reason =
    event.type === "email.complained"
      ? "complaint"
      : event.type === "email.bounced" && !["transient", "temporary", "soft"].includes(bounceType)
        ? "bounce"
        : null;
  const suppressed = reason ? recipients : [];
  const db = database(env);
  // One batch: the id and the suppressions together. A replay's suppressions are no-ops (the
  // first delivery inserted them), so "nothing changed" holds without a conditional insert. A
  // complaint outranks a bounce already recorded (the user may lift a bounce, only support a
  // complaint); a bounce leaves a complaint as it is.
  const [recorded] = await runBatch(db, [
    db.insert(emailWebhookEvents).values({ id, type: event.type }).onConflictDoNothing(),
    ...suppressed.map((address) =>
      db
        .insert(emailSuppressions)
        .values({ address, reason: reason!, eventId: id })
        .onConflictDoUpdate({
          target: emailSuppressions.address,
          set: { reason: "complaint", eventId: id },
          setWhere: sql`${reason} = 'complaint' AND ${emailSuppressions.reason} = 'bounce'`,
        }),
    ),
  ]);
  if (changes(recorded) === 0) throw new AppError("CONFLICT", 409, "This webhook delivery was already processed.");
  return { type: event.type, suppressed };
}

export type SuppressionReason = "bounce" | "complaint";

export interface Suppression {
  address: string;
  reason: SuppressionReason;
  createdAt: string;
}
const suppressionFields = { address: emailSuppressions.address, reason: emailSuppressions.reason, createdAt: emailSuppressions.createdAt };

/** `address`'s suppression (since when, and why), or null when we may email it. */
export async function findSuppression(env: Bindings, address: string): Promise<Suppression | null> {
  const row = await database(env)
    .select(suppressionFields)
    .from(emailSuppressions)
    .where(eq(emailSuppressions.address, bareAddress(address)))
    .get();
  return row ?? null;
}

/** Why we must not email `address` (it hard-bounced or complained), or null when we may. */
export async function suppressionOf(env: Bindings, address: string): Promise<SuppressionReason | null> {
  return (await findSuppression(env, address))?.reason ?? null;
}

/** Whether we must not email `address` (it hard-bounced or complained). */
export async function isSuppressed(env: Bindings, address: string): Promise<boolean> {
  return (await suppressionOf(env, address)) !== null;
}

/**
 * Lifts `address`'s suppression — only one for `only` when given (a complaint recorded meanwhile
 * stays) — so mail goes to it again; if it bounces or complains again, the webhook suppresses it
 * again. Returns what was lifted, null when nothing was.
 */
export async function liftSuppression(env: Bindings, address: string, only?: SuppressionReason): Promise<Suppression | null> {
  const bare = eq(emailSuppressions.address, bareAddress(address));
  const row = await database(env)
    .delete(emailSuppressions)
    .where(only ? and(bare, eq(emailSuppressions.reason, only)) : bare)
    .returning(suppressionFields)
    .get();
  return row ?? null;
}

/** Drops processed-delivery ids past WEBHOOK_ID_RETENTION_MS (cron), at most `limit` a run. */
export async function purgeWebhookEvents(env: Pick<Bindings, "DB">, now = Date.now(), limit = 5000): Promise<number> {
  const db = database(env);
  const old = db
    .select({ id: emailWebhookEvents.id })
    .from(emailWebhookEvents)
    .where(lt(emailWebhookEvents.receivedAt, new Date(now - WEBHOOK_ID_RETENTION_MS).toISOString()))
    .limit(limit);
  return changes(await db.delete(emailWebhookEvents).where(sql`${emailWebhookEvents.id} IN ${old}`).run());
}
