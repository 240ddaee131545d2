// Google sign-in emulator: the three endpoints of the OpenID Connect authorization code flow,
// at the paths Google serves them from.
//
//   GET  /o/oauth2/v2/auth   (accounts.google.com)   authorization; auto-consents, 302 back with a code
//   POST /token              (oauth2.googleapis.com) code exchange → access token + RS256 ID token
//   GET  /oauth2/v3/certs    (www.googleapis.com)    the JWKS that verifies those ID tokens
//
// Google spreads these over three hosts; the emulator routes by path only, so one handler can
// stand in for all of them. Only web-standard APIs (and jose) are used: the same handler runs
// inside workerd (tests) and inside the Node emulator server.
//
// Deliberately stricter than Google: `state` and PKCE (S256) are required, because our client
// must always send them (CSRF and code-interception protection). Google renders an HTML page for
// a bad authorization request; the emulator answers 400 JSON so tests can read the reason. Any
// http(s) redirect_uri is accepted — there is no console to register one in.

import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { jsonResponse, randomToken } from "./common";

export interface GoogleUser {
  /** Google's stable account id (a decimal string); what a relying party links on. */
  sub: string;
  email: string;
  emailVerified: boolean;
  givenName?: string;
  familyName?: string;
  picture?: string;
}

export interface GoogleOAuthEmulatorOptions {
  clientId: string;
  clientSecret: string;
  /** The `iss` of ID tokens; must equal the relying party's GOOGLE_ISSUER. */
  issuer: string;
  /** Accounts on this "Google"; the first consents until `setNextUser` or a `login_hint` picks another. */
  users?: GoogleUser[];
  /**
   * `kid` of the signing key (default: random). Giving a second emulator the same kid makes it
   * forge look-alike tokens that only a real signature check can tell apart.
   */
  keyId?: string;
  /** Lifetime of authorization codes (Google's are short-lived; default 5 minutes). */
  codeTtlSeconds?: number;
}

export interface IssuedGoogleCode {
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  nonce: string | null;
  scopes: string[];
  user: GoogleUser;
  expiresAt: number;
  used: boolean;
}

export interface GoogleOAuthEmulator {
  handle(req: Request): Promise<Response>;
  /** The account that consents at the next authorization, and at every later one until changed. */
  setNextUser(user: GoogleUser): void;
  readonly currentUser: GoogleUser;
  /** Every authorization code handed out, by code; used ones stay, marked `used`. */
  readonly issuedCodes: ReadonlyMap<string, IssuedGoogleCode>;
  /** Back to the first configured user and no issued codes (the signing key is kept). */
  reset(): void;
}

export const DEFAULT_GOOGLE_USER: GoogleUser = {
  sub: "109876543210987654321",
  email: "fern.gardener@example.com",
  emailVerified: true,
  givenName: "Fern",
  familyName: "Gardener",
  picture: "https://lh3.googleusercontent.com/a/emulated-fern",
};

const ACCESS_TOKEN_TTL_S = 3599;
const ID_TOKEN_TTL_S = 3600;
/** Google expands the short OpenID scopes to these URLs in what it reports back. */
const SCOPE_URLS: Record<string, string> = {
  email: "https://www.googleapis.com/auth/userinfo.email",
  profile: "https://www.googleapis.com/auth/userinfo.profile",
};

