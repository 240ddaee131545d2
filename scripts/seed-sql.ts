/**
 * Writes the species catalogue seed as SQL (default `.wrangler/seed-species.sql`), for
 * `wrangler d1 execute DB --file …` locally (npm start does this) or remotely (README, Deploy).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { speciesSeedStatements, type SeedSpecies } from "../src/db/seed";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export async function writeSpeciesSeedSql(file = join(root, ".wrangler", "seed-species.sql")): Promise<{ file: string; count: number }> {
  const entries = JSON.parse(readFileSync(join(root, "seed", "species.json"), "utf8")) as SeedSpecies[];
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${(await speciesSeedStatements(entries)).join("\n")}\n`);
  return { file, count: entries.length };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { file, count } = await writeSpeciesSeedSql(process.argv[2]);
  console.log(`wrote ${count} species to ${file}`);
}
