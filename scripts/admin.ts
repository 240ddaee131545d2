/**
 * Staff administration from the command line:
 *
 *   npm run admin -- grant-role USERNAME ROLE            # local D1 (what `npm start` uses)
 *   npm run admin -- grant-role USERNAME ROLE --remote   # production D1 (wrangler login needed)
 *   npm run admin -- grant-role USERNAME ROLE --remote --env staging
 *
 * ROLE is one of user, author, moderator, editor, admin. Locally it uses the state folder `npm start`
 * uses (`.wrangler/state`, or STATE_DIR when set, as for npm start). Runs one UPDATE through `wrangler d1 execute`
 * and prints the changed row; exits 1 when the user does not exist.
 */
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";

const ROLES = ["user", "author", "moderator", "editor", "admin"] as const;
const USERNAME_RE = /^[\w.@+-]{3,150}$/;

function usage(message?: string): never {
  if (message) console.error(`error: ${message}`);
  console.error("usage: npm run admin -- grant-role USERNAME ROLE [--remote] [--env staging|production]");
  process.exit(2);
}

const args = process.argv.slice(2);
const remote = args.includes("--remote");
const envIndex = args.indexOf("--env");
const environment = envIndex >= 0 ? args[envIndex + 1] : remote ? "production" : undefined;
const positional = args.filter((a, i) => !a.startsWith("--") && (envIndex < 0 || i !== envIndex + 1));
const [command, username, role] = positional;

if (command !== "grant-role") usage(command ? `unknown command "${command}"` : undefined);
if (!username || !USERNAME_RE.test(username)) usage("USERNAME must be 3–150 letters, digits or @.+-_");
if (!role || !(ROLES as readonly string[]).includes(role)) usage(`ROLE must be one of ${ROLES.join(", ")}`);

// Both values are validated against strict patterns above, so they are safe as SQL literals.
const sql = `UPDATE users SET role = '${role}', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE lower(username) = lower('${username}') RETURNING id, username, role`;
const wranglerArgs = ["wrangler", "d1", "execute", "DB", remote ? "--remote" : "--local", "--json", "--command", sql];
if (!remote) wranglerArgs.push("--persist-to", resolve(process.env.STATE_DIR ?? join(".wrangler", "state")));
if (environment) wranglerArgs.push("--env", environment);

const result = spawnSync("npx", wranglerArgs, { encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" } });
if (result.status !== 0) {
  console.error(result.stderr || result.stdout);
  process.exit(result.status ?? 1);
}
const output = JSON.parse(result.stdout) as { results: { id: string; username: string; role: string }[] }[];
const row = output[0]?.results[0];
if (!row) {
  console.error(`error: no user named "${username}" in the ${remote ? "remote" : "local"} database`);
  process.exit(1);
}
console.log(`${row.username} (${row.id}) is now ${row.role}`);