export function createGoogleOAuthEmulator(options: GoogleOAuthEmulatorOptions): GoogleOAuthEmulator {
  const users = options.users && options.users.length > 0 ? options.users : [DEFAULT_GOOGLE_USER];
  const codeTtlMs = (options.codeTtlSeconds ?? 300) * 1000;
  const keyId = options.keyId ?? randomToken(16);
  // Generated once per emulator, like a Google signing key that lives for weeks.
  const keyPair = generateKeyPair("RS256");
  let currentUser = users[0] as GoogleUser;
  let issuedCodes = new Map<string, IssuedGoogleCode>();

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.replace(/\/+$/, "");
    switch (path) {
      case "/o/oauth2/v2/auth":
        return req.method === "GET" ? authorize(url) : oauthError(405, "invalid_request", "Method not allowed.");
      case "/token":
        return req.method === "POST" ? token(req) : oauthError(405, "invalid_request", "Method not allowed.");
      case "/oauth2/v3/certs":
        return req.method === "GET" ? certs() : oauthError(405, "invalid_request", "Method not allowed.");
      default:
        return oauthError(404, "not_found", `No route for ${req.method} ${path}.`);
    }
  }

  function authorize(url: URL): Response {
    const params = url.searchParams;
    if (params.get("client_id") !== options.clientId) {
      return oauthError(400, "invalid_client", "The OAuth client was not found.");
    }
    const redirectUri = params.get("redirect_uri");
    if (!redirectUri || !isHttpUrl(redirectUri)) {
      return oauthError(400, "invalid_request", "Missing or invalid parameter: redirect_uri");
    }
    if (params.get("response_type") !== "code") {
      return oauthError(400, "unsupported_response_type", "Only response_type=code is supported.");
    }
    const scopes = (params.get("scope") ?? "").split(/\s+/).filter(Boolean);
    if (!scopes.includes("openid") || !scopes.includes("email")) {
      return oauthError(400, "invalid_scope", "The scope must include openid and email.");
    }
    const state = params.get("state");
    if (!state) return oauthError(400, "invalid_request", "Missing required parameter: state");
    const codeChallenge = params.get("code_challenge");
    if (!codeChallenge || params.get("code_challenge_method") !== "S256") {
      return oauthError(400, "invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256.");
    }

    const user = userForHint(params.get("login_hint")) ?? currentUser;
    const code = `4/0${randomToken(40)}`;
    issuedCodes.set(code, {
      clientId: options.clientId,
      redirectUri,
      codeChallenge,
      nonce: params.get("nonce"),
      scopes,
      user,
      expiresAt: Date.now() + codeTtlMs,
      used: false,
    });
    const target = new URL(redirectUri);
    target.searchParams.set("state", state);
    target.searchParams.set("code", code);
    target.searchParams.set("scope", grantedScope(scopes));
    target.searchParams.set("authuser", "0");
    return new Response(null, { status: 302, headers: { Location: target.toString(), "Cache-Control": "no-store" } });
  }

  /** Google pre-selects the account named by `login_hint` (an email or a sub). */
  function userForHint(hint: string | null): GoogleUser | undefined {
    if (!hint) return undefined;
    const wanted = hint.toLowerCase();
    return users.find((u) => u.email.toLowerCase() === wanted || u.sub === hint);
  }

  async function token(req: Request): Promise<Response> {
    const contentType = (req.headers.get("content-type") ?? "").toLowerCase();
    if (!contentType.startsWith("application/x-www-form-urlencoded")) {
      return oauthError(400, "invalid_request", "Expected an application/x-www-form-urlencoded body.");
    }
    const form = await formParams(req);
    if (!form) return oauthError(400, "invalid_request", "The form body could not be parsed.");
    const client = clientCredentials(req, form);
    if (client.id !== options.clientId) return oauthError(401, "invalid_client", "The OAuth client was not found.");
    if (client.secret !== options.clientSecret) return oauthError(401, "invalid_client", "Unauthorized");

    const grantType = form.get("grant_type");
    if (grantType !== "authorization_code") {
      return oauthError(400, "unsupported_grant_type", `Invalid grant_type: ${grantType ?? ""}`);
    }
    const code = form.get("code");
    if (!code) return oauthError(400, "invalid_request", "Missing required parameter: code");
    const issued = issuedCodes.get(code);
    if (!issued || issued.used || issued.expiresAt <= Date.now() || issued.clientId !== client.id) {
      return oauthError(400, "invalid_grant", "Bad Request");
    }
    // A code is spent by its first presentation, even a failed one (RFC 6749 §4.1.2).
    issued.used = true;
    if (form.get("redirect_uri") !== issued.redirectUri) return oauthError(400, "redirect_uri_mismatch", "Bad Request");
    const verifier = form.get("code_verifier");
    if (!verifier) return oauthError(400, "invalid_grant", "Missing code verifier.");
    if ((await s256Challenge(verifier)) !== issued.codeChallenge) {
      return oauthError(400, "invalid_grant", "Invalid code verifier.");
    }

    const accessToken = `ya29.${randomToken(64)}`;
    return jsonResponse(
      {
        access_token: accessToken,
        expires_in: ACCESS_TOKEN_TTL_S,
        token_type: "Bearer",
        scope: grantedScope(issued.scopes),
        id_token: await signIdToken(issued, accessToken),
      },
      200,
      { "Cache-Control": "no-store" },
    );
  }

  async function signIdToken(issued: IssuedGoogleCode, accessToken: string): Promise<string> {
    const { user } = issued;
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      azp: issued.clientId,
      email: user.email,
      email_verified: user.emailVerified,
      at_hash: await accessTokenHash(accessToken),
    };
    // Like Google, names and picture only come with the profile scope.
    if (issued.scopes.includes("profile")) {
      const name = [user.givenName, user.familyName].filter(Boolean).join(" ");
      if (name) claims.name = name;
      if (user.givenName) claims.given_name = user.givenName;
      if (user.familyName) claims.family_name = user.familyName;
      if (user.picture) claims.picture = user.picture;
    }
    if (issued.nonce !== null) claims.nonce = issued.nonce;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: keyId, typ: "JWT" })
      .setIssuer(options.issuer)
      .setAudience(issued.clientId)
      .setSubject(user.sub)
      .setIssuedAt(now)
      .setExpirationTime(now + ID_TOKEN_TTL_S)
      .sign((await keyPair).privateKey);
  }

  async function certs(): Promise<Response> {
    const publicJwk = await exportJWK((await keyPair).publicKey);
    return jsonResponse({ keys: [{ ...publicJwk, kid: keyId, alg: "RS256", use: "sig" }] }, 200, {
      "Cache-Control": "public, max-age=21600, must-revalidate, no-transform",
    });
  }

  return {
    handle,
    setNextUser(user) {
      currentUser = user;
    },
    get currentUser() {
      return currentUser;
    },
    get issuedCodes() {
      return issuedCodes;
    },
    reset() {
      currentUser = users[0] as GoogleUser;
      issuedCodes = new Map();
    },
  };
}

