/**
 * Sign-in with Google and GitHub (API.md §1): the authorization code flow with `state` and
 * PKCE (S256), Google's ID token verified against its JWKS, and the account-linking rules.
 *
 * The original system had no state, no PKCE and linked accounts by any email the provider
 * reported (API.md §8). Here:
 * - `state` is stored hashed, bound to one provider, expires after 10 minutes and is consumed
 *   by one atomic UPDATE, so a replayed or forged callback finds nothing;
 * - the PKCE verifier never leaves the server until the code exchange;
 * - an existing account is linked only when the provider says the email is verified, so an
 *   attacker cannot take over an account by adding its address, unverified, to their own
 *   provider account.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from "jose";
import { z } from "zod";
import { and, eq, gt, isNull, not, type SQL, sql } from "drizzle-orm";
import type { Config } from "../config";
import { batchRows, changes, database, rowIf, runBatch, type Statement } from "../db/client";
import { startsWith } from "../db/text-match";
import { emailChangeTokens, oauthAccounts, oauthStates, passwordResetTokens, users } from "../db/schema";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import { base64UrlEncode, randomToken, sha256Hex } from "../lib/hash";
import { uuidv7 } from "../lib/ids";
import type { SessionDevice } from "../lib/session-device";
import { DELETED_USERNAME_PREFIX } from "./account-deletion";
import { twoFactorEnabled } from "./two-factor";
import {
  createUser,
  findUserByEmail,
  findUserById,
  linksNotVouchingForAddress,
  retiredAmong,
  uniquenessErrors,
  type UserRow,
} from "./users";
import { tellSecurityEvent } from "./security-notices";
import { endEverySession, sessionsEndedIf } from "./sessions";
import { guardedTokenPair, type TokenPair } from "./tokens";

export const OAUTH_PROVIDERS = ["google", "github"] as const;
export type OAuthProvider = (typeof OAUTH_PROVIDERS)[number];

/** Sent to the frontend as `?error=<code>`, so these are part of the API. */
export type OAuthErrorCode =
  | "not_configured"
  | "invalid_state"
  | "token_exchange_failed"
  | "invalid_id_token"
  | "profile_fetch_failed"
  | "email_required"
  | "email_not_verified"
  | "two_factor_required"
  | "account_disabled";

export class OAuthError extends Error {
  constructor(
    readonly code: OAuthErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "OAuthError";
  }
}

const STATE_TTL_S = 600;
const PROVIDER_TIMEOUT_MS = 10_000;
const GOOGLE_SCOPES = "openid email profile";
const GITHUB_SCOPES = "read:user user:email";
/** GitHub's REST API refuses requests without a User-Agent. */
const USER_AGENT = "plant-community";
const USERNAME_MAX = 150;
const NAME_MAX = 150;
/** Room left at the end of a derived username for a uniqueness suffix. */
const USERNAME_SUFFIX_ROOM = 6;
const USERNAME_ATTEMPTS = 3;
/** How many free candidate names one lookup of the retired ones checks. */
const RETIRED_LOOKUP_BATCH = 20;

/** What a provider tells us about the person signing in. */
export interface ProviderIdentity {
  /** An OAuth provider, or Firebase (the mobile app's sign-in, services/firebase.ts). */
  provider: OAuthProvider | "firebase";
  providerUserId: string;
  email: string | null;
  /** The provider's own statement that the person controls `email`. */
  emailVerified: boolean;
  firstName: string;
  lastName: string;
  /** Where a new account's username comes from: the email local part or the GitHub login. */
  usernameHint: string;
}

export interface OAuthCallback {
  code: string;
  state: string;
  /** Must be the redirect URI of the authorization request, byte for byte. */
  redirectUri: string;
}

export function isOAuthConfigured(config: Config, provider: OAuthProvider): boolean {
  return provider === "google"
    ? config.GOOGLE_CLIENT_ID !== "" && config.GOOGLE_CLIENT_SECRET !== ""
    : config.GITHUB_CLIENT_ID !== "" && config.GITHUB_CLIENT_SECRET !== "";
}

function assertConfigured(config: Config, provider: OAuthProvider) {
  if (!isOAuthConfigured(config, provider)) throw new OAuthError("not_configured", `${provider} sign-in is not configured.`);
}

