/** Creating and signing in users through the public API. */
import { call, setCookies } from "./http";

export const GOOD_PASSWORD = "Fern-Gully-Moss-42!";
let userCounter = 0;

export interface WebSession {
  userId: string;
  username: string;
  email: string;
  cookies: Record<string, string>;
  csrf: string;
}

export function uniqueName(prefix = "gardener"): string {
  userCounter++;
  return `${prefix}${Date.now().toString(36)}${userCounter}`;
}

/** Registers through /register and returns the web session (cookies + CSRF token). */
export async function registerWeb(overrides: Partial<{ username: string; email: string; password: string }> = {}): Promise<WebSession> {
  const username = overrides.username ?? uniqueName();
  const email = overrides.email ?? `${username}@example.com`;
  const res = await call("/api/v1/auth/register/", {
    json: { username, email, password: overrides.password ?? GOOD_PASSWORD },
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { user: { id: string } };
  const cookies = setCookies(res);
  return {
    userId: body.user.id,
    username,
    email,
    csrf: cookies.csrftoken!.value,
    cookies: {
      access_token: cookies.access_token!.value,
      refresh_token: cookies.refresh_token!.value,
      csrftoken: cookies.csrftoken!.value,
    },
  };
}

/** Mobile-style sign-in: a bearer token pair. */
export async function tokenLogin(username: string, password = GOOD_PASSWORD) {
  const res = await call("/api/v1/auth/token/", { json: { username, password } });
  if (res.status !== 200) throw new Error(`token login failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { access: string; refresh: string; token_type: string; expires_in: number };
}

/** A registered user signed in with bearer tokens. */
export async function bearerUser() {
  const session = await registerWeb();
  const tokens = await tokenLogin(session.username);
  return { ...session, ...tokens };
}
