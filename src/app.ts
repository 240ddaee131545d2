/**
 * Builds the Hono application: middleware order, the one error envelope, route mounting and
 * the OpenAPI document. Middleware runs outermost first:
 *   public URL → request id → access log → security headers → cache control → CORS →
 *   body size limit → D1 session → authentication → Idempotency-Key → routes, and for paths no route serves, the static
 *   files in public/.
 * Routes answer with and without a trailing slash (`strict: false`).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { matchedRoutes } from "hono/route";
import { secureHeaders } from "hono/secure-headers";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { getConfig } from "./config";
import { loggerFor } from "./services/logging";
import type { AppEnv } from "./env";
import { AppError, errorEnvelope, STATUS_DEFAULTS } from "./lib/errors";
import { cacheControl } from "./lib/http-caching";
import { describeError, loggablePath } from "./lib/logger";
import { canonicalRequestUrl } from "./lib/public-url";
import { recordRequestMetric } from "./lib/metrics";
import { reportRequestError } from "./middleware/error-reporting";
import { clientIp } from "./services/rate-limits";
import { deletedAccountRefusal } from "./services/account-deletion";
import { uuidv7 } from "./lib/ids";
import { serveStaticAsset } from "./lib/static-assets";
import { authenticate, csrfProtection } from "./middleware/auth";
import { d1Session } from "./middleware/d1-session";
import { idempotency } from "./middleware/idempotency";
import { adminRoutes } from "./routes/admin";
import { authRoutes, csrfRoutes } from "./routes/auth";
import { calendarRoutes } from "./routes/calendar";
import { careRoutes } from "./routes/care";
import { diseaseRoutes } from "./routes/diseases";
import { docsRoutes } from "./routes/docs";
import { registerSecuritySchemes, validationHook } from "./routes/router";
import { healthRoutes } from "./routes/health";
import { identifyRoutes, isSeedIdentify } from "./routes/identify";
import { collectionRoutes } from "./routes/collections";
import { forumRoutes } from "./routes/forum";
import { notificationRoutes } from "./routes/notifications";
import { reminderRoutes } from "./routes/reminders";
import { communityRoutes } from "./routes/community";
import { requestRoutes } from "./routes/requests";
import { savedCareRoutes } from "./routes/saved-care";
import { searchRoutes } from "./routes/search";
import { blogRoutes } from "./routes/blog";
import { blogCommentRoutes } from "./routes/blog-comments";
import { blogPublicRoutes } from "./routes/blog-public";
import { speciesRoutes } from "./routes/species";
import { wsRoutes } from "./routes/ws";
import { mediaRoutes } from "./routes/media";
import { oauthRoutes } from "./routes/oauth";
import { OAUTH_MOUNTS } from "./services/oauth";

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

export function createApp() {
  /** Built at the first request, once every route is registered. */
  let fixedPaths: Map<string, string[]> | undefined;
  const app = new OpenAPIHono<AppEnv>({
    strict: false,
    // Validation failures from every route's zod schemas become one 400 envelope.
    defaultHook: validationHook,
  });

  // Before anything reads the URL: links are built on PUBLIC_API_URL, not the Host header.
  app.use("*", canonicalRequestUrl);

  app.use("*", async (c, next) => {
    const incoming = c.req.header("X-Request-ID");
    const requestId = incoming && CLIENT_REQUEST_ID.test(incoming) ? incoming : uuidv7();
    const logger = loggerFor(c.env, { request_id: requestId });
    c.set("requestId", requestId);
    c.set("logger", logger);
    const started = Date.now();
    await next();
    c.res.headers.set("X-Request-ID", requestId);
    const durationMs = Date.now() - started;
    const colo = (c.req.raw.cf as { colo?: string } | undefined)?.colo;
    logger.info("request", { method: c.req.method, path: loggablePath(c.req.path), status: c.res.status, duration_ms: durationMs, colo });
    recordRequestMetric(c.env.METRICS, { route: matchedRoutePattern(c), method: c.req.method, status: c.res.status, durationMs, colo });
  });

  const localHeaders = buildSecureHeaders(false);
  const deployedHeaders = buildSecureHeaders(true);
  app.use("*", (c, next) => (getConfig(c.env).isLocal ? localHeaders : deployedHeaders)(c, next));
  app.use("*", cacheControl);

  // Only listed origins get CORS headers at all (and so credentials); a refused origin's
  // preflight gets a bare 204 that the browser treats as a denial.
  app.use("*", async (c, next) => {
    const origin = c.req.header("Origin");
    const allowed = getConfig(c.env).CORS_ORIGINS;
    if (origin && !allowed.includes(origin)) {
      if (c.req.method === "OPTIONS" && c.req.header("Access-Control-Request-Method")) {
        return c.body(null, 204, { Vary: "Origin" });
      }
      await next();
      // A WebSocket upgrade's 101 comes from the Durable Object with immutable headers (and
      // caches never see it); writing to it would throw.
      if (c.res.status !== 101) c.res.headers.append("Vary", "Origin");
      return;
    }
    return cors({
      origin: (o) => (allowed.includes(o) ? o : null),
      credentials: true,
      allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      // If-None-Match and Cache-Control: no-cache, and the ETag and X-Cache they go with, are how a
      // client revalidates or refreshes a cached public read (docs/api.md § Cached public reads).
      allowHeaders: [
        "Content-Type",
        "Authorization",
        "X-CSRFToken",
        "X-Request-ID",
        "Idempotency-Key",
        "x-d1-bookmark",
        "If-None-Match",
        "Cache-Control",
      ],
      exposeHeaders: ["X-Request-ID", "Retry-After", "WWW-Authenticate", "Idempotent-Replayed", "x-d1-bookmark", "ETag", "X-Cache"],
      maxAge: 600,
    })(c, next);
  });

  // Uploads (multipart) get the upload budget — five 10 MiB images plus form overhead — and
  // everything else the JSON budget. The limit also counts streamed bytes, not just
  // Content-Length, so a lying client cannot slip past it.
  app.use("*", (c, next) => {
    const config = getConfig(c.env);
    const isMultipart = (c.req.header("Content-Type") ?? "").toLowerCase().startsWith("multipart/");
    const maxSize = isMultipart ? config.MAX_UPLOAD_BODY_BYTES : config.MAX_JSON_BODY_BYTES;
    return bodyLimit({
      maxSize,
      onError: () => {
        throw new AppError("PAYLOAD_TOO_LARGE", 413, `Request body too large. Maximum size: ${formatBytes(maxSize)}.`);
      },
    })(c, next);
  });

  // Every request's D1 queries run in one session, from the client's bookmark when it sends one.
  app.use("*", d1Session);

  // Coarse per-address limit in front of everything (Workers rate limiting binding); the exact
  // per-action limits live in services/rate-limits.ts.
  const edgeLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
    // Keyed like every other per-address limit: an IPv6 client by its /64.
    const ip = clientIp(c.req.raw);
    if (ip !== "unknown" && c.env.API_RATE_LIMITER && getConfig(c.env).EDGE_RATE_LIMIT_ENABLED) {
      const { success } = await c.env.API_RATE_LIMITER.limit({ key: ip });
      if (!success)
        throw new AppError("RATE_LIMITED", 429, "Too many requests. Please slow down and try again in 1 minute.", undefined, {
          "Retry-After": "60",
        });
    }
    await next();
  };
  // /media/ too: every photo GET asks D1 who may see it; and /ws/: every upgrade verifies a
  // token, reads the account and its session and wakes the user's Durable Object.
  app.use("/api/*", edgeLimit);
  app.use("/media/*", edgeLimit);
  app.use("/ws/*", edgeLimit);
  app.use("/api/*", authenticate, csrfProtection, idempotency);
  // A method a fixed path does not take is a 405 there, not a sibling `{id}` route's 400.
  app.use("/api/*", async (c, next) => {
    fixedPaths ??= fixedPathMethods(app);
    const allow = fixedPaths.get(trimTrailingSlashes(c.req.path));
    if (allow && !allow.includes(c.req.method)) {
      throw new AppError("METHOD_NOT_ALLOWED", 405, methodNotAllowedMessage(app, c.req.method, c.req.path, allow), undefined, {
        Allow: allow.join(", "),
      });
    }
    await next();
  });
  // The blog's images under /media/ are a draft's to its writers: who is asking matters there too.
  app.use("/media/*", authenticate);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer", bearerFormat: "JWT" });
  app.openAPIRegistry.registerComponent("securitySchemes", "cookieAuth", { type: "apiKey", in: "cookie", name: "__Host-access_token" });

  app.route("/api/v1", healthRoutes());
  app.route("/api", docsRoutes());
  app.route("/api/v1/auth", authRoutes());
  app.route("/api", csrfRoutes());
  for (const mount of OAUTH_MOUNTS) app.route(mount, oauthRoutes(mount));
  app.route("/api/v1/media", mediaRoutes());
  app.route("/api/v1/admin", adminRoutes());
  app.route("/api/v1/plant-identification", identifyRoutes());
  app.route("/api/v1/plant-identification", requestRoutes());
  app.route("/api/v1/plant-identification", communityRoutes());
  app.route("/api/v1/plant-identification", diseaseRoutes());
  app.route("/api/v1/plant-identification", careRoutes());
  app.route("/api/v1/plant-identification", speciesRoutes());
  app.route("/api/v1", collectionRoutes());
  app.route("/api/v1/plant-identification/saved-care-instructions", savedCareRoutes());
  app.route("/api/v1/reminders", reminderRoutes());
  app.route("/api/v1/calendar", calendarRoutes());
  app.route("/api/v1/notifications", notificationRoutes());
  app.route("/api/v1/forum", forumRoutes());
  app.route("/api/v1/search", searchRoutes());
  app.route("/api/v1/blog", blogRoutes());
  app.route("/api/v1/blog", blogCommentRoutes());
  app.route("/", blogPublicRoutes());
  app.route("/ws", wsRoutes());

  registerSecuritySchemes(app);
  app.doc31("/api/openapi.json", (c) => ({
    openapi: "3.1.0",
    info: {
      title: "Plant Community API",
      version: getConfig(c.env).APP_VERSION,
      description:
        "Plant identification, care and community. Errors use one envelope " +
        "`{error, code, message, status_code, errors?, request_id}`. Every route answers with and without a trailing slash.",
    },
    servers: [{ url: getConfig(c.env).PUBLIC_API_URL }],
  }));

  app.notFound(async (c) => {
    const asset = await serveStaticAsset(c);
    if (asset) return asset;
    const allow = allowedMethodsFor(app, c.req.path);
    if (allow.length > 0) {
      return respondError(
        c,
        new AppError("METHOD_NOT_ALLOWED", 405, methodNotAllowedMessage(app, c.req.method, c.req.path, allow), undefined, {
          Allow: allow.join(", "),
        }),
      );
    }
    return respondError(c, new AppError("NOT_FOUND", 404, notFoundMessage(app, c.req.method, c.req.path)));
  });

  app.onError(async (err, c) => {
    if (err instanceof AppError) return respondError(c, err);
    // A write that landed after its own account's deletion (migrations/0042 refused it).
    const deleted = await deletedAccountRefusal(c.env, err, c.get("user")?.id).catch(() => null);
    if (deleted) return respondError(c, deleted);
    if (err instanceof HTTPException) {
      const status = err.status;
      if (status === 415) {
        // Only the JSON routes have @hono/zod-openapi's media-type gate, which says just "Unsupported
        // Media Type"; the multipart ones read their bodies by hand and name their types themselves.
        return respondError(c, new AppError("UNSUPPORTED_MEDIA_TYPE", 415, "Send the body as application/json."));
      }
      const defaults = STATUS_DEFAULTS[status] ?? STATUS_DEFAULTS[500]!;
      // Hono raises a 400 only when it cannot parse a body (JSON, form): that is what the code says.
      const code = status === 400 ? "MALFORMED_REQUEST" : defaults.code;
      return respondError(c, new AppError(code, status, err.message || defaults.message));
    }
    c.get("logger")?.error("unhandled error", describeError(err));
    reportRequestError(c, err);
    return respondError(c, new AppError("INTERNAL_ERROR", 500, STATUS_DEFAULTS[500]!.message));
  });

  return app;
}