// ---- Step 1: the provider URL -----------------------------------------------------------------

/**
 * Our callback as registered with the provider, on PUBLIC_API_URL (never the request's Host):
 * sent in the authorization request and, byte for byte, again in the code exchange.
 */
/**
 * The callback under the path the sign-in started on: `/api/v1/auth/oauth` (the API) or
 * `/api/auth/oauth` (the web client's unversioned paths, API.md §5d). Register both with the
 * providers to use both.
 */
export function oauthRedirectUri(config: Config, provider: OAuthProvider, mount: OAuthMount = "/api/v1/auth/oauth"): string {
  return `${config.PUBLIC_API_URL}${mount}/${provider}/callback/`;
}

/** Where the OAuth routes are mounted. */
export const OAUTH_MOUNTS = ["/api/v1/auth/oauth", "/api/auth/oauth"] as const;
export type OAuthMount = (typeof OAUTH_MOUNTS)[number];

/**
 * Creates a pending sign-in (state, PKCE verifier, and for Google a nonce) and returns the
 * provider URL to send the browser to.
 */
export async function buildAuthorizationUrl(env: Bindings, config: Config, provider: OAuthProvider, redirectUri: string): Promise<string> {
  assertConfigured(config, provider);
  const state = randomToken(32);
  const codeVerifier = randomToken(32);
  const nonce = provider === "google" ? randomToken(32) : "";
  await database(env)
    .insert(oauthStates)
    .values({ stateHash: await sha256Hex(state), provider, codeVerifier, nonce, expiresAt: nowS() + STATE_TTL_S });

  const challenge = base64UrlEncode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(codeVerifier))));
  const common = {
    client_id: provider === "google" ? config.GOOGLE_CLIENT_ID : config.GITHUB_CLIENT_ID,
    redirect_uri: redirectUri,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  };
  const url =
    provider === "google"
      ? withParams(config.GOOGLE_AUTH_URL, { ...common, response_type: "code", scope: GOOGLE_SCOPES, nonce })
      : withParams(config.GITHUB_AUTHORIZE_URL, { ...common, scope: GITHUB_SCOPES });
  return url.toString();
}

// ---- Step 2: the callback ---------------------------------------------------------------------

/**
 * Completes a sign-in: consumes the state, exchanges the code, learns who the person is and
 * returns their account (linked, or created). Throws OAuthError for every expected failure.
 */
export async function completeOAuth(
  env: Bindings,
  config: Config,
  provider: OAuthProvider,
  callback: OAuthCallback,
  device: SessionDevice | null,
): Promise<ProviderSession> {
  assertConfigured(config, provider);
  const pending = await consumeState(env, provider, callback.state);
  const identity =
    provider === "google" ? await googleIdentity(config, callback, pending) : await githubIdentity(config, callback, pending.code_verifier);
  return startProviderSession(env, config, identity, device);
}

export interface ProviderSession {
  user: UserRow;
  pair: TokenPair;
}

/**
 * Signs the identity in (signInWithIdentity) and starts its session — recorded only while the
 * identity is still linked to that account and the account active. A clean-up landing between
 * the two (the address's owner's provider sign-in taking over an account a stranger set up, which
 * removes the stranger's links and ends their sessions) must not find a session of the stranger's
 * started after it through the link it removed; the sign-in is decided again instead.
 */
export async function startProviderSession(
  env: Bindings,
  config: Config,
  identity: ProviderIdentity,
  device: SessionDevice | null,
): Promise<ProviderSession> {
  for (let attempt = 1; ; attempt++) {
    const user = await signInWithIdentity(env, identity);
    const stillLinked = sql`EXISTS (SELECT 1 FROM ${oauthAccounts} sl WHERE sl.user_id = ${user.id} AND sl.provider = ${identity.provider}
      AND sl.provider_user_id = ${identity.providerUserId}) AND ${users.isActive} = 1`;
    const { pair, record } = await guardedTokenPair(env, config, user.id, stillLinked, device);
    const [started] = await runBatch(database(env), [record]);
    if (changes(started) > 0) return { user, pair };
    if (attempt >= LINK_ATTEMPTS) throw new OAuthError("account_disabled", "The account changed while signing in; sign in again.");
  }
}

interface PendingSignIn {
  code_verifier: string;
  nonce: string;
}

