/** OpenAPI pieces shared by every route file. */
import { z } from "@hono/zod-openapi";

export const ErrorSchema = z
  .object({
    error: z.literal(true),
    code: z.string().openapi({ example: "VALIDATION_ERROR" }),
    message: z.string(),
    status_code: z.number().int(),
    errors: z.record(z.string(), z.array(z.string())).optional(),
    request_id: z.string(),
  })
  .openapi("Error");

export const MessageSchema = z.object({ message: z.string() }).openapi("Message");

export function jsonBody<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

export function pageSchema<T extends z.ZodType>(item: T, name: string) {
  return z
    .object({
      count: z.number().int(),
      next: z.string().nullable(),
      previous: z.string().nullable(),
      results: z.array(item),
    })
    .openapi(name);
}

/** A JSON object of at most `maxBytes` once serialised (care instructions and the like). */
export function boundedJsonObject(maxBytes: number) {
  return z
    .record(z.string(), z.unknown())
    .refine((value) => new TextEncoder().encode(JSON.stringify(value)).length <= maxBytes, {
      message: `Must be a JSON object of at most ${Math.round(maxBytes / 1024)} KiB.`,
    });
}

/** `?flag=true|false` query parameters (compare with "true" after validation). */
export const BooleanQuery = z.enum(["true", "false"]);
