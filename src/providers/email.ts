/**
 * Email through an HTTP sending API (Resend's `POST /emails` shape; any provider with the same
 * contract works by changing EMAIL_API_URL). Local runs and tests use emulators/email.ts.
 */
import { parseRetryAfter } from "./types";

export interface EmailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** Extra message headers (List-Unsubscribe, List-Unsubscribe-Post). */
  headers?: Record<string, string>;
  /**
   * The provider's `Idempotency-Key`: a retried send with the same key is not sent again, so a
   * job that crashed after the provider accepted its email cannot send it twice.
   */
  idempotencyKey?: string;
}

export interface EmailSettings {
  apiUrl: string;
  apiKey: string;
  from: string;
  timeoutMs?: number;
}

export class EmailError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    /** The provider's error name (Resend's `name`), e.g. `invalid_idempotent_request`. */
    readonly code?: string,
    /** Seconds the provider asked us to wait (its Retry-After, on a 429 or 503). */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = "EmailError";
  }
}

/**
 * A header value on one line: line breaks (CR, LF, U+2028/9) and other control characters become
 * one space. A subject carries user text (a topic's title may hold line breaks); passed on as
 * written, a line break in it could start a header of its own (Bcc:, …) wherever the message is
 * put together.
 */
export function oneLine(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f\u0085\u2028\u2029]+/g, " ").trim();
}

export async function sendEmail(settings: EmailSettings, message: EmailMessage): Promise<{ id: string | null }> {
  if (!settings.apiKey) throw new EmailError("Email is not configured (EMAIL_API_KEY is empty)");
  let res: Response;
  try {
    res = await fetch(`${settings.apiUrl.replace(/\/+$/, "")}/emails`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${settings.apiKey}`,
        "Content-Type": "application/json",
        ...(message.idempotencyKey ? { "Idempotency-Key": message.idempotencyKey } : {}),
      },
      body: JSON.stringify({
        from: settings.from,
        to: message.to,
        subject: oneLine(message.subject),
        text: message.text,
        html: message.html,
        headers: message.headers && Object.fromEntries(Object.entries(message.headers).map(([name, value]) => [name, oneLine(value)])),
      }),
      signal: AbortSignal.timeout(settings.timeoutMs ?? 10_000),
    });
  } catch (err) {
    throw new EmailError(`Email provider unreachable: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!res.ok) {
    const error = (await res.json().catch(() => null)) as { name?: unknown } | null;
    const code = typeof error?.name === "string" ? error.name : undefined;
    const retryAfterS = parseRetryAfter(res.headers.get("Retry-After"));
    throw new EmailError(`Email provider answered ${res.status}${code ? ` (${code})` : ""}`, res.status, code, retryAfterS);
  }
  // A 2xx means the provider took the email, whatever its body says: calling that a failure would
  // send it again on the retry (only the Idempotency-Key, where the provider keeps it, would stop
  // that). The id is for the record only; null when the answer did not carry one.
  const body = (await res.json().catch(() => null)) as { id?: unknown } | null;
  return { id: typeof body?.id === "string" ? body.id : null };
}
