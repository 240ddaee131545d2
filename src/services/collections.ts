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
import { getConfig } from "../config";
import { apiFields, columnFields } from "../lib/fields";
import { and, asc, count, desc, eq, getTableColumns, not, notExists, or, type SQL, sql } from "drizzle-orm";
import { changes, type Database, database, runBatch, ownedBy } from "../db/client";
import { collectionName, keyUnkeyedCollections } from "../db/collection-names";
import { type Page, type PageRequest, countedPage } from "../db/pagination";
import { collections, species, userPlants, users } from "../db/schema";
import type { Bindings } from "../env";
import { AppError, isForeignKeyViolation, isUniqueViolation, orNotFound, perUserCapError } from "../lib/errors";
import { uuidv7 } from "../lib/ids";
import { composed, textKey } from "../lib/text";
import type { ValidatedImage } from "../lib/images";
import { imageUrl, parsePhotoRef, photoRef, releasePhotoRefs, withStoredPhotos } from "./photos";
import { enforceRateLimit } from "./rate-limits";

const c = collections;
const p = userPlants;

/** A collection's columns and how many plants it holds. */
const collectionColumns = {
  ...getTableColumns(c),
  // -- correlated count; spelled out because drizzle writes a one-table select's columns unqualified.
  plantCount: sql<number>`(SELECT count(*) FROM user_plants p WHERE p.collection_id = collections.id)`,
};

/** Collections with their plant counts, as every collection read (and the account export) selects them. */
export function selectCollections(db: Database, where: SQL | undefined) {
  return db.select(collectionColumns).from(c).where(where).$dynamic();
}

export type CollectionRow = Awaited<ReturnType<typeof selectCollections>>[number];

/** A plant's columns and its species' scientific name. */
export function selectPlants(db: Database, where: SQL | undefined) {
  return db
    .select({ ...getTableColumns(p), speciesScientificName: species.scientificName })
    .from(p)
    .leftJoin(species, eq(species.id, p.speciesId))
    .where(where)
    .$dynamic();
}

export type PlantRow = Awaited<ReturnType<typeof selectPlants>>[number];

export function collectionBody(row: CollectionRow) {
  return {
    ...apiFields(row, "id name description isPublic isDefault plantCount createdAt updatedAt"),
  };
}

function plantImageUrl(row: Pick<PlantRow, "imageKey">): string | null {
  const image = row.imageKey ? parsePhotoRef(row.imageKey) : null;
  return image ? imageUrl(image) : null;
}

/** What anyone may see of a plant in a public collection: personal notes and care notes stay private. */
export function publicPlantBody(row: PlantRow) {
  return {
    id: row.id,
    collection: row.collectionId,
    species: row.speciesId,
    ...apiFields(row, "speciesScientificName nickname acquisitionDate isAlive"),
    image_url: plantImageUrl(row),
    created_at: row.createdAt,
  };
}

/** The owner's view of a plant: the public one and the private fields. */
export function plantBody(row: PlantRow) {
  return { ...publicPlantBody(row), ...apiFields(row, "resultId locationInHome notes careInstructionsJson updatedAt") };
}

// ---------------------------------------------------------------------------------------------
// Collections

/** The user's collections (public ones only when `publicOnly`): the default first, then in the order they were made. */
function collectionPage(env: Bindings, userId: string, publicOnly: boolean, page: PageRequest): Promise<Page<CollectionRow>> {
  const db = database(env);
  const where = and(eq(c.userId, userId), publicOnly ? eq(c.isPublic, true) : undefined);
  return countedPage(db, selectCollections(db, where).orderBy(desc(c.isDefault), asc(c.createdAt), asc(c.id)), { from: c, where }, page);
}

/** The user's own collections, all of them. */
export function listCollections(env: Bindings, userId: string, page: PageRequest): Promise<Page<CollectionRow>> {
  return collectionPage(env, userId, false, page);
}

export async function findCollection(env: Bindings, userId: string, id: string): Promise<CollectionRow | null> {
  return (await selectCollections(database(env), and(eq(c.id, id), eq(c.userId, userId))).get()) ?? null;
}

/** The caller's own collection, or 404 (also for other users' collections). */
export async function ownCollection(env: Bindings, userId: string, id: string): Promise<CollectionRow> {
  return orNotFound(await findCollection(env, userId, id), "Collection");
}

