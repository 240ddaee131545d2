/**
 * POST /api/v1/plant-identification/identify — the synchronous, seed-compatible endpoint the
 * existing React client uses (multipart field `image`, answers `{success, …}` rather than the
 * error envelope; API.md §2.1). Also the provider health and cache statistics routes.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { StageTimer } from "../lib/server-timing";
import { createRouter, routeSet, documentOnly } from "./router";
import { AppError } from "../lib/errors";
import { describeError } from "../lib/logger";
import { NO_IMAGE_MESSAGE, UPLOAD_RULES, validateImageUpload, type ImageUploadInput, type ValidatedImage } from "../lib/images";
import { assertCsrf } from "../middleware/auth";
import { DEFAULT_LANGUAGE, identifyNow, providerStatuses, type IdentifyOutcome } from "../services/identification";
import { identificationProviderHealth, providerCacheCounters } from "../services/provider-calls";
import { clientIp, spendIdentifyBudget } from "../services/rate-limits";
import { catalogueCareAhead, recordIdentification } from "../services/identification-requests";
import { reportRequestError } from "../middleware/error-reporting";
import { jsonBody, errorResponse, filePart, IdentificationLanguage } from "./schemas";

const tags = ["Identification"];

const SimilarImageSchema = z.object({ url: z.string(), url_small: z.string().optional(), similarity: z.number().optional() });
export const SuggestionSchema = z
  .object({
    plant_name: z.string(),
    scientific_name: z.string(),
    probability: z.number(),
    common_names: z.array(z.string()),
    description: z.string(),
    family: z.string(),
    genus: z.string(),
    gbif_id: z.number().optional(),
    similar_images: z.array(SimilarImageSchema),
    watering: z.object({ min: z.number(), max: z.number() }).optional(),
    propagation_methods: z.array(z.string()).optional(),
    url: z.string().optional(),
    sources: z.array(z.enum(["plant_id", "plantnet"])),
    plant_id_probability: z.number().optional(),
    plantnet_score: z.number().optional(),
    calibration_version: z.string().openapi({
      description: "Which calibration maps produced `probability`, e.g. `plant_id:v3,plantnet:raw` (raw: the provider's own score).",
    }),
    rank: z.number().int(),
    confidence: z.number().openapi({ description: "The same as `probability` (the web client reads this name)." }),
  })
  .openapi("Suggestion");

const ProviderStatusSchema = z
  .object({
    status: z.enum(["answered", "failed", "pending", "skipped"]),
    error: z
      .string()
      .optional()
      .openapi({ description: "Why it failed: timeout, rate_limited, server, malformed, network, circuit_open…" }),
    reason: z.string().optional().openapi({ description: "Why it was not asked" }),
  })
  .openapi("IdentifyProviderStatus", {
    description:
      "How one provider took part. Anything but `answered` means its suggestions are missing from this answer: " +
      "`failed` (see `error`), `pending` (it had not answered IDENTIFY_SECOND_PROVIDER_GRACE_MS after the other did; " +
      "its call finishes in the background and fills the cache, so the same photo again gets both), `skipped` (not asked, see `reason`).",
  });

const IdentifySuccess = z
  .object({
    success: z.literal(true),
    plant_name: z.string(),
    scientific_name: z.string(),
    confidence: z.number(),
    suggestions: z.array(SuggestionSchema),
    care_instructions: z.record(z.string(), z.unknown()).nullable(),
    disease_detection: z
      .object({
        is_healthy: z.boolean(),
        is_plant: z.boolean(),
        disease_name: z.string().nullable(),
        probability: z.number().nullable(),
        description: z.string().nullable(),
        treatment: z.string().nullable(),
      })
      .nullable(),
    disease_suggestions: z.array(z.object({ name: z.string(), probability: z.number(), description: z.string() })),
    summary: z.string(),
    cached: z.object({ plant_id: z.boolean(), plantnet: z.boolean() }),
    providers: z.object({ plant_id: ProviderStatusSchema, plantnet: ProviderStatusSchema }),
    request_id: z.string().optional(),
  })
  .openapi("IdentifyResult");

const IdentifyFailure = z
  .object({
    success: z.literal(false),
    error: z.string(),
    code: z
      .string()
      .optional()
      .openapi({
        description:
          "200: `NO_MATCH`, `NOT_A_PLANT`. 400: `NO_IMAGE`, `INVALID_LANGUAGE` (`language` is not two lower-case letters), and the image rules' own codes — `EMPTY_FILE`, " +
          "`FILE_TOO_LARGE` (400 here, as the original answered; 413 on the other upload routes), `INVALID_FILE_TYPE`, " +
          "`FILE_TYPE_MISMATCH`, `INVALID_IMAGE`, `IMAGE_TOO_SMALL`, `IMAGE_TOO_LARGE`, `INVALID_ASPECT_RATIO`. " +
          "401 `AUTHENTICATION_REQUIRED`, 403 `CSRF_FAILED`, 413 `PAYLOAD_TOO_LARGE` (the whole body), 429 `RATE_LIMITED`, " +
          "500 `INTERNAL_ERROR`, 503 `PROVIDERS_UNAVAILABLE`.",
      }),
  })
  .openapi("IdentifyFailure");

/** The seed-compatible identify route (POST), with or without its trailing slash. */
export function isSeedIdentify(method: string, path: string): boolean {
  return method === "POST" && /^\/api\/v1\/plant-identification\/identify\/?$/.test(path);
}

