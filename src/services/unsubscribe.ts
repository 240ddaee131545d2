/**
 * One-click unsubscribe (RFC 8058, API.md §5b). Every notification email carries
 *   List-Unsubscribe: <https://…/api/v1/notifications/unsubscribe/?token=…>, <mailto:…?subject=unsubscribe%20…>
 *   List-Unsubscribe-Post: List-Unsubscribe=One-Click
 * The token names the user and the notification type (or `all`) and an expiry, signed with
 * HMAC-SHA-256 under a key derived (HKDF) from JWT_SECRET for this purpose only, so no new secret
 * is needed and no token of another kind can be replayed here. A link signed under a secret of
 * JWT_SECRET_PREVIOUS keeps working while that secret is listed there (README, rotation). Anyone holding the link may
 * unsubscribe its owner — that is the point of the standard — but only from email, never
 * anything else, and a tampered, truncated or expired token changes nothing.
 *
 * Unsubscribing sets `email: false` for the type (or for every type that can be turned off);
 * security mail stays on (it cannot be turned off).
 *
 * The token also names the address the mail went to (a digest of it, not the address): the link
 * is that mailbox's, so once the account has moved to another address it changes nothing. The old
 * mailbox gets none of the account's mail any more, and whoever reads it (the reason the owner
 * moved, often) must not keep a switch over the account's preferences. Such a link is answered as
 * a live one is, as for a deleted account: the answer reveals nothing about the account.
 */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { signingKey, verifiedByAny, verifyingKeys } from "../lib/derived-keys";
import { AppError, isDeletedAccountWrite, isForeignKeyViolation } from "../lib/errors";
import { base64UrlDecode, base64UrlEncode, sha256Hex } from "../lib/hash";
import { ALWAYS_EMAILED, PREFERENCE_TYPES, type PreferenceType, updatePreferences } from "./notification-preferences";
import { findUserById } from "./users";

/** How long an emailed unsubscribe link works (people act on old mail). */
export const UNSUBSCRIBE_TTL_S = 90 * 24 * 3600;

export type UnsubscribeScope = PreferenceType | "all";

interface Claims {
  /** user id */
  u: string;
  /** type or "all" */
  t: UnsubscribeScope;
  /** expiry, seconds since the epoch */
  e: number;
  /**
   * The address mailed (addressTag). Absent only in links mailed before links named their
   * address; those keep working for the rest of their 90 days.
   */
  a?: string;
}

/** The address as mail treats it (case-insensitive, trimmed), digested: the link must not spell it out. */
async function addressTag(address: string): Promise<string> {
  return (await sha256Hex(address.trim().toLowerCase())).slice(0, 32);
}

const PURPOSE = "unsubscribe/v1";

/**
 * A signed unsubscribe token for `userId` and `scope`, valid UNSUBSCRIBE_TTL_S from `now` (ms), for
 * mail to `address` (listUnsubscribeHeaders always names it; without it, the form of links mailed
 * before links named their address).
 */
export async function unsubscribeToken(
  env: Bindings,
  userId: string,
  scope: UnsubscribeScope,
  now = Date.now(),
  address?: string,
): Promise<string> {
  const claims: Claims = {
    u: userId,
    t: scope,
    e: Math.floor(now / 1000) + UNSUBSCRIBE_TTL_S,
    ...(address === undefined ? {} : { a: await addressTag(address) }),
  };
  const payload = base64UrlEncode(new TextEncoder().encode(JSON.stringify(claims)));
  const mac = await crypto.subtle.sign("HMAC", await signingKey(getConfig(env), PURPOSE), new TextEncoder().encode(payload));
  return `${payload}.${base64UrlEncode(new Uint8Array(mac))}`;
}

const refused = (why: string) =>
  new AppError(
    "INVALID_TOKEN",
    400,
    `This unsubscribe link is not valid: ${why}. Use the link from a recent email, or change your preferences in the app.`,
  );

/**
 * The token's user and scope (and the digest of the address it was mailed to, when it names one);
 * a 400 INVALID_TOKEN for anything tampered, malformed or expired.
 */
