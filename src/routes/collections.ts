/**
 * Collections and plants (API.md §5): the owner's CRUD under /plant-identification/, and the
 * read-only public view of a user's public collections under /users/{username}/. Other users'
 * collections and plants answer 404, never 403. Plants are written as JSON, or as multipart
 * when they carry a photo (`image`, validated like every upload, stored content-addressed in R2).
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { createRouter, routeSet, documentOnly, noContentAfter } from "./router";
import { AppError, fieldErrorsFrom, type FieldErrors } from "../lib/errors";
import { UPLOAD_RULES, validateImageUpload, type ValidatedImage } from "../lib/images";
import { requireAuth, userIdOf } from "../middleware/auth";
import {
  addPlant,
  changePlant,
  collectionBody,
  createCollection,
  deleteCollection,
  deletePlant,
  ownCollection,
  ownPlant,
  plantBody,
  listCollections,
  listPlants,
  listPublicCollections,
  publicCollectionWithPlants,
  publicPlantBody,
  updateCollection,
  type PlantFields,
} from "../services/collections";
import { pageOf, PaginationQuery } from "./pagination";
import {
  BooleanQuery,
  boundedJsonObject,
  jsonBody,
  pageSchema,
  errorResponse,
  requestJson,
  noContent,
  filePart,
  IdParam,
  errorResponses,
} from "./schemas";
import { readMultipartForm, throwIfFieldErrors, parseFields, readJsonFields } from "./uploads";
import { HOUR_MS } from "../lib/durations";

const tags = ["Collections and plants"];
const CARE_JSON_MAX_BYTES = 16 * 1024;
const errors = errorResponses(400, 401, 404);

// ---------------------------------------------------------------------------------------------
// Schemas

export const CollectionSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    description: z.string(),
    is_public: z.boolean(),
    is_default: z.boolean().openapi({ description: "The collection made at registration; it cannot be deleted." }),
    plant_count: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Collection");

const collectionFields = {
  name: z
    .string()
    .trim()
    .min(1, "This field may not be blank.")
    .max(100, "Ensure this field has no more than 100 characters.")
    .openapi({
      description:
        "Stored composed (Unicode NFC). Unique among your collections whatever the case or form, in any script: " +
        '"Küche", "KÜCHE", "Ku\u0308che" and fullwidth "ｋüche" are one name (409 `DUPLICATE_COLLECTION`).',
    }),
  description: z.string().max(1000, "Ensure this field has no more than 1000 characters."),
  is_public: z.boolean(),
};
const CollectionCreate = z
  .object({
    name: collectionFields.name,
    description: collectionFields.description.optional(),
    is_public: collectionFields.is_public.optional(),
  })
  .strict()
  .openapi("CollectionCreate");
const CollectionPatch = z.object(collectionFields).partial().strict().openapi("CollectionUpdate");

const PublicPlantSchema = z
  .object({
    id: z.uuid(),
    collection: z.uuid(),
    species: z.uuid().nullable(),
    species_scientific_name: z.string().nullable(),
    nickname: z.string(),
    acquisition_date: z.string().nullable(),
    is_alive: z.boolean(),
    image_url: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi("PublicPlant", { description: "A plant as others see it: notes, location and care notes stay private." });

/** The owner's view: the public one and the private fields (as services/collections' plantBody). */
export const PlantSchema = PublicPlantSchema.extend({
  result_id: z.uuid().nullable().openapi({ description: "The identification result the plant was added from, if any." }),
  location_in_home: z.string(),
  notes: z.string(),
  care_instructions_json: z.record(z.string(), z.unknown()).nullable(),
  updated_at: z.string(),
}).openapi("Plant", { description: "A plant as its owner sees it." });

/** The furthest-ahead time zone is UTC+14: a date after "today" there is in the future everywhere. */
function latestPastDate(): string {
  return new Date(Date.now() + 14 * HOUR_MS).toISOString().slice(0, 10);
}

const plantFields = {
  collection: z.uuid().openapi({ description: "One of your collections (default: your default collection)." }),
  species: z.uuid().nullable().openapi({ description: "A species id from /species/." }),
  nickname: z.string().trim().max(100, "Ensure this field has no more than 100 characters."),
  acquisition_date: z.iso
    .date({ message: "Enter a date as YYYY-MM-DD.", abort: true })
    .refine((d) => d <= latestPastDate(), "Acquisition date cannot be in the future.")
    .nullable(),
  location_in_home: z.string().max(100, "Ensure this field has no more than 100 characters."),
  notes: z.string().max(2000, "Ensure this field has no more than 2000 characters."),
  is_alive: z.boolean(),
  care_instructions_json: boundedJsonObject(CARE_JSON_MAX_BYTES).nullable(),
};
const PlantCreate = z.object(plantFields).partial().strict().openapi("PlantCreate");
const PlantPatch = z
  .object({ ...plantFields, image: z.null().openapi({ description: "null removes the photo (JSON only)." }) })
  .partial()
  .strict()
  .openapi("PlantUpdate");

