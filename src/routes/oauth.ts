/**
 * /api/v1/auth/oauth — sign-in with Google and GitHub (API.md §1). The rules (state, PKCE,
 * ID-token checks, account linking) live in services/oauth.ts; this file is HTTP only.
 *
 * The callback is a browser navigation coming back from the provider, so it never answers with
 * JSON: success and every failure alike end in a redirect to the frontend, which shows the
 * outcome (`?success=true` or `?error=<code>`).
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { CookieOptions } from "hono/utils/cookie";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { createRouter, routeSet } from "./router";
import { AppError } from "../lib/errors";
import { timingSafeEqualStrings } from "../lib/hash";
import { describeError } from "../lib/logger";
import { setSessionCookies } from "../lib/session-cookies";
import {
  buildAuthorizationUrl,
  completeOAuth,
  isOAuthConfigured,
  OAUTH_PROVIDERS,
  OAuthError,
  oauthRedirectUri,
  type OAuthMount,
  type OAuthProvider,
} from "../services/oauth";
import { sessionDeviceOf } from "../lib/session-device";
import { clientIp, enforceRateLimit } from "../services/rate-limits";
import { jsonBody, errorResponse } from "./schemas";

const ProviderParams = z.object({
  provider: z.enum(OAUTH_PROVIDERS).openapi({ param: { name: "provider", in: "path" }, example: "google" }),
});

const OAuthLoginSchema = z
  .object({
    oauth_url: z.url().openapi({ description: "Send the browser here; it comes back to the callback route." }),
    provider: z.enum(OAUTH_PROVIDERS),
  })
  .openapi("OAuthLogin");

// Every field optional: a malformed callback must still end in a redirect, not a JSON 400.
const CallbackQuery = z.object({
  code: z.string().optional(),
  state: z.string().optional(),
  error: z.string().optional().openapi({ description: "Set by the provider when the user denied access." }),
});

const PROVIDER_NAMES: Record<OAuthProvider, string> = { google: "Google", github: "GitHub" };

/** Identical in the authorization request and the code exchange, as providers require. */
function callbackUrl(c: Context<AppEnv>, provider: OAuthProvider, mount: OAuthMount): string {
  return oauthRedirectUri(getConfig(c.env), provider, mount);
}

const tags = ["Auth"];

const stateCookieName = (provider: OAuthProvider) => `oauth_state_${provider}`;

/**
 * Lax (not the session cookies' Strict): the callback is a cross-site navigation from the
 * provider, which Strict cookies do not accompany. `None` deployments keep `None` + Secure.
 */
function stateCookieOptions(c: Context<AppEnv>, provider: OAuthProvider, mount: OAuthMount, maxAge: number): CookieOptions {
  const config = getConfig(c.env);
  const sameSite = config.COOKIE_SAMESITE === "None" ? "None" : "Lax";
  return {
    httpOnly: true,
    secure: !config.isLocal || sameSite === "None",
    sameSite,
    path: `${mount}/${provider}/`,
    maxAge,
  };
}

