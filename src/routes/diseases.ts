/**
 * Plant health (API.md §4): disease requests (photos + symptoms → 202 → queue job with Plant.id
 * `/health_assessment` → live progress on the same WebSocket as identifications → ranked
 * results with treatments), the owner's confirmation of a diagnosis, and the public disease
 * database built from confirmed diagnoses. Other users' requests answer 404, never 403.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { enqueueJob } from "./enqueue";
import { requireAuth } from "../middleware/auth";
import {
  confirmDiseaseResult,
  confirmedDiseasesQuery,
  DISEASE_TYPES,
  failDiseaseRequest,
  getDiseaseRequest,
  insertDiseaseRequest,
  listDiseaseResults,
  PLANT_CONDITIONS,
  type DiseaseEntryRow,
  type DiseaseRequestRow,
  type DiseaseResultRow,
} from "../services/diseases";
import { enforceRateLimit } from "../services/rate-limits";
import { decodeImages, imageUrl, storeImages } from "../services/requests";
import { pageOf, PaginationQuery, queryPage, ownRequestsPage } from "./pagination";
import { ErrorSchema, jsonBody, pageSchema, searchText } from "./schemas";
import { MAX_IMAGES, readImageParts, readMultipartForm, textFields, throwIfFieldErrors } from "./uploads";

const tags = ["Plant health"];
const BASE = "/api/v1/plant-identification";
const STATUS = z.enum(["pending", "processing", "identified", "needs_help", "failed"]).openapi({
  description:
    "`identified`: a diagnosis was made (the plant looks healthy, or the best suggestion is ≥ 0.5 likely); `needs_help` otherwise, including photos that are not of a plant.",
});
const CONDITION = z.enum(PLANT_CONDITIONS).openapi({ description: "How badly the plant is affected, as the owner sees it." });
const DISEASE_TYPE = z.enum(DISEASE_TYPES).openapi({
  description:
    "From Plant.id's classification: Fungi → fungal, Bacteria → bacterial, viruses → viral, Oomycota/Chromista (water moulds) → oomycete, Animalia → pest, Abiotic → abiotic.",
});
const Id = z.object({ id: z.uuid() });
const errorBody = (description: string) => ({ description, content: { "application/json": { schema: ErrorSchema } } });
const errors = {
  400: errorBody("Invalid input"),
  401: errorBody("Not signed in"),
  404: errorBody("Not found (or not yours)"),
  429: errorBody("Rate limited"),
};

const TreatmentSchema = z
  .object({ biological: z.array(z.string()), chemical: z.array(z.string()), prevention: z.array(z.string()) })
  .openapi("DiseaseTreatment");

const DiseaseRequestSchema = z
  .object({
    request_id: z.uuid(),
    status: STATUS,
    ws_url: z.string().openapi({ description: "Progress of this request; `/ws/` carries it too." }),
    images: z.array(z.object({ url: z.string() })),
    symptoms_description: z.string(),
    plant_condition: CONDITION.nullable(),
    location: z.string(),
    is_plant: z.boolean().nullable(),
    is_healthy: z.boolean().nullable(),
    is_healthy_probability: z.number().nullable(),
    attempts: z.number().int(),
    error_message: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    processed_at: z.string().nullable(),
  })
  .openapi("DiseaseRequest");

const DiseaseResultSchema = z
  .object({
    id: z.uuid(),
    request_id: z.uuid(),
    name: z.string(),
    common_names: z.array(z.string()),
    probability: z.number().min(0).max(1),
    rank: z.number().int(),
    description: z.string(),
    treatment: TreatmentSchema,
    classification: z.array(z.string()),
    disease_type: DISEASE_TYPE,
    cause: z.string().nullable(),
    url: z.string().nullable(),
    similar_images: z.array(z.object({ url: z.string(), url_small: z.string().optional() }).passthrough()),
    is_confirmed: z.boolean(),
    confirmed_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi("DiseaseResult");

const DiseaseEntrySchema = z
  .object({
    name: z.string(),
    common_names: z.array(z.string()),
    disease_type: DISEASE_TYPE,
    description: z.string(),
    treatment: TreatmentSchema,
    classification: z.array(z.string()),
    cause: z.string().nullable(),
    url: z.string().nullable(),
    confirmed_diagnoses: z.number().int().min(1),
    last_confirmed_at: z.string(),
  })
  .openapi("DiseaseDatabaseEntry");

function requestBody(row: DiseaseRequestRow) {
  const bool = (v: number | null) => (v === null ? null : Boolean(v));
  return {
    request_id: row.id,
    status: row.status,
    ws_url: `/ws/plant-identification/requests/${row.id}/`,
    images: decodeImages(row).map((img) => ({ url: imageUrl(img) })),
    symptoms_description: row.symptoms_description,
    plant_condition: row.plant_condition,
    location: row.location,
    is_plant: bool(row.is_plant),
    is_healthy: bool(row.is_healthy),
    is_healthy_probability: row.is_healthy_probability,
    attempts: row.attempts,
    error_message: row.error_message,
    created_at: row.created_at,
    updated_at: row.updated_at,
    processed_at: row.processed_at,
  };
}

function treatmentOf(json: string) {
  const t = JSON.parse(json) as Partial<Record<"biological" | "chemical" | "prevention", string[]>>;
  return { biological: t.biological ?? [], chemical: t.chemical ?? [], prevention: t.prevention ?? [] };
}

function resultBody(row: DiseaseResultRow) {
  return {
    id: row.id,
    request_id: row.request_id,
    name: row.name,
    common_names: JSON.parse(row.common_names) as string[],
    probability: row.probability,
    rank: row.rank,
    description: row.description,
    treatment: treatmentOf(row.treatment),
    classification: JSON.parse(row.classification) as string[],
    disease_type: row.disease_type,
    cause: row.cause,
    url: row.url,
    similar_images: JSON.parse(row.similar_images) as { url: string; url_small?: string }[],
    is_confirmed: Boolean(row.is_confirmed),
    confirmed_at: row.confirmed_at,
    created_at: row.created_at,
  };
}

function entryBody(row: DiseaseEntryRow) {
  return {
    name: row.name,
    common_names: JSON.parse(row.common_names) as string[],
    disease_type: row.disease_type,
    description: row.description,
    treatment: treatmentOf(row.treatment),
    classification: JSON.parse(row.classification) as string[],
    cause: row.cause,
    url: row.url,
    confirmed_diagnoses: row.confirmations,
    last_confirmed_at: row.confirmed_at!,
  };
}

/** The caller's own disease request, or 404 (also for other users': no existence leak). */
async function ownRequest(c: Context<AppEnv>, id: string): Promise<DiseaseRequestRow> {
  const row = await getDiseaseRequest(c.env, id);
  if (!row || row.user_id !== c.get("user")!.id) throw new AppError("NOT_FOUND", 404, "Disease request not found.");
  return row;
}

