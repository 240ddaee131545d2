/**
 * Species catalogue and blog demo seeds → SQL. Pure (no Node or Workers APIs beyond WebCrypto) so the same
 * statements load local D1 on `npm start` (through `wrangler d1 execute --file`) and the
 * test database in test/db/seed.test.ts. Re-running is harmless: existing names are skipped.
 */
import { postExcerpt, postSearchText, readingTime } from "../lib/blog-text";
import { stableUuid } from "../lib/ids";
import { sanitisePostBody } from "../lib/sanitise";
import type { StoredBlock } from "./schema";

export interface SeedSpecies {
  scientific_name: string;
  family: string;
  genus: string;
  common_names: string[];
  plant_type: string | null;
  light_requirements: "full_sun" | "partial_sun" | "partial_shade" | "full_shade" | null;
  water_requirements: "low" | "moderate" | "high" | null;
  hardiness_zone_min: number | null;
  hardiness_zone_max: number | null;
  bloom_time: string | null;
  flower_color: string | null;
  description: string;
}

function sqlLiteral(value: string | number | boolean | null): string {
  if (value === null) return "NULL";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "NULL";
  if (typeof value === "boolean") return value ? "1" : "0";
  return `'${value.replaceAll("'", "''")}'`;
}

/** A stable UUID (v8 layout) from the scientific name, so every machine seeds the same ids. */
export function seedSpeciesId(scientificName: string): Promise<string> {
  return stableUuid(`species:${scientificName.toLowerCase()}`);
}

export async function speciesSeedStatements(entries: SeedSpecies[]): Promise<string[]> {
  const statements: string[] = [];
  for (const s of entries) {
    const values = [
      await seedSpeciesId(s.scientific_name),
      s.scientific_name,
      JSON.stringify(s.common_names),
      s.family,
      s.genus,
      s.plant_type,
      s.light_requirements,
      s.water_requirements,
      s.hardiness_zone_min,
      s.hardiness_zone_max,
      s.bloom_time,
      s.flower_color,
      s.description,
      true,
      "seed",
    ].map(sqlLiteral);
    statements.push(
      `INSERT INTO species (id, scientific_name, common_names, family, genus, plant_type, light_requirements, ` +
        `water_requirements, hardiness_zone_min, hardiness_zone_max, bloom_time, flower_color, description, ` +
        `is_verified, source) VALUES (${values.join(", ")}) ON CONFLICT DO NOTHING;`,
    );
  }
  return statements;
}

// ---------------------------------------------------------------------------------------------
// Blog demo content (seed/blog.json): categories, a series and published posts by an editors'
// account that cannot sign in (no password). Blocks are written in the editorial API's input
// form, with plant_spotlight naming a catalogue species by scientific name; HTML is sanitised
// and excerpt, reading time and search text computed exactly as the service does.

export interface SeedBlog {
  author: { username: string; email: string; first_name: string; last_name: string; bio: string };
  categories: { slug: string; name: string; description: string }[];
  series: { slug: string; title: string; description: string; is_completed: boolean }[];
  posts: {
    slug: string;
    title: string;
    published_at: string;
    categories: string[];
    tags: string[];
    series?: string;
    series_order?: number;
    is_featured?: boolean;
    introduction: string;
    content_blocks: { type: string; value: unknown }[];
  }[];
}

const HTML_FIELDS: Record<string, string[]> = {
  quote: ["quote_text"],
  plant_spotlight: ["description"],
  call_to_action: ["cta_description"],
  care_tip: ["text"],
};

/** One seed block in its stored form (see services/blog-blocks.ts `prepareBlocks`). */
async function seedBlock(
  block: { type: string; value: unknown },
  index: number,
  postSlug: string,
  catalogue: Map<string, SeedSpecies>,
): Promise<StoredBlock> {
  const id = await stableUuid(`blog-block:${postSlug}:${index}`);
  if (block.type === "paragraph") return { id, type: "paragraph", value: sanitisePostBody(String(block.value)) };
  if (block.type === "heading") return { id, type: "heading", value: block.value };
  const value = { ...(block.value as Record<string, unknown>) };
  for (const field of HTML_FIELDS[block.type] ?? []) value[field] = sanitisePostBody(String(value[field] ?? ""));
  if (block.type === "plant_spotlight") {
    const name = String(value.species);
    const species = catalogue.get(name.toLowerCase());
    if (!species) throw new Error(`seed/blog.json: ${postSlug} spotlights "${name}", which is not in seed/species.json`);
    delete value.species;
    return {
      id,
      type: "plant_spotlight",
      value: {
        species_id: await seedSpeciesId(species.scientific_name),
        plant_name: species.common_names[0] ?? species.scientific_name,
        scientific_name: species.scientific_name,
        description: value.description,
        care_difficulty: value.care_difficulty ?? "moderate",
        image: null,
      },
    };
  }
  return { id, type: block.type, value };
}

