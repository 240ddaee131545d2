/**
 * Email verification for new accounts (issue 10 item 3): sign-up mails a single-use link proving
 * the address; confirming marks it verified and changes nothing else; it can be sent again, not
 * endlessly, and never for a verified address.
 */
import { describe, expect, it } from "vitest";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { mailTo, tokenIn } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

const emulators = useEmulators();
const profile = async (access: string) =>
  json<{ email: string; email_verified: boolean }>(await call("/api/v1/auth/user/", { bearer: access }), 200);
const confirm = (token: string) => call("/api/v1/auth/email/confirm/", { json: { token } });

describe("email verification", () => {
  it("mails a link at sign-up that verifies the address once", async () => {
    const u = await bearerUser();
    expect((await profile(u.access)).email_verified).toBe(false);
    const mail = await mailTo(emulators.email, u.email, /Confirm your email address/);
    expect(mail.text).toContain(`Hello ${u.username},`);
    const token = tokenIn(mail.text, "Confirmation token");
    expect(await json(await confirm(token), 200)).toEqual({ message: "Your email address is confirmed.", email: u.email });
    expect(await profile(u.access)).toMatchObject({ email: u.email, email_verified: true });
    // Sent again (its answer was lost, or a mail scanner's visit sent it first): the same answer, nothing done again.
    expect(await json(await confirm(token), 200)).toEqual({ message: "Your email address is confirmed.", email: u.email });
    // Verified: nothing to send again.
    await expectError(await call("/api/v1/auth/email/verify/", { method: "POST", bearer: u.access }), 409, "INVALID_STATE");
  });

  it("sends the link again on request, at most 3 times an hour; any unexpired link works", async () => {
    const u = await bearerUser();
    for (let i = 0; i < 3; i++) expect((await call("/api/v1/auth/email/verify/", { method: "POST", bearer: u.access })).status).toBe(202);
    await expectError(await call("/api/v1/auth/email/verify/", { method: "POST", bearer: u.access }), 429, "RATE_LIMITED");
    const links = emulators.email.outbox.filter((m) => m.to.includes(u.email) && /Confirm your email address/.test(m.subject));
    expect(links).toHaveLength(4);
    // The first is the welcome; the ones asked for say so, and that the address is not confirmed yet.
    expect(links[0]!.text).toContain("Welcome to Plant Community!");
    for (const again of links.slice(1)) {
      expect(again.text).toContain("Here is the new link you asked for");
      expect(again.text).not.toContain("Welcome");
      expect(again.text).toContain("Until you confirm");
    }
    expect((await confirm(tokenIn(links[1]!.text, "Confirmation token"))).status).toBe(200);
    expect((await profile(u.access)).email_verified).toBe(true);
    await expectError(await call("/api/v1/auth/email/verify/", { method: "POST" }), 401, "AUTHENTICATION_REQUIRED");
  });
});
