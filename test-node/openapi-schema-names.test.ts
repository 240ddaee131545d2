import { getRefId } from "@asteasolutions/zod-to-openapi";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { createApp } from "../src/app";

type Def = Record<string, unknown> & { type?: string; shape?: Record<string, z.ZodType> };
type RouteDefinition = {
  type: string;
  route?: {
    method: string;
    path: string;
    request?: { body?: { content?: Record<string, { schema?: unknown }> }; query?: unknown; params?: unknown };
    responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
  };
};

/** Every zod schema reachable from `schema`, itself included. */
function* reachable(schema: unknown, seen = new Set<unknown>()): Generator<z.ZodType> {
  if (!schema || typeof schema !== "object" || seen.has(schema) || !("_zod" in schema)) return;
  seen.add(schema);
  yield schema as z.ZodType;
  const def = (schema as { _zod: { def: Def } })._zod.def;
  const children = [def.innerType, def.element, def.in, def.out, def.left, def.right, def.valueType, def.keyType, def.getter];
  if (def.type === "object") children.push(...Object.values(def.shape ?? {}));
  if (Array.isArray(def.options)) children.push(...def.options);
  if (Array.isArray(def.items)) children.push(...def.items);
  if (def.type === "lazy" && typeof def.getter === "function") children.push((def.getter as () => unknown)());
  for (const child of children) yield* reachable(child, seen);
}

/** The property names of an object schema (through optional/nullable wrappers), or null for any other schema. */
function keysOf(schema: z.ZodType): string | null {
  let def = (schema as unknown as { _zod: { def: Def } })._zod.def;
  while (def.innerType) def = (def.innerType as { _zod: { def: Def } })._zod.def;
  return def.type === "object"
    ? Object.keys(def.shape ?? {})
        .sort()
        .join(",")
    : null;
}

describe("OpenAPI component names", () => {
  it("name one schema each: two different schemas under one name would document one of them with the other's fields", () => {
    const app = createApp();
    const definitions = (app as unknown as { openAPIRegistry: { definitions: RouteDefinition[] } }).openAPIRegistry.definitions;
    const byName = new Map<string, Set<string>>();
    const seen = new Set<unknown>();
    for (const d of definitions) {
      if (d.type !== "route" || !d.route) continue;
      const roots: unknown[] = [d.route.request?.query, d.route.request?.params];
      for (const c of Object.values(d.route.request?.body?.content ?? {})) roots.push(c.schema);
      for (const r of Object.values(d.route.responses ?? {})) for (const c of Object.values(r.content ?? {})) roots.push(c.schema);
      for (const root of roots) {
        for (const schema of reachable(root, seen)) {
          const name = getRefId(schema);
          const keys = name ? keysOf(schema) : null;
          if (name && keys !== null) (byName.get(name) ?? byName.set(name, new Set()).get(name)!).add(keys);
        }
      }
    }
    expect(byName.size).toBeGreaterThan(50);
    const clashes = [...byName].filter(([, shapes]) => shapes.size > 1).map(([name, shapes]) => `${name}: ${[...shapes].join(" | ")}`);
    expect(clashes).toEqual([]);
  });

  it("documents the calendar's date-range feed and the calendar subscription URL each with its own fields", () => {
    const doc = createApp().getOpenAPI31Document({ openapi: "3.1.0", info: { title: "Plant Community API", version: "test" } });
    type Schema = { $ref?: string; properties?: object; allOf?: Schema[] };
    /** A schema's property names, through `$ref`s and `allOf` (an extended named schema). */
    const propertiesOf = (schema: Schema | undefined): string[] => {
      if (schema?.$ref) return propertiesOf(doc.components?.schemas?.[schema.$ref.split("/").pop()!] as Schema);
      return [...(schema?.allOf ?? []).flatMap(propertiesOf), ...Object.keys(schema?.properties ?? {})];
    };
    const schemaOf = (path: string, method: string, status: string) => {
      type Op = { responses: Record<string, { content: Record<string, { schema: Schema }> }> };
      const op = ((doc.paths?.[path] ?? {}) as Record<string, Op | undefined>)[method];
      return propertiesOf(op?.responses[status]?.content["application/json"]?.schema);
    };
    expect(schemaOf("/api/v1/calendar/feed", "get", "200")).toEqual(expect.arrayContaining(["events", "seasonal_tasks", "truncated"]));
    expect(schemaOf("/api/v1/reminders/calendar-feed", "post", "201")).toEqual(["url", "created_at"]);
    expect(schemaOf("/api/v2/blog-posts/{id}", "get", "200")).toEqual(expect.arrayContaining(["related_posts", "meta"]));
    expect(schemaOf("/api/v1/blog/posts/{id}", "get", "200")).toEqual(expect.arrayContaining(["rendered_blocks", "status", "revision"]));
  });
});
