/**
 * One error type for the whole service. Anything thrown as an AppError reaches the client as
 * the envelope of API.md §0; anything else becomes a 500 with no internals in it.
 */
import { DrizzleQueryError } from "drizzle-orm/errors";
import { z } from "zod";

export type FieldErrors = Record<string, string[]>;

/** What the API says, whatever the schema, about a field the request left out. */
const REQUIRED_MESSAGE = "This field is required.";

/**
 * Turns zod issues into the envelope's `errors: {field: [messages]}` map, each key `prefix`
 * then the issue's path.
 *
 * A field absent from `input` (the value that was parsed) answers "This field is required.":
 * zod's own words for it are its type message ("Invalid input: expected string, received
 * undefined") or whatever message the schema gave for a bad value (a date-time's "Enter an
 * ISO-8601 date-time…"). Absence is read from `input` at the issue's path because zod v4 drops
 * an issue's `input` from the error it returns (it keeps it only under `reportInput`, which the
 * request validators do not pass). A refinement's own (`custom`) message stands: it may say
 * when the field is needed.
 */
export function fieldErrorsFrom(error: z.ZodError, input: unknown, prefix: (string | number)[] = []): FieldErrors {
  const out: FieldErrors = {};
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path.map(String)];
    const key = path.length > 0 ? path.join(".") : "non_field_errors";
    const absent = issue.code !== "custom" && issue.path.length > 0 && valueAt(input, issue.path) === undefined;
    (out[key] ??= []).push(absent ? REQUIRED_MESSAGE : issue.message);
  }
  return out;
}

/**
 * The API's words where a schema gave none, for what zod would otherwise say in its own terms
 * ("Invalid input: expected number, received NaN" for `?page=abc`, "Too small: expected number
 * to be >=1", an unrecognised key without the names that are recognised): a client developer
 * reads these in `errors`. A schema's own message still wins
 * (zod asks this map only when the schema has none); anything not listed keeps zod's words.
 */
export function defaultValidationMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      if (issue.expected === "number") return "Enter a number.";
      if (issue.expected === "int") return "Enter a whole number.";
      if (issue.expected === "boolean") return "Enter true or false.";
      return undefined;
    case "too_small":
    case "too_big": {
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const inclusive = issue.inclusive !== false;
      if (issue.origin === "number" || issue.origin === "int") {
        const relation = issue.code === "too_small" ? "greater than" : "less than";
        return `Ensure this value is ${relation} ${inclusive ? "or equal to " : ""}${bound}.`;
      }
      if ((issue.origin === "string" || issue.origin === "array") && inclusive) {
        const unit = `${issue.origin === "string" ? "character" : "item"}${Number(bound) === 1 ? "" : "s"}`;
        return `Ensure this field has ${issue.code === "too_small" ? "at least" : "no more than"} ${bound} ${unit}.`;
      }
      return undefined;
    }
    case "unrecognized_keys": {
      // zod names only the keys it refused; a client that sent `password` where the body takes
      // `current_password` also needs the names it should have sent.
      const shape = (issue.inst as z.core.$ZodObject | undefined)?._zod.def.shape;
      if (!shape) return undefined;
      return unrecognizedMessage(issue.keys, Object.keys(shape));
    }
    default:
      return undefined;
  }
}

z.config({ customError: defaultValidationMessage });

/**
 * What a request is told about body fields it sent that the route does not take, with the fields
 * it does take: `Unrecognized key: "password". Accepted fields: current_password.`
 */
function unrecognizedMessage(sent: readonly string[], accepted: readonly string[]): string {
  const quoted = sent.map((k) => `"${k}"`).join(", ");
  const tail = accepted.length === 0 ? "No fields are accepted here." : `Accepted fields: ${accepted.join(", ")}.`;
  return `Unrecognized key${sent.length === 1 ? "" : "s"}: ${quoted}. ${tail}`;
}

/** The value at `path` inside `input`; undefined where the path leaves it or meets no own property. */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** A UNIQUE constraint refused the write; drizzle wraps D1's error, so the cause chain is searched. */
export function isUniqueViolation(err: unknown): boolean {
  return errorMatches(err, /UNIQUE constraint failed/i);
}

/**
 * What one account may hold of each kind, as the triggers of migrations 0035 (collections, plants,
 * care cards) and 0036 (events not yet ended) enforce them inside the write (so concurrent writes
 * cannot overshoot): the numbers must match the migrations.
 */
export const PER_USER_CAPS = {
  collections: { max: 200, code: "COLLECTION_LIMIT", noun: "collections", holder: "You" },
  user_plants: { max: 5000, code: "PLANT_LIMIT", noun: "plants", holder: "You" },
  saved_care_instructions: { max: 1000, code: "CARE_CARD_LIMIT", noun: "saved care cards", holder: "You" },
  // A moderator may meet this one on someone else's event, so it names the organiser.
  calendar_events: { max: 50, code: "EVENT_LIMIT", noun: "events that have not ended", holder: "The organiser" },
} as const;

