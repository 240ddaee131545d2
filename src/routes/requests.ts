/**
 * Asynchronous identification requests and their results (API.md §2.2): upload → 202 → queue
 * job → live progress over the WebSocket → results; plus history, votes, accept and
 * add-to-collection. Other users' requests answer 404, never 403.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { createRouter, routeSet, documentOnly, noContentAfter } from "./router";
import { requireAuth, userIdOf } from "../middleware/auth";
import { clientIp } from "../services/rate-limits";
import { DEFAULT_LANGUAGE, PLANT_ORGANS, type PlantOrgan } from "../services/identification";
import {
  acceptResult,
  addResultToCollection,
  deleteIdentificationRequest,
  identificationHistory,
  identificationRequestBody,
  identificationResultBody,
  identificationResultsOf,
  voteOnResult,
} from "../services/identification-requests";
import {
  IdentificationRequests,
  listOwnRequests,
  ownRequest,
  retryOwnRequest,
  withRequestBudget,
  submitRequest,
} from "../services/queued-requests";
import { pageOf, PaginationQuery } from "./pagination";
import { queuedRequestSchema, REQUEST_PHOTO_PARTS, RequestLanguage, RequestStatus, requestErrors } from "./queued-request-schemas";
import { StageTimer } from "../lib/server-timing";
import type { FieldErrors } from "../lib/errors";
import { errorResponse, jsonBody, noContent, pageSchema, requestJson, IdParam, IdentificationLanguage, ResultIdParam } from "./schemas";
import { throwIfFieldErrors, readPhotoForm } from "./uploads";

const tags = ["Identification requests"];
const STATUS = RequestStatus;
const errors = requestErrors;

const RequestSchema = queuedRequestSchema("IdentificationRequest", {
  organs: z.array(z.string()),
  latitude: z.number().nullable(),
  longitude: z.number().nullable(),
  location: z.string(),
  description: z.string(),
  plant_size: z.string(),
  habitat: z.string(),
  language: RequestLanguage,
  disease_detection: z.record(z.string(), z.unknown()).nullable(),
  is_shared_with_community: z.boolean(),
  community_result_id: z
    .string()
    .nullable()
    .openapi({ description: "The community-confirmed result (docs/api.md § Community identification, Consensus), or null." }),
});

const ResultSchema = z
  .object({
    id: z.uuid(),
    request_id: z.uuid(),
    species_id: z.string().nullable(),
    scientific_name: z.string(),
    plant_name: z.string(),
    common_names: z.array(z.string()),
    family: z.string(),
    genus: z.string(),
    gbif_id: z.number().nullable(),
    confidence_score: z.number(),
    identification_source: z.string(),
    rank: z.number().int(),
    is_primary: z.boolean(),
    is_accepted: z.boolean(),
    upvotes: z.number().int(),
    downvotes: z.number().int(),
    description: z.string(),
    similar_images: z.array(z.object({ url: z.string(), url_small: z.string().optional() }).passthrough()),
    sources: z.array(z.string()),
    plant_id_probability: z.number().nullable(),
    plantnet_score: z.number().nullable(),
    calibration_version: z.string().nullable().openapi({ description: "Which calibration maps produced the confidence (engine results)." }),
    proposed_by: z.string().nullable().openapi({ description: "A community proposal's author (source community)." }),
    withdrawn_at: z.string().nullable().openapi({
      description:
        "When its proposer withdrew this community proposal: still a candidate, their support no longer counted. Null otherwise.",
    }),
    comment: z.string(),
    created_at: z.string(),
  })
  .openapi("IdentificationResult");

const AddToCollectionBody = z.strictObject({
  collection_id: z.uuid().optional(),
  nickname: z.string().max(100).optional(),
  notes: z.string().max(2000).optional(),
});
const AddedPlantSchema = z
  .object({
    id: z.uuid(),
    collection_id: z.uuid(),
    species_id: z.string().nullable(),
    result_id: z.uuid(),
    nickname: z.string(),
    notes: z.string(),
    created: z.boolean(),
  })
  .openapi("AddedPlant");

const UploadForm = z
  .strictObject({
    ...REQUEST_PHOTO_PARTS,
    organs: z.string().optional().openapi({ description: "Comma list, one per image: leaf, flower, fruit, bark, auto" }),
    latitude: z.string().optional(),
    longitude: z.string().optional(),
    location: z.string().optional(),
    description: z.string().optional(),
    plant_size: z.string().optional(),
    habitat: z.string().optional(),
    language: IdentificationLanguage,
  })
  .openapi("IdentificationUpload");

const MetaSchema = z.strictObject({
  organs: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!v) return undefined;
      const list = v.split(",").map((o) => o.trim().toLowerCase());
      const bad = list.filter((o) => !(PLANT_ORGANS as readonly string[]).includes(o));
      if (bad.length > 0) {
        ctx.addIssue({ code: "custom", message: `Unknown organ(s): ${bad.join(", ")}. Use leaf, flower, fruit, bark or auto.` });
        return z.NEVER;
      }
      return list as PlantOrgan[];
    }),
  latitude: z.coerce.number().min(-90, "Latitude must be between -90 and 90.").max(90, "Latitude must be between -90 and 90.").optional(),
  longitude: z.coerce
    .number()
    .min(-180, "Longitude must be between -180 and 180.")
    .max(180, "Longitude must be between -180 and 180.")
    .optional(),
  location: z.string().max(200).optional(),
  description: z.string().max(2000).optional(),
  plant_size: z.string().max(50).optional(),
  habitat: z.string().max(200).optional(),
  language: IdentificationLanguage,
});

/** Reads and validates every part before anything is written: one bad image rejects the lot. */
async function readUpload(c: Context<AppEnv>) {
  const fieldErrors: FieldErrors = {};
  const { images, fields: meta } = await readPhotoForm(c, MetaSchema, fieldErrors);
  const organs = meta?.organs;
  if (organs && organs.length !== images.length && Object.keys(fieldErrors).length === 0) {
    fieldErrors.organs = [`Give one organ per image (${images.length} image(s), ${organs.length} organ(s)).`];
  }
  if (meta && (meta.latitude === undefined) !== (meta.longitude === undefined)) {
    fieldErrors.latitude = ["Give both latitude and longitude, or neither."];
  }
  throwIfFieldErrors(fieldErrors);
  return { images, organs: organs ?? images.map(() => "auto" as const), meta: meta! };
}

