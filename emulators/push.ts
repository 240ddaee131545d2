/**
 * A Web Push service (RFC 8030) with the browser's side of it: subscriptions carry a real
 * user-agent key pair and auth secret, and every accepted push is checked as a push service
 * checks it (VAPID, RFC 8292) and then decrypted as a browser decrypts it (RFC 8291), so tests
 * see exactly what a device would show. Decryption is written here independently of
 * src/lib/web-push.ts, so a mistake on the sending side cannot cancel out.
 *
 *   POST /push          a new subscription, as PushManager.subscribe() gives a browser
 *                       (JSON body optional: {applicationServerKey} restricts it to that VAPID key)
 *   GET  /push          the pushes received so far
 *   POST /push/{id}     a push message: 201 + Location when accepted; 404 unknown subscription,
 *                       410 expired one, 400 bad headers or undecryptable body, 401 no VAPID,
 *                       403 invalid VAPID, 413 body over 4096 bytes; or what `failNext` (the
 *                       next message) or `failAlways` (one subscription's, until `recover`) set
 *
 * Subscriptions outlive the process when a `store` is given (the Node server keeps them in a JSON
 * file under the local state directory): a device the service registered keeps receiving its
 * pushes after the emulators restart, as a real push service keeps a browser's subscription.
 * Received pushes and queued failures are not kept.
 *
 * Web-standard APIs and `jose` only (runs in workerd tests and the Node server).
 */
import { importJWK, jwtVerify } from "jose";
import { decodeBase64, encodeBase64, jsonResponse, randomToken } from "./common";

/** Bytes backed by a plain ArrayBuffer (what WebCrypto takes, under both Node and workerd types). */
type Bytes = Uint8Array<ArrayBuffer>;

export const PUSH_EMULATOR_HOST = "push.emulator.test";
const DEFAULT_BASE_URL = `https://${PUSH_EMULATOR_HOST}`;
const MAX_BODY_BYTES = 4096;
const MAX_VAPID_LIFETIME_S = 24 * 60 * 60;
const HEADER_BYTES = 16 + 4 + 1 + 65;
const ECDH_P256 = { name: "ECDH", namedCurve: "P-256" } as const;
const URGENCIES = ["very-low", "low", "normal", "high"] as const;

export interface PushEmulatorOptions {
  /** Origin the endpoints point at (the combined server's, for local runs); default https://push.emulator.test. */
  baseUrl?: string;
  /** Where subscriptions are kept across restarts; default: nowhere (they live as long as the emulator). */
  store?: PushSubscriptionStore;
}

/** A subscription as it is kept: everything the browser's side holds, its private key as a JWK. */
export interface StoredPushSubscription {
  id: string;
  endpoint: string;
  /** The user agent's P-256 ECDH private key (with its public point, x and y). */
  privateKey: JsonWebKey;
  /** base64url */
  auth: string;
  applicationServerKey: string | null;
  gone: boolean;
}

/** Keeps the subscriptions: `load` once when the emulator is made, `save` the whole list after each change. */
export interface PushSubscriptionStore {
  load(): StoredPushSubscription[];
  save(subscriptions: StoredPushSubscription[]): void;
}

export interface EmulatedSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface ReceivedPush {
  endpoint: string;
  /** The decrypted payload, as UTF-8. */
  payload: string;
  ttl: number;
  urgency: (typeof URGENCIES)[number];
  topic: string | null;
  receivedAt: string;
}

export type ForcedPushStatus = 404 | 410 | 413 | 429 | 500 | 502 | 503;

export interface PushEmulator {
  /** A subscription with fresh user-agent keys; `applicationServerKey` restricts it to that VAPID public key. */
  subscribe(options?: { applicationServerKey?: string }): Promise<EmulatedSubscription>;
  handle(req: Request): Promise<Response>;
  /** Accepted pushes, in arrival order. */
  readonly received: readonly ReceivedPush[];
  /** The subscription answers 410 Gone from now on (the user revoked permission). */
  expire(endpoint: string): void;
  /** The next push message (to any endpoint) is answered `status`, with Retry-After when given; calls queue up. */
  failNext(status: ForcedPushStatus, retryAfterS?: number): void;
  /**
   * Every push message to this subscription is answered `status` (with Retry-After when given)
   * until `recover`: a device whose push service is down, or keeps asking to slow down.
   */
  failAlways(endpoint: string, status: ForcedPushStatus, retryAfterS?: number): void;
  /** The subscription takes pushes again after `failAlways`. */
  recover(endpoint: string): void;
  /** Forgets subscriptions, received pushes and queued failures. */
  reset(): void;
}

