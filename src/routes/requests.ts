/**
 * Asynchronous identification requests and their results (API.md §2.2): upload → 202 → queue
 * job → live progress over the WebSocket → results; plus history, votes, accept and
 * add-to-collection. Other users' requests answer 404, never 403.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { enqueueJob } from "./enqueue";
import { uuidv7 } from "../lib/ids";
import { requireAuth } from "../middleware/auth";
import { PLANTNET_ORGANS, type PlantNetOrgan } from "../providers/plantnet";
import { ruleBasedCare } from "../services/care";
import { findSpeciesForCare, storedCareGuide } from "../services/care-guides";
import { userHub } from "../services/progress";
import { enforceRateLimit } from "../services/rate-limits";
import { deleteUnusedImages } from "../services/stored-images";
import {
  decodeImages,
  failRequest,
  getRequest,
  imageUrl,
  insertRequest,
  requeueForRetry,
  storeImages,
  type RequestRow,
} from "../services/requests";
import { pageOf, PaginationQuery, queryPage, ownRequestsPage } from "./pagination";
import { ErrorSchema, jsonBody, pageSchema } from "./schemas";
import { MAX_IMAGES, readImageParts, readMultipartForm, textFields, throwIfFieldErrors } from "./uploads";

const tags = ["Identification requests"];
const STATUS = z.enum(["pending", "processing", "identified", "needs_help", "failed"]);
const Id = z.object({ id: z.uuid() });
const errors = {
  400: { description: "Invalid input", content: { "application/json": { schema: ErrorSchema } } },
  401: { description: "Not signed in", content: { "application/json": { schema: ErrorSchema } } },
  404: { description: "Not found (or not yours)", content: { "application/json": { schema: ErrorSchema } } },
  429: { description: "Rate limited", content: { "application/json": { schema: ErrorSchema } } },
};

const RequestSchema = z
  .object({
    request_id: z.uuid(),
    status: STATUS,
    ws_url: z.string(),
    images: z.array(z.object({ url: z.string() })),
    organs: z.array(z.string()),
    latitude: z.number().nullable(),
    longitude: z.number().nullable(),
    location: z.string(),
    description: z.string(),
    plant_size: z.string(),
    habitat: z.string(),
    attempts: z.number().int(),
    error_message: z.string().nullable(),
    disease_detection: z.record(z.string(), z.unknown()).nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    processed_at: z.string().nullable(),
  })
  .openapi("IdentificationRequest");

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
    created_at: z.string(),
  })
  .openapi("IdentificationResult");

interface ResultRow {
  id: string;
  request_id: string;
  species_id: string | null;
  scientific_name: string;
  plant_name: string;
  common_names: string;
  family: string;
  genus: string;
  gbif_id: number | null;
  confidence_score: number;
  identification_source: string;
  rank: number;
  is_primary: number;
  is_accepted: number;
  upvotes: number;
  downvotes: number;
  details: string;
  created_at: string;
}

function requestBody(row: RequestRow) {
  const health = row.health
    ? (JSON.parse(row.health) as {
        isHealthy: boolean;
        diseases: { name: string; probability: number; description: string; treatment: string }[];
      })
    : null;
  const top = health && !health.isHealthy ? health.diseases[0] : undefined;
  return {
    request_id: row.id,
    status: row.status,
    ws_url: `/ws/plant-identification/requests/${row.id}/`,
    images: decodeImages(row).map((img) => ({ url: imageUrl(img) })),
    organs: JSON.parse(row.organs) as string[],
    latitude: row.latitude,
    longitude: row.longitude,
    location: row.location,
    description: row.description,
    plant_size: row.plant_size,
    habitat: row.habitat,
    attempts: row.attempts,
    error_message: row.error_message,
    disease_detection: health
      ? {
          is_healthy: health.isHealthy,
          disease_name: top?.name ?? null,
          probability: top?.probability ?? null,
          description: top?.description ?? null,
          treatment: top?.treatment ?? null,
          suggestions: health.diseases.map((d) => ({ name: d.name, probability: d.probability, description: d.description })),
        }
      : null,
    created_at: row.created_at,
    updated_at: row.updated_at,
    processed_at: row.processed_at,
  };
}

function resultBody(row: ResultRow) {
  const details = JSON.parse(row.details) as {
    description?: string;
    similar_images?: { url: string; url_small?: string }[];
    sources?: string[];
    plant_id_probability?: number | null;
    plantnet_score?: number | null;
  };
  return {
    id: row.id,
    request_id: row.request_id,
    species_id: row.species_id,
    scientific_name: row.scientific_name,
    plant_name: row.plant_name,
    common_names: JSON.parse(row.common_names) as string[],
    family: row.family,
    genus: row.genus,
    gbif_id: row.gbif_id,
    confidence_score: row.confidence_score,
    identification_source: row.identification_source,
    rank: row.rank,
    is_primary: Boolean(row.is_primary),
    is_accepted: Boolean(row.is_accepted),
    upvotes: row.upvotes,
    downvotes: row.downvotes,
    description: details.description ?? "",
    similar_images: details.similar_images ?? [],
    sources: details.sources ?? [],
    plant_id_probability: details.plant_id_probability ?? null,
    plantnet_score: details.plantnet_score ?? null,
    created_at: row.created_at,
  };
}

/** The caller's own request, or 404 (also for other users' requests: no existence leak). */
async function ownRequest(c: Context<AppEnv>, id: string): Promise<RequestRow> {
  const row = await getRequest(c.env, id);
  if (!row || row.user_id !== c.get("user")!.id) throw new AppError("NOT_FOUND", 404, "Identification request not found.");
  return row;
}