const UploadForm = z
  .object({
    image_1: z.any().openapi({ type: "string", format: "binary" }),
    image_2: z.any().optional().openapi({ type: "string", format: "binary" }),
    image_3: z.any().optional().openapi({ type: "string", format: "binary" }),
    image_4: z.any().optional().openapi({ type: "string", format: "binary" }),
    image_5: z.any().optional().openapi({ type: "string", format: "binary" }),
    symptoms_description: z.string().openapi({ description: "What is wrong, 10–2000 characters (trimmed)." }),
    plant_condition: CONDITION.optional(),
    location: z.string().optional().openapi({ description: "Where the plant grows (free text, ≤ 200 characters)." }),
  })
  .openapi("DiseaseUpload");

const MetaSchema = z.object({
  symptoms_description: z
    .string({ error: "This field is required." })
    .trim()
    .min(10, "Describe the symptoms in at least 10 characters.")
    .max(2000, "Keep the symptoms description under 2000 characters."),
  // Case-insensitive; an empty field counts as not given.
  plant_condition: z.preprocess(
    (v) => (typeof v === "string" ? v.trim().toLowerCase() || undefined : v),
    z.enum(PLANT_CONDITIONS, { error: `Choose one of: ${PLANT_CONDITIONS.join(", ")}.` }).optional(),
  ),
  location: z.string().trim().max(200, "Keep the location under 200 characters.").optional(),
});

/** Every part is checked before anything is written: one bad image or field rejects the lot. */
async function readUpload(c: Context<AppEnv>) {
  const form = await readMultipartForm(c);
  const fieldErrors: Record<string, string[]> = {};
  const images = await readImageParts(form, fieldErrors, MAX_IMAGES);
  const meta = MetaSchema.safeParse(textFields(form));
  if (!meta.success)
    for (const issue of meta.error.issues) (fieldErrors[String(issue.path[0] ?? "non_field_errors")] ??= []).push(issue.message);
  throwIfFieldErrors(fieldErrors);
  return { images, meta: meta.data! };
}