/** Single use, one provider, unexpired — checked and spent in one statement, so races cannot double-spend. */
async function consumeState(env: Bindings, provider: OAuthProvider, state: string): Promise<PendingSignIn> {
  const now = nowS();
  const pending = await database(env)
    .update(oauthStates)
    .set({ usedAt: now })
    .where(
      and(
        eq(oauthStates.stateHash, await sha256Hex(state)),
        eq(oauthStates.provider, provider),
        isNull(oauthStates.usedAt),
        gt(oauthStates.expiresAt, now),
      ),
    )
    .returning({ code_verifier: oauthStates.codeVerifier, nonce: oauthStates.nonce })
    .get();
  if (!pending) throw new OAuthError("invalid_state", "Unknown, used or expired state.");
  return pending;
}

const GoogleTokenResponse = z.object({ access_token: z.string().min(1), id_token: z.string().min(1) });
const GitHubTokenResponse = z.object({ access_token: z.string().min(1) });

async function googleIdentity(config: Config, callback: OAuthCallback, pending: PendingSignIn): Promise<ProviderIdentity> {
  const tokens = await exchangeCode(config.GOOGLE_TOKEN_URL, GoogleTokenResponse, {
    grant_type: "authorization_code",
    code: callback.code,
    redirect_uri: callback.redirectUri,
    client_id: config.GOOGLE_CLIENT_ID,
    client_secret: config.GOOGLE_CLIENT_SECRET,
    code_verifier: pending.code_verifier,
  });
  const claims = await verifyGoogleIdToken(config, tokens.id_token, pending.nonce);
  const email = typeof claims.email === "string" && claims.email !== "" ? claims.email : null;
  return {
    provider: "google",
    providerUserId: claims.sub,
    email,
    // Only a real boolean true counts; anything else is not a statement of verification.
    emailVerified: claims.email_verified === true,
    firstName: nameClaim(claims.given_name),
    lastName: nameClaim(claims.family_name),
    usernameHint: email?.split("@")[0] ?? "",
  };
}

type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>;
/** One key set per JWKS URL for the isolate's lifetime: jose caches the keys and refetches on an unknown kid. */
const googleKeySets = new Map<string, RemoteKeySet>();

function googleKeySet(jwksUrl: string): RemoteKeySet {
  let keySet = googleKeySets.get(jwksUrl);
  if (!keySet) {
    keySet = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: PROVIDER_TIMEOUT_MS });
    googleKeySets.set(jwksUrl, keySet);
  }
  return keySet;
}

/** Google documents both spellings of its issuer and may send either. */
function googleIssuers(configured: string): string[] {
  return configured === "https://accounts.google.com" ? [configured, "accounts.google.com"] : [configured];
}

async function verifyGoogleIdToken(config: Config, idToken: string, expectedNonce: string): Promise<JWTPayload & { sub: string }> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(idToken, googleKeySet(config.GOOGLE_JWKS_URL), {
      algorithms: ["RS256"],
      issuer: googleIssuers(config.GOOGLE_ISSUER),
      audience: config.GOOGLE_CLIENT_ID,
      requiredClaims: ["sub", "iat", "exp"],
    }));
  } catch (err) {
    // Also covers an unreachable JWKS: a token we cannot check is a token we do not trust.
    throw new OAuthError("invalid_id_token", `ID token rejected: ${err instanceof Error ? err.message : String(err)}`);
  }
  // The nonce ties the token to this browser's sign-in attempt, defeating token replay.
  if (expectedNonce === "" || payload.nonce !== expectedNonce) throw new OAuthError("invalid_id_token", "ID token nonce mismatch.");
  if (typeof payload.sub !== "string" || payload.sub === "") throw new OAuthError("invalid_id_token", "ID token has no subject.");
  return payload as JWTPayload & { sub: string };
}

const GitHubProfile = z.object({
  id: z.number().int(),
  login: z.string(),
  name: z.string().nullish(),
  email: z.string().nullish(),
});
const GitHubEmails = z.array(z.object({ email: z.string(), primary: z.boolean(), verified: z.boolean() }));

