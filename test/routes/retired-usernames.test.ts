/**
 * A deleted account's username is retired for good, end to end through the Worker: its old forum
 * posts and blog comments still say "@alice" and clients link the name to a profile, so nobody
 * may take it after her — not by registering it in any case, not through a name derived at an
 * OAuth or Firebase sign-up — while the email address is free again at once.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createFirebaseEmulator } from "../../emulators/firebase";
import { sha256Hex } from "../../src/lib/hash";
import { createUser } from "../../src/services/users";
import { call, expectError, freshIp, jsonWithStatus as json } from "../helpers/http";
import { createOAuthEmulators, googleIdentity, oauthSignIn } from "../helpers/oauth";
import { useEmulators } from "../helpers/outbound";
import { envRacingFirstBatch } from "../helpers/racing-env";
import { bearerUser, GOOD_PASSWORD, registerWeb, tokenLogin, uniqueName } from "../helpers/users";

const oauth = createOAuthEmulators();
const firebase = createFirebaseEmulator({ projectId: env.FIREBASE_PROJECT_ID, keyId: "retired-usernames-firebase-key" });
useEmulators({ overrides: { ...oauth.hosts, "firebase.emulator.test": (req) => firebase.handle(req) } });

type User = Awaited<ReturnType<typeof bearerUser>>;

const deleteOwn = async (u: { access: string }) =>
  json(await call("/api/v1/auth/user/delete/", { bearer: u.access, json: { current_password: GOOD_PASSWORD } }), 200);
const register = (username: string, email = `${uniqueName("new")}@example.com`) =>
  call("/api/v1/auth/register/", { json: { username, email, password: GOOD_PASSWORD } });

/** Registration refuses `username` with a 400 naming the field, saying nothing of whose it was. */
async function expectNotAvailable(res: Response) {
  const body = await expectError(res, 400, "VALIDATION_ERROR");
  expect(body.errors).toEqual({ username: ["This username is not available."] });
}

async function adminUser(): Promise<User> {
  const admin = await bearerUser();
  await env.DB.prepare("UPDATE users SET role = 'admin' WHERE id = ?").bind(admin.userId).run();
  return admin;
}

async function profileOf(access: string): Promise<{ id: string; username: string; email: string }> {
  return json(await call("/api/v1/auth/user/", { bearer: access }), 200);
}

describe("the username of a deleted account", () => {
  it("is never given out again: registering it, in any case, is refused; the email address is free at once", async () => {
    const alice = await bearerUser();
    await deleteOwn(alice);

    await expectNotAvailable(await register(alice.username));
    await expectNotAvailable(await register(alice.username.toUpperCase()));
    // The address is free: the person may come back with it, under another name.
    const back = await registerWeb({ username: uniqueName("back"), email: alice.email });
    expect(back.userId).not.toBe(alice.userId);
    // Other names are not affected.
    expect((await register(`${alice.username}x`)).status).toBe(201);
  });

  it("is stored hashed: no column of the retired names holds the old name", async () => {
    const alice = await bearerUser();
    await deleteOwn(alice);
    const rows = (await env.DB.prepare("SELECT * FROM retired_usernames").all<Record<string, unknown>>()).results;
    expect(rows).toContainEqual({ username_sha256: await sha256Hex(alice.username.toLowerCase()) });
    expect(JSON.stringify(rows)).not.toContain(alice.username);
  });

  it("is retired when an administrator deletes the account too", async () => {
    const [alice, admin] = await Promise.all([bearerUser(), adminUser()]);
    expect((await call(`/api/v1/admin/users/${alice.userId}/`, { method: "DELETE", bearer: admin.access })).status).toBe(204);
    await expectNotAvailable(await register(alice.username));
    expect((await register(uniqueName("other"), alice.email)).status).toBe(201);
  });

  it("is skipped by an OAuth sign-up whose derived name it would be, as a taken one is", async () => {
    // alice and alice2 both deleted: a Google sign-up derived as "alice" gets "alice3".
    const alice = await bearerUser();
    const alice2 = await registerWeb({ username: `${alice.username}2` });
    await deleteOwn(alice);
    await deleteOwn({ ...alice2, ...(await tokenLogin(alice2.username)) });

    oauth.google.setNextUser(googleIdentity({ email: `${alice.username.toUpperCase()}@elsewhere.example`, emailVerified: true }));
    const signIn = await oauthSignIn("google", oauth.google);
    expect(signIn.access).toBeDefined();
    const profile = await profileOf(signIn.access!);
    expect(profile.username).toBe(`${alice.username.toUpperCase()}3`);
  });

  it("is skipped by a Firebase sign-up, even one with the deleted account's own address", async () => {
    const alice = await bearerUser();
    await deleteOwn(alice);
    const token = await firebase.issueIdToken({ uid: `uid-${alice.username}`, email: alice.email, email_verified: true });
    const res = await call("/api/v1/auth/firebase-token-exchange/", { json: { firebase_token: token }, ip: freshIp() });
    const body = await json<{ user: { id: string; username: string; email: string } }>(res, 200);
    expect(body.user).toMatchObject({ username: `${alice.username}2`, email: alice.email });
    expect(body.user.id).not.toBe(alice.userId);
  });

  it("notifies nobody when a post mentions it, though a newcomer tried to register it", async () => {
    const [alice, author, carol] = await Promise.all([bearerUser(), bearerUser(), bearerUser()]);
    await deleteOwn(alice);
    // A stranger tries to take the name (refused); had it worked, the mention below would reach them.
    const stranger = await register(alice.username);
    const strangerId = stranger.status === 201 ? ((await stranger.json()) as { user: { id: string } }).user.id : null;
    const topic = await json<{ id: string }>(
      await call("/api/v1/forum/categories/houseplants/topics/", { bearer: author.access, json: { title: "Old threads", body: "Hello" } }),
      201,
    );
    const post = await json<{ id: string }>(
      await call(`/api/v1/forum/topics/${topic.id}/posts/`, {
        bearer: author.access,
        json: { body: `<p>As @${alice.username} and @${carol.username} said last year.</p>` },
      }),
      201,
    );
    const mentioned = (
      await env.DB.prepare("SELECT user_id FROM notifications WHERE type = 'forum_mention' AND json_extract(data, '$.post_id') = ?")
        .bind(post.id)
        .all<{ user_id: string }>()
    ).results.map((r) => r.user_id);
    // carol, a live user named in the same post, is told: the mention was read.
    expect(mentioned).toEqual([carol.userId]);
    expect(strangerId).toBeNull();
  });

  it("retired between registration's check and its insert is refused, and nothing of the account is left", async () => {
    const name = uniqueName("racing");
    const email = `${name}@example.com`;
    // The retirement of a deletion landing after the check, just before the insert.
    const key = await sha256Hex(name.toLowerCase());
    const raced = envRacingFirstBatch(() => env.DB.prepare("INSERT INTO retired_usernames (username_sha256) VALUES (?)").bind(key).run());
    await expect(createUser(raced.env, { username: name, email, passwordHash: null })).rejects.toMatchObject({
      status: 400,
      fieldErrors: { username: ["This username is not available."] },
    });
    expect(raced.fired()).toBe(true);
    const left = await env.DB.prepare(
      "SELECT (SELECT count(*) FROM users WHERE lower(email) = lower(?)) + (SELECT count(*) FROM collections c WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.user_id)) AS n",
    )
      .bind(email)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
  });
});