/** The seed-compatible failure shape; the status code still tells machines what happened. */
function failure(
  c: Context<AppEnv>,
  status: 200 | 400 | 401 | 403 | 413 | 429 | 500 | 503,
  error: string,
  code: string,
  headers: Record<string, string> = {},
) {
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
  return c.json({ success: false as const, error, code }, status);
}

function summarise(outcome: IdentifyOutcome): string {
  const top = outcome.suggestions[0]!;
  const pct = Math.round(top.probability * 100);
  const name = top.plant_name !== top.scientific_name ? `${top.plant_name} (${top.scientific_name})` : top.scientific_name;
  const agreement =
    top.sources.length > 1
      ? "Plant.id and Pl@ntNet agree."
      : `Identified by ${top.sources[0] === "plant_id" ? "Plant.id" : "Pl@ntNet"}${outcome.suggestions.length > 1 ? "; see the other suggestions too" : ""}.`;
  const health =
    outcome.health && !outcome.health.isHealthy && outcome.health.diseases[0]
      ? ` Possible problem: ${outcome.health.diseases[0].name}.`
      : "";
  return `${name} — ${pct}% confidence. ${agreement}${health}`;
}

function diseaseDetection(outcome: IdentifyOutcome) {
  const health = outcome.health;
  if (!health) return null;
  const top = health.isHealthy ? undefined : health.diseases[0];
  return {
    is_healthy: health.isHealthy,
    is_plant: outcome.isPlant,
    disease_name: top?.name ?? null,
    probability: top?.probability ?? null,
    description: top?.description ?? null,
    treatment: top?.treatment ?? null,
  };
}

