// OpenAI API emulator, as seen under the base URL https://api.openai.com/v1.
// Shapes follow the official openai-node SDK.
//
// Chat completions answer `json_schema` requests with a generated instance of the caller's own
// schema, so clients are tested against what they asked for. Strict schemas are checked for the
// two Structured Outputs rules clients most often break (`additionalProperties: false` and
// every property listed in `required`). The generated text is English whatever the prompt asks;
// when a user message asks for another language by its code (`language … "fr"`, as our care
// prompt does), each generated string starts with `[fr] ` so tests can see the language reached
// the model. Not checked: `pattern`, `format` beyond a few common
// ones, `multipleOf`. Images are always PNG bytes, whatever `output_format` asks for.

import {
  COMMON_FAILURES,
  DEFAULT_API_KEY,
  bearerToken,
  defineEmulator,
  isRecord,
  jsonResponse,
  randomToken,
  readJsonBody,
  type Emulator,
} from "./common";
import { SPECIES } from "./species";

export const OPENAI_FAILURES = [...COMMON_FAILURES, "insufficient_quota", "length", "refusal"] as const;
export type OpenAIFailure = (typeof OPENAI_FAILURES)[number];

export interface OpenAIEmulatorOptions {
  apiKeys?: string[];
}

export type OpenAIEmulator = Emulator<OpenAIFailure>;

export const REFUSAL_MESSAGE = "I can't help with that.";

/** Shut down upstream (dall-e on 2026-05-12, gpt-3.5-turbo on 2026-10-23): 404 model_not_found. */
const RETIRED_MODELS = [/^dall-e-[23]$/, /^gpt-3\.5-turbo/];
const CHAT_MODELS = ["gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini"];
const IMAGE_MODELS = ["gpt-image-1", "gpt-image-1-mini"];
const IMAGE_SIZES = ["1024x1024", "1536x1024", "1024x1536", "auto"];
const IMAGE_QUALITIES = ["low", "medium", "high", "auto"];
const MESSAGE_ROLES = ["system", "developer", "user", "assistant", "tool"];
const SCHEMA_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** A 1×1 green RGB PNG (signature, IHDR, IDAT, IEND with valid CRCs). */
export const TINY_PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mOw6rcBAAIMAQaYS+BtAAAAAElFTkSuQmCC";

