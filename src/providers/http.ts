/** The outbound-call discipline every provider client shares: timeout, typed errors, JSON. */
import { parseRetryAfter, ProviderError } from "./types";

type Provider = ProviderError["provider"];

/**
 * The signal each answer's call ran under: it also ends the reading of the body, and readJson
 * tells a body cut off by it (a timeout) from one whose connection broke off, whatever error
 * the runtime's stream gives for either.
 */
const callSignals = new WeakMap<Response, AbortSignal>();

/**
 * The credentials each answer's call carried, for redactCredentials: a ProviderError's message is
 * logged, reported and kept in a request's `errors` (which its owner reads), and it can hold the
 * call's URL (a runtime's "Fetch API cannot load: <url>") or an upstream's echo of the request,
 * where Pl@ntNet's `api-key` rides in the query and Trefle's token in a header.
 */
const callCredentials = new WeakMap<Response, readonly string[]>();

/**
 * Each credential as a message may show it, longest first (so a header's whole value goes before
 * a shorter one inside it): as given, percent-encoded (how a URL in a message shows it) and as a
 * query writes it (form-encoded: ~ ' ( ) ! escaped, a space as +).
 */
function spellings(credentials: readonly string[]): string[] {
  const all = credentials
    .flatMap((v) => [v, encodeURIComponent(v), new URLSearchParams({ v }).toString().slice(2)])
    .filter((v) => v.length >= 4);
  return [...new Set(all)].sort((a, b) => b.length - a.length);
}

/**
 * `text` with every credential of the call replaced, so no message built from it carries one. The
 * spellings are made only here, when a failure's message is built: a call that succeeds (every
 * identification's) pays nothing for them.
 */
function redactCredentials(text: string, credentials: readonly string[] | undefined): string {
  if (!credentials?.length) return text;
  return spellings(credentials).reduce((out, credential) => out.replaceAll(credential, "[redacted]"), text);
}

/**
 * fetch with a hard timeout; network failures and timeouts become ProviderErrors. `credentials`
 * are the secrets the call carries (a key in its query or a header, as sent): the provider names
 * them, so every message built from the call has them redacted wherever the provider puts them,
 * whatever the parameter or header is called.
 */
export async function fetchWithTimeout(
  provider: Provider,
  url: string,
  init: RequestInit,
  call: { timeoutMs: number; credentials: readonly string[]; signal?: AbortSignal },
): Promise<Response> {
  const { timeoutMs, credentials, signal } = call;
  const timeout = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([timeout, signal]) : timeout;
  try {
    const res = await fetch(url, { ...init, signal: combined });
    callSignals.set(res, combined);
    callCredentials.set(res, credentials);
    return res;
  } catch (err) {
    if (timeout.aborted) throw new ProviderError(provider, "timeout", `${provider} did not answer within ${timeoutMs} ms`);
    const reason = redactCredentials(err instanceof Error ? err.message : String(err), credentials);
    throw new ProviderError(provider, "network", `${provider} unreachable: ${reason}`);
  }
}

/** Maps a non-2xx answer to a typed error (429 keeps the provider's Retry-After). */
export async function errorFromResponse(provider: Provider, res: Response): Promise<ProviderError> {
  // Read past the 300 characters kept, so a credential that straddles the cut is still whole when redacted.
  const read = (await readUpTo(res, 1024).catch(() => ({ text: "" }))).text;
  const text = redactCredentials(read, callCredentials.get(res)).slice(0, 300);
  const detail = `${provider} answered ${res.status}${text ? `: ${text}` : ""}`;
  if (res.status === 429) return new ProviderError(provider, "rate_limited", detail, 429, parseRetryAfter(res.headers.get("Retry-After")));
  if (res.status === 401 || res.status === 403) return new ProviderError(provider, "auth", detail, res.status);
  if (res.status >= 500) return new ProviderError(provider, "server", detail, res.status);
  return new ProviderError(provider, "bad_request", detail, res.status);
}

/**
 * The most of a provider's answer read (bytes). Their real answers are tens of kilobytes; a body
 * past this (a misbehaving upstream or proxy) would otherwise be held whole in the isolate's
 * memory, and the isolate could die with every request it serves.
 */
export const MAX_PROVIDER_BODY_BYTES = 4 * 1024 * 1024;

/** Reads at most `maxBytes` of the body (the rest is cancelled, unread); `over` when there was more. */
async function readUpTo(res: Response, maxBytes: number): Promise<{ text: string; over: boolean }> {
  if (!res.body) return { text: "", over: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.byteLength > maxBytes) {
      chunks.push(value.subarray(0, maxBytes - size));
      await reader.cancel().catch(() => {});
      return { text: decode(chunks), over: true };
    }
    chunks.push(value);
    size += value.byteLength;
  }
  return { text: decode(chunks), over: false };
}

function decode(chunks: Uint8Array[]): string {
  const decoder = new TextDecoder();
  return chunks.map((chunk) => decoder.decode(chunk, { stream: true })).join("") + decoder.decode();
}

/**
 * Reads a JSON body; a body that is not JSON (truncated, HTML error page) or is over
 * MAX_PROVIDER_BODY_BYTES is "malformed"; one still coming when the call's time is up is
 * "timeout", and one whose connection broke off is "network".
 */
export async function readJson(provider: Provider, res: Response, timeoutMs: number): Promise<unknown> {
  let body: { text: string; over: boolean };
  try {
    body = await readUpTo(res, MAX_PROVIDER_BODY_BYTES);
  } catch (err) {
    // The call's signal (its timeout, or the caller's) ended the read; otherwise the connection
    // was lost mid-body, which is no timeout and is not logged as one.
    if (callSignals.get(res)?.aborted) throw new ProviderError(provider, "timeout", `${provider} body not received within ${timeoutMs} ms`);
    throw new ProviderError(
      provider,
      "network",
      `${provider} connection lost before the body ended: ${redactCredentials(err instanceof Error ? err.message : String(err), callCredentials.get(res))}`,
      res.status,
    );
  }
  if (body.over)
    throw new ProviderError(provider, "malformed", `${provider} sent a body over ${MAX_PROVIDER_BODY_BYTES} bytes`, res.status);
  try {
    return JSON.parse(body.text);
  } catch {
    throw new ProviderError(provider, "malformed", `${provider} sent a body that is not JSON`, res.status);
  }
}
