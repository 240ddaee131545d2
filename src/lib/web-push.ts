/**
 * Standards-based Web Push, no vendor SDK: every browser's push service speaks the same
 * protocol, so one implementation on WebCrypto (and `jose` for the JWT) reaches them all.
 *
 * - RFC 8030: `POST <endpoint>` with `TTL`, optional `Urgency` and `Topic`; 201 = accepted,
 *   404/410 = the subscription is gone, 413 = payload too large, 429 = slow down (Retry-After).
 * - RFC 8291 + RFC 8188: the body is one `aes128gcm` record keyed by ECDH between a fresh sender
 *   key pair and the subscription's `p256dh`, mixed with its `auth` secret.
 * - RFC 8292 (VAPID): `Authorization: vapid t=<ES256 JWT>, k=<public key>` identifies this server.
 *
 * Keys travel as base64url: a P-256 public key is the 65-byte uncompressed point, a private
 * key its 32-byte scalar `d` (the format of the common web-push tooling).
 */
import { importJWK, SignJWT } from "jose";
import { concatBytes } from "./bytes";
import { base64UrlEncode } from "./hash";
import { parseRetryAfter } from "./retry-after";

export { base64UrlEncode };

export interface PushKeys {
  /** The user agent's ECDH public key: 65-byte uncompressed P-256 point, base64url. */
  p256dh: string;
  /** The user agent's 16-byte authentication secret, base64url. */
  auth: string;
}

export interface PushSubscriptionInput {
  endpoint: string;
  keys: PushKeys;
}

export interface VapidKeys {
  /** 65-byte uncompressed P-256 point, base64url. */
  publicKey: string;
  /** 32-byte private scalar `d`, base64url. */
  privateKey: string;
  /** Contact for the push service: `mailto:…` or `https:…`. */
  subject: string;
}

export type Urgency = "very-low" | "low" | "normal" | "high";

export interface SendPushOptions {
  /** Seconds the push service keeps the message for an offline device. */
  ttlS: number;
  urgency?: Urgency;
  /** Replaces a pending message with the same topic: at most 32 base64url characters. */
  topic?: string;
  timeoutMs?: number;
}

export interface PushAnswer {
  status: number;
  /** From `Retry-After` (seconds or an HTTP date), when the push service sent one. */
  retryAfterS?: number;
}

export interface SenderKeys {
  /** 65-byte uncompressed point. */
  publicKey: Uint8Array;
  /** ECDH private key. */
  privateKey: CryptoKey;
}

export interface EncryptOptions {
  /** 16 random bytes unless given (tests pin it). */
  salt?: Uint8Array;
  /** A fresh ephemeral pair unless given (tests pin it). */
  senderKeys?: SenderKeys;
  recordSize?: number;
}

/** Record size announced in the aes128gcm header. */
export const RECORD_SIZE = 4096;
/** Push services must accept bodies up to 4096 bytes (RFC 8030 §7.2); larger ones may get 413. */
export const MAX_BODY_BYTES = 4096;
const HEADER_BYTES = 16 + 4 + 1 + 65;
const TAG_BYTES = 16;
/** The largest plaintext that keeps the body within MAX_BODY_BYTES (3993). */
export const MAX_PLAINTEXT_BYTES = MAX_BODY_BYTES - HEADER_BYTES - 1 - TAG_BYTES;

const VAPID_TOKEN_LIFETIME_S = 12 * 60 * 60;
const DEFAULT_TIMEOUT_MS = 10_000;
const URGENCIES: readonly string[] = ["very-low", "low", "normal", "high"];
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost"]);
const ECDH_P256 = { name: "ECDH", namedCurve: "P-256" } as const;
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// base64url

/** base64url (padding optional); null when `text` is not base64url. */
export function base64UrlDecode(text: string): Uint8Array | null {
  const bare = text.replace(/={1,2}$/, "");
  if (!/^[A-Za-z0-9_-]*$/.test(bare) || bare.length % 4 === 1) return null;
  const binary = atob(
    bare
      .replaceAll("-", "+")
      .replaceAll("_", "/")
      .padEnd(Math.ceil(bare.length / 4) * 4, "="),
  );
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

/** null when the subscription can be pushed to, else what is wrong with it (naming the field). */
export async function checkSubscription(input: PushSubscriptionInput): Promise<string | null> {
  return checkEndpoint(input.endpoint) ?? (await checkP256dh(input.keys.p256dh)) ?? checkAuth(input.keys.auth);
}

function checkEndpoint(endpoint: string): string | null {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return "endpoint must be an absolute https URL";
  }
  if (url.protocol === "https:" || (url.protocol === "http:" && LOCAL_HOSTS.has(url.hostname))) return null;
  return "endpoint must be an https URL (http is allowed only for localhost and 127.0.0.1)";
}

