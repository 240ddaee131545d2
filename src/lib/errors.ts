/**
 * One error type for the whole service. Anything thrown as an AppError reaches the client as
 * the envelope of API.md §0; anything else becomes a 500 with no internals in it.
 */
import type { z } from "zod";

export type FieldErrors = Record<string, string[]>;

/** Turns zod issues into the envelope's `errors: {field: [messages]}` map. */
export function fieldErrorsFrom(error: z.ZodError): FieldErrors {
  const out: FieldErrors = {};
  for (const issue of error.issues) {
    const key = issue.path.length > 0 ? issue.path.join(".") : "non_field_errors";
    (out[key] ??= []).push(issue.message);
  }
  return out;
}

/** A D1 write refused by a unique index (a duplicate the caller should hear about as 409). */
/** A UNIQUE constraint refused the write; drizzle wraps D1's error, so the cause chain is searched. */
export function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (/UNIQUE constraint failed/i.test(e.message)) return true;
  }
  return false;
}

export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly fieldErrors?: FieldErrors,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "AppError";
  }
}

export interface ErrorEnvelope {
  error: true;
  code: string;
  message: string;
  status_code: number;
  errors?: FieldErrors;
  request_id: string;
}

export function errorEnvelope(code: string, status: number, message: string, requestId: string, fieldErrors?: FieldErrors): ErrorEnvelope {
  return {
    error: true,
    code,
    message,
    status_code: status,
    ...(fieldErrors && Object.keys(fieldErrors).length > 0 ? { errors: fieldErrors } : {}),
    request_id: requestId,
  };
}

/** Default code and message for statuses raised by the framework rather than by our code. */
export const STATUS_DEFAULTS: Record<number, { code: string; message: string }> = {
  400: { code: "BAD_REQUEST", message: "The request could not be understood." },
  401: { code: "AUTHENTICATION_REQUIRED", message: "Authentication credentials were not provided or are invalid." },
  403: { code: "FORBIDDEN", message: "You do not have permission to perform this action." },
  404: { code: "NOT_FOUND", message: "Not found." },
  405: { code: "METHOD_NOT_ALLOWED", message: "Method not allowed." },
  409: { code: "CONFLICT", message: "The request conflicts with the current state." },
  413: { code: "PAYLOAD_TOO_LARGE", message: "Request body too large." },
  415: { code: "UNSUPPORTED_MEDIA_TYPE", message: "Unsupported content type." },
  429: { code: "RATE_LIMITED", message: "Too many requests. Please try again later." },
  500: { code: "INTERNAL_ERROR", message: "Something went wrong on our side." },
  503: { code: "SERVICE_UNAVAILABLE", message: "The service is temporarily unavailable." },
};
