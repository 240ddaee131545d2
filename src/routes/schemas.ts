/** OpenAPI pieces shared by every route file. */
import { z } from "@hono/zod-openapi";
import { ERROR_CODES, type ErrorCode, STATUS_DEFAULTS } from "../lib/errors";

export const ErrorSchema = z
  .object({
    error: z.literal(true),
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    status_code: z.number().int(),
    errors: z.record(z.string(), z.array(z.string())).optional(),
    request_id: z.string(),
  })
  .openapi("Error");

/** What each error status means on any route; a route lists the ones it can answer. */
const ERROR_STATUSES = {
  400: "Invalid input (field errors in `errors`)",
  401: "Not signed in, or the credential is invalid",
  403: "Not allowed",
  404: "Not found (or not yours)",
  409: "Conflicts with the current state",
  413: "Too large",
  415: "Unsupported content type",
  429: "Rate limited (see Retry-After)",
  503: "Temporarily unavailable (see Retry-After)",
} as const;

type ErrorStatus = keyof typeof ERROR_STATUSES;

/** The error responses of a route, all with the one error envelope: `...errorResponses(400, 401, 404)`. */
export function errorResponses<S extends ErrorStatus>(...statuses: S[]) {
  return Object.fromEntries(statuses.map((s) => [s, errorResponse(s, ERROR_STATUSES[s])])) as unknown as {
    [K in S]: ReturnType<typeof errorResponse>;
  };
}

/** One error response with a route's own description, in the one error envelope, with an example of its status. */
export function errorResponse(status: number, description: string, code?: ErrorCode) {
  return { description, content: { "application/json": { schema: ErrorSchema, example: errorExample(status, code) } } };
}

/**
 * What an error of this status looks like (the docs page shows it): the status's usual code and
 * message; a 400 is shown as the field-error case, the one clients meet most.
 */
function errorExample(status: number, exampleCode?: ErrorCode) {
  const request_id = "0190a0b4-5e6f-7a8b-9c0d-1e2f3a4b5c6d";
  if (status === 400) {
    return {
      error: true,
      code: "VALIDATION_ERROR",
      message: "Invalid input.",
      status_code: 400,
      errors: { name: ["This field is required."] },
      request_id,
    };
  }
  const { code, message } = STATUS_DEFAULTS[status] ?? STATUS_DEFAULTS[500]!;
  return { error: true, code: exampleCode ?? code, message, status_code: status, request_id };
}

/**
 * A file part of a multipart body, for the OpenAPI document: required unless `.optional()`
 * (a plain z.any() would always count as optional, and the docs would not mark it).
 */
export function filePart(description?: string) {
  return z
    .custom<File>((value) => value instanceof File, "No file was submitted.")
    .openapi({ type: "string", format: "binary", description });
}

/** `/{id}` path parameters: a UUID. */
export const IdParam = z.object({ id: z.uuid() });

/**
 * `results/{id}/…` path parameters: a result's id, which the answers name `results[].id` —
 * a client holding only a request's `request_id` (identify/'s answer) must look it up first.
 */
export const ResultIdParam = z.object({
  id: z.uuid().openapi({
    description:
      "A result's id: `results[].id` in `requests/{id}/results/` (or `candidates[].id` in `community/{id}/`), not the request's `request_id`.",
  }),
});

/** A blog post named by its id or its slug. */
export const PostParam = z.object({
  id: z
    .string()
    .min(1)
    .max(200)
    .openapi({ description: "The post's id or slug.", param: { name: "id", in: "path" } }),
});

export const MessageSchema = z.object({ message: z.string() }).openapi("Message");

export function jsonBody<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** A JSON request body (`request: { body: requestJson(Schema) }`), required unless said otherwise. */
export function requestJson<T extends z.ZodType, const Required extends boolean = true>(schema: T, required?: Required) {
  return { content: { "application/json": { schema } }, required: (required ?? true) as Required };
}

/** A 204 answer with no body. */
export function noContent(description: string) {
  return { 204: { description } } as const;
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

/**
 * A client's JSON object read as a record, refusing a key named `__proto__`. zod leaves that key
 * out of a record it builds (assigning it would set the object's prototype), so the value would
 * be dropped without a word; the raw input is checked first instead, and the key is named in a 400.
 */
export function withoutProtoKey<T extends z.ZodType>(record: T) {
  return z.preprocess((value, ctx) => {
    if (value !== null && typeof value === "object" && Object.hasOwn(value, "__proto__"))
      ctx.addIssue({ code: "custom", message: 'The key "__proto__" is not allowed.', path: ["__proto__"], input: value });
    return value;
  }, record);
}

/** A JSON object of at most `maxBytes` once serialised (care instructions and the like). */
export function boundedJsonObject(maxBytes: number) {
  return withoutProtoKey(
    z.record(z.string(), z.unknown()).refine((value) => new TextEncoder().encode(JSON.stringify(value)).length <= maxBytes, {
      message: `Must be a JSON object of at most ${Math.round(maxBytes / 1024)} KiB.`,
    }),
  );
}

/** `?flag=true|false` query parameters (compare with "true" after validation). */
export const BooleanQuery = z.enum(["true", "false"]);

/**
 * C0 control characters and DEL (U+0000–U+001F, U+007F). No one types them into a search box;
 * a NUL in particular ends an FTS5 query string early and made the species search answer 500.
 */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
export const CONTROL_CHARACTERS_MESSAGE = "Must not contain control characters (such as NUL, tabs or line breaks).";

export function hasControlCharacters(text: string): boolean {
  return CONTROL_CHARACTER.test(text);
}

/** A scientific name as a client may type it (species lookup, a community proposal). */
export const ScientificNameInput = z
  .string()
  .trim()
  // An empty name is told to enter one, not also which characters a name has.
  .min(3, { message: "Enter a scientific name, e.g. Monstera deliciosa.", abort: true })
  .max(150)
  // Before the regex, so a control character gets the same message as on every search.
  .refine((name) => !hasControlCharacters(name), { message: CONTROL_CHARACTERS_MESSAGE, abort: true })
  .regex(/^[\p{L}][\p{L} .'×-]*$/u, "A scientific name has letters, spaces, hyphens, apostrophes, dots and ×.");

/**
 * Free search text from a query string (`?q=`, `?search=`), shared by every route that searches
 * text so they all refuse the same hostile bytes with the same field error. Leading and trailing
 * whitespace is trimmed first (a pasted trailing newline is forgiven), then what remains may not
 * hold a control character. Callers add `.min(1, …)` when the text is required.
 */
export function searchText(max = 100) {
  return z
    .string()
    .trim()
    .max(max, `Ensure this field has no more than ${max} characters.`)
    .refine((text) => !hasControlCharacters(text), { message: CONTROL_CHARACTERS_MESSAGE });
}

export const LANGUAGE_MESSAGE = "Use a two-letter ISO 639-1 language code in lower case, e.g. fr or de.";

/**
 * The language an identification is asked in (`identify/`, `requests/`, `disease-requests/`):
 * ISO 639-1, two lower-case letters. Absent means English; `Accept-Language` is not read
 * (docs/api.md § Identification in the user's language says why).
 */
export const IdentificationLanguage = z
  .string()
  .regex(/^[a-z]{2}$/, LANGUAGE_MESSAGE)
  .optional()
  .openapi({
    description:
      "The language (ISO 639-1, e.g. `fr`) the engines' localised details — common names, plant names, Plant.id's descriptions — are asked in. " +
      "Absent: `en`. A language an engine does not know gets that engine's English. The shared species catalogue keeps English names whatever the language.",
    example: "fr",
  });
