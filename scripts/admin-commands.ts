/**
 * What `npm run admin` runs (scripts/admin.ts): each command's arguments validated against strict
 * patterns, then its one SQL statement. Values reach the SQL as literals only after that check,
 * whose patterns admit no quote, backslash or semicolon, so no argument can end its literal.
 */

export const ROLES = ["user", "author", "moderator", "editor", "admin"] as const;
const USERNAME_RE = /^[\w.@+-]{3,150}$/;
/** A bare address, lower-cased as the suppression table keys it (services/email-events.ts bareAddress). */
const ADDRESS_RE = /^[a-z0-9._+-]{1,64}@[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+$/;

export const USAGE = [
  "usage: npm run admin -- grant-role USERNAME ROLE [--remote] [--env staging|production]",
  "       npm run admin -- lift-suppression ADDRESS [--remote] [--env staging|production]",
].join("\n");

export class UsageError extends Error {}

export interface AdminCommand {
  /** One statement; its RETURNING row is what changed, none when nothing did. */
  sql: string;
  /** What to print for the changed row. */
  done: (row: Record<string, string>) => string;
  /** What to say (exit 1) when no row changed. */
  missing: string;
}

const NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

/** The command `positional` (the arguments without their --flags) names; throws UsageError. */
export function adminCommand(positional: string[]): AdminCommand {
  const [command, ...rest] = positional;
  if (command === "grant-role") {
    const [username, role] = rest;
    if (!username || !USERNAME_RE.test(username)) throw new UsageError("USERNAME must be 3–150 letters, digits or @.+-_");
    if (!role || !(ROLES as readonly string[]).includes(role)) throw new UsageError(`ROLE must be one of ${ROLES.join(", ")}`);
    return {
      sql: `UPDATE users SET role = '${role}', updated_at = ${NOW} WHERE lower(username) = lower('${username}') RETURNING id, username, role`,
      done: (row) => `${row.username} (${row.id}) is now ${row.role}`,
      missing: `no user named "${username}"`,
    };
  }
  if (command === "lift-suppression") {
    const address = rest[0]?.trim().toLowerCase() ?? "";
    if (address.length > 254 || !ADDRESS_RE.test(address))
      throw new UsageError("ADDRESS must be one email address (letters, digits, . _ + - before the @)");
    return {
      sql: `DELETE FROM email_suppressions WHERE address = '${address}' RETURNING address, reason, created_at`,
      done: (row) => `${row.address}: its ${row.reason} suppression (since ${row.created_at}) is lifted; mail goes to it again`,
      missing: `"${address}" is not suppressed (mail already goes to it)`,
    };
  }
  throw new UsageError(command ? `unknown command "${command}"` : "");
}