async function loadResult(c: Context<AppEnv>, resultId: string) {
  const row = await c.env.DB.prepare(
    `SELECT r.*, q.user_id AS owner_id, q.is_shared_with_community AS shared
       FROM identification_results r JOIN identification_requests q ON q.id = r.request_id WHERE r.id = ?`,
  )
    .bind(resultId)
    .first<ResultRow & { owner_id: string | null; shared: number }>();
  if (!row) throw new AppError("NOT_FOUND", 404, "Result not found.");
  return row;
}

const UploadForm = z
  .object({
    image_1: z.any().openapi({ type: "string", format: "binary" }),
    image_2: z.any().optional().openapi({ type: "string", format: "binary" }),
    image_3: z.any().optional().openapi({ type: "string", format: "binary" }),
    image_4: z.any().optional().openapi({ type: "string", format: "binary" }),
    image_5: z.any().optional().openapi({ type: "string", format: "binary" }),
    organs: z.string().optional().openapi({ description: "Comma list, one per image: leaf, flower, fruit, bark, auto" }),
    latitude: z.string().optional(),
    longitude: z.string().optional(),
    location: z.string().optional(),
    description: z.string().optional(),
    plant_size: z.string().optional(),
    habitat: z.string().optional(),
  })
  .openapi("IdentificationUpload");

const MetaSchema = z.object({
  organs: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!v) return undefined;
      const list = v.split(",").map((o) => o.trim().toLowerCase());
      const bad = list.filter((o) => !(PLANTNET_ORGANS as readonly string[]).includes(o));
      if (bad.length > 0) {
        ctx.addIssue({ code: "custom", message: `Unknown organ(s): ${bad.join(", ")}. Use leaf, flower, fruit, bark or auto.` });
        return z.NEVER;
      }
      return list as PlantNetOrgan[];
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
});

/** Reads and validates every part before anything is written: one bad image rejects the lot. */
async function readUpload(c: Context<AppEnv>) {
  const form = await readMultipartForm(c);
  const fieldErrors: Record<string, string[]> = {};
  const images = await readImageParts(form, fieldErrors, MAX_IMAGES);
  const meta = MetaSchema.safeParse(textFields(form));
  if (!meta.success)
    for (const issue of meta.error.issues) (fieldErrors[String(issue.path[0] ?? "non_field_errors")] ??= []).push(issue.message);
  const organs = meta.success ? meta.data.organs : undefined;
  if (organs && organs.length !== images.length && Object.keys(fieldErrors).length === 0) {
    fieldErrors.organs = [`Give one organ per image (${images.length} image(s), ${organs.length} organ(s)).`];
  }
  if (meta.success && (meta.data.latitude === undefined) !== (meta.data.longitude === undefined)) {
    fieldErrors.latitude = ["Give both latitude and longitude, or neither."];
  }
  throwIfFieldErrors(fieldErrors);
  return { images, organs: organs ?? images.map(() => "auto" as const), meta: meta.data! };
}