async function githubIdentity(config: Config, callback: OAuthCallback, codeVerifier: string): Promise<ProviderIdentity> {
  const tokens = await exchangeCode(config.GITHUB_TOKEN_URL, GitHubTokenResponse, {
    client_id: config.GITHUB_CLIENT_ID,
    client_secret: config.GITHUB_CLIENT_SECRET,
    code: callback.code,
    redirect_uri: callback.redirectUri,
    code_verifier: codeVerifier,
  });
  const [profile, emails] = await Promise.all([
    githubApi(config, "/user", tokens.access_token, GitHubProfile),
    githubApi(config, "/user/emails", tokens.access_token, GitHubEmails),
  ]);
  // The public profile email carries no verification statement of its own, so it is never
  // trusted for linking; the primary address GitHub marks verified is.
  const primaryVerified = emails.find((e) => e.primary && e.verified);
  const email = primaryVerified?.email ?? (profile.email || null);
  const [firstName = "", ...rest] = (profile.name ?? "").trim().split(/\s+/);
  return {
    provider: "github",
    providerUserId: String(profile.id),
    email,
    emailVerified: primaryVerified !== undefined,
    firstName: nameClaim(firstName),
    lastName: nameClaim(rest.join(" ")),
    usernameHint: profile.login,
  };
}

/**
 * POSTs the code exchange as a form and insists on a JSON answer of `shape`. GitHub reports
 * errors as 200 + `{error}`, so an `error` field fails the exchange whatever the status.
 */
async function exchangeCode<T>(tokenUrl: string, shape: z.ZodType<T>, params: Record<string, string>): Promise<T> {
  let response: Response;
  try {
    response = await fetch(tokenUrl, {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT },
      body: new URLSearchParams(params).toString(),
      signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
    });
  } catch (err) {
    throw new OAuthError("token_exchange_failed", `Token endpoint unreachable: ${err instanceof Error ? err.message : String(err)}`);
  }
  const body: unknown = await response.json().catch(() => null);
  const providerError = typeof body === "object" && body !== null && "error" in body ? String(body.error) : null;
  const parsed = shape.safeParse(body);
  if (!response.ok || providerError !== null || !parsed.success) {
    throw new OAuthError(
      "token_exchange_failed",
      `Token endpoint refused the code (HTTP ${response.status}${providerError ? `, ${providerError}` : ""}).`,
    );
  }
  return parsed.data;
}

async function githubApi<T>(config: Config, path: string, accessToken: string, shape: z.ZodType<T>): Promise<T> {
  const url = `${config.GITHUB_API_URL.replace(/\/+$/, "")}${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: {
        Authorization: `Bearer ${accessToken}`,
        Accept: "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": USER_AGENT,
      },
      signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
    });
  } catch (err) {
    throw new OAuthError("profile_fetch_failed", `GitHub ${path} unreachable: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = shape.safeParse(await response.json().catch(() => null));
  if (!response.ok || !parsed.success) throw new OAuthError("profile_fetch_failed", `GitHub ${path} answered HTTP ${response.status}.`);
  return parsed.data;
}

// ---- Step 3: the account ----------------------------------------------------------------------

/**
 * Linking rules, in order:
 * 1. this provider identity was seen before → its account; if that account's address was never
 *    proven and the provider now vouches for it, the account is taken over as in rule 2;
 * 2. an account has the same email (case-insensitive) → linked only when the provider verified
 *    the email, otherwise `email_not_verified` (never take over an account by an unverified address);
 * 3. otherwise a new account (no password, default collection) linked to the identity.
 */
export async function signInWithIdentity(env: Bindings, identity: ProviderIdentity): Promise<UserRow> {
  let user: UserRow;
  for (let attempt = 1; ; attempt++) {
    try {
      const linked = await findLinkedUser(env, identity);
      user = linked ? await proveLinkedAddress(env, linked, identity) : await linkOrCreateAccount(env, identity);
      break;
    } catch (err) {
      // The account the rules chose changed its address meanwhile: nothing was written; decide again.
      if (!(err instanceof AccountMoved) || attempt >= LINK_ATTEMPTS) throw err;
    }
  }
  assertActive(user);
  const lastLogin = new Date().toISOString();
  await database(env).update(users).set({ lastLogin }).where(eq(users.id, user.id));
  return { ...user, lastLogin };
}

/** How many times a sign-in decides again when the account it chose changes its address meanwhile. */
const LINK_ATTEMPTS = 3;

