import specs from "@asyncapi/specs";
import { Ajv, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { CLOSE_CODES, PROGRESS_STAGES, SERVER_MESSAGES } from "../durable-objects/user-hub-protocol";
import { asyncApiDocument, MESSAGE_EXAMPLES } from "../src/lib/asyncapi";

const DRAFT_07 = "http://json-schema.org/draft-07/schema";

/**
 * The official AsyncAPI 3.0.0 JSON Schema (draft-07), from @asyncapi/specs. The bundle carries its
 * own copy of the draft-07 meta-schema, which Ajv already has under the same id: drop the copy.
 */
function asyncApi300Validator(): ValidateFunction {
  const schema = structuredClone(specs.schemas["3.0.0"]) as { definitions: Record<string, unknown> };
  expect(schema.definitions[DRAFT_07]).toBeDefined();
  delete schema.definitions[DRAFT_07];
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: true });
  addFormats(ajv);
  return ajv.compile(schema);
}

function payloadValidator(schema: object): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true });
  addFormats(ajv);
  return ajv.compile(schema);
}

type Json = Record<string, unknown>;

/** Every local `$ref` in the document, with the path where it appears. */
function localRefs(node: unknown, path = "#"): { at: string; ref: string }[] {
  if (Array.isArray(node)) return node.flatMap((v, i) => localRefs(v, `${path}/${i}`));
  if (node === null || typeof node !== "object") return [];
  return Object.entries(node as Json).flatMap(([k, v]) =>
    k === "$ref" && typeof v === "string" ? [{ at: path, ref: v }] : localRefs(v, `${path}/${k}`),
  );
}

function resolve(doc: unknown, ref: string): unknown {
  if (!ref.startsWith("#/")) return undefined;
  return ref
    .slice(2)
    .split("/")
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce<unknown>((node, key) => (node && typeof node === "object" ? (node as Json)[key] : undefined), doc);
}

const doc = asyncApiDocument({ publicApiUrl: "https://plants.example", version: "test" }) as unknown as Json & {
  channels: Record<string, Json & { messages: Record<string, unknown>; "x-close-codes": { code: number }[] }>;
  components: { messages: Record<string, { payload: object; contentType: string; examples?: { payload: unknown }[] }> };
  servers: Record<string, { host: string; protocol: string }>;
};

describe("AsyncAPI document", () => {
  const validate = asyncApi300Validator();

  it("is valid against the official AsyncAPI 3.0.0 JSON Schema", () => {
    const valid = validate(doc);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    expect(doc.asyncapi).toBe("3.0.0");
  });

  it("the schema check is real: broken documents are refused", () => {
    const noVersion = structuredClone(doc) as Json;
    delete noVersion.asyncapi;
    expect(validate(noVersion)).toBe(false);
    const badAction = structuredClone(doc) as unknown as Json & { operations: Record<string, Json> };
    badAction.operations.sendUserEvents!.action = "publish"; // AsyncAPI 2's verb, gone in 3.0
    expect(validate(badAction)).toBe(false);
    const badServer = structuredClone(doc);
    delete (badServer.servers.api as Partial<{ host: string }>).host;
    expect(validate(badServer)).toBe(false);
  });

  it("every $ref resolves inside the document", () => {
    const refs = localRefs(doc);
    expect(refs.length).toBeGreaterThan(20);
    expect(refs.filter(({ ref }) => resolve(doc, ref) === undefined)).toEqual([]);
  });

  it("has both channels, the server from the public URL and the three ways to authenticate", () => {
    expect(Object.values(doc.channels).map((c) => c.address)).toEqual(["/ws/", "/ws/plant-identification/requests/{request_id}/"]);
    expect(doc.servers.api).toMatchObject({ host: "plants.example", protocol: "wss" });
    const plain = asyncApiDocument({ publicApiUrl: "http://127.0.0.1:8787", version: "dev" });
    expect(plain.servers.api).toMatchObject({ host: "127.0.0.1:8787", protocol: "ws" });
    const schemes = (doc.components as unknown as { securitySchemes: Record<string, Json> }).securitySchemes;
    expect(schemes).toEqual({
      bearer: expect.objectContaining({ type: "http", scheme: "bearer" }),
      cookie: expect.objectContaining({ type: "httpApiKey", in: "cookie", name: "__Host-access_token" }),
      ticket: expect.objectContaining({ type: "httpApiKey", in: "query", name: "ticket" }),
    });
  });

  it("lists every close code the protocol uses, and only the request channel says 4404 (no 4403: not told apart)", () => {
    const all = new Set(Object.values(doc.channels).flatMap((c) => c["x-close-codes"].map((x) => x.code)));
    expect([...all].sort()).toEqual(Object.values(CLOSE_CODES).sort());
    expect(all).not.toContain(4403);
    expect(doc.channels.userEvents!["x-close-codes"].map((x) => x.code)).not.toContain(CLOSE_CODES.REQUEST_GONE);
    expect(doc.channels.requestEvents!["x-close-codes"].map((x) => x.code)).toContain(CLOSE_CODES.REQUEST_GONE);
  });

  it("has a JSON Schema for every message type the server sends, and every progress stage", () => {
    const messages = doc.components.messages;
    for (const type of Object.keys(SERVER_MESSAGES)) expect(messages[type]?.payload, type).toBeDefined();
    expect(Object.keys(doc.channels.userEvents!.messages)).toContain("notification");
    // Notifications, their updates and withdrawals reach `/ws/` only (UserHub.notify, .withdraw).
    for (const name of ["notification", "notification_updated", "notification_withdrawn"]) {
      expect(Object.keys(doc.channels.requestEvents!.messages), name).not.toContain(name);
    }
    const progress = messages.progress!.payload as { oneOf: { properties: { stage: { const: string } } }[] };
    expect(progress.oneOf.map((v) => v.properties.stage.const).sort()).toEqual(Object.keys(PROGRESS_STAGES).sort());
  });

  it("its examples match their payload schemas, and the payload schemas refuse what the protocol does not send", () => {
    const messages = doc.components.messages;
    for (const [name, message] of Object.entries(messages)) {
      const check = payloadValidator(message.payload);
      for (const example of message.examples ?? []) {
        expect(check(example.payload), `${name}: ${JSON.stringify(check.errors)}`).toBe(true);
      }
    }
    const progress = payloadValidator(messages.progress!.payload);
    const example = MESSAGE_EXAMPLES.progress as Json;
    expect(progress({ ...example, stage: "teleported" })).toBe(false);
    expect(progress({ ...example, stage: "merge_done" })).toBe(false); // merge_done's data is {suggestions}
    expect(progress({ ...example, stage: "merge_done", data: { suggestions: 3 } })).toBe(true);
    expect(progress({ ...example, extra: 1 })).toBe(false);
    const completed = payloadValidator(messages.completed!.payload);
    expect(completed({ ...(MESSAGE_EXAMPLES.completed as Json), status: "processing" })).toBe(false);
    const pongText = payloadValidator(messages.pongText!.payload);
    expect(pongText("pong")).toBe(true);
    expect(pongText("ping")).toBe(false);
  });
});
