import { describe, expect, it } from "vitest";

import { REFUSAL_MESSAGE, createOpenAIEmulator, type OpenAIEmulator } from "../../emulators/openai";
import { fromBase64, inflate, readPngChunks } from "./helpers";

const BASE = "https://openai.emulator.test/v1";

function post(emulator: OpenAIEmulator, path: string, body: unknown, key: string | null = "emulator-key") {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key !== null) headers.authorization = `Bearer ${key}`;
  return emulator.handle(new Request(`${BASE}${path}`, { method: "POST", headers, body: JSON.stringify(body) }));
}

/** The Structured Outputs subset of JSON Schema: enough to check the emulator's instances. */
function validate(schema: Record<string, any>, value: unknown, root = schema, path = "$"): string[] {
  if (schema.$ref) return validate(root.$defs[schema.$ref.replace("#/$defs/", "")], value, root, path);
  if (schema.anyOf) {
    return schema.anyOf.some((branch: Record<string, any>) => validate(branch, value, root, path).length === 0)
      ? []
      : [`${path}: matches no anyOf branch`];
  }
  if (schema.enum && !schema.enum.includes(value)) return [`${path}: ${JSON.stringify(value)} not in enum`];
  const types: string[] = Array.isArray(schema.type) ? schema.type : [schema.type];
  const actual = value === null ? "null" : Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value;
  if (!types.includes(actual) && !(actual === "integer" && types.includes("number")))
    return [`${path}: expected ${types.join("|")}, got ${actual}`];
  const errors: string[] = [];
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${path}: below minimum`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${path}: above maximum`);
  }
  if (typeof value === "string") {
    if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${path}: shorter than minLength`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(`${path}: longer than maxLength`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${path}: fewer than minItems`);
    value.forEach((item, i) => errors.push(...validate(schema.items, item, root, `${path}[${i}]`)));
  }
  if (actual === "object") {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in object)) errors.push(`${path}.${key}: missing`);
    for (const [key, child] of Object.entries(object)) {
      if (!schema.properties?.[key]) errors.push(`${path}.${key}: not allowed`);
      else errors.push(...validate(schema.properties[key], child, root, `${path}.${key}`));
    }
  }
  return errors;
}

const CARE_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["overview", "difficulty_level", "light", "water", "temperature_c", "toxic_to_pets", "tips", "notes", "humidity"],
  properties: {
    overview: { type: "string", minLength: 40 },
    difficulty_level: { type: "string", enum: ["very_easy", "easy", "moderate", "challenging", "difficult"] },
    light: {
      type: "object",
      additionalProperties: false,
      required: ["requirement", "hours"],
      properties: { requirement: { type: "string", maxLength: 60 }, hours: { type: "integer", minimum: 4, maximum: 12 } },
    },
    water: { $ref: "#/$defs/water" },
    temperature_c: { type: "number", minimum: 12.5, maximum: 30 },
    toxic_to_pets: { type: "boolean" },
    tips: { type: "array", minItems: 2, items: { type: "string" } },
    notes: { type: ["string", "null"] },
    humidity: { anyOf: [{ type: "null" }, { type: "string", enum: ["low", "medium", "high"] }] },
  },
  $defs: {
    water: {
      type: "object",
      additionalProperties: false,
      required: ["frequency_days"],
      properties: { frequency_days: { type: "integer", minimum: 3 } },
    },
  },
};

function careRequest(schema: Record<string, unknown> = CARE_SCHEMA, strict = true) {
  return {
    model: "gpt-5-mini",
    messages: [
      { role: "system", content: "You are a botanist. Answer only with JSON that matches the schema." },
      { role: "user", content: [{ type: "text", text: "Care instructions for Monstera deliciosa. Location: Berlin." }] },
    ],
    response_format: { type: "json_schema", json_schema: { name: "care_guide", strict, schema } },
    max_completion_tokens: 1500,
  };
}