export type App = ReturnType<typeof createApp>;

function respondError(c: Context<AppEnv>, err: AppError): Response {
  const requestId = c.get("requestId") ?? uuidv7();
  // The seed-compatible identify/ answers its own shape even when what refused it ran before its
  // handler (the body limit, the edge rate limit, a bad credential): its clients read no other.
  const body = isSeedIdentify(c.req.method, c.req.path)
    ? { success: false as const, error: err.message, code: err.code }
    : { ...errorEnvelope(err.code, err.status, err.message, requestId, err.fieldErrors), ...err.extra };
  const res = c.json(body, err.status as ContentfulStatusCode);
  res.headers.set("X-Request-ID", requestId);
  for (const [name, value] of Object.entries(err.headers ?? {})) res.headers.set(name, value);
  if (err.status === 401 && !res.headers.has("WWW-Authenticate")) {
    res.headers.set("WWW-Authenticate", 'Bearer realm="plant-community"');
  }
  return res;
}

/** The pattern of the route that answered (e.g. `/api/v1/…/requests/:id`), not the raw URL. */
function matchedRoutePattern(c: Context<AppEnv>): string {
  const route = matchedRoutes(c)
    .filter((r) => r.method !== "ALL" && !r.path.includes("*"))
    .at(-1);
  return route?.path ?? "(unmatched)";
}