/** linkIdentity wrote nothing: the account was no longer at the address its decision was made on. */
class AccountMoved extends Error {
  constructor() {
    super("The account's email address changed while the sign-in was linked to it.");
    this.name = "AccountMoved";
  }
}

interface Linked {
  user: UserRow;
  /** Whether the provider had vouched for the link's address. */
  linkVerified: boolean;
  /** The address the link was made (or last verified) with. */
  linkEmail: string;
}

async function findLinkedUser(env: Bindings, identity: ProviderIdentity): Promise<Linked | null> {
  const row = await database(env)
    .select({ user: users, linkVerified: oauthAccounts.emailVerified, linkEmail: oauthAccounts.email })
    .from(oauthAccounts)
    .innerJoin(users, eq(users.id, oauthAccounts.userId))
    .where(and(eq(oauthAccounts.provider, identity.provider), eq(oauthAccounts.providerUserId, identity.providerUserId)))
    .get();
  return row ?? null;
}

const sameAddress = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * A link made while the provider had not verified the address, now presented verified (or a
 * Firebase link now vouching for another address than its own): the provider account may have
 * changed hands. Firebase, for one, keeps the uid when the address's
 * owner signs in with Google after someone else registered an unverified password login on that
 * address, and drops the other's login. The identity now stands for the address, so:
 * - the account already proved that same address with us (its owner confirmed our link): nothing
 *   changes hands, the link is marked verified;
 * - another account holds the address: the identity moves there (rule 2), in one batch;
 * - otherwise the account is handed to the address: every session, the password, other links,
 *   push devices and the calendar URL go, and its email becomes the verified address (one its
 *   previous holder may have moved it to would let them back in by a reset link).
 * And once verified, a token that still calls that address unverified is older than the
 * verification (the previous holder's, kept for up to an hour): refused.
 */
async function proveLinkedAddress(env: Bindings, linked: Linked, identity: ProviderIdentity): Promise<UserRow> {
  const { user } = linked;
  if (linked.linkVerified) {
    if (!identity.emailVerified && identity.email !== null && sameAddress(identity.email, linked.linkEmail))
      throw new OAuthError("invalid_id_token", "This sign-in predates the verification of its address; sign in again.");
    // A Firebase uid vouching for another address than the one it was linked with may have
    // changed hands the same way: its holder set that address, unverified, at Firebase, and the
    // address's owner then signed in with Google there. It stands for the new address now, as a
    // link made unverified does. (A Google or GitHub id never changes hands.)
    const movedAddress =
      identity.provider === "firebase" &&
      identity.emailVerified &&
      identity.email !== null &&
      !sameAddress(identity.email, linked.linkEmail);
    if (!movedAddress) return user;
  }
  if (!identity.emailVerified || identity.email === null) return user;
  const address = identity.email;
  if (user.emailVerified && sameAddress(user.email, address)) {
    // Sessions issued through this link so far were the unverified login's, whoever held it then.
    return linkIdentity(env, user, identity, {
      markEmailVerified: true,
      ...(await claimOf(env, user, identity, { ownLinkUnverified: true })),
    });
  }
  const holder = await findUserByEmail(env, address);
  if (holder && holder.id !== user.id) {
    assertActive(holder);
    await refuseLinkPastSecondFactor(env, holder);
    const moved = await linkIdentity(env, holder, identity, {
      markEmailVerified: true,
      ...(await claimOf(env, holder, identity)),
      moveFrom: user.id,
    });
    await tellSecurityEvent(env, moved, "sign_in_method_linked", PROVIDER_NAMES[identity.provider]);
    return moved;
  }
  // The address may be another account's sign-in name (a username from before usernames could
  // not be addresses): adopting it would take that name from them.
  if (Object.keys(await uniquenessErrors(env, null, address, user.id)).length > 0)
    throw new OAuthError("email_not_verified", "This address is another account's sign-in name.");
  assertActive(user);
  return linkIdentity(env, user, identity, { markEmailVerified: true, ...handOver(user), adoptEmail: address });
}

/**
 * A provider that vouches only for the address cannot be linked, by that address, to an account
 * with two-factor sign-in: the inbox is one factor, as a reset link is. Providers linked before
 * sign in as they did (their own second factor applies, as on many services).
 */
async function refuseLinkPastSecondFactor(env: Bindings, account: UserRow): Promise<void> {
  if (await twoFactorEnabled(env, account.id)) {
    throw new OAuthError(
      "two_factor_required",
      "This account uses two-factor sign-in: sign in with your password and a code; a provider is not linked to it by its address.",
    );
  }
}

async function linkOrCreateAccount(env: Bindings, identity: ProviderIdentity): Promise<UserRow> {
  if (!identity.email) throw new OAuthError("email_required", `${identity.provider} did not share an email address.`);
  const existing = await findUserByEmail(env, identity.email);
  if (existing) {
    if (!identity.emailVerified) {
      throw new OAuthError("email_not_verified", "An account with this email exists, and the provider has not verified the email.");
    }
    assertActive(existing);
    await refuseLinkPastSecondFactor(env, existing);
    const linked = await linkIdentity(env, existing, identity, { markEmailVerified: true, ...(await claimOf(env, existing, identity)) });
    // A new way into an existing account: its owner must hear of it.
    if (linked.id === existing.id) await tellSecurityEvent(env, linked, "sign_in_method_linked", PROVIDER_NAMES[identity.provider]);
    return linked;
  }
  const created = await createOAuthUser(env, identity, identity.email);
  return linkIdentity(env, created, identity, {
    markEmailVerified: false,
    takeOver: false,
    dropUnproven: false,
    passwordRemoved: false,
    linksRemoved: false,
  });
}

/**
 * What an identity whose provider vouches for the account's address takes over when it is linked
 * to that account by the address:
 * - an address never proven with us: everything (`takeOver`), as whoever set the account up may
 *   not hold the address;
 * - a proven address whose account's ways in its holder never proved to be theirs (migrations/0043:
 *   the address was confirmed from outside the account, so a stranger may have registered it, or
 *   moved their own account to it, and the holder then clicked the link they did not ask for):
 *   the password, every linked sign-in that does not vouch for this same address (one linked by
 *   the stranger's own address, or an unverified one), every session and emailed link
 *   (`dropUnproven`). Sign-ins a provider linked by this verified address stay. Sessions are
 *   ended too when this identity's own link was unverified (`ownLinkUnverified`): whoever held
 *   that login before the provider vouched for the address signed in through it.
 */
async function claimOf(env: Bindings, account: UserRow, identity: ProviderIdentity, { ownLinkUnverified = false } = {}): Promise<Claim> {
  if (!account.emailVerified) return handOver(account);
  const none: Claim = { takeOver: false, dropUnproven: false, passwordRemoved: false, linksRemoved: false };
  if (account.passwordProven) return none;
  const passwordRemoved = account.passwordHash !== null;
  const linksRemoved =
    (await database(env).select({ id: oauthAccounts.id }).from(oauthAccounts).where(unprovenLinks(account.id, identity)).limit(1).all())
      .length > 0;
  return { takeOver: false, dropUnproven: passwordRemoved || linksRemoved || ownLinkUnverified, passwordRemoved, linksRemoved };
}

/** The account's links, but `identity`'s, that do not vouch for the account's current address. */
function unprovenLinks(userId: string, identity: ProviderIdentity) {
  return and(
    linksNotVouchingForAddress(userId),
    not(and(eq(oauthAccounts.provider, identity.provider), eq(oauthAccounts.providerUserId, identity.providerUserId))!),
  );
}

/** Everything goes to the identity (see `takeOver` in linkIdentity). */
const handOver = (account: UserRow): Claim => ({
  takeOver: true,
  dropUnproven: false,
  passwordRemoved: account.passwordHash !== null,
  linksRemoved: false,
});

interface Claim {
  takeOver: boolean;
  dropUnproven: boolean;
  /** The account had a password, which goes: its owner is told how to set one again. */
  passwordRemoved: boolean;
  /** Linked sign-ins that did not vouch for the address go: the owner is told. */
  linksRemoved: boolean;
}

/**
 * Records the link and returns the account the identity is linked to afterwards — normally
 * `userId`, or the winner when a concurrent callback linked the same identity first.
 */
const PROVIDER_NAMES: Record<ProviderIdentity["provider"], string> = { google: "Google", github: "GitHub", firebase: "Firebase" };

async function linkIdentity(
  env: Bindings,
  account: Pick<UserRow, "id" | "email">,
  identity: ProviderIdentity,
  {
    markEmailVerified,
    takeOver,
    dropUnproven,
    passwordRemoved,
    linksRemoved,
    adoptEmail,
    moveFrom,
  }: Claim & { markEmailVerified: boolean; adoptEmail?: string; moveFrom?: string },
): Promise<UserRow> {
  const db = database(env);
  const userId = account.id;
  // Everything here was decided on the account as read at `account.email`: only while it is still
  // there. An email change confirmed meanwhile (from inside, which proves a stranger's password)
  // must not find the provider that vouched for the old address linked to the account it moved,
  // under the stranger's password; signInWithIdentity then decides again.
  const stillAt = sql`EXISTS (SELECT 1 FROM ${users} lu WHERE lu.id = ${userId} AND lower(lu.email) = lower(${account.email}))`;
  const identityIs = and(eq(oauthAccounts.provider, identity.provider), eq(oauthAccounts.providerUserId, identity.providerUserId));
  const link = and(eq(oauthAccounts.userId, userId), identityIs);
  const statements: (Statement | SQL)[] = [
    // Moved from another account: in the same batch, so the identity is never left unlinked.
    ...(moveFrom !== undefined ? [db.delete(oauthAccounts).where(and(eq(oauthAccounts.userId, moveFrom), identityIs, stillAt))] : []),
    db
      .insert(oauthAccounts)
      .select(
        rowIf(
          oauthAccounts,
          {
            id: uuidv7(),
            userId,
            provider: identity.provider,
            providerUserId: identity.providerUserId,
            email: identity.email ?? "",
            emailVerified: identity.emailVerified,
          },
          stillAt,
        ),
      )
      .onConflictDoNothing({ target: [oauthAccounts.provider, oauthAccounts.providerUserId] }),
    // An existing link the provider now vouches for (never the other way).
    ...(identity.emailVerified
      ? [
          db
            .update(oauthAccounts)
            .set({ emailVerified: true, email: identity.email ?? "" })
            .where(and(link, stillAt)),
        ]
      : []),
  ];
  // The provider has just vouched for the address the account already uses.
  if (markEmailVerified)
    statements.push(
      db
        .update(users)
        .set({ emailVerified: true })
        .where(and(eq(users.id, userId), stillAt)),
    );
  // Pre-registration takeover: someone may have set up an account on the victim's address before
  // the victim's first OAuth sign-in. The local address was never proven, the provider's is, so
  // the account becomes the provider's person's alone: the unproven password, every other linked
  // provider, every session, reset link and pending email change are dropped. With the address
  // proven but not the account's ways in (`dropUnproven`, see claimOf), the same but for the
  // linked providers that vouch for this address; a password proven meanwhile (a reset link used
  // during this sign-in) stays, with the links. The owner can set a new password through the
  // reset flow.
  if (takeOver || dropUnproven) {
    const unproven = sql`EXISTS (SELECT 1 FROM users u WHERE u.id = ${userId} AND u.password_proven = 0)`;
    statements.push(
      // Both decided on an earlier read: a password proven since (a reset landing meanwhile) stays.
      db
        .update(users)
        .set({ passwordHash: null, pendingEmail: null })
        .where(and(eq(users.id, userId), eq(users.passwordProven, false), stillAt)),
      db
        .delete(oauthAccounts)
        .where(
          and(
            takeOver
              ? and(
                  eq(oauthAccounts.userId, userId),
                  not(and(eq(oauthAccounts.provider, identity.provider), eq(oauthAccounts.providerUserId, identity.providerUserId))!),
                )
              : and(unprovenLinks(userId, identity), unproven),
            stillAt,
          ),
        ),
      db.delete(passwordResetTokens).where(and(eq(passwordResetTokens.userId, userId), stillAt)),
      db.delete(emailChangeTokens).where(and(eq(emailChangeTokens.userId, userId), stillAt)),
    );
  }
  // Last: it moves the account away from the address the statements above are conditioned on.
  if (adoptEmail !== undefined)
    statements.push(
      db
        .update(users)
        .set({ email: adoptEmail })
        .where(and(eq(users.id, userId), stillAt)),
    );
  const landed =
    takeOver || dropUnproven
      ? sessionsEndedIf(await endEverySession(env, userId, { also: statements, onlyIf: stillAt }))
      : batchRows((await runBatch(db, [sql`SELECT 1 AS held WHERE ${stillAt}`, ...statements]))[0]).length > 0;
  if (!landed) throw new AccountMoved();
  const linked = (await findLinkedUser(env, identity))?.user ?? (await findUserById(env, userId));
  if (!linked) throw new Error("linked account vanished");
  if (passwordRemoved && linked.id === userId && linked.passwordHash === null)
    await tellSecurityEvent(env, linked, "password_removed", PROVIDER_NAMES[identity.provider]);
  if (linksRemoved && linked.id === userId)
    await tellSecurityEvent(env, linked, "sign_in_method_removed", PROVIDER_NAMES[identity.provider]);
  return linked;
}

async function createOAuthUser(env: Bindings, identity: ProviderIdentity, email: string): Promise<UserRow> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await createUser(env, {
        username: await availableUsername(env, identity.usernameHint),
        email,
        passwordHash: null,
        firstName: identity.firstName,
        lastName: identity.lastName,
        emailVerified: identity.emailVerified,
      });
    } catch (err) {
      // Someone took the chosen username between our check and the insert: pick again.
      const lostUsernameRace = err instanceof AppError && err.fieldErrors?.username !== undefined && err.fieldErrors.email === undefined;
      if (!lostUsernameRace || attempt >= USERNAME_ATTEMPTS) throw err;
    }
  }
}