export function diseaseRoutes() {
  const app = new OpenAPIHono<AppEnv>({ strict: false });
  app.use(`${BASE}/disease-requests`, requireAuth);
  app.use(`${BASE}/disease-requests/*`, requireAuth);

  const createDiseaseRequest = createRoute({
    method: "post",
    path: `${BASE}/disease-requests`,
    tags,
    summary: "Submit photos and symptoms for a health diagnosis (queued; progress over the WebSocket)",
    description:
      "Shares the identification rate limit (one budget of Plant.id calls per user). Photos follow the upload rules of identification requests.",
    request: { body: { content: { "multipart/form-data": { schema: UploadForm } }, required: true } },
    responses: {
      202: jsonBody(DiseaseRequestSchema, "Accepted; follow ws_url (or /ws/) for progress"),
      413: errorBody("An image is too large"),
      503: errorBody("The job queue is unavailable (retry after Retry-After)"),
      ...errors,
    },
  });
  // Registered for the document, routed with app.post: the body is validated part by part.
  app.openAPIRegistry.registerPath(createDiseaseRequest);
  app.post(createDiseaseRequest.path, async (c) => {
    const user = c.get("user")!;
    await enforceRateLimit(c.env, `identify:user:${user.id}`, getConfig(c.env).IDENTIFY_RATE_LIMIT);
    const upload = await readUpload(c);
    await storeImages(c.env, upload.images);
    const row = await insertDiseaseRequest(c.env, {
      userId: user.id,
      images: upload.images,
      symptoms: upload.meta.symptoms_description,
      plantCondition: upload.meta.plant_condition ?? null,
      location: upload.meta.location ?? "",
    });
    await enqueueJob(
      c,
      { type: "diagnose", request_id: row.id, user_id: user.id },
      (message) => failDiseaseRequest(c.env, row.id, message),
      "diagnosis",
    );
    return c.json(requestBody(row), 202);
  });

  app.openapi(
    createRoute({
      method: "get",
      path: `${BASE}/disease-requests`,
      tags,
      summary: "Your disease requests, newest first",
      request: { query: PaginationQuery.extend({ status: STATUS.optional() }) },
      responses: { 200: jsonBody(pageSchema(DiseaseRequestSchema, "DiseaseRequestPage"), "Page of disease requests"), ...errors },
    }),
    async (c) => {
      return c.json(await ownRequestsPage(c, "disease_requests", c.get("user")!.id, c.req.valid("query"), requestBody), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: `${BASE}/disease-requests/{id}`,
      tags,
      summary: "One of your disease requests",
      request: { params: Id },
      responses: { 200: jsonBody(DiseaseRequestSchema, "Disease request"), ...errors },
    }),
    async (c) => c.json(requestBody(await ownRequest(c, c.req.valid("param").id)), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: `${BASE}/disease-requests/{id}/results`,
      tags,
      summary: "The diagnosis of one of your requests: suggestions most likely first, with treatments",
      request: { params: Id },
      responses: {
        200: jsonBody(
          z.object({
            request_id: z.uuid(),
            status: STATUS,
            is_plant: z.boolean().nullable(),
            is_healthy: z.boolean().nullable(),
            is_healthy_probability: z.number().nullable(),
            results: z.array(DiseaseResultSchema),
          }),
          "Diagnosis",
        ),
        ...errors,
      },
    }),
    async (c) => {
      const row = await ownRequest(c, c.req.valid("param").id);
      const body = requestBody(row);
      const results = await listDiseaseResults(c.env, row.id);
      return c.json(
        {
          request_id: row.id,
          status: row.status,
          is_plant: body.is_plant,
          is_healthy: body.is_healthy,
          is_healthy_probability: body.is_healthy_probability,
          results: results.map(resultBody),
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: `${BASE}/disease-requests/{id}/confirm`,
      tags,
      summary: "Confirm one suggestion as the diagnosis (it then counts in the disease database)",
      description:
        "Owner only; the request must be diagnosed (`identified` or `needs_help`). Confirming another result of the same request moves the confirmation. The request becomes `identified`.",
      request: {
        params: Id,
        body: {
          content: { "application/json": { schema: z.object({ result_id: z.uuid() }).openapi("DiseaseConfirmation") } },
          required: true,
        },
      },
      responses: {
        200: jsonBody(DiseaseResultSchema, "The confirmed result"),
        409: errorBody("The request is not diagnosed yet (or failed)"),
        ...errors,
      },
    }),
    async (c) => {
      const row = await ownRequest(c, c.req.valid("param").id);
      const { result_id } = c.req.valid("json");
      if (row.status !== "identified" && row.status !== "needs_help") {
        throw new AppError("INVALID_STATE", 409, `Only a diagnosed request can be confirmed (this one is ${row.status}).`);
      }
      const result = await confirmDiseaseResult(c.env, row.id, result_id);
      if (!result) throw new AppError("NOT_FOUND", 404, "Result not found in this request.");
      return c.json(resultBody(result), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: `${BASE}/disease-database`,
      tags,
      summary: "Diseases the community has confirmed at least once, with treatments (most confirmed first)",
      request: {
        query: PaginationQuery.extend({
          search: searchText(100)
            .optional()
            .openapi({ description: "Matches name, common names and description; `%` and `_` match literally." }),
          type: DISEASE_TYPE.optional(),
        }),
      },
      responses: { 200: jsonBody(pageSchema(DiseaseEntrySchema, "DiseaseDatabasePage"), "Page of diseases"), 400: errors[400] },
    }),
    async (c) => {
      const { page, page_size, search, type } = c.req.valid("query");
      const { count, rows } = await queryPage<DiseaseEntryRow>(c.env.DB, {
        ...confirmedDiseasesQuery({ search: search || undefined, type }),
        page,
        pageSize: page_size,
      });
      c.header("Cache-Control", "public, max-age=60");
      return c.json(pageOf(c.req.url, page, page_size, count, rows.map(entryBody)), 200);
    },
  );

  return app;
}
