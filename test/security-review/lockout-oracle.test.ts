// Review helper-65: the lockout is one bucket per account, whatever name or email is typed, and a
// locked account answered 429 ACCOUNT_LOCKED to every one of them. So anyone could lock an account
// by an email address (ten wrong passwords) and then try public usernames, one wrong password
// each: the one answering ACCOUNT_LOCKED owns the address. Staff are kept from searching users by
// email for exactly this reason (services/users.ts listUsers).
import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { GOOD_PASSWORD, registerWeb, uniqueName } from "../helpers/users";

useEmulators();

async function answer(username: string, password = "Wrong-Guess-x-Xy!") {
  const res = await call("/api/v1/auth/token/", { json: { username, password } });
  const body = (await res.json()) as { code?: string; message?: string };
  return { status: res.status, code: body.code, message: body.message, retryAfter: res.headers.has("Retry-After") };
}

describe("account lockout does not link an email address to a username (review helper-65)", () => {
  it("locked through its email, an account answers to its username like any other name", async () => {
    const victim = await registerWeb();
    const bystander = await registerWeb();
    for (let i = 0; i < 10; i++) expect((await answer(victim.email, `Wrong-Guess-${i}-Xy!`)).status).toBe(401);
    const [mine, theirs, nobody] = [await answer(victim.username), await answer(bystander.username), await answer(uniqueName("ghost"))];
    expect(mine).toEqual(theirs);
    expect(mine).toEqual(nobody);
    // Still locked: the right password does not get in, by any name, and the email says so.
    expect((await answer(victim.username, GOOD_PASSWORD)).status).toBe(401);
    expect(await answer(victim.email, GOOD_PASSWORD)).toMatchObject({ status: 429, code: "ACCOUNT_LOCKED" });
  });
});
