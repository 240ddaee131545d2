/**
 * What the pre-registration tests share: a Firebase emulator that vouches for addresses, the
 * outbox's confirmation links, and the sign-ins both the stranger and the address's owner make.
 * Call at a test file's top level (it registers the emulators' hooks).
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { createFirebaseEmulator } from "../../emulators/firebase";
import { call, freshIp } from "./http";
import { mailTo as mailToIn, tokenIn } from "./mail";
import { useEmulators } from "./outbound";
import { GOOD_PASSWORD } from "./users";

export function preRegistrationKit() {
  const firebase = createFirebaseEmulator({ projectId: env.FIREBASE_PROJECT_ID, keyId: "firebase-test-key" });
  const emulators = useEmulators({ overrides: { "firebase.emulator.test": (req) => firebase.handle(req) } });
  const mailTo = (address: string, subject: RegExp) => mailToIn(emulators.email, address, subject);
  return {
    firebase,
    emulators,
    mailTo,
    confirmLink: async (address: string, subject: RegExp) => tokenIn((await mailTo(address, subject)).text, "Confirmation token"),
    resetLink: async (address: string) => tokenIn((await mailTo(address, /Reset your/)).text, "Reset token"),
    confirm: (token: string, bearer?: string) => call("/api/v1/auth/email/confirm/", { json: { token }, bearer }),
    passwordSignIn: (username: string, password = GOOD_PASSWORD) =>
      call("/api/v1/auth/token/", { json: { username, password }, ip: freshIp() }),
    /** The address's owner signs in with Firebase, which vouches for the address; it must succeed. */
    async ownerSignsInWithFirebase(email: string): Promise<{ id: string; email_verified: boolean; access: string }> {
      const res = await call("/api/v1/auth/firebase-token-exchange/", {
        json: { firebase_token: await firebase.issueIdToken({ uid: `uid-${email}`, email, email_verified: true }) },
        ip: freshIp(),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      const body = (await res.json()) as { access_token: string; user: { id: string; email_verified: boolean } };
      return { id: body.user.id, email_verified: body.user.email_verified, access: body.access_token };
    },
  };
}
