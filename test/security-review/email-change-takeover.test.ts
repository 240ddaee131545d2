// Security review finding, fixed — this test keeps it fixed. The finding: an email change is a session-only operation. PATCH /auth/user {email} needs
// no current password, the confirmation link works without any session, and the pending change
// is not bound to the session that asked for it: ending every session (sign-out everywhere,
// deactivation) leaves the link alive. Whoever holds any live access token for 15 minutes (XSS,
// a stolen bearer token, a shared device) turns it into permanent ownership: new address →
// confirm → reset to the new address → the owner is locked out.
import { describe, expect, it } from "vitest";
import { call, expectError } from "../helpers/http";
import { mailTo as mailToIn, tokenIn } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, GOOD_PASSWORD, uniqueName } from "../helpers/users";

const emulators = useEmulators();

const mailTo = (address: string, subject: RegExp) => mailToIn(emulators.email, address, subject);

describe("email change as a takeover path", () => {
  it("sign-out everywhere cancels an intruder's pending email change", async () => {
    const victim = await bearerUser();
    const intruderAccess = victim.access; // e.g. phished together with the password
    const intruderEmail = `${uniqueName("mallory")}@example.com`;
    const patched = await call("/api/v1/auth/user/", {
      method: "PATCH",
      bearer: intruderAccess,
      json: { email: intruderEmail, current_password: GOOD_PASSWORD },
    });
    expect(patched.status).toBe(200);
    const link = tokenIn((await mailTo(intruderEmail, /Confirm your new/)).text, "Confirmation token");

    // The victim sees the warning mail and signs out everywhere.
    const fresh = (await (await call("/api/v1/auth/token/", { json: { username: victim.username, password: GOOD_PASSWORD } })).json()) as {
      access: string;
    };
    expect((await call("/api/v1/auth/logout-all/", { method: "POST", bearer: fresh.access })).status).toBe(200);
    expect((await call("/api/v1/auth/user/", { bearer: intruderAccess })).status).toBe(401);

    // The intruder's link should have died with every session; it still moves the account.
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token: link } }), 400, "INVALID_TOKEN");
  });

  it("changing the email needs the current password (a bare access token is not enough)", async () => {
    const victim = await bearerUser();
    const intruderEmail = `${uniqueName("mallory")}@example.com`;
    const patched = await call("/api/v1/auth/user/", { method: "PATCH", bearer: victim.access, json: { email: intruderEmail } });
    // Without re-authentication the rest is mechanical: confirm, reset to the new address, own the account.
    if (patched.status === 200) {
      const link = tokenIn((await mailTo(intruderEmail, /Confirm your new/)).text, "Confirmation token");
      expect((await call("/api/v1/auth/email/confirm/", { json: { token: link } })).status).toBe(200);
      expect((await call("/api/v1/auth/password/reset/", { json: { email: intruderEmail } })).status).toBe(200);
      const reset = tokenIn((await mailTo(intruderEmail, /Reset your/)).text, "Reset token");
      expect(
        (await call("/api/v1/auth/password/reset/confirm/", { json: { token: reset, new_password: "Mallorys-Own-Fern-88" } })).status,
      ).toBe(200);
      // The owner is locked out of their account for good.
      expect((await call("/api/v1/auth/token/", { json: { username: victim.username, password: GOOD_PASSWORD } })).status).toBe(401);
      expect((await call("/api/v1/auth/token/", { json: { username: victim.username, password: "Mallorys-Own-Fern-88" } })).status).toBe(
        200,
      );
    }
    expect(patched.status, "email change accepted without the current password").toBe(400);
  });
});
