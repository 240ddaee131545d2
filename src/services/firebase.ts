/**
 * Firebase sign-in for the mobile app (API.md §5d): the app signs in with the Firebase SDK and
 * exchanges the Firebase ID token for our own token pair. The token is verified with jose
 * against Google's securetoken JWKS, as Firebase documents: RS256, `aud` = our project id,
 * `iss` = https://securetoken.google.com/<project id>, `exp` in the future, `iat` and
 * `auth_time` not in the future, a non-empty `sub` (the Firebase uid). The account is then found
 * or made with the OAuth linking rules (services/oauth.ts signInWithIdentity): a Firebase uid
 * seen before → its account; an existing account with the email only when Firebase verified it.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from "jose";
import type { Config } from "../config";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import type { SessionDevice } from "../lib/session-device";
import { OAuthError, type ProviderSession, startProviderSession, usernameBase } from "./oauth";

type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>;
/** One key set per JWKS URL for the isolate's life: jose caches the keys and refetches on an unknown kid. */
const keySets = new Map<string, RemoteKeySet>();

function keySet(jwksUrl: string): RemoteKeySet {
  let set = keySets.get(jwksUrl);
  if (!set) {
    set = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 5000 });
    keySets.set(jwksUrl, set);
  }
  return set;
}

/** Allowed clock difference between Google and us, in seconds. */
const CLOCK_TOLERANCE_S = 60;

export interface FirebaseClaims {
  uid: string;
  email: string | null;
  emailVerified: boolean;
  name: string;
}

export async function verifyFirebaseIdToken(config: Config, token: string): Promise<FirebaseClaims> {
  if (!config.FIREBASE_PROJECT_ID) throw new AppError("FIREBASE_NOT_CONFIGURED", 503, "Firebase sign-in is not configured.");
  const invalid = (why: string) => new AppError("FIREBASE_TOKEN_INVALID", 401, `The Firebase ID token was refused: ${why}.`);
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, keySet(config.FIREBASE_JWKS_URL), {
      algorithms: ["RS256"],
      issuer: `https://securetoken.google.com/${config.FIREBASE_PROJECT_ID}`,
      audience: config.FIREBASE_PROJECT_ID,
      requiredClaims: ["sub", "iat", "exp", "auth_time"],
      clockTolerance: CLOCK_TOLERANCE_S,
    }));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw invalid("it has expired");
    if (err instanceof joseErrors.JWTClaimValidationFailed) throw invalid(`its "${err.claim}" claim is not for this project or not valid`);
    if (err instanceof joseErrors.JWKSTimeout || !(err instanceof joseErrors.JOSEError)) throw invalid("its keys could not be fetched");
    // A bad signature, an unknown key, a malformed token: all the same to the caller.
    throw invalid("it is not a valid token signed by Firebase");
  }
  const now = Math.floor(Date.now() / 1000);
  const sub = payload.sub;
  if (typeof sub !== "string" || sub === "" || sub.length > 128) throw invalid("it has no valid subject");
  const authTime = payload.auth_time;
  if (typeof authTime !== "number" || authTime > now + CLOCK_TOLERANCE_S) throw invalid("its auth_time is in the future");
  if (typeof payload.iat === "number" && payload.iat > now + CLOCK_TOLERANCE_S) throw invalid("it was issued in the future");
  const email = typeof payload.email === "string" && payload.email.includes("@") ? payload.email.toLowerCase() : null;
  return {
    uid: sub,
    email,
    emailVerified: payload.email_verified === true,
    name: typeof payload.name === "string" ? payload.name.slice(0, 150) : "",
  };
}

/** Verifies the Firebase ID token and signs its person in (finding, linking or making the account). */
export async function signInWithFirebase(
  env: Bindings,
  config: Config,
  token: string,
  device: SessionDevice | null,
): Promise<ProviderSession> {
  const claims = await verifyFirebaseIdToken(config, token);
  const [firstName = "", ...rest] = claims.name.split(" ").filter(Boolean);
  try {
    return await startProviderSession(
      env,
      config,
      {
        provider: "firebase",
        providerUserId: claims.uid,
        email: claims.email,
        emailVerified: claims.emailVerified,
        firstName,
        lastName: rest.join(" "),
        usernameHint: claims.email?.split("@")[0] ?? usernameBase(`firebase_${claims.uid}`),
      },
      device,
    );
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    if (err.code === "email_not_verified") {
      throw new AppError("EMAIL_NOT_VERIFIED", 403, "An account with this email exists; verify the email in the app, then try again.");
    }
    if (err.code === "email_required") {
      throw new AppError("VALIDATION_ERROR", 400, "The Firebase account has no email address.", {
        firebase_token: ["The Firebase account has no email address."],
      });
    }
    if (err.code === "two_factor_required") throw new AppError("FORBIDDEN", 403, err.message);
    if (err.code === "account_disabled") throw new AppError("ACCOUNT_DISABLED", 403, "This account is disabled.");
    if (err.code === "invalid_id_token") throw new AppError("FIREBASE_TOKEN_INVALID", 401, err.message);
    throw err;
  }
}