function buildSecureHeaders(deployed: boolean) {
  return secureHeaders({
    // API answers are JSON: nothing may be loaded or framed. HTML (the docs route, the pages
    // of public/ via lib/static-assets.ts) sets its own CSP, which `overwrite: false` keeps.
    contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    strictTransportSecurity: deployed ? "max-age=63072000; includeSubDomains; preload" : false,
    xFrameOptions: "DENY",
    xContentTypeOptions: "nosniff",
    referrerPolicy: "strict-origin-when-cross-origin",
    crossOriginResourcePolicy: "same-site",
    removePoweredBy: true,
    overwrite: false,
  });
}

function trimTrailingSlashes(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, "") : path;
}

/** What a path's routes answer, with the HEAD a GET implies and OPTIONS, sorted (for 405 + Allow). */
function withImplicitMethods(methods: Set<string>): string[] {
  if (methods.has("GET")) methods.add("HEAD");
  if (methods.size > 0) methods.add("OPTIONS");
  return [...methods].sort();
}

/** For a path that exists under other methods, the methods it does answer (for 405 + Allow). */
function allowedMethodsFor(app: OpenAPIHono<AppEnv>, path: string): string[] {
  const normalised = trimTrailingSlashes(path);
  const methods = new Set<string>();
  for (const route of app.routes) {
    if (route.method === "ALL" || route.path.includes("*")) continue;
    if (routePattern(route.path).test(normalised)) methods.add(route.method);
  }
  return withImplicitMethods(methods);
}

