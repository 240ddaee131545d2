/**
 * Writes the seed as SQL (default `.wrangler/seed-species.sql`): the species catalogue, then the
 * blog's demo content (seed/blog.json), for `wrangler d1 execute DB --file …` locally (npm start
 * does this) or remotely (README, Deploy). Every statement is `ON CONFLICT DO NOTHING`.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { blogSeedStatements, type SeedBlog, speciesSeedStatements, type SeedSpecies } from "../src/db/seed";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export async function writeSpeciesSeedSql(
  file = join(root, ".wrangler", "seed-species.sql"),
): Promise<{ file: string; count: number; posts: number }> {
  const entries = JSON.parse(readFileSync(join(root, "seed", "species.json"), "utf8")) as SeedSpecies[];
  const blog = JSON.parse(readFileSync(join(root, "seed", "blog.json"), "utf8")) as SeedBlog;
  mkdirSync(dirname(file), { recursive: true });
  const statements = [...(await speciesSeedStatements(entries)), ...(await blogSeedStatements(blog, entries))];
  writeFileSync(file, `${statements.join("\n")}\n`);
  return { file, count: entries.length, posts: blog.posts.length };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { file, count, posts } = await writeSpeciesSeedSql(process.argv[2]);
  console.log(`wrote ${count} species and ${posts} blog posts to ${file}`);
}