/** Where plants go when the client names no collection: the default one (else the oldest). */
export async function defaultCollectionId(env: Bindings, userId: string): Promise<string | null> {
  const row = await database(env)
    .select({ id: c.id })
    .from(c)
    .where(eq(c.userId, userId))
    .orderBy(desc(c.isDefault), asc(c.createdAt))
    .limit(1)
    .get();
  return row?.id ?? null;
}

function duplicateName(name: string): AppError {
  return new AppError("DUPLICATE_COLLECTION", 409, `You already have a collection named "${name}".`, {
    name: ["You already have a collection with this name."],
  });
}

/**
 * 409 when the user has another collection of the same name under Unicode case folding and
 * normalisation. Two writes at once both pass this; the UNIQUE index on `name_key` (migrations/0060)
 * refuses the second, answered with the same 409 (`collectionWriteError`). Rows without a key yet
 * are keyed here, as all the user's names are read anyway (db/collection-names.ts).
 * A rename keeping the collection's own name under that folding (`current`) is no new clash: two
 * names made before the rule ("Küche" and "KÜCHE") stay editable, description and all.
 */
async function checkNameFree(env: Bindings, userId: string, name: string, current?: CollectionRow): Promise<void> {
  const key = textKey(name);
  if (current && textKey(current.name) === key) return;
  const db = database(env);
  const rows = await db.select({ id: c.id, name: c.name, nameKey: c.nameKey, createdAt: c.createdAt }).from(c).where(eq(c.userId, userId));
  if (rows.some((row) => row.id !== current?.id && textKey(row.name) === key)) throw duplicateName(name);
  await keyUnkeyedCollections(db, rows, current?.id);
}

/** A collection write's failure as the API answers it: a UNIQUE index on the name (the other of two writes at once) is the 409 the check gives. */
function collectionWriteError(err: unknown, name: string): unknown {
  if (isUniqueViolation(err)) return duplicateName(name);
  return perUserCapError(err) ?? err;
}

export async function createCollection(
  env: Bindings,
  userId: string,
  input: { name: string; description?: string; is_public?: boolean },
): Promise<CollectionRow> {
  const id = uuidv7();
  const name = composed(input.name);
  await checkNameFree(env, userId, name);
  try {
    await database(env)
      .insert(c)
      .values({ id, userId, ...collectionName(name), description: input.description ?? "", isPublic: input.is_public ?? false });
  } catch (err) {
    throw collectionWriteError(err, name);
  }
  return ownCollection(env, userId, id); // 404 when deleted (from another tab) since the insert
}

/**
 * Writes the given columns (absent ones are left alone) of the user's row `id`, stamping
 * `updatedAt`; a UNIQUE clash becomes the resource's own error (`clash`). Nothing to write:
 * nothing is written.
 */
async function updateOwned<T extends typeof c | typeof p>(
  env: Bindings,
  table: T,
  userId: string,
  id: string,
  columns: Partial<T["$inferInsert"]>,
  clash: () => AppError,
): Promise<void> {
  const set = Object.fromEntries(Object.entries(columns).filter(([, value]) => value !== undefined));
  if (Object.keys(set).length === 0) return;
  try {
    await database(env)
      .update(table as typeof c)
      .set({ ...set, updatedAt: new Date().toISOString() })
      .where(ownedBy(table, userId, id));
  } catch (err) {
    if (isUniqueViolation(err)) throw clash();
    if (isForeignKeyViolation(err)) throw collectionGone();
    throw err;
  }
}

/** The collection a plant was being put in was deleted between the check and the write. */
function collectionGone(): AppError {
  return new AppError("NOT_FOUND", 404, "Collection not found.");
}

export async function updateCollection(
  env: Bindings,
  userId: string,
  id: string,
  patch: { name?: string; description?: string; is_public?: boolean },
): Promise<CollectionRow> {
  const current = await ownCollection(env, userId, id);
  const name = patch.name === undefined ? undefined : composed(patch.name);
  if (name !== undefined) await checkNameFree(env, userId, name, current);
  // Another spelling of its own name keeps the row's key: a name made before the rule that clashes
  // with an older one has none, and must not take the older one's.
  const renamed = name !== undefined && textKey(name) !== textKey(current.name) ? collectionName(name) : { name };
  const set = { ...columnFields(patch, "description"), ...renamed, isPublic: patch.is_public };
  await updateOwned(env, c, userId, id, set, () => duplicateName(name ?? ""));
  return ownCollection(env, userId, id);
}

