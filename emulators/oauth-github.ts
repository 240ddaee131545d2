// GitHub OAuth app emulator: the web application flow and the two REST endpoints a sign-in
// needs, at the paths GitHub serves them from.
//
//   GET  /login/oauth/authorize      (github.com)     authorization; auto-consents, 302 back with a code
//   POST /login/oauth/access_token   (github.com)     code exchange (form, JSON or query parameters)
//   GET  /user                       (api.github.com) the signed-in profile
//   GET  /user/emails                (api.github.com) every address on the account, with `verified`
//
// GitHub uses two hosts; the emulator routes by path only, so one handler serves both. Only
// web-standard APIs are used: the same handler runs inside workerd (tests) and the Node server.
//
// GitHub quirks kept on purpose, because clients get them wrong:
// - token errors are HTTP 200 with an `error` field, never a 4xx;
// - the token answer is form-encoded unless the request says `Accept: application/json`;
// - the REST API refuses requests without a User-Agent (403).
// Deliberately stricter than GitHub: `state` is required, since our client must always send it.
// GitHub renders HTML for a bad authorization request; the emulator answers 400 JSON instead.

import { bearerToken, jsonResponse, randomToken } from "./common";

export interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
  visibility: "public" | "private" | null;
}

export interface GitHubUser {
  /** GitHub's numeric account id; stable across login renames. */
  id: number;
  login: string;
  name: string | null;
  /** The public profile email; null when the user keeps their addresses private. */
  email: string | null;
  avatarUrl?: string;
  /** Every address on the account, as GET /user/emails lists them. */
  emails: GitHubEmail[];
}

export interface GitHubOAuthEmulatorOptions {
  clientId: string;
  clientSecret: string;
  /** Accounts on this "GitHub"; the first consents until `setNextUser` or a `login` parameter picks another. */
  users?: GitHubUser[];
  /** Lifetime of authorization codes (GitHub: 10 minutes). */
  codeTtlSeconds?: number;
}

export interface IssuedGitHubCode {
  redirectUri: string;
  scopes: string[];
  /** null when the authorization request did not use PKCE (optional on GitHub). */
  codeChallenge: string | null;
  user: GitHubUser;
  expiresAt: number;
  used: boolean;
}

export interface GitHubOAuthEmulator {
  /** Serves both github.com and api.github.com paths. */
  handle(req: Request): Promise<Response>;
  /** The account that consents at the next authorization, and at every later one until changed. */
  setNextUser(user: GitHubUser): void;
  readonly currentUser: GitHubUser;
  /** Every authorization code handed out, by code; used ones stay, marked `used`. */
  readonly issuedCodes: ReadonlyMap<string, IssuedGitHubCode>;
  /** Back to the first configured user, no codes and no valid access tokens. */
  reset(): void;
}

export const DEFAULT_GITHUB_USER: GitHubUser = {
  id: 5830231,
  login: "mossy-octocat",
  name: "Mossy Octocat",
  email: null,
  avatarUrl: "https://avatars.githubusercontent.com/u/5830231?v=4",
  emails: [{ email: "mossy.octocat@example.com", primary: true, verified: true, visibility: "private" }],
};

const DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/";
const TOKEN_ERRORS = {
  incorrect_client_credentials: "The client_id and/or client_secret passed are incorrect.",
  redirect_uri_mismatch: "The redirect_uri MUST match the registered callback URL for this application.",
  bad_verification_code: "The code passed is incorrect or expired.",
} as const;
type TokenErrorCode = keyof typeof TOKEN_ERRORS;

const USER_AGENT_REQUIRED =
  "Request forbidden by administrative rules. Please make sure your request has a User-Agent header " +
  "(https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).";

interface GrantedToken {
  user: GitHubUser;
  scopes: string[];
}