/**
 * The methods of every route path without parameters. Such a path can also fit a sibling's
 * parameter — `reminders/calendar-feed/` (POST, DELETE) is `reminders/{id}/` (GET, PATCH) with
 * `id` = `calendar-feed` — and the router would hand a method only the sibling takes to the
 * sibling, whose answer (400: `id` is not a UUID) tells a client nothing. The path is one route's,
 * so a method it does not take is answered as on any other path: 405 with the methods it takes.
 */
function fixedPathMethods(app: OpenAPIHono<AppEnv>): Map<string, string[]> {
  const byPath = new Map<string, Set<string>>();
  for (const route of app.routes) {
    if (route.method === "ALL" || route.path.includes("*") || route.path.includes(":")) continue;
    const path = trimTrailingSlashes(route.path);
    const methods = byPath.get(path) ?? new Set<string>();
    methods.add(route.method);
    byPath.set(path, methods);
  }
  return new Map([...byPath].map(([path, methods]) => [path, withImplicitMethods(methods)]));
}

/**
 * What a 405 says: the methods the path does take, so a client that guessed learns what there is
 * without reading the Allow header (HEAD and OPTIONS go without saying) — and, where the path has
 * an action route for what the method meant (`DELETE auth/user/` for account deletion, which is
 * `POST auth/user/delete/`), that route.
 */
