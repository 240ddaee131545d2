// Races between the clean-up a provider sign-in does on an account a stranger set up (or moved) on
// the victim's address (services/oauth.ts: the unproven password, links, sessions and pending email
// changes go) and the stranger's own requests, authorised before it and landing after it. Each
// test lands the competing request at the exact moment between a service's checks and its write.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../src/config";
import { deleteAccount } from "../../src/services/account-deletion";
import { changePassword, confirmEmailChange, confirmPasswordReset, requestEmailChange } from "../../src/services/accounts";
import { signInWithIdentity, startProviderSession } from "../../src/services/oauth";
import { enableTwoFactor } from "../../src/services/two-factor";
import { verifyToken } from "../../src/services/tokens";
import { findUserById, retiredUsernameKey } from "../../src/services/users";
import { call, freshIp } from "../helpers/http";
import { envRacingFirstBatch, envRacingStatement } from "../helpers/racing-env";
import { codeAt, fromBase32, steadyStep } from "../helpers/totp";
import { preRegistrationKit } from "../helpers/pre-registration";
import { GOOD_PASSWORD, registerWeb, tokenLogin, uniqueName } from "../helpers/users";

const { firebase, confirmLink, confirm, passwordSignIn, ownerSignsInWithFirebase, resetLink } = preRegistrationKit();

/** A stranger's account on the victim's address, signed in with a bearer pair. */
async function strangerOnVictimsAddress() {
  const victimEmail = `${uniqueName("victim")}@example.com`;
  const stranger = await registerWeb({ email: victimEmail });
  const tokens = await tokenLogin(stranger.username);
  const claims = await verifyToken(getConfig(env), tokens.access, "access");
  const row = (await findUserById(env, stranger.userId))!;
  return { victimEmail, stranger, tokens, claims, row };
}

/** The stranger asks (with their password) to move the account to an address of their own: the confirmation token mailed there. */
async function strangerAsksToMove(access: string): Promise<string> {
  const strangersOwn = `${uniqueName("stranger")}@example.com`;
  const patched = await call("/api/v1/auth/user/", {
    method: "PATCH",
    bearer: access,
    json: { email: strangersOwn, current_password: GOOD_PASSWORD },
  });
  expect(patched.status).toBe(200);
  return confirmLink(strangersOwn, /Confirm your new/);
}