const PlantUpload = z
  .strictObject({
    image: filePart("JPEG, PNG or WebP (the upload rules of identification photos)").optional(),
    collection: z.string().optional(),
    species: z.string().optional().openapi({ description: "Species id; empty for none." }),
    nickname: z.string().optional(),
    acquisition_date: z.string().optional().openapi({ description: "YYYY-MM-DD; empty for none." }),
    location_in_home: z.string().optional(),
    notes: z.string().optional(),
    is_alive: z.string().optional().openapi({ description: "true or false" }),
    care_instructions_json: z.string().optional().openapi({ description: "A JSON object (≤ 16 KiB); empty for none." }),
  })
  .openapi("PlantUpload");

// ---------------------------------------------------------------------------------------------
// Plant bodies: JSON, or multipart with a photo

interface PlantInput {
  fields: PlantFields;
  image: ValidatedImage | null;
  removeImage: boolean;
}

/** Multipart parts are text: turn them into the JSON shapes the schemas check. */
function formFieldValue(name: string, value: string, fieldErrors: FieldErrors): unknown {
  if (name === "is_alive") return value === "true" || value === "1" ? true : value === "false" || value === "0" ? false : value;
  if ((name === "species" || name === "acquisition_date" || name === "care_instructions_json") && value === "") return null;
  if (name === "care_instructions_json") {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      fieldErrors[name] = ["Enter a valid JSON object."];
      return undefined;
    }
  }
  return value;
}

/**
 * Reads and validates the whole body — fields and photo — before anything is written, so a
 * rejected upload stores nothing. 413 when the photo is too large, else 400 with every problem.
 */
async function readPlantInput(c: Context<AppEnv>, schema: typeof PlantCreate | typeof PlantPatch): Promise<PlantInput> {
  const contentType = (c.req.header("Content-Type") ?? "").toLowerCase();
  const fieldErrors: FieldErrors = {};
  if (contentType.startsWith("multipart/form-data")) {
    const form = await readMultipartForm(c);
    let image: ValidatedImage | null = null;
    const text: Record<string, unknown> = {};
    for (const [name, value] of form.entries()) {
      if (name === "image") {
        if (!(value instanceof File)) {
          fieldErrors.image = ["Expected a file."];
          continue;
        }
        const result = await validateImageUpload(
          { bytes: new Uint8Array(await value.arrayBuffer()), declaredType: value.type, filename: value.name },
          UPLOAD_RULES,
        );
        if (result.ok) image = result.image;
        else fieldErrors.image = [result.message];
      } else if (typeof value !== "string") {
        fieldErrors[name] = ["Expected text, not a file."];
      } else {
        const converted = formFieldValue(name, value, fieldErrors);
        if (converted !== undefined) text[name] = converted;
      }
    }
    const fields = parseFields(schema, text, fieldErrors);
    throwIfFieldErrors(fieldErrors);
    return { fields: fields as PlantFields, image, removeImage: false };
  }
  if (/^application\/([a-z.-]+\+)?json/.test(contentType)) {
    const { image, ...fields } = (await readJsonFields(c, schema, "Malformed JSON body.")) as PlantFields & { image?: null };
    return { fields, image: null, removeImage: image === null };
  }
  throw new AppError("UNSUPPORTED_MEDIA_TYPE", 415, "Send the plant as application/json, or as multipart/form-data with an image.");
}

function plantIdParam(c: Context<AppEnv>): string {
  const input = { id: c.req.param("id") };
  const parsed = IdParam.safeParse(input);
  if (!parsed.success) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", fieldErrorsFrom(parsed.error, input));
  return parsed.data.id;
}

// ---------------------------------------------------------------------------------------------
// Routes

