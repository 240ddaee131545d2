// Races between the clean-up a provider sign-in does on an account a stranger set up (or moved) on
// the victim's address (services/oauth.ts: the unproven password, links, sessions and pending email
// changes go) and the stranger's own requests, authorised before it and landing after it. Each
// test lands the competing request at the exact moment between a service's checks and its write.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createFirebaseEmulator } from "../../emulators/firebase";
import { getConfig } from "../../src/config";
import { requestEmailChange } from "../../src/services/accounts";
import { verifyToken } from "../../src/services/tokens";
import { findUserById } from "../../src/services/users";
import { call, freshIp } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { envRacingFirstBatch } from "../helpers/racing-env";
import { GOOD_PASSWORD, registerWeb, tokenLogin, uniqueName } from "../helpers/users";

const firebase = createFirebaseEmulator({ projectId: env.FIREBASE_PROJECT_ID, keyId: "firebase-test-key" });
useEmulators({ overrides: { "firebase.emulator.test": (req) => firebase.handle(req) } });

/** The address's owner signs in with Firebase, which vouches for the address. */
async function ownerSignsInWithFirebase(email: string): Promise<string> {
  const res = await call("/api/v1/auth/firebase-token-exchange/", {
    json: { firebase_token: await firebase.issueIdToken({ uid: `uid-${email}`, email, email_verified: true }) },
    ip: freshIp(),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { user: { id: string } }).user.id;
}

/** A stranger's account on the victim's address, signed in with a bearer pair. */
async function strangerOnVictimsAddress() {
  const victimEmail = `${uniqueName("victim")}@example.com`;
  const stranger = await registerWeb({ email: victimEmail });
  const tokens = await tokenLogin(stranger.username);
  const claims = await verifyToken(getConfig(env), tokens.access, "access");
  const row = (await findUserById(env, stranger.userId))!;
  return { victimEmail, stranger, tokens, claims, row };
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
});