interface Subscriber {
  endpoint: string;
  /** A promise: a subscription restored from the store has its key imported while the emulator starts. */
  privateKey: Promise<CryptoKey>;
  privateJwk: JsonWebKey;
  publicRaw: Uint8Array;
  auth: Uint8Array;
  applicationServerKey: string | null;
  gone: boolean;
  /** Set by `failAlways`: what every push to it is answered (not kept across restarts). */
  failing?: { status: ForcedPushStatus; retryAfterS?: number };
}

type Refusal = { status: number; reason: string };

export function createPushEmulator(options: PushEmulatorOptions = {}): PushEmulator {
  const configuredBase = options.baseUrl?.replace(/\/+$/, "");
  const store = options.store;
  let subscribers = restore(store);
  let received: ReceivedPush[] = [];
  let forced: { status: ForcedPushStatus; retryAfterS?: number }[] = [];

  function persist(): void {
    store?.save(
      [...subscribers].map(([id, s]) => ({
        id,
        endpoint: s.endpoint,
        privateKey: s.privateJwk,
        auth: toBase64Url(s.auth),
        applicationServerKey: s.applicationServerKey,
        gone: s.gone,
      })),
    );
  }

  async function subscribe(base: string, applicationServerKey?: string): Promise<EmulatedSubscription> {
    const pair = (await crypto.subtle.generateKey(ECDH_P256, true, ["deriveBits"])) as CryptoKeyPair;
    const publicRaw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
    const privateJwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
    const auth = crypto.getRandomValues(new Uint8Array(16));
    const id = randomToken(32);
    const endpoint = `${base}/push/${id}`;
    const serverKey = applicationServerKey === undefined ? null : fromBase64Url(applicationServerKey);
    subscribers.set(id, {
      endpoint,
      privateKey: Promise.resolve(pair.privateKey),
      privateJwk,
      publicRaw,
      auth,
      applicationServerKey: serverKey ? toBase64Url(serverKey) : null,
      gone: false,
    });
    persist();
    return { endpoint, keys: { p256dh: toBase64Url(publicRaw), auth: toBase64Url(auth) } };
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const [, first, id, ...rest] = url.pathname.split("/");
    if (first !== "push" || rest.length > 0) return refuse(404, `no route ${req.method} ${url.pathname}`);
    if (id === undefined || id === "") return subscriptionsRoute(req, url);
    if (req.method !== "POST") return refuse(405, "push messages are sent with POST");
    const next = forced.shift();
    if (next) return forcedAnswer(next.status, next.retryAfterS);
    const subscriber = subscribers.get(id);
    if (!subscriber) return refuse(404, "no such subscription");
    if (subscriber.gone) return refuse(410, "subscription expired");
    if (subscriber.failing) return forcedAnswer(subscriber.failing.status, subscriber.failing.retryAfterS);
    return deliver(req, subscriber);
  }

  async function subscriptionsRoute(req: Request, url: URL): Promise<Response> {
    if (req.method === "GET") return jsonResponse({ received });
    if (req.method !== "POST") return refuse(405, "use POST /push to subscribe or GET /push to list received pushes");
    const text = await req.text();
    let key: unknown;
    try {
      key = text.trim() === "" ? undefined : (JSON.parse(text) as { applicationServerKey?: unknown }).applicationServerKey;
    } catch {
      return refuse(400, "body must be JSON");
    }
    if (key !== undefined && typeof key !== "string") return refuse(400, "applicationServerKey must be a base64url string");
    return jsonResponse(await subscribe(configuredBase ?? url.origin, key), 201);
  }

  async function deliver(req: Request, subscriber: Subscriber): Promise<Response> {
    const headers = readPushHeaders(req.headers);
    if ("reason" in headers) return refuse(headers.status, headers.reason);
    const vapid = await checkVapid(req.headers.get("authorization"), subscriber);
    if (vapid) return refuse(vapid.status, vapid.reason);
    const body = new Uint8Array(await req.arrayBuffer());
    if (body.length > MAX_BODY_BYTES) return refuse(413, `body is ${body.length} bytes; at most ${MAX_BODY_BYTES}`);
    let plaintext: Uint8Array;
    try {
      plaintext = await decryptPushPayload(body, await subscriber.privateKey, subscriber.publicRaw, subscriber.auth);
    } catch (err) {
      return refuse(400, `cannot decrypt: ${(err as Error).message}`);
    }
    received.push({
      endpoint: subscriber.endpoint,
      payload: new TextDecoder().decode(plaintext),
      ...headers,
      receivedAt: new Date().toISOString(),
    });
    const location = `${new URL(subscriber.endpoint).origin}/message/${crypto.randomUUID()}`;
    return new Response(null, { status: 201, headers: { Location: location } });
  }

  function byEndpoint(endpoint: string): Subscriber {
    const subscriber = [...subscribers.values()].find((s) => s.endpoint === endpoint);
    if (!subscriber) throw new Error(`no subscription with endpoint ${endpoint}`);
    return subscriber;
  }

  return {
    subscribe: (opts = {}) => subscribe(configuredBase ?? DEFAULT_BASE_URL, opts.applicationServerKey),
    handle,
    get received() {
      return received;
    },
    expire(endpoint) {
      byEndpoint(endpoint).gone = true;
      persist();
    },
    failAlways(endpoint, status, retryAfterS) {
      byEndpoint(endpoint).failing = retryAfterS === undefined ? { status } : { status, retryAfterS };
    },
    recover(endpoint) {
      delete byEndpoint(endpoint).failing;
    },
    failNext(status, retryAfterS) {
      forced.push(retryAfterS === undefined ? { status } : { status, retryAfterS });
    },
    reset() {
      subscribers = new Map();
      received = [];
      forced = [];
      persist();
    },
  };
}

