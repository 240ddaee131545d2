/**
 * Species catalogue seed → SQL. Pure (no Node or Workers APIs beyond WebCrypto) so the same
 * statements load local D1 on `npm start` (through `wrangler d1 execute --file`) and the
 * test database in test/db/seed.test.ts. Re-running is harmless: existing names are skipped.
 */
import { stableUuid } from "../lib/ids";

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