/**
 * The push services this server will post to: `hosts` are exact names or `*.`-prefixed suffixes
 * (`*.push.apple.com` matches `web.push.apple.com`, not `push.apple.com.evil.test`); the URL must
 * be https on the default port with no user name or password. `loopback` also admits localhost
 * and 127.0.0.1 on any port (local runs, where the emulator is the push service). A subscription
 * is the client's to write, so without this list any account could make the server POST to any
 * address it chose. null when allowed, else why not.
 */
export function checkPushService(endpoint: string, hosts: readonly string[], loopback: boolean): string | null {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return "endpoint must be an absolute https URL";
  }
  if (loopback && LOCAL_HOSTS.has(url.hostname)) return null;
  if (url.protocol !== "https:" || url.port !== "" || url.username !== "" || url.password !== "")
    return "endpoint must be an https URL on the default port, without credentials";
  const host = url.hostname.toLowerCase();
  const known = hosts.some((pattern) => {
    const p = pattern.toLowerCase();
    return p.startsWith("*.") ? host.endsWith(p.slice(1)) && host.length > p.length - 1 : host === p;
  });
  return known ? null : `endpoint must be on a known push service (${host} is not one)`;
}

async function checkP256dh(p256dh: string): Promise<string | null> {
  const bytes = base64UrlDecode(p256dh);
  if (!bytes) return "keys.p256dh must be base64url";
  if (bytes.length !== 65 || bytes[0] !== 0x04)
    return `keys.p256dh must be an uncompressed P-256 point (65 bytes starting 0x04), got ${bytes.length} bytes`;
  try {
    await crypto.subtle.importKey("raw", bytes, ECDH_P256, false, []);
    return null;
  } catch {
    return "keys.p256dh is not a point on the P-256 curve";
  }
}

function checkAuth(auth: string): string | null {
  const bytes = base64UrlDecode(auth);
  if (!bytes) return "keys.auth must be base64url";
  return bytes.length === 16 ? null : `keys.auth must be 16 bytes, got ${bytes.length}`;
}

// ---------------------------------------------------------------------------------------------
// Payload encryption (RFC 8291, one aes128gcm record of RFC 8188)

/** `salt | rs | idlen | sender public key | AES-128-GCM(plaintext ‖ 0x02)`. */
export async function encryptPushPayload(plaintext: Uint8Array, keys: PushKeys, options: EncryptOptions = {}): Promise<Uint8Array> {
  const recordSize = options.recordSize ?? RECORD_SIZE;
  const limit = Math.min(MAX_PLAINTEXT_BYTES, recordSize - 1 - TAG_BYTES);
  if (plaintext.length > limit)
    throw new RangeError(`push payload is ${plaintext.length} bytes; at most ${limit} fit in one record of a ${MAX_BODY_BYTES}-byte body`);
  const uaPublic = decodeExactly(keys.p256dh, 65, "keys.p256dh");
  const authSecret = decodeExactly(keys.auth, 16, "keys.auth");
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(16));
  if (salt.length !== 16) throw new RangeError(`salt must be 16 bytes, got ${salt.length}`);
  const sender = options.senderKeys ?? (await ephemeralKeys());

  const uaKey = await crypto.subtle.importKey("raw", uaPublic, ECDH_P256, false, []);
  const ecdhSecret = new Uint8Array(await crypto.subtle.deriveBits(ecdhParams(uaKey), sender.privateKey, 256));
  const { cek, nonce } = await contentKeys(ecdhSecret, authSecret, uaPublic, sender.publicKey, salt);
  const record = concatBytes(plaintext, Uint8Array.of(0x02));
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, cek, record));
  return concatBytes(recordHeader(salt, recordSize, sender.publicKey), ciphertext);
}

async function ephemeralKeys(): Promise<SenderKeys> {
  const pair = (await crypto.subtle.generateKey(ECDH_P256, false, ["deriveBits"])) as CryptoKeyPair;
  const publicKey = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  return { publicKey, privateKey: pair.privateKey };
}

/** RFC 8291 §3.4: IKM from the ECDH secret and auth secret, then CEK and nonce from the salt. */
async function contentKeys(ecdhSecret: Uint8Array, authSecret: Uint8Array, uaPublic: Uint8Array, asPublic: Uint8Array, salt: Uint8Array) {
  const ikm = await hkdf(authSecret, ecdhSecret, concatBytes(encoder.encode("WebPush: info\0"), uaPublic, asPublic), 32);
  const cekBytes = await hkdf(salt, ikm, encoder.encode("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, encoder.encode("Content-Encoding: nonce\0"), 12);
  const cek = await crypto.subtle.importKey("raw", cekBytes, "AES-GCM", false, ["encrypt"]);
  return { cek, nonce };
}

/** The generated workerd types spell ECDH's `public` member `$public`; the runtime reads `public`. */
function ecdhParams(publicKey: CryptoKey): SubtleCryptoDeriveKeyAlgorithm {
  return { name: "ECDH", public: publicKey } as SubtleCryptoDeriveKeyAlgorithm;
}

async function hkdf(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, length * 8));
}

