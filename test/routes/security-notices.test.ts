/**
 * Security notices (issue 10 item 1): a changed or reset password tells the owner in-app and by
 * email at once — even when every other email is turned off — with no unsubscribe link.
 */
import { describe, expect, it } from "vitest";
import { call, jsonWithStatus as json, type Page } from "../helpers/http";
import { mailTo, tokenIn } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, GOOD_PASSWORD } from "../helpers/users";

const emulators = useEmulators();
const securityNotes = async (access: string) =>
  (
    await json<Page<{ type: string; title: string }>>(await call("/api/v1/notifications/?page_size=50", { bearer: access }), 200)
  ).results.filter((n) => n.type === "security");

describe("security notices", () => {
  it("a password change is told in-app and by email at once, even with all other email off", async () => {
    const u = await bearerUser();
    await json(await call("/api/v1/notifications/preferences/", { method: "PUT", bearer: u.access, json: { digest: "off" } }), 200);
    const res = await call("/api/v1/auth/password/change/", {
      bearer: u.access,
      json: { old_password: GOOD_PASSWORD, new_password: "Brand-New-Bramble-9" },
    });
    const pair = await json<{ access: string }>(res, 200);
    expect((await securityNotes(pair.access)).map((n) => n.title)).toEqual(["Your Plant Community password was changed"]);
    const mail = await mailTo(emulators.email, u.email, /password was changed/);
    expect(mail.text).toContain(`Hello ${u.username},`);
    expect(mail.text).toContain("always sent");
    expect(mail.text).not.toMatch(/unsubscribe/i);
    expect(mail.html).toContain('<html lang="en">');
    expect(mail.headers?.["List-Unsubscribe"]).toBeUndefined();
  });

  it("a password reset is told too", async () => {
    const u = await bearerUser();
    await call("/api/v1/auth/password/reset/", { json: { email: u.email } });
    const token = tokenIn((await mailTo(emulators.email, u.email, /Reset/)).text, "Reset token");
    expect((await call("/api/v1/auth/password/reset/confirm/", { json: { token, new_password: "Brand-New-Bramble-9" } })).status).toBe(200);
    await mailTo(emulators.email, u.email, /password was reset/);
  });
});
