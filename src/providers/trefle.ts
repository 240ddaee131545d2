/**
 * Trefle v1 client — PROVIDERS.md §3. Optional enrichment only: the service has had long
 * outages, so calls are short (TREFLE_TIMEOUT_MS) and their failure never fails a job.
 * Care data lives on the species detail record (`growth.light`, `growth.soil_humidity`,
 * `growth.ph_minimum`…), not where the Django client looked for it.
 */
import { z } from "zod";
import { errorFromResponse, fetchWithTimeout, readJson } from "./http";
import { ProviderError, webUrl } from "./types";

export interface TrefleSettings {
  baseUrl: string;
  token: string;
  timeoutMs: number;
}

const nullableNumber = z.number().nullish();
const SpeciesDetail = z.object({
  data: z.object({
    id: z.number(),
    scientific_name: z.string(),
    common_name: z.string().nullish(),
    family: z.string().nullish(),
    genus: z.string().nullish(),
    image_url: z.string().nullish(),
    flower: z
      .object({ color: z.array(z.string()).nullish() })
      .passthrough()
      .nullish(),
    specifications: z
      .object({ average_height: z.object({ cm: nullableNumber }).nullish(), maximum_height: z.object({ cm: nullableNumber }).nullish() })
      .passthrough()
      .nullish(),
    growth: z
      .object({
        light: nullableNumber,
        soil_humidity: nullableNumber,
        ph_minimum: nullableNumber,
        ph_maximum: nullableNumber,
        bloom_months: z.array(z.string()).nullish(),
      })
      .passthrough()
      .nullish(),
  }),
});
const SpeciesList = z.object({ data: z.array(z.object({ id: z.number(), scientific_name: z.string() }).passthrough()) });

/** What Trefle knows of one species: its names and the care data we keep. */
export interface TrefleSpecies {
  trefleId: number;
  scientificName: string;
  commonName: string | null;
  family: string | null;
  genus: string | null;
  lightRequirements: "full_sun" | "partial_sun" | "partial_shade" | "full_shade" | null;
  waterRequirements: "low" | "moderate" | "high" | null;
  soilPhMin: number | null;
  soilPhMax: number | null;
  matureHeightMinCm: number | null;
  matureHeightMaxCm: number | null;
  bloomTime: string | null;
  flowerColor: string | null;
  imageUrl: string | null;
}

/** Trefle's light scale is 0 (no light) … 10 (very intensive insolation). */
function lightFrom(value: number | null | undefined): TrefleSpecies["lightRequirements"] {
  if (value == null) return null;
  if (value >= 8) return "full_sun";
  if (value >= 6) return "partial_sun";
  if (value >= 4) return "partial_shade";
  return "full_shade";
}

/** soil_humidity: 0 (xerophile) … 10 (subaquatic). */
function waterFrom(value: number | null | undefined): TrefleSpecies["waterRequirements"] {
  if (value == null) return null;
  if (value >= 7) return "high";
  if (value >= 4) return "moderate";
  return "low";
}

async function get(settings: TrefleSettings, path: string, query: Record<string, string>): Promise<unknown> {
  const url = new URL(`${settings.baseUrl.replace(/\/+$/, "")}${path}`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const res = await fetchWithTimeout(
    "trefle",
    url.toString(),
    { headers: { Authorization: `Bearer ${settings.token}` } },
    { timeoutMs: settings.timeoutMs, credentials: [settings.token] },
  );
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok) throw await errorFromResponse("trefle", res);
  return readJson("trefle", res, settings.timeoutMs);
}

/** The species with this exact scientific name, or null when Trefle does not know it. */
export async function trefleSpeciesFor(settings: TrefleSettings, scientificName: string): Promise<TrefleSpecies | null> {
  if (!settings.token) throw new ProviderError("trefle", "auth", "TREFLE_API_KEY is not configured");
  const list = SpeciesList.safeParse(await get(settings, "/species", { "filter[scientific_name]": scientificName }));
  if (!list.success) throw new ProviderError("trefle", "malformed", "Trefle species list has an unexpected shape");
  const match = list.data.data.find((s) => s.scientific_name.toLowerCase() === scientificName.toLowerCase());
  if (!match) return null;
  const raw = await get(settings, `/species/${match.id}`, {});
  if (raw === null) return null;
  const detail = SpeciesDetail.safeParse(raw);
  if (!detail.success) throw new ProviderError("trefle", "malformed", "Trefle species detail has an unexpected shape");
  const d = detail.data.data;
  const months = d.growth?.bloom_months ?? [];
  return {
    trefleId: d.id,
    scientificName: d.scientific_name,
    commonName: d.common_name ?? null,
    family: d.family ?? null,
    genus: d.genus ?? null,
    lightRequirements: lightFrom(d.growth?.light),
    waterRequirements: waterFrom(d.growth?.soil_humidity),
    soilPhMin: d.growth?.ph_minimum ?? null,
    soilPhMax: d.growth?.ph_maximum ?? null,
    matureHeightMinCm: d.specifications?.average_height?.cm ?? null,
    matureHeightMaxCm: d.specifications?.maximum_height?.cm ?? null,
    bloomTime: months.length > 0 ? months.join(", ") : null,
    flowerColor: d.flower?.color?.join(", ") ?? null,
    imageUrl: webUrl(d.image_url),
  };
}
