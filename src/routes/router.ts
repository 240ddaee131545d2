/**
 * The one way to make a route module.
 *
 * - `createRouter()` gives an OpenAPI router whose zod validation failures (params, query, JSON
 *   body) all become the 400 VALIDATION_ERROR envelope with field errors. app.ts mounts each
 *   router under its own prefix.
 * - `routeSet({ tags, errors })` declares a module's routes compactly:
 *   `open.get(path, summary).io(request, responses)`, with the module's tags and standard error
 *   responses added. `.signedIn()` and `.forRoles(...)` give the same builder with the
 *   authentication middleware attached (the one way to attach it) and the route's `security`
 *   declared for the OpenAPI document.
 */
import { createRoute, OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { AppError, fieldErrorsFrom } from "../lib/errors";
import type { Role } from "../services/users";

import { CSRF_HEADER, requireAuth, requireRole } from "../middleware/auth";
import { IDEMPOTENCY_HEADER, REPLAYED_HEADER } from "../middleware/idempotency";
import { MAX_LIVE_KEYS_PER_USER } from "../services/idempotency";
import { errorResponse } from "./schemas";

/**
 * Every route's validation failure, as one 400 envelope. @hono/zod-validator hands the hook the
 * value it parsed as `data` on failure too (the type @hono/zod-openapi gives the hook leaves it
 * out); fieldErrorsFrom reads from it which fields were absent.
 */
export function validationHook(result: { success: true } | { success: false; error: z.ZodError }): void {
  if (result.success) return;
  const input = (result as { data?: unknown }).data;
  throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", fieldErrorsFrom(result.error, input));
}

export function createRouter() {
  return new OpenAPIHono<AppEnv>({ strict: false, defaultHook: validationHook });
}

type Responses = RouteConfig["responses"];
type Request = NonNullable<RouteConfig["request"]>;
type Method = "get" | "post" | "put" | "patch" | "delete";

/**
 * How a signed-in caller proves it, for the OpenAPI document: a bearer access token, or the
 * session cookie together with the CSRF header (required on unsafe methods).
 */
export const SIGNED_IN_SECURITY: Record<string, string[]>[] = [{ bearerAuth: [] }, { cookieAuth: [], csrfHeader: [] }];

/** Registers the schemes SIGNED_IN_SECURITY names, once, on the app that serves the document. */
export function registerSecuritySchemes(app: OpenAPIHono<AppEnv>) {
  const registry = app.openAPIRegistry;
  registry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "The `access` token from `auth/token/` (or `auth/token/refresh/`).",
  });
  registry.registerComponent("securitySchemes", "cookieAuth", {
    type: "apiKey",
    in: "cookie",
    name: "__Host-access_token",
    description: "The web session cookie set at sign-in (`access_token` in local development, over plain http).",
  });
  registry.registerComponent("securitySchemes", "csrfHeader", {
    type: "apiKey",
    in: "header",
    name: CSRF_HEADER,
    description: "With the session cookie, unsafe methods carry the CSRF token (from `auth/csrf/`) in this header.",
  });
}

/** More of a route's OpenAPI description than a summary. */
interface Details {
  description?: string;
}

/** What a signed-in route adds: the middleware that checks the caller, and the document's note of it. */
function signedInBy(check: MiddlewareHandler<AppEnv>) {
  return { middleware: [check], security: SIGNED_IN_SECURITY };
}

/**
 * The Idempotency-Key header (middleware/idempotency.ts), declared on every signed-in POST but
 * the auth endpoints'. Validated by the middleware, which runs before the route; here it is
 * documentation only, so it is optional and any string.
 */
const IdempotencyHeaders = z.object({
  [IDEMPOTENCY_HEADER]: z
    .string()
    .optional()
    .openapi({
      description:
        "Optional (IETF httpapi draft). 1–255 visible ASCII characters, unique per intended write. A retry with the same key and the same payload within 24 h gets the first successful answer again, marked `" +
        REPLAYED_HEADER +
        `: true\`, without repeating the write; the same key with another payload is 422 IDEMPOTENCY_KEY_REUSED; a retry while the first is still running is 409 IDEMPOTENCY_KEY_IN_USE; a new key beyond the account's ${MAX_LIVE_KEYS_PER_USER} within 24 h is 429 IDEMPOTENCY_KEY_LIMIT. Failed answers (4xx/5xx) are not kept: a retry runs again.`,
      example: "0190a0b4-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
    }),
});
const IDEMPOTENCY_REUSED = errorResponse(422, "The Idempotency-Key was already used for another request", "IDEMPOTENCY_KEY_REUSED");
/** A route's own 409 replaces this one in the document (the header's description still names the code). */
const IDEMPOTENCY_IN_USE = errorResponse(
  409,
  "A request with this Idempotency-Key is still running; retry after Retry-After",
  "IDEMPOTENCY_KEY_IN_USE",
);
/** A route's own 429 (a rate limit) replaces this one in the document (the header's description still names the code). */
const IDEMPOTENCY_LIMIT = errorResponse(
  429,
  `A new Idempotency-Key beyond the account's ${MAX_LIVE_KEYS_PER_USER} within 24 h; retry after Retry-After, or without the header`,
  "IDEMPOTENCY_KEY_LIMIT",
);