export function createOpenAIEmulator(options: OpenAIEmulatorOptions = {}): OpenAIEmulator {
  const apiKeys = new Set(options.apiKeys ?? [DEFAULT_API_KEY]);

  return defineEmulator<OpenAIFailure>({
    name: "openai",
    failures: OPENAI_FAILURES,
    async route(req, controller) {
      const url = new URL(req.url);
      const path = url.pathname.replace(/\/+$/, "");
      const authError = checkAuth(req, apiKeys);
      if (authError) return authError;

      if (path === "/v1/chat/completions" && req.method === "POST") {
        return chatCompletion(req, () => controller.take((failure) => failure === "length" || failure === "refusal"));
      }
      if (path === "/v1/images/generations" && req.method === "POST") return imageGeneration(req);
      if (path === "/v1/models" && req.method === "GET") {
        return openaiResponse({
          object: "list",
          data: [...CHAT_MODELS, ...IMAGE_MODELS].map((id) => ({ id, object: "model", created: 1_754_425_777, owned_by: "system" })),
        });
      }
      return openaiError(404, `Invalid URL (${req.method} ${url.pathname})`, "invalid_request_error");
    },
    faults: {
      rateLimited: (retryAfterSeconds) =>
        openaiError(
          429,
          `Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in ${retryAfterSeconds}s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
          "requests",
          null,
          "rate_limit_exceeded",
          { "retry-after": String(Math.ceil(retryAfterSeconds)), "x-ratelimit-remaining-requests": "0" },
        ),
      serverError: () => openaiError(500, "The server had an error while processing your request. Sorry about that!", "server_error"),
      malformedSample: {
        id: "chatcmpl-emulator",
        object: "chat.completion",
        choices: [{ index: 0, message: { role: "assistant", content: "{}" } }],
      },
      extra: {
        // Billing, not pacing: no Retry-After, and retrying will not help.
        insufficient_quota: () =>
          openaiError(
            429,
            "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            null,
            "insufficient_quota",
          ),
      },
    },
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

function openaiResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return jsonResponse(body, status, {
    "x-request-id": `req_${randomToken(24)}`,
    "openai-processing-ms": "42",
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-remaining-requests": "499",
    "x-ratelimit-reset-requests": "120ms",
    "x-ratelimit-limit-tokens": "200000",
    "x-ratelimit-remaining-tokens": "199000",
    "x-ratelimit-reset-tokens": "300ms",
    ...headers,
  });
}

function openaiError(
  status: number,
  message: string,
  type: string,
  param: string | null = null,
  code: string | null = null,
  headers: Record<string, string> = {},
): Response {
  return openaiResponse({ error: { message, type, param, code } }, status, headers);
}

function checkAuth(req: Request, apiKeys: Set<string>): Response | null {
  const key = bearerToken(req);
  if (!key) {
    return openaiError(
      401,
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      "invalid_request_error",
    );
  }
  if (apiKeys.has(key)) return null;
  const masked = key.length > 8 ? `${key.slice(0, 3)}${"*".repeat(key.length - 7)}${key.slice(-4)}` : "****";
  return openaiError(
    401,
    `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    "invalid_request_error",
    null,
    "invalid_api_key",
  );
}

const INVALID_JSON_BODY =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)";

function modelNotFound(model: string): Response {
  return openaiError(
    404,
    `The model \`${model}\` does not exist or you do not have access to it.`,
    "invalid_request_error",
    null,
    "model_not_found",
  );
}

const isRetired = (model: string) => RETIRED_MODELS.some((pattern) => pattern.test(model));

// ---------------------------------------------------------------------------------------------
// Chat completions

type ScriptedChatFailure = "length" | "refusal" | "none";

async function chatCompletion(req: Request, takeScriptedFailure: () => OpenAIFailure): Promise<Response> {
  const json = await readJsonBody(req);
  if (!json.ok || !isRecord(json.value)) return openaiError(400, INVALID_JSON_BODY, "invalid_request_error");
  const body = json.value;

  if (typeof body.model !== "string" || body.model === "") {
    return openaiError(400, "you must provide a model parameter", "invalid_request_error");
  }
  if (isRetired(body.model) || IMAGE_MODELS.includes(body.model)) return modelNotFound(body.model);

  if (!Array.isArray(body.messages))
    return openaiError(400, "Missing required parameter: 'messages'.", "invalid_request_error", "messages", "missing_required_parameter");
  if (body.messages.length === 0)
    return openaiError(400, "[] is too short - 'messages'", "invalid_request_error", "messages", "empty_array");
  for (const [index, message] of body.messages.entries()) {
    if (!isRecord(message) || !MESSAGE_ROLES.includes(message.role as string)) {
      return openaiError(
        400,
        `Invalid value for 'messages[${index}].role'.`,
        "invalid_request_error",
        `messages[${index}].role`,
        "invalid_value",
      );
    }
  }
  const messages = body.messages as Record<string, unknown>[];
  const promptText = messages.map((message) => messageText(message.content)).join("\n");

  const n = body.n ?? 1;
  if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 128) {
    return openaiError(400, "Invalid 'n': expected an integer between 1 and 128.", "invalid_request_error", "n", "invalid_value");
  }

  const userText = messages
    .filter((m) => m.role === "user")
    .map((m) => messageText(m.content))
    .join("\n");
  const plant = plantNameIn(userText);
  const content = completionContent(body.response_format, promptText, plant, languageAskedIn(userText));
  if (!content.ok) return content.response;

  const scripted = takeScriptedFailure() as ScriptedChatFailure;
  const message =
    scripted === "refusal"
      ? { role: "assistant", content: null, refusal: REFUSAL_MESSAGE, annotations: [] }
      : // "length": the model ran out of tokens mid-answer, so JSON content does not parse.
        {
          role: "assistant",
          content: scripted === "length" ? content.text.slice(0, Math.ceil(content.text.length / 2)) : content.text,
          refusal: null,
          annotations: [],
        };
  const completionText = message.content ?? REFUSAL_MESSAGE;
  const promptTokens = Math.ceil(promptText.length / 4) + 7 * messages.length;
  const completionTokens = Math.ceil(completionText.length / 4) * (n as number);

  return openaiResponse({
    id: `chatcmpl-${randomToken(29)}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices: Array.from({ length: n as number }, (_, index) => ({
      index,
      message,
      logprobs: null,
      finish_reason: scripted === "length" ? "length" : "stop",
    })),
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: "default",
    system_fingerprint: "fp_emulator0",
  });
}

/** Message content is a string or a list of parts; only text parts matter here. */
function messageText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .filter((part): part is { text: string } => isRecord(part) && typeof part.text === "string")
    .map((part) => part.text)
    .join("\n");
}

/** A species of the shared list named in the user messages (scientific or common name). */
function plantNameIn(text: string): string {
  const lower = text.toLowerCase();
  const byScientificName = SPECIES.find((s) => lower.includes(s.scientificName.toLowerCase()));
  if (byScientificName) return byScientificName.scientificName;
  const byCommonName = SPECIES.find((s) => [...s.commonNames.en, ...s.commonNames.fr].some((name) => lower.includes(name.toLowerCase())));
  return byCommonName?.scientificName ?? "this plant";
}

/**
 * The language a user message asks the answer in by its code (`language with code "fr"`,
 * `language: "pt-BR"`), or null when it names none or asks for English (the emulator's own).
 */
function languageAskedIn(text: string): string | null {
  const code = /\blanguage\b[^"\n]{0,40}"([a-z]{2,3}(?:-[a-z]{2})?)"/i.exec(text)?.[1];
  return code && !/^en(-|$)/i.test(code) ? code : null;
}

type Content = { ok: true; text: string } | { ok: false; response: Response };

function completionContent(responseFormat: unknown, promptText: string, plant: string, language: string | null): Content {
  if (responseFormat === undefined || responseFormat === null) return { ok: true, text: plainAnswer(plant) };
  if (!isRecord(responseFormat)) {
    return {
      ok: false,
      response: openaiError(
        400,
        "Invalid type for 'response_format': expected an object.",
        "invalid_request_error",
        "response_format",
        "invalid_type",
      ),
    };
  }
  switch (responseFormat.type) {
    case "text":
      return { ok: true, text: plainAnswer(plant) };
    case "json_object":
      if (!/json/i.test(promptText)) {
        return {
          ok: false,
          response: openaiError(
            400,
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            "invalid_request_error",
            "messages",
          ),
        };
      }
      return {
        ok: true,
        text: JSON.stringify({
          plant,
          summary: `${plant} is easy to keep healthy with steady care.`,
          care: { light: `Bright, indirect light suits ${plant}.`, water: `Water ${plant} when the top of the soil is dry.` },
        }),
      };
    case "json_schema": {
      const spec = responseFormat.json_schema;
      if (!isRecord(spec)) {
        return {
          ok: false,
          response: openaiError(
            400,
            "Missing required parameter: 'response_format.json_schema'.",
            "invalid_request_error",
            "response_format.json_schema",
            "missing_required_parameter",
          ),
        };
      }
      if (typeof spec.name !== "string" || !SCHEMA_NAME.test(spec.name)) {
        return {
          ok: false,
          response: openaiError(
            400,
            "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
            "invalid_request_error",
            "response_format.json_schema.name",
            "invalid_value",
          ),
        };
      }
      if (!isRecord(spec.schema)) {
        return {
          ok: false,
          response: openaiError(
            400,
            "Missing required parameter: 'response_format.json_schema.schema'.",
            "invalid_request_error",
            "response_format.json_schema.schema",
            "missing_required_parameter",
          ),
        };
      }
      if (spec.strict === true) {
        const problem = strictSchemaProblem(spec.schema, spec.schema, []);
        if (problem) {
          return {
            ok: false,
            response: openaiError(
              400,
              `Invalid schema for response_format '${spec.name}': ${problem}`,
              "invalid_request_error",
              "response_format",
              "invalid_json_schema",
            ),
          };
        }
      }
      return { ok: true, text: JSON.stringify(instanceOf(spec.schema, { root: spec.schema, plant, language, path: [], depth: 0 })) };
    }
    default:
      return {
        ok: false,
        response: openaiError(
          400,
          `Invalid value: '${String(responseFormat.type)}'. Supported values are: 'text', 'json_object', and 'json_schema'.`,
          "invalid_request_error",
          "response_format.type",
          "invalid_value",
        ),
      };
  }
}

function plainAnswer(plant: string): string {
  return `${plant} does best in bright, indirect light. Water when the top few centimetres of soil are dry, and feed monthly during the growing season.`;
}

// ---------------------------------------------------------------------------------------------
// JSON Schema: strict-mode checks and instance generation

function resolveRef(root: Record<string, unknown>, ref: string): Record<string, unknown> | null {
  if (ref === "#") return root;
  if (!ref.startsWith("#/")) return null;
  let node: unknown = root;
  for (const token of ref.slice(2).split("/")) {
    if (!isRecord(node)) return null;
    node = node[token.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return isRecord(node) ? node : null;
}

function strictSchemaProblem(schema: Record<string, unknown>, root: Record<string, unknown>, path: string[]): string | null {
  const context = `In context=(${path.map((p) => `'${p}'`).join(", ")})`;
  const isObject = schema.type === "object" || (Array.isArray(schema.type) && schema.type.includes("object"));
  if (isObject) {
    if (schema.additionalProperties !== false) return `${context}, 'additionalProperties' is required to be supplied and to be false.`;
    const properties = isRecord(schema.properties) ? schema.properties : {};
    const required = Array.isArray(schema.required) ? schema.required : [];
    const missing = Object.keys(properties).find((key) => !required.includes(key));
    if (missing !== undefined)
      return `${context}, 'required' is required to be supplied and to be an array including every key in properties. Missing '${missing}'.`;
  }
  const children: [string, unknown][] = [];
  if (isRecord(schema.properties))
    for (const [key, child] of Object.entries(schema.properties)) children.push([`properties/${key}`, child]);
  if (schema.items !== undefined) children.push(["items", schema.items]);
  for (const keyword of ["anyOf", "oneOf", "allOf"] as const) {
    const branches = schema[keyword];
    if (Array.isArray(branches)) branches.forEach((branch, i) => children.push([`${keyword}/${i}`, branch]));
  }
  for (const defs of [schema.$defs, schema.definitions]) {
    if (isRecord(defs)) for (const [key, child] of Object.entries(defs)) children.push([`$defs/${key}`, child]);
  }
  for (const [key, child] of children) {
    if (!isRecord(child)) continue;
    const problem = strictSchemaProblem(child, root, [...path, key]);
    if (problem) return problem;
  }
  return null;
}

interface InstanceContext {
  root: Record<string, unknown>;
  plant: string;
  /** The language the prompt asked for other than English: strings start with `[code] `. */
  language: string | null;
  /** Property names from the root, for readable strings. */
  path: string[];
  depth: number;
}

/** Recursive schemas stop here: nullable values become null, arrays empty. */
const MAX_SCHEMA_DEPTH = 8;

/**
 * A minimal valid instance: enum/const → first value, string → a sentence naming the plant,
 * number/integer → inside the bounds, boolean → true, array → one item (or minItems),
 * object → every property, nullable union → the non-null type, anyOf/oneOf → first usable branch.
 */
function instanceOf(schemaInput: unknown, ctx: InstanceContext): unknown {
  if (!isRecord(schemaInput)) return null;
  let schema = schemaInput;
  if (typeof schema.$ref === "string") {
    const target = resolveRef(ctx.root, schema.$ref);
    if (!target) return null;
    schema = target;
  }
  const deeper = { ...ctx, depth: ctx.depth + 1 };
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const keyword of ["anyOf", "oneOf"] as const) {
    const branches = schema[keyword];
    if (Array.isArray(branches) && branches.length > 0) {
      const nonNull = branches.find((branch) => !(isRecord(branch) && branch.type === "null"));
      if (ctx.depth >= MAX_SCHEMA_DEPTH || nonNull === undefined) return null;
      return instanceOf(nonNull, deeper);
    }
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) {
    return instanceOf(Object.assign({}, ...schema.allOf.filter(isRecord), { allOf: undefined }), ctx);
  }

  const types = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type];
  const nullable = types.includes("null");
  let type = types.find((t) => t !== "null") as string | undefined;
  if (type === undefined && types.length === 0)
    type = isRecord(schema.properties) ? "object" : schema.items !== undefined ? "array" : "string";
  if (type === undefined || (nullable && ctx.depth >= MAX_SCHEMA_DEPTH)) return null;

  switch (type) {
    case "string":
      return stringInstance(schema, ctx);
    case "integer":
    case "number":
      return numberInstance(schema, type === "integer");
    case "boolean":
      return true;
    case "array": {
      const minItems = typeof schema.minItems === "number" ? schema.minItems : 0;
      const maxItems = typeof schema.maxItems === "number" ? schema.maxItems : Infinity;
      const count = ctx.depth >= MAX_SCHEMA_DEPTH ? minItems : Math.min(Math.max(1, minItems), maxItems);
      return Array.from({ length: count }, () => instanceOf(schema.items, deeper));
    }
    case "object": {
      const properties = isRecord(schema.properties) ? schema.properties : {};
      return Object.fromEntries(
        Object.entries(properties).map(([key, child]) => [key, instanceOf(child, { ...deeper, path: [...ctx.path, key] })]),
      );
    }
    default:
      return null;
  }
}

function stringInstance(schema: Record<string, unknown>, ctx: InstanceContext): string {
  switch (schema.format) {
    case "date-time":
      return "2026-01-01T00:00:00Z";
    case "date":
      return "2026-01-01";
    case "email":
      return "gardener@example.com";
    case "uri":
      return "https://example.com/plants";
    case "uuid":
      return "00000000-0000-4000-8000-000000000000";
  }
  const label = ctx.path.length > 0 ? ctx.path.join(" ").replace(/_/g, " ") : "care notes";
  let text = `${ctx.language ? `[${ctx.language}] ` : ""}${label.charAt(0).toUpperCase()}${label.slice(1)} for ${ctx.plant}.`;
  const minLength = typeof schema.minLength === "number" ? schema.minLength : 0;
  const maxLength = typeof schema.maxLength === "number" ? schema.maxLength : Infinity;
  while (text.length < minLength) text += " More details follow.";
  return text.slice(0, maxLength);
}

function numberInstance(schema: Record<string, unknown>, integer: boolean): number {
  const num = (value: unknown) => (typeof value === "number" ? value : undefined);
  const exclusiveMin = num(schema.exclusiveMinimum);
  const exclusiveMax = num(schema.exclusiveMaximum);
  const step = integer ? 1 : 0.5;
  const low = num(schema.minimum) ?? (exclusiveMin !== undefined ? exclusiveMin + step : undefined);
  const high = num(schema.maximum) ?? (exclusiveMax !== undefined ? exclusiveMax - step : undefined);
  let value = low !== undefined && high !== undefined ? (low + high) / 2 : (low ?? high ?? 1);
  if (integer) value = low !== undefined ? Math.max(Math.ceil(low), Math.floor(value)) : Math.floor(value);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Images

async function imageGeneration(req: Request): Promise<Response> {
  const json = await readJsonBody(req);
  if (!json.ok || !isRecord(json.value)) return openaiError(400, INVALID_JSON_BODY, "invalid_request_error");
  const body = json.value;

  // Upstream's default model is dall-e-2, which has been shut down.
  const model = typeof body.model === "string" ? body.model : "dall-e-2";
  if (isRetired(model)) return modelNotFound(model);
  if (!model.startsWith("gpt-image")) {
    return openaiError(
      400,
      `Invalid value: '${model}'. Supported values are: ${IMAGE_MODELS.map((m) => `'${m}'`).join(", ")}.`,
      "invalid_request_error",
      "model",
      "invalid_value",
    );
  }
  if (body.response_format !== undefined)
    return openaiError(400, "Unknown parameter: 'response_format'.", "invalid_request_error", "response_format", "unknown_parameter");
  if (typeof body.prompt !== "string" || body.prompt === "") {
    return openaiError(400, "Missing required parameter: 'prompt'.", "invalid_request_error", "prompt", "missing_required_parameter");
  }
  if (body.prompt.length > 32_000) {
    return openaiError(
      400,
      "Invalid 'prompt': string too long. Expected a string with maximum length 32000.",
      "invalid_request_error",
      "prompt",
      "string_above_max_length",
    );
  }
  const n = body.n ?? 1;
  if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 10) {
    return openaiError(400, "Invalid 'n': expected an integer between 1 and 10.", "invalid_request_error", "n", "invalid_value");
  }
  const size = body.size ?? "auto";
  if (typeof size !== "string" || !(IMAGE_SIZES.includes(size) || /^\d{2,4}x\d{2,4}$/.test(size))) {
    return openaiError(
      400,
      `Invalid value: '${String(size)}'. Supported values are: ${IMAGE_SIZES.map((s) => `'${s}'`).join(", ")}.`,
      "invalid_request_error",
      "size",
      "invalid_value",
    );
  }
  const quality = body.quality ?? "auto";
  if (typeof quality !== "string" || !IMAGE_QUALITIES.includes(quality)) {
    return openaiError(
      400,
      `Invalid value: '${String(quality)}'. Supported values are: ${IMAGE_QUALITIES.map((q) => `'${q}'`).join(", ")}.`,
      "invalid_request_error",
      "quality",
      "invalid_value",
    );
  }

  const inputTokens = Math.ceil(body.prompt.length / 4);
  const outputTokens = 1056 * (n as number);
  return openaiResponse({
    created: Math.floor(Date.now() / 1000),
    data: Array.from({ length: n as number }, () => ({ b64_json: TINY_PNG_BASE64 })),
    background: typeof body.background === "string" && body.background !== "auto" ? body.background : "opaque",
    output_format: "png",
    quality: quality === "auto" ? "medium" : quality,
    size: size === "auto" ? "1024x1024" : size,
    usage: {
      input_tokens: inputTokens,
      input_tokens_details: { text_tokens: inputTokens, image_tokens: 0 },
      output_tokens: outputTokens,
      total_tokens: inputTokens + outputTokens,
    },
  });
}
