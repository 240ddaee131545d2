/**
 * Text tests that indexes can answer. "Starts with" as a range: `expr >= prefix AND expr <
 * prefix || U+10FFFF`. In SQLite's BINARY order (UTF-8 bytes, i.e. code points) every text that
 * starts with `prefix` sorts inside that range and nothing else does, so an index on `expr` (an
 * expression index such as `lower(title)`) reads only the matches. LIKE cannot: D1 refuses
 * patterns over 50 bytes, and SQLite only turns LIKE into a range for case-insensitive columns.
 */
import { type SQL, type SQLWrapper, sql } from "drizzle-orm";

/** The last code point: no valid UTF-8 text sorts after a prefix followed by it. */
const HIGHEST = "\u{10FFFF}";

export function startsWith(expr: SQLWrapper, prefix: string): SQL {
  return sql`(${expr} >= ${prefix} AND ${expr} < ${prefix + HIGHEST})`;
}

/**
 * `text` as one FTS5 phrase: quoted, with its quotes doubled (inside a phrase nothing else is
 * special), so a user's words never reach FTS5's query syntax. With the trigram tokenizer a
 * phrase matches any text holding it as a substring; one under three characters matches nothing.
 */
export function ftsPhrase(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}
