// Trefle v1 emulator, as seen under the base URL https://trefle.io/api/v1.
// Shapes follow Trefle's open-source
// server (serializers, pagy pagination, rack-attack throttle).
//
// Deliberate choices: lists page by 20 (the pagy default; the real size is unconfirmed);
// `limit` is honoured only by the search routes, as upstream; the throttle is a token bucket
// of `requestsPerMinute` per token (upstream: a 60 s fixed window per IP + token).

import { COMMON_FAILURES, DEFAULT_API_KEY, bearerToken, defineEmulator, jsonResponse, type CommonFailure, type Emulator } from "./common";
import { SPECIES, findSpeciesByTrefleIdOrSlug, type Species } from "./species";

export interface TrefleEmulatorOptions {
  apiKeys?: string[];
  /** Throttle: a bucket of this many requests per token, refilled over 60 s. */
  requestsPerMinute?: number;
  /** Clock in milliseconds, for tests of the throttle's refill. */
  now?: () => number;
}

export type TrefleEmulator = Emulator<CommonFailure>;

export const TREFLE_IMAGE_HOST = "https://trefle.emulator.invalid";
export const TREFLE_PAGE_SIZE = 20;
const MAX_SEARCH_LIMIT = 100;
const LAST_MODIFIED = "2021-03-04T10:22:00.000Z";
const TOO_MANY_REQUESTS = "Too many requests. Please visit https://trefle.io/about#support to learn how to increase your limit.";

/** Upstream's permit list; any other `filter[...]` key is silently dropped. */
const FILTERABLE_FIELDS = new Set([
  "author",
  "bloom_months",
  "common_name",
  "days_to_harvest",
  "duration",
  "establishment",
  "edible",
  "edible_part",
  "family_common_name",
  "family_name",
  "flower_color",
  "flower_conspicuous",
  "foliage_color",
  "foliage_texture",
  "fruit_color",
  "fruit_conspicuous",
  "fruit_months",
  "fruit_seed_persistence",
  "genus_name",
  "growth_form",
  "growth_habit",
  "growth_months",
  "growth_rate",
  "leaf_retention",
  "ligneous_type",
  "rank",
  "scientific_name",
  "status",
  "vegetable",
]);

