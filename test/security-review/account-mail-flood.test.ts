// Security review finding, fixed — this test keeps it fixed. The finding: password-reset mail was
// limited only per client address, and email-change mail not at all, so anyone with many
// addresses could fill a stranger's inbox with reset links, and any account could send an
// unbounded stream of "confirm your new address" mail to an inbox it chose.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../src/config";
import { requestPasswordReset } from "../../src/services/accounts";
import { mailBucketName } from "../../src/services/rate-limits";
import { call, expectError } from "../helpers/http";
import { tokenIn } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, GOOD_PASSWORD, registerWeb, uniqueName } from "../helpers/users";

const emulators = useEmulators();
const config = getConfig(env);

const mailsTo = (address: string, subject: RegExp) =>
  emulators.email.outbox.filter((m) => m.to.some((to) => to.toLowerCase() === address.toLowerCase()) && subject.test(m.subject));

describe("account mail cannot flood an inbox", () => {
  it("reset links to one address stop at the per-address limit, whoever asks; the last link sent still works", async () => {
    const victim = await registerWeb();
    expect(config.ACCOUNT_MAIL_RATE_LIMIT.limit).toBe(3);
    // As from five different clients, in either case.
    for (const spelling of [victim.email, victim.email.toUpperCase(), victim.email, victim.email.toUpperCase(), victim.email])
      await requestPasswordReset(env, config, spelling);
    const sent = mailsTo(victim.email, /Reset/);
    expect(sent).toHaveLength(3);
    // The refused requests rotated nothing: the newest link mailed is the one that works.
    const ok = await call("/api/v1/auth/password/reset/confirm/", {
      json: { token: tokenIn(sent.at(-1)!.text, "Reset token"), new_password: "Brand-New-Bramble-9" },
    });
    expect(ok.status).toBe(200);
  });

  it("a resent verification link counts against the inbox's limit with every other account mail to it (helper-45)", async () => {
    // An account squatting a stranger's address (never confirmed) asks for the link again and again.
    const squatter = await bearerUser();
    for (let i = 0; i < config.ACCOUNT_MAIL_RATE_LIMIT.limit; i++) await requestPasswordReset(env, config, squatter.email);
    const refused = await expectError(
      await call("/api/v1/auth/email/verify/", { method: "POST", bearer: squatter.access }),
      429,
      "RATE_LIMITED",
    );
    expect(refused).toBeTruthy();
    expect(mailsTo(squatter.email, /Confirm your email/)).toHaveLength(1); // the one sent at sign-up
  });

  it("spellings of one inbox share its bucket: case, space, +tags, trailing dot, Gmail dots, IDN", () => {
    const same = (a: string, b: string) => expect(mailBucketName(a), `${a} ~ ${b}`).toBe(mailBucketName(b));
    same("Victim@Example.com", "victim@example.com");
    same(" victim@example.com ", "victim@example.com");
    same("victim+1@example.com", "victim@example.com");
    same("victim+news+2@example.com.", "victim@example.com");
    same("v.ic.tim@gmail.com", "victim@gmail.com");
    same("victim@googlemail.com", "victim@gmail.com");
    same("victim@bücher.example", "victim@xn--bcher-kva.example");
    expect(mailBucketName("v.ictim@example.com")).not.toBe(mailBucketName("victim@example.com"));
    expect(mailBucketName("victim@example.org")).not.toBe(mailBucketName("victim@example.com"));
  });

  it("one account asking for email changes is stopped with 429 after its hourly limit", async () => {
    const u = await bearerUser();
    expect(config.EMAIL_CHANGE_RATE_LIMIT.limit).toBe(5);
    for (let i = 0; i < 5; i++) {
      const res = await call("/api/v1/auth/user/", {
        method: "PATCH",
        bearer: u.access,
        json: { email: `${uniqueName("move")}@example.com`, current_password: GOOD_PASSWORD },
      });
      expect(res.status).toBe(200);
    }
    const target = `${uniqueName("move")}@example.com`;
    const res = await call("/api/v1/auth/user/", {
      method: "PATCH",
      bearer: u.access,
      json: { email: target, current_password: GOOD_PASSWORD },
    });
    await expectError(res, 429, "RATE_LIMITED");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(mailsTo(target, /Confirm your new/)).toEqual([]);
  });

  it("asking whether addresses are taken counts against the same per-account limit", async () => {
    const u = await bearerUser();
    const other = await registerWeb();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await call("/api/v1/auth/user/", {
        method: "PATCH",
        bearer: u.access,
        json: { email: other.email, current_password: GOOD_PASSWORD },
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([400, 400, 400, 400, 400, 429]);
  });

  it("many accounts naming one stranger's inbox, in other spellings, send it at most the per-inbox limit", async () => {
    const name = uniqueName("stranger");
    const spellings = [`${name}@example.com`, `${name}+a@example.com`, `${name.toUpperCase()}+b@Example.com`, `${name}+c+d@example.com`];
    const accounts = await Promise.all(spellings.map(() => bearerUser()));
    const statuses: number[] = [];
    for (const [i, a] of accounts.entries()) {
      const res = await call("/api/v1/auth/user/", {
        method: "PATCH",
        bearer: a.access,
        json: { email: spellings[i], current_password: GOOD_PASSWORD },
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(spellings.flatMap((address) => mailsTo(address, /Confirm your new/))).toHaveLength(3);
  });

  it("sign-ups naming one stranger's inbox, in other spellings, send it at most the per-inbox limit of links; its own reset still goes", async () => {
    const name = uniqueName("signup");
    const spellings = [`${name}@example.com`, `${name}+a@example.com`, `${name.toUpperCase()}+b@Example.com`, `${name}+c+d@example.com`];
    const limit = config.ACCOUNT_MAIL_RATE_LIMIT.limit;
    for (const email of spellings.slice(0, limit)) await registerWeb({ email });
    // One more: the account is made (refusing it would let anyone block a stranger's sign-up), no link goes.
    const last = await call("/api/v1/auth/register/", {
      json: { username: uniqueName(), email: spellings[limit], password: GOOD_PASSWORD },
    });
    expect(last.status).toBe(201);
    expect(((await last.json()) as { message: string }).message).toMatch(/sent no confirmation link now/);
    expect(spellings.flatMap((address) => mailsTo(address, /Confirm your email/))).toHaveLength(limit);
    // The sign-up links have a count of their own: the inbox's holder can still reset a password.
    await requestPasswordReset(env, config, spellings[0]!);
    expect(mailsTo(spellings[0]!, /Reset/)).toHaveLength(1);
  });
});