/**
 * @hono/zod-openapi's media-type gate answers 415 to a JSON route's body of another type (or of
 * none declared); app.ts words it "Send the body as application/json." A route's own 415 (the
 * ones that also take multipart) replaces this one in the document.
 */
const JSON_ONLY = errorResponse(415, "The body is not application/json", "UNSUPPORTED_MEDIA_TYPE");

/** Whether a route takes Idempotency-Key: a signed-in POST outside the auth endpoints. */
function takesIdempotencyKey(method: Method, tags: string[], extra: { security?: unknown }, request: Request): boolean {
  return method === "post" && extra.security !== undefined && !tags.includes("Auth") && request.headers === undefined;
}

/** A JSON media type (`application/json`, `application/problem+json`, …), without parameters. */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/;

/**
 * A route whose JSON body is optional takes an empty JSON body as no body: clients that always
 * send `Content-Type: application/json` may send nothing with it. (The validator would otherwise
 * read the empty text as malformed JSON.) Only a JSON body is read here, bounded by the JSON size
 * budget, as the validator would read it; any other type stays unread, for the validator to skip.
 */
const emptyOptionalBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  // Hono keeps each body read as a promise in bodyCache, where its validator reads the JSON text.
  if (JSON_MEDIA_TYPE.test(type) && (await c.req.text()).trim() === "")
    (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve("{}");
  await next();
};

function builder<const E extends Responses, const X extends Partial<ReturnType<typeof signedInBy>>>(tags: string[], errors: E, extra: X) {
  const method =
    <M extends Method>(method: M) =>
    <P extends string>(path: P, summary: string) => ({
      /** What the route takes (params, query, body) and answers (its own responses; the module's errors are added). */
      io: <const Q extends Request, const R extends Responses>(request: Q, responses: R, details: Details = {}) => {
        const idempotent = takesIdempotencyKey(method, tags, extra, request);
        const withKey = idempotent ? { ...request, headers: IdempotencyHeaders } : request;
        const takesJson = request.body?.content?.["application/json"] !== undefined;
        const withReused = {
          ...(takesJson ? { 415: JSON_ONLY } : {}),
          ...(idempotent ? { 409: IDEMPOTENCY_IN_USE, 422: IDEMPOTENCY_REUSED, 429: IDEMPOTENCY_LIMIT } : {}),
          ...errors,
          ...responses,
        };
        const optionalBody = request.body?.required === false;
        const middleware = optionalBody ? [...(extra.middleware ?? []), emptyOptionalBody] : extra.middleware;
        return createRoute({
          method,
          path,
          tags,
          summary,
          ...details,
          request: withKey as Q,
          responses: withReused as E & R,
          ...extra,
          ...(middleware ? { middleware } : {}),
        });
      },
    });
  return { get: method("get"), post: method("post"), put: method("put"), patch: method("patch"), delete: method("delete") };
}

/**
 * A module's route builder. `errors` are the error responses every route of the module can give
 * (a route's own entry for a status wins).
 */
export function routeSet<const E extends Responses>(options: { tags: string[]; errors: E }) {
  const { tags, errors } = options;
  return {
    ...builder(tags, errors, {}),
    /** The same routes, for a signed-in user (401 otherwise). */
    signedIn: () => builder(tags, errors, signedInBy(requireAuth)),
    /** The same routes, for a signed-in user with one of these roles (403 otherwise). */
    forRoles: (...roles: Role[]) => builder(tags, errors, signedInBy(requireRole(...roles))),
  };
}

/**
 * A route for the OpenAPI document only, routed by hand (a handler that reads JSON or multipart
 * itself): the document keeps its security, the middleware goes on the hand-written route.
 */
export function documentOnly<R extends RouteConfig>(route: R): Omit<R, "middleware"> {
  const { middleware: _middleware, ...rest } = route;
  return rest;
}

/** The 204 answer once `work` (a delete, say) is done: `app.openapi(route, (c) => noContentAfter(c, deleteX(…)))`. */
export async function noContentAfter<C extends Context>(c: C, work: Promise<unknown>) {
  await work;
  return c.body(null, 204);
}
