// Sign-in with Google and GitHub, end to end through the Worker, with the providers played by
// the emulators in emulators/. Outbound fetches are routed to them by hostname; the browser's
// trip to the provider's authorize page is played by calling the emulator handler directly.
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createGitHubOAuthEmulator, DEFAULT_GITHUB_USER, type GitHubUser } from "../../emulators/oauth-github";
import { createGoogleOAuthEmulator, DEFAULT_GOOGLE_USER, type GoogleUser } from "../../emulators/oauth-google";
import { createApp } from "../../src/app";
import { getConfig } from "../../src/config";
import { sha256Hex } from "../../src/lib/hash";
import {
  buildAuthorizationUrl,
  isOAuthConfigured,
  OAuthError,
  signInWithIdentity,
  usernameBase,
  type OAuthProvider,
  type ProviderIdentity,
} from "../../src/services/oauth";
import { createUser } from "../../src/services/users";
import { BASE, call, expectError, freshIp, setCookies } from "../helpers/http";
import { envRacingFirstBatch } from "../helpers/racing-env";
import { uniqueName } from "../helpers/users";

const FRONTEND = "http://localhost:5173";
const GOOGLE_KEY_ID = "emulated-google-key-1";
// Set in vitest.config.ts; optional in the generated Env type because secrets may be unset.
const GOOGLE_CLIENT_SECRET = env.GOOGLE_CLIENT_SECRET!;
const GITHUB_CLIENT_SECRET = env.GITHUB_CLIENT_SECRET!;

// One Google emulator for the whole file: the service caches Google's JWKS per isolate, as it
// would cache the real one, so the signing key must outlive a single test.
const google = createGoogleOAuthEmulator({
  clientId: env.GOOGLE_CLIENT_ID,
  clientSecret: GOOGLE_CLIENT_SECRET,
  issuer: env.GOOGLE_ISSUER,
  keyId: GOOGLE_KEY_ID,
});
const github = createGitHubOAuthEmulator({ clientId: env.GITHUB_CLIENT_ID, clientSecret: GITHUB_CLIENT_SECRET });

type Handler = (req: Request) => Promise<Response>;
const defaultHosts: Record<string, Handler> = {
  "google.emulator.test": google.handle,
  "github.emulator.test": github.handle,
  "api.github.emulator.test": github.handle,
};

/** Routes the Worker's outbound fetches to `hosts` by hostname; every call gets its own Response. */
function routeProviders(hosts: Record<string, Handler> = defaultHosts) {
  return vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const req = new Request(input, init);
    const handler = hosts[new URL(req.url).hostname];
    if (!handler) throw new Error(`unexpected outbound fetch: ${req.method} ${req.url}`);
    return handler(req);
  });
}

beforeEach(() => {
  google.reset();
  github.reset();
  routeProviders();
});
afterEach(() => {
  vi.restoreAllMocks();
});

let identityCounter = 0;
function googleUser(overrides: Partial<GoogleUser> = {}): GoogleUser {
  identityCounter++;
  const name = uniqueName("fern");
  return { ...DEFAULT_GOOGLE_USER, sub: `1098765432${Date.now()}${identityCounter}`, email: `${name}@example.com`, ...overrides };
}
function githubUser(overrides: Partial<GitHubUser> = {}): GitHubUser {
  identityCounter++;
  const login = uniqueName("moss");
  return {
    ...DEFAULT_GITHUB_USER,
    id: 7_000_000 + identityCounter,
    login,
    emails: [{ email: `${login}@example.com`, primary: true, verified: true, visibility: "private" }],
    ...overrides,
  };
}

const emulatorFor = (provider: OAuthProvider) => (provider === "google" ? google : github);

async function startLogin(provider: OAuthProvider, ip: string) {
  const res = await call(`/api/v1/auth/oauth/${provider}/login/`, { ip });
  expect(res.status, await res.clone().text()).toBe(200);
  const body = (await res.json()) as { oauth_url: string; provider: string };
  const stateCookie = setCookies(res)[`oauth_state_${provider}`]!;
  expect(stateCookie.attributes).toMatchObject({ httponly: true, samesite: "Lax", path: `/api/v1/auth/oauth/${provider}/` });
  const url = new URL(body.oauth_url);
  expect(stateCookie.value).toBe(url.searchParams.get("state"));
  return { res, body, url, browserCookies: { [`oauth_state_${provider}`]: stateCookie.value } };
}

/** The browser at the provider: consent, then the provider's redirect back to our callback. */
async function consentAtProvider(provider: OAuthProvider, oauthUrl: URL) {
  const res = await emulatorFor(provider).handle(new Request(oauthUrl));
  expect(res.status, await res.clone().text()).toBe(302);
  const back = new URL(res.headers.get("Location")!);
  expect(back.origin + back.pathname).toBe(`${BASE}/api/v1/auth/oauth/${provider}/callback/`);
  return { code: back.searchParams.get("code")!, state: back.searchParams.get("state")!, callbackPath: back.pathname + back.search };
}

