/**
 * Firebase sign-in for the mobile app (API.md §5d): POST /api/v1/auth/firebase-token-exchange/
 * with a Firebase ID token. The emulator signs tokens like Firebase and publishes its JWKS like
 * Google's securetoken service; every attack on the token is refused without creating anything.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createFirebaseEmulator } from "../../emulators/firebase";
import { call, expectError, freshIp } from "../helpers/http";
import { mailTo, tokenIn } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { setAccountActive } from "../../src/services/accounts";
import { hashPassword } from "../../src/services/passwords";
import { createUser } from "../../src/services/users";
import { bearerUser, GOOD_PASSWORD, tokenLogin, uniqueName } from "../helpers/users";

const PATH = "/api/v1/auth/firebase-token-exchange/";
// One emulator (one signing key) for the file: the service caches the JWKS per isolate, as it
// would cache Google's.
const firebase = createFirebaseEmulator({ projectId: env.FIREBASE_PROJECT_ID, keyId: "firebase-test-key" });
const emulators = useEmulators({ overrides: { "firebase.emulator.test": (req) => firebase.handle(req) } });

interface Exchange {
  access_token: string;
  refresh_token: string;
  token_type: string;
  user: { id: string; email: string; username: string; email_verified: boolean };
}

const exchange = (firebase_token: string) => call(PATH, { json: { firebase_token }, ip: freshIp() });

async function userCount(): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM users").first<{ n: number }>())!.n;
}

describe("Firebase token exchange", () => {
  it("signs a new person in with our own tokens, and the same Firebase uid again to the same account", async () => {
    const email = `${uniqueName("fb")}@example.com`;
    const token = await firebase.issueIdToken({ uid: `uid-${email}`, email, email_verified: true, name: "Ivy Green" });
    const res = await exchange(token);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as Exchange;
    expect(body.token_type).toBe("Bearer");
    expect(body.user).toMatchObject({ email, email_verified: true });
    const me = await call("/api/v1/auth/user/", { bearer: body.access_token });
    expect(((await me.json()) as { id: string }).id).toBe(body.user.id);

    const again = (await (
      await exchange(await firebase.issueIdToken({ uid: `uid-${email}`, email, email_verified: true }))
    ).json()) as Exchange;
    expect(again.user.id).toBe(body.user.id);
    const linked = await env.DB.prepare("SELECT user_id FROM oauth_accounts WHERE provider = 'firebase' AND provider_user_id = ?")
      .bind(`uid-${email}`)
      .first<{ user_id: string }>();
    expect(linked?.user_id).toBe(body.user.id);
  });

  it("links to an existing account only when Firebase verified the email", async () => {
    const existing = await bearerUser();
    const unverified = await exchange(await firebase.issueIdToken({ email: existing.email, email_verified: false }));
    await expectError(unverified, 403, "EMAIL_NOT_VERIFIED");
    const verified = await exchange(await firebase.issueIdToken({ email: existing.email, email_verified: true }));
    expect(verified.status).toBe(200);
    expect(((await verified.json()) as Exchange).user.id).toBe(existing.userId);
  });

  it("a squatter who signed in with the address unverified loses the account when the address's owner proves it through the same uid", async () => {
    // Someone registers a Firebase password login on the victim's address (unverified) and signs
    // in here. Later the victim signs in with Google: Firebase keeps the uid, drops the squatter's
    // password login, and now says the address is verified.
    const email = `${uniqueName("victim")}@example.com`;
    const uid = `uid-${uniqueName("shared")}`;
    const squat = await exchange(await firebase.issueIdToken({ uid, email, email_verified: false }));
    const squatter = (await squat.json()) as Exchange;
    expect(squat.status).toBe(200);
    expect(squatter.user.email_verified).toBe(false);

    const owner = (await (await exchange(await firebase.issueIdToken({ uid, email, email_verified: true }))).json()) as Exchange;
    expect(owner.user).toMatchObject({ id: squatter.user.id, email_verified: true });
    // The squatter's session is over, token and refresh alike; the owner's works.
    expect((await call("/api/v1/auth/user/", { bearer: squatter.access_token })).status).toBe(401);
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: squatter.refresh_token } })).status).toBe(401);
    const me = await call("/api/v1/auth/user/", { bearer: owner.access_token });
    expect(((await me.json()) as { email_verified: boolean }).email_verified).toBe(true);
    // Once proven, signing in again ends nobody's session.
    const again = (await (await exchange(await firebase.issueIdToken({ uid, email, email_verified: true }))).json()) as Exchange;
    expect(again.user.id).toBe(owner.user.id);
    expect((await call("/api/v1/auth/user/", { bearer: owner.access_token })).status).toBe(200);
  });

  it("the squatter who moved the account to their own inbox first loses it all the same (review helper-49)", async () => {
    const victimEmail = `${uniqueName("victim")}@example.com`;
    const squatterEmail = `${uniqueName("squatter")}@example.com`;
    const uid = `uid-${uniqueName("shared")}`;
    const squatter = (await (
      await exchange(await firebase.issueIdToken({ uid, email: victimEmail, email_verified: false }))
    ).json()) as Exchange;
    // A fresh sign-in may change the address without a password; the squatter confirms their own inbox.
    const patched = await call("/api/v1/auth/user/", { method: "PATCH", bearer: squatter.access_token, json: { email: squatterEmail } });
    expect(patched.status, await patched.clone().text()).toBe(200);
    const link = tokenIn((await mailTo(emulators.email, squatterEmail, /Confirm your new/)).text, "Confirmation token");
    expect((await call("/api/v1/auth/email/confirm/", { json: { token: link } })).status).toBe(200);

    // The address's owner signs in through the same uid, now verified.
    const owner = (await (
      await exchange(await firebase.issueIdToken({ uid, email: victimEmail, email_verified: true }))
    ).json()) as Exchange;
    expect(owner.user).toMatchObject({ id: squatter.user.id, email: victimEmail, email_verified: true });
    expect((await call("/api/v1/auth/user/", { bearer: squatter.access_token })).status).toBe(401);
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: squatter.refresh_token } })).status).toBe(401);
    // A reset link to the squatter's inbox would reach no account any more.
    const held = await env.DB.prepare("SELECT count(*) AS n FROM users WHERE lower(email) = lower(?)")
      .bind(squatterEmail)
      .first<{ n: number }>();
    expect(held!.n).toBe(0);
  });

  it("after the takeover, the squatter's own older token (address unverified) is refused, not let back in (review helper-50)", async () => {
    const email = `${uniqueName("victim")}@example.com`;
    const uid = `uid-${uniqueName("shared")}`;
    const squatterToken = await firebase.issueIdToken({ uid, email, email_verified: false });
    expect((await exchange(squatterToken)).status).toBe(200);
    expect((await exchange(await firebase.issueIdToken({ uid, email, email_verified: true }))).status).toBe(200);
    await expectError(await exchange(squatterToken), 401, "FIREBASE_TOKEN_INVALID");
  });

  it("the identity moves to the account that holds the verified address, in one step; a disabled holder moves nothing (review helper-50)", async () => {
    const uid = `uid-${uniqueName("mover")}`;
    const own = `${uniqueName("own")}@example.com`;
    const first = (await (await exchange(await firebase.issueIdToken({ uid, email: own, email_verified: false }))).json()) as Exchange;
    const holder = await bearerUser();
    await setAccountActive(env, holder.userId, false);
    await expectError(
      await exchange(await firebase.issueIdToken({ uid, email: holder.email, email_verified: true })),
      403,
      "ACCOUNT_DISABLED",
    );
    const link = () =>
      env.DB.prepare("SELECT user_id FROM oauth_accounts WHERE provider = 'firebase' AND provider_user_id = ?")
        .bind(uid)
        .first<{ user_id: string }>();
    expect((await link())?.user_id).toBe(first.user.id);
    await setAccountActive(env, holder.userId, true);
    const moved = (await (
      await exchange(await firebase.issueIdToken({ uid, email: holder.email, email_verified: true }))
    ).json()) as Exchange;
    expect(moved.user.id).toBe(holder.userId);
    expect((await link())?.user_id).toBe(holder.userId);
  });

  it("a takeover does not adopt an address that is another account's sign-in name (review helper-50)", async () => {
    const legacyName = `${uniqueName("legacy")}@example.com`;
    await createUser(env, {
      username: legacyName,
      email: `${uniqueName("legacyown")}@example.com`,
      passwordHash: await hashPassword(GOOD_PASSWORD),
    });
    const uid = `uid-${uniqueName("adopt")}`;
    await exchange(await firebase.issueIdToken({ uid, email: `${uniqueName("own")}@example.com`, email_verified: false }));
    await expectError(
      await exchange(await firebase.issueIdToken({ uid, email: legacyName, email_verified: true })),
      403,
      "EMAIL_NOT_VERIFIED",
    );
    expect((await tokenLogin(legacyName)).access).toBeTruthy();
  });

  it("a link the address's owner had already proven with us changes no hands when the provider verifies it too", async () => {
    const email = `${uniqueName("careful")}@example.com`;
    const uid = `uid-${uniqueName("careful")}`;
    const first = (await (await exchange(await firebase.issueIdToken({ uid, email, email_verified: false }))).json()) as Exchange;
    expect((await call("/api/v1/auth/email/verify/", { method: "POST", bearer: first.access_token })).status).toBe(202);
    const confirm = tokenIn((await mailTo(emulators.email, email, /Confirm your email/)).text, "Confirmation token");
    // Confirmed from inside the account: a click from outside proves the address, not who signed
    // in through the unverified login (test/security-review/pre-registration-confirmation.test.ts).
    expect((await call("/api/v1/auth/email/confirm/", { json: { token: confirm }, bearer: first.access_token })).status).toBe(200);
    const again = (await (await exchange(await firebase.issueIdToken({ uid, email, email_verified: true }))).json()) as Exchange;
    expect(again.user.id).toBe(first.user.id);
    expect((await call("/api/v1/auth/user/", { bearer: first.access_token })).status).toBe(200);
  });

  it.each([
    ["another project's token (aud)", { claims: { aud: "someone-elses-project" } }],
    ["another issuer (iss)", { claims: { iss: "https://securetoken.google.com/someone-elses-project" } }],
    ["an expired token", { claims: { exp: Math.floor(Date.now() / 1000) - 600, iat: Math.floor(Date.now() / 1000) - 4200 } }],
    ["a token issued in the future", { claims: { iat: Math.floor(Date.now() / 1000) + 3600, exp: Math.floor(Date.now() / 1000) + 7200 } }],
    ["an auth_time in the future", { claims: { auth_time: Math.floor(Date.now() / 1000) + 3600 } }],
    ["an empty subject", { claims: { sub: "" } }],
    ["a token signed by a key Google did not publish", { signWithUnpublishedKey: true }],
  ])("refuses %s with 401 FIREBASE_TOKEN_INVALID and creates nothing", async (_name, options) => {
    const before = await userCount();
    const token = await firebase.issueIdToken({ email: `${uniqueName("attacker")}@example.com`, email_verified: true }, options);
    await expectError(await exchange(token), 401, "FIREBASE_TOKEN_INVALID");
    expect(await userCount()).toBe(before);
  });

  it("refuses an unsigned token (alg none) and garbage", async () => {
    const [header, payload] = (await firebase.issueIdToken({ email: "x@example.com", email_verified: true })).split(".");
    const unsigned = `${btoa(JSON.stringify({ alg: "none", typ: "JWT" })).replace(/=+$/, "")}.${payload}.`;
    await expectError(await exchange(unsigned), 401, "FIREBASE_TOKEN_INVALID");
    await expectError(await exchange(`${header}.${payload}.bm90LWEtc2lnbmF0dXJl`), 401, "FIREBASE_TOKEN_INVALID");
    await expectError(await exchange("x".repeat(40)), 401, "FIREBASE_TOKEN_INVALID");
  });

  it("answers a missing or oversized token with the validation envelope", async () => {
    await expectError(await call(PATH, { json: {}, ip: freshIp() }), 400, "VALIDATION_ERROR");
    await expectError(await call(PATH, { json: { firebase_token: "a".repeat(5000) }, ip: freshIp() }), 400, "VALIDATION_ERROR");
  });

  it("refuses a Firebase account without an email, creating nothing", async () => {
    const before = await userCount();
    await expectError(await exchange(await firebase.issueIdToken({ uid: "phone-only-user" })), 400, "VALIDATION_ERROR");
    expect(await userCount()).toBe(before);
  });
});
