/**
 * Security notices (issue 10 item 1): a password changed or reset, a new sign-in method linked.
 * Each is an in-app notification of type `security` and an email sent at once — security mail is
 * never batched into a digest and cannot be turned off (services/notification-preferences.ts),
 * so it carries no unsubscribe link. Best effort: a failed notice is logged and never undoes
 * the change it reports.
 */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import type { Logger } from "../lib/logger";
import { renderNotificationEmail } from "./email-templates";
import { deliverEmail } from "./mailer";
import { getPreferences } from "./notification-preferences";
import { createNotification } from "./notifications";

export type SecurityEvent = "password_changed" | "password_reset" | "sign_in_method_linked";

const WORDS: Record<SecurityEvent, (detail: string) => { title: string; body: string }> = {
  password_changed: () => ({
    title: "Your Plant Community password was changed",
    body: "Every other session was signed out. If this was not you, reset your password now and review your account.",
  }),
  password_reset: () => ({
    title: "Your Plant Community password was reset",
    body: "Every session was signed out. If you did not ask for a reset, reset your password again and review your account.",
  }),
  sign_in_method_linked: (provider) => ({
    title: `${provider} can now sign in to your Plant Community account`,
    body: `A ${provider} account was linked to yours and can be used to sign in. If this was not you, reset your password and review your account.`,
  }),
};

export async function tellSecurityEvent(
  env: Bindings,
  user: { id: string; username: string; email: string },
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
    const { time_zone } = await getPreferences(env, user.id);
    const mail = renderNotificationEmail(
      { type: "security", title, body, data: { event }, createdAt: at },
      { username: user.username, timeZone: time_zone },
      { frontend: getConfig(env).FRONTEND_URL, unsubscribe: "" },
    );
    await deliverEmail(env, { to: user.email, subject: mail.subject, text: mail.text, html: mail.html });
  } catch (err) {
    logger?.warn("security notice failed", { user_id: user.id, event, error: String(err) });
  }
}
