/** The outbound-call discipline every provider client shares: timeout, typed errors, JSON. */
import { parseRetryAfter, ProviderError } from "./types";

type Provider = ProviderError["provider"];

/** fetch with a hard timeout; network failures and timeouts become ProviderErrors. */
export async function fetchWithTimeout(
  provider: Provider,
  url: string,
  init: RequestInit,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Response> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([timeout, signal]) : timeout;
  try {
    return await fetch(url, { ...init, signal: combined });
  } catch (err) {
    if (timeout.aborted) throw new ProviderError(provider, "timeout", `${provider} did not answer within ${timeoutMs} ms`);
    throw new ProviderError(provider, "network", `${provider} unreachable: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Maps a non-2xx answer to a typed error (429 keeps the provider's Retry-After). */
export async function errorFromResponse(provider: Provider, res: Response): Promise<ProviderError> {
  const text = (await res.text().catch(() => "")).slice(0, 300);
  const detail = `${provider} answered ${res.status}${text ? `: ${text}` : ""}`;
  if (res.status === 429) return new ProviderError(provider, "rate_limited", detail, 429, parseRetryAfter(res.headers.get("Retry-After")));
  if (res.status === 401 || res.status === 403) return new ProviderError(provider, "auth", detail, res.status);
  if (res.status >= 500) return new ProviderError(provider, "server", detail, res.status);
  return new ProviderError(provider, "bad_request", detail, res.status);
}

/** Reads a JSON body; a body that is not JSON (truncated, HTML error page) is "malformed". */
export async function readJson(provider: Provider, res: Response, timeoutMs: number): Promise<unknown> {
  let text: string;
  try {
    text = await res.text();
  } catch {
    throw new ProviderError(provider, "timeout", `${provider} body not received within ${timeoutMs} ms`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ProviderError(provider, "malformed", `${provider} sent a body that is not JSON`, res.status);
  }
}
