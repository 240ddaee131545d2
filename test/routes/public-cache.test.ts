/**
 * Edge caching of public reads (issue 13 item 3): the species catalogue, its search and the forum
 * as anonymous readers see it are served from the Cache API with strong ETags, purged by the
 * writes that change them, and never hold what a signed-in user sees. (The disease database's
 * purge on confirmation is proven by diseases.test.ts, which reads it before and after.)
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { areaGeneration, purgePublicReads } from "../../src/services/public-cache";
import { call } from "../helpers/http";
import { bearerUser } from "../helpers/users";

const SPECIES = "/api/v1/plant-identification/species/";
const TOPICS = "/api/v1/forum/categories/houseplants/topics/";

async function anySpeciesId(): Promise<string> {
  const id = crypto.randomUUID();
  await env.DB.prepare(
    "INSERT INTO species (id, scientific_name, family, genus, source, is_verified) VALUES (?, ?, 'Cacheaceae', 'Cachea', 'seed', 1)",
  )
    .bind(id, `Cachea edgeii ${id.slice(0, 8)}`)
    .run();
  return id;
}

describe("edge cache of public reads", () => {
  it("serves a species from the edge after the first read, with a strong ETag and 304 on revalidation", async () => {
    const id = await anySpeciesId();
    await purgePublicReads(env, "species");
    const first = await call(`${SPECIES}${id}/`);
    expect(first.status).toBe(200);
    expect(first.headers.get("X-Cache")).toBe("MISS");
    const etag = first.headers.get("ETag")!;
    expect(etag).toMatch(/^"[0-9a-f]{40}"$/);
    expect(first.headers.get("Cache-Control")).toBe("public, max-age=60");
    const body = await first.json();

    const second = await call(`${SPECIES}${id}/`);
    expect(second.headers.get("X-Cache")).toBe("HIT");
    expect(second.headers.get("ETag")).toBe(etag);
    expect(await second.json()).toEqual(body);

    const revalidated = await call(`${SPECIES}${id}/`, { headers: { "If-None-Match": etag } });
    expect(revalidated.status).toBe(304);
    expect(await revalidated.text()).toBe("");

    // A client's no-cache gets a fresh build (stored for the next reader).
    const fresh = await call(`${SPECIES}${id}/`, { headers: { "Cache-Control": "no-cache" } });
    expect(fresh.headers.get("X-Cache")).toBe("MISS");
    expect((await call(`${SPECIES}${id}/`)).headers.get("X-Cache")).toBe("HIT");
  });

  it("lets a browser on another allowed origin read the ETag and send it back, and ask for a fresh build (CORS)", async () => {
    const id = await anySpeciesId();
    const origin = "http://localhost:5173";
    const preflight = await call(`${SPECIES}${id}/`, {
      method: "OPTIONS",
      headers: { Origin: origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "if-none-match,cache-control" },
    });
    const allowed = (preflight.headers.get("Access-Control-Allow-Headers") ?? "").toLowerCase().split(/\s*,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(["if-none-match", "cache-control"]));
    const read = await call(`${SPECIES}${id}/`, { headers: { Origin: origin } });
    const exposed = (read.headers.get("Access-Control-Expose-Headers") ?? "").toLowerCase().split(/\s*,\s*/);
    expect(exposed).toEqual(expect.arrayContaining(["etag", "x-cache"]));
  });

  it("answers from the database when the edge cache fails, and still caches once it recovers", async () => {
    const id = await anySpeciesId();
    await purgePublicReads(env, "species");
    const broken = vi.spyOn(caches.default, "match").mockRejectedValue(new Error("cache unavailable"));
    try {
      const res = await call(`${SPECIES}${id}/`);
      expect(res.status).toBe(200);
      expect(res.headers.get("X-Cache")).toBe("MISS");
      expect(((await res.json()) as { id: string }).id).toBe(id);
    } finally {
      broken.mockRestore();
    }
    expect((await call(`${SPECIES}${id}/`)).headers.get("X-Cache")).toBe("HIT");
  });

  it("keys species lists and searches by their normalised query, and a catalogue change purges them all", async () => {
    await purgePublicReads(env, "species");
    const list = `${SPECIES}?page_size=5&page=1`;
    const reordered = `${SPECIES}?page=1&page_size=5`;
    const search = "/api/v1/plant-identification/search/plants/?q=fern&limit=5";
    expect((await call(list)).headers.get("X-Cache")).toBe("MISS");
    expect((await call(reordered)).headers.get("X-Cache")).toBe("HIT");
    expect((await call(search)).headers.get("X-Cache")).toBe("MISS");
    expect((await call(search)).headers.get("X-Cache")).toBe("HIT");

    const before = await areaGeneration(env, "species");
    await purgePublicReads(env, "species");
    expect(await areaGeneration(env, "species")).toBe(before + 1);
    expect((await call(list)).headers.get("X-Cache")).toBe("MISS");
    expect((await call(search)).headers.get("X-Cache")).toBe("MISS");
    // Unknown ids are 404s, and 404s are not cached.
    const missing = await call(`${SPECIES}${crypto.randomUUID()}/`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("X-Cache")).toBeNull();
  });

  it("builds a cached answer's links from the validated query only, so nobody can poison them", async () => {
    await anySpeciesId();
    await anySpeciesId();
    await purgePublicReads(env, "species");
    const poisoned = await call(`${SPECIES}?page_size=1&page=1&utm_source=%22%3E%3Cscript%3E&next=https://evil.example`);
    expect(poisoned.headers.get("X-Cache")).toBe("MISS");
    const first = (await poisoned.json()) as { next: string | null };
    const clean = await call(`${SPECIES}?page=1&page_size=1`);
    expect(clean.headers.get("X-Cache")).toBe("HIT");
    const second = (await clean.json()) as { next: string | null };
    for (const next of [first.next, second.next]) {
      expect(next).not.toBeNull();
      const url = new URL(next!);
      expect([...url.searchParams.keys()].sort()).toEqual(["page", "page_size"]);
      expect(url.searchParams.get("page")).toBe("2");
    }
  });

  it("caches the forum for anonymous readers only, and a new topic purges it", async () => {
    const author = await bearerUser();
    await purgePublicReads(env, "forum");
    const first = await call(`${TOPICS}?page_size=50`);
    expect(first.status).toBe(200);
    expect(first.headers.get("X-Cache")).toBe("MISS");
    expect(first.headers.get("Vary")).toContain("Authorization");
    expect(first.headers.get("Vary")).toContain("Cookie");
    expect((await call(`${TOPICS}?page_size=50`)).headers.get("X-Cache")).toBe("HIT");

    // A signed-in reader is never served from (or stored in) the edge cache.
    const signedIn = await call(`${TOPICS}?page_size=50`, { bearer: author.access });
    expect(signedIn.headers.get("X-Cache")).toBeNull();
    expect(signedIn.headers.get("Cache-Control")).toBe("private, no-store");

    const title = `Fresh topic ${crypto.randomUUID()}`;
    const created = await call(TOPICS, { bearer: author.access, json: { title, body: "Does this show up for everyone at once?" } });
    expect(created.status).toBe(201);
    const after = await call(`${TOPICS}?page_size=50`);
    expect(after.headers.get("X-Cache")).toBe("MISS");
    const { results } = (await after.json()) as { results: { title: string }[] };
    expect(results.map((t) => t.title)).toContain(title);
  });

  it("never puts a signed-in reader's own state into what anonymous readers get", async () => {
    const author = await bearerUser();
    const topic = (await (
      await call(TOPICS, { bearer: author.access, json: { title: `Mine ${crypto.randomUUID()}`, body: "A post to react to." } })
    ).json()) as { id: string; first_post: { id: string } };
    const reacted = await call(`/api/v1/forum/posts/${topic.first_post.id}/reactions/`, { bearer: author.access, json: { type: "like" } });
    expect(reacted.status).toBe(200);

    // The author reads first (their own reaction shown), then an anonymous reader.
    const own = (await (await call(`/api/v1/forum/topics/${topic.id}/posts/`, { bearer: author.access })).json()) as {
      results: { my_reactions: string[] }[];
    };
    expect(own.results[0]!.my_reactions).toEqual(["like"]);
    for (let i = 0; i < 2; i++) {
      const anon = await call(`/api/v1/forum/topics/${topic.id}/posts/`);
      expect(anon.headers.get("X-Cache")).toBe(i === 0 ? "MISS" : "HIT");
      const body = (await anon.json()) as { results: { my_reactions: string[]; reactions: Record<string, number> }[] };
      expect(body.results[0]!.my_reactions).toEqual([]);
      expect(body.results[0]!.reactions.like).toBe(1);
    }
  });
});
