/**
 * Saved care cards (API.md §5): a user's copies of care instructions, one per scientific name
 * (case-insensitive, enforced by a unique index so concurrent saves cannot both win).
 */
import { apiFields, columnFields } from "../lib/fields";
import { and, desc, eq } from "drizzle-orm";
import { database, eqIfGiven } from "../db/client";
import { type Page, type PageRequest, tablePage } from "../db/pagination";
import { savedCareInstructions } from "../db/schema";
import type { Bindings } from "../env";
import { AppError, isUniqueViolation, perUserCapError } from "../lib/errors";
import { uuidv7 } from "../lib/ids";

export type SavedCareRow = typeof savedCareInstructions.$inferSelect;

export interface SavedCareFields {
  scientific_name?: string;
  common_name?: string;
  care_instructions?: Record<string, unknown>;
  is_favorite?: boolean;
  personal_notes?: string;
}

export interface SavedCareFilter {
  userId: string;
  isFavorite?: boolean;
}

export function savedCareBody(row: SavedCareRow) {
  return {
    ...apiFields(row, "id scientificName commonName careInstructions isFavorite personalNotes createdAt updatedAt"),
  };
}

/** The user's saved care cards, newest first; `isFavorite` keeps only favourites (true) or the rest (false). */
export function listSavedCare(env: Bindings, filter: SavedCareFilter, page: PageRequest): Promise<Page<SavedCareRow>> {
  const t = savedCareInstructions;
  const where = and(eq(t.userId, filter.userId), eqIfGiven(t.isFavorite, filter.isFavorite));
  return tablePage(database(env), t, where, [desc(t.createdAt), desc(t.id)], page);
}

/** The caller's own card, or 404 (also for other users' cards). */
export async function ownSavedCare(env: Bindings, userId: string, id: string): Promise<SavedCareRow> {
  const t = savedCareInstructions;
  const row = await database(env)
    .select()
    .from(t)
    .where(and(eq(t.id, id), eq(t.userId, userId)))
    .get();
  if (!row) throw notFound();
  return row;
}

function notFound(): AppError {
  return new AppError("NOT_FOUND", 404, "Saved care card not found.");
}

function duplicate(name: string): AppError {
  return new AppError("DUPLICATE_CARE_CARD", 409, `You already saved care instructions for "${name}".`, {
    scientific_name: ["You already saved care instructions for this plant."],
  });
}

/** The given API fields as the table's columns (absent fields stay absent). */
function columns(fields: SavedCareFields) {
  return columnFields(fields, "scientific_name common_name care_instructions is_favorite personal_notes");
}

export async function createSavedCare(
  env: Bindings,
  userId: string,
  fields: SavedCareFields & { scientific_name: string },
): Promise<SavedCareRow> {
  try {
    return await database(env)
      .insert(savedCareInstructions)
      .values({ ...columns(fields), id: uuidv7(), userId, scientificName: fields.scientific_name })
      .returning()
      .get();
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(fields.scientific_name);
    throw perUserCapError(err) ?? err;
  }
}

/**
 * Applies the given fields and answers the row as this update left it (RETURNING), not as a
 * re-read would find it after a concurrent update of the same card (a favourite set to true
 * could then be answered as false). 404 when the card is not the caller's, or is gone.
 */
export async function updateSavedCare(env: Bindings, userId: string, id: string, fields: SavedCareFields): Promise<SavedCareRow> {
  const set = columns(fields);
  if (Object.keys(set).length === 0) return ownSavedCare(env, userId, id);
  const t = savedCareInstructions;
  let row: SavedCareRow | undefined;
  try {
    row = await database(env)
      .update(t)
      .set({ ...set, updatedAt: new Date().toISOString() })
      .where(and(eq(t.id, id), eq(t.userId, userId)))
      .returning()
      .get();
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(fields.scientific_name ?? "");
    throw err;
  }
  if (!row) throw notFound();
  return row;
}

export async function deleteSavedCare(env: Bindings, userId: string, id: string): Promise<void> {
  const t = savedCareInstructions;
  const row = await database(env)
    .delete(t)
    .where(and(eq(t.id, id), eq(t.userId, userId)))
    .returning({ id: t.id })
    .get();
  if (!row) throw notFound();
}
