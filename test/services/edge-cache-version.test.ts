/**
 * The edge cache of public reads keys on the running Worker version: a deploy that changes an
 * answer's shape must not serve entries an earlier version stored (they would keep the old shape
 * until their TTL), and two versions of a gradual deployment keep their own entries.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { cachedPublicRead } from "../../src/services/blog-cache";
import { cachedAreaRead } from "../../src/services/public-cache";

/** `env` as another deployed version of the Worker sees it. */
function deployed(id: string): typeof env {
  return { ...env, CF_VERSION_METADATA: { id, tag: "", timestamp: new Date().toISOString() } };
}

describe("edge cache across deploys", () => {
  it("builds again under a new version, and each version keeps serving its own entry", async () => {
    const key = `/api/v2/pages/?probe=${crypto.randomUUID()}`;
    const before = deployed(crypto.randomUUID());
    const after = deployed(crypto.randomUUID());
    const builds: string[] = [];
    const build = (shape: string) => async () => {
      builds.push(shape);
      return JSON.stringify({ shape });
    };

    expect((await cachedPublicRead(before, key, "application/json", build("old"))).hit).toBe(false);
    const oldHit = await cachedPublicRead(before, key, "application/json", build("old"));
    expect(oldHit).toMatchObject({ hit: true, body: JSON.stringify({ shape: "old" }) });

    const fresh = await cachedPublicRead(after, key, "application/json", build("new"));
    expect(fresh).toMatchObject({ hit: false, body: JSON.stringify({ shape: "new" }) });
    expect((await cachedPublicRead(after, key, "application/json", build("new"))).body).toBe(JSON.stringify({ shape: "new" }));
    expect((await cachedPublicRead(before, key, "application/json", build("old"))).body).toBe(JSON.stringify({ shape: "old" }));
    expect(builds).toEqual(["old", "new"]);
  });

  it("does the same for the species, disease and forum areas", async () => {
    const key = `/species/?probe=${crypto.randomUUID()}`;
    const before = deployed(crypto.randomUUID());
    const after = deployed(crypto.randomUUID());
    let builds = 0;
    const build = async () => JSON.stringify({ build: ++builds });
    await cachedAreaRead(before, "species", key, "application/json", build);
    expect((await cachedAreaRead(before, "species", key, "application/json", build)).hit).toBe(true);
    const next = await cachedAreaRead(after, "species", key, "application/json", build);
    expect(next).toMatchObject({ hit: false, body: JSON.stringify({ build: 2 }) });
  });

  it("runs with the version-metadata binding wrangler.toml declares", () => {
    expect(env.CF_VERSION_METADATA.id).toMatch(/^[0-9a-f-]{36}$/);
  });
});