export function identifyRoutes() {
  const app = createRouter();
  const plain = routeSet({ tags, errors: {} });
  const staff = plain.forRoles("moderator", "editor", "admin");

  // Registered in the OpenAPI document but routed with plain `app.post`: the route reads its
  // own multipart body, so even a malformed upload is answered in the seed shape.
  const identifyRoute = plain.post("/identify", "Identify a plant photo now (seed-compatible; parallel Plant.id + Pl@ntNet)").io(
    {
      body: {
        content: {
          "multipart/form-data": {
            schema: z.object({ image: filePart("The plant photo: JPEG, PNG or WebP"), language: IdentificationLanguage }),
          },
        },
        required: true,
      },
    },
    {
      200: {
        description: "Identified, or `success: false` when nothing matched",
        content: { "application/json": { schema: z.union([IdentifySuccess, IdentifyFailure]) } },
      },
      400: { description: "No or invalid image", content: { "application/json": { schema: IdentifyFailure } } },
      401: {
        description:
          "Sign-in required (anonymous use disabled), a bearer token that is not valid (TOKEN_INVALID, TOKEN_EXPIRED), or an Authorization header not of the form `Bearer <access token>` (AUTHENTICATION_REQUIRED)",
        content: { "application/json": { schema: IdentifyFailure } },
      },
      403: {
        description: "Cookie-authenticated call without a matching X-CSRFToken header (`CSRF_FAILED`)",
        content: { "application/json": { schema: IdentifyFailure } },
      },
      413: { description: "The body is over the upload limit", content: { "application/json": { schema: IdentifyFailure } } },
      429: { description: "Rate limited", content: { "application/json": { schema: IdentifyFailure } } },
      500: { description: "Our own failure (seed shape)", content: { "application/json": { schema: IdentifyFailure } } },
      503: { description: "Both providers unavailable", content: { "application/json": { schema: IdentifyFailure } } },
    },
    {
      description:
        "Multipart field `image`, and optionally `language` (ISO 639-1, default `en`): the language of the names and descriptions. Answers `{success: true, …}` or `{success: false, error}` (not the error envelope). " +
        "Signed-in callers' identifications are saved and `request_id` returned.",
    },
  );
  app.openAPIRegistry.registerPath(documentOnly(identifyRoute));
  app.post(identifyRoute.path, async (c) => {
    try {
      return await identifyHandler(c);
    } catch (err) {
      // Even our own failures keep the seed client's shape (it only reads `success`/`error`).
      if (err instanceof AppError) return failure(c, err.status as 403, err.message, err.code, err.headers);
      c.get("logger").error("identify failed", describeError(err));
      reportRequestError(c, err);
      return failure(c, 500, "Something went wrong while identifying your plant. Please try again.", "INTERNAL_ERROR");
    }
  });

  async function identifyHandler(c: Context<AppEnv>) {
    const config = getConfig(c.env);
    // Cookie-authenticated callers prove the request is theirs (double-submit CSRF); a failure
    // is thrown as AppError and answered in the seed shape like every other failure here.
    if (c.get("authMethod") === "cookie") await assertCsrf(c);
    const user = c.get("user");
    // An Authorization header is sent to be signed in: one that is not valid (expired, ended,
    // forged, or not in the "Bearer <token>" form) gets its reason, so the app refreshes or signs
    // in, instead of an anonymous identification that its history would never show. (A stale
    // cookie is the browser's doing: it stays anonymous.)
    const authError = c.get("authError");
    if (!user && authError && c.req.header("Authorization") !== undefined) {
      c.header("WWW-Authenticate", 'Bearer realm="plant-community"');
      return failure(c, 401, authError.message, authError.code);
    }
    if (!user && !config.ALLOW_ANONYMOUS_IDENTIFY) {
      c.header("WWW-Authenticate", 'Bearer realm="plant-community"');
      return failure(c, 401, "Authentication required. Please sign in to identify plants.", "AUTHENTICATION_REQUIRED");
    }
    const timer = new StageTimer();
    // The limiter's round trip overlaps reading, checking and hashing the upload; its verdict
    // still comes first.
    const [spent, image] = await Promise.all([
      timer.time(
        "limit",
        spendIdentifyBudget(c.env, { userId: user?.id ?? null, address: clientIp(c.req.raw) }, c.get("logger")).then(
          (refund) => ({ refund }),
          (error: unknown) => ({ error }),
        ),
      ),
      readImage(c, timer),
    ]);
    if ("error" in spent) {
      if (spent.error instanceof AppError) return failure(c, 429, spent.error.message, spent.error.code, spent.error.headers);
      throw spent.error;
    }
    // The allowance pays for an identification: a refused photo, or providers that all failed, give it back.
    const { refund } = spent;
    if (!image.ok) {
      await refund();
      return failure(c, 400, image.message, image.code);
    }

    // The care of each provider's top suggestion is looked up as soon as it answers, so the
    // merged top's is usually ready by the time the merge is.
    const care = catalogueCareAhead(c.env, image.language);
    const outcome = await timer.time(
      "providers",
      identifyNow(
        c.env,
        (p) => c.executionCtx.waitUntil(p),
        {
          images: [{ bytes: image.image.bytes, mime: image.image.mime, sha256: image.image.sha256 }],
          language: image.language,
          region: typeof c.req.raw.cf?.continent === "string" ? c.req.raw.cf.continent : null,
        },
        { logger: c.get("logger"), stages: (stage, ms) => timer.record(stage, ms), onAnswer: care.onAnswer },
      ),
    );
    const cached = { plant_id: outcome.providers.plant_id.cached, plantnet: outcome.providers.plantnet.cached };
    if (outcome.allFailed) {
      await refund();
      return failure(
        c,
        503,
        "Plant identification is temporarily unavailable. Please try again in a few minutes.",
        "PROVIDERS_UNAVAILABLE",
        {
          "Retry-After": "30",
        },
      );
    }
    if (outcome.suggestions.length === 0) {
      return failure(c, 200, "Unable to identify plant. Please try a clearer image.", outcome.isPlant ? "NO_MATCH" : "NOT_A_PLANT");
    }

    const top = outcome.suggestions[0]!;
    const careInstructions = await timer.time("care", care.careFor(top.scientific_name));
    // The providers are paid and the answer known: an account whose storage allowance is full
    // gets it all the same, without a recorded request (no `request_id`), rather than a 413.
    const requestId = user
      ? await timer
          .time("record", recordIdentification(c.env, user.id, image.image, outcome.suggestions, outcome.health, image.language))
          .catch((err: unknown) => {
            if (err instanceof AppError && err.code === "STORAGE_FULL") return undefined;
            throw err;
          })
      : undefined;
    c.header("Server-Timing", timer.header());

    return c.json(
      {
        success: true as const,
        plant_name: top.plant_name,
        scientific_name: top.scientific_name,
        confidence: top.probability,
        suggestions: outcome.suggestions.map((suggestion) => ({ ...suggestion, confidence: suggestion.probability })),
        care_instructions: careInstructions,
        disease_detection: diseaseDetection(outcome),
        disease_suggestions: (outcome.health?.diseases ?? []).map((d) => ({
          name: d.name,
          probability: d.probability,
          description: d.description,
        })),
        summary: summarise(outcome),
        cached,
        providers: providerStatuses(outcome),
        ...(requestId ? { request_id: requestId } : {}),
      },
      200,
    );
  }

  const getIdentifyHealth = plain.get("/identify/health", "Provider availability and circuit-breaker states").io(
    {},
    {
      200: jsonBody(
        z
          .object({
            status: z.enum(["ok", "degraded", "unavailable"]),
            plant_id_available: z.boolean(),
            plantnet_available: z.boolean(),
            circuits: z.object({ plant_id: z.string(), plantnet: z.string() }),
          })
          .openapi("IdentifyHealth"),
        "Provider health",
      ),
    },
  );
  app.openapi(getIdentifyHealth, async (c) => {
    const health = await identificationProviderHealth(c.env);
    const up = [health.plant_id.available, health.plantnet.available].filter(Boolean).length;
    c.header("Cache-Control", "no-store");
    return c.json(
      {
        status: up === 2 ? ("ok" as const) : up === 1 ? ("degraded" as const) : ("unavailable" as const),
        plant_id_available: health.plant_id.available,
        plantnet_available: health.plantnet.available,
        circuits: { plant_id: health.plant_id.state, plantnet: health.plantnet.state },
      },
      200,
    );
  });

  const CounterSchema = z.object({ hits: z.number().int(), misses: z.number().int(), hit_rate: z.number(), since: z.string() });
  const getCacheStats = staff
    .get(
      "/cache/stats",
      "Exact provider-cache hit/miss counters (staff). Hits reach the counters within about a second (each isolate counts its hits once a second).",
    )
    .io(
      { query: z.object({ reset: z.enum(["true", "false"]).optional() }) },
      {
        200: jsonBody(
          z.object({ plant_id: CounterSchema, plantnet: CounterSchema, total: CounterSchema.omit({ since: true }) }).openapi("CacheStats"),
          "Counters since the last reset",
        ),
        401: errorResponse(401, "Not signed in"),
        403: errorResponse(403, "Not staff"),
      },
    );
  app.openapi(getCacheStats, async (c) => {
    const { plant_id: pid, plantnet: pn } = await providerCacheCounters(c.env, c.req.valid("query").reset === "true");
    const rate = (hits: number, misses: number) => (hits + misses === 0 ? 0 : Math.round((hits / (hits + misses)) * 10_000) / 10_000);
    const hits = pid.hits + pn.hits;
    const misses = pid.misses + pn.misses;
    return c.json(
      {
        plant_id: { ...pid, hit_rate: rate(pid.hits, pid.misses) },
        plantnet: { ...pn, hit_rate: rate(pn.hits, pn.misses) },
        total: { hits, misses, hit_rate: rate(hits, misses) },
      },
      200,
    );
  });

  return app;
}