export function createTrefleEmulator(options: TrefleEmulatorOptions = {}): TrefleEmulator {
  const apiKeys = new Set(options.apiKeys ?? [DEFAULT_API_KEY]);
  const capacity = options.requestsPerMinute ?? 60;
  const now = options.now ?? Date.now;
  let buckets = new Map<string, { tokens: number; updatedAt: number }>();

  /** Takes one request from the token's bucket; returns the seconds to wait when empty. */
  function throttle(token: string): number | null {
    const at = now();
    const refillPerMs = capacity / 60_000;
    const bucket = buckets.get(token) ?? { tokens: capacity, updatedAt: at };
    bucket.tokens = Math.min(capacity, bucket.tokens + (at - bucket.updatedAt) * refillPerMs);
    bucket.updatedAt = at;
    buckets.set(token, bucket);
    if (bucket.tokens < 1) return Math.max(1, Math.ceil((1 - bucket.tokens) / refillPerMs / 1000));
    bucket.tokens -= 1;
    return null;
  }

  function rateLimited(retryAfterSeconds: number): Response {
    return jsonResponse({ error: true, message: TOO_MANY_REQUESTS }, 429, {
      "ratelimit-limit": String(capacity),
      "ratelimit-remaining": "0",
      "ratelimit-reset": String(Math.ceil(now() / 1000) + Math.ceil(retryAfterSeconds)),
      "retry-after": String(Math.ceil(retryAfterSeconds)),
    });
  }

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname.replace(/\/+$/, "");
    const match = /^\/api\/v1\/(plants|species)(?:\/([^/]+))?$/.exec(path);
    if (req.method !== "GET" || !match) return notFound(`No route matches [${req.method}] "${url.pathname}"`);

    // The server reads `token` from the query, else the last word of the Authorization header.
    const token = url.searchParams.get("token") ?? bearerToken(req);
    if (!token) return unauthorized("An access token is required to access this resource. See https://trefle.io");
    if (!apiKeys.has(token)) return unauthorized("Invalid access token");
    const wait = throttle(token);
    if (wait !== null) return rateLimited(wait);

    const [, resource, idOrAction] = match as unknown as [string, "plants" | "species", string | undefined];
    if (idOrAction === "search") return search(url);
    if (idOrAction === undefined) return list(url);
    const species = findSpeciesByTrefleIdOrSlug(decodeURIComponent(idOrAction));
    if (!species) return notFound(`Couldn't find ${resource === "plants" ? "Plant" : "Species"} with 'id'=${idOrAction}`);
    const data = resource === "plants" ? plantDetail(species) : speciesDetail(species);
    return jsonResponse({ data, meta: { last_modified: LAST_MODIFIED } }, 200, { "cache-control": "max-age=604800, public" });
  }

  return defineEmulator<CommonFailure>({
    name: "trefle",
    failures: COMMON_FAILURES,
    route,
    faults: {
      rateLimited,
      serverError: () => jsonResponse({ error: true, message: "Internal Server Error" }, 500),
      malformedSample: { data: [speciesLight(SPECIES[0] as Species)], links: { self: "/api/v1/species" }, meta: { total: 1 } },
    },
    resetState() {
      buckets = new Map();
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Errors: note the plural `messages` on 401 and the singular `message` elsewhere (upstream quirk).

function unauthorized(messages: string): Response {
  return jsonResponse({ error: true, messages }, 401);
}

function notFound(message: string): Response {
  return jsonResponse({ error: true, message }, 404);
}

// ---------------------------------------------------------------------------------------------
// Lists

function search(url: URL): Response {
  const q = (url.searchParams.get("q") ?? "").trim().toLowerCase();
  if (q === "") return jsonResponse({ error: true, message: "param is missing or the value is empty: q" }, 422);
  const matches = SPECIES.map((species) => ({ species, rank: searchRank(species, q) }))
    .filter((entry) => entry.rank !== null)
    .sort((a, b) => (a.rank as number) - (b.rank as number))
    .map((entry) => entry.species);
  const rawLimit = Number(url.searchParams.get("limit") ?? TREFLE_PAGE_SIZE);
  const limit = Number.isInteger(rawLimit) && rawLimit >= 1 ? Math.min(rawLimit, MAX_SEARCH_LIMIT) : TREFLE_PAGE_SIZE;
  return paginate(url, matches, limit);
}

/** 0 exact name, 1 prefix, 2 substring (scientific, common names, synonyms, family, genus). */
function searchRank(species: Species, q: string): number | null {
  const names = [
    species.scientificName,
    ...species.commonNames.en,
    ...species.commonNames.fr,
    ...species.synonyms,
    species.family,
    species.genus,
  ].map((name) => name.toLowerCase());
  if (names.includes(q)) return 0;
  if (names.some((name) => name.startsWith(q))) return 1;
  if (names.some((name) => name.includes(q))) return 2;
  return null;
}

function list(url: URL): Response {
  let items = [...SPECIES];
  for (const [key, value] of url.searchParams) {
    const param = /^(filter|filter_not|range|order)\[([a-z_]+)\]$/.exec(key);
    if (!param) continue;
    const [, kind, field] = param as unknown as [string, "filter" | "filter_not" | "range" | "order", string];
    if (kind === "filter" && FILTERABLE_FIELDS.has(field)) items = items.filter((s) => matchesFilter(s, field, value));
    if (kind === "filter_not" && FILTERABLE_FIELDS.has(field)) items = items.filter((s) => !matchesFilter(s, field, value));
    if (kind === "range" && field in RANGEABLE) items = items.filter((s) => inRange(RANGEABLE[field]?.(s) ?? null, value));
    if (kind === "order") items = orderBy(items, field, value);
  }
  return paginate(url, items, TREFLE_PAGE_SIZE);
}

const EDIBLE_PART_NAMES: Record<string, string> = {
  fruit: "fruits",
  leaves: "leaves",
  seeds: "seeds",
  flowers: "flowers",
  roots: "roots",
  stem: "stem",
};

/** The filterable value(s) of a species; null where Trefle would hold no data. */
function filterValues(species: Species, field: string): string[] | null {
  const { growth } = species;
  switch (field) {
    case "author":
      return [species.authorship];
    case "bloom_months":
      return growth.bloomMonths;
    case "common_name":
      return species.commonNames.en.slice(0, 1);
    case "duration":
      return growth.duration;
    case "edible":
      return [String(species.edibleParts !== null)];
    case "edible_part":
      return species.edibleParts?.map((part) => EDIBLE_PART_NAMES[part] ?? part) ?? null;
    case "family_common_name":
      return [species.familyCommonName];
    case "family_name":
      return [species.family];
    case "flower_color":
      return growth.flowerColor;
    case "flower_conspicuous":
      return growth.flowerColor ? ["true"] : null;
    case "foliage_color":
      return growth.foliageColor;
    case "genus_name":
      return [species.genus];
    case "growth_habit":
      return [growth.growthHabit];
    case "rank":
      return [species.rank];
    case "scientific_name":
      return [species.scientificName];
    case "status":
      return ["accepted"];
    case "vegetable":
      return [String(species.vegetable)];
    default:
      return null;
  }
}

/** `filter[field]=a,b` matches any listed value, case-insensitively; `null` matches missing data. */
function matchesFilter(species: Species, field: string, rawValues: string): boolean {
  const wanted = rawValues.split(",").map((v) => v.trim().toLowerCase());
  const actual = filterValues(species, field);
  if (actual === null) return wanted.includes("null");
  return actual.some((value) => wanted.includes(value.toLowerCase()));
}

const cToF = (c: number | null) => (c === null ? null : Math.round(c * 1.8 + 32));

const RANGEABLE: Record<string, (s: Species) => number | null> = {
  atmospheric_humidity: (s) => s.growth.atmosphericHumidity,
  light: (s) => s.growth.light,
  soil_humidity: (s) => s.growth.soilHumidity,
  ph_minimum: (s) => s.growth.phMinimum,
  ph_maximum: (s) => s.growth.phMaximum,
  minimum_temperature_deg_c: (s) => s.growth.minimumTemperatureC,
  minimum_temperature_deg_f: (s) => cToF(s.growth.minimumTemperatureC),
  maximum_temperature_deg_c: (s) => s.growth.maximumTemperatureC,
  maximum_temperature_deg_f: (s) => cToF(s.growth.maximumTemperatureC),
  average_height_cm: (s) => s.growth.averageHeightCm,
  maximum_height_cm: (s) => s.growth.maximumHeightCm,
  year: (s) => s.year,
};

/** `range[field]=min,max`, either side may be empty; species without data never match. */
function inRange(value: number | null, range: string): boolean {
  if (value === null) return false;
  const [min, max] = range.split(",").map((bound) => (bound === undefined || bound.trim() === "" ? null : Number(bound)));
  return (min === null || min === undefined || value >= min) && (max === null || max === undefined || value <= max);
}

function orderBy(items: Species[], field: string, direction: string): Species[] {
  const numeric = RANGEABLE[field];
  const key = (s: Species): string | number | null => numeric?.(s) ?? filterValues(s, field)?.[0] ?? null;
  if (!numeric && !FILTERABLE_FIELDS.has(field)) return items;
  const sign = direction.toLowerCase() === "desc" ? -1 : 1;
  return [...items].sort((a, b) => {
    const [ka, kb] = [key(a), key(b)];
    if (ka === kb) return 0;
    if (ka === null) return 1;
    if (kb === null) return -1;
    return (ka < kb ? -1 : 1) * sign;
  });
}

/**
 * `{data, links, meta:{total}}`. Links are server-relative like upstream, keep the query minus
 * the token, and omit `prev`/`next` at the edges (Ruby's `.compact`). A page past the end is a
 * 404 (pagy overflow), except page 1 of an empty list.
 */
function paginate(url: URL, items: Species[], perPage: number): Response {
  const rawPage = Number(url.searchParams.get("page") ?? "1");
  const page = Number.isInteger(rawPage) && rawPage >= 1 ? rawPage : 1;
  const lastPage = Math.max(1, Math.ceil(items.length / perPage));
  if (page > lastPage) return notFound(`expected :page in 1..${lastPage}; got ${page}`);

  const pageLink = (target: number | null) => {
    const params = new URLSearchParams([...url.searchParams].filter(([key]) => key !== "token" && key !== "page"));
    if (target !== null) params.set("page", String(target));
    params.sort();
    const query = params.toString();
    return query ? `${url.pathname}?${query}` : url.pathname;
  };
  const selfParams = new URLSearchParams([...url.searchParams].filter(([key]) => key !== "token"));
  selfParams.sort();
  const links: Record<string, string> = {
    self: selfParams.toString() ? `${url.pathname}?${selfParams}` : url.pathname,
    first: pageLink(1),
  };
  if (page > 1) links.prev = pageLink(page - 1);
  if (page < lastPage) links.next = pageLink(page + 1);
  links.last = pageLink(lastPage);

  const data = items.slice((page - 1) * perPage, page * perPage).map(speciesLight);
  return jsonResponse({ data, links, meta: { total: items.length } });
}

// ---------------------------------------------------------------------------------------------
// Serializers

function speciesLinks(species: Species) {
  return {
    self: `/api/v1/species/${species.slug}`,
    plant: `/api/v1/plants/${species.slug}`,
    genus: `/api/v1/genus/${species.genus.toLowerCase()}`,
  };
}

function imageUrl(species: Species): string {
  return `${TREFLE_IMAGE_HOST}/image/o/${species.slug}.jpg`;
}

function speciesLight(species: Species) {
  return {
    id: species.trefleId,
    common_name: species.commonNames.en[0] ?? null,
    slug: species.slug,
    scientific_name: species.scientificName,
    year: species.year,
    bibliography: species.bibliography,
    author: species.authorship,
    status: "accepted",
    rank: species.rank,
    family_common_name: species.familyCommonName,
    family: species.family,
    genus_id: species.genusId,
    genus: species.genus,
    image_url: imageUrl(species),
    synonyms: species.synonyms,
    links: speciesLinks(species),
  };
}

function speciesDetail(species: Species) {
  const { growth } = species;
  const distributionZone = (name: string, index: number) => {
    const slug = name.toLowerCase().replace(/[^a-z]+/g, "-");
    return {
      id: 100 + ((species.trefleId + index) % 300),
      name,
      slug,
      tdwg_code: name
        .replace(/[^A-Za-z]/g, "")
        .slice(0, 3)
        .toUpperCase(),
      tdwg_level: 3,
      species_count: 1000 + ((species.trefleId * (index + 1)) % 9000),
      links: {
        self: `/api/v1/distributions/${slug}`,
        plants: `/api/v1/distributions/${slug}/plants`,
        species: `/api/v1/distributions/${slug}/species`,
      },
    };
  };
  const image = (kind: string) => ({
    id: species.trefleId * 10 + kind.length,
    image_url: `${TREFLE_IMAGE_HOST}/image/o/${species.slug}-${kind}.jpg`,
    copyright: "Emulator Contributor / cc-by-sa 4.0",
  });
  return {
    ...speciesLight(species),
    synonyms: species.synonyms.map((name, i) => ({ id: species.trefleId * 100 + i, name, author: null, sources: [] })),
    observations: species.nativeRange.join(", "),
    vegetable: species.vegetable,
    edible: species.edibleParts !== null,
    edible_part: filterValues(species, "edible_part"),
    duration: growth.duration,
    images: {
      flower: growth.flowerColor ? [image("flower")] : [],
      leaf: [image("leaf")],
      habit: [image("habit")],
      fruit: [],
      bark: [],
      other: [],
    },
    common_names: species.commonNames,
    distribution: { native: species.nativeRange, introduced: [] },
    distributions: { native: species.nativeRange.map(distributionZone), introduced: [], doubtful: [], absent: [], extinct: [] },
    flower: { color: growth.flowerColor, conspicuous: growth.flowerColor ? true : null },
    foliage: { texture: null, color: growth.foliageColor, leaf_retention: null },
    fruit_or_seed: { conspicuous: null, color: null, shape: null, seed_persistence: null },
    sources: [
      {
        id: "powo",
        name: "POWO",
        url: `https://powo.science.kew.org/taxon/urn:lsid:ipni.org:names:${species.powoId}`,
        citation: null,
        last_update: LAST_MODIFIED,
      },
      { id: "gbif", name: "GBIF", url: `https://www.gbif.org/species/${species.gbifId}`, citation: null, last_update: LAST_MODIFIED },
    ],
    specifications: {
      ligneous_type: null,
      growth_form: null,
      growth_habit: growth.growthHabit,
      growth_rate: null,
      average_height: { cm: growth.averageHeightCm },
      maximum_height: { cm: growth.maximumHeightCm },
      nitrogen_fixation: null,
      shape_and_orientation: null,
      toxicity: species.toxicity,
    },
    growth: {
      description: null,
      sowing: null,
      days_to_harvest: null,
      row_spacing: { cm: null },
      spread: { cm: null },
      ph_maximum: growth.phMaximum,
      ph_minimum: growth.phMinimum,
      light: growth.light,
      atmospheric_humidity: growth.atmosphericHumidity,
      growth_months: null,
      bloom_months: growth.bloomMonths,
      fruit_months: null,
      minimum_precipitation: { mm: null },
      maximum_precipitation: { mm: null },
      minimum_root_depth: { cm: null },
      minimum_temperature: { deg_f: cToF(growth.minimumTemperatureC), deg_c: growth.minimumTemperatureC },
      maximum_temperature: { deg_f: cToF(growth.maximumTemperatureC), deg_c: growth.maximumTemperatureC },
      soil_nutriments: null,
      soil_salinity: null,
      soil_texture: null,
      soil_humidity: growth.soilHumidity,
    },
  };
}

function plantDetail(species: Species) {
  const genusSlug = species.genus.toLowerCase();
  const familySlug = species.family.toLowerCase();
  return {
    id: species.trefleId,
    common_name: species.commonNames.en[0] ?? null,
    slug: species.slug,
    scientific_name: species.scientificName,
    main_species_id: species.trefleId,
    image_url: imageUrl(species),
    year: species.year,
    bibliography: species.bibliography,
    author: species.authorship,
    family_common_name: species.familyCommonName,
    genus_id: species.genusId,
    observations: species.nativeRange.join(", "),
    vegetable: species.vegetable,
    links: {
      self: `/api/v1/plants/${species.slug}`,
      species: `/api/v1/plants/${species.slug}/species`,
      genus: `/api/v1/genus/${genusSlug}`,
    },
    main_species: speciesDetail(species),
    genus: {
      id: species.genusId,
      name: species.genus,
      slug: genusSlug,
      links: {
        self: `/api/v1/genus/${genusSlug}`,
        plants: `/api/v1/genus/${genusSlug}/plants`,
        species: `/api/v1/genus/${genusSlug}/species`,
        family: `/api/v1/families/${familySlug}`,
      },
    },
    family: {
      id: species.genusId * 7,
      name: species.family,
      common_name: species.familyCommonName,
      slug: familySlug,
      links: { self: `/api/v1/families/${familySlug}`, genus: `/api/v1/families/${familySlug}/genus` },
    },
    species: [],
    subspecies: [],
    varieties: [],
    hybrids: [],
    forms: [],
    subvarieties: [],
    sources: speciesDetail(species).sources,
  };
}
