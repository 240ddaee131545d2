/**
 * Signing in with Google or GitHub end to end: our login route, the browser's trip to the
 * provider (played by calling the emulator's handler), and the provider's redirect back to our
 * callback. Outbound calls of the Worker reach the same emulators through `useEmulators`
 * overrides by hostname.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { createGitHubOAuthEmulator, DEFAULT_GITHUB_USER, type GitHubUser } from "../../emulators/oauth-github";
import { createGoogleOAuthEmulator, DEFAULT_GOOGLE_USER, type GoogleUser } from "../../emulators/oauth-google";
import { call, freshIp, setCookies } from "./http";
import { uniqueName } from "./users";

export function createOAuthEmulators() {
  const google = createGoogleOAuthEmulator({
    clientId: env.GOOGLE_CLIENT_ID,
    clientSecret: env.GOOGLE_CLIENT_SECRET!,
    issuer: env.GOOGLE_ISSUER,
    keyId: "emulated-google-key-helpers",
  });
  const github = createGitHubOAuthEmulator({ clientId: env.GITHUB_CLIENT_ID, clientSecret: env.GITHUB_CLIENT_SECRET! });
  return {
    google,
    github,
    /** For `useEmulators({ overrides })`. */
    hosts: {
      "google.emulator.test": google.handle,
      "github.emulator.test": github.handle,
      "api.github.emulator.test": github.handle,
    } as Record<string, (request: Request) => Promise<Response>>,
  };
}

let identityCounter = 0;

export function googleIdentity(overrides: Partial<GoogleUser> = {}): GoogleUser {
  identityCounter++;
  return { ...DEFAULT_GOOGLE_USER, sub: `20987654${Date.now()}${identityCounter}`, email: `${uniqueName("g")}@example.com`, ...overrides };
}

export function githubIdentity(email: string, overrides: Partial<GitHubUser> = {}): GitHubUser {
  identityCounter++;
  return {
    ...DEFAULT_GITHUB_USER,
    id: 8_000_000 + identityCounter,
    login: uniqueName("gh"),
    email,
    emails: [{ email, primary: true, verified: true, visibility: "private" }],
    ...overrides,
  };
}

/** login → consent at the provider → callback; returns the callback's response and the session cookies. */
export async function oauthSignIn(provider: "google" | "github", emulator: { handle: (r: Request) => Promise<Response> }) {
  const ip = freshIp();
  const start = await call(`/api/v1/auth/oauth/${provider}/login/`, { ip });
  expect(start.status, await start.clone().text()).toBe(200);
  const { oauth_url } = (await start.json()) as { oauth_url: string };
  const stateCookie = setCookies(start)[`oauth_state_${provider}`]!;
  const consent = await emulator.handle(new Request(oauth_url));
  expect(consent.status, await consent.clone().text()).toBe(302);
  const back = new URL(consent.headers.get("Location")!);
  const res = await call(back.pathname + back.search, { ip, cookies: { [`oauth_state_${provider}`]: stateCookie.value } });
  expect(res.status).toBe(302);
  const cookies = setCookies(res);
  return { res, location: new URL(res.headers.get("Location")!), access: cookies.access_token?.value, cookies };
}
