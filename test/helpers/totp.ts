/**
 * An authenticator app for the tests: RFC 6238 TOTP (HMAC-SHA-1, 30 s) written apart from
 * src/lib/totp.ts, so a mistake there is not repeated here. Checked against the RFC's vector.
 */
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

export function fromBase32(text: string): Uint8Array {
  const bits = [...text.toUpperCase().replace(/=+$/, "")]
    .map((c) => {
      const v = ALPHABET.indexOf(c);
      if (v < 0) throw new Error(`not base32: ${c}`);
      return v.toString(2).padStart(5, "0");
    })
    .join("");
  const bytes = new Uint8Array(Math.floor(bits.length / 8));
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  return bytes;
}

/** The code for the time step `step` (seconds / 30), `digits` long. */
export async function codeAt(secret: Uint8Array, step: number, digits = 6): Promise<string> {
  const counter = new Uint8Array(8);
  let value = BigInt(step);
  for (let i = 7; i >= 0; i--) {
    counter[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  const key = await crypto.subtle.importKey("raw", new Uint8Array(secret), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const h = new Uint8Array(await crypto.subtle.sign("HMAC", key, counter));
  const o = h[19]! & 0xf;
  const n = (((h[o]! & 0x7f) << 24) | (h[o + 1]! << 16) | (h[o + 2]! << 8) | h[o + 3]!) >>> 0;
  return (n % 10 ** digits).toString().padStart(digits, "0");
}

export const stepNow = () => Math.floor(Date.now() / 30_000);

/**
 * The current step, once at least `margin` seconds of it are left (waiting for the next one
 * otherwise), so a code computed here is still current when the Worker checks it.
 */
export async function steadyStep(margin = 6): Promise<number> {
  const left = 30_000 - (Date.now() % 30_000);
  if (left < margin * 1000) await new Promise((resolve) => setTimeout(resolve, left + 50));
  return stepNow();
}