/**
 * Deletes a collection. Without `deletePlants` only an empty one goes (checked in the DELETE
 * itself, so a plant added meanwhile is never cascaded away); with it, its plants go in the same
 * batch and their photos are removed from R2 unless something else still uses them.
 */
export async function deleteCollection(env: Bindings, userId: string, id: string, deletePlants: boolean): Promise<void> {
  const row = await ownCollection(env, userId, id);
  if (row.isDefault) {
    throw new AppError("DEFAULT_COLLECTION", 409, "The default collection cannot be deleted. Rename it or make it private instead.");
  }
  const db = database(env);
  const thisCollection = and(eq(c.id, id), eq(c.userId, userId), not(c.isDefault));
  if (!deletePlants) {
    const deleted = await db
      .delete(c)
      .where(and(thisCollection, notExists(db.select({ one: sql`1` }).from(p).where(eq(p.collectionId, id)))))
      .returning({ id: c.id })
      .get();
    if (!deleted) {
      const counted = await db.select({ n: count() }).from(p).where(eq(p.collectionId, id)).get();
      throw new AppError(
        "COLLECTION_NOT_EMPTY",
        409,
        `This collection has ${counted?.n ?? 0} plant(s). Move them to another collection first, or delete them with ?delete_plants=true.`,
      );
    }
    return;
  }
  const [plants] = (await runBatch(db, [
    db
      .delete(p)
      .where(and(eq(p.collectionId, id), eq(p.userId, userId)))
      .returning({ imageKey: p.imageKey }),
    db.delete(c).where(thisCollection),
  ])) as [{ imageKey: string | null }[], unknown];
  await releasePhotoRefs(
    env,
    plants.map((plant) => plant.imageKey),
  );
}

// ---------------------------------------------------------------------------------------------
// Public view of a user's collections

/** The id of the user whose public collections `viewerId` may see, or 404. Only public profiles
 * (and the owner themselves) show them; inactive accounts show nothing. */
export async function publicCollectionOwner(env: Bindings, username: string, viewerId: string | null): Promise<string> {
  const u = users;
  const row = await database(env)
    .select({ id: u.id })
    .from(u)
    .where(
      and(
        // Usernames match however they are capitalised (the unique index is on lower()).
        eq(sql`lower(${u.username})`, sql`lower(${username})`),
        eq(u.isActive, true),
        or(eq(u.profileVisibility, "public"), viewerId === null ? undefined : eq(u.id, viewerId)),
      ),
    )
    .get();
  if (!row) throw new AppError("NOT_FOUND", 404, "User not found.");
  return row.id;
}

export async function publicCollection(env: Bindings, ownerId: string, id: string): Promise<CollectionRow> {
  const row = await findCollection(env, ownerId, id);
  if (!row?.isPublic) throw new AppError("NOT_FOUND", 404, "Collection not found.");
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
  return collectionPage(env, ownerId, true, page);
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
  const plants = await plantPage(env, { userId: ownerId, collectionId: collection.id }, page);
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
  return plantPage(env, filter, page);
}

function plantPage(env: Bindings, filter: PlantFilter, page: PageRequest): Promise<Page<PlantRow>> {
  const db = database(env);
  const where = and(
    eq(p.userId, filter.userId),
    filter.collectionId ? eq(p.collectionId, filter.collectionId) : undefined,
    filter.isAlive !== undefined ? eq(p.isAlive, filter.isAlive) : undefined,
  );
  return countedPage(db, selectPlants(db, where).orderBy(desc(p.createdAt), desc(p.id)), { from: p, where }, page);
}

export async function findPlant(env: Bindings, userId: string, id: string): Promise<PlantRow | null> {
  return (await selectPlants(database(env), and(eq(p.id, id), eq(p.userId, userId))).get()) ?? null;
}

