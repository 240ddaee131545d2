// Security review finding, fixed — this test keeps it fixed. The finding: a password change closes every socket *except the caller's session's*
// (changePassword → endEverySession keepSocketsOf: sid). Sockets are tagged only by session, not
// by access token, so a socket a thief opened with a stolen access token of the victim's own
// session survives the victim's password change, although that very token is now refused
// (tokens_valid_after). The thief keeps receiving the account's private events indefinitely.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BASE, call } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { eventually } from "../helpers/wait";
import { bearerUser, GOOD_PASSWORD } from "../helpers/users";

useEmulators();

describe("password change and the caller's own session", () => {
  it("a socket opened with a now-refused access token of the caller's session is closed", async () => {
    const victim = await bearerUser();
    const stolen = victim.access; // the thief holds a copy of the victim's current access token
    const res = await exports.default.fetch(
      new Request(`${BASE}/ws/`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${stolen}` } }),
    );
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    const messages: string[] = [];
    const closed = new Promise<number>((r) => ws.addEventListener("close", (e) => r(e.code)));
    ws.addEventListener("message", (e) => messages.push(e.data as string));
    ws.accept();
    await eventually(() => messages.length > 0 || null);

    const changed = await call("/api/v1/auth/password/change/", {
      bearer: victim.access,
      json: { old_password: GOOD_PASSWORD, new_password: "Another-Fine-Fern-77" },
    });
    expect(changed.status).toBe(200);
    // The stolen token is dead...
    expect((await call("/api/v1/auth/user/", { bearer: stolen })).status).toBe(401);
    // ...but the socket it opened is not.
    const code = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r("still open"), 10_000))]);
    expect(code).toBe(4401);
  });
});
