/**
 * Authentication for every request: `Authorization: Bearer <access>` (mobile/API) or the
 * access cookie (web: `__Host-access_token`, `access_token` in local development). A valid token sets `user` on the context; routes that need a
 * user add `requireAuth`, staff routes `requireRole`. Cookie-authenticated unsafe requests must
 * carry the CSRF double-submit header (API.md §1); bearer requests need none.
 */
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { getConfig } from "../config";
import type { AppEnv, AuthenticatedUser } from "../env";
import { AppError } from "../lib/errors";
import { timingSafeEqualStrings } from "../lib/hash";
import { accessCookieName, csrfCookieName, isSessionCsrfToken } from "../lib/session-cookies";
import { authenticateAccessToken } from "../services/sessions";
import type { TokenClaims } from "../lib/token-claims";
import type { Role } from "../services/users";

export const CSRF_HEADER = "X-CSRFToken";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Resolves an access token to a live user (services/sessions' `authenticateAccessToken`). */
export function userFromAccessToken(c: Context<AppEnv>, token: string): Promise<{ user: AuthenticatedUser; claims: TokenClaims }> {
  return authenticateAccessToken(c.env, getConfig(c.env), token);
}

export function bearerToken(c: Context<AppEnv>): string | null {
  const header = c.req.header("Authorization");
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match ? match[1]! : null;
}

/** Sets `user` when credentials are valid. Invalid credentials are remembered, not thrown, so
 * anonymous routes still work; `requireAuth` turns them into a 401 with the precise reason. */
export const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
  const bearer = bearerToken(c);
  const cookie = bearer ? null : getCookie(c, accessCookieName(getConfig(c.env)));
  const token = bearer ?? cookie;
  if (token) {
    try {
      const { user, claims } = await userFromAccessToken(c, token);
      c.set("user", user);
      c.set("authMethod", bearer ? "bearer" : "cookie");
      c.set("accessClaims", claims);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      c.set("authError", err);
    }
  } else if (c.req.header("Authorization") !== undefined) {
    // A header meant to sign in, in another form (the token without "Bearer ", Basic): said,
    // rather than "credentials were not provided" to a client that did send some.
    c.set("authError", new AppError("AUTHENTICATION_REQUIRED", 401, MALFORMED_AUTHORIZATION));
  }
  await next();
};

export const MALFORMED_AUTHORIZATION = 'The Authorization header must be "Bearer <access token>", with the access token from auth/token/.';

export const requireAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!c.get("user")) {
    throw c.get("authError") ?? new AppError("AUTHENTICATION_REQUIRED", 401, "Authentication credentials were not provided.");
  }
  await next();
};

/** The signed-in caller's id, on a route behind `requireAuth` (or a role check). */
export function userIdOf(c: Context<AppEnv>): string {
  const user = c.get("user");
  if (!user) throw new AppError("AUTHENTICATION_REQUIRED", 401, "Authentication credentials were not provided.");
  return user.id;
}

/** The signed-in caller's access-token claims, on a route behind `requireAuth`. */
export function accessClaimsOf(c: Context<AppEnv>): TokenClaims {
  const claims = c.get("accessClaims");
  if (!claims) throw new AppError("AUTHENTICATION_REQUIRED", 401, "Authentication credentials were not provided.");
  return claims;
}

export function requireRole(...roles: Role[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const user = c.get("user");
    if (!user) throw c.get("authError") ?? new AppError("AUTHENTICATION_REQUIRED", 401, "Authentication credentials were not provided.");
    if (!roles.includes(user.role)) throw new AppError("FORBIDDEN", 403, "You do not have permission to perform this action.");
    await next();
  };
}

/**
 * Throws 403 CSRF_FAILED unless the X-CSRFToken header matches the CSRF cookie and, for a
 * session (`sessionId`: the access token's `sid`, or the refresh token's family), is that
 * session's own token — so a cookie tossed in by a sibling domain, or one from another
 * session, is refused. Tokens from before sessions had ids get the double-submit check alone.
 */
export async function assertCsrf(c: Context<AppEnv>, sessionId: string | undefined = c.get("accessClaims")?.sid): Promise<void> {
  const config = getConfig(c.env);
  const cookie = getCookie(c, csrfCookieName(config));
  const header = c.req.header(CSRF_HEADER);
  const fail = () =>
    new AppError("CSRF_FAILED", 403, "CSRF verification failed. Send the X-CSRFToken header matching the csrftoken cookie.");
  if (!cookie || !header || !timingSafeEqualStrings(cookie, header)) throw fail();
  if (sessionId && !(await isSessionCsrfToken(config, sessionId, header))) throw fail();
}

/**
 * Routes this middleware leaves alone: the synchronous identify route answers every failure in
 * the seed client's own shape, so it calls assertCsrf itself; one-click unsubscribe (RFC 8058)
 * and the email provider's webhook ignore the session entirely — a signed token or signature
 * authorises them — so a cookie sent along proves nothing and must not block them.
 */
const CHECKS_OWN_CSRF = /^\/api\/v1\/(plant-identification\/identify|notifications\/unsubscribe|notifications\/email-events)\/?$/;

/** Double-submit CSRF for cookie-authenticated unsafe requests. */
export const csrfProtection: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.get("authMethod") === "cookie" && !SAFE_METHODS.has(c.req.method) && !CHECKS_OWN_CSRF.test(c.req.path)) await assertCsrf(c);
  await next();
};