export function requestRoutes() {
  const app = createRouter();
  const open = routeSet({ tags, errors });
  const mine = open.signedIn();

  const createRequestRoute = mine.post("/requests", "Submit photos for identification (queued; progress over the WebSocket)").io(
    { body: { content: { "multipart/form-data": { schema: UploadForm } }, required: true } },
    {
      202: jsonBody(RequestSchema, "Accepted; follow ws_url for progress"),
      413: errorResponse(
        413,
        "An image is too large (`FILE_TOO_LARGE`), or would take the account past its storage allowance (`STORAGE_FULL`)",
        "FILE_TOO_LARGE",
      ),
    },
  );
  // Registered for the document, routed with app.post: the body is validated part by part.
  app.openAPIRegistry.registerPath(documentOnly(createRequestRoute));
  app.post(createRequestRoute.path, requireAuth, async (c) => {
    const timer = new StageTimer();
    // Nothing queued (the upload refused, the photos not stored, the queue down): the budget comes back.
    const row = await withRequestBudget(c.env, { userId: userIdOf(c), address: clientIp(c.req.raw) }, c.get("logger"), timer, async () => {
      const upload = await timer.time("upload", readUpload(c));
      return submitRequest(
        c.env,
        IdentificationRequests,
        userIdOf(c),
        upload.images,
        {
          status: "pending",
          organs: upload.organs,
          latitude: upload.meta.latitude ?? null,
          longitude: upload.meta.longitude ?? null,
          location: upload.meta.location,
          description: upload.meta.description,
          plantSize: upload.meta.plant_size,
          habitat: upload.meta.habitat,
          language: upload.meta.language ?? DEFAULT_LANGUAGE,
        },
        c.get("logger"),
        timer,
      );
    });
    c.header("Server-Timing", timer.header());
    return c.json(identificationRequestBody(row), 202);
  });

  const getRequests = mine
    .get("/requests", "Your identification requests, newest first")
    .io(
      { query: PaginationQuery.extend({ status: STATUS.optional() }) },
      { 200: jsonBody(pageSchema(RequestSchema, "IdentificationRequestPage"), "Page of requests") },
    );
  app.openapi(getRequests, async (c) => {
    const { page, page_size, status } = c.req.valid("query");
    const { count, rows } = await listOwnRequests(c.env, IdentificationRequests, userIdOf(c), status, {
      page,
      pageSize: page_size,
    });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(identificationRequestBody)), 200);
  });

  const getRequestsById = mine
    .get("/requests/{id}", "One of your requests")
    .io({ params: IdParam }, { 200: jsonBody(RequestSchema, "Request") });
  app.openapi(getRequestsById, async (c) =>
    c.json(identificationRequestBody(await ownRequest(c.env, IdentificationRequests, userIdOf(c), c.req.valid("param").id)), 200),
  );

  const getRequestsByIdResults = mine.get("/requests/{id}/results", "Results of one of your requests, most confident first").io(
    { params: IdParam },
    {
      200: jsonBody(
        z.object({
          request_id: z.uuid(),
          status: STATUS,
          results: z.array(ResultSchema),
          disease_detection: z.record(z.string(), z.unknown()).nullable(),
          care_instructions: z.record(z.string(), z.unknown()).nullable().openapi({
            description:
              'The primary result\'s care in the request\'s language, as `species/{id}/care/` gives it: the stored AI guide (`source: "openai"`) or the rule-based advice (`source: "rules"`), each saying in `language` which language it is written in.',
          }),
        }),
        "Results",
      ),
    },
  );
  app.openapi(getRequestsByIdResults, async (c) => {
    const { request, results, care } = await identificationResultsOf(c.env, userIdOf(c), c.req.valid("param").id);
    return c.json(
      {
        request_id: request.id,
        status: request.status,
        results: results.map(identificationResultBody),
        disease_detection: identificationRequestBody(request).disease_detection,
        care_instructions: care,
      },
      200,
    );
  });

  const deleteRequestsById = mine
    .delete("/requests/{id}", "Delete a request, its results and any images no other request uses")
    .io({ params: IdParam }, noContent("Deleted"));
  app.openapi(deleteRequestsById, (c) =>
    noContentAfter(
      c,
      deleteIdentificationRequest(c.env, userIdOf(c), c.req.valid("param").id, (p) => c.executionCtx.waitUntil(p)),
    ),
  );

  const postRequestsByIdRetry = mine.post("/requests/{id}/retry", "Queue a failed, needs-help or stuck request again").io(
    { params: IdParam },
    { 202: jsonBody(RequestSchema, "Queued again"), 409: errorResponse(409, "Not in a state that can be retried") },
    {
      description:
        "Accepted for a `failed` or `needs_help` request, and for a `pending`/`processing` one whose job was lost: its queue message " +
        "or the consumer's lease should have moved it on more than 10 minutes ago (the rule the cron sweep re-queues by). " +
        "A request whose job is still alive answers 409.",
    },
  );
  app.openapi(postRequestsByIdRetry, async (c) => {
    const updated = await retryOwnRequest(
      c.env,
      IdentificationRequests,
      { userId: userIdOf(c), address: clientIp(c.req.raw) },
      c.req.valid("param").id,
      c.get("logger"),
    );
    return c.json(identificationRequestBody(updated), 202);
  });

  const getHistory = mine.get("/history", "Compact identification history (the web client's history page)").io(
    { query: PaginationQuery },
    {
      200: jsonBody(
        pageSchema(
          z.object({
            id: z.uuid(),
            plant_name: z.string().nullable(),
            scientific_name: z.string().nullable(),
            confidence: z.number().nullable(),
            image_url: z.string().nullable(),
            created_at: z.string(),
            status: STATUS,
          }),
          "HistoryPage",
        ),
        "History",
      ),
    },
  );
  app.openapi(getHistory, async (c) => {
    const { page, page_size } = c.req.valid("query");
    const { count, rows: items } = await identificationHistory(c.env, userIdOf(c), { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, items), 200);
  });

  const postResultsByIdVote = mine.post("/results/{id}/vote", "Vote on a result: same vote again removes it, the opposite switches").io(
    {
      params: ResultIdParam,
      body: { content: { "application/json": { schema: z.strictObject({ vote_type: z.enum(["upvote", "downvote"]) }) } }, required: true },
    },
    {
      200: jsonBody(
        z.object({
          result_id: z.uuid(),
          vote: z.enum(["upvote", "downvote"]).nullable(),
          upvotes: z.number().int(),
          downvotes: z.number().int(),
          community_result_id: z.uuid().nullable().openapi({
            description:
              "The result the community confirms for this request after the vote (the consensus of docs/api.md § Community identification), or null.",
          }),
        }),
        "Vote state",
      ),
      409: errorResponse(409, "The result changed at the same moment as the vote (try again)", "CONFLICT"),
    },
  );
  app.openapi(postResultsByIdVote, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await voteOnResult(c.env, userIdOf(c), id, c.req.valid("json").vote_type, c.get("logger")), 200);
  });

  const postResultsByIdAccept = mine
    .post("/results/{id}/accept", "Accept a result as the identification of your request")
    .io({ params: ResultIdParam }, { 200: jsonBody(ResultSchema, "Accepted result") });
  app.openapi(postResultsByIdAccept, async (c) => {
    return c.json(identificationResultBody(await acceptResult(c.env, userIdOf(c), c.req.valid("param").id)), 200);
  });

  const addToCollection = mine
    .post("/results/{id}/add_to_collection", "Add the identified plant to one of your collections (default: My Plants); idempotent")
    .io(
      { params: ResultIdParam, body: requestJson(AddToCollectionBody, false) },
      { 201: jsonBody(AddedPlantSchema, "Plant added"), 200: jsonBody(AddedPlantSchema, "Already in that collection") },
    );
  app.openapi(addToCollection, async (c) => {
    const { plant, created } = await addResultToCollection(c.env, userIdOf(c), c.req.valid("param").id, c.req.valid("json") ?? {});
    return created ? c.json({ ...plant, created }, 201) : c.json({ ...plant, created }, 200);
  });

  return app;
}
