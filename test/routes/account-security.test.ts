// The attacks of the security review, each replayed end to end through the Worker: account
// takeover through an unproven email, reset links that outlive what they were for, sessions that
// survive on WebSockets and in access tokens, cross-site WebSocket hijacking, rate-limit keys,
// and CSRF tokens that a tossed cookie could satisfy. Providers (OAuth, email) are the emulators.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hashPassword } from "../../src/services/passwords";
import { ipv4Mapped, ipv6Prefix64 } from "../../src/services/rate-limits";
import { getConfig } from "../../src/config";
import { uuidv7 } from "../../src/lib/ids";
import { issueTokenPair, purgeExpiredTokens } from "../../src/services/tokens";
import { createUser } from "../../src/services/users";
import { BASE, call, expectError, fetchStaging, freshIp, setCookies } from "../helpers/http";
import { createOAuthEmulators, githubIdentity, googleIdentity, oauthSignIn } from "../helpers/oauth";
import { mailTo as mailToIn, tokenIn } from "../helpers/mail";
import { useEmulators } from "../helpers/outbound";
import { eventually } from "../helpers/wait";
import { bearerUser, GOOD_PASSWORD, registerWeb, tokenLogin, uniqueName } from "../helpers/users";

const oauth = createOAuthEmulators();
const emulators = useEmulators({ overrides: oauth.hosts });

const mailTo = (address: string, subject: RegExp) => mailToIn(emulators.email, address, subject);
async function resetTokenFor(address: string): Promise<string> {
  const before = emulators.email.outbox.length;
  expect((await call("/api/v1/auth/password/reset/", { json: { email: address } })).status).toBe(200);
  const mail = await eventually(() => emulators.email.outbox.slice(before).find((m) => m.to.includes(address) && /Reset/.test(m.subject)));
  return tokenIn(mail.text, "Reset token");
}
const confirmReset = (token: string, password = "Brand-New-Bramble-9") =>
  call("/api/v1/auth/password/reset/confirm/", { json: { token, new_password: password } });
const profile = async (bearer: string) => (await (await call("/api/v1/auth/user/", { bearer })).json()) as Record<string, unknown>;

interface OpenSocket {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  closed: Promise<{ code: number; reason: string; at: number }>;
  isOpen: () => boolean;
}

/** Opens a socket with whatever credentials and headers; returns the raw response if refused. */
async function upgrade(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch(new Request(`${BASE}${path}`, { headers: { Upgrade: "websocket", ...headers } }));
}
async function socket(path: string, headers: Record<string, string>): Promise<OpenSocket> {
  const res = await upgrade(path, headers);
  expect(res.status, res.status === 101 ? "" : await res.text()).toBe(101);
  const ws = res.webSocket!;
  const messages: Record<string, unknown>[] = [];
  let open = true;
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    ws.addEventListener("close", (e) => {
      open = false;
      resolve({ code: e.code, reason: e.reason, at: Date.now() });
    }),
  );
  ws.addEventListener("message", (e) => messages.push(e.data === "pong" ? { type: "pong" } : JSON.parse(e.data as string)));
  ws.accept();
  await eventually(() => messages.find((m) => m.type === "init"));
  return { ws, messages, closed, isOpen: () => open };
}
const bearerSocket = (access: string) => socket("/ws/", { Authorization: `Bearer ${access}` });

