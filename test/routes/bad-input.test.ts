import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { call } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

useEmulators();

/** Every documented operation, with path parameters filled in with plausible or junk values. */
function operations(): { method: string; path: string }[] {
  const doc = createApp().getOpenAPI31Document({ openapi: "3.1.0", info: { title: "t", version: "t" } });
  const fill: Record<string, string> = { provider: "google", kind: "images", file: "nope.png" };
  return Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    Object.keys(item as object).map((method) => ({
      method: method.toUpperCase(),
      path: path.replace(/\{(\w+)\}/g, (_, name: string) => fill[name] ?? crypto.randomUUID()),
    })),
  );
}

const JUNK: { name: string; body?: string; type?: string; query?: string }[] = [
  { name: "malformed JSON", body: '{"a": ', type: "application/json" },
  { name: "JSON array", body: "[1, 2, 3]", type: "application/json" },
  { name: "JSON null", body: "null", type: "application/json" },
  {
    name: "wrong types",
    body: JSON.stringify({ username: 5, password: [], email: {}, vote_type: 7, refresh: 1, page: "x" }),
    type: "application/json",
  },
  { name: "plain text", body: "hello", type: "text/plain" },
  {
    name: "broken multipart",
    body: '--xyz\r\nContent-Disposition: form-data; name="image"\r\n\r\nnot closed',
    type: "multipart/form-data; boundary=xyz",
  },
  { name: "junk query", query: "?page=-1&page_size=100000&search=%00%ff&language=zzz&regenerate=maybe" },
];

describe("bad input never gets a 500", () => {
  it("every route, every kind of junk, signed in and not", async () => {
    const u = await bearerUser();
    const failures: string[] = [];
    for (const op of operations()) {
      for (const junk of JUNK) {
        if (op.method === "GET" && junk.body !== undefined) continue;
        for (const bearer of [u.access, undefined]) {
          const res = await call(op.path + (junk.query ?? ""), {
            method: op.method,
            body: junk.body,
            headers: junk.type ? { "Content-Type": junk.type } : {},
            bearer,
          });
          if (res.status >= 500 && res.status !== 503)
            failures.push(
              `${op.method} ${op.path} (${junk.name}, ${bearer ? "signed in" : "anonymous"}): ${res.status} ${await res.text()}`,
            );
          else await res.body?.cancel();
        }
      }
    }
    expect(failures).toEqual([]);
  }, 90_000); // hundreds of sequential requests: a few seconds here, far more on a loaded CI box
});