function callback(provider: OAuthProvider, params: Record<string, string>, ip: string, cookies?: Record<string, string>) {
  return call(`/api/v1/auth/oauth/${provider}/callback/?${new URLSearchParams(params)}`, { ip, cookies });
}

/** login → provider consent → callback; `beforeCallback` may tamper with the pending sign-in. */
async function signIn(provider: OAuthProvider, options: { ip?: string; beforeCallback?: (state: string) => Promise<void> } = {}) {
  const ip = options.ip ?? freshIp();
  const { url, browserCookies } = await startLogin(provider, ip);
  const consent = await consentAtProvider(provider, url);
  await options.beforeCallback?.(consent.state);
  const res = await call(consent.callbackPath, { ip, cookies: browserCookies });
  return { res, ...consent, ip, browserCookies };
}

/** No session was started (the one-time state cookie is always cleared, so look for the session). */
function expectNoSession(res: Response) {
  const cookies = setCookies(res);
  expect(cookies.access_token).toBeUndefined();
  expect(cookies.refresh_token).toBeUndefined();
}

function expectFrontendRedirect(res: Response, provider: OAuthProvider, outcome: Record<string, string>) {
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get("Location")!);
  expect(location.origin + location.pathname).toBe(`${FRONTEND}/auth/${provider}/callback`);
  expect(Object.fromEntries(location.searchParams)).toEqual(outcome);
  expect(res.headers.get("Cache-Control")).toBe("no-store");
}

async function profileFromCookies(res: Response) {
  const cookies = setCookies(res);
  expect(cookies.access_token?.attributes).toMatchObject({ httponly: true, path: "/" });
  expect(cookies.refresh_token?.attributes).toMatchObject({ httponly: true, path: "/api/v1/auth/" });
  const me = await call("/api/v1/auth/user/", { cookies: { access_token: cookies.access_token!.value } });
  expect(me.status).toBe(200);
  return (await me.json()) as {
    id: string;
    username: string;
    email: string;
    email_verified: boolean;
    first_name: string;
    last_name: string;
  };
}

async function statePending(state: string) {
  return env.DB.prepare("SELECT provider, code_verifier, nonce, expires_at, used_at FROM oauth_states WHERE state_hash = ?")
    .bind(await sha256Hex(state))
    .first<{ provider: string; code_verifier: string; nonce: string; expires_at: number; used_at: number | null }>();
}

async function tamperState(state: string, column: "code_verifier" | "nonce" | "expires_at", value: string | number) {
  await env.DB.prepare(`UPDATE oauth_states SET ${column} = ? WHERE state_hash = ?`)
    .bind(value, await sha256Hex(state))
    .run();
}