describe("OpenAI emulator: chat completions", () => {
  it("answers a ChatCompletion whose content is a valid instance of the supplied schema", async () => {
    const response = await post(createOpenAIEmulator(), "/chat/completions", careRequest());
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toMatch(/^req_/);
    const body = (await response.json()) as Record<string, any>;
    expect(body).toMatchObject({
      id: expect.stringMatching(/^chatcmpl-/),
      object: "chat.completion",
      created: expect.any(Number),
      model: "gpt-5-mini",
      choices: [
        { index: 0, message: { role: "assistant", content: expect.any(String), refusal: null }, finish_reason: "stop", logprobs: null },
      ],
      usage: { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number), total_tokens: expect.any(Number) },
    });
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);

    const care = JSON.parse(body.choices[0].message.content);
    expect(validate(CARE_SCHEMA, care)).toEqual([]);
    // The validator itself catches violations, so the check above can fail.
    expect(validate(CARE_SCHEMA, { ...care, difficulty_level: "trivial", extra: 1 })).toHaveLength(2);
    expect(care.difficulty_level).toBe("very_easy");
    expect(care.overview).toContain("Monstera deliciosa");
    expect(care.notes).toEqual(expect.any(String));
  });

  it("marks each generated string with the language a user message asks for by code; English and none are unmarked", async () => {
    const asking = async (text: string) => {
      const request = careRequest();
      request.messages[1] = { role: "user", content: [{ type: "text", text }] };
      const body = (await (await post(createOpenAIEmulator(), "/chat/completions", request)).json()) as Record<string, any>;
      return JSON.parse(body.choices[0].message.content);
    };
    const french = await asking('Care guide for Monstera deliciosa. Write it in the language with code "fr".');
    expect(validate(CARE_SCHEMA, french)).toEqual([]);
    expect(french.overview).toMatch(/^\[fr\] .*Monstera deliciosa/);
    expect(french.tips.every((tip: string) => tip.startsWith("[fr] "))).toBe(true);
    expect(french.difficulty_level).toBe("very_easy");
    expect((await asking('Care guide for Monstera deliciosa. Answer in the language "pt-BR".')).overview).toMatch(/^\[pt-BR\] /);
    for (const text of [
      'Care guide for Monstera deliciosa. Write it in the language with code "en".',
      "Care guide for Monstera deliciosa.",
    ]) {
      expect((await asking(text)).overview).toMatch(/^Overview for Monstera deliciosa/);
    }
  });

  it("rejects strict schemas that break the Structured Outputs rules", async () => {
    const emulator = createOpenAIEmulator();
    const open = await post(
      emulator,
      "/chat/completions",
      careRequest({ type: "object", properties: { a: { type: "string" } }, required: ["a"] }),
    );
    expect(open.status).toBe(400);
    expect(((await open.json()) as any).error.message).toContain("'additionalProperties' is required to be supplied and to be false");

    const notRequired = await post(
      emulator,
      "/chat/completions",
      careRequest({
        type: "object",
        additionalProperties: false,
        properties: { a: { type: "string" }, b: { type: "string" } },
        required: ["a"],
      }),
    );
    expect(notRequired.status).toBe(400);
    expect(((await notRequired.json()) as any).error.message).toContain("Missing 'b'");

    const lax = await post(emulator, "/chat/completions", careRequest({ type: "object", properties: { a: { type: "string" } } }, false));
    expect(lax.status).toBe(200);
  });

  it("answers json_object with canned JSON, and 400 when the prompt never says JSON", async () => {
    const emulator = createOpenAIEmulator();
    const ok = await post(emulator, "/chat/completions", {
      model: "gpt-5-mini",
      messages: [{ role: "user", content: "Reply in JSON: how do I care for a snake plant?" }],
      response_format: { type: "json_object" },
    });
    const content = JSON.parse(((await ok.json()) as any).choices[0].message.content);
    expect(content.plant).toBe("Dracaena trifasciata");

    const noJsonWord = await post(emulator, "/chat/completions", {
      model: "gpt-5-mini",
      messages: [{ role: "user", content: "How do I care for a snake plant?" }],
      response_format: { type: "json_object" },
    });
    expect(noJsonWord.status).toBe(400);
  });

  it("answers plain text without response_format", async () => {
    const response = await post(createOpenAIEmulator(), "/chat/completions", {
      model: "gpt-5-mini",
      messages: [{ role: "user", content: "Tell me about Aloe vera" }],
    });
    const body = (await response.json()) as any;
    expect(body.choices[0].message.content).toContain("Aloe vera");
  });

  it("validates the request", async () => {
    const emulator = createOpenAIEmulator();
    const cases: [unknown, number, string | null][] = [
      [{ messages: [{ role: "user", content: "hi" }] }, 400, null],
      [{ model: "gpt-5-mini" }, 400, "missing_required_parameter"],
      [{ model: "gpt-5-mini", messages: [] }, 400, "empty_array"],
      [{ model: "gpt-5-mini", messages: [{ role: "wizard", content: "hi" }] }, 400, "invalid_value"],
      [{ model: "gpt-3.5-turbo", messages: [{ role: "user", content: "hi" }] }, 404, "model_not_found"],
      [
        { ...careRequest(), response_format: { type: "json_schema", json_schema: { name: "bad name!", schema: {} } } },
        400,
        "invalid_value",
      ],
      [{ ...careRequest(), response_format: { type: "xml" } }, 400, "invalid_value"],
    ];
    for (const [body, status, code] of cases) {
      const response = await post(emulator, "/chat/completions", body);
      expect(response.status, JSON.stringify(body)).toBe(status);
      expect(((await response.json()) as any).error).toMatchObject({ message: expect.any(String), type: expect.any(String), code });
    }
  });

  it("scripts a truncated answer (finish_reason length) and a refusal", async () => {
    const emulator = createOpenAIEmulator();
    emulator.setMode({ failure: "length", times: 1 });
    const truncated = (await (await post(emulator, "/chat/completions", careRequest())).json()) as any;
    expect(truncated.choices[0].finish_reason).toBe("length");
    expect(() => JSON.parse(truncated.choices[0].message.content)).toThrow(SyntaxError);

    emulator.setMode({ failure: "refusal", times: 1 });
    // Routes the failure does not apply to leave it pending for the next chat call.
    expect((await emulator.handle(new Request(`${BASE}/models`, { headers: { authorization: "Bearer emulator-key" } }))).status).toBe(200);
    const refused = (await (await post(emulator, "/chat/completions", careRequest())).json()) as any;
    expect(refused.choices[0].message).toMatchObject({ content: null, refusal: REFUSAL_MESSAGE });
    expect(refused.choices[0].finish_reason).toBe("stop");

    const normal = (await (await post(emulator, "/chat/completions", careRequest())).json()) as any;
    expect(normal.choices[0].message.refusal).toBeNull();
  });

  it("scripts insufficient_quota as a 429 without Retry-After", async () => {
    const emulator = createOpenAIEmulator();
    emulator.setMode({ failure: "insufficient_quota" });
    const response = await post(emulator, "/chat/completions", careRequest());
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toBeNull();
    expect(((await response.json()) as any).error).toMatchObject({ type: "insufficient_quota", code: "insufficient_quota" });
  });
});