/** The 409 for a write one of PER_USER_CAPS' triggers refused, or null for any other error. */
export function perUserCapError(err: unknown): AppError | null {
  for (const [table, cap] of Object.entries(PER_USER_CAPS)) {
    if (errorMatches(err, new RegExp(`PER_USER_CAP ${table}\\b`)))
      return new AppError(cap.code, 409, `${cap.holder} can have at most ${cap.max} ${cap.noun}. Delete some first.`);
  }
  return null;
}

/** A FOREIGN KEY constraint refused the write: the row it names went meanwhile. */
export function isForeignKeyViolation(err: unknown): boolean {
  return errorMatches(err, /FOREIGN KEY constraint failed/i);
}

/** migrations/0042 refused the write: the account it is for was deleted by its owner. */
export function isDeletedAccountWrite(err: unknown): boolean {
  return errorMatches(err, /\bACCOUNT_DELETED\b/);
}

/** Whether the error or one of its causes (drizzle wraps D1's, which wraps SQLite's) says `pattern`. */
export function errorMatches(err: unknown, pattern: RegExp): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (pattern.test(e.message)) return true;
  }
  return false;
}

/**
 * Every error code the service answers with, and its one meaning. Clients branch on these, so
 * a code is never reused for something else; the API guide (docs/) lists the same table.
 */
