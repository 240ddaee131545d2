/**
 * Prints a new VAPID key pair (RFC 8292) for Web Push: `npm run vapid-keys`. Put the public key in
 * wrangler.toml's VAPID_PUBLIC_KEY for the environment and the private key in a secret:
 * `wrangler secret put VAPID_PRIVATE_KEY --env production`. Changing keys makes browsers
 * subscribe again (their subscriptions are bound to the old public key). The formats are the ones
 * src/lib/web-push.ts reads: base64url of the 65-byte uncompressed point and of the 32-byte scalar.
 */
import { Buffer } from "node:buffer";

const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
const publicKey = Buffer.from(await crypto.subtle.exportKey("raw", pair.publicKey)).toString("base64url");
const { d } = await crypto.subtle.exportKey("jwk", pair.privateKey);
console.log(`VAPID_PUBLIC_KEY=${publicKey}`);
console.log(`VAPID_PRIVATE_KEY=${d}`);
