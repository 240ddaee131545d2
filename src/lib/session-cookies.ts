/**
 * Web session cookies (API.md §1): HttpOnly access and refresh cookies — the refresh cookie
 * scoped to /api/v1/auth/ so browsers send it to the refresh route and nowhere else — plus the
 * readable `csrftoken` for double-submit. Secure outside local development.
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { CookieOptions } from "hono/utils/cookie";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE } from "../middleware/auth";
import { randomToken } from "./hash";

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

export function setSessionCookies(c: Context<AppEnv>, tokens: { access: string; refresh: string; accessExpiresIn: number; refreshExpiresIn: number }) {
  const base = baseOptions(c);
  setCookie(c, ACCESS_COOKIE, tokens.access, { ...base, httpOnly: true, maxAge: tokens.accessExpiresIn });
  setCookie(c, REFRESH_COOKIE, tokens.refresh, {
    ...base,
    httpOnly: true,
    path: REFRESH_COOKIE_PATH,
    maxAge: tokens.refreshExpiresIn,
  });
  ensureCsrfCookie(c);
}

/** Returns the CSRF token, issuing a cookie when the client has none. */
export function ensureCsrfCookie(c: Context<AppEnv>): string {
  const existing = getCookie(c, CSRF_COOKIE);
  if (existing && /^[A-Za-z0-9_-]{32,64}$/.test(existing)) return existing;
  const token = randomToken(32);
  setCookie(c, CSRF_COOKIE, token, { ...baseOptions(c), httpOnly: false, maxAge: 365 * 24 * 3600 });
  return token;
}

export function clearSessionCookies(c: Context<AppEnv>) {
  const base = baseOptions(c);
  deleteCookie(c, ACCESS_COOKIE, { ...base });
  deleteCookie(c, REFRESH_COOKIE, { ...base, path: REFRESH_COOKIE_PATH });
}
