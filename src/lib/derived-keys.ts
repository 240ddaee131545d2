/**
 * HMAC keys for one purpose each (unsubscribe links, calendar-feed URLs…), derived with HKDF from
 * JWT_SECRET, so no new secret is needed and a token made for one purpose never verifies for
 * another. One derivation per (secret, purpose) for the isolate's life.
 */
const keys = new Map<string, Promise<CryptoKey>>();

export function purposeKey(secret: string, purpose: string): Promise<CryptoKey> {
  const id = `${purpose}\u0000${secret}`;
  let key = keys.get(id);
  if (!key) {
    key = (async () => {
      const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), "HKDF", false, ["deriveKey"]);
      return crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode(`plant-community/${purpose}`) },
        base,
        { name: "HMAC", hash: "SHA-256", length: 256 },
        false,
        ["sign", "verify"],
      );
    })();
    keys.set(id, key);
  }
  return key;
}

const aesKeys = new Map<string, Promise<CryptoKey>>();

/**
 * An AES-256-GCM key for encrypting one kind of stored secret (two-factor secrets), derived with
 * HKDF from JWT_SECRET under its own purpose: a database copy alone does not reveal them.
 */
export function encryptionKey(secret: string, purpose: string): Promise<CryptoKey> {
  const id = `${purpose}\u0000${secret}`;
  let key = aesKeys.get(id);
  if (!key) {
    key = (async () => {
      const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), "HKDF", false, ["deriveKey"]);
      return crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode(`plant-community/${purpose}`) },
        base,
        { name: "AES-GCM", length: 256 },
        false,
        ["encrypt", "decrypt"],
      );
    })();
    aesKeys.set(id, key);
  }
  return key;
}
