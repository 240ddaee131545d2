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
import { formatWhen } from "./email-templates";
import { createNotification } from "./notifications";

export type SecurityEvent =
  | "password_changed"
  | "password_reset"
  | "sign_in_method_linked"
  | "account_locked"
  | "password_removed"
  | "sign_in_method_removed"
  | "two_factor_enabled"
  | "two_factor_disabled"
  | "recovery_code_used"
  | "recovery_codes_replaced"
  | "push_device_removed"
  | "two_factor_reset_started"
  | "two_factor_reset_cancelled"
  | "two_factor_reset_completed";

const WORDS: Record<SecurityEvent, (detail: string) => { title: string; body: string }> = {
  password_changed: () => ({
    title: "Your Plant Community password was changed",
    body: "Every other session was signed out. If this was not you, reset your password now and review your account.",
  }),
  password_reset: () => ({
    title: "Your Plant Community password was reset",
    body: "Every session was signed out. If you did not ask for a reset, reset your password again and review your account.",
  }),
  // The detail says what locked it and what to do (services/account-proof.ts notifyLockout).
  account_locked: (detail) => ({
    title: "Your Plant Community account was locked",
    body: detail,
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
  two_factor_enabled: () => ({
    title: "Two-factor sign-in is now on for your Plant Community account",
    body: "Signing in with your password now also asks for a code from your authenticator app. Every other session was signed out. If this was not you, reset your password now.",
  }),
  two_factor_disabled: () => ({
    title: "Two-factor sign-in was turned off for your Plant Community account",
    body: "Signing in now asks for your password only. If this was not you, reset your password and turn two-factor sign-in on again.",
  }),
  recovery_code_used: (left) => ({
    title: "A recovery code was used to sign in to your Plant Community account",
    body: `You have ${left} recovery codes left. If this was not you, reset your password and make new recovery codes.`,
  }),
  recovery_codes_replaced: () => ({
    title: "New recovery codes were made for your Plant Community account",
    body: "Your old recovery codes no longer work. If this was not you, reset your password and review your account.",
  }),
  // The detail is when the wait ends (ISO); the data names the reset, whose one-click cancel link
  // this notice's email alone carries (services/two-factor-reset-cancel.ts).
  two_factor_reset_started: (completesAfter) => ({
    title: "Someone asked to turn off two-factor sign-in on your Plant Community account",
    body:
      "They had your password and confirmed the link we emailed to your address. Unless it is cancelled, the first sign-in " +
      `with your password after ${formatWhen(completesAfter, "UTC")} turns two-factor sign-in off, deletes your recovery codes ` +
      "and signs out every other session. If this was not you, cancel it now (the one-click link in the email of this notice, " +
      "or Security settings on any device you are signed in on), then change your password: whoever started it knows it and " +
      "can read your mailbox.",
  }),
  two_factor_reset_cancelled: () => ({
    title: "The two-factor reset on your Plant Community account was cancelled",
    body: "Two-factor sign-in stays on. If you did not cancel it, review your account; if someone else started it, change your password.",
  }),
  two_factor_reset_completed: () => ({
    title: "Two-factor sign-in was turned off on your Plant Community account",
    body:
      "A reset confirmed through your email 72 hours ago has completed: signing in now asks for your password only, your recovery " +
      "codes were deleted and every other session was signed out. If this was not you, reset your password and turn two-factor sign-in on again.",
  }),
  push_device_removed: (device) => ({
    title: `Push notifications to ${device} were turned off`,
    body: `Its push service has failed every notification for a week, so it was removed from your devices. To get push notifications there again, turn them on in the app on that device.`,
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
  /** More for the notification's data (never a secret: it is listed, pushed and exported). */
  data: Record<string, string> = {},
): Promise<void> {
  const { title, body } = WORDS[event](detail);
  const at = new Date().toISOString();
  try {
    await createNotification(
      env,
      { userId: user.id, type: "security", title, body, data: { ...data, event, detail }, dedupeKey: `security:${event}:${user.id}:${at}` },
      logger,
    );
  } catch (err) {
    logger?.warn("security notice failed", { user_id: user.id, event, error: String(err) });
  }
}