/** The sign-in routes under `mount`; a sign-in started under one mount finishes under it. */
export function oauthRoutes(mount: OAuthMount) {
  const app = createRouter();
  const plain = routeSet({ tags, errors: {} });

  const getByProviderLogin = plain.get("/{provider}/login", "Start signing in with Google or GitHub").io(
    { params: ProviderParams },
    {
      200: jsonBody(OAuthLoginSchema, "Provider URL"),
      400: errorResponse(400, "Unknown provider"),
      429: errorResponse(429, "Too many sign-ins started from this address (5 per 15 minutes)", "RATE_LIMITED"),
      503: errorResponse(503, "OAUTH_NOT_CONFIGURED: this provider has no client id or secret"),
    },
    {
      description:
        "Returns the provider URL (with `state` and a PKCE S256 challenge; Google also gets a `nonce`). " +
        "The pending sign-in expires after 10 minutes.",
    },
  );
  app.openapi(getByProviderLogin, async (c) => {
    const { provider } = c.req.valid("param");
    const config = getConfig(c.env);
    if (!isOAuthConfigured(config, provider)) {
      throw new AppError("OAUTH_NOT_CONFIGURED", 503, `Sign-in with ${PROVIDER_NAMES[provider]} is not configured.`);
    }
    // A sign-in attempt, counted per address as the others are (its own count): each writes a
    // pending sign-in and lets one callback call the provider.
    await enforceRateLimit(c.env, `oauth:ip:${clientIp(c.req.raw)}`, config.LOGIN_RATE_LIMIT);
    const oauthUrl = await buildAuthorizationUrl(c.env, config, provider, callbackUrl(c, provider, mount));
    // Bind the sign-in to this browser: the callback must come back with the same state in a
    // cookie, or an attacker could make a victim's browser finish the attacker's sign-in
    // (login CSRF) with a code and state the attacker obtained.
    setCookie(c, stateCookieName(provider), new URL(oauthUrl).searchParams.get("state")!, stateCookieOptions(c, provider, mount, 600));
    // The URL carries a live state; no cache may keep it.
    c.header("Cache-Control", "no-store");
    return c.json({ oauth_url: oauthUrl, provider }, 200);
  });

  const getByProviderCallback = plain
    .get("/{provider}/callback", "Where the provider sends the browser back; signs in and redirects to the frontend")
    .io(
      { params: ProviderParams, query: CallbackQuery },
      {
        302: { description: "Redirect to the frontend with the outcome", headers: z.object({ Location: z.string() }) },
        400: errorResponse(400, "Unknown provider"),
      },
      {
        description:
          "On success sets the session cookies and redirects to `FRONTEND_URL/auth/{provider}/callback?success=true`. " +
          "On failure redirects to `…?error=<code>`, one of: access_denied, invalid_request, invalid_state, " +
          "token_exchange_failed, invalid_id_token, profile_fetch_failed, email_required, email_not_verified, two_factor_required, " +
          "account_disabled, not_configured, server_error. An existing account is linked only when the provider " +
          "says the email is verified.",
      },
    );
  app.openapi(getByProviderCallback, async (c) => {
    const { provider } = c.req.valid("param");
    const { code, state, error } = c.req.valid("query");
    const config = getConfig(c.env);
    const logger = c.get("logger").child({ provider });
    const backToFrontend = (outcome: string) => {
      c.header("Cache-Control", "no-store");
      return c.redirect(`${config.FRONTEND_URL.replace(/\/+$/, "")}/auth/${provider}/callback?${outcome}`, 302);
    };

    if (error) {
      logger.info("oauth sign-in declined at the provider", { provider_error: error.slice(0, 100) });
      return backToFrontend("error=access_denied");
    }
    const boundState = getCookie(c, stateCookieName(provider));
    deleteCookie(c, stateCookieName(provider), stateCookieOptions(c, provider, mount, 0));
    if (!state || !boundState || !timingSafeEqualStrings(boundState, state)) return backToFrontend("error=invalid_state");
    if (!code) return backToFrontend("error=invalid_request");

    try {
      const { user, pair } = await completeOAuth(
        c.env,
        config,
        provider,
        { code, state, redirectUri: callbackUrl(c, provider, mount) },
        sessionDeviceOf(c.req.raw),
      );
      await setSessionCookies(c, pair);
      logger.info("oauth sign-in", { user_id: user.id });
      return backToFrontend("success=true");
    } catch (err) {
      if (err instanceof OAuthError) {
        logger.warn("oauth sign-in refused", { code: err.code, reason: err.message });
        return backToFrontend(`error=${err.code}`);
      }
      logger.error("oauth sign-in failed", describeError(err));
      return backToFrontend("error=server_error");
    }
  });

  return app;
}
