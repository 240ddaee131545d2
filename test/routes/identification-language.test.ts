/**
 * Identification in the user's language (docs/api.md § Identification in the user's language):
 * `language` on identify/, requests/ and disease-requests/, each language its own provider-cache
 * entry, an async request's job (and retry) asking in its language, and the shared catalogue
 * staying English.
 */
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SPECIES } from "../../emulators/species";
import worker from "../../src/index";
import { sha256Hex } from "../../src/lib/hash";
import { completeIdentificationRequest } from "../../src/services/identification-requests";
import type { MergedSuggestion } from "../../src/services/merge";
import { makePng } from "../helpers/images";
import { call, expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";
import { eventually } from "../helpers/wait";

const emulators = useEmulators();
const IDENTIFY = "/api/v1/plant-identification/identify/";
let seed = 0;
const photo = () => makePng(320, 240, { seed: `lang-${++seed}-${Math.random()}` });

interface Suggestion {
  scientific_name: string;
  plant_name: string;
  common_names: string[];
}
interface IdentifyBody {
  success: boolean;
  code?: string;
  error?: string;
  suggestions?: Suggestion[];
  cached?: { plant_id: boolean; plantnet: boolean };
  providers?: Record<string, { status: string }>;
  request_id?: string;
}

async function identify(bytes: Uint8Array, language: string | null, bearer?: string) {
  const form = new FormData();
  form.append("image", new File([bytes], "leaf.png", { type: "image/png" }));
  if (language !== null) form.append("language", language);
  const res = await call(IDENTIFY, { method: "POST", body: form, bearer });
  return { res, body: (await res.json()) as IdentifyBody };
}

function names(scientificName: string) {
  const species = SPECIES.find((s) => s.scientificName.toLowerCase() === scientificName.toLowerCase());
  if (!species) throw new Error(`not an emulator species: ${scientificName}`);
  return species.commonNames;
}

/** What the catalogue holds for a name: its common names and description. */
async function catalogueEntry(scientificName: string) {
  const row = await env.DB.prepare("SELECT common_names, description FROM species WHERE lower(scientific_name) = lower(?)")
    .bind(scientificName)
    .first<{ common_names: string; description: string }>();
  return row ? { commonNames: JSON.parse(row.common_names) as string[], description: row.description } : null;
}

/** A name only the French list has: the catalogue must never hold one. */
const frenchOnly = (scientificName: string) => names(scientificName).fr.filter((n) => !names(scientificName).en.includes(n));

async function countRows(table: string, userId: string) {
  return (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE user_id = ?`).bind(userId).first<{ n: number }>())!.n;
}

describe("identify/ with a language", () => {
  it("answers with the engines' French names, asks both in fr, keeps fr and en as their own cache entries, and records the language", async () => {
    const u = await bearerUser();
    const bytes = await photo();

    const fr = await identify(bytes, "fr", u.access);
    expect(fr.res.status).toBe(200);
    expect(fr.body.success).toBe(true);
    expect(emulators.plantId.requests.at(-1)!.search).toContain("language=fr");
    expect(new URLSearchParams(emulators.plantnet.requests.at(-1)!.search).get("lang")).toBe("fr");
    const top = fr.body.suggestions![0]!;
    expect(top.plant_name).toBe(names(top.scientific_name).fr[0]);
    expect(top.common_names).toEqual(expect.arrayContaining(names(top.scientific_name).fr));
    expect(fr.body.cached).toEqual({ plant_id: false, plantnet: false });

    // The same photo in English is its own entry of each provider's cache: asked again, in en.
    const callsBefore = [emulators.plantId.calls, emulators.plantnet.calls];
    const en = await identify(bytes, null, u.access);
    expect(en.body.cached).toEqual({ plant_id: false, plantnet: false });
    expect([emulators.plantId.calls, emulators.plantnet.calls]).toEqual([callsBefore[0]! + 1, callsBefore[1]! + 1]);
    expect(emulators.plantId.requests.at(-1)!.search).toContain("language=en");
    const enTop = en.body.suggestions!.find((s) => s.scientific_name === top.scientific_name)!;
    expect(enTop.plant_name).toBe(names(top.scientific_name).en[0]);

    // And French again is French's cache entry.
    const again = await identify(bytes, "fr", u.access);
    expect(again.body.cached).toEqual({ plant_id: true, plantnet: true });
    expect(again.body.suggestions![0]!.plant_name).toBe(top.plant_name);

    const sha = await sha256Hex(bytes);
    const keys = async (prefix: string) => (await env.CACHE.list({ prefix })).keys.map((k) => k.name);
    const plantIdKeys = await keys(`plant_id:v3:${sha}:`);
    expect(plantIdKeys).toHaveLength(2);
    expect(plantIdKeys.some((k) => k.includes(":lang=fr:"))).toBe(true);
    expect(plantIdKeys.some((k) => k.includes(":lang=en:"))).toBe(true);
    const plantNetKeys = await keys(`plantnet:v2:all:${sha}:`);
    expect(plantNetKeys).toHaveLength(2);
    expect(plantNetKeys.some((k) => k.includes(":lang=fr:"))).toBe(true);

    // The signed-in record keeps the language and the French names; the catalogue holds none of them.
    const request = (await (await call(`/api/v1/plant-identification/requests/${fr.body.request_id}/`, { bearer: u.access })).json()) as {
      language: string;
    };
    expect(request.language).toBe("fr");
    const results = (await (
      await call(`/api/v1/plant-identification/requests/${fr.body.request_id}/results/`, { bearer: u.access })
    ).json()) as { results: Suggestion[] };
    const stored = results.results.find((r) => r.scientific_name === top.scientific_name)!;
    expect(stored.plant_name).toBe(top.plant_name);
    for (const s of fr.body.suggestions!) {
      const entry = await catalogueEntry(s.scientific_name);
      expect(entry, s.scientific_name).not.toBeNull();
      for (const name of frenchOnly(s.scientific_name)) expect(entry!.commonNames).not.toContain(name);
    }
  });

  it("asks Pl@ntNet in English for a language it does not know, and Plant.id in it", async () => {
    const bytes = await photo();
    const ja = await identify(bytes, "ja");
    expect(ja.res.status).toBe(200);
    expect(ja.body.providers).toEqual({ plant_id: { status: "answered" }, plantnet: { status: "answered" } });
    expect(emulators.plantId.requests.at(-1)!.search).toContain("language=ja");
    expect(new URLSearchParams(emulators.plantnet.requests.at(-1)!.search).get("lang")).toBe("en");
    // Plant.id's own fallback is English names.
    const top = ja.body.suggestions![0]!;
    expect(top.plant_name).toBe(names(top.scientific_name).en[0]);
    // What Pl@ntNet answered in English is the English cache entry.
    const en = await identify(bytes, "en");
    expect(en.body.cached).toEqual({ plant_id: false, plantnet: true });
  });

  it("refuses a language that is not two lower-case letters with 400 INVALID_LANGUAGE, asking nobody and writing nothing", async () => {
    const u = await bearerUser();
    for (const language of ["FR", "fra", "", "f1", "fr-FR"]) {
      const { res, body } = await identify(await photo(), language, u.access);
      expect(res.status, language).toBe(400);
      expect(body).toMatchObject({ success: false, code: "INVALID_LANGUAGE" });
      expect(body.error).toMatch(/ISO 639-1/);
    }
    expect(emulators.plantId.calls + emulators.plantnet.calls).toBe(0);
    expect(await countRows("identification_requests", u.userId)).toBe(0);
  });
});

describe("the community feed", () => {
  it("shows a shared request as its owner identified it, and says in which language", async () => {
    const u = await bearerUser();
    const fr = await identify(await photo(), "fr", u.access);
    const id = fr.body.request_id!;
    expect((await call(`/api/v1/plant-identification/requests/${id}/share/`, { method: "POST", bearer: u.access })).status).toBe(200);
    const item = (await (await call(`/api/v1/plant-identification/community/${id}/`)).json()) as {
      language: string;
      candidates: { scientific_name: string; plant_name: string }[];
    };
    expect(item.language).toBe("fr");
    const top = item.candidates.find((c) => c.scientific_name === fr.body.suggestions![0]!.scientific_name)!;
    expect(top.plant_name).toBe(names(top.scientific_name).fr[0]);
    const feed = (await (await call("/api/v1/plant-identification/community/")).json()) as {
      results: { request_id: string; language: string }[];
    };
    expect(feed.results.find((r) => r.request_id === id)?.language).toBe("fr");
  });
});

describe("requests/ and disease-requests/ with a language", () => {
  it("refuse an invalid language with a field error, storing no request and no photo", async () => {
    const u = await bearerUser();
    const bytes = await photo();
    const sha = await sha256Hex(bytes);
    const form = (fields: Record<string, string>) => {
      const f = new FormData();
      f.append("image_1", new File([bytes], "p.png", { type: "image/png" }));
      for (const [k, v] of Object.entries(fields)) f.append(k, v);
      return f;
    };
    const identification = await call("/api/v1/plant-identification/requests/", {
      method: "POST",
      body: form({ language: "French" }),
      bearer: u.access,
    });
    const body = await expectError(identification, 400, "VALIDATION_ERROR");
    expect(body.errors?.language?.[0]).toMatch(/ISO 639-1/);
    const disease = await call("/api/v1/plant-identification/disease-requests/", {
      method: "POST",
      body: form({ language: "EN", symptoms_description: "Brown spots on every leaf" }),
      bearer: u.access,
    });
    expect((await expectError(disease, 400, "VALIDATION_ERROR")).errors?.language).toBeDefined();
    expect(await countRows("identification_requests", u.userId)).toBe(0);
    expect(await countRows("disease_requests", u.userId)).toBe(0);
    expect(await env.IMAGES.head(`images/${sha}.png`)).toBeNull();
  });

  it("an upload in fr: the queue job asks in fr and its results carry the French names; the catalogue stays English", async () => {
    const u = await bearerUser();
    const form = new FormData();
    form.append("image_1", new File([await photo()], "p.png", { type: "image/png" }));
    form.append("language", "fr");
    const res = await call("/api/v1/plant-identification/requests/", { method: "POST", body: form, bearer: u.access });
    expect(res.status).toBe(202);
    const created = (await res.json()) as { request_id: string; language: string };
    expect(created.language).toBe("fr");

    await eventually(async () => {
      const row = await env.DB.prepare("SELECT status FROM identification_requests WHERE id = ?")
        .bind(created.request_id)
        .first<{ status: string }>();
      return row && ["identified", "needs_help"].includes(row.status) ? row : undefined;
    }, 30_000);
    expect(emulators.plantId.requests.some((r) => r.search.includes("language=fr"))).toBe(true);
    const results = (await (
      await call(`/api/v1/plant-identification/requests/${created.request_id}/results/`, { bearer: u.access })
    ).json()) as { results: Suggestion[] };
    const top = results.results[0]!;
    expect(top.plant_name).toBe(names(top.scientific_name).fr[0]);
    for (const r of results.results) {
      const entry = await catalogueEntry(r.scientific_name);
      for (const name of frenchOnly(r.scientific_name)) expect(entry!.commonNames).not.toContain(name);
    }
  }, 60_000);

  it("a job asks in its request's language on every attempt; a row from before languages asks in English", async () => {
    const u = await bearerUser();
    const id = await pendingRequest("identify", u.userId, await photo());
    await env.DB.prepare("UPDATE identification_requests SET language = 'de' WHERE id = ?").bind(id).run();
    emulators.plantId.setMode({ failure: "500", times: 1 });
    emulators.plantnet.setMode({ failure: "500", times: 1 });
    expect((await deliver(id, u.userId, 1)).retryMessages).toHaveLength(1);
    expect((await deliver(id, u.userId, 2)).explicitAcks).toHaveLength(1);
    expect(emulators.plantId.requests.map((r) => new URLSearchParams(r.search).get("language"))).toEqual(["de", "de"]);
    expect(emulators.plantnet.requests.map((r) => new URLSearchParams(r.search).get("lang"))).toEqual(["de", "de"]);

    const old = await pendingRequest("identify", u.userId, await photo());
    await deliver(old, u.userId, 1);
    expect(new URLSearchParams(emulators.plantId.requests.at(-1)!.search).get("language")).toBe("en");
    const row = await env.DB.prepare("SELECT language, status FROM identification_requests WHERE id = ?")
      .bind(old)
      .first<{ language: string; status: string }>();
    expect(row).toMatchObject({ language: "en" });
  });
});

describe("care guides in the request's language", () => {
  /** Every chat-completion prompt the Worker sends to the OpenAI emulator, as text. */
  function recordPrompts(): string[] {
    const prompts: string[] = [];
    emulators.overrides["openai.emulator.test"] = async (request) => {
      const body = await request.text();
      const sent = JSON.parse(body) as { messages: { role: string; content: string }[] };
      prompts.push(sent.messages.find((m) => m.role === "user")!.content);
      return emulators.openai.handle(new Request(request.url, { method: request.method, headers: request.headers, body }));
    };
    return prompts;
  }
  const guides = (speciesName: string) =>
    env.DB.prepare(
      "SELECT g.language, g.content FROM care_guides g JOIN species s ON s.id = g.species_id WHERE lower(s.scientific_name) = lower(?) ORDER BY g.language",
    )
      .bind(speciesName)
      .all<{ language: string; content: string }>()
      .then((r) => r.results);

  it("the job asks OpenAI in the request's language and stores one guide per language; the results serve the request's", async () => {
    const u = await bearerUser();
    await env.DB.prepare("DELETE FROM care_guides").run();
    const prompts = recordPrompts();
    const bytes = await photo();
    const requestIn = async (language: string) => {
      const id = await pendingRequest("identify", u.userId, bytes);
      await env.DB.prepare("UPDATE identification_requests SET language = ? WHERE id = ?").bind(language, id).run();
      await deliver(id, u.userId, 1);
      const body = (await (await call(`/api/v1/plant-identification/requests/${id}/results/`, { bearer: u.access })).json()) as {
        results: { scientific_name: string }[];
        care_instructions: Record<string, unknown> | null;
      };
      return { top: body.results[0]!.scientific_name, care: body.care_instructions };
    };

    const fr = await requestIn("fr");
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toContain(`language with code "fr"`);
    expect((await guides(fr.top)).map((g) => g.language)).toEqual(["fr"]);
    // The results say the guide's language, as the rule-based advice does.
    expect(fr.care).toMatchObject({ source: "openai", language: "fr", ...JSON.parse((await guides(fr.top))[0]!.content) });

    const de = await requestIn("de");
    expect(de.top).toBe(fr.top);
    expect(prompts).toHaveLength(2);
    expect(prompts[1]).toContain(`language with code "de"`);
    const stored = await guides(de.top);
    expect(stored.map((g) => g.language)).toEqual(["de", "fr"]);
    expect(de.care).toMatchObject({ source: "openai", language: "de", ...JSON.parse(stored[0]!.content) });

    // A second request in French finds its guide: OpenAI is not asked again.
    await requestIn("fr");
    expect(prompts).toHaveLength(2);
  });

  it("when OpenAI fails for the request's language the advice is the rule-based one, not another language's guide", async () => {
    const u = await bearerUser();
    await env.DB.prepare("DELETE FROM care_guides").run();
    const bytes = await photo();
    const en = await pendingRequest("identify", u.userId, bytes);
    await deliver(en, u.userId, 1);
    emulators.openai.setMode({ failure: "500" });
    const italian = await pendingRequest("identify", u.userId, bytes);
    await env.DB.prepare("UPDATE identification_requests SET language = 'it' WHERE id = ?").bind(italian).run();
    await deliver(italian, u.userId, 1);
    const body = (await (await call(`/api/v1/plant-identification/requests/${italian}/results/`, { bearer: u.access })).json()) as {
      results: { scientific_name: string }[];
      care_instructions: { source: string } | null;
    };
    expect((await guides(body.results[0]!.scientific_name)).map((g) => g.language)).toEqual(["en"]);
    expect(body.care_instructions?.source).toBe("rules");

    // The rule-based advice is in the request's language; one it is not written in gets English, saying so.
    const top = body.results[0]!.scientific_name;
    await env.DB.prepare("UPDATE species SET light_requirements = 'full_sun', water_requirements = 'low' WHERE scientific_name = ?")
      .bind(top)
      .run();
    const careOf = async (id: string) =>
      (
        (await (await call(`/api/v1/plant-identification/requests/${id}/results/`, { bearer: u.access })).json()) as {
          care_instructions: { source: string; language: string; light: string; water: string };
        }
      ).care_instructions;
    const inItalian = await careOf(italian);
    expect(inItalian).toMatchObject({ source: "rules", language: "it" });
    expect([inItalian.light, inItalian.water]).toEqual([expect.stringMatching(/^Pieno sole:/), expect.stringMatching(/^Annaffia/)]);
    const japanese = await pendingRequest("identify", u.userId, bytes);
    await env.DB.prepare("UPDATE identification_requests SET language = 'ja' WHERE id = ?").bind(japanese).run();
    await deliver(japanese, u.userId, 1);
    const inEnglish = await careOf(japanese);
    expect(inEnglish).toMatchObject({ source: "rules", language: "en" });
    expect(inEnglish.water).toMatch(/^Water sparingly:/);
  });
});

describe("disease requests with a language", () => {
  const DISEASES = "/api/v1/plant-identification/disease-requests";
  async function pendingDisease(userId: string, bytes: Uint8Array, language: string) {
    const sha = await sha256Hex(bytes);
    await env.IMAGES.put(`images/${sha}.png`, bytes);
    const id = crypto.randomUUID();
    await env.DB.prepare(
      "INSERT INTO disease_requests (id, user_id, status, image_hashes, symptoms_description, language) VALUES (?, ?, 'pending', ?, ?, ?)",
    )
      .bind(id, userId, JSON.stringify([`${sha}.png`]), "Brown spots spreading on the lower leaves.", language)
      .run();
    return id;
  }
  async function diagnose(requestId: string, userId: string) {
    const batch = createMessageBatch("plant-identify", [
      { id: `d-${requestId}`, timestamp: new Date(), attempts: 1, body: { type: "diagnose", request_id: requestId, user_id: userId } },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    await waitOnExecutionContext(ctx);
  }
  const firstResult = async (id: string, bearer: string) =>
    ((await (await call(`${DISEASES}/${id}/results/`, { bearer })).json()) as { results: { id: string; name: string }[] }).results[0]!;
  const database = async () => ((await (await call("/api/v1/plant-identification/disease-database/")).json()) as { count: number }).count;

  it("asks Plant.id's health assessment in the request's language, and keeps the public database to diagnoses asked in English", async () => {
    const u = await bearerUser();
    const bytes = await photo();
    const fr = await pendingDisease(u.userId, bytes, "fr");
    await diagnose(fr, u.userId);
    const asked = emulators.plantId.requests.at(-1)!;
    expect(asked.path).toBe("/v3/health_assessment");
    expect(new URLSearchParams(asked.search).get("language")).toBe("fr");
    const body = (await (await call(`${DISEASES}/${fr}/`, { bearer: u.access })).json()) as { language: string };
    expect(body.language).toBe("fr");

    const before = await database();
    const frResult = await firstResult(fr, u.access);
    expect((await call(`${DISEASES}/${fr}/confirm/`, { bearer: u.access, json: { result_id: frResult.id } })).status).toBe(200);
    expect(await database()).toBe(before);

    const en = await pendingDisease(u.userId, bytes, "en");
    await diagnose(en, u.userId);
    expect(new URLSearchParams(emulators.plantId.requests.at(-1)!.search).get("language")).toBe("en");
    const enResult = await firstResult(en, u.access);
    expect((await call(`${DISEASES}/${en}/confirm/`, { bearer: u.access, json: { result_id: enResult.id } })).status).toBe(200);
    expect(await database()).toBe(before + 1);
  });
});

describe("the catalogue stays English", () => {
  const suggestion = (scientificName: string, commonNames: string[], description: string): MergedSuggestion => ({
    plant_name: commonNames[0] ?? scientificName,
    scientific_name: scientificName,
    probability: 0.9,
    common_names: commonNames,
    description,
    family: "Testaceae",
    genus: scientificName.split(" ")[0]!,
    similar_images: [],
    sources: ["plant_id"],
    calibration_version: "plant_id:raw,plantnet:raw",
    rank: 1,
  });
  async function complete(userId: string, s: MergedSuggestion, language: string) {
    const id = await pendingRequest("identify", userId, await photo());
    await env.DB.prepare("UPDATE identification_requests SET status = 'processing', language = ? WHERE id = ?").bind(language, id).run();
    await completeIdentificationRequest(env, id, userId, [s], null, null, language);
    return id;
  }

  it("a species first met in French joins with its scientific name only, the request keeps the French names, and English fills them in", async () => {
    const u = await bearerUser();
    const name = `Testia gallica${crypto.randomUUID().slice(0, 8)}`;
    const frId = await complete(u.userId, suggestion(name, ["testie de France"], "Une plante d'essai."), "fr");
    expect(await catalogueEntry(name)).toEqual({ commonNames: [], description: "" });
    const result = await env.DB.prepare("SELECT plant_name, common_names, species_id FROM identification_results WHERE request_id = ?")
      .bind(frId)
      .first<{ plant_name: string; common_names: string; species_id: string | null }>();
    expect(result).toMatchObject({ plant_name: "testie de France", common_names: JSON.stringify(["testie de France"]) });
    expect(result!.species_id).not.toBeNull();

    await complete(u.userId, suggestion(name, ["French test plant"], "A test plant."), "en");
    expect(await catalogueEntry(name)).toEqual({ commonNames: ["French test plant"], description: "A test plant." });
    // Once named, later answers change nothing, in any language.
    await complete(u.userId, suggestion(name, ["another name"], "Another text."), "en");
    await complete(u.userId, suggestion(name, ["autre nom"], "Autre texte."), "fr");
    expect(await catalogueEntry(name)).toEqual({ commonNames: ["French test plant"], description: "A test plant." });
  });

  it("an English answer naming a species first met in French purges the cached species reads at once", async () => {
    const u = await bearerUser();
    const name = `Testia purgata${crypto.randomUUID().slice(0, 8)}`;
    await complete(u.userId, suggestion(name, ["testie purgée"], "Une plante."), "fr");
    const detail = `/api/v1/plant-identification/species/?search=${encodeURIComponent(name)}`;
    const read = async () => ((await (await call(detail)).json()) as { results: { common_names: string[] }[] }).results;
    // Read once so the edge cache holds the unnamed entry.
    expect((await read())[0]!.common_names).toEqual([]);
    const generation = async () =>
      (await env.DB.prepare("SELECT version FROM cache_generations WHERE area = 'species'").first<{ version: number }>())?.version ?? 1;
    const before = await generation();

    await complete(u.userId, suggestion(name, ["Purged test plant"], "A test plant."), "en");
    expect(await generation()).toBeGreaterThan(before);
    expect((await read())[0]!.common_names).toEqual(["Purged test plant"]);

    // An answer that changes nothing in the catalogue purges nothing.
    const named = await generation();
    await complete(u.userId, suggestion(name, ["another name"], "Another text."), "en");
    expect(await generation()).toBe(named);
  });

  it("never fills in a verified entry", async () => {
    const u = await bearerUser();
    const name = `Testia verificata${crypto.randomUUID().slice(0, 8)}`;
    await env.DB.prepare("INSERT INTO species (id, scientific_name, is_verified) VALUES (?, ?, 1)").bind(crypto.randomUUID(), name).run();
    await complete(u.userId, suggestion(name, ["verified plant"], "Text."), "en");
    expect(await catalogueEntry(name)).toEqual({ commonNames: [], description: "" });
  });
});

async function deliver(requestId: string, userId: string, attempts: number) {
  const batch = createMessageBatch("plant-identify", [
    {
      id: `lang-${requestId}-${attempts}`,
      timestamp: new Date(),
      attempts,
      body: { type: "identify", request_id: requestId, user_id: userId },
    },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  await waitOnExecutionContext(ctx);
  return getQueueResult(batch, ctx);
}