/** The subscriptions the store kept; their private keys are imported in the background, awaited by the push that needs one. */
function restore(store: PushSubscriptionStore | undefined): Map<string, Subscriber> {
  const subscribers = new Map<string, Subscriber>();
  for (const kept of store?.load() ?? []) {
    const x = fromBase64Url(kept.privateKey?.x ?? "");
    const y = fromBase64Url(kept.privateKey?.y ?? "");
    const auth = fromBase64Url(kept.auth ?? "");
    if (x?.length !== 32 || y?.length !== 32 || auth?.length !== 16 || typeof kept.endpoint !== "string") {
      console.warn(`push emulator: left out stored subscription ${String(kept.id)}, which is not readable`);
      continue;
    }
    const privateKey = crypto.subtle.importKey("jwk", kept.privateKey, ECDH_P256, true, ["deriveBits"]);
    // A key that does not import fails the push that needs it (400), not an unhandled rejection now.
    privateKey.catch(() => {});
    subscribers.set(kept.id, {
      endpoint: kept.endpoint,
      privateKey,
      privateJwk: kept.privateKey,
      publicRaw: concat(new Uint8Array([0x04]), x, y),
      auth,
      applicationServerKey: kept.applicationServerKey,
      gone: kept.gone,
    });
  }
  return subscribers;
}

// ---------------------------------------------------------------------------------------------
// What a push service checks

function readPushHeaders(headers: Headers): Pick<ReceivedPush, "ttl" | "urgency" | "topic"> | Refusal {
  if (headers.get("content-encoding") !== "aes128gcm") return { status: 400, reason: "Content-Encoding must be aes128gcm" };
  const ttl = headers.get("ttl")?.trim() ?? "";
  if (!/^\d+$/.test(ttl)) return { status: 400, reason: "TTL must be a non-negative integer" };
  const urgency = headers.get("urgency") ?? "normal";
  if (!(URGENCIES as readonly string[]).includes(urgency)) return { status: 400, reason: `Urgency must be one of ${URGENCIES.join(", ")}` };
  const topic = headers.get("topic");
  if (topic !== null && !/^[A-Za-z0-9_-]{1,32}$/.test(topic)) return { status: 400, reason: "Topic must be 1 to 32 base64url characters" };
  return { ttl: Number(ttl), urgency: urgency as ReceivedPush["urgency"], topic };
}

/** RFC 8292: absent → 401; anything invalid → 403. null when the token is good. */
async function checkVapid(header: string | null, subscriber: Subscriber): Promise<Refusal | null> {
  const params = parseVapidHeader(header);
  if (!params) return { status: 401, reason: "Authorization must be `vapid t=<JWT>, k=<public key>`" };
  const k = fromBase64Url(params.k);
  if (k?.length !== 65 || k[0] !== 0x04) return { status: 403, reason: "k must be a 65-byte uncompressed P-256 public key" };
  if (subscriber.applicationServerKey !== null && toBase64Url(k) !== subscriber.applicationServerKey)
    return { status: 403, reason: "k is not the applicationServerKey this subscription was made with" };
  const audience = new URL(subscriber.endpoint).origin;
  try {
    const key = await importJWK({ kty: "EC", crv: "P-256", x: toBase64Url(k.subarray(1, 33)), y: toBase64Url(k.subarray(33)) }, "ES256");
    const { payload } = await jwtVerify(params.t, key, { algorithms: ["ES256"], audience, requiredClaims: ["exp", "sub"] });
    if ((payload.exp as number) > Math.floor(Date.now() / 1000) + MAX_VAPID_LIFETIME_S)
      return { status: 403, reason: "JWT exp is more than 24 hours ahead" };
    if (typeof payload.sub !== "string" || !/^(mailto:|https:)/.test(payload.sub))
      return { status: 403, reason: "JWT sub must be a mailto: or https: contact" };
    return null;
  } catch (err) {
    return { status: 403, reason: `invalid VAPID JWT for ${audience}: ${(err as Error).message}` };
  }
}

