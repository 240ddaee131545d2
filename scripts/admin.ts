/**
 * Staff administration from the command line:
 *
 *   npm run admin -- grant-role USERNAME ROLE            # local D1 (what `npm start` uses)
 *   npm run admin -- grant-role USERNAME ROLE --remote   # production D1 (wrangler login needed)
 *   npm run admin -- grant-role USERNAME ROLE --remote --env staging
 *   npm run admin -- lift-suppression ADDRESS [--remote] # mail goes to ADDRESS again (API.md §5b)
 *
 * ROLE is one of user, author, moderator, editor, admin. lift-suppression lifts a hard bounce or a
 * spam complaint the email provider reported (a complaint only on the address holder's word).
 * Locally it uses the state folder `npm start` uses (`.wrangler/state`, or STATE_DIR when set, as
 * for npm start). Runs one statement (scripts/admin-commands.ts) through `wrangler d1 execute` and
 * prints the changed row; exits 1 when nothing changed (no such user, an address not suppressed).
 */
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { type AdminCommand, adminCommand, USAGE, UsageError } from "./admin-commands";

function usage(message?: string): never {
  if (message) console.error(`error: ${message}`);
  console.error(USAGE);
  process.exit(2);
}

const args = process.argv.slice(2);
const remote = args.includes("--remote");
const envIndex = args.indexOf("--env");
const environment = envIndex >= 0 ? args[envIndex + 1] : remote ? "production" : undefined;
const positional = args.filter((a, i) => !a.startsWith("--") && (envIndex < 0 || i !== envIndex + 1));

let command: AdminCommand;
try {
  command = adminCommand(positional);
} catch (err) {
  if (err instanceof UsageError) usage(err.message || undefined);
  throw err;
}

const wranglerArgs = ["wrangler", "d1", "execute", "DB", remote ? "--remote" : "--local", "--json", "--command", command.sql];
if (!remote) wranglerArgs.push("--persist-to", resolve(process.env.STATE_DIR ?? join(".wrangler", "state")));
if (environment) wranglerArgs.push("--env", environment);

const result = spawnSync("npx", wranglerArgs, { encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" } });
if (result.status !== 0) {
  console.error(result.stderr || result.stdout);
  process.exit(result.status ?? 1);
}
const output = JSON.parse(result.stdout) as { results: Record<string, string>[] }[];
const row = output[0]?.results[0];
if (!row) {
  console.error(`error: ${command.missing} in the ${remote ? "remote" : "local"} database`);
  process.exit(1);
}
console.log(command.done(row));
