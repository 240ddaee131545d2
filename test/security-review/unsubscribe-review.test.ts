// Security review finding, fixed — this test keeps it fixed. The finding: an emailed unsubscribe
// link named only the account and the type, never the address it was mailed to. After the owner
// moved the account to another address (because the old one was someone else's, shared, or
// compromised), whoever still reads the old mailbox kept, for the link's 90 days, a switch over
// the account's email preferences, though none of its mail reaches that mailbox any more.
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { getPreferences } from "../../src/services/notification-preferences";
import { createNotification } from "../../src/services/notifications";
import { unsubscribeByMail } from "../../src/services/unsubscribe";
import { call, jsonWithStatus as json } from "../helpers/http";
import { mailTo as mailToIn, tokenIn } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, GOOD_PASSWORD, uniqueName } from "../helpers/users";

const emulators = useEmulators();
const mailTo = (address: string, subject: RegExp) => mailToIn(emulators.email, address, subject);

/** A verified reader who gets each notification by email at once. */
async function reader() {
  const u = await bearerUser();
  await database(env).update(users).set({ emailVerified: true }).where(eq(users.id, u.userId));
  await json(await call("/api/v1/notifications/preferences/", { method: "PUT", bearer: u.access, json: { digest: "immediate" } }), 200);
  return u;
}

/** The one-click link (and the mailto: subject) of a forum-mention email sent to the reader's current address. */
async function mentionLink(u: { userId: string; email: string }, title: string): Promise<string> {
  return (await mentionLinks(u, title)).oneClick;
}

async function mentionLinks(u: { userId: string; email: string }, title: string) {
  await createNotification(env, {
    userId: u.userId,
    type: "forum_mention",
    title,
    body: "Someone mentioned you.",
    data: {},
    dedupeKey: `review:${crypto.randomUUID()}`,
  });
  const mail = await mailTo(u.email, new RegExp(title));
  const header = mail.headers?.["List-Unsubscribe"] ?? "";
  const link = /<(https:\/\/api\.test[^>]+)>/.exec(header)?.[1];
  const mailto = /<mailto:([^>]+)>/.exec(header)?.[1];
  expect(link).toBeDefined();
  expect(mailto).toBeDefined();
  return {
    oneClick: link!.replace("https://api.test", ""),
    subject: decodeURIComponent(new URL(`mailto:${mailto}`).searchParams.get("subject") ?? ""),
  };
}

const oneClick = (path: string) =>
  call(path, { method: "POST", body: "List-Unsubscribe=One-Click", headers: { "Content-Type": "application/x-www-form-urlencoded" } });

/** Moves the account to a new address through the API: PATCH with the password, then the emailed confirmation. */
async function changeEmail(u: { access: string }, to: string) {
  expect(
    (await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, json: { email: to, current_password: GOOD_PASSWORD } })).status,
  ).toBe(200);
  const token = tokenIn((await mailTo(to, /Confirm your new/)).text, "Confirmation token");
  expect((await call("/api/v1/auth/email/confirm/", { json: { token } })).status).toBe(200);
}

describe("an unsubscribe link belongs to the address it was mailed to", () => {
  it("a link mailed to the account's old address changes nothing once the account has moved to a new one", async () => {
    const u = await reader();
    const { oneClick: oldLink, subject } = await mentionLinks(u, "Mention at the old address");
    const newAddress = `${uniqueName("moved")}@example.com`;
    await changeEmail(u, newAddress);

    // Whoever still reads the old mailbox clicks: the answer is as for any link (nothing revealed)...
    expect((await oneClick(oldLink)).status).toBe(200);
    // ...but the account, now mailed elsewhere, still gets its mention email.
    expect((await getPreferences(env, u.userId)).types.forum_mention.email).toBe(true);
    // Nor does writing to the mailto: of that old mail.
    await unsubscribeByMail(env, `Re: ${subject}`);
    expect((await getPreferences(env, u.userId)).types.forum_mention.email).toBe(true);

    // A link mailed to the new address works as ever.
    const newLink = await mentionLink({ userId: u.userId, email: newAddress }, "Mention at the new address");
    expect((await oneClick(newLink)).status).toBe(200);
    expect((await getPreferences(env, u.userId)).types.forum_mention.email).toBe(false);
  });

  it("the address is compared as mail treats it: the same address in another case still unsubscribes", async () => {
    const u = await reader();
    const link = await mentionLink(u, "Mention before a case change");
    await database(env).update(users).set({ email: u.email.toUpperCase() }).where(eq(users.id, u.userId));
    expect((await oneClick(link)).status).toBe(200);
    expect((await getPreferences(env, u.userId)).types.forum_mention.email).toBe(false);
  });
});