export function createGitHubOAuthEmulator(options: GitHubOAuthEmulatorOptions): GitHubOAuthEmulator {
  const users = options.users && options.users.length > 0 ? options.users : [DEFAULT_GITHUB_USER];
  const codeTtlMs = (options.codeTtlSeconds ?? 600) * 1000;
  let currentUser = users[0] as GitHubUser;
  let issuedCodes = new Map<string, IssuedGitHubCode>();
  let accessTokens = new Map<string, GrantedToken>();

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.replace(/\/+$/, "");
    if (path === "/login/oauth/authorize" && req.method === "GET") return authorize(url);
    if (path === "/login/oauth/access_token" && req.method === "POST") return token(req, url);
    if ((path === "/user" || path === "/user/emails") && req.method === "GET") return api(req, path);
    return jsonResponse({ message: "Not Found", documentation_url: "https://docs.github.com/rest" }, 404);
  }

  function authorize(url: URL): Response {
    const params = url.searchParams;
    if (params.get("client_id") !== options.clientId) return badRequest("invalid_client", "Unknown client_id.");
    const redirectUri = params.get("redirect_uri");
    if (!redirectUri || !isHttpUrl(redirectUri)) return badRequest("invalid_request", "Missing or invalid redirect_uri.");
    const state = params.get("state");
    if (!state) return badRequest("invalid_request", "Missing required parameter: state.");
    const codeChallenge = params.get("code_challenge");
    const method = params.get("code_challenge_method");
    // PKCE is optional on GitHub, but when used only S256 is accepted.
    if ((codeChallenge || method) && (!codeChallenge || method !== "S256")) {
      return badRequest("invalid_request", "code_challenge requires code_challenge_method=S256.");
    }

    const user = userForLogin(params.get("login")) ?? currentUser;
    const code = randomToken(20);
    issuedCodes.set(code, {
      redirectUri,
      // GitHub accepts scopes separated by spaces or commas.
      scopes: (params.get("scope") ?? "").split(/[\s,]+/).filter(Boolean),
      codeChallenge,
      user,
      expiresAt: Date.now() + codeTtlMs,
      used: false,
    });
    const target = new URL(redirectUri);
    target.searchParams.set("code", code);
    target.searchParams.set("state", state);
    return new Response(null, { status: 302, headers: { Location: target.toString(), "Cache-Control": "no-store" } });
  }

  /** GitHub suggests the account named by the `login` parameter. */
  function userForLogin(login: string | null): GitHubUser | undefined {
    if (!login) return undefined;
    return users.find((u) => u.login.toLowerCase() === login.toLowerCase());
  }

  async function token(req: Request, url: URL): Promise<Response> {
    const params = await tokenParams(req, url);
    const wantsJson = (req.headers.get("accept") ?? "").toLowerCase().includes("application/json");
    const refuse = (error: TokenErrorCode) =>
      tokenAnswer(wantsJson, { error, error_description: TOKEN_ERRORS[error], error_uri: `${DOCS}#${error.replaceAll("_", "-")}` });

    if (params.get("client_id") !== options.clientId || params.get("client_secret") !== options.clientSecret) {
      return refuse("incorrect_client_credentials");
    }
    const code = params.get("code") ?? "";
    const issued = issuedCodes.get(code);
    if (!issued || issued.used || issued.expiresAt <= Date.now()) return refuse("bad_verification_code");
    // A code is spent by its first presentation, even a failed one.
    issued.used = true;
    const redirectUri = params.get("redirect_uri");
    if (redirectUri !== null && redirectUri !== issued.redirectUri) return refuse("redirect_uri_mismatch");
    if (issued.codeChallenge !== null) {
      const verifier = params.get("code_verifier");
      if (!verifier || (await s256Challenge(verifier)) !== issued.codeChallenge) return refuse("bad_verification_code");
    }

    const accessToken = `gho_${randomToken(36)}`;
    accessTokens.set(accessToken, { user: issued.user, scopes: issued.scopes });
    return tokenAnswer(wantsJson, { access_token: accessToken, token_type: "bearer", scope: issued.scopes.join(",") });
  }

  function api(req: Request, path: string): Response {
    if (!req.headers.get("user-agent"))
      return new Response(USER_AGENT_REQUIRED, { status: 403, headers: { "content-type": "text/plain" } });
    const presented = apiToken(req);
    if (presented === null) return unauthorized("Requires authentication");
    const grant = accessTokens.get(presented);
    if (!grant) return unauthorized("Bad credentials");
    const { user } = grant;
    if (path === "/user") {
      return jsonResponse({
        login: user.login,
        id: user.id,
        node_id: `U_emulated${user.id}`,
        avatar_url: user.avatarUrl ?? `https://avatars.githubusercontent.com/u/${user.id}?v=4`,
        html_url: `https://github.com/${user.login}`,
        type: "User",
        site_admin: false,
        name: user.name,
        email: user.email,
      });
    }
    // Listing private addresses needs the user:email (or full user) scope; GitHub hides the
    // resource rather than admitting it exists.
    if (!grant.scopes.includes("user:email") && !grant.scopes.includes("user")) {
      return jsonResponse({ message: "Not Found", documentation_url: "https://docs.github.com/rest/users/emails" }, 404);
    }
    return jsonResponse(user.emails.map((e) => ({ email: e.email, primary: e.primary, verified: e.verified, visibility: e.visibility })));
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
      currentUser = users[0] as GitHubUser;
      issuedCodes = new Map();
      accessTokens = new Map();
    },
  };
}

/** GitHub reads the exchange parameters from the query string, a form body or a JSON body. */
async function tokenParams(req: Request, url: URL): Promise<URLSearchParams> {
  const params = new URLSearchParams(url.search);
  const contentType = (req.headers.get("content-type") ?? "").toLowerCase();
  // An unreadable body counts as no parameters: the exchange then fails on the missing ones.
  if (contentType.startsWith("application/json")) {
    const body: unknown = await req.json().catch(() => null);
    if (typeof body === "object" && body !== null && !Array.isArray(body)) {
      for (const [key, value] of Object.entries(body)) if (typeof value === "string") params.set(key, value);
    }
  } else if (contentType.startsWith("application/x-www-form-urlencoded") || contentType.startsWith("multipart/form-data")) {
    const form = await req.formData().catch(() => null);
    for (const [key, value] of form ?? []) if (typeof value === "string") params.set(key, value);
  }
  return params;
}

/** Always 200, even for errors; JSON only when asked for, form-encoded otherwise (GitHub's default). */
function tokenAnswer(wantsJson: boolean, fields: Record<string, string>): Response {
  if (wantsJson) return jsonResponse(fields, 200, { "Cache-Control": "no-store" });
  return new Response(new URLSearchParams(fields).toString(), {
    status: 200,
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8", "Cache-Control": "no-store" },
  });
}

/** GitHub takes `Authorization: Bearer <t>` and the older `Authorization: token <t>`. */
function apiToken(req: Request): string | null {
  const header = req.headers.get("authorization") ?? "";
  const legacy = /^token\s+(\S+)$/i.exec(header.trim());
  return legacy ? (legacy[1] as string) : bearerToken(req);
}

function unauthorized(message: string): Response {
  return jsonResponse({ message, documentation_url: "https://docs.github.com/rest", status: "401" }, 401);
}

function badRequest(error: string, description: string): Response {
  return jsonResponse({ error, error_description: description }, 400, { "Cache-Control": "no-store" });
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === "https:" || protocol === "http:";
  } catch {
    return false;
  }
}

/** RFC 7636 S256: base64url(SHA-256(verifier)). */
async function s256Challenge(verifier: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  let binary = "";
  for (const byte of digest) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