/** Closed with 4401 soon after `since` — long before any access token would expire. */
async function expectClosedBySignOut(s: OpenSocket, since: number) {
  const closed = await Promise.race([s.closed, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
  expect(closed, "socket was not closed").not.toBeNull();
  expect(closed!.code).toBe(4401);
  expect(closed!.at).toBeGreaterThanOrEqual(since);
}
/** Still open and served: a ping gets its pong. */
async function expectStillOpen(s: OpenSocket) {
  const pongs = s.messages.filter((m) => m.type === "pong").length;
  s.ws.send("ping");
  await eventually(() => s.messages.filter((m) => m.type === "pong").length > pongs || null);
  expect(s.isOpen()).toBe(true);
}

// ---------------------------------------------------------------------------------------------

describe("account takeover through an unproven email", () => {
  it("(a) an email change claims nothing until the new address confirms: the victim registers, resets and signs in to their own account", async () => {
    const attacker = await bearerUser();
    const victimEmail = `${uniqueName("victim")}@example.com`;

    const patched = await call("/api/v1/auth/user/", {
      method: "PATCH",
      bearer: attacker.access,
      json: { email: victimEmail, current_password: GOOD_PASSWORD },
    });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ email: attacker.email, pending_email: victimEmail });
    // The new address is asked to confirm; the current one is told.
    const confirmation = await mailTo(victimEmail, /Confirm your new/);
    await mailTo(attacker.email, /change of your .* email address was requested/);

    // The attacker cannot sign in with it, and a reset for it reaches nobody.
    await expectError(
      await call("/api/v1/auth/token/", { json: { email: victimEmail, password: GOOD_PASSWORD } }),
      401,
      "INVALID_CREDENTIALS",
    );
    expect((await call("/api/v1/auth/password/reset/", { json: { email: victimEmail } })).status).toBe(200);

    // The address is not "taken": the victim registers with it.
    const victim = await registerWeb({ email: victimEmail, password: "Victims-First-Ivy-30" });
    expect(victim.userId).not.toBe(attacker.userId);

    // A reset for the address reaches the victim's account, not the attacker's.
    expect((await confirmReset(await resetTokenFor(victimEmail), "Victims-Own-Ivy-31")).status).toBe(200);
    const signedIn = await tokenLogin(victimEmail, "Victims-Own-Ivy-31");
    expect((await profile(signedIn.access)).id).toBe(victim.userId);
    // The attacker's password is untouched by the victim's reset.
    expect((await tokenLogin(attacker.username)).access).toBeTruthy();

    // The link the attacker asked for arrives too late: the address has an owner now.
    const late = await call("/api/v1/auth/email/confirm/", { json: { token: tokenIn(confirmation.text, "Confirmation token") } });
    await expectError(late, 409, "EMAIL_TAKEN");
    expect((await profile(attacker.access)).email).toBe(attacker.email);
  });

  it("(b) GitHub link + reset token + email change, then the victim's first Google sign-in: the victim gets an account of their own", async () => {
    const attackerEmail = `${uniqueName("mallory")}@example.com`;
    oauth.github.setNextUser(githubIdentity(attackerEmail));
    const attackerSignIn = await oauthSignIn("github", oauth.github);
    expect(attackerSignIn.location.searchParams.get("success")).toBe("true");
    const attacker = await profile(attackerSignIn.access!);
    const attackerReset = await resetTokenFor(attackerEmail);

    const victimEmail = `${uniqueName("victim")}@example.com`;
    const patched = await call("/api/v1/auth/user/", { method: "PATCH", bearer: attackerSignIn.access!, json: { email: victimEmail } });
    expect(await patched.json()).toMatchObject({ email: attackerEmail, pending_email: victimEmail });

    oauth.google.setNextUser(googleIdentity({ email: victimEmail, emailVerified: true }));
    const victimSignIn = await oauthSignIn("google", oauth.google);
    expect(victimSignIn.location.searchParams.get("success")).toBe("true");
    const victim = await profile(victimSignIn.access!);
    expect(victim.id).not.toBe(attacker.id);
    expect(victim).toMatchObject({ email: victimEmail, email_verified: true });

    // Neither of the attacker's ways in reaches the victim's account.
    const links = await env.DB.prepare("SELECT provider FROM oauth_accounts WHERE user_id = ?").bind(victim.id).all<{ provider: string }>();
    expect(links.results.map((r) => r.provider)).toEqual(["google"]);
    expect((await confirmReset(attackerReset)).status).toBe(200);
    const viaReset = await tokenLogin(attackerEmail, "Brand-New-Bramble-9");
    expect((await profile(viaReset.access)).id).toBe(attacker.id);
  });

  it("a verified provider taking over an unverified account removes every other way in: password, links, sessions, sockets, reset links", async () => {
    // Set up as the old code allowed: the attacker's account holds the victim's address, unproven,
    // with a password, a GitHub link, a live session with a socket and an outstanding reset link.
    const victimEmail = `${uniqueName("victim")}@example.com`;
    const attacker = await createUser(env, {
      username: uniqueName("squatter"),
      email: victimEmail,
      passwordHash: await hashPassword(GOOD_PASSWORD),
    });
    await env.DB.prepare("INSERT INTO oauth_accounts (id, user_id, provider, provider_user_id, email) VALUES (?, ?, 'github', ?, ?)")
      .bind(crypto.randomUUID(), attacker.id, `gh-${attacker.id}`, "mallory@example.com")
      .run();
    const resetToken = await resetTokenFor(victimEmail);
    const session = await tokenLogin(attacker.username);
    const ws = await bearerSocket(session.access);

    oauth.google.setNextUser(googleIdentity({ email: victimEmail, emailVerified: true }));
    const started = Date.now();
    const victimSignIn = await oauthSignIn("google", oauth.google);
    expect(victimSignIn.location.searchParams.get("success")).toBe("true");
    const victim = await profile(victimSignIn.access!);
    expect(victim.id).toBe(attacker.id);

    await expectClosedBySignOut(ws, started);
    await expectError(await call("/api/v1/auth/user/", { bearer: session.access }), 401, "TOKEN_INVALID");
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: session.refresh } })).status).toBe(401);
    await expectError(
      await call("/api/v1/auth/token/", { json: { username: attacker.username, password: GOOD_PASSWORD } }),
      401,
      "INVALID_CREDENTIALS",
    );
    await expectError(await confirmReset(resetToken), 400, "INVALID_TOKEN");
    const links = await env.DB.prepare("SELECT provider FROM oauth_accounts WHERE user_id = ?")
      .bind(attacker.id)
      .all<{ provider: string }>();
    expect(links.results.map((r) => r.provider)).toEqual(["google"]);
    // The new owner's own session works.
    expect((await call("/api/v1/auth/user/", { cookies: { access_token: victimSignIn.access! } })).status).toBe(200);
  });

  it("a reset on an account whose address was never proven proves it, and removes linked providers and every session", async () => {
    const owner = await bearerUser();
    await env.DB.prepare("INSERT INTO oauth_accounts (id, user_id, provider, provider_user_id, email) VALUES (?, ?, 'github', ?, ?)")
      .bind(crypto.randomUUID(), owner.userId, `gh-${owner.userId}`, "someone-else@example.com")
      .run();
    const ws = await bearerSocket(owner.access);
    const started = Date.now();
    expect((await confirmReset(await resetTokenFor(owner.email))).status).toBe(200);
    await expectClosedBySignOut(ws, started);
    const row = await env.DB.prepare(
      "SELECT email_verified, (SELECT count(*) FROM oauth_accounts WHERE user_id = users.id) AS links FROM users WHERE id = ?",
    )
      .bind(owner.userId)
      .first<{ email_verified: number; links: number }>();
    expect(row).toEqual({ email_verified: 1, links: 0 });
  });

  it("a confirmed email change applies once, marks the address verified and kills reset links", async () => {
    const u = await bearerUser();
    const oldReset = await resetTokenFor(u.email);
    const newEmail = `${uniqueName("moved")}@example.com`;
    await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, json: { email: newEmail, current_password: GOOD_PASSWORD } });
    const token = tokenIn((await mailTo(newEmail, /Confirm your new/)).text, "Confirmation token");

    const ok = await call("/api/v1/auth/email/confirm/", { json: { token } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ email: newEmail });
    expect(await profile(u.access)).toMatchObject({ email: newEmail, email_verified: true, pending_email: null });
    await expectError(await confirmReset(oldReset), 400, "INVALID_TOKEN");
    // The old address is free again and signs nobody in.
    await expectError(await call("/api/v1/auth/token/", { json: { email: u.email, password: GOOD_PASSWORD } }), 401, "INVALID_CREDENTIALS");
    expect((await tokenLogin(newEmail)).access).toBeTruthy();
  });

  // A phone whose answer was lost sends the link again; a mail scanner that runs the page's script
  // may send it before its owner clicks. Both found "invalid or has expired" for a change that had
  // happened. A used link answers as it did while its change stands, and does nothing again.
  it("a used email-change link sent again answers as before and changes nothing; once the account moved on, it is refused", async () => {
    const u = await bearerUser();
    const newEmail = `${uniqueName("moved")}@example.com`;
    const change = (email: string) =>
      call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, json: { email, current_password: GOOD_PASSWORD } });
    await change(newEmail);
    const token = tokenIn((await mailTo(newEmail, /Confirm your new/)).text, "Confirmation token");
    const confirm = () => call("/api/v1/auth/email/confirm/", { json: { token } });
    const first = await confirm();
    expect(first.status).toBe(200);
    const answer = await first.json();

    const again = await confirm();
    expect(again.status, await again.clone().text()).toBe(200);
    expect(await again.json()).toEqual(answer);
    expect(await profile(u.access)).toMatchObject({ email: newEmail, email_verified: true, pending_email: null });

    // The account moves on to a third address: the old link confirms nothing and says so.
    const third = `${uniqueName("third")}@example.com`;
    await change(third);
    const thirdToken = tokenIn((await mailTo(third, /Confirm your new/)).text, "Confirmation token");
    expect((await call("/api/v1/auth/email/confirm/", { json: { token: thirdToken } })).status).toBe(200);
    await expectError(await confirm(), 400, "INVALID_TOKEN");
    expect(await profile(u.access)).toMatchObject({ email: third, email_verified: true });
    // Nor does it once its lifetime is over.
    await env.DB.prepare("UPDATE email_change_tokens SET expires_at = unixepoch() - 1 WHERE user_id = ?").bind(u.userId).run();
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token: thirdToken } }), 400, "INVALID_TOKEN");
  });

  it("only the newest email-change link is valid, and asking for the current address cancels it", async () => {
    const u = await bearerUser();
    const first = `${uniqueName("first")}@example.com`;
    const second = `${uniqueName("second")}@example.com`;
    await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, json: { email: first, current_password: GOOD_PASSWORD } });
    const firstToken = tokenIn((await mailTo(first, /Confirm your new/)).text, "Confirmation token");
    await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, json: { email: second, current_password: GOOD_PASSWORD } });
    const secondToken = tokenIn((await mailTo(second, /Confirm your new/)).text, "Confirmation token");
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token: firstToken } }), 400, "INVALID_TOKEN");
    const cancel = await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, json: { email: u.email.toUpperCase() } });
    expect(await cancel.json()).toMatchObject({ email: u.email, pending_email: null });
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token: secondToken } }), 400, "INVALID_TOKEN");
  });

  it("a change whose link expired unconfirmed stops showing once housekeeping forgets the link; a live one stays", async () => {
    const expired = await bearerUser();
    const waiting = await bearerUser();
    const gone = `${uniqueName("expired")}@example.com`;
    const live = `${uniqueName("live")}@example.com`;
    for (const [u, to] of [
      [expired, gone],
      [waiting, live],
    ] as const) {
      const asked = await call("/api/v1/auth/user/", {
        method: "PATCH",
        bearer: u.access,
        json: { email: to, current_password: GOOD_PASSWORD },
      });
      expect(await asked.json()).toMatchObject({ pending_email: to });
    }
    const token = tokenIn((await mailTo(gone, /Confirm your new/)).text, "Confirmation token");
    await env.DB.prepare("UPDATE email_change_tokens SET expires_at = unixepoch() - 1 WHERE user_id = ?").bind(expired.userId).run();
    await purgeExpiredTokens(env);
    expect(await profile(expired.access)).toMatchObject({ email: expired.email, pending_email: null });
    expect(await profile(waiting.access)).toMatchObject({ email: waiting.email, pending_email: live });
    await expectError(await call("/api/v1/auth/email/confirm/", { json: { token } }), 400, "INVALID_TOKEN");
  });
});

