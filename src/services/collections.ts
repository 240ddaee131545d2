/**
 * Plant collections and the plants in them (API.md §5). Owner checks are part of every query
 * (`user_id = ?`), so another user's collection or plant is simply "not found". Public reads go
 * through `publicCollectionOwner`, which also hides users whose profile is not public.
 *
 * Rules the spec leaves open, decided here:
 * - The default collection ("My Plants", made at registration) cannot be deleted — identification
 *   results are added to it by default — but it can be renamed and made public.
 * - A collection with plants is deleted only with `delete_plants`; otherwise 409. Plants are never
 *   deleted as a side effect the client did not ask for.
 */
import { and, eq } from "drizzle-orm";
import { changes, database } from "../db/client";
import { fetchPage, type Page, type PageRequest } from "../db/pagination";
import { userPlants } from "../db/schema";
import type { Bindings } from "../env";
import { AppError, isUniqueViolation } from "../lib/errors";
import { uuidv7 } from "../lib/ids";
import type { ValidatedImage } from "../lib/images";
import { imageUrl, parsePhotoRef, photoRef, releasePhotoRefs, withStoredPhotos } from "./photos";

export interface CollectionRow {
  id: string;
  user_id: string;
  name: string;
  description: string;
  is_public: number;
  is_default: number;
  created_at: string;
  updated_at: string;
  plant_count: number;
}

export interface PlantRow {
  id: string;
  user_id: string;
  collection_id: string;
  species_id: string | null;
  species_scientific_name: string | null;
  result_id: string | null;
  nickname: string;
  acquisition_date: string | null;
  location_in_home: string;
  notes: string;
  is_alive: number;
  image_key: string | null;
  care_instructions_json: string | null;
  created_at: string;
  updated_at: string;
}

const COLLECTION_COLUMNS = "c.*, (SELECT count(*) FROM user_plants p WHERE p.collection_id = c.id) AS plant_count";
const PLANT_COLUMNS = "p.*, s.scientific_name AS species_scientific_name";
const PLANT_FROM = "FROM user_plants p LEFT JOIN species s ON s.id = p.species_id";

