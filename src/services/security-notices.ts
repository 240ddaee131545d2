/**
 * Security notices (issue 10 item 1): a password changed or reset, an account locked, a new
 * sign-in method linked. Each is a notification of type `security`; the delivery trigger
 * (migrations/0020) emails it at once through the notification queue — security mail is never
 * batched into a digest, reaches unverified addresses too, cannot be turned off
 * (services/notification-preferences.ts) and so carries no unsubscribe link. Best effort: a
 * failed notice is logged and never undoes the change it reports.
 */
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import { createNotification } from "./notifications";

export type SecurityEvent =
  | "password_changed"
  | "password_reset"
  | "sign_in_method_linked"
  | "account_locked"
  | "password_removed"
  | "sign_in_method_removed";

const WORDS: Record<SecurityEvent, (detail: string) => { title: string; body: string }> = {
  password_changed: () => ({
    title: "Your Plant Community password was changed",
    body: "Every other session was signed out. If this was not you, reset your password now and review your account.",
  }),
  password_reset: () => ({
    title: "Your Plant Community password was reset",
    body: "Every session was signed out. If you did not ask for a reset, reset your password again and review your account.",
  }),
  account_locked: (detail) => ({
    title: "Your Plant Community account was locked",
    body: `${detail} If this was not you, consider resetting your password.`,
  }),
  password_removed: (provider) => ({
    title: "Your Plant Community password was removed",
    body:
      `You just signed in with ${provider}, which vouches for your email address. Your password was set before you ` +
      "confirmed this address from inside your account, so someone else may have chosen it: we removed it and signed out " +
      'every session. Sign in as you just did, or set a new password with "Forgot password".',
  }),
  sign_in_method_removed: (provider) => ({
    title: "Sign-in methods were removed from your Plant Community account",
    body:
      `You signed in with ${provider}, which vouches for your email address. Other sign-in methods linked to your account had ` +
      "not been shown to be yours (they were linked with another address, or an unverified one, and this address was confirmed " +
      "outside the account, so someone else may have set them up), so we removed them and signed out every session. Sign in " +
      `with ${provider}; a sign-in that vouches for this address links again.`,
  }),
  sign_in_method_linked: (provider) => ({
    title: `${provider} can now sign in to your Plant Community account`,
    body: `A ${provider} account was linked to yours and can be used to sign in. If this was not you, reset your password and review your account.`,
  }),
};

export async function tellSecurityEvent(
  env: Bindings,
  user: { id: string },
  event: SecurityEvent,
  detail = "",
  logger?: Logger,
): Promise<void> {
  const { title, body } = WORDS[event](detail);
  const at = new Date().toISOString();
  try {
    await createNotification(
      env,
      { userId: user.id, type: "security", title, body, data: { event, detail }, dedupeKey: `security:${event}:${user.id}:${at}` },
      logger,
    );
  } catch (err) {
    logger?.warn("security notice failed", { user_id: user.id, event, error: String(err) });
  }
}