describe("password reset links", () => {
  it("only the newest is valid", async () => {
    const u = await registerWeb();
    const older = await resetTokenFor(u.email);
    const newer = await resetTokenFor(u.email);
    await expectError(await confirmReset(older), 400, "INVALID_TOKEN");
    expect((await confirmReset(newer)).status).toBe(200);
  });

  it("die when the password is changed", async () => {
    const u = await bearerUser();
    const token = await resetTokenFor(u.email);
    const changed = await call("/api/v1/auth/password/change/", {
      bearer: u.access,
      json: { old_password: GOOD_PASSWORD, new_password: "Another-Fine-Fern-77" },
    });
    expect(changed.status).toBe(200);
    await expectError(await confirmReset(token), 400, "INVALID_TOKEN");
  });

  it("two concurrent uses of one link: exactly one sets its password", async () => {
    const u = await registerWeb();
    const token = await resetTokenFor(u.email);
    const answers = await Promise.all([confirmReset(token, "First-Racer-Fern-11"), confirmReset(token, "Second-Racer-Fern-22")]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 400]);
    const winner = answers[0]!.status === 200 ? "First-Racer-Fern-11" : "Second-Racer-Fern-22";
    const loser = winner === "First-Racer-Fern-11" ? "Second-Racer-Fern-22" : "First-Racer-Fern-11";
    expect((await call("/api/v1/auth/token/", { json: { username: u.username, password: winner } })).status).toBe(200);
    expect((await call("/api/v1/auth/token/", { json: { username: u.username, password: loser } })).status).toBe(401);
  });
});

