/**
 * Saved care cards (API.md §5): a user's copies of care instructions, one per scientific name
 * (case-insensitive, enforced by a unique index so concurrent saves cannot both win).
 */
import { fetchPage, type Page, type PageRequest } from "../db/pagination";
import type { Bindings } from "../env";
import { AppError, isUniqueViolation } from "../lib/errors";
import { uuidv7 } from "../lib/ids";

export interface SavedCareRow {
  id: string;
  user_id: string;
  scientific_name: string;
  common_name: string;
  care_instructions: string;
  is_favorite: number;
  personal_notes: string;
  created_at: string;
  updated_at: string;
}

export interface SavedCareFields {
  scientific_name?: string;
  common_name?: string;
  care_instructions?: Record<string, unknown>;
  is_favorite?: boolean;
  personal_notes?: string;
}

export function savedCareBody(row: SavedCareRow) {
  return {
    id: row.id,
    scientific_name: row.scientific_name,
    common_name: row.common_name,
    care_instructions: JSON.parse(row.care_instructions) as Record<string, unknown>,
    is_favorite: Boolean(row.is_favorite),
    personal_notes: row.personal_notes,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** The user's saved care cards, newest first; `isFavorite` keeps only favourites (true) or the rest (false). */
export function listSavedCare(
  env: Bindings,
  userId: string,
  isFavorite: boolean | undefined,
  page: PageRequest,
): Promise<Page<SavedCareRow>> {
  return fetchPage<SavedCareRow>(env, savedCarePageQuery(userId, isFavorite), page);
}

function savedCarePageQuery(userId: string, isFavorite?: boolean) {
  return {
    select: "*",
    from:
      isFavorite === undefined
        ? "FROM saved_care_instructions WHERE user_id = ?"
        : "FROM saved_care_instructions WHERE user_id = ? AND is_favorite = ?",
    order: "created_at DESC, id DESC",
    binds: isFavorite === undefined ? [userId] : [userId, isFavorite ? 1 : 0],
  };
}

/** The caller's own card, or 404 (also for other users' cards). */
export async function ownSavedCare(env: Bindings, userId: string, id: string): Promise<SavedCareRow> {
  const row = await env.DB.prepare("SELECT * FROM saved_care_instructions WHERE id = ? AND user_id = ?")
    .bind(id, userId)
    .first<SavedCareRow>();
  if (!row) throw new AppError("NOT_FOUND", 404, "Saved care card not found.");
  return row;
}

function duplicate(name: string): AppError {
  return new AppError("DUPLICATE_CARE_CARD", 409, `You already saved care instructions for "${name}".`, {
    scientific_name: ["You already saved care instructions for this plant."],
  });
}

const COLUMN_VALUE: { [K in keyof SavedCareFields]-?: (v: NonNullable<SavedCareFields[K]>) => unknown } = {
  scientific_name: (v) => v,
  common_name: (v) => v,
  care_instructions: (v) => JSON.stringify(v),
  is_favorite: (v) => (v ? 1 : 0),
  personal_notes: (v) => v,
};

function columns(fields: SavedCareFields): [string, unknown][] {
  return (Object.keys(COLUMN_VALUE) as (keyof SavedCareFields)[])
    .filter((k) => fields[k] !== undefined)
    .map((k) => [k, (COLUMN_VALUE[k] as (v: unknown) => unknown)(fields[k])]);
}

export async function createSavedCare(
  env: Bindings,
  userId: string,
  fields: SavedCareFields & { scientific_name: string },
): Promise<SavedCareRow> {
  const id = uuidv7();
  // Column names come from COLUMN_VALUE's keys, never from the client.
  const cols = columns(fields);
  try {
    await env.DB.prepare(
      `INSERT INTO saved_care_instructions (id, user_id, ${cols.map(([k]) => k).join(", ")}) VALUES (?, ?, ${cols.map(() => "?").join(", ")})`,
    )
      .bind(id, userId, ...cols.map(([, v]) => v))
      .run();
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(fields.scientific_name);
    throw err;
  }
  return ownSavedCare(env, userId, id);
}

/**
 * Applies the given fields and answers the row as this update left it (RETURNING), not as a
 * re-read would find it after a concurrent update of the same card (a favourite set to true
 * could then be answered as false). 404 when the card is not the caller's, or is gone.
 */
export async function updateSavedCare(env: Bindings, userId: string, id: string, fields: SavedCareFields): Promise<SavedCareRow> {
  const cols = columns(fields);
  if (cols.length === 0) return ownSavedCare(env, userId, id);
  let row: SavedCareRow | null;
  try {
    row = await env.DB.prepare(
      `UPDATE saved_care_instructions SET ${cols.map(([k]) => `${k} = ?`).join(", ")}, updated_at = ? WHERE id = ? AND user_id = ? RETURNING *`,
    )
      .bind(...cols.map(([, v]) => v), new Date().toISOString(), id, userId)
      .first<SavedCareRow>();
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(fields.scientific_name ?? "");
    throw err;
  }
  if (!row) throw new AppError("NOT_FOUND", 404, "Saved care card not found.");
  return row;
}

export async function deleteSavedCare(env: Bindings, userId: string, id: string): Promise<void> {
  const row = await env.DB.prepare("DELETE FROM saved_care_instructions WHERE id = ? AND user_id = ? RETURNING id")
    .bind(id, userId)
    .first();
  if (!row) throw new AppError("NOT_FOUND", 404, "Saved care card not found.");
}
