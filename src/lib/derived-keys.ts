/**
 * Keys for one purpose each (unsubscribe links, calendar-feed URLs, two-factor secrets…), derived
 * with HKDF from JWT_SECRET, so no new secret is needed and a key made for one purpose never
 * serves another. One derivation per (kind, secret, purpose) for the isolate's life.
 */
const keys = new Map<string, Promise<CryptoKey>>();

function derivedKey(
  secret: string,
  purpose: string,
  algorithm: { name: "HMAC"; hash: string; length: number } | { name: "AES-GCM"; length: number },
  usages: string[],
): Promise<CryptoKey> {
  const id = `${algorithm.name}\u0000${purpose}\u0000${secret}`;
  let key = keys.get(id);
  if (!key) {
    key = (async () => {
      const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), "HKDF", false, ["deriveKey"]);
      return crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode(`plant-community/${purpose}`) },
        base,
        algorithm,
        false,
        usages,
      );
    })();
    keys.set(id, key);
  }
  return key;
}

/** An HMAC-SHA-256 key for signing one kind of token. */
export function purposeKey(secret: string, purpose: string): Promise<CryptoKey> {
  return derivedKey(secret, purpose, { name: "HMAC", hash: "SHA-256", length: 256 }, ["sign", "verify"]);
}

/**
 * An AES-256-GCM key for encrypting one kind of stored secret (two-factor secrets): a database
 * copy alone does not reveal them.
 */
export function encryptionKey(secret: string, purpose: string): Promise<CryptoKey> {
  return derivedKey(secret, purpose, { name: "AES-GCM", length: 256 }, ["encrypt", "decrypt"]);
}
