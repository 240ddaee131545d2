/**
 * Plant health (API.md §4): disease requests (photos + symptoms → 202 → queue job with Plant.id
 * `/health_assessment` → live progress on the same WebSocket as identifications → ranked
 * results with treatments), the owner's confirmation of a diagnosis, and the public disease
 * database built from confirmed diagnoses. Other users' requests answer 404, never 403.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { createRouter, routeSet, documentOnly } from "./router";
import { AppError, type FieldErrors } from "../lib/errors";
import { requireAuth, userIdOf } from "../middleware/auth";
import {
  confirmDiseaseResult,
  confirmedDiseases,
  DISEASE_TYPES,
  type DiseaseEntryRow,
  diseaseRequestBody,
  diseaseResultBody,
  listDiseaseResults,
  PLANT_CONDITIONS,
  treatmentOf,
} from "../services/diseases";
import { DiseaseRequests, listOwnRequests, ownRequest, withRequestBudget, submitRequest } from "../services/queued-requests";
import { cacheKey, cachedJson, canonicalReadUrl, notModified } from "./cached-reads";
import { pageOf, PaginationQuery } from "./pagination";
import { queuedRequestSchema, REQUEST_PHOTO_PARTS, RequestLanguage, RequestStatus, requestErrors } from "./queued-request-schemas";
import { apiFields } from "../lib/fields";
import { StageTimer } from "../lib/server-timing";
import { jsonBody, pageSchema, searchText, errorResponse, IdParam, IdentificationLanguage } from "./schemas";
import { clientIp } from "../services/rate-limits";
import { DEFAULT_LANGUAGE } from "../services/identification";
import { throwIfFieldErrors, readPhotoForm } from "./uploads";

const tags = ["Plant health"];
const STATUS = RequestStatus.openapi({
  description:
    "`identified`: a diagnosis was made (the plant looks healthy, or the best suggestion is ≥ 0.5 likely); `needs_help` otherwise, including photos that are not of a plant.",
});
const CONDITION = z.enum(PLANT_CONDITIONS).openapi({ description: "How badly the plant is affected, as the owner sees it." });
const DISEASE_TYPE = z.enum(DISEASE_TYPES).openapi({
  description:
    "From Plant.id's classification: Fungi → fungal, Bacteria → bacterial, viruses → viral, Oomycota/Chromista (water moulds) → oomycete, Animalia → pest, Abiotic → abiotic.",
});
const errors = requestErrors;

const TreatmentSchema = z
  .object({ biological: z.array(z.string()), chemical: z.array(z.string()), prevention: z.array(z.string()) })
  .openapi("DiseaseTreatment");

const DiseaseRequestSchema = queuedRequestSchema("DiseaseRequest", {
  status: STATUS,
  symptoms_description: z.string(),
  plant_condition: CONDITION.nullable(),
  location: z.string(),
  language: RequestLanguage,
  is_plant: z.boolean().nullable(),
  is_healthy: z.boolean().nullable(),
  is_healthy_probability: z.number().nullable(),
});

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
    last_confirmed_at: z.string().openapi({
      description: "The day (UTC midnight) of the most recent confirmation; the time of day is withheld, since diagnoses are private.",
    }),
  })
  .openapi("DiseaseDatabaseEntry");

function entryBody(row: DiseaseEntryRow) {
  return {
    ...apiFields(row, "name commonNames diseaseType description"),
    treatment: treatmentOf(row.treatment),
    ...apiFields(row, "classification cause url"),
    confirmed_diagnoses: row.confirmations,
    last_confirmed_at: row.confirmedAt!,
  };
}

const UploadForm = z
  .strictObject({
    ...REQUEST_PHOTO_PARTS,
    symptoms_description: z.string().openapi({ description: "What is wrong, 10–2000 characters (trimmed)." }),
    plant_condition: CONDITION.optional(),
    location: z.string().optional().openapi({ description: "Where the plant grows (free text, ≤ 200 characters)." }),
    language: IdentificationLanguage,
  })
  .openapi("DiseaseUpload");

const MetaSchema = z.strictObject({
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
  language: IdentificationLanguage,
});

/** Every part is checked before anything is written: one bad image or field rejects the lot. */
async function readUpload(c: Context<AppEnv>) {
  const fieldErrors: FieldErrors = {};
  const { images, fields } = await readPhotoForm(c, MetaSchema, fieldErrors);
  throwIfFieldErrors(fieldErrors);
  return { images, meta: fields! };
}

