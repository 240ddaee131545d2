/**
 * `npm run admin` (scripts/admin-commands.ts), attacked: arguments that could end their SQL literal
 * or are not what the command takes are refused before any SQL is built; valid ones make exactly
 * the one statement.
 */
import { describe, expect, it } from "vitest";
import { adminCommand, UsageError } from "../scripts/admin-commands";

describe("npm run admin -- lift-suppression", () => {
  it("deletes the one suppression of a valid address, matched lower-cased as the table keys it", () => {
    const command = adminCommand(["lift-suppression", "  Grower.Name+tag@Example.COM "]);
    expect(command.sql).toBe(
      "DELETE FROM email_suppressions WHERE address = 'grower.name+tag@example.com' RETURNING address, reason, created_at",
    );
    expect(command.done({ address: "grower.name+tag@example.com", reason: "complaint", created_at: "2026-01-01T00:00:00.000Z" })).toMatch(
      /complaint suppression .* is lifted/,
    );
  });

  it("refuses injection attempts and malformed addresses", () => {
    for (const bad of [
      undefined,
      "",
      "not-an-address",
      "x'@example.com",
      "x@example.com' OR '1'='1",
      "x@example.com'; DROP TABLE users; --",
      'x"@example.com',
      "x\\@example.com",
      "x@example",
      "x@@example.com",
      "x @example.com",
      `${"a".repeat(65)}@example.com`,
      `x@${"a".repeat(250)}.com`,
    ]) {
      expect(() => adminCommand(["lift-suppression", ...(bad === undefined ? [] : [bad])]), String(bad)).toThrow(UsageError);
    }
  });
});

describe("npm run admin -- grant-role", () => {
  it("keeps its checks", () => {
    expect(adminCommand(["grant-role", "fern_lover", "admin"]).sql).toContain("lower(username) = lower('fern_lover')");
    expect(() => adminCommand(["grant-role", "x' OR 1=1 --", "admin"])).toThrow(UsageError);
    expect(() => adminCommand(["grant-role", "fern_lover", "overlord"])).toThrow(UsageError);
    expect(() => adminCommand(["drop-everything"])).toThrow(UsageError);
  });
});
