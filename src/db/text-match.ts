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

/** At most this many of a query's letters are folded (each adds one replace() to the expression). */
const MAX_FOLDED_LETTERS = 16;

/**
 * `lower(expr)` that also folds, outside A–Z, the upper-case forms of the letters in `needle`
 * (itself lower case): SQLite's lower() leaves "É", "Ш" or "Σ" as they are, so a test like
 * `instr(foldedLower(col, q), q)` is what finds "Épinard" for "épinard" or "ÉPINARD". Only the
 * needle's letters matter for a substring test, so the expression stays small. The letters are
 * inlined, not bound (D1 allows 100 bound values a statement): each is one code point with a case
 * mapping, never a quote.
 */
export function foldedLower(expr: SQLWrapper, needle: string): SQL {
  let folded = sql`lower(${expr})`;
  const seen = new Set<string>();
  for (const ch of needle) {
    if (ch <= "\x7f" || seen.has(ch) || seen.size >= MAX_FOLDED_LETTERS) continue;
    const upper = ch.toUpperCase();
    if (upper === ch || [...upper].length !== 1 || upper.toLowerCase() !== ch) continue;
    seen.add(ch);
    folded = sql`replace(${folded}, ${sql.raw(`'${upper}'`)}, ${sql.raw(`'${ch}'`)})`;
  }
  return folded;
}

/** A user's search text as the folded expressions expect it: composed (NFC) and in lower case. */
export function searchNeedle(text: string): string {
  return text.normalize("NFC").toLowerCase();
}
