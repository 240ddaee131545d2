/**
 * Renaming between the two spellings of one field: the data layer's camelCase row properties
 * (drizzle's schema) and the API's snake_case fields (API.md). Bodies and column sets that are
 * a plain rename name their fields once, in one string, instead of one `a_b: row.aB` line each:
 *
 *   apiFields(row, "id requestId name")        → { id, request_id, name }
 *   columnFields(body, "scientific_name notes") → { scientificName, notes } (absent stay absent)
 *
 * Both are typed: a name that is not a property of the input does not compile, and the result
 * has exactly the renamed properties with their types.
 */

/** `requestId` → `request_id` (digits and lowercase letters stay as they are). */
export type SnakeCase<S extends string> = S extends `${infer C}${infer Rest}`
  ? `${C extends Lowercase<C> ? C : `_${Lowercase<C>}`}${SnakeCase<Rest>}`
  : S;

/** `request_id` → `requestId`. */
export type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;

/** The space-separated words of a string type. */
type Words<S extends string> = S extends `${infer Word} ${infer Rest}` ? Word | Words<Rest> : S;

/** `Names` itself when every word of it is a key of `T`; otherwise a type naming the strangers. */
type KnownNames<T, Names extends string> = [Exclude<Words<Names>, keyof T>] extends [never]
  ? Names
  : { "not a field of the input": Exclude<Words<Names>, keyof T> };

export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

export function camelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}

function words(names: string): string[] {
  return names.split(" ").filter(Boolean);
}

/** The named properties of a row under their API names. */
export function apiFields<T extends object, const Names extends string>(
  row: T,
  names: KnownNames<T, Names>,
): { [K in Words<Names> & keyof T & string as SnakeCase<K>]: T[K] } {
  const out: Record<string, unknown> = {};
  for (const name of words(names as string)) out[snakeCase(name)] = row[name as keyof T];
  return out as never;
}

/**
 * The named API fields as column properties, leaving out the ones that are absent (`undefined`),
 * so a partial update writes only what it was given.
 */
export function columnFields<T extends object, const Names extends string>(
  fields: T,
  names: KnownNames<T, Names>,
): { [K in Words<Names> & keyof T & string as CamelCase<K>]: T[K] } {
  const out: Record<string, unknown> = {};
  for (const name of words(names as string)) {
    const value = fields[name as keyof T];
    if (value !== undefined) out[camelCase(name)] = value;
  }
  return out as never;
}