async function s256(verifier: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  return btoa(String.fromCharCode(...digest))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

async function passwordAccount(email: string) {
  return createUser(env, { username: uniqueName("local"), email, passwordHash: "pbkdf2$not-used-here" });
}

// ---------------------------------------------------------------------------------------------

describe("GET /auth/oauth/{provider}/login", () => {
  it("returns Google's URL with state, PKCE S256 and a nonce, and stores the pending sign-in hashed", async () => {
    const { res, body, url } = await startLogin("google", freshIp());
    expect(body.provider).toBe("google");
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    expect(url.origin + url.pathname).toBe("https://google.emulator.test/o/oauth2/v2/auth");
    const params = url.searchParams;
    expect(params.get("client_id")).toBe("google-test-client");
    expect(params.get("redirect_uri")).toBe(`${BASE}/api/v1/auth/oauth/google/callback/`);
    expect(params.get("response_type")).toBe("code");
    expect(params.get("scope")!.split(" ")).toEqual(expect.arrayContaining(["openid", "email", "profile"]));
    expect(params.get("code_challenge_method")).toBe("S256");
    const state = params.get("state")!;
    expect(state.length).toBeGreaterThanOrEqual(43);

    const pending = await statePending(state);
    expect(pending).toMatchObject({ provider: "google", nonce: params.get("nonce"), used_at: null });
    expect(pending!.nonce.length).toBeGreaterThanOrEqual(43);
    // The challenge in the URL is S256 of the verifier kept server-side.
    expect(params.get("code_challenge")).toBe(await s256(pending!.code_verifier));
    const ttl = pending!.expires_at - Math.floor(Date.now() / 1000);
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
  });

  it("returns GitHub's URL with state and PKCE S256, and no nonce", async () => {
    const { body, url } = await startLogin("github", freshIp());
    expect(body.provider).toBe("github");
    expect(url.origin + url.pathname).toBe("https://github.emulator.test/login/oauth/authorize");
    const params = url.searchParams;
    expect(params.get("client_id")).toBe("github-test-client");
    expect(params.get("redirect_uri")).toBe(`${BASE}/api/v1/auth/oauth/github/callback/`);
    expect(params.get("scope")).toBe("read:user user:email");
    expect(params.get("code_challenge_method")).toBe("S256");
    expect(params.has("nonce")).toBe(false);
    const pending = await statePending(params.get("state")!);
    expect(pending).toMatchObject({ provider: "github", nonce: "" });
    expect(params.get("code_challenge")).toBe(await s256(pending!.code_verifier));
  });

  it("refuses an unknown provider with the validation envelope", async () => {
    await expectError(await call("/api/v1/auth/oauth/facebook/login/"), 400, "VALIDATION_ERROR");
  });

  it("answers 503 OAUTH_NOT_CONFIGURED when the provider has no client id", async () => {
    // The Worker's env is fixed for the test run, so the app is called with an edited copy.
    const unconfigured = { ...env, GOOGLE_CLIENT_ID: "" };
    const res = await createApp().request("/api/v1/auth/oauth/google/login/", { headers: { "CF-Connecting-IP": freshIp() } }, unconfigured);
    await expectError(res, 503, "OAUTH_NOT_CONFIGURED");
  });
});

describe("configuration check", () => {
  it("needs both the client id and the secret of that provider", () => {
    const config = getConfig(env);
    expect(isOAuthConfigured(config, "google")).toBe(true);
    expect(isOAuthConfigured(config, "github")).toBe(true);
    expect(isOAuthConfigured({ ...config, GOOGLE_CLIENT_SECRET: "" }, "google")).toBe(false);
    expect(isOAuthConfigured({ ...config, GITHUB_CLIENT_ID: "" }, "github")).toBe(false);
    expect(isOAuthConfigured({ ...config, GITHUB_CLIENT_ID: "" }, "google")).toBe(true);
  });

  it("the service refuses to start a sign-in for an unconfigured provider, and stores nothing", async () => {
    const unconfiguredEnv = { ...env, GITHUB_CLIENT_SECRET: "" };
    const attempt = buildAuthorizationUrl(unconfiguredEnv, getConfig(unconfiguredEnv), "github", `${BASE}/cb/`);
    await expect(attempt).rejects.toBeInstanceOf(OAuthError);
    await expect(attempt).rejects.toMatchObject({ code: "not_configured" });
  });
});

describe("the web client's unversioned paths (/api/auth/oauth/…)", () => {
  it.each(["google", "github"] as const)("%s: a sign-in started there comes back there and signs in", async (provider) => {
    if (provider === "google") google.setNextUser(googleUser());
    else github.setNextUser(githubUser());
    const ip = freshIp();
    const login = await call(`/api/auth/oauth/${provider}/login/`, { ip });
    expect(login.status, await login.clone().text()).toBe(200);
    const stateCookie = setCookies(login)[`oauth_state_${provider}`]!;
    expect(stateCookie.attributes).toMatchObject({ httponly: true, samesite: "Lax", path: `/api/auth/oauth/${provider}/` });
    const url = new URL(((await login.json()) as { oauth_url: string }).oauth_url);
    expect(url.searchParams.get("redirect_uri")).toBe(`${BASE}/api/auth/oauth/${provider}/callback/`);

    const consent = await emulatorFor(provider).handle(new Request(url));
    const back = new URL(consent.headers.get("Location")!);
    expect(back.pathname).toBe(`/api/auth/oauth/${provider}/callback/`);
    const res = await call(back.pathname + back.search, { ip, cookies: { [`oauth_state_${provider}`]: stateCookie.value } });
    expectFrontendRedirect(res, provider, { success: "true" });
    expect(setCookies(res).access_token).toBeDefined();
  });

  it("a state bound under one path does not finish a sign-in under the other", async () => {
    google.setNextUser(googleUser());
    const ip = freshIp();
    const { url, browserCookies } = await startLogin("google", ip); // versioned
    const consent = await consentAtProvider("google", url);
    // The browser would not send the versioned cookie to the unversioned path, and without it the
    // state cannot be proven.
    const res = await call(`/api/auth/oauth/google/callback/?${new URLSearchParams({ code: consent.code, state: consent.state })}`, { ip });
    expectFrontendRedirect(res, "google", { error: "invalid_state" });
    expectNoSession(res);
    expect(browserCookies).toBeDefined();
  });
});

describe("full sign-in", () => {
  it("Google: new account with cookies, profile from the ID token, default collection", async () => {
    const user = googleUser({ givenName: "Rosa", familyName: "Canina" });
    google.setNextUser(user);
    const { res } = await signIn("google");
    expectFrontendRedirect(res, "google", { success: "true" });

    const profile = await profileFromCookies(res);
    expect(profile).toMatchObject({
      email: user.email,
      email_verified: true,
      first_name: "Rosa",
      last_name: "Canina",
      username: user.email.split("@")[0],
    });
    const collection = await env.DB.prepare("SELECT name, is_default FROM collections WHERE user_id = ?")
      .bind(profile.id)
      .first<{ name: string; is_default: number }>();
    expect(collection).toEqual({ name: "My Plants", is_default: 1 });
    const account = await env.DB.prepare("SELECT user_id, email FROM oauth_accounts WHERE provider = 'google' AND provider_user_id = ?")
      .bind(user.sub)
      .first();
    expect(account).toEqual({ user_id: profile.id, email: user.email });
    const row = await env.DB.prepare("SELECT password_hash, last_login FROM users WHERE id = ?")
      .bind(profile.id)
      .first<{ password_hash: string | null; last_login: string | null }>();
    expect(row?.password_hash).toBeNull();
    expect(row?.last_login).not.toBeNull();
  });

  it("GitHub: new account from /user and the primary verified address of /user/emails", async () => {
    const user = githubUser({ name: "Ivy League Climber", email: null });
    github.setNextUser(user);
    const { res } = await signIn("github");
    expectFrontendRedirect(res, "github", { success: "true" });

    const profile = await profileFromCookies(res);
    expect(profile).toMatchObject({
      username: user.login,
      email: user.emails[0]!.email,
      email_verified: true,
      first_name: "Ivy",
      last_name: "League Climber",
    });
    const collections = await env.DB.prepare("SELECT count(*) AS n FROM collections WHERE user_id = ? AND is_default = 1")
      .bind(profile.id)
      .first<{ n: number }>();
    expect(collections?.n).toBe(1);
    const account = await env.DB.prepare("SELECT user_id FROM oauth_accounts WHERE provider = 'github' AND provider_user_id = ?")
      .bind(String(user.id))
      .first<{ user_id: string }>();
    expect(account?.user_id).toBe(profile.id);
  });

  it.each(["google", "github"] as const)("%s: signing in again with the same identity reuses the account", async (provider) => {
    if (provider === "google") google.setNextUser(googleUser());
    else github.setNextUser(githubUser());
    const first = await profileFromCookies((await signIn(provider)).res);
    const secondSignIn = await signIn(provider);
    expectFrontendRedirect(secondSignIn.res, provider, { success: "true" });
    const second = await profileFromCookies(secondSignIn.res);
    expect(second.id).toBe(first.id);
    const links = await env.DB.prepare("SELECT count(*) AS n FROM oauth_accounts WHERE user_id = ?").bind(first.id).first<{ n: number }>();
    expect(links?.n).toBe(1);
  });

  it("gives a new account a unique username when the derived one is taken", async () => {
    const existing = await passwordAccount(`${uniqueName("other")}@example.com`);
    google.setNextUser(googleUser({ email: `${existing.username.toUpperCase()}@elsewhere.example` }));
    const profile = await profileFromCookies((await signIn("google")).res);
    expect(profile.username).toBe(`${existing.username.toUpperCase()}2`);
  });

  it("refuses a deactivated account", async () => {
    google.setNextUser(googleUser());
    const profile = await profileFromCookies((await signIn("google")).res);
    await env.DB.prepare("UPDATE users SET is_active = 0 WHERE id = ?").bind(profile.id).run();
    const { res } = await signIn("google");
    expectFrontendRedirect(res, "google", { error: "account_disabled" });
    expectNoSession(res);
  });
});

describe("state and PKCE", () => {
  it("a forged state is refused before any code exchange", async () => {
    const ip = freshIp();
    const { url, browserCookies } = await startLogin("google", ip);
    const { code } = await consentAtProvider("google", url);
    const res = await callback("google", { code, state: "forged-state" }, ip, browserCookies);
    expectFrontendRedirect(res, "google", { error: "invalid_state" });
    expectNoSession(res);
    // The code was never presented to the provider.
    expect(google.issuedCodes.get(code)?.used).toBe(false);
  });

  it("a state works once: replaying the callback is refused", async () => {
    const { res, code, state, ip, browserCookies } = await signIn("github");
    expectFrontendRedirect(res, "github", { success: "true" });
    expect((await statePending(state))?.used_at).not.toBeNull();
    expectFrontendRedirect(await callback("github", { code, state }, ip, browserCookies), "github", { error: "invalid_state" });
  });

  it("a state is bound to its provider", async () => {
    const ip = freshIp();
    const { url } = await startLogin("google", ip);
    const { code, state } = await consentAtProvider("google", url);
    expectFrontendRedirect(await callback("github", { code, state }, ip, { oauth_state_github: state }), "github", {
      error: "invalid_state",
    });
  });

  it("a sign-in is bound to the browser that started it (no login CSRF)", async () => {
    // The attacker starts a sign-in and gets a valid code + state, then makes the victim's
    // browser (which has no matching state cookie) open the callback.
    const { url } = await startLogin("google", freshIp());
    const { code, state } = await consentAtProvider("google", url);
    const victimIp = freshIp();
    const res = await callback("google", { code, state }, victimIp);
    expectFrontendRedirect(res, "google", { error: "invalid_state" });
    expectNoSession(res);
    const otherBrowser = await startLogin("google", victimIp);
    const mismatched = await callback("google", { code, state }, victimIp, otherBrowser.browserCookies);
    expectFrontendRedirect(mismatched, "google", { error: "invalid_state" });
    expect(google.issuedCodes.get(code)?.used).toBe(false);
  });

  it("an expired state is refused", async () => {
    const { res } = await signIn("google", {
      beforeCallback: (state) => tamperState(state, "expires_at", Math.floor(Date.now() / 1000) - 1),
    });
    expectFrontendRedirect(res, "google", { error: "invalid_state" });
  });

  it.each(["google", "github"] as const)("%s refuses the code exchange with the wrong PKCE verifier", async (provider) => {
    const { res, code } = await signIn(provider, {
      beforeCallback: (state) => tamperState(state, "code_verifier", "a-verifier-the-provider-never-saw-0123456789"),
    });
    expectFrontendRedirect(res, provider, { error: "token_exchange_failed" });
    expectNoSession(res);
    expect(emulatorFor(provider).issuedCodes.get(code)?.used).toBe(true);
  });

  it("an unreachable token endpoint fails the sign-in cleanly", async () => {
    routeProviders({ ...defaultHosts, "google.emulator.test": async () => new Response("upstream down", { status: 503 }) });
    const ip = freshIp();
    const { url, browserCookies } = await startLogin("google", ip);
    const { code, state } = await consentAtProvider("google", url);
    expectFrontendRedirect(await callback("google", { code, state }, ip, browserCookies), "google", { error: "token_exchange_failed" });
  });

  it("the provider's refusal (user denied access) becomes access_denied", async () => {
    const ip = freshIp();
    const { url } = await startLogin("github", ip);
    const res = await callback("github", { error: "access_denied", state: url.searchParams.get("state")! }, ip);
    expectFrontendRedirect(res, "github", { error: "access_denied" });
  });

  it("a callback without a code is an invalid request", async () => {
    const ip = freshIp();
    const { url, browserCookies } = await startLogin("google", ip);
    expectFrontendRedirect(await callback("google", { state: url.searchParams.get("state")! }, ip, browserCookies), "google", {
      error: "invalid_request",
    });
  });
});

describe("Google ID token", () => {
  it("a token signed by another key (same kid) is refused", async () => {
    // An impostor with its own key pair under Google's key id; the JWKS still comes from Google.
    const impostor = createGoogleOAuthEmulator({
      clientId: env.GOOGLE_CLIENT_ID,
      clientSecret: GOOGLE_CLIENT_SECRET,
      issuer: env.GOOGLE_ISSUER,
      keyId: GOOGLE_KEY_ID,
    });
    routeProviders({
      ...defaultHosts,
      "google.emulator.test": (req) => (new URL(req.url).pathname === "/oauth2/v3/certs" ? google.handle(req) : impostor.handle(req)),
    });
    const ip = freshIp();
    const { url, browserCookies } = await startLogin("google", ip);
    const authorize = await impostor.handle(new Request(url));
    const back = new URL(authorize.headers.get("Location")!);
    const res = await call(back.pathname + back.search, { ip, cookies: browserCookies });
    expectFrontendRedirect(res, "google", { error: "invalid_id_token" });
    expectNoSession(res);
  });

  it("a token whose nonce is not this sign-in's is refused", async () => {
    const { res } = await signIn("google", { beforeCallback: (state) => tamperState(state, "nonce", "another-attempts-nonce") });
    expectFrontendRedirect(res, "google", { error: "invalid_id_token" });
  });
});

describe("linking to an existing account", () => {
  it("links a password account when Google says the email is verified", async () => {
    const email = `${uniqueName("rose")}@example.com`;
    const existing = await passwordAccount(email);
    const person = googleUser({ email: email.toUpperCase(), emailVerified: true });
    google.setNextUser(person);
    const { res } = await signIn("google");
    expectFrontendRedirect(res, "google", { success: "true" });
    const profile = await profileFromCookies(res);
    expect(profile.id).toBe(existing.id);
    expect(profile.email).toBe(email);
    // The provider vouched for the address, so the account's email now counts as verified.
    expect(profile.email_verified).toBe(true);
    const users = await env.DB.prepare("SELECT count(*) AS n FROM users WHERE lower(email) = lower(?)").bind(email).first<{ n: number }>();
    expect(users?.n).toBe(1);
    // A new way into the account: its owner is told (a security notice, which cannot be turned off),
    // and that the password set before the address was proven is gone.
    const notice = await env.DB.prepare("SELECT title, data FROM notifications WHERE user_id = ? AND type = 'security' ORDER BY title")
      .bind(existing.id)
      .all<{ title: string; data: string }>();
    expect(notice.results).toEqual([
      {
        title: "Google can now sign in to your Plant Community account",
        data: JSON.stringify({ event: "sign_in_method_linked", detail: "Google" }),
      },
      {
        title: "Your Plant Community password was removed",
        data: JSON.stringify({ event: "password_removed", detail: "Google" }),
      },
    ]);
    // Signing in again with the same Google account links nothing new and tells nothing new.
    google.setNextUser(person);
    expectFrontendRedirect((await signIn("google")).res, "google", { success: "true" });
    const again = await env.DB.prepare("SELECT count(*) AS n FROM notifications WHERE user_id = ? AND type = 'security'")
      .bind(existing.id)
      .first<{ n: number }>();
    expect(again?.n).toBe(2);
  });

  it("drops the password and sessions of a pre-registered account whose own email was never verified", async () => {
    // An attacker registers the victim's address with a password before the victim's first
    // Google sign-in; linking must not leave the attacker a way in.
    const email = `${uniqueName("hijack")}@example.com`;
    const attacker = await passwordAccount(email);
    await env.DB.prepare("INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at) VALUES ('attacker-jti', ?, 'fam', 9999999999)")
      .bind(attacker.id)
      .run();
    google.setNextUser(googleUser({ email, emailVerified: true }));
    expectFrontendRedirect((await signIn("google")).res, "google", { success: "true" });
    const row = await env.DB.prepare("SELECT password_hash, email_verified FROM users WHERE id = ?").bind(attacker.id).first<{
      password_hash: string | null;
      email_verified: number;
    }>();
    expect(row).toEqual({ password_hash: null, email_verified: 1 });
    const session = await env.DB.prepare("SELECT revoked_at FROM refresh_tokens WHERE jti = 'attacker-jti'").first<{
      revoked_at: number | null;
    }>();
    expect(session?.revoked_at).not.toBeNull();
  });

  it("keeps the password of an account whose email was already verified and whose password its holder proved", async () => {
    const email = `${uniqueName("verified")}@example.com`;
    const owner = await passwordAccount(email);
    // Proven as a reset link or a confirmation from inside the account proves it (migrations/0043;
    // test/security-review/pre-registration-confirmation.test.ts has the unproven cases).
    await env.DB.prepare("UPDATE users SET email_verified = 1, password_proven = 1 WHERE id = ?").bind(owner.id).run();
    google.setNextUser(googleUser({ email, emailVerified: true }));
    expectFrontendRedirect((await signIn("google")).res, "google", { success: "true" });
    const row = await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?")
      .bind(owner.id)
      .first<{ password_hash: string | null }>();
    expect(row?.password_hash).toBe("pbkdf2$not-used-here");
  });

  it("refuses with email_not_verified when Google has not verified the email, and links nothing", async () => {
    const email = `${uniqueName("thistle")}@example.com`;
    const existing = await passwordAccount(email);
    const user = googleUser({ email, emailVerified: false });
    google.setNextUser(user);
    const { res } = await signIn("google");
    expectFrontendRedirect(res, "google", { error: "email_not_verified" });
    expectNoSession(res);
    const links = await env.DB.prepare("SELECT count(*) AS n FROM oauth_accounts WHERE user_id = ? OR provider_user_id = ?")
      .bind(existing.id, user.sub)
      .first<{ n: number }>();
    expect(links?.n).toBe(0);
  });

  it("GitHub: a public profile email without a verified primary never links", async () => {
    const email = `${uniqueName("clover")}@example.com`;
    await passwordAccount(email);
    github.setNextUser(githubUser({ email, emails: [{ email, primary: true, verified: false, visibility: "public" }] }));
    expectFrontendRedirect((await signIn("github")).res, "github", { error: "email_not_verified" });
  });

  it("GitHub: an unverified address still makes a new account when nobody has it, marked unverified", async () => {
    const email = `${uniqueName("sorrel")}@example.com`;
    github.setNextUser(githubUser({ email, emails: [] }));
    const { res } = await signIn("github");
    expectFrontendRedirect(res, "github", { success: "true" });
    expect(await profileFromCookies(res)).toMatchObject({ email, email_verified: false });
  });

  it("GitHub: no email at all is email_required", async () => {
    github.setNextUser(githubUser({ email: null, emails: [] }));
    expectFrontendRedirect((await signIn("github")).res, "github", { error: "email_required" });
  });

  it("GitHub: a failing REST API is profile_fetch_failed", async () => {
    routeProviders({ ...defaultHosts, "api.github.emulator.test": async () => new Response("bad gateway", { status: 502 }) });
    expectFrontendRedirect((await signIn("github")).res, "github", { error: "profile_fetch_failed" });
  });
});

describe("services/oauth linking rules (called directly)", () => {
  function identity(overrides: Partial<ProviderIdentity> = {}): ProviderIdentity {
    identityCounter++;
    const hint = uniqueName("direct");
    return {
      provider: "google",
      providerUserId: `direct-${Date.now()}-${identityCounter}`,
      email: `${hint}@example.com`,
      emailVerified: true,
      firstName: "",
      lastName: "",
      usernameHint: hint,
      ...overrides,
    };
  }

  it("a provider user id belongs to its provider: the same id elsewhere is another person", async () => {
    const shared = identity({ provider: "google", providerUserId: "same-id-on-both-providers" });
    const viaGoogle = await signInWithIdentity(env, shared);
    const viaGitHub = await signInWithIdentity(env, {
      ...shared,
      provider: "github",
      email: `${uniqueName("gh")}@example.com`,
      usernameHint: uniqueName("gh"),
    });
    expect(viaGitHub.id).not.toBe(viaGoogle.id);
  });

  it("an unverified email matching an account is refused with an OAuthError", async () => {
    const email = `${uniqueName("nettle")}@example.com`;
    await passwordAccount(email);
    await expect(signInWithIdentity(env, identity({ email, emailVerified: false }))).rejects.toMatchObject({
      name: "OAuthError",
      code: "email_not_verified",
    });
  });

  it("a reset landing during a first provider sign-in keeps its new password (the takeover was decided on an older read)", async () => {
    const email = `${uniqueName("yarrow")}@example.com`;
    const owner = await passwordAccount(email);
    // The owner's reset lands between the sign-in's read of the account and its link batch.
    const racing = envRacingFirstBatch(() =>
      env.DB.prepare("UPDATE users SET password_hash = 'pbkdf2$set-by-the-reset', email_verified = 1, password_proven = 1 WHERE id = ?")
        .bind(owner.id)
        .run(),
    );
    expect((await signInWithIdentity(racing.env, identity({ email }))).id).toBe(owner.id);
    expect(racing.fired()).toBe(true);
    const row = await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?")
      .bind(owner.id)
      .first<{ password_hash: string | null }>();
    expect(row?.password_hash).toBe("pbkdf2$set-by-the-reset");
    const removed = await env.DB.prepare(
      "SELECT count(*) AS n FROM notifications WHERE user_id = ? AND title LIKE '%password was removed%'",
    )
      .bind(owner.id)
      .first<{ n: number }>();
    expect(removed?.n).toBe(0);
  });

  it("never derives a name shaped like a deleted account's (deleted-…), which registration refuses too", async () => {
    // A GitHub login or an email's local part may be anything, "Deleted-0123456789ab" included.
    for (const hint of ["deleted-0123456789ab", "Deleted-0123456789ab"]) {
      expect(usernameBase(hint).toLowerCase().startsWith("deleted-"), hint).toBe(false);
      const user = await signInWithIdentity(env, identity({ usernameHint: hint }));
      expect(user.username.toLowerCase().startsWith("deleted-"), hint).toBe(false);
      expect(user.username).toContain(hint);
    }
  });

  it("a hint longer than D1's 50-byte GLOB/LIKE pattern limit still names the account, and a second one takes the suffix", async () => {
    // An email's local part may be 64 characters; the name base keeps up to 144.
    const hint = `${uniqueName("long")}${"x".repeat(60)}`;
    const first = await signInWithIdentity(env, identity({ usernameHint: hint }));
    expect(first.username).toBe(hint);
    const second = await signInWithIdentity(env, identity({ usernameHint: hint.toUpperCase() }));
    expect(second.username).toBe(`${hint.toUpperCase()}2`);
  });

  it("derives usernames from the registration alphabet", () => {
    expect(usernameBase("José.María+plants")).toBe("Jose.Maria+plants");
    expect(usernameBase("fern gully!")).toBe("ferngully");
    expect(usernameBase("ab")).toBe("gardener_ab");
    expect(usernameBase("名前")).toBe("gardener");
    expect(usernameBase("x".repeat(200))).toHaveLength(144);
  });
});

describe("emulators", () => {
  it("Google refuses an authorization without PKCE and a reused code", async () => {
    const ip = freshIp();
    const { url, browserCookies } = await startLogin("google", ip);
    const withoutPkce = new URL(url);
    withoutPkce.searchParams.delete("code_challenge");
    const refused = await google.handle(new Request(withoutPkce));
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: "invalid_request" });

    const { code, state } = await consentAtProvider("google", url);
    expectFrontendRedirect(await callback("google", { code, state }, ip, browserCookies), "google", { success: "true" });
    const replay = await google.handle(
      new Request("https://google.emulator.test/token", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          code,
          redirect_uri: url.searchParams.get("redirect_uri")!,
          client_id: env.GOOGLE_CLIENT_ID,
          client_secret: GOOGLE_CLIENT_SECRET,
          code_verifier: "irrelevant",
        }).toString(),
      }),
    );
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: "invalid_grant" });
  });

  it("login_hint (Google) and login (GitHub) pick the consenting account among the configured ones", async () => {
    const codeOf = (res: Response) => new URL(res.headers.get("Location")!).searchParams.get("code")!;
    const authorizeUrl = (base: string, params: Record<string, string>) => {
      const url = new URL(base);
      for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
      return url;
    };

    const fern = googleUser();
    const rosa = googleUser();
    const twoGoogleAccounts = createGoogleOAuthEmulator({
      clientId: "c",
      clientSecret: "s",
      issuer: "https://issuer.test",
      users: [fern, rosa],
    });
    const googleParams = {
      client_id: "c",
      redirect_uri: `${BASE}/cb/`,
      response_type: "code",
      scope: "openid email",
      state: "s",
      code_challenge: "challenge",
      code_challenge_method: "S256",
    };
    const googleAuthorizeUrl = "https://google.emulator.test/o/oauth2/v2/auth";
    const byDefault = await twoGoogleAccounts.handle(new Request(authorizeUrl(googleAuthorizeUrl, googleParams)));
    expect(twoGoogleAccounts.issuedCodes.get(codeOf(byDefault))?.user.sub).toBe(fern.sub);
    const hinted = await twoGoogleAccounts.handle(
      new Request(authorizeUrl(googleAuthorizeUrl, { ...googleParams, login_hint: rosa.email })),
    );
    expect(twoGoogleAccounts.issuedCodes.get(codeOf(hinted))?.user.sub).toBe(rosa.sub);

    const moss = githubUser();
    const ivy = githubUser();
    const twoGitHubAccounts = createGitHubOAuthEmulator({ clientId: "c", clientSecret: "s", users: [moss, ivy] });
    const named = await twoGitHubAccounts.handle(
      new Request(
        authorizeUrl("https://github.emulator.test/login/oauth/authorize", {
          client_id: "c",
          redirect_uri: `${BASE}/cb/`,
          state: "s",
          login: ivy.login,
        }),
      ),
    );
    expect(twoGitHubAccounts.issuedCodes.get(codeOf(named))?.user.id).toBe(ivy.id);
  });

  it("Google serves its signing key as a JWKS", async () => {
    const res = await google.handle(new Request("https://google.emulator.test/oauth2/v3/certs"));
    const { keys } = (await res.json()) as { keys: Record<string, string>[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: "RSA", kid: GOOGLE_KEY_ID, alg: "RS256", use: "sig" });
    expect(keys[0]).not.toHaveProperty("d");
  });

  it("GitHub answers token errors with 200, form-encoded unless JSON is asked for, and guards its API", async () => {
    const exchange = (accept?: string) =>
      github.handle(
        new Request("https://github.emulator.test/login/oauth/access_token", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded", ...(accept ? { Accept: accept } : {}) },
          body: new URLSearchParams({ client_id: env.GITHUB_CLIENT_ID, client_secret: "wrong", code: "nope" }).toString(),
        }),
      );
    const asForm = await exchange();
    expect(asForm.status).toBe(200);
    expect(asForm.headers.get("content-type")).toMatch(/^application\/x-www-form-urlencoded/);
    expect((await asForm.formData()).get("error")).toBe("incorrect_client_credentials");
    const asJson = await exchange("application/json");
    expect(asJson.status).toBe(200);
    expect(await asJson.json()).toMatchObject({ error: "incorrect_client_credentials" });

    const noToken = await github.handle(new Request("https://api.github.emulator.test/user", { headers: { "User-Agent": "test" } }));
    expect(noToken.status).toBe(401);
    const badToken = await github.handle(
      new Request("https://api.github.emulator.test/user", { headers: { "User-Agent": "test", Authorization: "Bearer gho_forged" } }),
    );
    expect(badToken.status).toBe(401);
    expect(await badToken.json()).toMatchObject({ message: "Bad credentials" });
    const noAgent = await github.handle(new Request("https://api.github.emulator.test/user", { headers: { Authorization: "Bearer x" } }));
    expect(noAgent.status).toBe(403);
  });
});
