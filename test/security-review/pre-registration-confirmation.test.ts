// Pre-registration hijacking through a confirmation link (migrations/0043). A stranger registers
// the victim's address with a password of their own. We mail the victim a confirmation link they
// never asked for; if they click it, the address is proven. When the victim later signs in with a
// provider that vouches for the address (Google, GitHub, Firebase), that sign-in is linked to the
// account by the address, and the stranger's password must not survive it: else the stranger
// signs in to the victim's account, now holding the victim's data, whenever they like.
// The same holds for a stranger who moves their own account to the victim's address.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createFirebaseEmulator } from "../../emulators/firebase";
import { call, freshIp } from "../helpers/http";
import { mailTo as mailToIn, tokenIn } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { GOOD_PASSWORD, registerWeb, tokenLogin, uniqueName } from "../helpers/users";

const firebase = createFirebaseEmulator({ projectId: env.FIREBASE_PROJECT_ID, keyId: "firebase-test-key" });
const emulators = useEmulators({ overrides: { "firebase.emulator.test": (req) => firebase.handle(req) } });

const mailTo = (address: string, subject: RegExp) => mailToIn(emulators.email, address, subject);
const confirmLink = async (address: string, subject: RegExp) => tokenIn((await mailTo(address, subject)).text, "Confirmation token");
const confirm = (token: string, bearer?: string) => call("/api/v1/auth/email/confirm/", { json: { token }, bearer });
const passwordSignIn = (username: string, password = GOOD_PASSWORD) =>
  call("/api/v1/auth/token/", { json: { username, password }, ip: freshIp() });

/** The address's owner signs in with Firebase, which vouches for the address. */
async function ownerSignsInWithFirebase(email: string): Promise<{ id: string; email_verified: boolean }> {
  const res = await call("/api/v1/auth/firebase-token-exchange/", {
    json: { firebase_token: await firebase.issueIdToken({ uid: `uid-${email}`, email, email_verified: true }) },
    ip: freshIp(),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { user: { id: string; email_verified: boolean } }).user;
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
    const reset = tokenIn((await mailTo(email, /Reset your/)).text, "Reset token");
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
