/**
 * Security review (helper-63) of the edge cache's purges: every write path that changes what a
 * cached public read shows must move its generation, or readers keep the old answer for the
 * entry's whole TTL (an hour for the blog, 5 minutes for the catalogue), whatever the docs promise.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SPECIES } from "../../emulators/species";
import { enrichSpecies } from "../../src/services/enrichment";
import { completeIdentificationRequest } from "../../src/services/identification-requests";
import { createLogger } from "../../src/lib/logger";
import type { MergedSuggestion } from "../../src/services/merge";
import { blogPost } from "../helpers/blog";
import { call, jsonWithStatus as json } from "../helpers/http";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";
import { API, uniq, withRole } from "../routes/blog-editorial-setup";

useEmulators(); // registration sends its verification email

function suggestion(scientificName: string): MergedSuggestion {
  return {
    plant_name: scientificName,
    scientific_name: scientificName,
    probability: 0.9,
    common_names: [],
    description: "",
    family: "Purgeaceae",
    genus: scientificName.split(" ")[0]!,
    similar_images: [],
    sources: ["plant_id"],
    calibration_version: "plant_id:raw,plantnet:raw",
    rank: 1,
  };
}

interface Page<T> {
  meta: { total_count: number };
  items: T[];
}

describe("purges of the public reads", () => {
  it("shows a new blog category or series in the cached /api/v2/ lists at once", async () => {
    const editor = await withRole("editor");
    for (const [list, create, field] of [
      ["/api/v2/categories/?limit=100", `${API}/categories/`, "name"],
      ["/api/v2/series/?limit=100", `${API}/series/`, "title"],
    ] as const) {
      const before = await json<Page<{ slug: string }>>(await call(list), 200);
      expect((await call(list)).headers.get("X-Cache")).toBe("HIT");

      const name = `New ${uniq()}`;
      const made = await json<{ slug: string }>(await call(create, { bearer: editor.access, json: { [field]: name } }), 201);
      // The insert and its purge are one batch: a slug in use is still the 409 it was.
      expect((await call(create, { bearer: editor.access, json: { [field]: name } })).status).toBe(409);
      const after = await json<Page<{ slug: string }>>(await call(list), 200);
      expect(after.meta.total_count, list).toBe(before.meta.total_count + 1);
      expect(after.items.map((i) => i.slug)).toContain(made.slug);
    }
  });

  it("shows a species an identification added to the catalogue in the cached catalogue and search at once", async () => {
    const owner = await withRole("user");
    const name = `Purgea ${Array.from(crypto.getRandomValues(new Uint8Array(10)), (b) => String.fromCharCode(97 + (b % 26))).join("")}`;
    const list = "/api/v1/plant-identification/species/?family=Purgeaceae";
    const search = `/api/v1/plant-identification/search/plants/?q=${encodeURIComponent(name)}`;
    expect((await json<{ count: number }>(await call(list), 200)).count).toBe(0);
    expect((await json<{ total: number }>(await call(search), 200)).total).toBe(0);
    expect((await call(list)).headers.get("X-Cache")).toBe("HIT");

    const requestId = crypto.randomUUID();
    await env.DB.prepare(
      "INSERT INTO identification_requests (id, user_id, status, image_hashes, organs) VALUES (?, ?, 'processing', '[]', '[\"auto\"]')",
    )
      .bind(requestId, owner.userId)
      .run();
    await completeIdentificationRequest(env, requestId, owner.userId, [suggestion(name)]);
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM species WHERE scientific_name = ?").bind(name).first<{ n: number }>();
    expect(stored!.n).toBe(1);

    const listed = await json<{ count: number; results: { scientific_name: string }[] }>(await call(list), 200);
    expect(listed.results.map((r) => r.scientific_name)).toEqual([name]);
    expect((await json<{ total: number }>(await call(search), 200)).total).toBe(1);
  });

  it("shows the care data an identification's Trefle enrichment filled in, in the cached catalogue at once", async () => {
    const name = SPECIES[0]!.scientificName;
    await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO species (id, scientific_name) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM species WHERE lower(scientific_name) = lower(?))",
      ).bind(crypto.randomUUID(), name, name),
      env.DB.prepare(
        "UPDATE species SET light_requirements = NULL, water_requirements = NULL WHERE lower(scientific_name) = lower(?)",
      ).bind(name),
    ]);
    const search = `/api/v1/plant-identification/species/?search=${encodeURIComponent(name)}`;
    const light = async () =>
      (await json<{ results: { scientific_name: string; light_requirements: string | null }[] }>(await call(search), 200)).results.find(
        (r) => r.scientific_name.toLowerCase() === name.toLowerCase(),
      )!.light_requirements;
    expect(await light()).toBeNull();
    expect((await call(search)).headers.get("X-Cache")).toBe("HIT");

    const said: string[] = [];
    const filled = await enrichSpecies(
      env,
      crypto.randomUUID(),
      [suggestion(name)],
      async (m) => {
        said.push(m.type === "progress" ? m.stage : m.type);
      },
      createLogger({}),
    );
    expect(said).toContain("enrich_done");
    expect(filled).toBe(true);
    expect(await light()).not.toBeNull();
  });

  it("drops a blog author's removed real name from the cached public reads at once", async () => {
    const author = await withRole("author");
    const patch = (names: { first_name: string; last_name: string }) =>
      call("/api/v1/auth/user/", { method: "PATCH", bearer: author.access, json: names });
    expect((await patch({ first_name: "Rosa", last_name: "Realname" })).status).toBe(200);
    const post = await blogPost({ authorId: author.userId });
    const detail = `/api/v2/blog-posts/${post.id}/`;
    const byline = async () => (await json<{ author: { display_name: string } }>(await call(detail), 200)).author.display_name;
    expect(await byline()).toBe("Rosa Realname");
    expect((await call(detail)).headers.get("X-Cache")).toBe("HIT");

    expect((await patch({ first_name: "", last_name: "" })).status).toBe(200);
    expect(await byline()).toBe(author.username);
  });

  it("shows a forum poster's new avatar in the cached forum pages at once (the old one's photo is released)", async () => {
    const poster = await bearerUser();
    await env.DB.prepare("UPDATE users SET trust_level = 'basic' WHERE id = ?").bind(poster.userId).run();
    const setAvatar = async (seed: string) => {
      const form = new FormData();
      form.append("avatar", new File([await makePng(64, 64, { seed: `${seed}-${poster.userId}` })], "me.png", { type: "image/png" }));
      return (
        await json<{ avatar_url: string }>(await call("/api/v1/auth/user/", { method: "PATCH", bearer: poster.access, body: form }), 200)
      ).avatar_url;
    };
    const first = await setAvatar("first");
    const topic = await json<{ id: string }>(
      await call("/api/v1/forum/categories/houseplants/topics/", {
        bearer: poster.access,
        json: { title: `Avatar ${uniq()}`, body: "Hi" },
      }),
      201,
    );
    const list = "/api/v1/forum/categories/houseplants/topics/?page_size=100";
    const posts = `/api/v1/forum/topics/${topic.id}/posts/`;
    const avatars = async () => [
      (await json<{ results: { id: string; author: { avatar_url: string | null } }[] }>(await call(list), 200)).results.find(
        (t) => t.id === topic.id,
      )!.author.avatar_url,
      ...(await json<{ results: { author: { avatar_url: string | null } }[] }>(await call(posts), 200)).results.map(
        (p) => p.author.avatar_url,
      ),
    ];
    expect(await avatars()).toEqual([first, first]);
    expect((await call(list)).headers.get("X-Cache")).toBe("HIT");
    expect((await call(posts)).headers.get("X-Cache")).toBe("HIT");

    const second = await setAvatar("second");
    expect(second).not.toBe(first);
    expect(await avatars()).toEqual([second, second]);
    expect((await call(first)).status).toBe(404); // released: the pages kept from before would show a broken image
  });
});
