/**
 * Saved care cards (API.md §5): `/plant-identification/saved-care-instructions/` CRUD for the
 * signed-in user, one card per scientific name (409 on duplicates), `?is_favorite=` filter.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "./router";
import { requireAuth } from "../middleware/auth";
import { createSavedCare, deleteSavedCare, ownSavedCare, savedCareBody, listSavedCare, updateSavedCare } from "../services/saved-care";
import { pageOf, PaginationQuery } from "./pagination";
import { BooleanQuery, boundedJsonObject, jsonBody, pageSchema, errorResponse } from "./schemas";

const tags = ["Saved care cards"];
const Id = z.object({ id: z.uuid() });
const CARE_MAX_BYTES = 16 * 1024;
const errors = { 400: errorResponse("Invalid input"), 401: errorResponse("Not signed in"), 404: errorResponse("Not found (or not yours)") };
const duplicate = { 409: errorResponse("You already saved a card for this scientific name") };

const SavedCareSchema = z
  .object({
    id: z.uuid(),
    scientific_name: z.string(),
    common_name: z.string(),
    care_instructions: z.record(z.string(), z.unknown()),
    is_favorite: z.boolean(),
    personal_notes: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("SavedCareInstructions");

const fields = {
  scientific_name: z.string().trim().min(1, "This field may not be blank.").max(200, "Ensure this field has no more than 200 characters."),
  common_name: z.string().trim().max(200, "Ensure this field has no more than 200 characters."),
  care_instructions: boundedJsonObject(CARE_MAX_BYTES),
  is_favorite: z.boolean(),
  personal_notes: z.string().max(2000, "Ensure this field has no more than 2000 characters."),
};
const SavedCareCreate = z
  .object({
    scientific_name: fields.scientific_name,
    common_name: fields.common_name.optional(),
    care_instructions: fields.care_instructions.optional(),
    is_favorite: fields.is_favorite.optional(),
    personal_notes: fields.personal_notes.optional(),
  })
  .strict()
  .openapi("SavedCareInstructionsCreate");
const SavedCarePatch = z.object(fields).partial().strict().openapi("SavedCareInstructionsUpdate");

export function savedCareRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags,
      summary: "Your saved care cards, newest first",
      middleware: [requireAuth] as const,
      request: { query: PaginationQuery.extend({ is_favorite: BooleanQuery.optional() }) },
      responses: { 200: jsonBody(pageSchema(SavedCareSchema, "SavedCareInstructionsPage"), "Page of cards"), ...errors },
    }),
    async (c) => {
      const { page, page_size, is_favorite } = c.req.valid("query");
      const isFavorite = is_favorite === undefined ? undefined : is_favorite === "true";
      const { count, rows } = await listSavedCare(c.env, c.get("user")!.id, isFavorite, { page, pageSize: page_size });
      return c.json(pageOf(c.req.url, page, page_size, count, rows.map(savedCareBody)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags,
      summary: "Save a care card (one per scientific name, case-insensitive)",
      middleware: [requireAuth] as const,
      request: { body: { content: { "application/json": { schema: SavedCareCreate } }, required: true } },
      responses: { 201: jsonBody(SavedCareSchema, "Saved"), ...duplicate, ...errors },
    }),
    async (c) => c.json(savedCareBody(await createSavedCare(c.env, c.get("user")!.id, c.req.valid("json"))), 201),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: `/{id}`,
      tags,
      summary: "One of your saved care cards",
      middleware: [requireAuth] as const,
      request: { params: Id },
      responses: { 200: jsonBody(SavedCareSchema, "Card"), ...errors },
    }),
    async (c) => c.json(savedCareBody(await ownSavedCare(c.env, c.get("user")!.id, c.req.valid("param").id)), 200),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: `/{id}`,
      tags,
      summary: "Update one of your saved care cards (favourite, notes, …)",
      middleware: [requireAuth] as const,
      request: { params: Id, body: { content: { "application/json": { schema: SavedCarePatch } }, required: true } },
      responses: { 200: jsonBody(SavedCareSchema, "Updated"), ...duplicate, ...errors },
    }),
    async (c) => c.json(savedCareBody(await updateSavedCare(c.env, c.get("user")!.id, c.req.valid("param").id, c.req.valid("json"))), 200),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: `/{id}`,
      tags,
      summary: "Delete one of your saved care cards",
      middleware: [requireAuth] as const,
      request: { params: Id },
      responses: { 204: { description: "Deleted" }, ...errors },
    }),
    async (c) => {
      await deleteSavedCare(c.env, c.get("user")!.id, c.req.valid("param").id);
      return c.body(null, 204);
    },
  );

  return app;
}