/**
 * The registration rules' alphabet ([\w.@+-], 3–150 chars), accents folded ("José" → "Jose"),
 * and as registration, never a deleted account's generated name (`deleted-…`): a GitHub login or
 * an email's local part may spell one, and an account named so would pass for a deleted one.
 */
export function usernameBase(hint: string): string {
  const folded = hint.normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
  const cleaned = folded.replace(/[^\w.@+-]/g, "").slice(0, USERNAME_MAX - USERNAME_SUFFIX_ROOM);
  if (cleaned.toLowerCase().startsWith(DELETED_USERNAME_PREFIX)) return `gardener_${cleaned}`.slice(0, USERNAME_MAX - USERNAME_SUFFIX_ROOM);
  if (cleaned.length >= 3) return cleaned;
  return cleaned ? `gardener_${cleaned}` : "gardener";
}

/**
 * `base`, or `base2`, `base3`… — the first one nobody has and no deleted account had (both
 * case-insensitively): a retired name stays with the deleted account's old posts.
 */
async function availableUsername(env: Bindings, hint: string): Promise<string> {
  const base = usernameBase(hint);
  // The base and its numbered forms: a range over the lower(username) index, then digits only
  // after the base. Not `GLOB base[0-9]*`: D1 refuses LIKE/GLOB patterns over 50 bytes, and a base
  // may hold 144 characters (the base alphabet is ASCII, so SQLite and JS count it alike).
  const lower = base.toLowerCase();
  const name = sql`lower(${users.username})`;
  const results = await database(env)
    .select({ name: sql<string>`${name}` })
    .from(users)
    .where(and(startsWith(name, lower), sql`substr(${name}, ${lower.length + 1}) NOT GLOB '*[^0-9]*'`));
  const taken = new Set(results.map((row) => row.name));
  // The names nobody has, in order, looked up in the retired ones a few at a time.
  let suffix = 1;
  for (;;) {
    const candidates: string[] = [];
    for (; candidates.length < RETIRED_LOOKUP_BATCH; suffix++) {
      const candidate = suffix === 1 ? base : `${base}${suffix}`;
      if (!taken.has(candidate.toLowerCase())) candidates.push(candidate);
    }
    const retired = await retiredAmong(env, candidates);
    const free = candidates.find((candidate) => !retired.has(candidate.toLowerCase()));
    if (free) return free;
  }
}

function assertActive(user: UserRow) {
  if (!user.isActive) throw new OAuthError("account_disabled", "This account is disabled.");
}

// ---- Helpers ----------------------------------------------------------------------------------

function nameClaim(value: unknown): string {
  return typeof value === "string" ? value.trim().slice(0, NAME_MAX) : "";
}

function withParams(base: string, params: Record<string, string>): URL {
  const url = new URL(base);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url;
}

const nowS = () => Math.floor(Date.now() / 1000);
