/**
 * The catalogue is public, and a species joins it when someone's identification (private unless
 * shared) or lookup first names it: its id must not say when that was. A UUID v7 carries its
 * creation time to the millisecond in its first 48 bits.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SPECIES } from "../../emulators/species";
import { uuidv7Timestamp } from "../../src/lib/ids";
import { completeIdentificationRequest } from "../../src/services/identification-requests";
import type { MergedSuggestion } from "../../src/services/merge";
import { makePng } from "../helpers/images";
import { call } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";

useEmulators();

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function catalogueId(scientificName: string): Promise<string> {
  const row = await env.DB.prepare("SELECT id FROM species WHERE lower(scientific_name) = lower(?)")
    .bind(scientificName)
    .first<{ id: string }>();
  expect(row).not.toBeNull();
  return row!.id;
}

describe("species ids say nothing about when a name first met the catalogue", () => {
  it("a name first met in a private identification joins with a random id", async () => {
    const u = await bearerUser();
    const name = `Untimia privata${crypto.randomUUID().slice(0, 8)}`;
    const suggestion: MergedSuggestion = {
      plant_name: name,
      scientific_name: name,
      probability: 0.9,
      common_names: ["private test plant"],
      description: "A test plant.",
      family: "Testaceae",
      genus: "Untimia",
      similar_images: [],
      sources: ["plant_id"],
      calibration_version: "plant_id:raw,plantnet:raw",
      rank: 1,
    };
    const id = await pendingRequest("identify", u.userId, await makePng(64, 48, { seed: `untimed-${Math.random()}` }));
    await env.DB.prepare("UPDATE identification_requests SET status = 'processing' WHERE id = ?").bind(id).run();
    await completeIdentificationRequest(env, id, u.userId, [suggestion], null, null, "en");

    const speciesId = await catalogueId(name);
    expect(speciesId).toMatch(V4);
    expect(uuidv7Timestamp(speciesId)).toBeNaN();
    // And that is the id the public reads show.
    const res = await call(`/api/v1/plant-identification/species/${speciesId}/`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe(speciesId);
  });

  it("a name only Trefle knows joins through a lookup with a random id", async () => {
    const known = SPECIES[4]!;
    const res = await call(`/api/v1/plant-identification/species/lookup/?scientific_name=${encodeURIComponent(known.scientificName)}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { id: string; source: string };
    expect(body.id).toBe(await catalogueId(known.scientificName));
    expect(body.source).toBe("trefle");
    expect(body.id).toMatch(V4);
  });
});
