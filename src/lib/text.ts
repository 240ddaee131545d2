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
