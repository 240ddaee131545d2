// Pre-registration hijacking through a confirmation link (migrations/0043). A stranger registers
// the victim's address with a password of their own. We mail the victim a confirmation link they
// never asked for; if they click it, the address is proven. When the victim later signs in with a
// provider that vouches for the address (Google, GitHub, Firebase), that sign-in is linked to the
// account by the address, and the stranger's password must not survive it: else the stranger
// signs in to the victim's account, now holding the victim's data, whenever they like.
// The same holds for a stranger who moves their own account to the victim's address.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, freshIp } from "../helpers/http";
import { preRegistrationKit } from "../helpers/pre-registration";
import { GOOD_PASSWORD, registerWeb, tokenLogin, uniqueName } from "../helpers/users";

const { firebase, mailTo, confirmLink, confirm, passwordSignIn, ownerSignsInWithFirebase, resetLink } = preRegistrationKit();

interface Exchange {
  access_token: string;
  refresh_token: string;
  user: { id: string; email: string; email_verified: boolean };
}

/** A Firebase sign-in with exactly these claims, which must succeed. */
async function exchange(claims: { uid: string; email: string; email_verified: boolean }): Promise<Exchange> {
  const res = await call("/api/v1/auth/firebase-token-exchange/", {
    json: { firebase_token: await firebase.issueIdToken(claims) },
    ip: freshIp(),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Exchange;
}

async function securityEvents(userId: string): Promise<string[]> {
  const rows = await env.DB.prepare("SELECT data FROM notifications WHERE user_id = ? AND type = 'security'")
    .bind(userId)
    .all<{ data: string }>();
  return rows.results.map((r) => (JSON.parse(r.data) as { event: string }).event).sort();
}

describe("a confirmation link clicked from outside the account proves the address, not the password", () => {
  it("the owner's provider sign-in drops a stranger's password and ends the stranger's sessions", async () => {
    const victimEmail = `${uniqueName("victim")}@example.com`;
    const stranger = await registerWeb({ email: victimEmail });
    const strangerTokens = await tokenLogin(stranger.username);
    // The victim clicks the link they did not ask for: the address is theirs, so it is proven.
    expect((await confirm(await confirmLink(victimEmail, /Confirm your email address/))).status).toBe(200);

    const owner = await ownerSignsInWithFirebase(victimEmail);
    expect(owner).toMatchObject({ id: stranger.userId, email_verified: true });
    expect((await passwordSignIn(stranger.username)).status).toBe(401);
    expect((await call("/api/v1/auth/user/", { bearer: strangerTokens.access })).status).toBe(401);
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: strangerTokens.refresh } })).status).toBe(401);
    // The owner is told why their password went and how to set one.
    expect(await securityEvents(owner.id)).toEqual(["password_removed", "sign_in_method_linked"]);
    const mail = await mailTo(victimEmail, /password was removed/);
    expect(mail.text).toContain("Forgot password");
  });

  it("the same for a stranger who moved their own account to the victim's address", async () => {
    const stranger = await registerWeb();
    const strangerTokens = await tokenLogin(stranger.username);
    // The stranger proves their own address from inside, so their password counts as theirs ...
    expect((await confirm(await confirmLink(stranger.email, /Confirm your email address/), strangerTokens.access)).status).toBe(200);
    const victimEmail = `${uniqueName("victim")}@example.com`;
    const patched = await call("/api/v1/auth/user/", {
      method: "PATCH",
      bearer: strangerTokens.access,
      json: { email: victimEmail, current_password: GOOD_PASSWORD },
    });
    expect(patched.status).toBe(200);
    // ... until the victim confirms the move from outside.
    expect((await confirm(await confirmLink(victimEmail, /Confirm your new/))).status).toBe(200);

    expect((await ownerSignsInWithFirebase(victimEmail)).id).toBe(stranger.userId);
    expect((await passwordSignIn(stranger.username)).status).toBe(401);
  });
});

