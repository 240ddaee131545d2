/**
 * Rule-based care advice from a species' catalogue data (light and water needs, hardiness).
 * Used when no AI care is available, and by the synchronous identify answer; `source: "rules"`
 * tells clients where it came from.
 */
export interface CatalogueCareFields {
  scientific_name: string;
  light_requirements: string | null;
  water_requirements: string | null;
  hardiness_zone_min: number | null;
  hardiness_zone_max: number | null;
  plant_type: string | null;
}

const LIGHT: Record<string, string> = {
  full_sun: "Full sun: at least 6 hours of direct sunlight a day; a south-facing window indoors.",
  partial_sun: "Partial sun: 4–6 hours of direct light, ideally morning sun.",
  partial_shade: "Partial shade: bright, indirect light or dappled shade; avoid harsh afternoon sun.",
  full_shade: "Shade: little direct sun; bright shade or a north-facing window.",
};

const WATER: Record<string, string> = {
  low: "Water sparingly: let the soil dry out completely between waterings.",
  moderate: "Water when the top 2–3 cm of soil are dry; never leave the roots standing in water.",
  high: "Keep the soil evenly moist; do not let it dry out.",
};

export function ruleBasedCare(species: CatalogueCareFields) {
  if (!species.light_requirements && !species.water_requirements) return null;
  const zones =
    species.hardiness_zone_min != null && species.hardiness_zone_max != null
      ? `Hardy outdoors in USDA zones ${species.hardiness_zone_min}–${species.hardiness_zone_max}.`
      : null;
  return {
    source: "rules" as const,
    scientific_name: species.scientific_name,
    light: species.light_requirements ? (LIGHT[species.light_requirements] ?? null) : null,
    water: species.water_requirements ? (WATER[species.water_requirements] ?? null) : null,
    light_requirements: species.light_requirements,
    water_requirements: species.water_requirements,
    hardiness: zones,
    plant_type: species.plant_type,
  };
}
