/**
 * How user text from any script is compared. SQLite's lower(), LIKE and COLLATE NOCASE fold
 * A–Z only, so a rule like "unique whatever the case" must be checked in JavaScript for "Küche"
 * and "KÜCHE" (or "κήπος" and "ΚΉΠΟΣ") to be the same name.
 */

/** Text as stored: composed (NFC), so an NFD keyboard's "é" and an NFC one's are the same characters. */
export function composed(text: string): string {
  return text.normalize("NFC");
}

/**
 * The key two names are the same under: compatibility forms unified (NFKC: fullwidth "ｋ" is "k"),
 * then case folded through upper case so "ß"/"SS" and "ς"/"Σ"/"σ" meet. Locale-free: Turkish
 * dotted/dotless i are not folded together.
 */
export function textKey(text: string): string {
  return text.normalize("NFKC").toUpperCase().toLowerCase().normalize("NFKC");
}

/**
 * `text` cut to at most `max` UTF-16 units (how zod's max() and the stored limits count) without
 * leaving half of a surrogate pair: a half emoji is not text, and D1 stores it as "���".
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}
