import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/lib/hash";
import { uuidv7 } from "../../src/lib/ids";
import { makePng, padToSize } from "../helpers/images";
import { identifiedResult } from "../helpers/requests";
import { call, expectError, jsonWithStatus, type Page } from "../helpers/http";
import { bearerUser, registerWeb } from "../helpers/users";
import type { z } from "zod";
import type { CollectionSchema, PlantSchema } from "../../src/routes/collections";

const API = "/api/v1/plant-identification";
let seed = 0;
const photo = () => makePng(320, 240, { seed: `plant-${++seed}-${Math.random()}` });

type Collection = z.infer<typeof CollectionSchema>;
type Plant = z.infer<typeof PlantSchema>;
const json = jsonWithStatus;

const newCollection = async (bearer: string, body: Record<string, unknown>) =>
  json<Collection>(await call(`${API}/collections/`, { bearer, json: body }), 201);
const newPlant = async (bearer: string, body: Record<string, unknown>) =>
  json<Plant>(await call(`${API}/plants/`, { bearer, json: body }), 201);
const listCollections = async (bearer: string) => json<Page<Collection>>(await call(`${API}/collections/`, { bearer }), 200);

function plantForm(fields: Record<string, string>, image?: { bytes: Uint8Array; type?: string; name?: string }) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (image) form.append("image", new File([image.bytes], image.name ?? "plant.png", { type: image.type ?? "image/png" }));
  return form;
}

async function species(name = `Ficus test${Math.random().toString(36).slice(2)}`) {
  const id = crypto.randomUUID();
  await env.DB.prepare("INSERT INTO species (id, scientific_name) VALUES (?, ?)").bind(id, name).run();
  return { id, name };
}

const isoDay = (offsetDays: number) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
const mediaKey = (url: string) => url.replace("/api/v1/media/", "");
/** Rows made within the same millisecond would tie on created_at: pin the order the test asserts. */
const pinCreatedAt = (table: "user_plants" | "collections", id: string, day: number) =>
  env.DB.prepare(`UPDATE ${table} SET created_at = ? WHERE id = ?`)
    .bind(`2026-01-${String(day).padStart(2, "0")}T00:00:00.000Z`, id)
    .run();