export function collectionBody(row: CollectionRow) {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    is_public: Boolean(row.is_public),
    is_default: Boolean(row.is_default),
    plant_count: row.plant_count,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function plantImageUrl(row: Pick<PlantRow, "image_key">): string | null {
  const image = row.image_key ? parsePhotoRef(row.image_key) : null;
  return image ? imageUrl(image) : null;
}

export function plantBody(row: PlantRow) {
  return {
    id: row.id,
    collection: row.collection_id,
    species: row.species_id,
    species_scientific_name: row.species_scientific_name,
    result_id: row.result_id,
    nickname: row.nickname,
    acquisition_date: row.acquisition_date,
    location_in_home: row.location_in_home,
    notes: row.notes,
    is_alive: Boolean(row.is_alive),
    image_url: plantImageUrl(row),
    care_instructions_json: row.care_instructions_json ? (JSON.parse(row.care_instructions_json) as Record<string, unknown>) : null,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** What anyone may see of a plant in a public collection: personal notes and care notes stay private. */
export function publicPlantBody(row: PlantRow) {
  return {
    id: row.id,
    collection: row.collection_id,
    species: row.species_id,
    species_scientific_name: row.species_scientific_name,
    nickname: row.nickname,
    acquisition_date: row.acquisition_date,
    is_alive: Boolean(row.is_alive),
    image_url: plantImageUrl(row),
    created_at: row.created_at,
  };
}

// ---------------------------------------------------------------------------------------------
// Collections

function collectionPageQuery(userId: string, publicOnly: boolean) {
  return {
    select: COLLECTION_COLUMNS,
    from: publicOnly ? "FROM collections c WHERE c.user_id = ? AND c.is_public = 1" : "FROM collections c WHERE c.user_id = ?",
    // The default collection first, then in the order they were made.
    order: "c.is_default DESC, c.created_at ASC, c.id ASC",
    binds: [userId],
  };
}

/** The user's own collections, all of them. */
export function listCollections(env: Bindings, userId: string, page: PageRequest): Promise<Page<CollectionRow>> {
  return fetchPage<CollectionRow>(env, collectionPageQuery(userId, false), page);
}

export async function findCollection(env: Bindings, userId: string, id: string): Promise<CollectionRow | null> {
  return env.DB.prepare(`SELECT ${COLLECTION_COLUMNS} FROM collections c WHERE c.id = ? AND c.user_id = ?`)
    .bind(id, userId)
    .first<CollectionRow>();
}

/** The caller's own collection, or 404 (also for other users' collections). */
export async function ownCollection(env: Bindings, userId: string, id: string): Promise<CollectionRow> {
  const row = await findCollection(env, userId, id);
  if (!row) throw new AppError("NOT_FOUND", 404, "Collection not found.");
  return row;
}

/** Where plants go when the client names no collection: the default one (else the oldest). */
export async function defaultCollectionId(env: Bindings, userId: string): Promise<string | null> {
  const row = await env.DB.prepare("SELECT id FROM collections WHERE user_id = ? ORDER BY is_default DESC, created_at ASC LIMIT 1")
    .bind(userId)
    .first<{ id: string }>();
  return row?.id ?? null;
}

function duplicateName(name: string): AppError {
  return new AppError("DUPLICATE_COLLECTION", 409, `You already have a collection named "${name}".`, {
    name: ["You already have a collection with this name."],
  });
}

export async function createCollection(
  env: Bindings,
  userId: string,
  input: { name: string; description?: string; is_public?: boolean },
): Promise<CollectionRow> {
  const id = uuidv7();
  try {
    await env.DB.prepare("INSERT INTO collections (id, user_id, name, description, is_public) VALUES (?, ?, ?, ?, ?)")
      .bind(id, userId, input.name, input.description ?? "", input.is_public ? 1 : 0)
      .run();
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicateName(input.name);
    throw err;
  }
  return (await findCollection(env, userId, id))!;
}

export async function updateCollection(
  env: Bindings,
  userId: string,
  id: string,
  patch: { name?: string; description?: string; is_public?: boolean },
): Promise<CollectionRow> {
  await ownCollection(env, userId, id);
  const sets: string[] = [];
  const binds: unknown[] = [];
  if (patch.name !== undefined) {
    sets.push("name = ?");
    binds.push(patch.name);
  }
  if (patch.description !== undefined) {
    sets.push("description = ?");
    binds.push(patch.description);
  }
  if (patch.is_public !== undefined) {
    sets.push("is_public = ?");
    binds.push(patch.is_public ? 1 : 0);
  }
  if (sets.length > 0) {
    try {
      await env.DB.prepare(`UPDATE collections SET ${sets.join(", ")}, updated_at = ? WHERE id = ? AND user_id = ?`)
        .bind(...binds, new Date().toISOString(), id, userId)
        .run();
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicateName(patch.name ?? "");
      throw err;
    }
  }
  return ownCollection(env, userId, id);
}

/**
 * Deletes a collection. Without `deletePlants` only an empty one goes (checked in the DELETE
 * itself, so a plant added meanwhile is never cascaded away); with it, its plants go in the same
 * batch and their photos are removed from R2 unless something else still uses them.
 */
export async function deleteCollection(env: Bindings, userId: string, id: string, deletePlants: boolean): Promise<void> {
  const row = await ownCollection(env, userId, id);
  if (row.is_default) {
    throw new AppError("DEFAULT_COLLECTION", 409, "The default collection cannot be deleted. Rename it or make it private instead.");
  }
  const db = env.DB;
  if (!deletePlants) {
    const deleted = await db
      .prepare(
        `DELETE FROM collections WHERE id = ? AND user_id = ? AND is_default = 0
           AND NOT EXISTS (SELECT 1 FROM user_plants WHERE collection_id = ?) RETURNING id`,
      )
      .bind(id, userId, id)
      .first<{ id: string }>();
    if (!deleted) {
      const { n } = (await db.prepare("SELECT count(*) AS n FROM user_plants WHERE collection_id = ?").bind(id).first<{ n: number }>())!;
      throw new AppError(
        "COLLECTION_NOT_EMPTY",
        409,
        `This collection has ${n} plant(s). Move them to another collection first, or delete them with ?delete_plants=true.`,
      );
    }
    return;
  }
  const [plants] = await db.batch<{ image_key: string | null }>([
    db.prepare("DELETE FROM user_plants WHERE collection_id = ? AND user_id = ? RETURNING image_key").bind(id, userId),
    db.prepare("DELETE FROM collections WHERE id = ? AND user_id = ? AND is_default = 0").bind(id, userId),
  ]);
  await releasePhotoRefs(
    env,
    plants!.results.map((p) => p.image_key),
  );
}

// ---------------------------------------------------------------------------------------------
// Public view of a user's collections

/** The id of the user whose public collections `viewerId` may see, or 404. Only public profiles
 * (and the owner themselves) show them; inactive accounts show nothing. */
export async function publicCollectionOwner(env: Bindings, username: string, viewerId: string | null): Promise<string> {
  const row = await env.DB.prepare(
    "SELECT id FROM users WHERE lower(username) = lower(?) AND is_active = 1 AND (profile_visibility = 'public' OR id = ?)",
  )
    .bind(username, viewerId)
    .first<{ id: string }>();
  if (!row) throw new AppError("NOT_FOUND", 404, "User not found.");
  return row.id;
}

export async function publicCollection(env: Bindings, ownerId: string, id: string): Promise<CollectionRow> {
  const row = await findCollection(env, ownerId, id);
  if (!row?.is_public) throw new AppError("NOT_FOUND", 404, "Collection not found.");
  return row;
}

/** `username`'s public collections as `viewerId` (null: anonymous) may see them, or 404. */
export async function listPublicCollections(
  env: Bindings,
  username: string,
  viewerId: string | null,
  page: PageRequest,
): Promise<Page<CollectionRow>> {
  const ownerId = await publicCollectionOwner(env, username, viewerId);
  return fetchPage<CollectionRow>(env, collectionPageQuery(ownerId, true), page);
}

/** One of `username`'s public collections and a page of its plants, or 404. */
export async function publicCollectionWithPlants(
  env: Bindings,
  username: string,
  viewerId: string | null,
  id: string,
  page: PageRequest,
): Promise<{ collection: CollectionRow; plants: Page<PlantRow> }> {
  const ownerId = await publicCollectionOwner(env, username, viewerId);
  const collection = await publicCollection(env, ownerId, id);
  const plants = await fetchPage<PlantRow>(env, plantPageQuery({ userId: ownerId, collectionId: collection.id }), page);
  return { collection, plants };
}

// ---------------------------------------------------------------------------------------------
// Plants

export interface PlantFilter {
  userId: string;
  collectionId?: string | undefined;
  isAlive?: boolean | undefined;
}

/** The user's plants, newest first. Filtering by a collection that is not the user's answers 404. */
export async function listPlants(env: Bindings, filter: PlantFilter, page: PageRequest): Promise<Page<PlantRow>> {
  if (filter.collectionId) await ownCollection(env, filter.userId, filter.collectionId);
  return fetchPage<PlantRow>(env, plantPageQuery(filter), page);
}

function plantPageQuery(filter: PlantFilter) {
  const where = ["p.user_id = ?"];
  const binds: unknown[] = [filter.userId];
  if (filter.collectionId) {
    where.push("p.collection_id = ?");
    binds.push(filter.collectionId);
  }
  if (filter.isAlive !== undefined) {
    where.push("p.is_alive = ?");
    binds.push(filter.isAlive ? 1 : 0);
  }
  return { select: PLANT_COLUMNS, from: `${PLANT_FROM} WHERE ${where.join(" AND ")}`, order: "p.created_at DESC, p.id DESC", binds };
}

export async function findPlant(env: Bindings, userId: string, id: string): Promise<PlantRow | null> {
  return env.DB.prepare(`SELECT ${PLANT_COLUMNS} ${PLANT_FROM} WHERE p.id = ? AND p.user_id = ?`).bind(id, userId).first<PlantRow>();
}

/** The caller's own plant, or 404 (also for other users' plants). */
export async function ownPlant(env: Bindings, userId: string, id: string): Promise<PlantRow> {
  const row = await findPlant(env, userId, id);
  if (!row) throw new AppError("NOT_FOUND", 404, "Plant not found.");
  return row;
}

export interface PlantFields {
  collection?: string;
  species?: string | null;
  nickname?: string;
  acquisition_date?: string | null;
  location_in_home?: string;
  notes?: string;
  is_alive?: boolean;
  care_instructions_json?: Record<string, unknown> | null;
}

/**
 * Checks the references of a plant write before anything is stored: the collection must be the
 * caller's (404 otherwise, as for any other object of theirs), the species must exist (400).
 */
export async function checkPlantReferences(env: Bindings, userId: string, fields: PlantFields): Promise<void> {
  if (fields.collection !== undefined) await ownCollection(env, userId, fields.collection);
  if (fields.species) {
    const species = await env.DB.prepare("SELECT id FROM species WHERE id = ?").bind(fields.species).first<{ id: string }>();
    if (!species) throw new AppError("VALIDATION_ERROR", 400, "Species not found.", { species: ["No species with this id."] });
  }
}

const PLANT_COLUMN_OF: Record<keyof PlantFields, string> = {
  collection: "collection_id",
  species: "species_id",
  nickname: "nickname",
  acquisition_date: "acquisition_date",
  location_in_home: "location_in_home",
  notes: "notes",
  is_alive: "is_alive",
  care_instructions_json: "care_instructions_json",
};

function columnValue(key: keyof PlantFields, value: unknown): unknown {
  if (key === "is_alive") return value ? 1 : 0;
  if (key === "care_instructions_json") return value === null ? null : JSON.stringify(value);
  return value;
}

function alreadyInCollection(): AppError {
  return new AppError("DUPLICATE_PLANT", 409, "This identified plant is already in that collection.", {
    collection: ["The target collection already holds a plant from the same identification result."],
  });
}

export async function insertPlant(
  env: Bindings,
  userId: string,
  collectionId: string,
  fields: PlantFields,
  imageKey: string | null,
): Promise<PlantRow> {
  const id = uuidv7();
  const entries = (Object.keys(PLANT_COLUMN_OF) as (keyof PlantFields)[]).filter((k) => k !== "collection" && fields[k] !== undefined);
  const columns = ["id", "user_id", "collection_id", "image_key", ...entries.map((k) => PLANT_COLUMN_OF[k])];
  await env.DB.prepare(`INSERT INTO user_plants (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`)
    .bind(id, userId, collectionId, imageKey, ...entries.map((k) => columnValue(k, fields[k])))
    .run();
  return (await findPlant(env, userId, id))!;
}

/** `imageKey`: undefined keeps the photo, null removes it, a key replaces it. */
export async function updatePlant(
  env: Bindings,
  userId: string,
  id: string,
  fields: PlantFields,
  imageKey: string | null | undefined,
): Promise<PlantRow> {
  const entries = (Object.keys(PLANT_COLUMN_OF) as (keyof PlantFields)[]).filter((k) => fields[k] !== undefined);
  const sets = entries.map((k) => `${PLANT_COLUMN_OF[k]} = ?`);
  const binds = entries.map((k) => columnValue(k, fields[k]));
  if (imageKey !== undefined) {
    sets.push("image_key = ?");
    binds.push(imageKey);
  }
  if (sets.length > 0) {
    try {
      await env.DB.prepare(`UPDATE user_plants SET ${sets.join(", ")}, updated_at = ? WHERE id = ? AND user_id = ?`)
        .bind(...binds, new Date().toISOString(), id, userId)
        .run();
    } catch (err) {
      if (isUniqueViolation(err)) throw alreadyInCollection();
      throw err;
    }
  }
  return ownPlant(env, userId, id);
}

export async function deletePlant(env: Bindings, userId: string, id: string): Promise<void> {
  const row = await env.DB.prepare("DELETE FROM user_plants WHERE id = ? AND user_id = ? RETURNING image_key")
    .bind(id, userId)
    .first<{ image_key: string | null }>();
  if (!row) throw new AppError("NOT_FOUND", 404, "Plant not found.");
  await releasePhotoRefs(env, [row.image_key]);
}

/**
 * A new plant in `fields.collection`, or in the user's default collection when none is named
 * (400 when the user has none), with its photo when one was sent.
 */
export async function addPlant(env: Bindings, userId: string, fields: PlantFields, image: ValidatedImage | null): Promise<PlantRow> {
  await checkPlantReferences(env, userId, fields);
  const collectionId = fields.collection ?? (await defaultCollectionId(env, userId));
  if (!collectionId) throw new AppError("VALIDATION_ERROR", 400, "Choose a collection.", { collection: ["This field is required."] });
  return withStoredImage(env, image, (key) => insertPlant(env, userId, collectionId, fields, key));
}

/**
 * Changes the user's plant `before`: a sent photo replaces the old one, `removeImage` drops it,
 * and a photo the plant no longer shows is released.
 */
export async function changePlant(
  env: Bindings,
  userId: string,
  before: PlantRow,
  fields: PlantFields,
  image: ValidatedImage | null,
  removeImage: boolean,
): Promise<PlantRow> {
  await checkPlantReferences(env, userId, fields);
  const row = await withStoredImage(env, image, (key) =>
    updatePlant(env, userId, before.id, fields, key ?? (removeImage ? null : undefined)),
  );
  if (before.image_key && before.image_key !== row.image_key) await releasePhotoRefs(env, [before.image_key]);
  return row;
}

/** Stores the photo (if any), then runs `write` with its reference; a failed write releases it again. */
function withStoredImage(env: Bindings, image: ValidatedImage | null, write: (ref: string | null) => Promise<PlantRow>): Promise<PlantRow> {
  if (!image) return write(null);
  return withStoredPhotos(env, [image], () => write(photoRef(image)));
}

/**
 * An identification result becomes a plant in one of the user's collections (the default one
 * when none is named): idempotent per (collection, result), so a second call answers the plant
 * the first one made, with `created: false`.
 */
export async function addIdentifiedPlant(
  env: Bindings,
  userId: string,
  input: { collectionId?: string | undefined; resultId: string; speciesId: string | null; nickname: string; notes: string },
) {
  const collectionId = input.collectionId
    ? (await findCollection(env, userId, input.collectionId))?.id
    : await defaultCollectionId(env, userId);
  if (!collectionId) throw new AppError("NOT_FOUND", 404, "Collection not found.");
  const db = database(env);
  const p = userPlants;
  const inserted = await db
    .insert(p)
    .values({
      id: uuidv7(),
      userId,
      collectionId,
      speciesId: input.speciesId,
      resultId: input.resultId,
      nickname: input.nickname,
      notes: input.notes,
    })
    .onConflictDoNothing({ target: [p.collectionId, p.resultId] });
  const plant = await db
    .select({
      id: p.id,
      collection_id: p.collectionId,
      species_id: p.speciesId,
      result_id: p.resultId,
      nickname: p.nickname,
      notes: p.notes,
    })
    .from(p)
    .where(and(eq(p.collectionId, collectionId), eq(p.resultId, input.resultId)))
    .get();
  return { plant: { ...plant!, result_id: plant!.result_id! }, created: changes(inserted) > 0 };
}
