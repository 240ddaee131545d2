import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";

import { decryptPushPayload } from "../../emulators/push";
import {
  base64UrlDecode,
  base64UrlEncode,
  checkPushService,
  checkSubscription,
  encryptPushPayload,
  generateVapidKeys,
  MAX_PLAINTEXT_BYTES,
  vapidHeaders,
} from "../../src/lib/web-push";

// RFC 8291 §5 / Appendix A: every input fixed, so the encrypted body is known byte for byte.
const RFC = {
  plaintext: "When I grow up, I want to be a watermelon",
  asPublic: "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
  asPrivate: "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
  uaPublic: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
  uaPrivate: "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
  auth: "BTBZMqHH6r4Tts7J_aSIgg",
  salt: "DGv6ra1nlYgDCS1FRnbzlw",
  body:
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_" +
    "yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
};

const bytes = (text: string) => base64UrlDecode(text)!;
const utf8 = new TextEncoder();

/** An ECDH private key from its raw scalar and public point (the RFC gives both). */
function ecdhPrivateKey(publicB64: string, privateB64: string): Promise<CryptoKey> {
  const point = bytes(publicB64);
  const jwk = { kty: "EC", crv: "P-256", x: base64UrlEncode(point.subarray(1, 33)), y: base64UrlEncode(point.subarray(33)), d: privateB64 };
  return crypto.subtle.importKey("jwk", jwk, { name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
}

async function freshUserAgent() {
  const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"])) as CryptoKeyPair;
  const publicRaw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  const auth = crypto.getRandomValues(new Uint8Array(16));
  return { privateKey: pair.privateKey, publicRaw, auth, keys: { p256dh: base64UrlEncode(publicRaw), auth: base64UrlEncode(auth) } };
}

describe("encryptPushPayload (RFC 8291)", () => {
  it("reproduces the RFC 8291 Appendix A body byte for byte", async () => {
    const body = await encryptPushPayload(
      utf8.encode(RFC.plaintext),
      { p256dh: RFC.uaPublic, auth: RFC.auth },
      {
        salt: bytes(RFC.salt),
        senderKeys: { publicKey: bytes(RFC.asPublic), privateKey: await ecdhPrivateKey(RFC.asPublic, RFC.asPrivate) },
      },
    );
    expect(base64UrlEncode(body)).toBe(RFC.body);
  });

  it("the emulator's browser side decrypts the RFC body with the UA's private key", async () => {
    const plaintext = await decryptPushPayload(
      bytes(RFC.body),
      await ecdhPrivateKey(RFC.uaPublic, RFC.uaPrivate),
      bytes(RFC.uaPublic),
      bytes(RFC.auth),
    );
    expect(new TextDecoder().decode(plaintext)).toBe(RFC.plaintext);
  });

  it("uses a fresh salt and sender key per message, in the aes128gcm header, and round-trips", async () => {
    const ua = await freshUserAgent();
    const message = utf8.encode(JSON.stringify({ title: "Watered?", url: "/plants/1" }));
    const [one, two] = [await encryptPushPayload(message, ua.keys), await encryptPushPayload(message, ua.keys)];

    const view = new DataView(one.buffer, one.byteOffset);
    expect(view.getUint32(16)).toBe(4096);
    expect(one[20]).toBe(65);
    expect(one[21]).toBe(0x04);
    expect(one.length).toBe(86 + message.length + 1 + 16);
    expect(one.subarray(0, 16)).not.toEqual(two.subarray(0, 16));
    expect(one.subarray(21, 86)).not.toEqual(two.subarray(21, 86));
    expect(await decryptPushPayload(one, ua.privateKey, ua.publicRaw, ua.auth)).toEqual(message);
  });

  it("a flipped byte in the ciphertext, or the wrong auth secret, fails decryption", async () => {
    const ua = await freshUserAgent();
    const body = await encryptPushPayload(utf8.encode("hello"), ua.keys);
    const tampered = body.slice();
    tampered[90]! ^= 0x01;
    await expect(decryptPushPayload(tampered, ua.privateKey, ua.publicRaw, ua.auth)).rejects.toThrow(/authentication failed/);
    await expect(decryptPushPayload(body, ua.privateKey, ua.publicRaw, new Uint8Array(16))).rejects.toThrow(/authentication failed/);
  });

  it("keeps the body within 4096 bytes: 3993 bytes of plaintext fit, one more throws", async () => {
    const ua = await freshUserAgent();
    expect(MAX_PLAINTEXT_BYTES).toBe(3993);
    expect((await encryptPushPayload(new Uint8Array(3993), ua.keys)).length).toBe(4096);
    await expect(encryptPushPayload(new Uint8Array(3994), ua.keys)).rejects.toThrow(/3994 bytes; at most 3993/);
    await expect(encryptPushPayload(new Uint8Array(200), ua.keys, { recordSize: 100 })).rejects.toThrow(/at most 83/);
  });
});

describe("checkPushService", () => {
  const hosts = ["fcm.googleapis.com", "*.push.apple.com"];

  it("admits the listed hosts and subdomains of a *. pattern, case-insensitively", () => {
    expect(checkPushService("https://fcm.googleapis.com/fcm/send/abc", hosts, false)).toBeNull();
    expect(checkPushService("https://FCM.googleapis.com/fcm/send/abc", hosts, false)).toBeNull();
    expect(checkPushService("https://web.push.apple.com/QGuD", hosts, false)).toBeNull();
  });

  it("refuses look-alikes, other ports, credentials, plain http and any other host", () => {
    for (const endpoint of [
      "https://fcm.googleapis.com.evil.test/x",
      "https://evilfcm.googleapis.com/x",
      "https://push.apple.com/x",
      "https://web.push.apple.com.evil.test/x",
      "https://evil-push.apple.com.example/x",
      "https://fcm.googleapis.com:8443/x",
      "https://user:pw@fcm.googleapis.com/x",
      "http://fcm.googleapis.com/x",
      "https://169.254.169.254/latest/meta-data",
      "https://[::1]/x",
      "https://localhost/x",
      "not a url",
    ])
      expect(checkPushService(endpoint, hosts, false), endpoint).toMatch(/^endpoint must/);
  });

  it("admits the loopback host names, on any port, only when asked to (local runs)", () => {
    expect(checkPushService("http://127.0.0.1:8790/push/abc", hosts, true)).toBeNull();
    expect(checkPushService("http://localhost:8790/push/abc", hosts, true)).toBeNull();
    expect(checkPushService("http://127.0.0.1:8790/push/abc", hosts, false)).toMatch(/^endpoint must/);
  });
});

describe("checkSubscription", () => {
  const valid = { endpoint: "https://push.example.net/push/abc", keys: { p256dh: RFC.uaPublic, auth: RFC.auth } };

  it("accepts a real subscription, and http only on the local host names", async () => {
    expect(await checkSubscription(valid)).toBeNull();
    expect(await checkSubscription({ ...valid, endpoint: "http://127.0.0.1:8790/push/abc" })).toBeNull();
    expect(await checkSubscription({ ...valid, endpoint: "http://localhost:8790/push/abc" })).toBeNull();
  });

  it("rejects a non-https or relative endpoint", async () => {
    expect(await checkSubscription({ ...valid, endpoint: "http://push.example.net/push/abc" })).toMatch(/^endpoint must be an https URL/);
    expect(await checkSubscription({ ...valid, endpoint: "/push/abc" })).toMatch(/^endpoint must be an absolute https URL/);
    expect(await checkSubscription({ ...valid, endpoint: "ftp://push.example.net/x" })).toMatch(/^endpoint/);
  });

  it("rejects a 64-byte p256dh, a compressed-looking one, and a point not on the curve", async () => {
    const point = bytes(RFC.uaPublic);
    expect(await checkSubscription({ ...valid, keys: { ...valid.keys, p256dh: base64UrlEncode(point.subarray(0, 64)) } })).toMatch(
      /keys\.p256dh .*got 64 bytes/,
    );
    const wrongPrefix = point.slice();
    wrongPrefix[0] = 0x02;
    expect(await checkSubscription({ ...valid, keys: { ...valid.keys, p256dh: base64UrlEncode(wrongPrefix) } })).toMatch(/starting 0x04/);
    const offCurve = point.slice();
    offCurve[64]! ^= 0x01;
    expect(await checkSubscription({ ...valid, keys: { ...valid.keys, p256dh: base64UrlEncode(offCurve) } })).toBe(
      "keys.p256dh is not a point on the P-256 curve",
    );
    expect(await checkSubscription({ ...valid, keys: { ...valid.keys, p256dh: "not base64url!" } })).toBe("keys.p256dh must be base64url");
  });

  it("rejects an auth secret that is not 16 bytes", async () => {
    const auth = bytes(RFC.auth);
    expect(await checkSubscription({ ...valid, keys: { ...valid.keys, auth: base64UrlEncode(auth.subarray(0, 15)) } })).toBe(
      "keys.auth must be 16 bytes, got 15",
    );
    expect(await checkSubscription({ ...valid, keys: { ...valid.keys, auth: base64UrlEncode(new Uint8Array(17)) } })).toMatch(/got 17/);
  });
});

describe("VAPID (RFC 8292)", () => {
  const endpoint = "https://fcm.googleapis.com/fcm/send/device-token?x=1";

  it("signs an ES256 JWT for the endpoint's origin, 12 h ahead, verifiable with k", async () => {
    const keys = await generateVapidKeys();
    expect(bytes(keys.publicKey)).toHaveLength(65);
    expect(bytes(keys.privateKey)).toHaveLength(32);
    const nowS = Math.floor(Date.now() / 1000);
    const { Authorization } = await vapidHeaders(endpoint, { ...keys, subject: "mailto:push@example.com" }, nowS);

    const match = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(Authorization);
    expect(match).not.toBeNull();
    const [, jwt, k] = match!;
    expect(k).toBe(keys.publicKey);
    expect(decodeProtectedHeader(jwt!)).toMatchObject({ alg: "ES256", typ: "JWT" });
    expect(decodeJwt(jwt!)).toEqual({ aud: "https://fcm.googleapis.com", exp: nowS + 12 * 3600, sub: "mailto:push@example.com" });

    const point = bytes(k!);
    const publicKey = await importJWK(
      { kty: "EC", crv: "P-256", x: base64UrlEncode(point.subarray(1, 33)), y: base64UrlEncode(point.subarray(33)) },
      "ES256",
    );
    await expect(jwtVerify(jwt!, publicKey, { audience: "https://fcm.googleapis.com" })).resolves.toBeTruthy();
    const other = await generateVapidKeys();
    const otherPoint = bytes(other.publicKey);
    const otherKey = await importJWK(
      { kty: "EC", crv: "P-256", x: base64UrlEncode(otherPoint.subarray(1, 33)), y: base64UrlEncode(otherPoint.subarray(33)) },
      "ES256",
    );
    await expect(jwtVerify(jwt!, otherKey)).rejects.toThrow(/signature verification failed/);
  });

  it("refuses malformed keys and a subject that is not a contact", async () => {
    const keys = await generateVapidKeys();
    await expect(vapidHeaders(endpoint, { ...keys, subject: "push@example.com" })).rejects.toThrow(/mailto: or https:/);
    await expect(vapidHeaders(endpoint, { ...keys, privateKey: keys.publicKey, subject: "mailto:a@b.c" })).rejects.toThrow(
      /VAPID private key must be 32 bytes/,
    );
    await expect(vapidHeaders(endpoint, { ...keys, publicKey: keys.privateKey, subject: "mailto:a@b.c" })).rejects.toThrow(
      /VAPID public key must be 65 bytes/,
    );
  });
});

describe("base64url", () => {
  it("decodes with or without padding and refuses other alphabets", () => {
    expect(base64UrlDecode("-_8")).toEqual(Uint8Array.of(0xfb, 0xff));
    expect(base64UrlDecode("-_8=")).toEqual(Uint8Array.of(0xfb, 0xff));
    expect(base64UrlDecode("+/8=")).toBeNull();
    expect(base64UrlDecode("abcde")).toBeNull();
    expect(base64UrlEncode(Uint8Array.of(0xfb, 0xff))).toBe("-_8");
  });
});