describe("OpenAI emulator: auth, images, models", () => {
  it("answers 401 without a key and invalid_api_key with a wrong one", async () => {
    const emulator = createOpenAIEmulator();
    const missing = await post(emulator, "/chat/completions", careRequest(), null);
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as any).error).toMatchObject({ type: "invalid_request_error", code: null });

    const wrong = await post(emulator, "/chat/completions", careRequest(), "sk-wrong-key-123456");
    expect(wrong.status).toBe(401);
    const error = ((await wrong.json()) as any).error;
    expect(error).toEqual({
      message: expect.stringContaining("Incorrect API key provided"),
      type: "invalid_request_error",
      param: null,
      code: "invalid_api_key",
    });
    expect(error.message).not.toContain("sk-wrong-key-123456");
  });

  it("generates a tiny valid PNG as b64_json", async () => {
    const response = await post(createOpenAIEmulator(), "/images/generations", {
      model: "gpt-image-1",
      prompt: "A botanical photo of a fern",
      size: "1024x1024",
      n: 2,
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as any;
    expect(body).toMatchObject({
      created: expect.any(Number),
      data: [{ b64_json: expect.any(String) }, { b64_json: expect.any(String) }],
      output_format: "png",
      size: "1024x1024",
      quality: "medium",
      usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number), total_tokens: expect.any(Number) },
    });
    const chunks = readPngChunks(fromBase64(body.data[0].b64_json));
    expect(chunks?.map((c) => c.type)).toEqual(["IHDR", "IDAT", "IEND"]);
    expect(chunks?.every((c) => c.crcValid)).toBe(true);
    const [width, height] = [
      new DataView(chunks![0]!.data.buffer, chunks![0]!.data.byteOffset).getUint32(0),
      new DataView(chunks![0]!.data.buffer, chunks![0]!.data.byteOffset).getUint32(4),
    ];
    expect([width, height]).toEqual([1, 1]);
    expect((await inflate(chunks![1]!.data)).length).toBe(1 + width * 3);
  });

  it("rejects response_format for gpt-image models and answers dall-e with model_not_found", async () => {
    const emulator = createOpenAIEmulator();
    const withFormat = await post(emulator, "/images/generations", { model: "gpt-image-1", prompt: "fern", response_format: "url" });
    expect(withFormat.status).toBe(400);
    expect(((await withFormat.json()) as any).error).toMatchObject({ param: "response_format", code: "unknown_parameter" });

    for (const model of ["dall-e-2", "dall-e-3"]) {
      const retired = await post(emulator, "/images/generations", { model, prompt: "fern" });
      expect(retired.status).toBe(404);
      expect(((await retired.json()) as any).error.code).toBe("model_not_found");
    }
    expect((await post(emulator, "/images/generations", { model: "gpt-image-1" })).status).toBe(400);
  });

  it("lists models and answers 404 for unknown routes", async () => {
    const emulator = createOpenAIEmulator();
    const models = (await (
      await emulator.handle(new Request(`${BASE}/models`, { headers: { authorization: "Bearer emulator-key" } }))
    ).json()) as any;
    expect(models.object).toBe("list");
    expect(models.data[0]).toMatchObject({ id: expect.any(String), object: "model", owned_by: expect.any(String) });
    const unknown = await post(emulator, "/embeddings", {});
    expect(unknown.status).toBe(404);
  });
});
