// Security review finding, fixed — this test keeps it fixed. The finding: WebSocket tickets outlive "end every session" (sign-out everywhere, password
// change, reset, provider takeover). consumeWsTicket only checks revoked_sessions (filled by a
// single-session sign-out) and is_active, never users.tokens_valid_after, and endEverySession
// neither deletes ws_tickets nor writes revoked_sessions. A ticket minted just before the event
// opens a fresh, indefinitely-lived socket afterwards, which no later sign-out closes.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hashPassword } from "../../src/services/passwords";
import { createUser } from "../../src/services/users";
import { BASE, call } from "../helpers/http";
import { createOAuthEmulators, googleIdentity, oauthSignIn } from "../helpers/oauth";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, GOOD_PASSWORD, tokenLogin, uniqueName } from "../helpers/users";

const oauth = createOAuthEmulators();
useEmulators({ overrides: oauth.hosts });

async function ticketOf(access: string): Promise<string> {
  const res = await call("/api/v1/auth/ws-ticket/", { method: "POST", bearer: access });
  expect(res.status).toBe(200);
  return ((await res.json()) as { ticket: string }).ticket;
}

/** Opens /ws/ with the ticket and reports what the socket did first: "init" (served) or a close code. */
async function firstEventWithTicket(ticket: string): Promise<string> {
  const res = await exports.default.fetch(new Request(`${BASE}/ws/?ticket=${ticket}`, { headers: { Upgrade: "websocket" } }));
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const first = new Promise<string>((resolve) => {
    ws.addEventListener("message", (e) => {
      const data = JSON.parse(e.data as string) as { type: string };
      resolve(data.type);
    });
    ws.addEventListener("close", (e) => resolve(`close:${e.code}`));
  });
  ws.accept();
  const outcome = await Promise.race([first, new Promise<string>((r) => setTimeout(() => r("timeout"), 10_000))]);
  try {
    ws.close(1000);
  } catch {
    // already closed
  }
  return outcome;
}

describe("WebSocket tickets survive the end of every session", () => {
  it("a ticket minted before sign-out-everywhere still opens a socket afterwards", async () => {
    const u = await bearerUser();
    const ticket = await ticketOf(u.access);
    expect((await call("/api/v1/auth/logout-all/", { method: "POST", bearer: u.access })).status).toBe(200);
    // Every token of the account is dead...
    expect((await call("/api/v1/auth/user/", { bearer: u.access })).status).toBe(401);
    // ...but the ticket still opens a private socket.
    expect(await firstEventWithTicket(ticket)).toBe("close:4401");
  });

  it("an intruder's ticket survives the victim's password change and opens a socket on the account", async () => {
    const victim = await bearerUser();
    const intruder = await tokenLogin(victim.username); // a stolen / second session
    const ticket = await ticketOf(intruder.access);
    const changed = await call("/api/v1/auth/password/change/", {
      bearer: victim.access,
      json: { old_password: GOOD_PASSWORD, new_password: "Another-Fine-Fern-77" },
    });
    expect(changed.status).toBe(200);
    expect((await call("/api/v1/auth/user/", { bearer: intruder.access })).status).toBe(401);
    expect(await firstEventWithTicket(ticket)).toBe("close:4401");
  });

  it("a squatter's ticket survives a verified provider taking the account over", async () => {
    const victimEmail = `${uniqueName("victim")}@example.com`;
    const squatter = await createUser(env, {
      username: uniqueName("squatter"),
      email: victimEmail,
      passwordHash: await hashPassword(GOOD_PASSWORD),
    });
    const session = await tokenLogin(squatter.username);
    const ticket = await ticketOf(session.access);

    oauth.google.setNextUser(googleIdentity({ email: victimEmail, emailVerified: true }));
    const victimSignIn = await oauthSignIn("google", oauth.google);
    expect(victimSignIn.location.searchParams.get("success")).toBe("true");
    expect((await call("/api/v1/auth/user/", { bearer: session.access })).status).toBe(401);
    // The squatter listens in on the account the victim now owns.
    expect(await firstEventWithTicket(ticket)).toBe("close:4401");
  });
});