describe("ending a session reaches its sockets and its access tokens", () => {
  it("sign-out closes this session's sockets (4401) within a second and refuses its tokens; another session is untouched", async () => {
    const u = await bearerUser();
    const other = await tokenLogin(u.username);
    const mine = await bearerSocket(u.access);
    const theirs = await bearerSocket(other.access);

    const started = Date.now();
    expect((await call("/api/v1/auth/logout/", { method: "POST", bearer: u.access, json: { refresh: u.refresh } })).status).toBe(200);
    await expectClosedBySignOut(mine, started);
    await expectStillOpen(theirs);
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: u.refresh } })).status).toBe(401);
    expect((await call("/api/v1/auth/user/", { bearer: other.access })).status).toBe(200);
  });

  it("sign-out revokes every access token of the session, not only the one presented", async () => {
    const u = await bearerUser();
    const refreshed = (await (await call("/api/v1/auth/token/refresh/", { json: { refresh: u.refresh } })).json()) as {
      access: string;
      refresh: string;
    };
    // Sign out with the newer token; the older access token of the same session must stop too.
    expect((await call("/api/v1/auth/logout/", { method: "POST", bearer: refreshed.access })).status).toBe(200);
    await expectError(await call("/api/v1/auth/user/", { bearer: u.access }), 401, "TOKEN_INVALID");
    expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: refreshed.refresh } })).status).toBe(401);
  });

  it("sign-out everywhere closes every socket and refuses every token", async () => {
    const u = await bearerUser();
    const other = await tokenLogin(u.username);
    const sockets = [await bearerSocket(u.access), await bearerSocket(other.access)];
    const started = Date.now();
    expect((await call("/api/v1/auth/logout-all/", { method: "POST", bearer: u.access })).status).toBe(200);
    for (const s of sockets) await expectClosedBySignOut(s, started);
    for (const t of [u, other]) {
      expect((await call("/api/v1/auth/user/", { bearer: t.access })).status).toBe(401);
      expect((await call("/api/v1/auth/token/refresh/", { json: { refresh: t.refresh } })).status).toBe(401);
    }
  });

  it("a password change closes every socket (the caller's too) and the caller continues with the returned pair", async () => {
    const u = await bearerUser();
    const other = await tokenLogin(u.username);
    const mine = await bearerSocket(u.access);
    const theirs = await bearerSocket(other.access);
    const started = Date.now();
    const changed = await call("/api/v1/auth/password/change/", {
      bearer: u.access,
      json: { old_password: GOOD_PASSWORD, new_password: "Another-Fine-Fern-77" },
    });
    expect(changed.status).toBe(200);
    await expectClosedBySignOut(theirs, started);
    // A thief's socket opened with a token of the caller's own session must not survive either.
    await expectClosedBySignOut(mine, started);
    const fresh = (await changed.json()) as { access: string };
    expect((await call("/api/v1/auth/user/", { bearer: fresh.access })).status).toBe(200);
    await expectStillOpen(await bearerSocket(fresh.access));
    await expectError(await call("/api/v1/auth/user/", { bearer: u.access }), 401, "TOKEN_INVALID");
  });

  it("an email change needs the current password on an account that has one", async () => {
    const u = await bearerUser();
    const to = `${uniqueName("elsewhere")}@example.com`;
    const missing = await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, json: { email: to } });
    expect((await expectError(missing, 400, "VALIDATION_ERROR")).errors?.current_password).toBeDefined();
    const wrong = await call("/api/v1/auth/user/", {
      method: "PATCH",
      bearer: u.access,
      json: { email: to, current_password: "Not-The-Password-1" },
    });
    expect((await expectError(wrong, 400, "VALIDATION_ERROR")).errors?.current_password).toBeDefined();
    expect(await profile(u.access)).toMatchObject({ email: u.email, pending_email: null });
  });

  it("a refresh token reused after the window revokes its family: sockets close and its access tokens stop at once", async () => {
    const u = await bearerUser();
    const rotated = (await (await call("/api/v1/auth/token/refresh/", { json: { refresh: u.refresh } })).json()) as {
      access: string;
      refresh: string;
    };
    const ws = await bearerSocket(rotated.access);
    await env.DB.prepare("UPDATE refresh_tokens SET revoked_at = revoked_at - 90 WHERE user_id = ? AND revoked_at IS NOT NULL")
      .bind(u.userId)
      .run();
    const started = Date.now();
    await expectError(await call("/api/v1/auth/token/refresh/", { json: { refresh: u.refresh } }), 401, "TOKEN_REUSED");
    await expectClosedBySignOut(ws, started);
    await expectError(await call("/api/v1/auth/user/", { bearer: rotated.access }), 401, "TOKEN_INVALID");
  });

  it("two tabs refreshing with one token at once both get the same new pair, and stay signed in", async () => {
    const s = await registerWeb();
    const login = setCookies(await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD } }));
    const jar = { refresh_token: login.refresh_token!.value, csrftoken: login.csrftoken!.value };
    const tab = () => call("/api/v1/auth/token/refresh/", { method: "POST", cookies: jar, headers: { "X-CSRFToken": jar.csrftoken } });
    const [a, b] = await Promise.all([tab(), tab()]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const [ca, cb] = [setCookies(a), setCookies(b)];
    expect(ca.refresh_token!.value).toBe(cb.refresh_token!.value);
    expect(ca.access_token!.value).toBe(cb.access_token!.value);
    expect(ca.refresh_token!.value).not.toBe(jar.refresh_token);
    // A third tab a moment later still gets that pair; the pair keeps working and rotates on.
    const c = setCookies(await tab());
    expect(c.refresh_token!.value).toBe(ca.refresh_token!.value);
    expect((await call("/api/v1/auth/user/", { cookies: { access_token: ca.access_token!.value } })).status).toBe(200);
    const next = await call("/api/v1/auth/token/refresh/", { json: { refresh: ca.refresh_token!.value } });
    expect(next.status).toBe(200);
    // Once the replacement has itself been used, the first token is theft even inside the window.
    await expectError(await tab(), 401, "TOKEN_REUSED");
  });

  it("deactivating an account closes its sockets and refuses its tokens and sign-ins", async () => {
    const admin = await bearerUser();
    await env.DB.prepare("UPDATE users SET role = 'admin' WHERE id = ?").bind(admin.userId).run();
    const u = await bearerUser();
    const ws = await bearerSocket(u.access);
    const started = Date.now();
    const res = await call(`/api/v1/admin/users/${u.userId}/active/`, {
      method: "PATCH",
      bearer: admin.access,
      json: { is_active: false },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    await expectClosedBySignOut(ws, started);
    expect((await call("/api/v1/auth/user/", { bearer: u.access })).status).toBe(401);
    await expectError(
      await call("/api/v1/auth/token/", { json: { username: u.username, password: GOOD_PASSWORD } }),
      401,
      "INVALID_CREDENTIALS",
    );
    // Only admins may, and not on themselves.
    await expectError(
      await call(`/api/v1/admin/users/${admin.userId}/active/`, {
        method: "PATCH",
        bearer: (await bearerUser()).access,
        json: { is_active: false },
      }),
      403,
      "FORBIDDEN",
    );
    await expectError(
      await call(`/api/v1/admin/users/${admin.userId}/active/`, { method: "PATCH", bearer: admin.access, json: { is_active: false } }),
      400,
      "VALIDATION_ERROR",
    );
    const back = await call(`/api/v1/admin/users/${u.userId}/active/`, {
      method: "PATCH",
      bearer: admin.access,
      json: { is_active: true },
    });
    expect(back.status).toBe(200);
    expect((await tokenLogin(u.username)).access).toBeTruthy();
  });

  it("a socket opened with a ticket belongs to the session that asked for the ticket", async () => {
    const u = await bearerUser();
    const other = await tokenLogin(u.username);
    const ticketOf = async (access: string) =>
      ((await (await call("/api/v1/auth/ws-ticket/", { method: "POST", bearer: access })).json()) as { ticket: string }).ticket;
    const mine = await socket(`/ws/?ticket=${await ticketOf(u.access)}`, {});
    const theirs = await socket(`/ws/?ticket=${await ticketOf(other.access)}`, {});
    const started = Date.now();
    await call("/api/v1/auth/logout/", { method: "POST", bearer: u.access });
    await expectClosedBySignOut(mine, started);
    await expectStillOpen(theirs);
    // A ticket of an ended session opens nothing.
    const stale = await ticketOf(other.access);
    await call("/api/v1/auth/logout/", { method: "POST", bearer: other.access });
    const late = await upgrade(`/ws/?ticket=${stale}`);
    expect(late.status).toBe(101);
    const ws = late.webSocket!;
    const closed = new Promise<number>((r) => ws.addEventListener("close", (e) => r(e.code)));
    ws.accept();
    expect(await closed).toBe(4401);
  });
});

