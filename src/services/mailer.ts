/**
 * The one way the service sends email: through the HTTP email provider (src/providers/email.ts),
 * never to an address that hard-bounced or complained (services/email-events.ts).
 */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { type EmailMessage, sendEmail } from "../providers/email";
import { isSuppressed } from "./email-events";

export type MailResult = { sent: true; id: string | null } | { sent: false; reason: "suppressed" };

export async function deliverEmail(env: Bindings, message: EmailMessage): Promise<MailResult> {
  if (await isSuppressed(env, message.to)) return { sent: false, reason: "suppressed" };
  const config = getConfig(env);
  const { id } = await sendEmail({ apiUrl: config.EMAIL_API_URL, apiKey: config.EMAIL_API_KEY, from: config.EMAIL_FROM }, message);
  return { sent: true, id };
}
