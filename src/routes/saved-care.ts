/**
 * Saved care cards (API.md §5): `/plant-identification/saved-care-instructions/` CRUD for the
 * signed-in user, one card per scientific name (409 on duplicates), `?is_favorite=` filter.
 */
import { z } from "@hono/zod-openapi";
import { userIdOf } from "../middleware/auth";
import { createRouter, routeSet, noContentAfter } from "./router";
import { createSavedCare, deleteSavedCare, ownSavedCare, savedCareBody, listSavedCare, updateSavedCare } from "../services/saved-care";
import { pageOf, PaginationQuery } from "./pagination";
import {
  BooleanQuery,
  boundedJsonObject,
  errorResponse,
  errorResponses,
  IdParam,
  jsonBody,
  noContent,
  pageSchema,
  requestJson,
} from "./schemas";

const CARE_MAX_BYTES = 16 * 1024;
const duplicate = { 409: errorResponse(409, "You already saved a card for this scientific name") };

export const SavedCareSchema = z
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
  const mine = routeSet({ tags: ["Saved care cards"], errors: errorResponses(400, 401, 404) }).signedIn();
  const listQuery = PaginationQuery.extend({ is_favorite: BooleanQuery.optional() });
  const cardPage = pageSchema(SavedCareSchema, "SavedCareInstructionsPage");

  const getRoot = mine
    .get("/", "Your saved care cards, newest first")
    .io({ query: listQuery }, { 200: jsonBody(cardPage, "Page of cards") });
  app.openapi(getRoot, async (c) => {
    const { page, page_size, is_favorite } = c.req.valid("query");
    const isFavorite = is_favorite === undefined ? undefined : is_favorite === "true";
    const { count, rows } = await listSavedCare(c.env, { userId: userIdOf(c), isFavorite }, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(savedCareBody)), 200);
  });

  const postRoot = mine.post("/", "Save a care card (one per scientific name, case-insensitive)").io(
    { body: requestJson(SavedCareCreate) },
    {
      201: jsonBody(SavedCareSchema, "Saved"),
      409: errorResponse(409, "You already saved a card for this scientific name, or the most cards allowed (`CARE_CARD_LIMIT`)"),
    },
  );
  app.openapi(postRoot, async (c) => c.json(savedCareBody(await createSavedCare(c.env, userIdOf(c), c.req.valid("json"))), 201));

  const getById = mine.get("/{id}", "One of your saved care cards").io({ params: IdParam }, { 200: jsonBody(SavedCareSchema, "Card") });
  app.openapi(getById, async (c) => c.json(savedCareBody(await ownSavedCare(c.env, userIdOf(c), c.req.valid("param").id)), 200));

  const patchById = mine
    .patch("/{id}", "Update one of your saved care cards (favourite, notes, …)")
    .io({ params: IdParam, body: requestJson(SavedCarePatch) }, { 200: jsonBody(SavedCareSchema, "Updated"), ...duplicate });
  app.openapi(patchById, async (c) => {
    const row = await updateSavedCare(c.env, userIdOf(c), c.req.valid("param").id, c.req.valid("json"));
    return c.json(savedCareBody(row), 200);
  });

  const deleteById = mine.delete("/{id}", "Delete one of your saved care cards").io({ params: IdParam }, noContent("Deleted"));
  app.openapi(deleteById, (c) => noContentAfter(c, deleteSavedCare(c.env, userIdOf(c), c.req.valid("param").id)));

  return app;
}