describe("WebSocket Origin", () => {
  it("a bearer upgrade from any Origin is served (it used to be a 500)", async () => {
    const u = await bearerUser();
    const s = await socket("/ws/", { Authorization: `Bearer ${u.access}`, Origin: "https://evil.example" });
    await expectStillOpen(s);
  });

  it("a cookie upgrade from a foreign Origin is refused with 403; this site and allowed clients are served", async () => {
    const s = await registerWeb();
    const cookie = `access_token=${s.cookies.access_token}`;
    const refused = await upgrade("/ws/", { Cookie: cookie, Origin: "https://evil.example" });
    await expectError(refused, 403, "FORBIDDEN");
    for (const origin of [BASE, "http://localhost:5173"]) {
      const ok = await socket("/ws/", { Cookie: cookie, Origin: origin });
      await expectStillOpen(ok);
    }
  });

  it("a ticket upgrade from a foreign Origin is refused without spending the ticket", async () => {
    const u = await bearerUser();
    const { ticket } = (await (await call("/api/v1/auth/ws-ticket/", { method: "POST", bearer: u.access })).json()) as { ticket: string };
    await expectError(await upgrade(`/ws/?ticket=${ticket}`, { Origin: "https://evil.example" }), 403, "FORBIDDEN");
    const ok = await socket(`/ws/?ticket=${ticket}`, { Origin: "http://localhost:5173" });
    await expectStillOpen(ok);
  });
});