function oauthError(status: number, error: string, description: string): Response {
  return jsonResponse({ error, error_description: description }, status, { "Cache-Control": "no-store" });
}

/** client_secret_post (form fields) or client_secret_basic (Authorization header); Google takes both. */
function clientCredentials(req: Request, form: URLSearchParams): { id: string | null; secret: string | null } {
  const header = req.headers.get("authorization");
  if (header && /^basic\s/i.test(header)) {
    try {
      const decoded = atob(header.slice(6).trim());
      const colon = decoded.indexOf(":");
      if (colon >= 0) {
        return {
          id: decodeURIComponent(decoded.slice(0, colon)),
          secret: decodeURIComponent(decoded.slice(colon + 1)),
        };
      }
    } catch {
      return { id: null, secret: null };
    }
  }
  return { id: form.get("client_id"), secret: form.get("client_secret") };
}

/** The string fields of a form body (formData, not text(): workerd warns on text() of a form). */
async function formParams(req: Request): Promise<URLSearchParams | null> {
  try {
    const params = new URLSearchParams();
    for (const [key, value] of await req.formData()) if (typeof value === "string") params.set(key, value);
    return params;
  } catch {
    return null;
  }
}

function grantedScope(scopes: string[]): string {
  return scopes.map((scope) => SCOPE_URLS[scope] ?? scope).join(" ");
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === "https:" || protocol === "http:";
  } catch {
    return false;
  }
}

function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** RFC 7636 S256: base64url(SHA-256(verifier)). */
async function s256Challenge(verifier: string): Promise<string> {
  return base64Url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
}

/** OpenID Connect `at_hash`: base64url of the left half of SHA-256(access token). */
async function accessTokenHash(accessToken: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(accessToken)));
  return base64Url(digest.subarray(0, digest.length / 2));
}