export async function blogSeedStatements(seed: SeedBlog, catalogueEntries: SeedSpecies[]): Promise<string[]> {
  const catalogue = new Map(catalogueEntries.map((s) => [s.scientific_name.toLowerCase(), s]));
  const a = seed.author;
  const authorId = await stableUuid(`user:${a.username}`);
  const statements = [
    `INSERT INTO users (id, username, email, password_hash, first_name, last_name, bio, role, email_verified) VALUES (${[
      authorId,
      a.username,
      a.email,
      null,
      a.first_name,
      a.last_name,
      a.bio,
      "editor",
      true,
    ]
      .map(sqlLiteral)
      .join(", ")}) ON CONFLICT DO NOTHING;`,
  ];
  const categoryIds = new Map<string, string>();
  for (const c of seed.categories) {
    categoryIds.set(c.slug, await stableUuid(`blog-category:${c.slug}`));
    statements.push(
      `INSERT INTO blog_categories (id, slug, name, description) VALUES (${[categoryIds.get(c.slug)!, c.slug, c.name, c.description].map(sqlLiteral).join(", ")}) ON CONFLICT DO NOTHING;`,
    );
  }
  const seriesIds = new Map<string, string>();
  for (const s of seed.series) {
    seriesIds.set(s.slug, await stableUuid(`blog-series:${s.slug}`));
    statements.push(
      `INSERT INTO blog_series (id, slug, title, description, is_completed) VALUES (${[seriesIds.get(s.slug)!, s.slug, s.title, s.description, s.is_completed].map(sqlLiteral).join(", ")}) ON CONFLICT DO NOTHING;`,
    );
  }
  for (const p of seed.posts) {
    const id = await stableUuid(`blog-post:${p.slug}`);
    const introduction = sanitisePostBody(p.introduction);
    const blocks = await Promise.all(p.content_blocks.map((b, i) => seedBlock(b, i, p.slug, catalogue)));
    const searchText = postSearchText(introduction, blocks);
    const seriesId = p.series ? seriesIds.get(p.series) : null;
    if (seriesId === undefined) throw new Error(`seed/blog.json: ${p.slug} names an unknown series`);
    const snapshot = {
      title: p.title,
      slug: p.slug,
      introduction,
      content_blocks: blocks,
      categories: p.categories,
      tags: p.tags,
      series: p.series ?? null,
      series_order: p.series_order ?? null,
      featured_image: null,
      featured_image_alt: "",
      is_featured: p.is_featured ?? false,
    };
    const values = [
      id,
      p.slug,
      p.title,
      introduction,
      JSON.stringify(blocks),
      "published",
      authorId,
      seriesId,
      p.series_order ?? null,
      p.is_featured ?? false,
      readingTime(searchText),
      postExcerpt(introduction, blocks),
      searchText,
      p.published_at,
      p.published_at,
      1,
      p.published_at,
      p.published_at,
    ].map(sqlLiteral);
    statements.push(
      `INSERT INTO blog_posts (id, slug, title, introduction, content_blocks, status, author_id, series_id, series_order, is_featured, ` +
        `reading_time, excerpt, search_text, first_published_at, last_published_at, revision, created_at, updated_at) VALUES (${values.join(", ")}) ON CONFLICT DO NOTHING;`,
      `INSERT INTO blog_revisions (id, post_id, number, author_id, snapshot, created_at) VALUES (${[
        await stableUuid(`blog-revision:${p.slug}:1`),
        id,
        1,
        authorId,
        JSON.stringify(snapshot),
        p.published_at,
      ]
        .map(sqlLiteral)
        .join(", ")}) ON CONFLICT DO NOTHING;`,
    );
    for (const slug of p.categories) {
      const categoryId = categoryIds.get(slug);
      if (!categoryId) throw new Error(`seed/blog.json: ${p.slug} names an unknown category "${slug}"`);
      statements.push(
        `INSERT INTO blog_post_categories (post_id, category_id) VALUES (${sqlLiteral(id)}, ${sqlLiteral(categoryId)}) ON CONFLICT DO NOTHING;`,
      );
    }
    for (const tag of p.tags)
      statements.push(`INSERT INTO blog_post_tags (post_id, tag) VALUES (${sqlLiteral(id)}, ${sqlLiteral(tag)}) ON CONFLICT DO NOTHING;`);
  }
  return statements;
}
