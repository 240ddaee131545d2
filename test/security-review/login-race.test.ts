// Security review finding (2026-12-04), fixed — this test keeps it fixed. The finding: a sign-in
// reads the account's password hash, spends ~100 ms checking the password against it, then
// records the sign-in. A password change (or reset, or deactivation) that lands in between did
// not stop it: the session it started was newer than the change, so it outlived it — an attacker
// who knew the old password kept signing in in a loop and won the race; for an account with a
// legacy hash, the sign-in even wrote the old password's new hash back over the new password.
// The test lands the owner's password change at the exact moment between check and record.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../src/config";
import { eq } from "drizzle-orm";
import { database } from "../../src/db/client";
import { users } from "../../src/db/schema";
import { signInWithPassword } from "../../src/services/accounts";
import { endEverySession } from "../../src/services/sessions";
import { hashPassword, verifyPassword } from "../../src/services/passwords";
import { call, expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { GOOD_PASSWORD, registerWeb } from "../helpers/users";

useEmulators();

/**
 * `env.DB`, except that the sign-in's recording write (alone, or the batch holding it) runs
 * `meanwhile` on the real database just before it (`before`) or just after it (`after`).
 */
function racingDb(meanwhile: () => Promise<unknown>, when: "before" | "after" = "before"): D1Database {
  const db = env.DB;
  const marked = new WeakSet<object>();
  const around = async <T>(work: () => Promise<T>): Promise<T> => {
    if (when === "before") await meanwhile();
    const result = await work();
    if (when === "after") await meanwhile();
    return result;
  };
  return new Proxy(db, {
    get(target, key) {
      if (key === "batch") {
        return (statements: D1PreparedStatement[]) => {
          const run = () => target.batch(statements);
          return statements.some((st) => marked.has(st)) ? around(run) : run();
        };
      }
      if (key !== "prepare") return Reflect.get(target, key, target);
      return (query: string) => {
        const statement = target.prepare(query);
        if (!/^update "users" set "last_login"/i.test(query)) return statement;
        const bind = statement.bind.bind(statement);
        statement.bind = (...params: unknown[]) => {
          const bound = bind(...params);
          marked.add(bound);
          return bound;
        };
        return statement;
      };
    },
  });
}

describe("a sign-in racing a password change", () => {
  it("loses: the change wins and the old password starts no session, nor comes back", async () => {
    const victim = await registerWeb();
    const newHash = await hashPassword("Owners-New-Secret-88");
    const change = () => env.DB.prepare("UPDATE users SET password_hash = ? WHERE id = ?").bind(newHash, victim.userId).run();
    const config = getConfig(env);
    await expect(
      signInWithPassword(
        { ...env, DB: racingDb(change) },
        config,
        { identifier: victim.username, password: GOOD_PASSWORD, clientKey: "198.51.100.7" },
        () => {},
      ),
    ).rejects.toMatchObject({ status: 401 });
    const stored = await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?")
      .bind(victim.userId)
      .first<{ password_hash: string }>();
    expect(stored?.password_hash).toBe(newHash);
    expect(await verifyPassword(GOOD_PASSWORD, stored!.password_hash)).toBe(false);
  });

  it("loses to a deactivation too", async () => {
    const victim = await registerWeb();
    const deactivate = () => env.DB.prepare("UPDATE users SET is_active = 0 WHERE id = ?").bind(victim.userId).run();
    await expect(
      signInWithPassword(
        { ...env, DB: racingDb(deactivate) },
        getConfig(env),
        { identifier: victim.username, password: GOOD_PASSWORD, clientKey: "198.51.100.8" },
        () => {},
      ),
    ).rejects.toMatchObject({ status: 401 });
  });

  it("with nothing racing it, signs in", async () => {
    const owner = await registerWeb();
    const { user, pair } = await signInWithPassword(
      { ...env, DB: racingDb(async () => {}) },
      getConfig(env),
      { identifier: owner.username, password: GOOD_PASSWORD, clientKey: "198.51.100.9" },
      () => {},
    );
    expect(user.id).toBe(owner.userId);
    expect((await call("/api/v1/auth/user/", { bearer: pair.access })).status).toBe(200);
  });

  it("an account with a hash of older parameters is rehashed and gets a session that refreshes", async () => {
    const owner = await registerWeb();
    const legacy = await hashPassword(GOOD_PASSWORD, 1_000);
    await env.DB.prepare("UPDATE users SET password_hash = ? WHERE id = ?").bind(legacy, owner.userId).run();
    const { pair } = await signInWithPassword(
      env,
      getConfig(env),
      { identifier: owner.username, password: GOOD_PASSWORD, clientKey: "198.51.100.11" },
      () => {},
    );
    const stored = await env.DB.prepare("SELECT password_hash FROM users WHERE id = ?")
      .bind(owner.userId)
      .first<{ password_hash: string }>();
    expect(stored?.password_hash).not.toBe(legacy);
    expect(await verifyPassword(GOOD_PASSWORD, stored!.password_hash)).toBe(true);
    const refreshed = await call("/api/v1/auth/token/refresh/", { json: { refresh: pair.refresh } });
    expect(refreshed.status).toBe(200);
  });

  it("a change landing the moment after the sign-in records itself ends the session it started", async () => {
    const victim = await registerWeb();
    const newHash = await hashPassword("Owners-New-Secret-88");
    const change = () =>
      endEverySession(env, victim.userId, {
        also: [database(env).update(users).set({ passwordHash: newHash }).where(eq(users.id, victim.userId))],
      });
    const { pair } = await signInWithPassword(
      { ...env, DB: racingDb(change, "after") },
      getConfig(env),
      { identifier: victim.username, password: GOOD_PASSWORD, clientKey: "198.51.100.10" },
      () => {},
    );
    await expectError(await call("/api/v1/auth/user/", { bearer: pair.access }), 401, "TOKEN_INVALID");
    const refreshed = await call("/api/v1/auth/token/refresh/", { json: { refresh: pair.refresh } });
    expect(refreshed.status).toBe(401);
  });
});
