/** The email provider's webhook as the provider calls it, and mail sent for it to report on. */
import { env } from "cloudflare:workers";
import { deliverEmail } from "../../src/services/mailer";
import { call } from "./http";

/** The webhook secret the test Worker is configured with (`whsec_…`). */
export const WEBHOOK_SECRET = env.EMAIL_WEBHOOK_SECRET as string;
const PATH = "/api/v1/notifications/email-events/";

/** POSTs one delivery (headers and body exactly as given) to the webhook. */
export const postEmailEvent = (delivery: { headers: Record<string, string>; body: string }) =>
  call(PATH, { method: "POST", headers: delivery.headers, body: delivery.body });

/** Suppresses `address` for `reason`, as the webhook records the provider's report of it. */
export async function suppress(address: string, reason: "bounce" | "complaint") {
  await env.DB.prepare("INSERT OR REPLACE INTO email_suppressions (address, reason, event_id) VALUES (?, ?, ?)")
    .bind(address.toLowerCase(), reason, `evt-${crypto.randomUUID()}`)
    .run();
}

/** Sends one email through the service and returns its emulator id. */
export async function sentMail(to: string): Promise<string> {
  const result = await deliverEmail(env, { to, subject: "Hello", text: "Hi" });
  if (!result.sent || !result.id) throw new Error("not sent");
  return result.id;
}