export const ERROR_CODES = {
  VALIDATION_ERROR: "A field or the body failed validation; `errors` names the fields (400).",
  MALFORMED_REQUEST: "The body could not be parsed as the declared content type (400).",
  BAD_REQUEST: "The request could not be understood (400).",
  INVALID_TOKEN:
    "An emailed link (password reset, email confirmation, unsubscribe) is unknown, altered, spent or expired (400). Not a session credential: see TOKEN_INVALID.",
  INVALID_IMAGE: "An uploaded file is not a well-formed JPEG, PNG or WebP within the limits (400).",
  NO_IMAGE: "No image part was sent (400, identify endpoint).",
  IDEMPOTENCY_KEY_INVALID:
    "The Idempotency-Key header is empty, over 255 characters, not printable ASCII or a malformed quoted string (400).",
  CANNOT_RSVP_OWN_EVENT: "Organisers do not RSVP to their own event (400).",
  AUTHENTICATION_REQUIRED: "No credentials were sent (401).",
  INVALID_CREDENTIALS: "The username/email and password do not match (401).",
  TWO_FACTOR_REQUIRED:
    "The password was right and the account has two-factor sign-in: finish with `auth/2fa/verify/` and the `two_factor_token` this answer carries (401; no session yet).",
  TWO_FACTOR_TOKEN_INVALID:
    "A `two_factor_token` is malformed, expired (5 minutes), already used, or the account changed since; sign in with the password again (401).",
  INVALID_TWO_FACTOR_CODE:
    "The authenticator code or recovery code is wrong, or was used already; counts toward the account lockout (401 when signing in, 400 elsewhere).",
  TOKEN_INVALID:
    "A session credential (access or refresh token) is malformed, of the wrong type, revoked or its session ended (401). Not an emailed link: see INVALID_TOKEN.",
  TOKEN_EXPIRED:
    "A session credential has expired: an access token, refresh it; a refresh token (from auth/token/refresh/), sign in again (401).",
  TOKEN_REUSED: "A refresh token was used twice; its whole session is ended (401).",
  INVALID_SIGNATURE: "A webhook delivery's signature is missing, does not match, or its timestamp is more than 5 minutes off (401).",
  FIREBASE_TOKEN_INVALID: "The Firebase ID token is malformed, not signed by Google, for another project, expired or not yet valid (401).",
  FORBIDDEN: "Signed in, but not allowed (403).",
  CSRF_FAILED: "A cookie-authenticated write without the matching X-CSRFToken (403).",
  EDIT_WINDOW_CLOSED: "The forum post can no longer be edited by its author (403).",
  TOPIC_LOCKED: "The forum topic is locked (403).",
  TRUST_LEVEL_TOO_LOW: "The forum action needs a higher trust level (403).",
  ACCOUNT_DISABLED: "The account is deactivated (403).",
  EMAIL_NOT_VERIFIED:
    "An account has this email, and the sign-in provider has not verified that the caller controls it (403; it is never taken over).",
  NOT_FOUND: "No such resource, or not the caller's (404; never 403, so existence does not leak).",
  METHOD_NOT_ALLOWED: "The path exists, the method does not (405).",
  CONFLICT: "The request conflicts with the current state (409).",
  INVALID_STATE: "The resource is not in a state that allows this (409).",
  ALREADY_REPORTED: "The caller already reported this forum post or blog comment (409).",
  CAPACITY_BELOW_GOING: "An event's capacity cannot drop below the people going (409).",
  DEFAULT_COLLECTION: "The default collection cannot be deleted (409).",
  COLLECTION_NOT_EMPTY: "The collection still holds plants: move them first, or delete them with it (409).",
  DUPLICATE_CARE_CARD: "A care card for this plant is already saved (409).",
  DUPLICATE_COLLECTION: "A collection with this name exists (409).",
  DUPLICATE_PLANT: "The plant is already in that collection (409).",
  EMAIL_TAKEN: "The email address belongs to another account (409).",
  EMAIL_SUPPRESSED:
    "We send no email to the address: mail to it was reported as spam. Use another address, or ask support to lift the block (409).",
  USERNAME_TAKEN: "The username belongs to another account (409).",
  EVENT_FULL: "The event has no places left (409).",
  EVENT_STARTED: "The event has already started (409).",
  POST_DELETED: "The forum post was deleted (409).",
  REMINDER_LIMIT: "The account has the most reminders allowed (409).",
  EVENT_LIMIT: "The account organises as many events not yet ended as allowed (409).",
  COLLECTION_LIMIT: "The account has the most collections allowed (409).",
  PLANT_LIMIT: "The account has the most plants allowed (409).",
  CARE_CARD_LIMIT: "The account has the most saved care cards allowed (409).",
  TOPIC_HAS_REPLIES: "A topic with replies cannot be deleted by its author (409).",
  IDEMPOTENCY_KEY_IN_USE: "A request with this Idempotency-Key is still running; retry after it (409).",
  FILE_TOO_LARGE: "An uploaded file is over the size limit (413).",
  STORAGE_FULL: "The photos the account keeps would go over its storage allowance; delete some first (413).",
  PAYLOAD_TOO_LARGE: "The body is over the size limit (413).",
  UNSUPPORTED_MEDIA_TYPE: "The body's content type is not accepted here (415).",
  IDEMPOTENCY_KEY_REUSED: "This Idempotency-Key was used for another request (another path or payload) within 24 h (422).",
  UPGRADE_REQUIRED: "A WebSocket path was called without an upgrade (426).",
  RATE_LIMITED: "Too many requests; see Retry-After (429).",
  ACCOUNT_LOCKED: "Too many failed sign-ins; see Retry-After (429).",
  IDEMPOTENCY_KEY_LIMIT:
    "The account holds 1000 Idempotency-Keys from the last 24 h; a new one waits for the oldest to expire, see Retry-After (429).",
  INTERNAL_ERROR: "Something failed on the server; reported, never detailed (500).",
  SERVICE_UNAVAILABLE: "A dependency is down (see Retry-After), or a feature is not configured on this deployment (503).",
  QUEUE_UNAVAILABLE: "The job queue refused the job; the request failed, retry (503).",
  OAUTH_NOT_CONFIGURED: "The OAuth provider is not configured on this deployment (503).",
  FIREBASE_NOT_CONFIGURED: "Firebase sign-in is not configured on this deployment (503).",
  PROVIDERS_UNAVAILABLE: "Both identification providers are down (503, identify endpoint).",
  CARE_UNAVAILABLE: "AI care instructions cannot be generated right now (503).",
  TWO_FACTOR_UNAVAILABLE:
    "The server cannot open this account's authenticator secret: it was sealed under a JWT_SECRET no longer configured (an operator's error, logged; not a wrong code, and not counted toward the lockout). A recovery code may still work (503).",
  SPECIES_LOOKUP_UNAVAILABLE: "Trefle is down, rate-limited or malformed (503).",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    message: string,
    readonly fieldErrors?: FieldErrors,
    readonly headers?: Record<string, string>,
    /** Fields the answer carries beside the envelope's (TWO_FACTOR_REQUIRED's token). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "AppError";
  }
}

export interface ErrorEnvelope {
  error: true;
  code: ErrorCode;
  message: string;
  status_code: number;
  errors?: FieldErrors;
  request_id: string;
}

export function errorEnvelope(
  code: ErrorCode,
  status: number,
  message: string,
  requestId: string,
  fieldErrors?: FieldErrors,
): ErrorEnvelope {
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
export const STATUS_DEFAULTS: Record<number, { code: ErrorCode; message: string }> = {
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

/**
 * The error to log or report: a failed query's driver error, without drizzle's wrapper, whose
 * message carries the SQL and its parameters (which may be personal data or token hashes).
 */
export function reportableError(err: unknown): unknown {
  return err instanceof DrizzleQueryError && err.cause !== undefined ? err.cause : err;
}

/** `row` when there is one; otherwise the 404 `"<what> not found."` (also for what is not the caller's). */
export function orNotFound<T>(row: T | null | undefined, what: string): T {
  if (row === null || row === undefined) throw new AppError("NOT_FOUND", 404, `${what} not found.`);
  return row;
}
