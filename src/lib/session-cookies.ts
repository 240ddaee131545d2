/**
 * Web session cookies (API.md §1): HttpOnly access and refresh cookies — the refresh cookie
 * scoped to /api/v1/auth/ so browsers send it to the refresh route and nowhere else — plus the
 * readable CSRF cookie for double-submit. Secure outside local development.
 *
 * The CSRF token of a session is an HMAC of the session id (the refresh family), and the cookie
 * is named `__Host-csrftoken` outside local development. Plain double-submit trusts any cookie
 * the browser holds, and a sibling subdomain can toss one in; a `__Host-` cookie can only be set
 * by this host over HTTPS, and a token bound to the session is worthless in another session.
 *
 * The access cookie is `__Host-access_token` outside local development for the same reason: a
 * plain-named one tossed in by a sibling subdomain (sent first, with a longer Path) would sign the
 * visitor in to the tosser's account, and `auth/csrf/` would hand it that session's CSRF token, so
 * the visitor's writes would land in an account the tosser reads. (The refresh cookie cannot be
 * `__Host-`, its Path is not /; a tossed one fails the session-bound CSRF check of the refresh.)
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { CookieOptions } from "hono/utils/cookie";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { rawSigningKey, rawVerifyingKeys, type SecretSettings, verifiedByAny } from "./derived-keys";
import { base64UrlDecode, base64UrlEncode, randomToken } from "./hash";

/** `access_token` in local development (plain http), `__Host-access_token` everywhere else. */
export function accessCookieName(config: { isLocal: boolean }): string {
  return config.isLocal ? "access_token" : "__Host-access_token";
}
export const REFRESH_COOKIE = "refresh_token";
export const REFRESH_COOKIE_PATH = "/api/v1/auth/";

function baseOptions(c: Context<AppEnv>): CookieOptions {
  const config = getConfig(c.env);
  const sameSite = config.COOKIE_SAMESITE;
  return {
    path: "/",
    sameSite,
    // SameSite=None is only honoured on Secure cookies.
    secure: !config.isLocal || sameSite === "None",
  };
}

/** `csrftoken` in local development (plain http), `__Host-csrftoken` everywhere else. */
export function csrfCookieName(config: { isLocal: boolean }): string {
  return config.isLocal ? "csrftoken" : "__Host-csrftoken";
}

const csrfData = (sessionId: string) => new TextEncoder().encode(`csrf:${sessionId}`);

/**
 * The session's CSRF token: HMAC-SHA-256(JWT_SECRET, "csrf:" + session id), base64url. Always
 * under the current secret; `isSessionCsrfToken` also accepts one made under a previous secret.
 */
export async function csrfTokenForSession(settings: SecretSettings, sessionId: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await rawSigningKey(settings), csrfData(sessionId));
  return base64UrlEncode(new Uint8Array(mac));
}

/** Whether `token` is the session's CSRF token under the current secret or a previous one (compared in constant time). */
export async function isSessionCsrfToken(settings: SecretSettings, sessionId: string, token: string): Promise<boolean> {
  const mac = base64UrlDecode(token);
  if (mac?.length !== 32 || base64UrlEncode(mac) !== token) return false;
  return verifiedByAny(await rawVerifyingKeys(settings), mac, csrfData(sessionId));
}

export async function setSessionCookies(
  c: Context<AppEnv>,
  tokens: { access: string; refresh: string; accessExpiresIn: number; refreshExpiresIn: number; familyId: string },
): Promise<string> {
  const base = baseOptions(c);
  setCookie(c, accessCookieName(getConfig(c.env)), tokens.access, { ...base, httpOnly: true, maxAge: tokens.accessExpiresIn });
  setCookie(c, REFRESH_COOKIE, tokens.refresh, {
    ...base,
    httpOnly: true,
    path: REFRESH_COOKIE_PATH,
    maxAge: tokens.refreshExpiresIn,
  });
  return setCsrfCookie(c, await csrfTokenForSession(getConfig(c.env), tokens.familyId));
}

function setCsrfCookie(c: Context<AppEnv>, token: string): string {
  setCookie(c, csrfCookieName(getConfig(c.env)), token, { ...baseOptions(c), httpOnly: false, maxAge: 365 * 24 * 3600 });
  return token;
}

/**
 * The CSRF token for this client: the session's own when it is signed in with a cookie session
 * (`sessionId`), else the existing anonymous cookie or a new random one (nothing to protect yet).
 */
export async function ensureCsrfCookie(c: Context<AppEnv>, sessionId?: string): Promise<string> {
  const existing = getCookie(c, csrfCookieName(getConfig(c.env)));
  if (sessionId) {
    const token = await csrfTokenForSession(getConfig(c.env), sessionId);
    return existing === token ? token : setCsrfCookie(c, token);
  }
  if (existing && /^[A-Za-z0-9_-]{32,64}$/.test(existing)) return existing;
  return setCsrfCookie(c, randomToken(32));
}

export function clearSessionCookies(c: Context<AppEnv>) {
  const base = baseOptions(c);
  deleteCookie(c, accessCookieName(getConfig(c.env)), { ...base });
  deleteCookie(c, REFRESH_COOKIE, { ...base, path: REFRESH_COOKIE_PATH });
}
