/**
 * The species catalogue (API.md §4): list, detail and typo-tolerant search. Public.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { likeLiteral, searchSpecies, speciesBody, type SpeciesRow } from "../services/species";
import { pageOf, PaginationQuery, queryPage } from "./pagination";
import { ErrorSchema, jsonBody, pageSchema } from "./schemas";

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
  const app = new OpenAPIHono<AppEnv>({ strict: false });

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/plant-identification/species",
      tags,
      summary: "The species catalogue, most identified first",
      request: { query: PaginationQuery.extend({ search: z.string().max(100).optional(), family: z.string().max(100).optional() }) },
      responses: { 200: jsonBody(pageSchema(SpeciesSchema, "SpeciesPage"), "Species"), 400: jsonBody(ErrorSchema, "Invalid query") },
    }),
    async (c) => {
      const { page, page_size, search, family } = c.req.valid("query");
      const conditions: string[] = [];
      const binds: unknown[] = [];
      if (search) {
        const pattern = `%${likeLiteral(search.toLowerCase())}%`;
        conditions.push("(lower(scientific_name) LIKE ? ESCAPE '\\' OR lower(common_names) LIKE ? ESCAPE '\\')");
        binds.push(pattern, pattern);
      }
      if (family) {
        conditions.push("lower(family) = lower(?)");
        binds.push(family);
      }
      const { count, rows } = await queryPage<SpeciesRow>(c.env.DB, {
        select: "*",
        from: `FROM species ${conditions.length ? `WHERE ${conditions.join(" AND ")}` : ""}`,
        order: "identification_count DESC, scientific_name ASC",
        binds,
        page,
        pageSize: page_size,
      });
      c.header("Cache-Control", "public, max-age=60");
      return c.json(pageOf(c.req.url, page, page_size, count, rows.map(speciesBody)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/plant-identification/species/{id}",
      tags,
      summary: "One species",
      request: { params: z.object({ id: z.uuid() }) },
      responses: { 200: jsonBody(SpeciesSchema, "Species"), 400: jsonBody(ErrorSchema, "Bad id"), 404: jsonBody(ErrorSchema, "Unknown species") },
    }),
    async (c) => {
      const row = await c.env.DB.prepare("SELECT * FROM species WHERE id = ?").bind(c.req.valid("param").id).first<SpeciesRow>();
      if (!row) throw new AppError("NOT_FOUND", 404, "Species not found.");
      return c.json(speciesBody(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/plant-identification/search/plants",
      tags,
      summary: "Typo-tolerant search over scientific names, common names and families",
      request: {
        query: z.object({
          q: z.string().trim().min(1, "Enter something to search for.").max(100),
          limit: z.coerce.number().int().min(1).max(50).default(20),
        }),
      },
      responses: {
        200: jsonBody(
          z.object({ results: z.array(SpeciesSchema), total: z.number().int(), search_query: z.string(), source: z.literal("local") }).openapi("PlantSearch"),
          "Matches, best first",
        ),
        400: jsonBody(ErrorSchema, "Missing or too long query"),
      },
    }),
    async (c) => {
      const { q, limit } = c.req.valid("query");
      const { rows, total } = await searchSpecies(c.env, q, limit);
      return c.json({ results: rows.map(speciesBody), total, search_query: q, source: "local" as const }, 200);
    },
  );

  return app;
}
