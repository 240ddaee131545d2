/**
 * Firebase Authentication, as the mobile app's sign-in (API.md §5d): ID tokens signed RS256 by a
 * key this emulator publishes the way Google's securetoken service does.
 *
 *   GET  /jwks    the JWK set (as www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com)
 *   POST /token   {uid?, email, email_verified?, name?} → {idToken}: what the app gets from the
 *                 Firebase SDK after signing in (local runs use it to try the exchange)
 *
 * Tokens carry Firebase's claims: `iss` https://securetoken.google.com/<project>, `aud` the
 * project id, `sub` = `user_id` the Firebase uid, `auth_time`, `iat`, `exp` (1 h), `email`,
 * `email_verified`, `firebase.sign_in_provider`. Tests may override any claim to attack the
 * verifier (another audience, an old `exp`, a token signed by a key nobody published).
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";

export interface FirebaseUser {
  uid?: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
}

export interface FirebaseEmulator {
  readonly projectId: string;
  handle(req: Request): Promise<Response>;
  /** An ID token for `user`; `claims` override any claim, `signWithUnpublishedKey` signs with a key not in the JWKS. */
  issueIdToken(user: FirebaseUser, options?: { claims?: Record<string, unknown>; signWithUnpublishedKey?: boolean }): Promise<string>;
  /** How many times the JWKS was fetched. */
  readonly jwksFetches: number;
  reset(): void;
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

export function createFirebaseEmulator(options: { projectId: string; keyId?: string }): FirebaseEmulator {
  const keyId = options.keyId ?? `firebase-${crypto.randomUUID().slice(0, 8)}`;
  const keyPair = generateKeyPair("RS256", { extractable: true });
  const strangerKey = generateKeyPair("RS256");
  let jwksFetches = 0;
  let uidCounter = 0;

  async function issueIdToken(user: FirebaseUser, opts: { claims?: Record<string, unknown>; signWithUnpublishedKey?: boolean } = {}) {
    const now = Math.floor(Date.now() / 1000);
    const uid = user.uid ?? `firebase-uid-${Date.now().toString(36)}-${++uidCounter}`;
    const claims: Record<string, unknown> = {
      iss: `https://securetoken.google.com/${options.projectId}`,
      aud: options.projectId,
      sub: uid,
      user_id: uid,
      auth_time: now,
      iat: now,
      exp: now + 3600,
      ...(user.email !== undefined ? { email: user.email, email_verified: user.email_verified ?? false } : {}),
      ...(user.name ? { name: user.name } : {}),
      firebase: { sign_in_provider: "password", identities: user.email ? { email: [user.email] } : {} },
      ...opts.claims,
    };
    const key = opts.signWithUnpublishedKey ? (await strangerKey).privateKey : (await keyPair).privateKey;
    return new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: keyId, typ: "JWT" }).sign(key);
  }

  async function handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    if (path === "/jwks" && req.method === "GET") {
      jwksFetches++;
      const jwk = await exportJWK((await keyPair).publicKey);
      return json({ keys: [{ ...jwk, kid: keyId, alg: "RS256", use: "sig" }] }, 200, { "Cache-Control": "public, max-age=3600" });
    }
    if (path === "/token" && req.method === "POST") {
      let body: FirebaseUser;
      try {
        body = (await req.json()) as FirebaseUser;
      } catch {
        return json({ error: { code: 400, message: "INVALID_JSON" } }, 400);
      }
      if (typeof body.email !== "string" || !body.email.includes("@")) return json({ error: { code: 400, message: "INVALID_EMAIL" } }, 400);
      return json({ idToken: await issueIdToken({ ...body, email_verified: body.email_verified ?? true }), expiresIn: "3600" });
    }
    return json({ error: { code: 404, message: `no route ${req.method} ${path}` } }, 404);
  }

  return {
    projectId: options.projectId,
    handle,
    issueIdToken,
    get jwksFetches() {
      return jwksFetches;
    },
    reset() {
      jwksFetches = 0;
    },
  };
}