describe("rate-limit keys", () => {
  it.each([
    ["2001:db8:a:b:1:2:3:4", "2001:db8:a:b::/64"],
    ["2001:DB8:A:B::1", "2001:db8:a:b::/64"],
    ["[2001:db8::1]", "2001:db8:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["::ffff:192.0.2.1", "0:0:0:0::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["2001:db8::1::2", null],
    ["not-an-address", null],
  ])("%s is keyed as %s", (address, key) => {
    expect(ipv6Prefix64(address)).toBe(key);
  });

  it.each([
    ["::ffff:192.0.2.1", "192.0.2.1"],
    ["[::FFFF:198.51.100.7]", "198.51.100.7"],
    ["0:0:0:0:0:ffff:203.0.113.9", "203.0.113.9"],
    ["::ffff:c000:201", "192.0.2.1"],
    ["::ffff:999.0.0.1", null],
    ["2001:db8::ffff:192.0.2.1", null],
    ["::1", null],
  ])("an IPv4 client written as IPv6, %s, is keyed as its IPv4 address %s", (address, v4) => {
    expect(ipv4Mapped(address)).toBe(v4);
  });

  it("IPv4 clients written as IPv6 do not share one bucket (they were all ::/64)", async () => {
    const s = await registerWeb();
    const octet = () => 1 + Math.floor(Math.random() * 250);
    const net = `198.${octet()}.${octet()}`;
    for (let i = 1; i <= 5; i++) {
      const res = await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD }, ip: `::ffff:${net}.${i}` });
      expect(res.status, `client ${i}`).toBe(200);
    }
    // A sixth client, another IPv4 address, is not refused for the others' attempts.
    const sixth = await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD }, ip: `::ffff:${net}.6` });
    expect(sixth.status).toBe(200);
  });

  it("IPv6 clients share one login bucket per /64", async () => {
    const s = await registerWeb();
    const prefix = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:${Math.floor(Math.random() * 0xffff).toString(16)}`;
    for (let i = 1; i <= 5; i++) {
      const res = await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD }, ip: `${prefix}::${i}` });
      expect(res.status, `attempt ${i}`).toBe(200);
    }
    await expectError(
      await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD }, ip: `${prefix}:ffff:ffff:ffff:ffff` }),
      429,
      "RATE_LIMITED",
    );
    // The next /64 is another subscriber.
    const neighbour = await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD }, ip: `2001:db9::1` });
    expect(neighbour.status).toBe(200);
  });

  it("one lockout bucket per account, whether the username or the email is typed, in any case (a name that did not lock it answers as a wrong password)", async () => {
    const s = await registerWeb();
    const typed = [s.username, s.email, s.username.toUpperCase(), s.email.toUpperCase()];
    for (let i = 0; i < 10; i++) {
      const identifier = typed[i % typed.length]!;
      const res = await call("/api/v1/auth/login/", { json: { username: identifier, password: `Wrong-Password-${i}` } });
      expect(res.status, `failure ${i + 1}`).toBe(401);
    }
    // Ten failures for the account, five for each name: locked, and no name says so (helper-65).
    for (const identifier of typed) {
      await expectError(
        await call("/api/v1/auth/login/", { json: { username: identifier, password: GOOD_PASSWORD } }),
        401,
        "INVALID_CREDENTIALS",
      );
    }
  });

  it("a password reset lifts a lockout: the owner signs in with the new password at once (helper-45)", async () => {
    const s = await registerWeb();
    for (let i = 0; i < 10; i++) {
      expect((await call("/api/v1/auth/login/", { json: { username: s.username, password: `Wrong-Password-${i}` } })).status).toBe(401);
    }
    await expectError(
      await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD } }),
      429,
      "ACCOUNT_LOCKED",
    );
    expect((await confirmReset(await resetTokenFor(s.email), "Fresh-Start-Fern-42")).status).toBe(200);
    expect((await call("/api/v1/auth/login/", { json: { username: s.username, password: "Fresh-Start-Fern-42" } })).status).toBe(200);
    // The old password is no key after the reset, and failures count again from zero.
    expect((await call("/api/v1/auth/login/", { json: { username: s.username, password: GOOD_PASSWORD } })).status).toBe(401);
  });

  it("lockout answers the same for a real account and an unknown name, attempt by attempt", async () => {
    const real = await registerWeb();
    const ghost = uniqueName("ghost");
    const answers = async (username: string) => {
      const out: unknown[] = [];
      for (let i = 0; i < 11; i++) {
        const res = await call("/api/v1/auth/login/", { json: { username, password: "Wrong-Password-123" } });
        const body = (await res.json()) as Record<string, unknown>;
        out.push({ status: res.status, code: body.code, message: body.message, retry: res.headers.has("Retry-After") });
      }
      return out;
    };
    const [a, b] = [await answers(real.username), await answers(ghost)];
    expect(a).toEqual(b);
    expect((a[10] as { code: string }).code).toBe("ACCOUNT_LOCKED");
  });

  it("an account without a password changes its email only from a session begun in the last 10 minutes (a stolen, refreshed token is not enough)", async () => {
    const u = await registerWeb();
    await env.DB.prepare("UPDATE users SET password_hash = NULL WHERE id = ?").bind(u.userId).run(); // signs in through a provider only
    const config = getConfig(env);
    const old = await issueTokenPair(env, config, u.userId, null, uuidv7(Date.now() - 11 * 60_000));
    const attempt = await call("/api/v1/auth/user/", {
      method: "PATCH",
      bearer: old.access,
      json: { email: `${uniqueName("thief")}@example.com` },
    });
    await expectError(attempt, 403, "FORBIDDEN");
    expect((await profile(old.access)).pending_email ?? null).toBeNull();

    const fresh = await issueTokenPair(env, config, u.userId, null);
    const mine = `${uniqueName("moved")}@example.com`;
    expect((await call("/api/v1/auth/user/", { method: "PATCH", bearer: fresh.access, json: { email: mine } })).status).toBe(200);
    expect((await profile(fresh.access)).pending_email).toBe(mine);
  });

  it("a stolen session cannot guess the password through the change forms: the guesses lock the account and its owner is told", async () => {
    const u = await bearerUser();
    const before = emulators.email.outbox.length;
    const guess = (i: number) =>
      i % 2 === 0
        ? call("/api/v1/auth/password/change/", {
            bearer: u.access,
            json: { old_password: `Wrong-Guess-${i}`, new_password: "Thief-Chosen-Pass-1" },
          })
        : call("/api/v1/auth/user/", {
            method: "PATCH",
            bearer: u.access,
            json: { email: `${uniqueName("thief")}@example.com`, current_password: `Wrong-Guess-${i}` },
          });
    for (let i = 0; i < 10; i++) expect((await guess(i)).status, `guess ${i + 1}`).toBe(400);
    // Locked now: even the right password is refused, through either form and at sign-in.
    await expectError(
      await call("/api/v1/auth/password/change/", {
        bearer: u.access,
        json: { old_password: GOOD_PASSWORD, new_password: "Thief-Chosen-Pass-1" },
      }),
      429,
      "ACCOUNT_LOCKED",
    );
    // At sign-in too, answered as a wrong password: no name locked it (helper-65).
    await expectError(
      await call("/api/v1/auth/token/", { json: { username: u.username, password: GOOD_PASSWORD } }),
      401,
      "INVALID_CREDENTIALS",
    );
    await eventually(() => emulators.email.outbox.slice(before).find((m) => m.to.includes(u.email) && /lock/i.test(m.subject + m.text)));
  });

  it("a right password through the change form clears the failures before it", async () => {
    const u = await bearerUser();
    for (let i = 0; i < 9; i++) {
      const wrong = await call("/api/v1/auth/password/change/", {
        bearer: u.access,
        json: { old_password: `Wrong-${i}`, new_password: "Owner-New-Pass-77" },
      });
      expect(wrong.status).toBe(400);
    }
    const right = await call("/api/v1/auth/password/change/", {
      bearer: u.access,
      json: { old_password: GOOD_PASSWORD, new_password: "Owner-New-Pass-77" },
    });
    expect(right.status).toBe(200);
    // Uncleared, the nine would lock the account at the next failure and refuse the one after.
    for (let i = 0; i < 2; i++) {
      expect((await call("/api/v1/auth/token/", { json: { username: u.username, password: `Wrong-again-${i}` } })).status).toBe(401);
    }
  });

  it("a username with an @ in it can sign in by that username", async () => {
    const name = `${uniqueName("at")}@garden`;
    const s = await registerWeb({ username: name, email: `${uniqueName("plain")}@example.com` });
    expect((await tokenLogin(name)).access).toBeTruthy();
    expect((await tokenLogin(s.email)).access).toBeTruthy();
  });

  it("an email-shaped username is nobody else's email, nor the other way round: a sign-in name cannot be taken (helper-45)", async () => {
    // Before, registering the victim's username as one's own (unproven) email made the victim's
    // username and password reach the new account (an email wins the sign-in lookup): 401 for good.
    // New usernames may not be email addresses (below); one from before that rule, as the Django
    // system allowed, is made directly.
    const victimName = `${uniqueName("carol")}@gmail.com`;
    const victim = await createUser(env, {
      username: victimName,
      email: `${uniqueName("carolreal")}@example.com`,
      passwordHash: await hashPassword(GOOD_PASSWORD),
    });
    const taken = await expectError(
      await call("/api/v1/auth/register/", {
        json: { username: uniqueName("mallory"), email: victimName.toUpperCase(), password: "Mallory-Own-Pass-123" },
        ip: freshIp(),
      }),
      400,
      "VALIDATION_ERROR",
    );
    expect(Object.keys(taken.errors ?? {})).toEqual(["email"]);
    // Nor by changing an existing account's email to it.
    const mallory = await bearerUser();
    await expectError(
      await call("/api/v1/auth/user/", {
        method: "PATCH",
        bearer: mallory.access,
        json: { email: victimName, current_password: GOOD_PASSWORD },
      }),
      400,
      "VALIDATION_ERROR",
    );
    expect((await tokenLogin(victimName)).access).toBeTruthy();
    // And no new username may be an email address at all (review helper-49): one could be held in
    // advance to keep that address's owner from signing up with it.
    for (const name of [victim.email, `${uniqueName("target")}@gmail.com`, `${uniqueName("target")}@example.xn--p1ai`]) {
      const byName = await expectError(
        await call("/api/v1/auth/register/", {
          json: { username: name, email: `${uniqueName("other")}@example.com`, password: "Mallory-Own-Pass-123" },
          ip: freshIp(),
        }),
        400,
        "VALIDATION_ERROR",
      );
      expect(Object.keys(byName.errors ?? {})).toEqual(["username"]);
    }
  });
});

describe("CSRF tokens bound to the session", () => {
  it("a matching cookie and header from another session, or an anonymous token, are refused", async () => {
    const alice = await registerWeb();
    const mallory = await registerWeb();
    const write = (cookies: Record<string, string>, csrf: string) =>
      call("/api/v1/plant-identification/collections/", { cookies, headers: { "X-CSRFToken": csrf }, json: { name: uniqueName("c") } });

    // Mallory's own pair, tossed into Alice's browser next to Alice's session cookie.
    await expectError(
      await write({ access_token: alice.cookies.access_token!, csrftoken: mallory.csrf }, mallory.csrf),
      403,
      "CSRF_FAILED",
    );
    // A fresh anonymous token from csrf/ does not fit a session either.
    const anon = ((await (await call("/api/v1/auth/csrf/")).json()) as { csrfToken: string }).csrfToken;
    await expectError(await write({ access_token: alice.cookies.access_token!, csrftoken: anon }, anon), 403, "CSRF_FAILED");
    // Alice's own works; csrf/ called with her session hands her that same token.
    expect((await write(alice.cookies, alice.csrf)).status).toBe(201);
    const mine = await call("/api/v1/auth/csrf/", { cookies: { access_token: alice.cookies.access_token! } });
    expect(((await mine.json()) as { csrfToken: string }).csrfToken).toBe(alice.csrf);
  });

  it("outside local development the cookie is __Host-csrftoken (Secure, Path=/, no Domain) and the plain name is ignored", async () => {
    const username = uniqueName("stager");
    const reg = await fetchStaging("/api/v1/auth/register/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, email: `${username}@example.com`, password: GOOD_PASSWORD }),
    });
    expect(reg.status, await reg.clone().text()).toBe(201);
    const cookies = setCookies(reg);
    expect(cookies.csrftoken).toBeUndefined();
    const csrf = cookies["__Host-csrftoken"]!;
    expect(csrf.attributes).toMatchObject({ secure: true, path: "/" });
    expect(csrf.attributes.domain).toBeUndefined();

    const write = (cookieName: string) =>
      fetchStaging("/api/v1/plant-identification/collections/", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf.value },
        cookies: { "__Host-access_token": cookies["__Host-access_token"]!.value, [cookieName]: csrf.value },
        body: JSON.stringify({ name: uniqueName("c") }),
      });
    await expectError(await write("csrftoken"), 403, "CSRF_FAILED");
    expect((await write("__Host-csrftoken")).status).toBe(201);
  });
});