export function requestRoutes() {
  const app = new OpenAPIHono<AppEnv>({ strict: false });
  app.use("/api/v1/plant-identification/requests/*", requireAuth);
  app.use("/api/v1/plant-identification/requests", requireAuth);
  app.use("/api/v1/plant-identification/results/*", requireAuth);
  app.use("/api/v1/plant-identification/history", requireAuth);

  const createRequestRoute = createRoute({
    method: "post",
    path: "/api/v1/plant-identification/requests",
    tags,
    summary: "Submit photos for identification (queued; progress over the WebSocket)",
    request: { body: { content: { "multipart/form-data": { schema: UploadForm } }, required: true } },
    responses: { 202: jsonBody(RequestSchema, "Accepted; follow ws_url for progress"), 413: errors[400], ...errors },
  });
  // Registered for the document, routed with app.post: the body is validated part by part.
  app.openAPIRegistry.registerPath(createRequestRoute);
  app.post(createRequestRoute.path, async (c) => {
    const user = c.get("user")!;
    await enforceRateLimit(c.env, `identify:user:${user.id}`, getConfig(c.env).IDENTIFY_RATE_LIMIT);
    const upload = await readUpload(c);
    await storeImages(c.env, upload.images);
    const row = await insertRequest(c.env, {
      userId: user.id,
      images: upload.images,
      organs: upload.organs,
      latitude: upload.meta.latitude ?? null,
      longitude: upload.meta.longitude ?? null,
      location: upload.meta.location,
      description: upload.meta.description,
      plantSize: upload.meta.plant_size,
      habitat: upload.meta.habitat,
      status: "pending",
    });
    await enqueueJob(
      c,
      { type: "identify", request_id: row.id, user_id: user.id },
      (message) => failRequest(c.env, row.id, message),
      "identification",
    );
    return c.json(requestBody(row), 202);
  });

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/plant-identification/requests",
      tags,
      summary: "Your identification requests, newest first",
      request: { query: PaginationQuery.extend({ status: STATUS.optional() }) },
      responses: { 200: jsonBody(pageSchema(RequestSchema, "IdentificationRequestPage"), "Page of requests"), ...errors },
    }),
    async (c) => {
      return c.json(await ownRequestsPage(c, "identification_requests", c.get("user")!.id, c.req.valid("query"), requestBody), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/plant-identification/requests/{id}",
      tags,
      summary: "One of your requests",
      request: { params: Id },
      responses: { 200: jsonBody(RequestSchema, "Request"), ...errors },
    }),
    async (c) => c.json(requestBody(await ownRequest(c, c.req.valid("param").id)), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/plant-identification/requests/{id}/results",
      tags,
      summary: "Results of one of your requests, most confident first",
      request: { params: Id },
      responses: {
        200: jsonBody(
          z.object({
            request_id: z.uuid(),
            status: STATUS,
            results: z.array(ResultSchema),
            disease_detection: z.record(z.string(), z.unknown()).nullable(),
            care_instructions: z.record(z.string(), z.unknown()).nullable(),
          }),
          "Results",
        ),
        ...errors,
      },
    }),
    async (c) => {
      const row = await ownRequest(c, c.req.valid("param").id);
      const { results } = await c.env.DB.prepare(
        "SELECT * FROM identification_results WHERE request_id = ? ORDER BY confidence_score DESC, rank ASC",
      )
        .bind(row.id)
        .all<ResultRow>();
      const primary = results.find((r) => r.is_accepted) ?? results.find((r) => r.is_primary) ?? results[0];
      const species = primary?.species_id ? await findSpeciesForCare(c.env, { id: primary.species_id }) : null;
      const care = species ? ((await storedCareGuide(c.env, species.id, "en")) ?? ruleBasedCare(species)) : null;
      return c.json(
        {
          request_id: row.id,
          status: row.status,
          results: results.map(resultBody),
          disease_detection: requestBody(row).disease_detection,
          care_instructions: care,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/v1/plant-identification/requests/{id}",
      tags,
      summary: "Delete a request, its results and any images no other request uses",
      request: { params: Id },
      responses: { 204: { description: "Deleted" }, ...errors },
    }),
    async (c) => {
      const row = await ownRequest(c, c.req.valid("param").id);
      await c.env.DB.prepare("DELETE FROM identification_requests WHERE id = ?").bind(row.id).run();
      // Photos are content-addressed and shared: keep any another request, diagnosis or plant still uses.
      await deleteUnusedImages(c.env, decodeImages(row));
      c.executionCtx.waitUntil(
        userHub(c.env, row.user_id!)
          .closeRequest(row.id, 4404, "request deleted")
          .catch(() => {}),
      );
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/plant-identification/requests/{id}/retry",
      tags,
      summary: "Queue a failed, needs-help or stuck request again",
      description:
        "Accepted for a `failed` or `needs_help` request, and for a `pending`/`processing` one whose job was lost: its queue message " +
        "or the consumer's lease should have moved it on more than 10 minutes ago (the rule the cron sweep re-queues by). " +
        "A request whose job is still alive answers 409.",
      request: { params: Id },
      responses: { 202: jsonBody(RequestSchema, "Queued again"), 409: errors[400], ...errors },
    }),
    async (c) => {
      const row = await ownRequest(c, c.req.valid("param").id);
      const user = c.get("user")!;
      await enforceRateLimit(c.env, `identify:user:${user.id}`, getConfig(c.env).IDENTIFY_RATE_LIMIT);
      const updated = await requeueForRetry(c.env, row.id);
      if (!updated) {
        throw new AppError(
          "INVALID_STATE",
          409,
          `Only failed or needs-help requests, or pending/processing ones whose job was lost, can be retried (this one is ${row.status}).`,
        );
      }
      await enqueueJob(
        c,
        { type: "identify", request_id: row.id, user_id: user.id },
        (message) => failRequest(c.env, row.id, message),
        "identification",
      );
      return c.json(requestBody(updated), 202);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/plant-identification/history",
      tags,
      summary: "Compact identification history (the web client's history page)",
      request: { query: PaginationQuery },
      responses: {
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
        ...errors,
      },
    }),
    async (c) => {
      const { page, page_size } = c.req.valid("query");
      const userId = c.get("user")!.id;
      type Row = {
        id: string;
        status: RequestRow["status"];
        created_at: string;
        image_hashes: string;
        plant_name: string | null;
        scientific_name: string | null;
        confidence_score: number | null;
      };
      // The best result per request: the accepted one, else the most confident.
      const { count, rows } = await queryPage<Row>(c.env.DB, {
        select: "q.id, q.status, q.created_at, q.image_hashes, r.plant_name, r.scientific_name, r.confidence_score",
        from: `FROM identification_requests q
               LEFT JOIN identification_results r ON r.request_id = q.id AND r.id = (
                 SELECT id FROM identification_results WHERE request_id = q.id ORDER BY is_accepted DESC, confidence_score DESC LIMIT 1)
              WHERE q.user_id = ?`,
        order: "q.created_at DESC, q.id DESC",
        binds: [userId],
        page,
        pageSize: page_size,
      });
      const items = rows.map((r) => {
        const first = decodeImages(r)[0];
        return {
          id: r.id,
          plant_name: r.plant_name,
          scientific_name: r.scientific_name,
          confidence: r.confidence_score,
          image_url: first ? imageUrl(first) : null,
          created_at: r.created_at,
          status: r.status,
        };
      });
      return c.json(pageOf(c.req.url, page, page_size, count, items), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/plant-identification/results/{id}/vote",
      tags,
      summary: "Vote on a result: same vote again removes it, the opposite switches",
      request: {
        params: Id,
        body: { content: { "application/json": { schema: z.object({ vote_type: z.enum(["upvote", "downvote"]) }) } }, required: true },
      },
      responses: {
        200: jsonBody(
          z.object({
            result_id: z.uuid(),
            vote: z.enum(["upvote", "downvote"]).nullable(),
            upvotes: z.number().int(),
            downvotes: z.number().int(),
          }),
          "Vote state",
        ),
        ...errors,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { vote_type } = c.req.valid("json");
      const user = c.get("user")!;
      const result = await loadResult(c, id);
      if (result.owner_id !== user.id && !result.shared) throw new AppError("NOT_FOUND", 404, "Result not found.");
      if (result.is_accepted)
        throw new AppError("VALIDATION_ERROR", 400, "Accepted results cannot be voted on.", {
          vote_type: ["This result is already accepted."],
        });
      const db = c.env.DB;
      // One batch, which D1 runs as one transaction: concurrent votes behave as votes one after
      // the other, and the answer is the state this vote left (reading the old vote first let
      // two identical votes both "add"). (1) The same vote again is removed; (2) otherwise —
      // changes() = 0, (1) deleted nothing — it is inserted or switches the other one; (3) the
      // tallies are recomputed from the votes, so they can never drift; (4) the answer is read.
      const [, , , state] = await db.batch<{ vote: "upvote" | "downvote" | null; upvotes: number; downvotes: number }>([
        db.prepare("DELETE FROM votes WHERE result_id = ? AND user_id = ? AND vote_type = ?").bind(id, user.id, vote_type),
        db
          .prepare(
            `INSERT INTO votes (id, result_id, user_id, vote_type) SELECT ?, ?, ?, ? WHERE changes() = 0
             ON CONFLICT (result_id, user_id) DO UPDATE SET vote_type = excluded.vote_type`,
          )
          .bind(uuidv7(), id, user.id, vote_type),
        db
          .prepare(
            `UPDATE identification_results SET
               upvotes = (SELECT count(*) FROM votes WHERE result_id = ?1 AND vote_type = 'upvote'),
               downvotes = (SELECT count(*) FROM votes WHERE result_id = ?1 AND vote_type = 'downvote')
             WHERE id = ?1`,
          )
          .bind(id),
        db
          .prepare(
            "SELECT v.vote_type AS vote, r.upvotes, r.downvotes FROM identification_results r LEFT JOIN votes v ON v.result_id = r.id AND v.user_id = ? WHERE r.id = ?",
          )
          .bind(user.id, id),
      ]);
      const tally = state!.results[0];
      if (!tally) throw new AppError("NOT_FOUND", 404, "Result not found.");
      return c.json({ result_id: id, vote: tally.vote, upvotes: tally.upvotes, downvotes: tally.downvotes }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/plant-identification/results/{id}/accept",
      tags,
      summary: "Accept a result as the identification of your request",
      request: { params: Id },
      responses: { 200: jsonBody(ResultSchema, "Accepted result"), ...errors },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const result = await loadResult(c, id);
      if (result.owner_id !== c.get("user")!.id) throw new AppError("NOT_FOUND", 404, "Result not found.");
      await c.env.DB.batch([
        c.env.DB.prepare("UPDATE identification_results SET is_accepted = (id = ?), is_primary = (id = ?) WHERE request_id = ?").bind(
          id,
          id,
          result.request_id,
        ),
        c.env.DB.prepare(
          "UPDATE identification_requests SET status = 'identified', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ? AND status IN ('identified', 'needs_help')",
        ).bind(result.request_id),
      ]);
      const row = (await c.env.DB.prepare("SELECT * FROM identification_results WHERE id = ?").bind(id).first<ResultRow>())!;
      return c.json(resultBody(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/plant-identification/results/{id}/add_to_collection",
      tags,
      summary: "Add the identified plant to one of your collections (default: My Plants); idempotent",
      request: {
        params: Id,
        body: {
          content: {
            "application/json": {
              schema: z.object({
                collection_id: z.uuid().optional(),
                nickname: z.string().max(100).optional(),
                notes: z.string().max(2000).optional(),
              }),
            },
          },
          required: false,
        },
      },
      responses: {
        201: jsonBody(
          z.object({
            id: z.uuid(),
            collection_id: z.uuid(),
            species_id: z.string().nullable(),
            result_id: z.uuid(),
            nickname: z.string(),
            notes: z.string(),
            created: z.boolean(),
          }),
          "Plant added",
        ),
        200: jsonBody(
          z.object({
            id: z.uuid(),
            collection_id: z.uuid(),
            species_id: z.string().nullable(),
            result_id: z.uuid(),
            nickname: z.string(),
            notes: z.string(),
            created: z.boolean(),
          }),
          "Already in that collection",
        ),
        ...errors,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const body = c.req.valid("json") ?? {};
      const user = c.get("user")!;
      const result = await loadResult(c, id);
      if (result.owner_id !== user.id) throw new AppError("NOT_FOUND", 404, "Result not found.");
      const collection = body.collection_id
        ? await c.env.DB.prepare("SELECT id FROM collections WHERE id = ? AND user_id = ?")
            .bind(body.collection_id, user.id)
            .first<{ id: string }>()
        : await c.env.DB.prepare("SELECT id FROM collections WHERE user_id = ? ORDER BY is_default DESC, created_at ASC LIMIT 1")
            .bind(user.id)
            .first<{ id: string }>();
      if (!collection) throw new AppError("NOT_FOUND", 404, "Collection not found.");
      const plantId = uuidv7();
      const inserted = await c.env.DB.prepare(
        `INSERT INTO user_plants (id, user_id, collection_id, species_id, result_id, nickname, notes) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (collection_id, result_id) DO NOTHING`,
      )
        .bind(plantId, user.id, collection.id, result.species_id, id, body.nickname ?? result.plant_name, body.notes ?? "")
        .run();
      const created = (inserted.meta.changes ?? 0) > 0;
      const plant = (await c.env.DB.prepare(
        "SELECT id, collection_id, species_id, result_id, nickname, notes FROM user_plants WHERE collection_id = ? AND result_id = ?",
      )
        .bind(collection.id, id)
        .first<{ id: string; collection_id: string; species_id: string | null; result_id: string; nickname: string; notes: string }>())!;
      return created ? c.json({ ...plant, created }, 201) : c.json({ ...plant, created }, 200);
    },
  );

  return app;
}