describe("a stranger's request authorised before the owner's provider sign-in cleans up", () => {
  it("an email change asked for just before it does not land after it", async () => {
    const { victimEmail, stranger, claims, row } = await strangerOnVictimsAddress();
    const strangersOwn = `${uniqueName("stranger")}@example.com`;
    // The stranger's password is checked; then the owner's sign-in removes it, the stranger's
    // sessions and pending changes; then the stranger's change is written.
    const racing = envRacingFirstBatch(() => ownerSignsInWithFirebase(victimEmail));
    const outcome = await requestEmailChange(racing.env, getConfig(env), row, {
      newEmail: strangersOwn,
      currentPassword: GOOD_PASSWORD,
      session: claims,
    }).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(outcome).toMatchObject({ status: 401, code: "TOKEN_INVALID" });
    const pending = await env.DB.prepare("SELECT count(*) AS n FROM email_change_tokens WHERE user_id = ? AND new_email = ?")
      .bind(stranger.userId, strangersOwn)
      .first<{ n: number }>();
    expect(pending?.n).toBe(0);
    expect((await findUserById(env, stranger.userId))?.pendingEmail).toBeNull();
  });

  it("a password change asked for just before it sets no password and starts no session", async () => {
    const { victimEmail, stranger, row } = await strangerOnVictimsAddress();
    let owner: { id: string; access: string } | undefined;
    const racing = envRacingFirstBatch(async () => {
      owner = await ownerSignsInWithFirebase(victimEmail);
    });
    const strangersNew = "Stranger-Keeps-A-Key-31";
    const outcome = await changePassword(racing.env, getConfig(env), row, {
      oldPassword: GOOD_PASSWORD,
      newPassword: strangersNew,
    }).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(outcome).toMatchObject({ status: 401 });
    expect((await passwordSignIn(stranger.username, strangersNew)).status).toBe(401);
    expect((await findUserById(env, stranger.userId))?.passwordHash).toBeNull();
    // Nor did it end the owner's session.
    expect(owner?.id).toBe(stranger.userId);
    expect((await call("/api/v1/auth/user/", { bearer: owner?.access })).status).toBe(200);
  });

  it("an email change's link followed just before it does not move the account after it", async () => {
    const { victimEmail, stranger, tokens } = await strangerOnVictimsAddress();
    const move = await strangerAsksToMove(tokens.access);
    // The stranger follows the link from inside; the owner's sign-in lands between its checks
    // and its write.
    let owner: { id: string; access: string } | undefined;
    const racing = envRacingFirstBatch(async () => {
      owner = await ownerSignsInWithFirebase(victimEmail);
    });
    const outcome = await confirmEmailChange(racing.env, move, stranger.userId).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(outcome).toMatchObject({ status: 400, code: "INVALID_TOKEN" });
    expect(owner?.id).toBe(stranger.userId);
    const row = await findUserById(env, stranger.userId);
    expect(row).toMatchObject({ email: victimEmail, passwordHash: null });
  });
  it("an account deletion asked for just before it deletes nothing after it: the owner keeps the account", async () => {
    const { victimEmail, stranger, claims, row } = await strangerOnVictimsAddress();
    // The stranger's password is checked; then the owner's sign-in takes the account over (the
    // stranger's password and sessions go); then the deletion's batch runs.
    let owner: { id: string; access: string } | undefined;
    const racing = envRacingFirstBatch(async () => {
      owner = await ownerSignsInWithFirebase(victimEmail);
    });
    const outcome = await deleteAccount(racing.env, getConfig(env), row, { currentPassword: GOOD_PASSWORD }, claims).catch(
      (err: unknown) => err,
    );
    expect(racing.fired()).toBe(true);
    expect(outcome).toMatchObject({ status: 401, code: "TOKEN_INVALID" });
    expect(owner?.id).toBe(stranger.userId);
    expect(await findUserById(env, stranger.userId)).toMatchObject({
      username: stranger.username,
      email: victimEmail,
      isActive: true,
      deletedAt: null,
    });
    const retired = await env.DB.prepare("SELECT count(*) AS n FROM retired_usernames WHERE username_sha256 = ?")
      .bind(await retiredUsernameKey(stranger.username))
      .first<{ n: number }>();
    expect(retired?.n).toBe(0);
    // The owner's session, started by the takeover, still works.
    expect((await call("/api/v1/auth/user/", { bearer: owner?.access })).status).toBe(200);
  });
  it("two-factor sign-in turned on just before it is not turned on after it, nor hands the stranger a session", async () => {
    const { victimEmail, stranger, tokens, claims, row } = await strangerOnVictimsAddress();
    const setUp = await call("/api/v1/auth/2fa/setup/", { bearer: tokens.access, json: { current_password: GOOD_PASSWORD } });
    expect(setUp.status).toBe(200);
    const key = fromBase32(((await setUp.json()) as { secret: string }).secret);
    const code = await codeAt(key, await steadyStep());
    let owner: { id: string; access: string } | undefined;
    const racing = envRacingFirstBatch(async () => {
      owner = await ownerSignsInWithFirebase(victimEmail);
    });
    const outcome = await enableTwoFactor(racing.env, getConfig(env), row, code, null, claims).catch((err: unknown) => err);
    expect(racing.fired()).toBe(true);
    expect(outcome).toMatchObject({ status: 401, code: "TOKEN_INVALID" });
    const on = await env.DB.prepare("SELECT enabled_at FROM two_factor WHERE user_id = ?")
      .bind(stranger.userId)
      .first<{ enabled_at: string | null }>();
    expect(on?.enabled_at ?? null).toBeNull();
    expect(owner?.id).toBe(stranger.userId);
    expect((await call("/api/v1/auth/user/", { bearer: owner?.access })).status).toBe(200);
  });
  it("the stranger's own provider sign-in, decided just before it, starts no session in the account after it", async () => {
    // The stranger signs in with a provider on their own address, moves the account to the
    // victim's, and the victim clicks the confirmation they never asked for.
    const strangerEmail = `${uniqueName("stranger")}@example.com`;
    const strangerUid = `uid-${strangerEmail}`;
    const first = await call("/api/v1/auth/firebase-token-exchange/", {
      json: { firebase_token: await firebase.issueIdToken({ uid: strangerUid, email: strangerEmail, email_verified: true }) },
      ip: freshIp(),
    });
    const stranger = (await first.json()) as { access_token: string; user: { id: string } };
    const victimEmail = `${uniqueName("victim")}@example.com`;
    const patched = await call("/api/v1/auth/user/", { method: "PATCH", bearer: stranger.access_token, json: { email: victimEmail } });
    expect(patched.status).toBe(200);
    expect((await confirm(await confirmLink(victimEmail, /Confirm your new/))).status).toBe(200);
    // The stranger signs in again through their link; the owner's sign-in, which removes that
    // link and ends the stranger's sessions, lands between the decision and the session.
    const racing = envRacingStatement(/^update "users" set "last_login"/i, () => ownerSignsInWithFirebase(victimEmail));
    const identity = {
      provider: "firebase" as const,
      providerUserId: strangerUid,
      email: strangerEmail,
      emailVerified: true,
      firstName: "",
      lastName: "",
      usernameHint: "stranger",
    };
    const { user, pair } = await startProviderSession(racing.env, getConfig(env), identity, null);
    expect(racing.fired()).toBe(true);
    expect(user.id).not.toBe(stranger.user.id);
    const me = await call("/api/v1/auth/user/", { bearer: pair.access });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { id: string }).id).not.toBe(stranger.user.id);
  });
});