function parseVapidHeader(header: string | null): { t: string; k: string } | null {
  const match = /^vapid\s+(.+)$/i.exec(header?.trim() ?? "");
  if (!match) return null;
  const params = new Map<string, string>();
  for (const part of match[1]!.split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) params.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const t = params.get("t");
  const k = params.get("k");
  return t && k ? { t, k } : null;
}

function refuse(status: number, reason: string): Response {
  return jsonResponse({ reason }, status);
}

function forcedAnswer(status: ForcedPushStatus, retryAfterS?: number): Response {
  return jsonResponse({ reason: "forced by failNext" }, status, retryAfterS === undefined ? {} : { "Retry-After": String(retryAfterS) });
}

// ---------------------------------------------------------------------------------------------
// What a browser does on receipt (RFC 8291 §3.4, RFC 8188 §2)

/** The plaintext of a single-record aes128gcm body; throws saying what is wrong with it. */
export async function decryptPushPayload(
  body: Uint8Array,
  uaPrivateKey: CryptoKey,
  uaPublicRaw: Uint8Array,
  auth: Uint8Array,
): Promise<Uint8Array> {
  if (body.length < HEADER_BYTES + 17) throw new Error(`body of ${body.length} bytes is shorter than the header and one record`);
  const salt = body.slice(0, 16);
  const recordSize = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(16);
  if (body[20] !== 65) throw new Error(`idlen is ${body[20]}; the key id must be the sender's 65-byte public key`);
  const asPublic = body.slice(21, HEADER_BYTES);
  const ciphertext = body.slice(HEADER_BYTES);
  if (ciphertext.length > recordSize) throw new Error(`${ciphertext.length} bytes of records exceed rs ${recordSize}; expected one record`);

  let asKey: CryptoKey;
  try {
    asKey = await crypto.subtle.importKey("raw", asPublic, ECDH_P256, false, []);
  } catch {
    throw new Error("the sender key in the header is not a P-256 point");
  }
  const ecdhSecret = new Uint8Array(await crypto.subtle.deriveBits(ecdhParams(asKey), uaPrivateKey, 256));
  const keyInfo = concat(new TextEncoder().encode("WebPush: info\0"), uaPublicRaw, asPublic);
  const ikm = await hkdf(auth.slice(), ecdhSecret, keyInfo, 32);
  const cek = await crypto.subtle.importKey("raw", await hkdf(salt, ikm, label("aes128gcm"), 16), "AES-GCM", false, ["decrypt"]);
  const nonce = await hkdf(salt, ikm, label("nonce"), 12);
  let record: Bytes;
  try {
    record = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce }, cek, ciphertext));
  } catch {
    throw new Error("AES-GCM authentication failed (wrong keys or a modified body)");
  }
  return withoutPadding(record);
}

/** The last record is `data ‖ 0x02 ‖ 0x00*`. */
function withoutPadding(record: Bytes): Bytes {
  let end = record.length - 1;
  while (end >= 0 && record[end] === 0) end -= 1;
  if (record[end] !== 0x02) throw new Error("the record does not end with the 0x02 last-record delimiter");
  return record.slice(0, end);
}

function label(name: string): Bytes {
  return new Uint8Array(new TextEncoder().encode(`Content-Encoding: ${name}\0`));
}

/** The generated workerd types spell ECDH's `public` member `$public`; the runtime reads `public`. */
function ecdhParams(publicKey: CryptoKey): Parameters<typeof crypto.subtle.deriveBits>[0] {
  return { name: "ECDH", public: publicKey } as unknown as Parameters<typeof crypto.subtle.deriveBits>[0];
}

async function hkdf(salt: Bytes, ikm: Bytes, info: Bytes, length: number): Promise<Bytes> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, length * 8));
}

function concat(...parts: Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function toBase64Url(bytes: Uint8Array): string {
  return encodeBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array | null {
  if (/[+/]/.test(text)) return null;
  const standard = text.replace(/=+$/, "").replaceAll("-", "+").replaceAll("_", "/");
  return decodeBase64(standard.padEnd(Math.ceil(standard.length / 4) * 4, "="));
}