export function diseaseRoutes() {
  const app = createRouter();
  const mine = routeSet({ tags, errors }).signedIn();
  const plain = routeSet({ tags, errors: {} });

  const createDiseaseRequest = mine
    .post(`/disease-requests`, "Submit photos and symptoms for a health diagnosis (queued; progress over the WebSocket)")
    .io(
      { body: { content: { "multipart/form-data": { schema: UploadForm } }, required: true } },
      {
        202: jsonBody(DiseaseRequestSchema, "Accepted; follow ws_url (or /ws/) for progress"),
        413: errorResponse(
          413,
          "An image is too large (`FILE_TOO_LARGE`), or would take the account past its storage allowance (`STORAGE_FULL`)",
          "FILE_TOO_LARGE",
        ),
        503: errorResponse(503, "The job queue is unavailable (retry after Retry-After)"),
      },
      {
        description:
          "Shares the identification rate limit (one budget of Plant.id calls per user, and one per client address across accounts: IDENTIFY_ADDRESS_RATE_LIMIT). Photos follow the upload rules of identification requests.",
      },
    );
  // Registered for the document, routed with app.post: the body is validated part by part.
  app.openAPIRegistry.registerPath(documentOnly(createDiseaseRequest));
  app.post(createDiseaseRequest.path, requireAuth, async (c) => {
    const userId = userIdOf(c);
    const timer = new StageTimer();
    // Nothing queued (the upload refused, the photos not stored, the queue down): the budget comes back.
    const row = await withRequestBudget(c.env, { userId, address: clientIp(c.req.raw) }, c.get("logger"), timer, async () => {
      const upload = await timer.time("upload", readUpload(c));
      return submitRequest(
        c.env,
        DiseaseRequests,
        userId,
        upload.images,
        {
          status: "pending",
          symptomsDescription: upload.meta.symptoms_description,
          plantCondition: upload.meta.plant_condition ?? null,
          location: upload.meta.location ?? "",
          language: upload.meta.language ?? DEFAULT_LANGUAGE,
        },
        c.get("logger"),
        timer,
      );
    });
    c.header("Server-Timing", timer.header());
    return c.json(diseaseRequestBody(row), 202);
  });

  const getDiseaseRequests = mine
    .get(`/disease-requests`, "Your disease requests, newest first")
    .io(
      { query: PaginationQuery.extend({ status: STATUS.optional() }) },
      { 200: jsonBody(pageSchema(DiseaseRequestSchema, "DiseaseRequestPage"), "Page of disease requests") },
    );
  app.openapi(getDiseaseRequests, async (c) => {
    const { page, page_size, status } = c.req.valid("query");
    const { count, rows } = await listOwnRequests(c.env, DiseaseRequests, userIdOf(c), status, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(diseaseRequestBody)), 200);
  });

  const getDiseaseRequestsById = mine
    .get(`/disease-requests/{id}`, "One of your disease requests")
    .io({ params: IdParam }, { 200: jsonBody(DiseaseRequestSchema, "Disease request") });
  app.openapi(getDiseaseRequestsById, async (c) =>
    c.json(diseaseRequestBody(await ownRequest(c.env, DiseaseRequests, userIdOf(c), c.req.valid("param").id)), 200),
  );

  const getDiseaseRequestsByIdResults = mine
    .get(`/disease-requests/{id}/results`, "The diagnosis of one of your requests: suggestions most likely first, with treatments")
    .io(
      { params: IdParam },
      {
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
      },
    );
  app.openapi(getDiseaseRequestsByIdResults, async (c) => {
    const row = await ownRequest(c.env, DiseaseRequests, userIdOf(c), c.req.valid("param").id);
    const body = diseaseRequestBody(row);
    const results = await listDiseaseResults(c.env, row.id);
    return c.json(
      {
        request_id: row.id,
        status: row.status,
        is_plant: body.is_plant,
        is_healthy: body.is_healthy,
        is_healthy_probability: body.is_healthy_probability,
        results: results.map(diseaseResultBody),
      },
      200,
    );
  });

  const postDiseaseRequestsByIdConfirm = mine
    .post(`/disease-requests/{id}/confirm`, "Confirm one suggestion as the diagnosis (it then counts in the disease database)")
    .io(
      {
        params: IdParam,
        body: {
          content: { "application/json": { schema: z.strictObject({ result_id: z.uuid() }).openapi("DiseaseConfirmation") } },
          required: true,
        },
      },
      {
        200: jsonBody(DiseaseResultSchema, "The confirmed result"),
        409: errorResponse(409, "The request is not diagnosed yet (or failed)"),
      },
      {
        description:
          "Owner only; the request must be diagnosed (`identified` or `needs_help`). Confirming another result of the same request moves the confirmation. The request becomes `identified`.",
      },
    );
  app.openapi(postDiseaseRequestsByIdConfirm, async (c) => {
    const row = await ownRequest(c.env, DiseaseRequests, userIdOf(c), c.req.valid("param").id);
    const { result_id } = c.req.valid("json");
    if (row.status !== "identified" && row.status !== "needs_help") {
      throw new AppError("INVALID_STATE", 409, `Only a diagnosed request can be confirmed (this one is ${row.status}).`);
    }
    const result = await confirmDiseaseResult(c.env, row.id, result_id);
    if (!result) throw new AppError("NOT_FOUND", 404, "Result not found in this request.");
    return c.json(diseaseResultBody(result), 200);
  });

  const getDiseaseDatabase = plain
    .get(`/disease-database`, "Diseases the community has confirmed at least once, with treatments (most confirmed first)")
    .io(
      {
        query: PaginationQuery.extend({
          search: searchText(100)
            .optional()
            .openapi({ description: "Matches name, common names and description; `%` and `_` match literally." }),
          type: DISEASE_TYPE.optional(),
        }),
      },
      { 200: jsonBody(pageSchema(DiseaseEntrySchema, "DiseaseDatabasePage"), "Page of diseases"), 400: errors[400], ...notModified },
    );
  app.openapi(getDiseaseDatabase, async (c) => {
    const { page, page_size, search, type } = c.req.valid("query");
    return cachedJson(c, "diseases", cacheKey("/disease-database", { page, page_size, search, type }), async () => {
      const { count, rows } = await confirmedDiseases(c.env, { search: search || undefined, type }, { page, pageSize: page_size });
      return pageOf(canonicalReadUrl(c, { page, page_size, search, type }), page, page_size, count, rows.map(entryBody));
    });
  });

  return app;
}
