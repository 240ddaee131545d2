/**
 * Web Push subscriptions (API.md §5b): a browser or app registers `{endpoint, keys: {p256dh,
 * auth}}` from `PushManager.subscribe()` with this service's VAPID public key. Checked before
 * anything is stored: an https endpoint on a known push service (PUSH_SERVICE_HOSTS; http to
 * localhost only in local runs), a 65-byte P-256 point on the curve, a 16-byte auth secret — a
 * malformed one is a 400 naming the field, nothing written.
 *
 * An endpoint belongs to one browser profile, so it belongs to one user: subscribing it again
 * (another account signed in on that browser) moves it. A user has at most MAX_DEVICES.
 * Unsubscribing names the endpoint; only its owner can remove it (anyone else: 404).
 */
import { and, eq } from "drizzle-orm";
import { getConfig } from "../config";
import { changes, database, rowIf } from "../db/client";
import { pushSubscriptions } from "../db/schema";
import type { Bindings } from "../env";
import { AppError, errorMatches } from "../lib/errors";
import type { TokenClaims } from "../lib/token-claims";
import { checkPushService, checkSubscription } from "../lib/web-push";
import { sessionEnded, sessionStillLive } from "./sessions";

/** Devices one account may have subscribed; migration 0039's trigger names the same number. */
export const MAX_DEVICES = 20;

export interface SubscriptionInput {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/** The VAPID public key browsers subscribe with; 503 when push is not configured. */
export function vapidPublicKey(env: Bindings): string {
  const config = getConfig(env);
  if (!config.VAPID_PUBLIC_KEY || !config.VAPID_PRIVATE_KEY)
    throw new AppError("SERVICE_UNAVAILABLE", 503, "Push notifications are not configured on this server.");
  return config.VAPID_PUBLIC_KEY;
}

/** `session`: the access token subscribing; its session's sign-out unsubscribes the device again. */
export async function subscribe(
  env: Bindings,
  userId: string,
  input: SubscriptionInput,
  userAgent: string | undefined,
  session: Pick<TokenClaims, "jti" | "iat" | "sid">,
): Promise<{ id: string; endpoint: string; created: boolean }> {
  vapidPublicKey(env);
  const problem = (await checkSubscription(input)) ?? pushServiceProblem(env, input.endpoint);
  if (problem) {
    const field = /p256dh/i.test(problem) ? "keys.p256dh" : /auth/i.test(problem) ? "keys.auth" : "endpoint";
    throw new AppError("VALIDATION_ERROR", 400, "Invalid push subscription.", { [field]: [problem] });
  }
  const db = database(env);
  const s = pushSubscriptions;
  const existing = await db.select().from(s).where(eq(s.endpoint, input.endpoint)).get();
  // The cap is migration 0039's trigger, inside the upsert: subscribes at the same moment cannot
  // pass it together.
  const sessionId = session.sid ?? null;
  // Only while the session subscribing is live: a device subscribed just before every session
  // ended (sign-out everywhere, a password change) must not keep getting the account's pushes.
  const row = await db
    .insert(s)
    .select(
      rowIf(
        s,
        {
          id: crypto.randomUUID(),
          userId,
          endpoint: input.endpoint,
          p256dh: input.keys.p256dh,
          auth: input.keys.auth,
          userAgent: userAgent?.slice(0, 300) ?? null,
          sessionId,
        },
        sessionStillLive(userId, session),
      ),
    )
    .onConflictDoUpdate({
      target: s.endpoint,
      set: {
        userId,
        p256dh: input.keys.p256dh,
        auth: input.keys.auth,
        userAgent: userAgent?.slice(0, 300) ?? null,
        sessionId,
      },
    })
    .returning()
    .get()
    .catch((err: unknown) => {
      if (!errorMatches(err, /PER_USER_CAP push_subscriptions\b/)) throw err;
      throw new AppError("VALIDATION_ERROR", 400, `At most ${MAX_DEVICES} devices can receive push notifications; remove one first.`, {
        endpoint: ["Too many subscribed devices."],
      });
    });
  if (!row) throw sessionEnded();
  return { id: row.id, endpoint: row.endpoint, created: existing?.userId !== userId };
}

/**
 * Why this server will not post to `endpoint`, or null: it must be on one of PUSH_SERVICE_HOSTS
 * (https, default port). Plain http to localhost reaches only a push service on this machine:
 * allowed for local runs, never deployed. Checked when subscribing and again before each send.
 */
export function pushServiceProblem(env: Bindings, endpoint: string): string | null {
  const config = getConfig(env);
  return checkPushService(endpoint, config.PUSH_SERVICE_HOSTS, config.isLocal);
}

export async function unsubscribeDevice(env: Bindings, userId: string, endpoint: string): Promise<void> {
  const s = pushSubscriptions;
  const result = await database(env)
    .delete(s)
    .where(and(eq(s.endpoint, endpoint), eq(s.userId, userId)))
    .run();
  if (changes(result) === 0) throw new AppError("NOT_FOUND", 404, "No such push subscription.");
}

export async function listDevices(env: Bindings, userId: string) {
  const s = pushSubscriptions;
  return database(env)
    .select({
      endpoint: s.endpoint,
      created_at: s.createdAt,
      last_success_at: s.lastSuccessAt,
      failing_since: s.failingSince,
      user_agent: s.userAgent,
    })
    .from(s)
    .where(eq(s.userId, userId))
    .orderBy(s.createdAt)
    .all();
}
