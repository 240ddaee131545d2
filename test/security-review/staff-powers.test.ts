/**
 * Staff powers, attacked (security review of 2026-12-06): each test is an attack that must be
 * refused or contained, and each failed on the code as reviewed.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { setAccountActive } from "../../src/services/accounts";
import { setUserRole } from "../../src/services/users";
import { call, expectError, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { envRacingFirstBatch, envRacingStatement } from "../helpers/racing-env";
import { bearerUser } from "../helpers/users";

useEmulators();

type User = Awaited<ReturnType<typeof bearerUser>>;

async function withRole(role: string): Promise<User> {
  const u = await bearerUser();
  await env.DB.prepare("UPDATE users SET role = ? WHERE id = ?").bind(role, u.userId).run();
  return u;
}

const roleOf = async (id: string) => (await env.DB.prepare("SELECT role FROM users WHERE id = ?").bind(id).first<{ role: string }>())!.role;
const setRole = (as: User, id: string, role: string) =>
  call(`/api/v1/admin/users/${id}/role/`, { method: "PATCH", json: { role }, bearer: as.access });

describe("the service keeps an administrator", () => {
  it("the only active administrator cannot demote themselves; with another one they can", async () => {
    const admin = await withRole("admin");
    // Every other administrator of this test file's database steps down (or is deactivated).
    await env.DB.prepare("UPDATE users SET role = 'user' WHERE role = 'admin' AND id <> ?").bind(admin.userId).run();
    const inactive = await withRole("admin");
    await env.DB.prepare("UPDATE users SET is_active = 0 WHERE id = ?").bind(inactive.userId).run();

    // A deactivated administrator is no administrator: nobody would be left to reactivate anyone.
    await expectError(await setRole(admin, admin.userId, "user"), 409, "INVALID_STATE");
    expect(await roleOf(admin.userId)).toBe("admin");
    // Staying an admin, or changing another account, is not refused.
    expect((await setRole(admin, admin.userId, "admin")).status).toBe(200);

    const second = await withRole("admin");
    expect(await json<{ role: string }>(await setRole(admin, admin.userId, "moderator"), 200)).toMatchObject({ role: "moderator" });
    // Now `second` is the last one, and cannot step down either.
    await expectError(await setRole(second, second.userId, "editor"), 409, "INVALID_STATE");
    expect(await roleOf(second.userId)).toBe("admin");
  });

  it("two administrators demoting each other at once leave one of them an administrator", async () => {
    const a = await withRole("admin");
    const b = await withRole("admin");
    await env.DB.prepare("UPDATE users SET role = 'user' WHERE role = 'admin' AND id NOT IN (?, ?)").bind(a.userId, b.userId).run();
    // b's request (let in while b was an admin) demotes a; a's demotion of b lands just before it.
    const racing = envRacingStatement(/^update "users" set "role"/i, () => setUserRole(env, b.userId, "user"));
    await expect(setUserRole(racing.env, a.userId, "user")).rejects.toMatchObject({ code: "INVALID_STATE", status: 409 });
    expect(racing.fired()).toBe(true);
    expect([await roleOf(a.userId), await roleOf(b.userId)]).toEqual(["admin", "user"]);
  });

  it("two administrators deactivating each other at once leave one of them active, with their sessions", async () => {
    const a = await withRole("admin");
    const b = await withRole("admin");
    await env.DB.prepare("UPDATE users SET role = 'user' WHERE role = 'admin' AND id NOT IN (?, ?)").bind(a.userId, b.userId).run();
    // b's request (let in while b was active) deactivates a; a's deactivation of b lands just before it.
    const racing = envRacingFirstBatch(() => setAccountActive(env, b.userId, false));
    await expect(setAccountActive(racing.env, a.userId, false)).rejects.toMatchObject({ code: "INVALID_STATE", status: 409 });
    expect(racing.fired()).toBe(true);
    const active = await env.DB.prepare("SELECT id FROM users WHERE role = 'admin' AND is_active = 1").all<{ id: string }>();
    expect(active.results.map((r) => r.id)).toEqual([a.userId]);
    // a's session was not ended by the refused deactivation.
    expect((await call("/api/v1/admin/users/?page_size=1", { bearer: a.access })).status).toBe(200);
  });
});
