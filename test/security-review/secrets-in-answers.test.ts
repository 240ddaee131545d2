/**
 * A refused body's 400 names the field and the rule it broke; it never repeats a password sent in
 * it (a proxy, a browser extension or a support screenshot would carry it on). Attacks each
 * password rule, a malformed login and a wrong current password, and reads the whole answer.
 */
import { describe, expect, it } from "vitest";
import { call, freshIp } from "../helpers/http";
import { bearerUser, uniqueName } from "../helpers/users";

async function answerText(res: Response): Promise<string> {
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  return `${[...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}\n${await res.text()}`;
}

describe("passwords are never echoed in error answers", () => {
  it("registration refused for each password rule does not repeat the password", async () => {
    const name = uniqueName("echo");
    const cases: Record<string, unknown>[] = [
      { password: "password123" }, // a common password
      { password: `${name}-Garden-77` }, // too like the username
      { password: "Zq7!" }, // too short
      { password: "Unique-Secret-Pass-4821", password_confirm: "Unique-Secret-Pass-4822" }, // confirmation differs
      { password: `Long-${"x".repeat(1100)}` }, // over the length cap
      { password: "Another-Unique-Pass-9913", email: "not-an-address" }, // another field's error
    ];
    for (const body of cases) {
      const res = await call("/api/v1/auth/register/", {
        json: { username: name, email: `${name}@example.com`, ...body },
        ip: freshIp(),
      });
      const text = await answerText(res);
      for (const secret of [body.password, body.password_confirm].filter((v): v is string => typeof v === "string"))
        expect(text).not.toContain(secret.slice(0, 40));
    }
  });

  it("a login with a malformed body or a wrong password, and a wrong current password, do not repeat it", async () => {
    const u = await bearerUser();
    const secret = "Wrong-But-Secret-Pass-5531";
    for (const json of [{ password: secret }, { username: u.username, password: secret }, { username: 42, password: secret }]) {
      expect(await answerText(await call("/api/v1/auth/login/", { json, ip: freshIp() }))).not.toContain(secret);
    }
    const change = await call("/api/v1/auth/user/", {
      method: "PATCH",
      bearer: u.access,
      json: { email: `${uniqueName("new")}@example.com`, current_password: secret },
    });
    expect(await answerText(change)).not.toContain(secret);
  });
});