type ImageRead = { ok: true; image: ValidatedImage; language: string } | { ok: false; code: string; message: string };
type ImagePart = ImageUploadInput & { language: string };

/**
 * Reads and validates the one `image` part, and the optional `language` field (default
 * English); nothing is stored for a rejected upload. Timed as
 * `upload` (receiving and parsing the multipart body) and `validate` (type, structure and size
 * checks, and the SHA-256 the caches are keyed by).
 */
async function readImage(c: Context<AppEnv>, timer: StageTimer): Promise<ImageRead> {
  const type = (c.req.header("Content-Type") ?? "").toLowerCase();
  if (!type.startsWith("multipart/form-data")) return { ok: false, code: "NO_IMAGE", message: NO_IMAGE_MESSAGE };
  const part = await timer.time("upload", async (): Promise<ImagePart | ImageRead> => {
    let form: FormData;
    try {
      form = await c.req.formData();
    } catch {
      return { ok: false, code: "MALFORMED_REQUEST", message: "Malformed multipart body. Please upload the image again." };
    }
    const file = form.get("image");
    if (!(file instanceof File)) return { ok: false, code: "NO_IMAGE", message: NO_IMAGE_MESSAGE };
    const language = IdentificationLanguage.safeParse(form.get("language") ?? undefined);
    if (!language.success) return { ok: false, code: "INVALID_LANGUAGE", message: language.error.issues[0]!.message };
    const bytes = new Uint8Array(await file.arrayBuffer());
    return { bytes, declaredType: file.type, filename: file.name, language: language.data ?? DEFAULT_LANGUAGE };
  });
  if ("ok" in part) return part;
  const validated = await timer.time("validate", validateImageUpload(part, UPLOAD_RULES));
  return validated.ok ? { ...validated, language: part.language } : validated;
}
