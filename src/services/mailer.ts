/**
 * The one way the service sends email: through the HTTP email provider (src/providers/email.ts),
 * never to an address that hard-bounced or complained (services/email-events.ts).
 */
import { getConfig } from "../config";
import type { Bindings } from "../env";
import { humanDuration } from "../lib/durations";
import { AppError } from "../lib/errors";
import type { Logger } from "../lib/logger";
import { EmailError, type EmailMessage, sendEmail } from "../providers/email";
import { isSuppressed } from "./email-events";

export type MailResult = { sent: true; id: string | null } | { sent: false; reason: "suppressed" | "recipient gone" };

/**
 * Sends `message` unless its address is suppressed. `recipientStill`, for mail decided on an
 * earlier read of its recipient (a queued notification), is asked last, just before the provider
 * call: false (the account was deleted or deactivated meanwhile) sends nothing; what it throws,
 * this throws.
 */
export async function deliverEmail(
  env: Bindings,
  message: EmailMessage,
  options: { recipientStill?: () => Promise<boolean> } = {},
): Promise<MailResult> {
  if (await isSuppressed(env, message.to)) return { sent: false, reason: "suppressed" };
  if (options.recipientStill && !(await options.recipientStill())) return { sent: false, reason: "recipient gone" };
  const config = getConfig(env);
  const { id } = await sendEmail({ apiUrl: config.EMAIL_API_URL, apiKey: config.EMAIL_API_KEY, from: config.EMAIL_FROM }, message);
  return { sent: true, id };
}

/**
 * Sends `message`, which carries a link just written (a confirmation or reset link), as
 * `deliverEmail` does; when it did not go — the provider threw, or the address was suppressed by
 * the time of sending — `takeBack` undoes what the link stands for first. The link was mailed to no
 * one, so a failed take-back is logged, not thrown: the caller answers what happened to the mail.
 * What the provider threw, this throws.
 */
export async function deliverOrTakeBack(
  env: Bindings,
  message: EmailMessage,
  takeBack: () => Promise<unknown>,
  logger?: Logger,
): Promise<MailResult> {
  const undo = () =>
    takeBack().then(
      () => {},
      (err: unknown) => logger?.error("an unsent link was not taken back", { error: String(err) }),
    );
  let mail: MailResult;
  try {
    mail = await deliverEmail(env, message);
  } catch (err) {
    await undo();
    throw err;
  }
  if (!mail.sent) await undo();
  return mail;
}

/** The wait an outage's answer names when the provider named none ("in a few minutes"). */
const MAIL_OUTAGE_RETRY_AFTER_S = 300;

/**
 * The answer to a signed-in user whose own request for mail (a confirmation link) the provider did
 * not take: 503 SERVICE_UNAVAILABLE either way (the code clients switch on), telling apart what
 * `mailMayGoLater` does. The provider down, timed out, unreachable or refusing with 429 or a 5xx:
 * its `message` says the email service is not answering and to try again, and `Retry-After` gives
 * the provider's wait, or a few minutes when it named none. The provider refusing this message (any
 * other 4xx — the address, our key): the email service did not accept it, asking again will not
 * help, check the address or contact support; no `Retry-After`, which in this API is how a 503 says
 * that retrying will not help (a client's retry logic must not loop on it). What the provider said
 * is logged by the caller, never shown. `what` is the mail ("a new confirmation link to …").
 * Anything else `err` is (a database error) is not the provider's and is answered as it is.
 */
export function mailNotSent(err: unknown, what: string): unknown {
  if (!(err instanceof EmailError)) return err;
  if (!mailMayGoLater(err)) {
    return new AppError(
      "SERVICE_UNAVAILABLE",
      503,
      `We could not send ${what}: our email service did not accept the message, and asking again will not help. ` +
        "Check that the address is right, or contact support if it is.",
    );
  }
  const wait = err.retryAfterS;
  const again = wait === undefined ? "in a few minutes" : `in ${humanDuration(wait)}`;
  return new AppError(
    "SERVICE_UNAVAILABLE",
    503,
    `We could not send ${what} just now: our email service is not answering. Please try again ${again}.`,
    undefined,
    { "Retry-After": String(wait === undefined ? MAIL_OUTAGE_RETRY_AFTER_S : Math.max(1, wait)) },
  );
}

/**
 * Whether the provider did not take mail for now — unreachable, timed out, 429 or 5xx — so asking
 * again may work and what the asking spent can be given back. Any other 4xx is its refusal of
 * this message (the address, our key): asking again is refused again, and stays counted, or an
 * address the provider refuses could have it called without limit.
 */
export function mailMayGoLater(err: unknown): boolean {
  return err instanceof EmailError && (err.status === undefined || err.status === 429 || err.status >= 500);
}
