/**
 * The keys everything signed or sealed with JWT_SECRET uses: access and refresh tokens and CSRF
 * tokens (the secret itself, HMAC-SHA-256), and keys for one purpose each (unsubscribe links,
 * calendar-feed URLs, two-factor secrets…) derived with HKDF from it, so no new secret is needed
 * and a key made for one purpose never serves another.
 *
 * Rotation: JWT_SECRET signs and seals; every secret in JWT_SECRET_PREVIOUS only verifies and
 * opens what was made under it. The keys of a previous secret are imported with the `verify` or
 * `decrypt` usage alone, so WebCrypto itself refuses to sign or seal anything new with them.
 * One key per (secret, purpose, usage) for the isolate's life.
 */
import { sha256Hex } from "./hash";

/** The two settings every key comes from (src/config.ts). */
export interface SecretSettings {
  JWT_SECRET: string;
  /** Older secrets, newest first: accepted for verifying and opening, never for signing. */
  JWT_SECRET_PREVIOUS: readonly string[];
}

type HmacUsage = "sign" | "verify";
type AesUsage = "encrypt" | "decrypt";

const keys = new Map<string, Promise<CryptoKey>>();

function cached(id: string, make: () => Promise<CryptoKey>): Promise<CryptoKey> {
  let key = keys.get(id);
  if (!key) {
    key = make();
    keys.set(id, key);
  }
  return key;
}

function derivedKey(
  secret: string,
  purpose: string,
  algorithm: { name: "HMAC"; hash: string; length: number } | { name: "AES-GCM"; length: number },
  usage: HmacUsage | AesUsage,
): Promise<CryptoKey> {
  return cached(`${algorithm.name}\u0000${usage}\u0000${purpose}\u0000${secret}`, async () => {
    const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), "HKDF", false, ["deriveKey"]);
    return crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode(`plant-community/${purpose}`) },
      base,
      algorithm,
      false,
      [usage],
    );
  });
}

const HMAC = { name: "HMAC", hash: "SHA-256", length: 256 } as const;
const AES = { name: "AES-GCM", length: 256 } as const;

/** The secret itself as an HMAC-SHA-256 key (JWTs, CSRF tokens). */
function rawKey(secret: string, usage: HmacUsage): Promise<CryptoKey> {
  return cached(`raw\u0000${usage}\u0000${secret}`, () =>
    crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [usage]),
  );
}

/** Every accepted secret, the current one first. */
export function acceptedSecrets(settings: SecretSettings): string[] {
  return [settings.JWT_SECRET, ...settings.JWT_SECRET_PREVIOUS];
}

/** A key for one kind of token: HMAC-SHA-256 from the current secret, the only one that signs. */
export function signingKey(settings: SecretSettings, purpose: string): Promise<CryptoKey> {
  return derivedKey(settings.JWT_SECRET, purpose, HMAC, "sign");
}

/** The keys a token of one kind is checked with: the current secret's, then each previous one's (verify only). */
export function verifyingKeys(settings: SecretSettings, purpose: string): Promise<CryptoKey[]> {
  return Promise.all(acceptedSecrets(settings).map((secret) => derivedKey(secret, purpose, HMAC, "verify")));
}

/** JWT_SECRET itself as the key that signs JWTs and CSRF tokens. */
export function rawSigningKey(settings: SecretSettings): Promise<CryptoKey> {
  return rawKey(settings.JWT_SECRET, "sign");
}

/** The keys a JWT or CSRF token is checked with: the current secret, then each previous one (verify only). */
export function rawVerifyingKeys(settings: SecretSettings): Promise<CryptoKey[]> {
  return Promise.all(acceptedSecrets(settings).map((secret) => rawKey(secret, "verify")));
}

/**
 * A secret's short public name: the first 8 hex digits of a SHA-256 digest of it (a digest, not a
 * signature; it reveals nothing of a secret of 32 characters or more). Stored beside what a
 * secret sealed, so the rows still sealed under a previous one can be found.
 */
export function keyId(secret: string): Promise<string> {
  let id = keyIds.get(secret);
  if (!id) {
    id = sha256Hex(`plant-community/key-id\u0000${secret}`).then((hex) => hex.slice(0, 8));
    keyIds.set(secret, id);
  }
  return id;
}

/** One key id per secret for the isolate's life, as the keys are (it is asked at every use of a sealed secret). */
const keyIds = new Map<string, Promise<string>>();

/**
 * The AES-256-GCM key that seals one kind of stored secret (two-factor secrets: a database copy
 * alone does not reveal them), from the current secret, and its key id.
 */
export async function sealingKey(settings: SecretSettings, purpose: string): Promise<{ id: string; key: CryptoKey }> {
  return { id: await keyId(settings.JWT_SECRET), key: await derivedKey(settings.JWT_SECRET, purpose, AES, "encrypt") };
}

/** The keys that open one kind of stored secret, with their ids: the current secret's first (decrypt only). */
export function openingKeys(settings: SecretSettings, purpose: string): Promise<{ id: string; current: boolean; key: CryptoKey }[]> {
  return Promise.all(
    acceptedSecrets(settings).map(async (secret, i) => ({
      id: await keyId(secret),
      current: i === 0,
      key: await derivedKey(secret, purpose, AES, "decrypt"),
    })),
  );
}

/**
 * Which of `keys` `mac` is the HMAC of `data` under (each compared in constant time by WebCrypto):
 * its index, which is also its secret's in `acceptedSecrets`; -1 for none.
 */
export async function verifyingIndex(keys: CryptoKey[], mac: Uint8Array, data: Uint8Array): Promise<number> {
  for (const [i, key] of keys.entries()) {
    if (await crypto.subtle.verify("HMAC", key, mac, data)) return i;
  }
  return -1;
}

/** Whether `mac` is the HMAC of `data` under one of `keys`. */
export async function verifiedByAny(keys: CryptoKey[], mac: Uint8Array, data: Uint8Array): Promise<boolean> {
  return (await verifyingIndex(keys, mac, data)) !== -1;
}