function recordHeader(salt: Uint8Array, recordSize: number, senderPublic: Uint8Array): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  header.set(salt, 0);
  new DataView(header.buffer).setUint32(16, recordSize);
  header[20] = senderPublic.length;
  header.set(senderPublic, 21);
  return header;
}

function decodeExactly(text: string, length: number, name: string): Uint8Array {
  const bytes = base64UrlDecode(text);
  if (!bytes || bytes.length !== length) throw new RangeError(`${name} must be ${length} bytes of base64url`);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// VAPID (RFC 8292)

/** `Authorization: vapid t=<JWT>, k=<public key>` for a push to `endpoint`, valid 12 hours. */
export async function vapidHeaders(
  endpoint: string,
  vapid: VapidKeys,
  nowS = Math.floor(Date.now() / 1000),
): Promise<{ Authorization: string }> {
  if (!/^(mailto:|https:)/.test(vapid.subject)) throw new RangeError("VAPID subject must start with mailto: or https:");
  const publicRaw = decodeExactly(vapid.publicKey, 65, "VAPID public key");
  if (publicRaw[0] !== 0x04) throw new RangeError("VAPID public key must be an uncompressed P-256 point (starting 0x04)");
  decodeExactly(vapid.privateKey, 32, "VAPID private key");
  const key = await importJWK(
    {
      kty: "EC",
      crv: "P-256",
      x: base64UrlEncode(publicRaw.subarray(1, 33)),
      y: base64UrlEncode(publicRaw.subarray(33)),
      d: vapid.privateKey,
    },
    "ES256",
  );
  const jwt = await new SignJWT({})
    .setProtectedHeader({ alg: "ES256", typ: "JWT" })
    .setAudience(new URL(endpoint).origin)
    .setExpirationTime(nowS + VAPID_TOKEN_LIFETIME_S)
    .setSubject(vapid.subject)
    .sign(key);
  return { Authorization: `vapid t=${jwt}, k=${base64UrlEncode(publicRaw)}` };
}

/** A new VAPID key pair in the format vapidHeaders (and the config) take. */
export async function generateVapidKeys(): Promise<{ publicKey: string; privateKey: string }> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const publicRaw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  if (!jwk.d) throw new Error("exported P-256 private key has no d");
  return { publicKey: base64UrlEncode(publicRaw), privateKey: jwk.d };
}

// ---------------------------------------------------------------------------------------------
// Sending

/**
 * Encrypts `payload` for the subscription and posts it. Resolves with the push service's status
 * whatever it is (404/410/413/429 are the caller's to act on); rejects on a network error, a
 * timeout, or invalid options (TTL, urgency, topic, an oversized payload).
 */
export async function sendPush(
  subscription: PushSubscriptionInput,
  payload: string,
  vapid: VapidKeys,
  options: SendPushOptions,
): Promise<PushAnswer> {
  const headers = { ...pushHeaders(options), ...(await vapidHeaders(subscription.endpoint, vapid)) };
  const body = await encryptPushPayload(encoder.encode(payload), subscription.keys);
  let response: Response;
  try {
    response = await fetch(subscription.endpoint, {
      method: "POST",
      headers,
      body,
      // A push service answers; it does not send the message elsewhere. A 3xx is returned as it is.
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    });
  } catch (err) {
    throw withoutEndpoint(err, subscription.endpoint);
  }
  await response.body?.cancel();
  const retryAfterS = parseRetryAfter(response.headers.get("retry-after"));
  return retryAfterS === undefined ? { status: response.status } : { status: response.status, retryAfterS };
}

/**
 * A failed send's error with the endpoint cut to its origin: the endpoint is a capability (whoever
 * holds it can post to the device), the runtime's error may name it, and callers log and keep what
 * a failure says. As given and as the runtime writes it (parsed: a host in capitals is lower-case
 * there). The same kind of error, without its cause (which would name it again).
 */
function withoutEndpoint(err: unknown, endpoint: string): Error {
  const url = new URL(endpoint);
  const message = [endpoint, url.href].reduce(
    (text, spelling) => text.replaceAll(spelling, `${url.origin}/[endpoint]`),
    err instanceof Error ? err.message : String(err),
  );
  const error = new Error(message);
  if (err instanceof Error) error.name = err.name;
  return error;
}

function pushHeaders({ ttlS, urgency, topic }: SendPushOptions): Record<string, string> {
  if (!Number.isInteger(ttlS) || ttlS < 0) throw new RangeError(`TTL must be a whole number of seconds >= 0, got ${ttlS}`);
  if (urgency !== undefined && !URGENCIES.includes(urgency)) throw new RangeError(`Urgency must be one of ${URGENCIES.join(", ")}`);
  if (topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(topic)) throw new RangeError("Topic must be 1 to 32 base64url characters");
  return {
    TTL: String(ttlS),
    "Content-Encoding": "aes128gcm",
    "Content-Type": "application/octet-stream",
    ...(urgency ? { Urgency: urgency } : {}),
    ...(topic ? { Topic: topic } : {}),
  };
}