export async function verifyUnsubscribeToken(
  env: Bindings,
  token: string,
  now = Date.now(),
): Promise<{ userId: string; scope: UnsubscribeScope; address?: string }> {
  const [payload, mac, extra] = token.split(".");
  if (!payload || !mac || extra !== undefined || token.length > 1024) throw refused("it is malformed");
  const macBytes = base64UrlDecode(mac);
  if (macBytes?.length !== 32) throw refused("it is malformed");
  // Under the current secret or a previous one (mail already sent keeps working through a
  // rotation while JWT_SECRET_PREVIOUS holds its secret); compared in constant time.
  const ok = await verifiedByAny(await verifyingKeys(getConfig(env), PURPOSE), macBytes, new TextEncoder().encode(payload));
  if (!ok) throw refused("it has been altered");
  const bytes = base64UrlDecode(payload);
  let claims: Claims;
  try {
    claims = JSON.parse(new TextDecoder().decode(bytes ?? new Uint8Array())) as Claims;
  } catch {
    throw refused("it is malformed");
  }
  if (
    typeof claims.u !== "string" ||
    typeof claims.e !== "number" ||
    (claims.a !== undefined && (typeof claims.a !== "string" || !/^[0-9a-f]{32}$/.test(claims.a))) ||
    !(claims.t === "all" || (PREFERENCE_TYPES as string[]).includes(claims.t))
  ) {
    throw refused("it is malformed");
  }
  if (claims.e * 1000 <= now) throw refused("it has expired");
  return { userId: claims.u, scope: claims.t, ...(claims.a === undefined ? {} : { address: claims.a }) };
}

/** Whether the account is still mailed at the address `tag` digests (false for an account gone). */
async function stillMailedTo(env: Bindings, userId: string, tag: string): Promise<boolean> {
  const user = await findUserById(env, userId);
  return user !== null && (await addressTag(user.email)) === tag;
}

/**
 * Turns email off for the token's scope. Answers which types are now off by email. A user
 * deleted since the mail was sent, or mailed at another address since: nothing to do (the same
 * answer, so tokens reveal nothing).
 */
export async function unsubscribe(
  env: Bindings,
  token: string,
  now = Date.now(),
): Promise<{ scope: UnsubscribeScope; types: PreferenceType[] }> {
  const { userId, scope, address } = await verifyUnsubscribeToken(env, token, now);
  const types = (scope === "all" ? PREFERENCE_TYPES : [scope]).filter((t) => !ALWAYS_EMAILED.includes(t));
  // The mailbox it was sent to gets none of this account's mail any more (deleted accounts'
  // anonymised addresses included): it has nothing left to stop, and no say over the account.
  if (address !== undefined && !(await stillMailedTo(env, userId, address))) return { scope, types };
  try {
    await updatePreferences(env, userId, { types: Object.fromEntries(types.map((t) => [t, { email: false }])) });
  } catch (err) {
    // The account is gone (the preferences row's foreign key), or deleted by its owner (its
    // anonymised row refuses new rows, migrations/0042): nothing is sent to it anyway.
    if (!isForeignKeyViolation(err) && !isDeletedAccountWrite(err)) throw err;
  }
  return { scope, types };
}

/**
 * The `mailto:` of List-Unsubscribe (RFC 2369), for mail clients that write instead of POSTing:
 * a message to EMAIL_UNSUBSCRIBE_ADDRESS (routed to the Worker's `email` handler by Cloudflare
 * Email Routing) whose subject holds `unsubscribe <token>` — a reply's `Re:` and the like are
 * allowed around it. The token is the credential, exactly as for the one-click POST; the sender's
 * address counts for nothing (it is easily forged). A subject with no valid token: 400
 * INVALID_TOKEN, nothing changed.
 */
export async function unsubscribeByMail(
  env: Bindings,
  subject: string,
  now = Date.now(),
): Promise<{ scope: UnsubscribeScope; types: PreferenceType[] }> {
  const token = /(?:^|\s)unsubscribe\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)(?:\s|$)/i.exec(subject.slice(0, 2048))?.[1];
  if (!token) throw refused("the subject holds no unsubscribe token");
  return unsubscribe(env, token, now);
}

/**
 * The two List-Unsubscribe headers of RFC 8058 for one email to `recipient` (its link works only
 * while the account is mailed at that address). One-click (List-Unsubscribe-Post)
 * is announced only when the link is https, as RFC 8058 requires; a local run on plain http
 * keeps RFC 2369's List-Unsubscribe alone.
 */
export async function listUnsubscribeHeaders(
  env: Bindings,
  recipient: { id: string; email: string },
  scope: UnsubscribeScope,
  now = Date.now(),
): Promise<Record<string, string>> {
  const config = getConfig(env);
  const token = await unsubscribeToken(env, recipient.id, scope, now, recipient.email);
  const url = `${config.PUBLIC_API_URL.replace(/\/$/, "")}/api/v1/notifications/unsubscribe/?token=${token}`;
  const mailto = `mailto:${config.EMAIL_UNSUBSCRIBE_ADDRESS}?subject=${encodeURIComponent(`unsubscribe ${token}`)}`;
  const list = { "List-Unsubscribe": `<${url}>, <${mailto}>` };
  return url.startsWith("https:") ? { ...list, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" } : list;
}
