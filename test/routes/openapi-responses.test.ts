/**
 * The OpenAPI document against the real answers, as a client generated from it would meet them:
 * every GET route of the document that takes no path parameter is called by a signed-in user who
 * has an identified request and a collection, then a few routes about one thing of theirs. Each
 * answer's status must be one the operation lists, and a JSON body must match the schema the
 * document gives for that status (checked with @cfworker/json-schema: workerd forbids the code
 * generation Ajv uses).
 */
import { Validator } from "@cfworker/json-schema";
import { beforeAll, describe, expect, it } from "vitest";
import { call } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { identifiedResult } from "../helpers/requests";
import { bearerUser } from "../helpers/users";

useEmulators();

interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: Record<string, unknown> }> }>;
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, unknown>;
}

let doc: Doc;
let user: Awaited<ReturnType<typeof bearerUser>>;
let ids: Record<string, string>;
/** How many JSON bodies were checked against a schema (so a document without schemas cannot pass). */
let checked = 0;

beforeAll(async () => {
  doc = (await (await call("/api/openapi.json")).json()) as Doc;
  user = await bearerUser();
  const { requestId, resultId } = await identifiedResult(user.userId);
  const collection = await call("/api/v1/plant-identification/collections/", { bearer: user.access, json: { name: "Windowsill" } });
  expect(collection.status, await collection.clone().text()).toBe(201);
  ids = { requestId, resultId, collectionId: ((await collection.json()) as { id: string }).id };
});

/** What is wrong with the answer to `method path` (called as `url`) by the document; [] when nothing. */
async function mismatches(method: string, path: string, res: Response): Promise<string[]> {
  const operation = doc.paths[path]?.[method];
  if (!operation) return [`${method} ${path} is not in the document`];
  const documented = operation.responses[String(res.status)];
  const body = await res.text();
  if (!documented)
    return [
      `${method} ${path} answered ${res.status}, which it does not list (${Object.keys(operation.responses).join(", ")}): ${body.slice(0, 200)}`,
    ];
  const schema = documented.content?.["application/json"]?.schema;
  if (!schema || !(res.headers.get("Content-Type") ?? "").includes("json")) return [];
  checked++;
  const result = new Validator({ ...schema, components: doc.components } as never, "2020-12", false).validate(JSON.parse(body));
  return result.errors
    .filter((e) => e.keyword !== "properties" && e.keyword !== "$ref" && e.keyword !== "items" && e.keyword !== "anyOf")
    .map((e) => `${method} ${path} ${res.status} at ${e.instanceLocation}: ${e.error}`);
}

describe("the OpenAPI document against the real answers", () => {
  it("describes the answers of every GET route without a path parameter", async () => {
    const paths = Object.keys(doc.paths).filter((p) => doc.paths[p]!.get && !p.includes("{"));
    expect(paths.length).toBeGreaterThan(20);
    const problems: string[] = [];
    for (const path of paths) {
      const res = await call(path, { bearer: user.access });
      problems.push(...(await mismatches("get", path, res)));
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });

  it("describes the answers about one request (its results, sharing it, its community view) and a collection", async () => {
    const routes: [string, string][] = [
      ["/api/v1/plant-identification/requests/{id}", `/api/v1/plant-identification/requests/${ids.requestId}/`],
      ["/api/v1/plant-identification/requests/{id}/results", `/api/v1/plant-identification/requests/${ids.requestId}/results/`],
      ["/api/v1/plant-identification/collections/{id}", `/api/v1/plant-identification/collections/${ids.collectionId}/`],
    ];
    const problems: string[] = [];
    const share = await call(`/api/v1/plant-identification/requests/${ids.requestId}/share/`, { bearer: user.access, method: "POST" });
    problems.push(...(await mismatches("post", "/api/v1/plant-identification/requests/{id}/share", share)));
    routes.push(["/api/v1/plant-identification/community/{id}", `/api/v1/plant-identification/community/${ids.requestId}/`]);
    for (const [path, url] of routes) {
      if (!doc.paths[path]) {
        problems.push(
          `${path} is not in the document (paths like it: ${Object.keys(doc.paths)
            .filter((p) => p.startsWith(path.split("{")[0]!))
            .join(", ")})`,
        );
        continue;
      }
      problems.push(...(await mismatches("get", path, await call(url, { bearer: user.access }))));
    }
    expect(problems).toEqual([]);
  });
});