/** The caller's own plant, or 404 (also for other users' plants). */
export async function ownPlant(env: Bindings, userId: string, id: string): Promise<PlantRow> {
  return orNotFound(await findPlant(env, userId, id), "Plant");
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
    const found = await database(env).select({ id: species.id }).from(species).where(eq(species.id, fields.species)).get();
    if (!found) throw new AppError("VALIDATION_ERROR", 400, "Species not found.", { species: ["No species with this id."] });
  }
}

/** The given API fields as the table's columns (absent fields stay absent). */
function plantColumns(fields: PlantFields) {
  return {
    collectionId: fields.collection,
    speciesId: fields.species,
    ...columnFields(fields, "nickname acquisition_date location_in_home notes is_alive care_instructions_json"),
  };
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
  try {
    await database(env)
      .insert(p)
      .values({ ...plantColumns(fields), id, userId, collectionId, imageKey });
  } catch (err) {
    if (isForeignKeyViolation(err)) throw collectionGone();
    throw perUserCapError(err) ?? err;
  }
  return ownPlant(env, userId, id); // 404 when deleted since the insert, or its collection with it
}

/** `imageKey`: undefined keeps the photo, null removes it, a key replaces it. */
export async function updatePlant(
  env: Bindings,
  userId: string,
  id: string,
  fields: PlantFields,
  imageKey: string | null | undefined,
): Promise<PlantRow> {
  await updateOwned(env, p, userId, id, { ...plantColumns(fields), imageKey }, alreadyInCollection);
  return ownPlant(env, userId, id);
}

export async function deletePlant(env: Bindings, userId: string, id: string): Promise<void> {
  const deleted = await database(env)
    .delete(p)
    .where(ownedBy(p, userId, id))
    .returning({ imageKey: p.imageKey })
    .get();
  const row = orNotFound(deleted, "Plant");
  await releasePhotoRefs(env, [row.imageKey]);
}

/**
 * A new plant in `fields.collection`, or in the user's default collection when none is named
 * (400 when the user has none), with its photo when one was sent.
 */
export async function addPlant(env: Bindings, userId: string, fields: PlantFields, image: ValidatedImage | null): Promise<PlantRow> {
  await checkPlantReferences(env, userId, fields);
  if (image) await spendPhotoBudget(env, userId);
  const collectionId = fields.collection ?? (await defaultCollectionId(env, userId));
  if (!collectionId) throw new AppError("VALIDATION_ERROR", 400, "Choose a collection.", { collection: ["This field is required."] });
  return withStoredImage(env, userId, image, (key) => insertPlant(env, userId, collectionId, fields, key));
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
  if (image) await spendPhotoBudget(env, userId);
  const row = await withStoredImage(env, userId, image, (key) =>
    updatePlant(env, userId, before.id, fields, key ?? (removeImage ? null : undefined)),
  );
  if (before.imageKey && before.imageKey !== row.imageKey) await releasePhotoRefs(env, [before.imageKey]);
  return row;
}

/**
 * Each plant photo stored is charged to the owner's photo budget (429 when spent), once the
 * write's references have checked out (a mistyped collection costs nothing): a plant's
 * photo is kept for as long as the plant is, so without it one account could fill the photo
 * store at the edge limit's pace. Identification and diagnosis have their own budget.
 */
function spendPhotoBudget(env: Bindings, userId: string): Promise<void> {
  return enforceRateLimit(env, `plant-photo:user:${userId}`, getConfig(env).PLANT_PHOTO_RATE_LIMIT);
}

/** Stores the photo (if any), then runs `write` with its reference; a failed write releases it again. */
function withStoredImage(
  env: Bindings,
  userId: string,
  image: ValidatedImage | null,
  write: (ref: string | null) => Promise<PlantRow>,
): Promise<PlantRow> {
  if (!image) return write(null);
  return withStoredPhotos(env, userId, [image], () => write(photoRef(image)));
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
    .onConflictDoNothing({ target: [p.collectionId, p.resultId] })
    .catch((err: unknown) => {
      throw (isForeignKeyViolation(err) ? collectionGone() : perUserCapError(err)) ?? err;
    });
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
  // Gone since the insert: the collection deleted (its plants with it) or the plant itself.
  const found = orNotFound(plant, "Plant");
  return { plant: { ...found, result_id: input.resultId }, created: changes(inserted) > 0 };
}