describe("a password its address's holder proved stays", () => {
  it("confirmed from inside the account (the link opened where the owner is signed in)", async () => {
    const email = `${uniqueName("rose")}@example.com`;
    const owner = await registerWeb({ email });
    const confirmed = await call("/api/v1/auth/email/confirm/", {
      json: { token: await confirmLink(email, /Confirm your email address/) },
      cookies: owner.cookies,
      headers: { "X-CSRFToken": owner.csrf },
    });
    expect(confirmed.status).toBe(200);
    expect((await ownerSignsInWithFirebase(email)).id).toBe(owner.userId);
    expect((await passwordSignIn(owner.username)).status).toBe(200);
    expect(await securityEvents(owner.userId)).toEqual(["sign_in_method_linked"]);
  });

  it("set by a reset link, which only the address's holder gets", async () => {
    const email = `${uniqueName("sorrel")}@example.com`;
    const owner = await registerWeb({ email });
    expect((await confirm(await confirmLink(email, /Confirm your email address/))).status).toBe(200);
    expect((await call("/api/v1/auth/password/reset/", { json: { email } })).status).toBe(200);
    const reset = await resetLink(email);
    const chosen = "Sorrel-Owns-This-Inbox-7";
    expect((await call("/api/v1/auth/password/reset/confirm/", { json: { token: reset, new_password: chosen } })).status).toBe(200);
    expect((await ownerSignsInWithFirebase(email)).id).toBe(owner.userId);
    expect((await passwordSignIn(owner.username, chosen)).status).toBe(200);
  });

  it("another account's session proves nothing about this one's password", async () => {
    const email = `${uniqueName("nettle")}@example.com`;
    const stranger = await registerWeb({ email });
    const bystander = await tokenLogin((await registerWeb()).username);
    expect((await confirm(await confirmLink(email, /Confirm your email address/), bystander.access)).status).toBe(200);
    expect((await ownerSignsInWithFirebase(email)).id).toBe(stranger.userId);
    expect((await passwordSignIn(stranger.username)).status).toBe(401);
  });
});