export function collectionRoutes() {
  const app = createRouter();
  const open = routeSet({ tags, errors });
  const publicErrors = { 400: errors[400], 404: errorResponse(404, "No such user, profile not public, or collection not public") };
  const publicRead = routeSet({ tags, errors: publicErrors });
  const mine = open.signedIn();

  // Collections (owner) ------------------------------------------------------------------------

  const getCollections = mine
    .get("/plant-identification/collections", "Your collections (default first, then oldest first)")
    .io({ query: PaginationQuery }, { 200: jsonBody(pageSchema(CollectionSchema, "CollectionPage"), "Page of collections") });
  app.openapi(getCollections, async (c) => {
    const { page, page_size } = c.req.valid("query");
    const { count, rows } = await listCollections(c.env, userIdOf(c), { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(collectionBody)), 200);
  });

  const postCollections = mine
    .post("/plant-identification/collections", "Create a collection (names are unique per user, case-insensitively)")
    .io(
      { body: requestJson(CollectionCreate) },
      {
        201: jsonBody(CollectionSchema, "Created"),
        409: errorResponse(409, "You already have a collection with this name, or the most collections allowed (`COLLECTION_LIMIT`)"),
      },
    );
  app.openapi(postCollections, async (c) => c.json(collectionBody(await createCollection(c.env, userIdOf(c), c.req.valid("json"))), 201));

  const getCollectionsById = mine
    .get("/plant-identification/collections/{id}", "One of your collections (its plants: /plants/?collection={id})")
    .io({ params: IdParam }, { 200: jsonBody(CollectionSchema, "Collection") });
  app.openapi(getCollectionsById, async (c) =>
    c.json(collectionBody(await ownCollection(c.env, userIdOf(c), c.req.valid("param").id)), 200),
  );

  const patchCollectionsById = mine
    .patch("/plant-identification/collections/{id}", "Rename, describe or publish one of your collections")
    .io(
      { params: IdParam, body: requestJson(CollectionPatch) },
      { 200: jsonBody(CollectionSchema, "Updated"), 409: errorResponse(409, "You already have a collection with this name") },
    );
  app.openapi(patchCollectionsById, async (c) =>
    c.json(collectionBody(await updateCollection(c.env, userIdOf(c), c.req.valid("param").id, c.req.valid("json"))), 200),
  );

  const deleteCollectionsById = mine.delete("/plant-identification/collections/{id}", "Delete one of your collections").io(
    { params: IdParam, query: z.object({ delete_plants: BooleanQuery.optional() }) },
    { ...noContent("Deleted"), 409: errorResponse(409, "Default collection, or not empty") },
    {
      description:
        "An empty collection is deleted. One with plants answers 409 `COLLECTION_NOT_EMPTY` unless `delete_plants=true`, " +
        "which deletes its plants too (move plants elsewhere first with PATCH /plants/{id} `collection` to keep them). " +
        "The default collection cannot be deleted (409 `DEFAULT_COLLECTION`).",
    },
  );
  app.openapi(deleteCollectionsById, (c) =>
    noContentAfter(c, deleteCollection(c.env, userIdOf(c), c.req.valid("param").id, c.req.valid("query").delete_plants === "true")),
  );

  // Plants (owner) -----------------------------------------------------------------------------

  const getPlants = mine.get("/plant-identification/plants", "Your plants, newest first").io(
    {
      query: PaginationQuery.extend({
        collection: z.uuid().optional().openapi({ description: "Only this collection (must be yours, else 404)" }),
        is_alive: BooleanQuery.optional(),
      }),
    },
    { 200: jsonBody(pageSchema(PlantSchema, "PlantPage"), "Page of plants") },
  );
  app.openapi(getPlants, async (c) => {
    const { page, page_size, collection, is_alive } = c.req.valid("query");
    const userId = userIdOf(c);
    const filter = { userId, collectionId: collection, isAlive: is_alive === undefined ? undefined : is_alive === "true" };
    const { count, rows } = await listPlants(c.env, filter, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(plantBody)), 200);
  });

  const createPlantRoute = mine.post("/plant-identification/plants", "Add a plant (JSON, or multipart with an `image`)").io(
    {
      body: { content: { "application/json": { schema: PlantCreate }, "multipart/form-data": { schema: PlantUpload } }, required: true },
    },
    {
      201: jsonBody(PlantSchema, "Created"),
      409: errorResponse(409, "The account has the most plants allowed", "PLANT_LIMIT"),
      413: errorResponse(
        413,
        "Image too large (`FILE_TOO_LARGE`), or would take the account past its storage allowance (`STORAGE_FULL`)",
        "FILE_TOO_LARGE",
      ),
      415: errorResponse(415, "Neither JSON nor multipart"),
      429: errorResponse(429, "Too many plant photos stored; see Retry-After", "RATE_LIMITED"),
    },
  );
  // Registered for the document, routed by hand: one schema checks both body kinds.
  app.openAPIRegistry.registerPath(documentOnly(createPlantRoute));
  app.post(createPlantRoute.path, requireAuth, async (c) => {
    const userId = userIdOf(c);
    const input = await readPlantInput(c, PlantCreate);
    const row = await addPlant(c.env, userId, input.fields, input.image);
    return c.json(plantBody(row), 201);
  });

  const getPlantsById = mine
    .get("/plant-identification/plants/{id}", "One of your plants")
    .io({ params: IdParam }, { 200: jsonBody(PlantSchema, "Plant") });
  app.openapi(getPlantsById, async (c) => c.json(plantBody(await ownPlant(c.env, userIdOf(c), c.req.valid("param").id)), 200));

  const patchPlantRoute = mine
    .patch(
      "/plant-identification/plants/{id}",
      "Update one of your plants; `collection` moves it; a multipart `image` replaces the photo, JSON `image: null` removes it",
    )
    .io(
      {
        params: IdParam,
        body: { content: { "application/json": { schema: PlantPatch }, "multipart/form-data": { schema: PlantUpload } }, required: true },
      },
      {
        200: jsonBody(PlantSchema, "Updated"),
        409: errorResponse(409, "The target collection already holds this identified plant"),
        413: errorResponse(
          413,
          "Image too large (`FILE_TOO_LARGE`), or would take the account past its storage allowance (`STORAGE_FULL`)",
          "FILE_TOO_LARGE",
        ),
        415: errorResponse(415, "Neither JSON nor multipart"),
        429: errorResponse(429, "Too many plant photos stored; see Retry-After", "RATE_LIMITED"),
      },
    );
  app.openAPIRegistry.registerPath(documentOnly(patchPlantRoute));
  app.patch("/plant-identification/plants/:id", requireAuth, async (c) => {
    const userId = userIdOf(c);
    const before = await ownPlant(c.env, userId, plantIdParam(c));
    const input = await readPlantInput(c, PlantPatch);
    const row = await changePlant(c.env, userId, before, input.fields, input.image, input.removeImage);
    return c.json(plantBody(row), 200);
  });

  const deletePlantsById = mine
    .delete("/plant-identification/plants/{id}", "Delete one of your plants (and its photo unless something else uses it)")
    .io({ params: IdParam }, noContent("Deleted"));
  app.openapi(deletePlantsById, (c) => noContentAfter(c, deletePlant(c.env, userIdOf(c), c.req.valid("param").id)));

  // Public collections -------------------------------------------------------------------------

  const Username = z.object({ username: z.string().min(1).max(150) });

  const getUsersByUsernameCollections = publicRead
    .get("/users/{username}/collections", "A user's public collections (anyone; users with a non-public profile show none: 404)")
    .io(
      { params: Username, query: PaginationQuery },
      { 200: jsonBody(pageSchema(CollectionSchema, "PublicCollectionPage"), "Page of public collections") },
    );
  app.openapi(getUsersByUsernameCollections, async (c) => {
    const { page, page_size } = c.req.valid("query");
    const viewerId = c.get("user")?.id ?? null;
    const { count, rows } = await listPublicCollections(c.env, c.req.valid("param").username, viewerId, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(collectionBody)), 200);
  });

  const getUsersByUsernameCollectionsById = publicRead
    .get(
      "/users/{username}/collections/{id}",
      "One public collection with a page of its plants (newest first); private collections answer 404",
    )
    .io(
      { params: Username.extend(IdParam.shape), query: PaginationQuery },
      {
        200: jsonBody(
          CollectionSchema.extend({ plants: pageSchema(PublicPlantSchema, "PublicPlantPage") }).openapi("PublicCollection"),
          "Collection and its plants",
        ),
      },
    );
  app.openapi(getUsersByUsernameCollectionsById, async (c) => {
    const { username, id } = c.req.valid("param");
    const { page, page_size } = c.req.valid("query");
    const viewerId = c.get("user")?.id ?? null;
    const { collection, plants } = await publicCollectionWithPlants(c.env, username, viewerId, id, { page, pageSize: page_size });
    const plantPage = pageOf(c.req.url, page, page_size, plants.count, plants.rows.map(publicPlantBody));
    return c.json({ ...collectionBody(collection), plants: plantPage }, 200);
  });

  return app;
}
