/**
 * Prints a new VAPID key pair (RFC 8292) for Web Push: `npm run vapid-keys`. Put the public key in
 * wrangler.toml's VAPID_PUBLIC_KEY for the environment and the private key in a secret:
 * `wrangler secret put VAPID_PRIVATE_KEY --env production`. Changing keys makes browsers
 * subscribe again (their subscriptions are bound to the old public key).
 */
import { generateVapidKeys } from "../src/lib/web-push";

const { publicKey, privateKey } = await generateVapidKeys();
console.log(`VAPID_PUBLIC_KEY=${publicKey}`);
console.log(`VAPID_PRIVATE_KEY=${privateKey}`);