describe("a confirmation from outside proves the address, not the stranger's other ways in", () => {
  it("a stranger's provider sign-in on their own address, and their sessions, go when the moved-to address's owner signs in", async () => {
    // The stranger signs in with a provider on their own address, moves the account to the
    // victim's address, and the victim clicks the confirmation they never asked for.
    const strangerEmail = `${uniqueName("stranger")}@example.com`;
    const strangerUid = `uid-${strangerEmail}`;
    const stranger = await exchange({ uid: strangerUid, email: strangerEmail, email_verified: true });
    const victimEmail = `${uniqueName("victim")}@example.com`;
    const patched = await call("/api/v1/auth/user/", { method: "PATCH", bearer: stranger.access_token, json: { email: victimEmail } });
    expect(patched.status, await patched.clone().text()).toBe(200);
    expect((await confirm(await confirmLink(victimEmail, /Confirm your new/))).status).toBe(200);

    const owner = await ownerSignsInWithFirebase(victimEmail);
    expect(owner.id).toBe(stranger.user.id);
    expect((await call("/api/v1/auth/user/", { bearer: stranger.access_token })).status).toBe(401);
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: stranger.refresh_token } })).status).toBe(401);
    // The stranger's own provider sign-in no longer leads into the account.
    const again = await exchange({ uid: strangerUid, email: strangerEmail, email_verified: true });
    expect(again.user.id).not.toBe(owner.id);
    expect(await securityEvents(owner.id)).toContain("sign_in_method_removed");
  });

  it("a stranger's unverified sign-in on the victim's address, and their sessions, go when its uid passes to the owner", async () => {
    // A Firebase password login on the victim's address (unverified) makes an account here; the
    // stranger has the confirmation mailed and the victim clicks it. Then the victim signs in
    // with Google on Firebase, which keeps the uid and now vouches for the address.
    const victimEmail = `${uniqueName("victim")}@example.com`;
    const uid = `uid-${uniqueName("shared")}`;
    const stranger = await exchange({ uid, email: victimEmail, email_verified: false });
    expect((await call("/api/v1/auth/email/verify/", { method: "POST", bearer: stranger.access_token })).status).toBe(202);
    expect((await confirm(await confirmLink(victimEmail, /Confirm your email address/))).status).toBe(200);

    const owner = await exchange({ uid, email: victimEmail, email_verified: true });
    expect(owner.user.id).toBe(stranger.user.id);
    expect((await call("/api/v1/auth/user/", { bearer: stranger.access_token })).status).toBe(401);
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: stranger.refresh_token } })).status).toBe(401);
    expect((await call("/api/v1/auth/user/", { bearer: owner.access_token })).status).toBe(200);
  });

  it("the same stranger's other sign-in stays out when the owner signs in with another provider", async () => {
    const victimEmail = `${uniqueName("victim")}@example.com`;
    const uid = `uid-${uniqueName("squat")}`;
    const stranger = await exchange({ uid, email: victimEmail, email_verified: false });
    expect((await call("/api/v1/auth/email/verify/", { method: "POST", bearer: stranger.access_token })).status).toBe(202);
    expect((await confirm(await confirmLink(victimEmail, /Confirm your email address/))).status).toBe(200);

    const owner = await ownerSignsInWithFirebase(victimEmail);
    expect(owner.id).toBe(stranger.user.id);
    expect((await call("/api/v1/auth/user/", { bearer: stranger.access_token })).status).toBe(401);
    // The stranger's uid, still unverified, no longer signs in to the owner's account.
    const res = await call("/api/v1/auth/firebase-token-exchange/", {
      json: { firebase_token: await firebase.issueIdToken({ uid, email: victimEmail, email_verified: false }) },
      ip: freshIp(),
    });
    expect(res.status).toBe(403);
  });

  it("a reset by the address's owner removes the stranger's provider sign-in too", async () => {
    const strangerEmail = `${uniqueName("stranger")}@example.com`;
    const strangerUid = `uid-${strangerEmail}`;
    const stranger = await exchange({ uid: strangerUid, email: strangerEmail, email_verified: true });
    const victimEmail = `${uniqueName("victim")}@example.com`;
    const patched = await call("/api/v1/auth/user/", { method: "PATCH", bearer: stranger.access_token, json: { email: victimEmail } });
    expect(patched.status).toBe(200);
    expect((await confirm(await confirmLink(victimEmail, /Confirm your new/))).status).toBe(200);

    // The victim, finding an account on their address, sets its password by a reset link.
    expect((await call("/api/v1/auth/password/reset/", { json: { email: victimEmail } })).status).toBe(200);
    const reset = await resetLink(victimEmail);
    const chosen = "Victim-Holds-This-Inbox-9";
    expect((await call("/api/v1/auth/password/reset/confirm/", { json: { token: reset, new_password: chosen } })).status).toBe(200);

    const again = await exchange({ uid: strangerUid, email: strangerEmail, email_verified: true });
    expect(again.user.id).not.toBe(stranger.user.id);
  });

  it("an owner who confirmed from inside keeps their other sign-ins and sessions", async () => {
    const email = `${uniqueName("yarrow")}@example.com`;
    const uid = `uid-${uniqueName("own")}`;
    const first = await exchange({ uid, email, email_verified: false });
    expect((await call("/api/v1/auth/email/verify/", { method: "POST", bearer: first.access_token })).status).toBe(202);
    expect((await confirm(await confirmLink(email, /Confirm your email address/), first.access_token)).status).toBe(200);

    const other = await ownerSignsInWithFirebase(email);
    expect(other.id).toBe(first.user.id);
    expect((await call("/api/v1/auth/user/", { bearer: first.access_token })).status).toBe(200);
    expect((await exchange({ uid, email, email_verified: false })).user.id).toBe(first.user.id);
  });
});

describe("a Firebase uid that changes hands after its link was verified", () => {
  it("a stranger who moved their verified uid to the victim's address, unverified, keeps no way into what the victim then signs in to", async () => {
    // The stranger's uid is linked, verified, by their own address. They change its address at
    // Firebase to the victim's (unverified; they need not sign in here so). When the victim signs
    // in with Google on Firebase, Firebase keeps that uid (dropping the stranger's password login)
    // and vouches for the victim's address: the victim must not land where the stranger still is.
    const strangerEmail = `${uniqueName("stranger")}@example.com`;
    const uid = `uid-${uniqueName("moved")}`;
    const stranger = await exchange({ uid, email: strangerEmail, email_verified: true });
    const victimEmail = `${uniqueName("victim")}@example.com`;

    // The uid now stands for the victim's address: the account goes with it, as a link made
    // unverified does (the stranger's sessions, password and other links go; its email becomes
    // the verified address).
    const victim = await exchange({ uid, email: victimEmail, email_verified: true });
    expect(victim.user).toMatchObject({ id: stranger.user.id, email: victimEmail });
    expect((await call("/api/v1/auth/user/", { bearer: stranger.access_token })).status).toBe(401);
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: stranger.refresh_token } })).status).toBe(401);
    expect((await call("/api/v1/auth/user/", { bearer: victim.access_token })).status).toBe(200);
  });
});
