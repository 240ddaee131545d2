/**
 * The species catalogue (API.md §4): list, detail and typo-tolerant search. Public.
 */
import { z } from "@hono/zod-openapi";
import { createRouter, routeSet } from "./router";
import { AppError } from "../lib/errors";
import { clientIp } from "../services/rate-limits";
import {
  getSpecies,
  listSpecies,
  lookupSpeciesOrUnavailable,
  normaliseScientificName,
  searchSpecies,
  speciesBody,
} from "../services/species";
import { cacheKey, cachedJson, canonicalReadUrl, notModified } from "./cached-reads";
import { pageOf, PaginationQuery } from "./pagination";
import { errorResponse, jsonBody, pageSchema, ScientificNameInput, searchText } from "./schemas";

const tags = ["Species"];

export const SpeciesSchema = z
  .object({
    id: z.uuid(),
    scientific_name: z.string(),
    common_names: z.array(z.string()),
    family: z.string(),
    genus: z.string(),
    gbif_id: z.number().nullable(),
    trefle_id: z.number().nullable(),
    plant_type: z.string().nullable(),
    light_requirements: z.string().nullable().openapi({ description: "full_sun | partial_sun | partial_shade | full_shade" }),
    water_requirements: z.string().nullable().openapi({ description: "low | moderate | high" }),
    hardiness_zone_min: z.number().nullable(),
    hardiness_zone_max: z.number().nullable(),
    soil_ph_min: z.number().nullable(),
    soil_ph_max: z.number().nullable(),
    mature_height_min_cm: z.number().nullable(),
    mature_height_max_cm: z.number().nullable(),
    bloom_time: z.string().nullable(),
    flower_color: z.string().nullable(),
    description: z.string(),
    image_url: z.string().nullable(),
    identification_count: z.number().int(),
    is_verified: z.boolean(),
    source: z.string(),
  })
  .openapi("Species");

export function speciesRoutes() {
  const app = createRouter();
  const plain = routeSet({ tags, errors: {} });

  const getSpeciesList = plain.get("/species", "The species catalogue, most identified first").io(
    {
      query: PaginationQuery.extend({
        search: searchText(100).optional().openapi({
          description:
            "A plain filter: species whose scientific or common name contains this text (case-insensitive in every script, accents not ignored, no typo tolerance), still most identified first. For the typo-tolerant search ranked by match quality use `GET /api/v1/plant-identification/search/plants/?q=` or `GET /api/v1/search/?q=`.",
        }),
        family: z.string().max(100).optional().openapi({ description: "Only this family (exact name, case-insensitive)." }),
      }),
    },
    { 200: jsonBody(pageSchema(SpeciesSchema, "SpeciesPage"), "Species"), 400: errorResponse(400, "Invalid query"), ...notModified },
  );
  app.openapi(getSpeciesList, async (c) => {
    const query = c.req.valid("query");
    const { page, page_size, search, family } = query;
    return cachedJson(c, "species", cacheKey("/species", query), async () => {
      const { count, rows } = await listSpecies(c.env, { search, family }, { page, pageSize: page_size });
      return pageOf(canonicalReadUrl(c, query), page, page_size, count, rows.map(speciesBody));
    });
  });

  // Before species/{id}, which would otherwise claim "lookup" as an (invalid) id.
  const getSpeciesLookup = plain
    .get("/species/lookup", "Find a species by scientific name: the catalogue first, else Trefle (stored as a new unverified species)")
    .io(
      {
        query: z.object({
          scientific_name: ScientificNameInput,
        }),
      },
      {
        200: jsonBody(SpeciesSchema, "The species"),
        400: errorResponse(400, "Missing or invalid name"),
        404: errorResponse(404, "Neither the catalogue nor Trefle knows it"),
        429: errorResponse(
          429,
          "Too many lookups of names the catalogue lacks (SPECIES_LOOKUP_RATE_LIMIT); see Retry-After",
          "RATE_LIMITED",
        ),
        503: errorResponse(503, "Not in the catalogue, and Trefle is unavailable (Retry-After)"),
      },
      {
        description:
          "Case and spacing are forgiven (`monstera  DELICIOSA` finds *Monstera deliciosa*). A species found only on Trefle is added to " +
          'the catalogue with `source: "trefle"` and `is_verified: false`; Trefle\'s answers (including "unknown") are cached for 24 h.',
      },
    );
  app.openapi(getSpeciesLookup, async (c) => {
    const name = normaliseScientificName(c.req.valid("query").scientific_name);
    const user = c.get("user");
    const budget = user ? `user:${user.id}` : `ip:${clientIp(c.req.raw)}`;
    const result = await lookupSpeciesOrUnavailable(c.env, name, c.get("logger"), budget);
    if (result.found === "none") {
      throw new AppError(
        "NOT_FOUND",
        404,
        result.reason === "unknown"
          ? `No species named ${name} in our catalogue or in Trefle.`
          : `No species named ${name} in our catalogue.`,
      );
    }
    c.header("Cache-Control", "public, max-age=60");
    return c.json(speciesBody(result.row), 200);
  });

  const getSpeciesById = plain.get("/species/{id}", "One species").io(
    { params: z.object({ id: z.uuid() }) },
    {
      200: jsonBody(SpeciesSchema, "Species"),
      400: errorResponse(400, "Bad id"),
      404: errorResponse(404, "Unknown species"),
      ...notModified,
    },
  );
  app.openapi(getSpeciesById, async (c) => {
    const { id } = c.req.valid("param");
    return cachedJson(c, "species", cacheKey(`/species/${id}`, {}), async () => speciesBody(await getSpecies(c.env, id)));
  });

  const getSearchPlants = plain.get("/search/plants", "Typo-tolerant search over scientific names, common names and families").io(
    {
      query: z.object({
        q: searchText(100).min(1, "Enter something to search for."),
        limit: z.coerce.number().int().min(1).max(50).default(20),
      }),
    },
    {
      200: jsonBody(
        z
          .object({ results: z.array(SpeciesSchema), total: z.number().int(), search_query: z.string(), source: z.literal("local") })
          .openapi("PlantSearch"),
        "Matches, best first",
      ),
      400: errorResponse(400, "Missing or too long query"),
      ...notModified,
    },
  );
  app.openapi(getSearchPlants, async (c) => {
    const { q, limit } = c.req.valid("query");
    return cachedJson(c, "species", cacheKey("/search/plants", { q, limit }), async () => {
      const { rows, total } = await searchSpecies(c.env, q, limit);
      return { results: rows.map(speciesBody), total, search_query: q, source: "local" as const };
    });
  });

  return app;
}
