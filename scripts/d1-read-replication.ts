/**
 * Applies wrangler.toml's `read_replication` setting of an environment's D1 database through the
 * D1 API (`PUT /accounts/{account}/d1/database/{id}` with `{read_replication: {mode}}`), because
 * wrangler's binding schema does not apply it at deploy. `npm run deploy` runs it after the deploy;
 * run it alone with `tsx scripts/d1-read-replication.ts --env production`.
 *
 * Needs CLOUDFLARE_API_TOKEN (D1 edit) and CLOUDFLARE_ACCOUNT_ID, as `wrangler deploy` does. It
 * reads the database's current mode first and changes nothing when it already matches; with no
 * credentials it says what it would do and exits 0, so a deploy without them is not blocked.
 */
import { experimental_readRawConfig } from "wrangler";

interface D1Entry {
  binding: string;
  database_id?: string;
  read_replication?: { mode?: string };
}

const envName = process.argv[process.argv.indexOf("--env") + 1] ?? "production";
const { rawConfig } = experimental_readRawConfig({ config: "wrangler.toml" });
const section = (rawConfig as { env?: Record<string, { d1_databases?: D1Entry[] }> }).env?.[envName];
const entry = section?.d1_databases?.find((d) => d.binding === "DB");
const mode = entry?.read_replication?.mode;
if (!entry?.database_id || !mode) {
  console.log(`d1-read-replication: env "${envName}" sets no read_replication for DB; nothing to do.`);
  process.exit(0);
}
if (mode !== "auto" && mode !== "disabled") {
  console.error(`d1-read-replication: read_replication.mode must be "auto" or "disabled", not "${mode}".`);
  process.exit(1);
}
const token = process.env.CLOUDFLARE_API_TOKEN;
const account = process.env.CLOUDFLARE_ACCOUNT_ID;
if (!token || !account) {
  console.log(
    `d1-read-replication: would set ${entry.database_id} to mode "${mode}"; CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID are not set.`,
  );
  process.exit(0);
}
const url = `https://api.cloudflare.com/client/v4/accounts/${account}/d1/database/${entry.database_id}`;
const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
const current = (await (await fetch(url, { headers })).json()) as { success: boolean; result?: { read_replication?: { mode?: string } } };
if (!current.success) {
  console.error("d1-read-replication: could not read the database", JSON.stringify(current));
  process.exit(1);
}
if (current.result?.read_replication?.mode === mode) {
  console.log(`d1-read-replication: ${entry.database_id} already "${mode}".`);
  process.exit(0);
}
const res = await fetch(url, { method: "PUT", headers, body: JSON.stringify({ read_replication: { mode } }) });
const body = (await res.json()) as { success: boolean };
if (!body.success) {
  console.error("d1-read-replication: the D1 API refused the change", JSON.stringify(body));
  process.exit(1);
}
console.log(`d1-read-replication: ${entry.database_id} set to "${mode}".`);
