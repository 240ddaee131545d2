import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectError } from "../helpers/http";
import { bearerUser } from "../helpers/users";

async function withRole(role: string) {
  const u = await bearerUser();
  await env.DB.prepare("UPDATE users SET role = ? WHERE id = ?").bind(role, u.userId).run();
  return u;
}

describe("staff routes guard by role", () => {
  it("403 for a plain user, 200 for a moderator, role change for admins only", async () => {
    const plain = await bearerUser();
    await expectError(await call("/api/v1/admin/users/", { bearer: plain.access }), 403, "FORBIDDEN");
    await expectError(await call("/api/v1/admin/users/"), 401, "AUTHENTICATION_REQUIRED");

    const moderator = await withRole("moderator");
    const list = await call(`/api/v1/admin/users/?search=${moderator.username}&page_size=5`, { bearer: moderator.access });
    expect(list.status).toBe(200);
    const page = (await list.json()) as { count: number; results: { username: string; is_staff: boolean }[]; next: string | null };
    expect(page.count).toBe(1);
    expect(page.results[0]).toMatchObject({ username: moderator.username, is_staff: true });

    const grant = { method: "PATCH", json: { role: "editor" } };
    await expectError(await call(`/api/v1/admin/users/${plain.userId}/role/`, { ...grant, bearer: moderator.access }), 403, "FORBIDDEN");
    const admin = await withRole("admin");
    const ok = await call(`/api/v1/admin/users/${plain.userId}/role/`, { ...grant, bearer: admin.access });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ role: "editor", is_staff: true });
    const missing = await call(`/api/v1/admin/users/00000000-0000-4000-8000-000000000000/role/`, { ...grant, bearer: admin.access });
    await expectError(missing, 404, "NOT_FOUND");
    const badRole = await call(`/api/v1/admin/users/${plain.userId}/role/`, {
      method: "PATCH",
      json: { role: "overlord" },
      bearer: admin.access,
    });
    await expectError(badRole, 400, "VALIDATION_ERROR");
    const notUuid = await call(`/api/v1/admin/users/42/role/`, { ...grant, bearer: admin.access });
    await expectError(notUuid, 400, "VALIDATION_ERROR");
  });

  it("moderators and editors see no emails and cannot search by one; admins can", async () => {
    const target = await bearerUser();
    const { email } = (await env.DB.prepare("SELECT email FROM users WHERE id = ?").bind(target.userId).first<{ email: string }>())!;
    const list = async (as: { access: string }, search: string) =>
      (await (await call(`/api/v1/admin/users/?search=${encodeURIComponent(search)}`, { bearer: as.access })).json()) as {
        count: number;
        results: Record<string, unknown>[];
      };
    for (const role of ["moderator", "editor"]) {
      const staff = await withRole(role);
      const byName = await list(staff, target.username);
      expect(byName.count).toBe(1);
      expect(byName.results[0]).toMatchObject({ username: target.username, role: "user" });
      for (const secret of ["email", "email_verified", "pending_email", "last_login"]) expect(byName.results[0]).not.toHaveProperty(secret);
      // The address is not an oracle: searching for it finds nobody, and no listing carries one.
      expect((await list(staff, email)).count).toBe(0);
      expect((await list(staff, "")).results.every((u) => !("email" in u))).toBe(true);
    }
    const admin = await withRole("admin");
    const found = await list(admin, email);
    expect(found.count).toBe(1);
    expect(found.results[0]).toMatchObject({ username: target.username, email });
  });

  it("refuses a field the role or active body does not take, naming the ones it does, and changes nothing", async () => {
    const admin = await withRole("admin");
    const target = await bearerUser();
    const refused = async (what: "role" | "active", json: unknown) =>
      (
        await expectError(
          await call(`/api/v1/admin/users/${target.userId}/${what}/`, { method: "PATCH", bearer: admin.access, json }),
          400,
          "VALIDATION_ERROR",
        )
      ).errors?.non_field_errors;
    // Both changes in one body: the role alone would be made, and the deactivation dropped.
    expect(await refused("role", { role: "editor", is_active: false })).toEqual(['Unrecognized key: "is_active". Accepted fields: role.']);
    expect(await refused("active", { is_active: false, role: "editor" })).toEqual([
      'Unrecognized key: "role". Accepted fields: is_active.',
    ]);
    expect(await refused("active", { activ: false })).toEqual(['Unrecognized key: "activ". Accepted fields: is_active.']);
    const row = await env.DB.prepare("SELECT role, is_active FROM users WHERE id = ?").bind(target.userId).first();
    expect(row).toEqual({ role: "user", is_active: 1 });
  });

  it("a role taken away ends its powers at once, on the access token issued while it was held", async () => {
    const [admin, moderator, editor] = [await withRole("admin"), await withRole("moderator"), await withRole("editor")];
    const draft = await call("/api/v1/blog/posts/", { method: "POST", json: { title: "Before the demotion" }, bearer: editor.access });
    expect(draft.status).toBe(201);
    const { id } = (await draft.json()) as { id: string };
    for (const who of [moderator, editor]) {
      const demote = await call(`/api/v1/admin/users/${who.userId}/role/`, {
        method: "PATCH",
        json: { role: "user" },
        bearer: admin.access,
      });
      expect(demote.status).toBe(200);
    }
    await expectError(await call("/api/v1/admin/users/", { bearer: moderator.access }), 403, "FORBIDDEN");
    await expectError(await call("/api/v1/blog/comments/moderation/", { bearer: moderator.access }), 403, "FORBIDDEN");
    await expectError(await call(`/api/v1/blog/posts/${id}/publish/`, { method: "POST", bearer: editor.access }), 403, "FORBIDDEN");
    // Not even their own draft: without a writing role it is no longer theirs to see.
    await expectError(await call(`/api/v1/blog/posts/${id}/`, { bearer: editor.access }), 404, "NOT_FOUND");
  });

  it("search treats % and _ literally", async () => {
    const admin = await withRole("admin");
    const res = await call("/api/v1/admin/users/?search=%25", { bearer: admin.access });
    expect(((await res.json()) as { count: number }).count).toBe(0);
    // Longer than D1's 50-byte LIKE limit, and still found by a case-insensitive substring.
    const long = await call(`/api/v1/admin/users/?search=${"x".repeat(100)}`, { bearer: admin.access });
    expect(long.status).toBe(200);
    const own = await call(`/api/v1/admin/users/?search=${admin.username.slice(2).toUpperCase()}`, { bearer: admin.access });
    expect(((await own.json()) as { results: { username: string }[] }).results.map((u) => u.username)).toContain(admin.username);
  });
});
