/**
 * The one-click cancel link of a two-factor reset (services/two-factor-reset.ts), carried by the
 * email of the owner's `two_factor_reset_started` security notice, so a reset start mails the
 * owner once. The token is stored nowhere: it is the HMAC-SHA-256 of the reset's start-link hash
 * under a key derived from JWT_SECRET for this purpose only (lib/derived-keys), so
 * - the reset row keeps only its SHA-256 (`cancel_hash`), as before;
 * - the notification (in-app list, every session's socket, push, export) holds only the reset's
 *   id, and the notice's email derives the link again when it is sent, the same bytes on every
 *   attempt (a retry reuses the provider's Idempotency-Key);
 * - a token of another kind (a start link, a password reset token) is never a cancel token, and a
 *   cancel token does only what `POST 2fa/reset/cancel/` does: cancel that reset while it is open.
 * Should JWT_SECRET be rotated between the start and the mail, the derived token no longer matches
 * the stored hash: the mail then goes without the link (Security settings still cancel).
 */
import { and, eq } from "drizzle-orm";
import type { Config } from "../config";
import { database } from "../db/client";
import { twoFactorResets } from "../db/schema";
import type { Bindings } from "../env";
import { signingKey } from "../lib/derived-keys";
import { base64UrlEncode, sha256Hex } from "../lib/hash";
import type { EmailAction } from "./email-templates";

const PURPOSE = "two-factor-reset-cancel";

/** The cancel token of the reset started from the link whose hash is `linkHash`. */
export async function twoFactorResetCancelToken(config: Config, linkHash: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await signingKey(config, PURPOSE), new TextEncoder().encode(linkHash));
  return base64UrlEncode(new Uint8Array(mac));
}

/**
 * The cancel link a security notice's email carries: for `two_factor_reset_started` (its data
 * names the reset), when the reset is the notice owner's and the token derived now is the one it
 * stored; otherwise none.
 */
export async function securityNoticeAction(
  env: Bindings,
  config: Config,
  notice: { userId: string; data: Record<string, unknown> },
): Promise<EmailAction | undefined> {
  const { data } = notice;
  if (data.event !== "two_factor_reset_started" || typeof data.reset_id !== "string") return undefined;
  const reset = await database(env)
    .select({ linkHash: twoFactorResets.linkHash, cancelHash: twoFactorResets.cancelHash })
    .from(twoFactorResets)
    .where(and(eq(twoFactorResets.id, data.reset_id), eq(twoFactorResets.userId, notice.userId)))
    .get();
  if (!reset?.cancelHash) return undefined;
  const token = await twoFactorResetCancelToken(config, reset.linkHash);
  if ((await sha256Hex(token)) !== reset.cancelHash) return undefined;
  return {
    label: "Cancel the reset (one click, once)",
    url: `${config.FRONTEND_URL}/two-factor-reset/cancel?token=${encodeURIComponent(token)}`,
    token: { label: "Cancel token", value: token },
  };
}