const plantRows = async (userId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM user_plants WHERE user_id = ?").bind(userId).first<{ n: number }>())!.n;

const badCollections: [unknown, string][] = [
  [{ name: "" }, "name"],
  [{ name: "   " }, "name"],
  [{ name: "x".repeat(101) }, "name"],
  [{ name: "ok", description: "d".repeat(1001) }, "description"],
  [{ name: "ok", is_public: "yes" }, "is_public"],
  [{ name: "ok", owner: "someone" }, "non_field_errors"],
  [{}, "name"],
];

describe("collections", () => {
  it("lists the default collection, creates, reads, renames, publishes and deletes", async () => {
    const u = await bearerUser();
    const initial = await listCollections(u.access);
    expect(initial).toMatchObject({ count: 1, next: null, previous: null });
    expect(initial.results[0]).toMatchObject({ name: "My Plants", is_default: true, is_public: false, plant_count: 0 });

    const created = await newCollection(u.access, { name: "  Succulents ", description: "Desert friends" });
    expect(created).toMatchObject({
      name: "Succulents",
      description: "Desert friends",
      is_public: false,
      is_default: false,
      plant_count: 0,
    });
    expect(created.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(await json<Collection>(await call(`${API}/collections/${created.id}/`, { bearer: u.access }), 200)).toEqual(created);

    const patched = await json<Collection>(
      await call(`${API}/collections/${created.id}`, { method: "PATCH", bearer: u.access, json: { name: "Cacti", is_public: true } }),
      200,
    );
    expect(patched).toMatchObject({ id: created.id, name: "Cacti", description: "Desert friends", is_public: true });
    expect(patched.updated_at >= created.updated_at).toBe(true);

    const list = await listCollections(u.access);
    expect(list.results.map((c) => c.name)).toEqual(["My Plants", "Cacti"]);

    expect((await call(`${API}/collections/${created.id}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    await expectError(await call(`${API}/collections/${created.id}/`, { bearer: u.access }), 404, "NOT_FOUND");
    expect((await listCollections(u.access)).count).toBe(1);
  });

  it("names are unique per user, case-insensitively (409), but not across users", async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    const a = await newCollection(u.access, { name: "Herbs" });
    const dup = await expectError(
      await call(`${API}/collections/`, { bearer: u.access, json: { name: "HERBS" } }),
      409,
      "DUPLICATE_COLLECTION",
    );
    expect(dup.errors?.name).toBeDefined();
    await expectError(await call(`${API}/collections/`, { bearer: u.access, json: { name: "my plants" } }), 409, "DUPLICATE_COLLECTION");
    await expectError(
      await call(`${API}/collections/${a.id}/`, { method: "PATCH", bearer: u.access, json: { name: "My Plants" } }),
      409,
      "DUPLICATE_COLLECTION",
    );
    await newCollection(other.access, { name: "Herbs" });
    expect((await listCollections(u.access)).count).toBe(2);
  });

  it("names are unique beyond ASCII: other scripts' case, NFD/NFC and compatibility forms clash too", async () => {
    const u = await bearerUser();
    const kitchen = await newCollection(u.access, { name: "Küche" });
    // SQLite's lower() folds A–Z only: these reached the table as new names before.
    for (const name of ["KÜCHE", "Ku\u0308che", "ｋüche", "ΚΉΠΟΣ", "Straße"]) {
      if (name === "ΚΉΠΟΣ") await newCollection(u.access, { name: "κήπος" });
      if (name === "Straße") await newCollection(u.access, { name: "STRASSE" });
      const dup = await expectError(await call(`${API}/collections/`, { bearer: u.access, json: { name } }), 409, "DUPLICATE_COLLECTION");
      expect(dup.errors?.name).toBeDefined();
    }
    const renamed = await newCollection(u.access, { name: "Сад" });
    await expectError(
      await call(`${API}/collections/${renamed.id}/`, { method: "PATCH", bearer: u.access, json: { name: "KÜCHE" } }),
      409,
      "DUPLICATE_COLLECTION",
    );
    // Renaming a collection to another spelling of its own name is not a clash, and a name is kept as sent.
    const same = await json<Collection>(
      await call(`${API}/collections/${kitchen.id}/`, { method: "PATCH", bearer: u.access, json: { name: "KÜCHE" } }),
      200,
    );
    expect(same.name).toBe("KÜCHE");
    // Composed (NFC) on the way in, so what looks the same is the same text.
    const decomposed = await newCollection(u.access, { name: "Cafe\u0301" });
    expect(decomposed.name).toBe("Caf\u00e9");
    expect((await listCollections(u.access)).count).toBe(6);
  });

  it("two names that clash under the rule but were made before it stay editable, and neither may take a third spelling of the other's", async () => {
    const u = await bearerUser();
    const kitchen = await newCollection(u.access, { name: "Küche" });
    const shouting = await newCollection(u.access, { name: "Garten" });
    // Made before names were folded beyond A–Z: the lower() index let both in.
    await env.DB.prepare("UPDATE collections SET name = 'KÜCHE', name_key = NULL WHERE id = ?").bind(shouting.id).run();
    // A client saving its edit form sends the unchanged name with the new description.
    const edited = await json<Collection>(
      await call(`${API}/collections/${kitchen.id}/`, {
        method: "PATCH",
        bearer: u.access,
        json: { name: "Küche", description: "Kräuter" },
      }),
      200,
    );
    expect(edited.description).toBe("Kräuter");
    const other = await json<Collection>(
      await call(`${API}/collections/${shouting.id}/`, { method: "PATCH", bearer: u.access, json: { name: "KÜCHE", is_public: true } }),
      200,
    );
    expect(other.is_public).toBe(true);
    // A rename to a name only another collection holds is still a clash.
    const third = await newCollection(u.access, { name: "Balkon" });
    await expectError(
      await call(`${API}/collections/${third.id}/`, { method: "PATCH", bearer: u.access, json: { name: "küche" } }),
      409,
      "DUPLICATE_COLLECTION",
    );
  });

  it.each(badCollections.map(([body, field]) => ({ body, field, label: JSON.stringify(body).slice(0, 60) })))(
    "rejects $label with 400 on $field and writes nothing",
    async ({ body, field }) => {
      const u = await bearerUser();
      const err = await expectError(await call(`${API}/collections/`, { bearer: u.access, json: body }), 400, "VALIDATION_ERROR");
      expect(Object.keys(err.errors ?? {}), JSON.stringify(body)).toContain(field);
      expect((await listCollections(u.access)).count).toBe(1);
    },
  );

  it("rejects bad input with 400 and never writes", async () => {
    const u = await bearerUser();
    await expectError(await call(`${API}/collections/not-a-uuid/`, { bearer: u.access }), 400, "VALIDATION_ERROR");
    await expectError(await call(`${API}/collections/?page=0`, { bearer: u.access }), 400, "VALIDATION_ERROR");
    expect((await listCollections(u.access)).count).toBe(1);
  });

  it("the default collection cannot be deleted; a non-empty one only with delete_plants=true", async () => {
    const u = await bearerUser();
    const mine = await listCollections(u.access);
    const defaultId = mine.results[0]!.id;
    await expectError(await call(`${API}/collections/${defaultId}/`, { method: "DELETE", bearer: u.access }), 409, "DEFAULT_COLLECTION");
    await expectError(
      await call(`${API}/collections/${defaultId}/?delete_plants=true`, { method: "DELETE", bearer: u.access }),
      409,
      "DEFAULT_COLLECTION",
    );
    // It can still be renamed.
    expect(
      (await call(`${API}/collections/${defaultId}/`, { method: "PATCH", bearer: u.access, json: { name: "Houseplants" } })).status,
    ).toBe(200);

    const shelf = await newCollection(u.access, { name: "Shelf" });
    const bytes = await photo();
    const withPhoto = await json<Plant>(
      await call(`${API}/plants/`, { method: "POST", bearer: u.access, body: plantForm({ collection: shelf.id }, { bytes }) }),
      201,
    );
    await newPlant(u.access, { collection: shelf.id, nickname: "Second" });
    expect((await json<Collection>(await call(`${API}/collections/${shelf.id}/`, { bearer: u.access }), 200)).plant_count).toBe(2);

    const refused = await expectError(
      await call(`${API}/collections/${shelf.id}/`, { method: "DELETE", bearer: u.access }),
      409,
      "COLLECTION_NOT_EMPTY",
    );
    expect(refused.message).toContain("2 plant(s)");
    await expectError(
      await call(`${API}/collections/${shelf.id}/?delete_plants=maybe`, { method: "DELETE", bearer: u.access }),
      400,
      "VALIDATION_ERROR",
    );
    expect(await plantRows(u.userId)).toBe(2);
    expect(await env.IMAGES.head(mediaKey(withPhoto.image_url!))).not.toBeNull();

    expect((await call(`${API}/collections/${shelf.id}/?delete_plants=true`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    expect(await plantRows(u.userId)).toBe(0);
    expect(await env.IMAGES.head(mediaKey(withPhoto.image_url!))).toBeNull();
    expect(await env.IMAGES.head(`images/${await sha256Hex(bytes)}.png`)).toBeNull();
    await expectError(await call(`${API}/collections/${shelf.id}/`, { bearer: u.access }), 404, "NOT_FOUND");
  });

  it("another user's collection is 404 for read, update, delete, filter and as a plant's collection", async () => {
    const owner = await bearerUser();
    const intruder = await bearerUser();
    const theirs = await newCollection(owner.access, { name: "Private jungle", is_public: true });
    const path = `${API}/collections/${theirs.id}/`;
    await expectError(await call(path, { bearer: intruder.access }), 404, "NOT_FOUND");
    await expectError(await call(path, { method: "PATCH", bearer: intruder.access, json: { name: "Mine now" } }), 404, "NOT_FOUND");
    await expectError(await call(path, { method: "DELETE", bearer: intruder.access }), 404, "NOT_FOUND");
    await expectError(await call(`${API}/plants/?collection=${theirs.id}`, { bearer: intruder.access }), 404, "NOT_FOUND");
    await expectError(
      await call(`${API}/plants/`, { bearer: intruder.access, json: { collection: theirs.id, nickname: "Cuckoo" } }),
      404,
      "NOT_FOUND",
    );

    // Multipart with a valid photo: the 404 comes before anything is stored.
    const bytes = await photo();
    const res = await call(`${API}/plants/`, {
      method: "POST",
      bearer: intruder.access,
      body: plantForm({ collection: theirs.id }, { bytes }),
    });
    await expectError(res, 404, "NOT_FOUND");
    expect(await env.IMAGES.head(`images/${await sha256Hex(bytes)}.png`)).toBeNull();

    // Moving one's own plant into it.
    const mine = await newPlant(intruder.access, { nickname: "Mover" });
    await expectError(
      await call(`${API}/plants/${mine.id}/`, { method: "PATCH", bearer: intruder.access, json: { collection: theirs.id } }),
      404,
      "NOT_FOUND",
    );

    expect(await json<Collection>(await call(path, { bearer: owner.access }), 200)).toMatchObject({
      name: "Private jungle",
      plant_count: 0,
    });
    expect(await plantRows(owner.userId)).toBe(0);
    expect((await json<Plant>(await call(`${API}/plants/${mine.id}/`, { bearer: intruder.access }), 200)).collection).not.toBe(theirs.id);
  });

  it("anonymous callers get 401; cookie writes need the CSRF header", async () => {
    for (const [method, path] of [
      ["GET", `${API}/collections/`],
      ["POST", `${API}/collections/`],
      ["GET", `${API}/plants/`],
      ["POST", `${API}/plants/`],
      ["PATCH", `${API}/plants/${crypto.randomUUID()}/`],
      ["DELETE", `${API}/collections/${crypto.randomUUID()}/`],
    ] as const) {
      const res = await call(path, { method, ...(method === "GET" || method === "DELETE" ? {} : { json: { name: "x" } }) });
      await expectError(res, 401, "AUTHENTICATION_REQUIRED");
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    }

    const web = await registerWeb();
    await expectError(await call(`${API}/collections/`, { cookies: web.cookies, json: { name: "No token" } }), 403, "CSRF_FAILED");
    await expectError(await call(`${API}/plants/`, { cookies: web.cookies, json: { nickname: "No token" } }), 403, "CSRF_FAILED");
    const list = await json<Page<Collection>>(await call(`${API}/collections/`, { cookies: web.cookies }), 200);
    expect(list.count).toBe(1);
    await expectError(
      await call(`${API}/collections/${list.results[0]!.id}/`, { method: "PATCH", cookies: web.cookies, json: { is_public: true } }),
      403,
      "CSRF_FAILED",
    );
    const ok = await call(`${API}/collections/`, {
      cookies: web.cookies,
      headers: { "X-CSRFToken": web.csrf },
      json: { name: "With token" },
    });
    expect(ok.status).toBe(201);
    expect((await json<Page<Collection>>(await call(`${API}/collections/`, { cookies: web.cookies }), 200)).count).toBe(2);
  });
});

const badPlants: [unknown, string][] = [
  [{ species: crypto.randomUUID() }, "species"],
  [{ species: "not-a-uuid" }, "species"],
  [{ acquisition_date: isoDay(3) }, "acquisition_date"],
  [{ acquisition_date: "2024-02-30" }, "acquisition_date"],
  [{ acquisition_date: "2024-01-01T00:00:00Z" }, "acquisition_date"],
  [{ nickname: "n".repeat(101) }, "nickname"],
  [{ location_in_home: "l".repeat(101) }, "location_in_home"],
  [{ notes: "n".repeat(2001) }, "notes"],
  [{ is_alive: "yes" }, "is_alive"],
  [{ care_instructions_json: ["water"] }, "care_instructions_json"],
  [{ care_instructions_json: "water weekly" }, "care_instructions_json"],
  [{ care_instructions_json: { text: "x".repeat(16 * 1024) } }, "care_instructions_json"],
  [{ image: null }, "non_field_errors"],
];

describe("plants", () => {
  it("a multipart is_alive that is neither true nor false says so", async () => {
    const u = await bearerUser();
    const res = await call(`${API}/plants/`, { method: "POST", bearer: u.access, body: plantForm({ nickname: "Maybe", is_alive: "yes" }) });
    const err = await expectError(res, 400, "VALIDATION_ERROR");
    expect(err.errors?.is_alive).toEqual(["Enter true or false."]);
  });

  it("a date that is not one is refused for its format alone, not also as lying in the future", async () => {
    const u = await bearerUser();
    for (const acquisition_date of ["2026-13-45", "yesterday", "9999-99-99"]) {
      const err = await expectError(
        await call(`${API}/plants/`, { bearer: u.access, json: { acquisition_date } }),
        400,
        "VALIDATION_ERROR",
      );
      expect(err.errors?.acquisition_date, acquisition_date).toEqual(["Enter a date as YYYY-MM-DD."]);
    }
    expect(await plantRows(u.userId)).toBe(0);
  });

  it("an acquisition date of today in Kiritimati (UTC+14) is not in the future; its tomorrow is", async () => {
    const u = await bearerUser();
    const kiritimatiDay = (days: number) =>
      new Intl.DateTimeFormat("en-CA", { timeZone: "Pacific/Kiritimati" }).format(new Date(Date.now() + days * 86_400_000));
    await newPlant(u.access, { nickname: "Kiritimati", acquisition_date: kiritimatiDay(0) });
    const soon = await call(`${API}/plants/`, { bearer: u.access, json: { nickname: "Too soon", acquisition_date: kiritimatiDay(1) } });
    expect((await expectError(soon, 400, "VALIDATION_ERROR")).errors?.acquisition_date).toBeDefined();
  });

  it("creates with JSON (default collection when none is given), reads, updates, moves and deletes", async () => {
    const u = await bearerUser();
    const sp = await species();
    const [defaultCollection] = (await listCollections(u.access)).results;
    const care = { watering: "weekly", light: "bright indirect" };
    const plant = await newPlant(u.access, {
      species: sp.id,
      nickname: " Figgy ",
      acquisition_date: isoDay(-30),
      location_in_home: "Living room",
      notes: "Bought at the market",
      care_instructions_json: care,
    });
    expect(plant).toMatchObject({
      collection: defaultCollection!.id,
      species: sp.id,
      species_scientific_name: sp.name,
      nickname: "Figgy",
      acquisition_date: isoDay(-30),
      location_in_home: "Living room",
      notes: "Bought at the market",
      is_alive: true,
      image_url: null,
      care_instructions_json: care,
    });
    expect(await json<Plant>(await call(`${API}/plants/${plant.id}/`, { bearer: u.access }), 200)).toEqual(plant);

    // Today is never "in the future".
    await newPlant(u.access, { nickname: "Today", acquisition_date: isoDay(0) });

    const shelf = await newCollection(u.access, { name: "Shelf" });
    const moved = await json<Plant>(
      await call(`${API}/plants/${plant.id}/`, {
        method: "PATCH",
        bearer: u.access,
        json: { collection: shelf.id, is_alive: false, species: null, care_instructions_json: null },
      }),
      200,
    );
    expect(moved).toMatchObject({
      collection: shelf.id,
      is_alive: false,
      species: null,
      species_scientific_name: null,
      care_instructions_json: null,
      nickname: "Figgy",
    });
    const counts = Object.fromEntries((await listCollections(u.access)).results.map((c) => [c.name, c.plant_count]));
    expect(counts).toEqual({ "My Plants": 1, Shelf: 1 });

    expect((await call(`${API}/plants/${plant.id}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    await expectError(await call(`${API}/plants/${plant.id}/`, { bearer: u.access }), 404, "NOT_FOUND");
    await expectError(await call(`${API}/plants/${plant.id}/`, { method: "DELETE", bearer: u.access }), 404, "NOT_FOUND");
    expect(await plantRows(u.userId)).toBe(1);
  });

  it.each(badPlants.map(([body, field]) => ({ body, field, label: JSON.stringify(body).slice(0, 60) })))(
    "rejects $label with 400 on $field and writes nothing",
    async ({ body, field }) => {
      const u = await bearerUser();
      const err = await expectError(await call(`${API}/plants/`, { bearer: u.access, json: body }), 400, "VALIDATION_ERROR");
      expect(Object.keys(err.errors ?? {}), JSON.stringify(body).slice(0, 80)).toContain(field);
      expect(await plantRows(u.userId)).toBe(0);
    },
  );

  it("rejects bad fields with 400 (nothing written): unknown species, future dates, lengths, care JSON size, unknown fields", async () => {
    const u = await bearerUser();
    // The caller's own user id is still not a field.
    const own = await expectError(await call(`${API}/plants/`, { bearer: u.access, json: { user_id: u.userId } }), 400, "VALIDATION_ERROR");
    expect(Object.keys(own.errors ?? {})).toContain("non_field_errors");
    // Just under the care JSON bound is fine.
    await newPlant(u.access, { care_instructions_json: { text: "x".repeat(16 * 1024 - 20) } });
    await expectError(
      await call(`${API}/plants/`, { bearer: u.access, body: "{", headers: { "Content-Type": "application/json" } }),
      400,
      "MALFORMED_REQUEST",
    );
    await expectError(
      await call(`${API}/plants/`, { bearer: u.access, body: "hello", headers: { "Content-Type": "text/plain" } }),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
    await expectError(await call(`${API}/plants/not-a-uuid/`, { method: "PATCH", bearer: u.access, json: {} }), 400, "VALIDATION_ERROR");
    await expectError(await call(`${API}/plants/not-a-uuid/`, { bearer: u.access }), 400, "VALIDATION_ERROR");
    expect(await plantRows(u.userId)).toBe(1);
  });

  it("multipart with a photo: stored content-addressed in R2, served by /media, replaced and removed", async () => {
    const u = await bearerUser();
    const sp = await species();
    const bytes = await photo();
    const key = `images/${await sha256Hex(bytes)}.png`;
    const plant = await json<Plant>(
      await call(`${API}/plants/`, {
        method: "POST",
        bearer: u.access,
        body: plantForm(
          { nickname: "Snap", species: sp.id, is_alive: "true", acquisition_date: "", care_instructions_json: '{"water":"weekly"}' },
          { bytes },
        ),
      }),
      201,
    );
    expect(plant).toMatchObject({
      nickname: "Snap",
      species: sp.id,
      is_alive: true,
      acquisition_date: null,
      care_instructions_json: { water: "weekly" },
    });
    expect(plant.image_url).toBe(`/api/v1/media/${key}`);
    // A plant in a private collection: its owner's photo, and nobody else's.
    const media = await call(plant.image_url!, { bearer: u.access });
    expect(media.status).toBe(200);
    expect(media.headers.get("Cache-Control")).toBe("private, no-cache");
    expect(new Uint8Array(await media.arrayBuffer())).toEqual(bytes);
    expect((await call(plant.image_url!)).status).toBe(404);

    // A second plant with the same photo shares the object.
    const twin = await json<Plant>(
      await call(`${API}/plants/`, { method: "POST", bearer: u.access, body: plantForm({ nickname: "Twin" }, { bytes }) }),
      201,
    );
    expect(twin.image_url).toBe(plant.image_url);

    // Replacing the first plant's photo keeps the shared object (the twin still uses it).
    const next = await photo();
    const nextKey = `images/${await sha256Hex(next)}.png`;
    const replaced = await json<Plant>(
      await call(`${API}/plants/${plant.id}/`, {
        method: "PATCH",
        bearer: u.access,
        body: plantForm({ notes: "new pot", is_alive: "0" }, { bytes: next }),
      }),
      200,
    );
    expect(replaced).toMatchObject({ image_url: `/api/v1/media/${nextKey}`, notes: "new pot", is_alive: false, nickname: "Snap" });
    expect(await env.IMAGES.head(key)).not.toBeNull();

    // Deleting the twin releases the old photo; JSON image:null releases the new one.
    expect((await call(`${API}/plants/${twin.id}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    expect(await env.IMAGES.head(key)).toBeNull();
    const cleared = await json<Plant>(
      await call(`${API}/plants/${plant.id}/`, { method: "PATCH", bearer: u.access, json: { image: null } }),
      200,
    );
    expect(cleared.image_url).toBeNull();
    expect(await env.IMAGES.head(nextKey)).toBeNull();
  });

  it("keeps a plant's photo when the identification request that shares it is deleted", async () => {
    const u = await bearerUser();
    const bytes = await photo();
    const sha = await sha256Hex(bytes);
    const plant = await json<Plant>(
      await call(`${API}/plants/`, { method: "POST", bearer: u.access, body: plantForm({}, { bytes }) }),
      201,
    );
    const requestId = uuidv7();
    await env.DB.prepare("INSERT INTO identification_requests (id, user_id, image_hashes) VALUES (?, ?, ?)")
      .bind(requestId, u.userId, JSON.stringify([`${sha}.png`]))
      .run();
    expect((await call(`${API}/requests/${requestId}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    expect(await env.IMAGES.head(mediaKey(plant.image_url!))).not.toBeNull();
  });

  it("a rejected photo stores nothing, in R2 or D1", async () => {
    const u = await bearerUser();
    const small = await makePng(100, 100, { seed: `small-${Math.random()}` });
    const huge = padToSize(await photo(), 10 * 1024 * 1024 + 100);
    const good = await photo();
    const cases: [FormData, number, string, string][] = [
      [
        plantForm({ nickname: "Text" }, { bytes: new TextEncoder().encode("not an image at all"), type: "text/plain", name: "a.txt" }),
        400,
        "VALIDATION_ERROR",
        "Invalid file type",
      ],
      [plantForm({ nickname: "Tiny" }, { bytes: small }), 400, "VALIDATION_ERROR", "200"],
      [plantForm({ nickname: "Liar" }, { bytes: good, type: "image/jpeg", name: "p.jpg" }), 400, "VALIDATION_ERROR", ""],
      [plantForm({ nickname: "Huge" }, { bytes: huge }), 413, "FILE_TOO_LARGE", "File too large"],
      // A good photo with a bad field is rejected as a whole.
      [plantForm({ nickname: "Future", acquisition_date: isoDay(5) }, { bytes: good }), 400, "VALIDATION_ERROR", ""],
      [plantForm({ nickname: "Bad JSON", care_instructions_json: "{nope" }, { bytes: good }), 400, "VALIDATION_ERROR", ""],
      [plantForm({ nickname: "Extra", owner: "me" }, { bytes: good }), 400, "VALIDATION_ERROR", ""],
      [plantForm({ image: "not a file" }), 400, "VALIDATION_ERROR", ""],
    ];
    for (const [form, status, code, message] of cases) {
      const err = await expectError(await call(`${API}/plants/`, { method: "POST", bearer: u.access, body: form }), status, code);
      expect(err.message).toContain(message);
    }
    const existing = await newPlant(u.access, { nickname: "Keep" });
    await expectError(
      await call(`${API}/plants/${existing.id}/`, {
        method: "PATCH",
        bearer: u.access,
        body: plantForm({ nickname: "Changed" }, { bytes: small }),
      }),
      400,
      "VALIDATION_ERROR",
    );
    expect(await plantRows(u.userId)).toBe(1);
    expect((await json<Plant>(await call(`${API}/plants/${existing.id}/`, { bearer: u.access }), 200)).nickname).toBe("Keep");
    for (const bytes of [small, huge, good]) expect(await env.IMAGES.head(`images/${await sha256Hex(bytes)}.png`)).toBeNull();
  });

  it("another user's plant is 404 for read, update and delete", async () => {
    const owner = await bearerUser();
    const intruder = await bearerUser();
    const plant = await newPlant(owner.access, { nickname: "Mine", notes: "secret" });
    const path = `${API}/plants/${plant.id}/`;
    await expectError(await call(path, { bearer: intruder.access }), 404, "NOT_FOUND");
    await expectError(await call(path, { method: "PATCH", bearer: intruder.access, json: { nickname: "Stolen" } }), 404, "NOT_FOUND");
    const bytes = await photo();
    await expectError(await call(path, { method: "PATCH", bearer: intruder.access, body: plantForm({}, { bytes }) }), 404, "NOT_FOUND");
    expect(await env.IMAGES.head(`images/${await sha256Hex(bytes)}.png`)).toBeNull();
    await expectError(await call(path, { method: "DELETE", bearer: intruder.access }), 404, "NOT_FOUND");
    expect((await json<Page<Plant>>(await call(`${API}/plants/`, { bearer: intruder.access }), 200)).count).toBe(0);
    expect(await json<Plant>(await call(path, { bearer: owner.access }), 200)).toMatchObject({ nickname: "Mine", notes: "secret" });
  });

  it("filters by collection and is_alive, and paginates newest first", async () => {
    const u = await bearerUser();
    const shelf = await newCollection(u.access, { name: "Shelf" });
    for (let i = 1; i <= 5; i++) {
      const plant = await newPlant(u.access, { nickname: `p${i}`, ...(i % 2 === 0 ? { collection: shelf.id } : {}), is_alive: i !== 5 });
      await pinCreatedAt("user_plants", plant.id, i);
    }
    const all = await json<Page<Plant>>(await call(`${API}/plants/?page_size=2`, { bearer: u.access }), 200);
    expect(all.count).toBe(5);
    expect(all.results.map((p) => p.nickname)).toEqual(["p5", "p4"]);
    expect(all.previous).toBeNull();
    expect(new URL(all.next!).searchParams.get("page")).toBe("2");
    const page3 = await json<Page<Plant>>(await call(`${API}/plants/?page=3&page_size=2`, { bearer: u.access }), 200);
    expect(page3.results.map((p) => p.nickname)).toEqual(["p1"]);
    expect(page3.next).toBeNull();
    expect(page3.previous).not.toBeNull();

    const onShelf = await json<Page<Plant>>(await call(`${API}/plants/?collection=${shelf.id}`, { bearer: u.access }), 200);
    expect(onShelf.results.map((p) => p.nickname)).toEqual(["p4", "p2"]);
    const dead = await json<Page<Plant>>(await call(`${API}/plants/?is_alive=false`, { bearer: u.access }), 200);
    expect(dead.results.map((p) => p.nickname)).toEqual(["p5"]);
    const aliveDefault = await json<Page<Plant>>(
      await call(`${API}/plants/?is_alive=true&collection=${(await listCollections(u.access)).results[0]!.id}`, { bearer: u.access }),
      200,
    );
    expect(aliveDefault.results.map((p) => p.nickname)).toEqual(["p3", "p1"]);
    await expectError(await call(`${API}/plants/?collection=nope`, { bearer: u.access }), 400, "VALIDATION_ERROR");
    await expectError(await call(`${API}/plants/?is_alive=perhaps`, { bearer: u.access }), 400, "VALIDATION_ERROR");
    await expectError(await call(`${API}/plants/?collection=${crypto.randomUUID()}`, { bearer: u.access }), 404, "NOT_FOUND");

    const counts = Object.fromEntries((await listCollections(u.access)).results.map((c) => [c.name, c.plant_count]));
    expect(counts).toEqual({ "My Plants": 3, Shelf: 2 });
  });

  it("works with add_to_collection: moving an identified plant where it already is answers 409", async () => {
    const u = await bearerUser();
    const { resultId } = await identifiedResult(u.userId);
    const shelf = await newCollection(u.access, { name: "Shelf" });
    const add = (body: Record<string, unknown>) => call(`${API}/results/${resultId}/add_to_collection/`, { bearer: u.access, json: body });
    const inDefault = await json<{ id: string; collection_id: string }>(await add({}), 201);
    await json(await add({ collection_id: shelf.id }), 201);

    const listed = await json<Plant & { result_id: string }>(await call(`${API}/plants/${inDefault.id}/`, { bearer: u.access }), 200);
    expect(listed).toMatchObject({ nickname: "Monstera", result_id: resultId, collection: inDefault.collection_id });
    await expectError(
      await call(`${API}/plants/${inDefault.id}/`, { method: "PATCH", bearer: u.access, json: { collection: shelf.id } }),
      409,
      "DUPLICATE_PLANT",
    );
    expect((await json<Collection>(await call(`${API}/collections/${shelf.id}/`, { bearer: u.access }), 200)).plant_count).toBe(1);
  });
});

describe("public collections by username", () => {
  it("anyone sees public collections and their plants (without private notes); private ones are 404", async () => {
    const owner = await bearerUser();
    const stranger = await bearerUser();
    const show = await newCollection(owner.access, { name: "Show", is_public: true });
    const secret = await newCollection(owner.access, { name: "Secret" });
    const bytes = await photo();
    const shown = await json<Plant>(
      await call(`${API}/plants/`, {
        method: "POST",
        bearer: owner.access,
        body: plantForm({ collection: show.id, nickname: "Star", notes: "my diary", location_in_home: "bedroom" }, { bytes }),
      }),
      201,
    );
    const hidden = await newPlant(owner.access, { collection: secret.id, nickname: "Hidden" });
    await newPlant(owner.access, { nickname: "In default" });

    for (const viewer of [undefined, stranger.access, owner.access]) {
      const list = await json<Page<Collection>>(
        await call(`/api/v1/users/${owner.username.toUpperCase()}/collections/`, { bearer: viewer }),
        200,
      );
      expect(list.results.map((c) => [c.name, c.plant_count])).toEqual([["Show", 1]]);

      const detail = await json<Collection & { plants: Page<Record<string, unknown>> }>(
        await call(`/api/v1/users/${owner.username}/collections/${show.id}/`, { bearer: viewer }),
        200,
      );
      expect(detail).toMatchObject({ id: show.id, name: "Show", is_public: true, plant_count: 1 });
      expect(detail.plants.count).toBe(1);
      expect(detail.plants.results[0]).toMatchObject({ id: shown.id, nickname: "Star", image_url: shown.image_url });
      expect(detail.plants.results[0]).not.toHaveProperty("notes");
      expect(detail.plants.results[0]).not.toHaveProperty("location_in_home");
      expect(JSON.stringify(detail)).not.toContain(hidden.id);

      await expectError(await call(`/api/v1/users/${owner.username}/collections/${secret.id}/`, { bearer: viewer }), 404, "NOT_FOUND");
    }
    // A public collection is only found under its owner's name.
    await expectError(await call(`/api/v1/users/${stranger.username}/collections/${show.id}/`), 404, "NOT_FOUND");
    await expectError(await call(`/api/v1/users/nobody-${crypto.randomUUID()}/collections/`), 404, "NOT_FOUND");
    await expectError(await call(`/api/v1/users/${owner.username}/collections/not-a-uuid/`), 400, "VALIDATION_ERROR");

    // Making it private hides it at once.
    await call(`${API}/collections/${show.id}/`, { method: "PATCH", bearer: owner.access, json: { is_public: false } });
    expect((await json<Page<Collection>>(await call(`/api/v1/users/${owner.username}/collections/`), 200)).count).toBe(0);
    await expectError(await call(`/api/v1/users/${owner.username}/collections/${show.id}/`), 404, "NOT_FOUND");
  });

  it("a private profile shows its public collections to its owner only", async () => {
    const owner = await bearerUser();
    await newCollection(owner.access, { name: "Open", is_public: true });
    expect(
      (await call("/api/v1/auth/user/", { method: "PATCH", bearer: owner.access, json: { profile_visibility: "private" } })).status,
    ).toBe(200);
    await expectError(await call(`/api/v1/users/${owner.username}/collections/`), 404, "NOT_FOUND");
    expect(
      (await json<Page<Collection>>(await call(`/api/v1/users/${owner.username}/collections/`, { bearer: owner.access }), 200)).count,
    ).toBe(1);
  });

  it("paginates a user's public collections", async () => {
    const owner = await bearerUser();
    for (const [i, name] of ["A", "B", "C"].entries())
      await pinCreatedAt("collections", (await newCollection(owner.access, { name, is_public: true })).id, i + 1);
    const first = await json<Page<Collection>>(await call(`/api/v1/users/${owner.username}/collections/?page_size=2`), 200);
    expect(first.count).toBe(3);
    expect(first.results.map((c) => c.name)).toEqual(["A", "B"]);
    const second = await json<Page<Collection>>(await call(first.next!.replace("https://api.test", "")), 200);
    expect(second.results.map((c) => c.name)).toEqual(["C"]);
  });
});
