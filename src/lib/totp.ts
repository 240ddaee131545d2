/**
 * Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP) as every authenticator app
 * computes them: HMAC-SHA-1, 6 digits, 30-second steps, the shared secret written in base32
 * (RFC 4648, no padding) inside an `otpauth://` URL. WebCrypto only.
 */

export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_S = 30;
/** 160 bits, the length RFC 4226 recommends for HMAC-SHA-1. */
export const TOTP_SECRET_BYTES = 20;

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

export function base32Encode(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  return out;
}

/** The time step of `nowMs` (RFC 6238 T = floor(unix seconds / 30)). */
export function timeStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_S);
}

/** HOTP (RFC 4226) of `counter`, `digits` long, zero-padded. */
export async function hotp(secret: Uint8Array, counter: number, digits = TOTP_DIGITS): Promise<string> {
  const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const message = new Uint8Array(8);
  // The counter is a 64-bit big-endian integer; time steps fit in 53 bits.
  new DataView(message.buffer).setUint32(0, Math.floor(counter / 2 ** 32));
  new DataView(message.buffer).setUint32(4, counter >>> 0);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, message));
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary =
    ((mac[offset]! & 0x7f) << 24) | ((mac[offset + 1]! & 0xff) << 16) | ((mac[offset + 2]! & 0xff) << 8) | (mac[offset + 3]! & 0xff);
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/**
 * The step among now−1, now and now+1 (one step of clock skew either way) whose code is `code`
 * and that is later than `lastStep` (a code is accepted at most once); null when none is.
 */
export async function matchingStep(secret: Uint8Array, code: string, nowMs: number, lastStep: number | null): Promise<number | null> {
  if (!/^\d{6}$/.test(code)) return null;
  const now = timeStep(nowMs);
  let found: number | null = null;
  // Every candidate is computed, whichever matches, so the time taken says nothing.
  for (const step of [now - 1, now, now + 1]) {
    const candidate = await hotp(secret, step);
    if (found === null && candidate === code && (lastStep === null || step > lastStep)) found = step;
  }
  return found;
}

/** The URL authenticator apps read from a QR code (Google Authenticator's Key Uri Format). */
export function otpauthUrl(issuer: string, account: string, secretBase32: string): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const params = new URLSearchParams({
    secret: secretBase32,
    issuer,
    algorithm: "SHA1",
    digits: String(TOTP_DIGITS),
    period: String(TOTP_PERIOD_S),
  });
  return `otpauth://totp/${label}?${params.toString().replace(/\+/g, "%20")}`;
}
