/**
 * OpenAPI pieces shared by the two kinds of queued request (identification, API.md §2.2, and
 * diagnosis, §4): one status machine, one body frame. services/queued-requests.ts
 * (`queuedRequestBody`) fills the frame; each kind adds its own fields.
 */
import { z } from "@hono/zod-openapi";
import { errorResponses, filePart } from "./schemas";

export const RequestStatus = z.enum(["pending", "processing", "identified", "needs_help", "failed"]);

/** The multipart photo parts of a new request: `image_1` required, up to `image_5`. */
export const REQUEST_PHOTO_PARTS = {
  image_1: filePart(),
  image_2: filePart().optional(),
  image_3: filePart().optional(),
  image_4: filePart().optional(),
  image_5: filePart().optional(),
};

/** The language a request's job asks the engines in, as its body shows it. */
export const RequestLanguage = z.string().openapi({
  description: "The language (ISO 639-1) its results' names and descriptions were asked in; `en` unless the upload named one.",
});

/** Every request route can answer these. */
export const requestErrors = errorResponses(400, 401, 404, 429);

/** A request body: the common frame around the kind's own `fields`. */
export function queuedRequestSchema<Fields extends z.ZodRawShape>(name: string, fields: Fields) {
  return z
    .object({
      request_id: z.uuid(),
      status: RequestStatus,
      ws_url: z.string().openapi({ description: "Progress of this request; `/ws/` carries it too." }),
      images: z.array(z.object({ url: z.string() })),
      ...fields,
      attempts: z.number().int(),
      error_message: z.string().nullable(),
      created_at: z.string(),
      updated_at: z.string(),
      processed_at: z.string().nullable(),
    })
    .openapi(name);
}