function methodNotAllowedMessage(app: OpenAPIHono<AppEnv>, method: string, path: string, allow: string[]): string {
  const takes = allow.filter((m) => m !== "HEAD" && m !== "OPTIONS");
  const verb = method.toLowerCase();
  const action = `${trimTrailingSlashes(path)}/${verb}`;
  const meant = app.routes.some((route) => route.method === "POST" && trimTrailingSlashes(route.path) === action);
  return `Method "${method}" not allowed on ${path}; it takes ${takes.join(", ")}.${meant ? ` To ${verb}, POST ${action}/.` : ""}`;
}

/**
 * What a 404 for an API path says: where every route is listed (also for `/api/v1/` itself, the
 * first thing a newcomer tries) and, for a path that leaves out its resource's prefix
 * (`/api/v1/plants/` for `/api/v1/plant-identification/plants/`, as the README's short names
 * invite), the routes it may have meant.
 */
function notFoundMessage(app: OpenAPIHono<AppEnv>, method: string, path: string): string {
  const message = `No route for ${method} ${path}.`;
  const docs = " Every route is listed at /api/docs.";
  if (path !== "/api" && !path.startsWith("/api/")) return message;
  const version = /^\/api\/v\d+\//.exec(path)?.[0];
  if (!version) return `${message}${docs}`;
  const normalised = path.replace(/\/+$/, "");
  const meant = new Set<string>();
  for (const route of app.routes) {
    if (route.method === "ALL" || route.path.includes("*") || !route.path.startsWith(version)) continue;
    // The route without the first segment after the version: `/api/v1/plant-identification/plants` → `/api/v1/plants`.
    // (Only where what is left starts with a name: `/api/v1/reminders/:id` is not `/api/v1/:id`.)
    const rest = route.path.slice(version.length).split("/").slice(1);
    if (rest.length === 0 || rest[0]!.startsWith(":")) continue;
    const shortened = version + rest.join("/");
    if (routePattern(shortened).test(normalised)) meant.add(`${route.path.replace(/:(\w+)/g, "{$1}")}/`);
  }
  const suggestions = [...meant].slice(0, 3);
  const didYouMean = suggestions.length > 0 ? ` Did you mean ${suggestions.join(" or ")}?` : "";
  return `${message}${didYouMean}${docs}`;
}

const patternCache = new Map<string, RegExp>();
function routePattern(routePath: string): RegExp {
  let re = patternCache.get(routePath);
  if (!re) {
    const trimmed = routePath.length > 1 ? routePath.replace(/\/+$/, "") : routePath;
    const source = trimmed
      .split("/")
      .map((seg) => (seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      .join("/");
    re = new RegExp(`^${source}$`);
    patternCache.set(routePath, re);
  }
  return re;
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(0)}MB` : `${Math.round(bytes / 1024)}KB`;
}