describe("a provider sign-in racing an email change confirmed from inside the account", () => {
  it("is not linked to the account the stranger moved away, with the stranger's password, under the victim's provider", async () => {
    const { victimEmail, stranger, tokens } = await strangerOnVictimsAddress();
    // The victim clicks the link they did not ask for: the address is proven, the password not.
    expect((await confirm(await confirmLink(victimEmail, /Confirm your email address/))).status).toBe(200);
    // The stranger asks to move the account to their own address ...
    const move = await strangerAsksToMove(tokens.access);
    // ... and confirms it from inside (which proves the password) while the victim's first
    // provider sign-in, decided on the account at the victim's address, is being linked.
    const racing = envRacingFirstBatch(async () => expect((await confirm(move, tokens.access)).status).toBe(200));
    const signedIn = await signInWithIdentity(racing.env, {
      provider: "firebase",
      providerUserId: `uid-${uniqueName("victim")}`,
      email: victimEmail,
      emailVerified: true,
      firstName: "",
      lastName: "",
      usernameHint: "victim",
    });
    expect(racing.fired()).toBe(true);
    // The victim lands in an account of their own address, not in the stranger's (whose password works).
    expect(signedIn.email).toBe(victimEmail);
    expect(signedIn.id).not.toBe(stranger.userId);
    const links = await env.DB.prepare("SELECT count(*) AS n FROM oauth_accounts WHERE user_id = ?")
      .bind(stranger.userId)
      .first<{ n: number }>();
    expect(links?.n).toBe(0);
    expect((await passwordSignIn(stranger.username)).status).toBe(200);
  });
});

describe("a reset link followed while the owner changes the password", () => {
  it("loses: the change killed the link, so the reset's password does not land after it", async () => {
    const owner = await registerWeb();
    const tokens = await tokenLogin(owner.username);
    expect((await call("/api/v1/auth/password/reset/", { json: { email: owner.email } })).status).toBe(200);
    const reset = await resetLink(owner.email);
    const ownersNew = "Owner-Changed-It-Meanwhile-5";
    const racing = envRacingFirstBatch(async () => {
      const changed = await call("/api/v1/auth/password/change/", {
        bearer: tokens.access,
        json: { old_password: GOOD_PASSWORD, new_password: ownersNew },
      });
      expect(changed.status).toBe(200);
    });
    const linksChoice = "Whoever-Held-The-Link-8";
    const outcome = await confirmPasswordReset(racing.env, { token: reset, newPassword: linksChoice, confirm: linksChoice }).catch(
      (err: unknown) => err,
    );
    expect(racing.fired()).toBe(true);
    expect(outcome).toMatchObject({ status: 400, code: "INVALID_TOKEN" });
    expect((await passwordSignIn(owner.username, linksChoice)).status).toBe(401);
    expect((await passwordSignIn(owner.username, ownersNew)).status).toBe(200);
  });
});

describe("a first provider sign-in racing the deletion of the account it links to", () => {
  it("makes a new account of the address, instead of failing on the deleted one (a database error, 500)", async () => {
    const email = `${uniqueName("leaving")}@example.com`;
    const leaving = await registerWeb({ email });
    const tokens = await tokenLogin(leaving.username);
    const uid = `uid-${uniqueName("leaving")}`;
    const identity = {
      provider: "firebase" as const,
      providerUserId: uid,
      email,
      emailVerified: true,
      firstName: "",
      lastName: "",
      usernameHint: "leaving",
    };
    // The owner deletes the account between the sign-in's choice of it and its link.
    const racing = envRacingFirstBatch(async () => {
      const deleted = await call("/api/v1/auth/user/delete/", { bearer: tokens.access, json: { current_password: GOOD_PASSWORD } });
      expect(deleted.status).toBe(200);
    });
    const signedIn = await signInWithIdentity(racing.env, identity);
    expect(racing.fired()).toBe(true);
    expect(signedIn.id).not.toBe(leaving.userId);
    expect(signedIn).toMatchObject({ email, isActive: true });
    // And the provider keeps signing in to it.
    expect((await signInWithIdentity(env, identity)).id).toBe(signedIn.id);
  });
});
