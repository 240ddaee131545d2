/**
 * The one way to make a route module: `createRouter()` gives an OpenAPI router whose zod
 * validation failures (params, query, JSON body) all become the 400 VALIDATION_ERROR envelope
 * with field errors. app.ts mounts each router under its own prefix.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { AppError, fieldErrorsFrom } from "../lib/errors";

export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    strict: false,
    defaultHook: (result) => {
      if (!result.success) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", fieldErrorsFrom(result.error));
    },
  });
}
