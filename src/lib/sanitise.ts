/**
 * Forum post bodies: plain text (newlines become `<br>`) or a small HTML subset, turned into HTML
 * that is safe to render as-is. A strict allow-list, written as pure functions so every XSS vector
 * has a unit test:
 * - Allowed elements are re-emitted in canonical lower-case form with no attributes at all,
 *   except `<a href>` whose URL must be http(s), mailto or relative (checked after decoding
 *   entities and dropping the whitespace/control characters browsers ignore in a scheme).
 *   Links get `rel="nofollow ugc noopener noreferrer"`.
 * - Unknown elements are dropped but their text is kept; elements whose content is code or
 *   foreign markup (script, style, svg, iframe, …) are dropped with everything inside them.
 * - Text is entity-decoded and re-encoded, so `&lt;b&gt;` stays text and nothing is encoded twice:
 *   `sanitisePostBody(sanitisePostBody(x)) === sanitisePostBody(x)`, which lets clients send a
 *   stored body back when editing.
 * - Nesting is balanced with a stack (unclosed tags are closed at the end, stray closers ignored)
 *   and capped in depth.
 */

const ALLOWED = new Set([
  "p",
  "br",
  "hr",
  "strong",
  "b",
  "em",
  "i",
  "u",
  "s",
  "del",
  "code",
  "pre",
  "blockquote",
  "ul",
  "ol",
  "li",
  "a",
  "h2",
  "h3",
  "h4",
]);
const VOID = new Set(["br", "hr"]);
const BLOCK = new Set(["p", "hr", "pre", "blockquote", "ul", "ol", "li", "h2", "h3", "h4"]);
/** Dropped together with their content: code, styles, foreign markup, embedded documents. */
const DROP_WITH_CONTENT = new Set([
  "script",
  "style",
  "svg",
  "math",
  "iframe",
  "frame",
  "frameset",
  "object",
  "embed",
  "applet",
  "template",
  "noscript",
  "noembed",
  "noframes",
  "textarea",
  "title",
  "xmp",
  "plaintext",
  "select",
  "head",
  "audio",
  "video",
  "canvas",
]);
const MAX_DEPTH = 20;
const LINK_REL = "nofollow ugc noopener noreferrer";

const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: "\u00a0",
  colon: ":",
  tab: "\t",
  newline: "\n",
  sol: "/",
  lpar: "(",
  rpar: ")",
  period: ".",
  comma: ",",
  excl: "!",
  num: "#",
  percnt: "%",
  semi: ";",
  equals: "=",
  copy: "©",
  reg: "®",
  trade: "™",
  hellip: "…",
  mdash: "—",
  ndash: "–",
  lsquo: "‘",
  rsquo: "’",
  ldquo: "“",
  rdquo: "”",
  laquo: "«",
  raquo: "»",
  deg: "°",
  times: "×",
  middot: "·",
  bull: "•",
  euro: "€",
  pound: "£",
  frac12: "½",
};

/** Decodes character references the way browsers do for text and attribute values (the common subset). */
export function decodeEntities(input: string): string {
  return input.replace(/&(#[xX][0-9a-fA-F]+|#[0-9]+|[a-zA-Z][a-zA-Z0-9]*);?/g, (match, ref: string) => {
    if (ref.startsWith("#")) {
      const code = ref[1] === "x" || ref[1] === "X" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      // Browsers map NUL, surrogates and out-of-range references to U+FFFD.
      if (!Number.isFinite(code) || code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return "\ufffd";
      return String.fromCodePoint(code);
    }
    const named = NAMED_ENTITIES[ref.toLowerCase()];
    return named !== undefined && (match.endsWith(";") || ref.length <= 4) ? named : match;
  });
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/**
 * A link target that cannot run code: http(s), mailto, or relative (path, query, fragment).
 * Returns the URL to emit, or null. The scheme check looks at the value with every whitespace
 * and control character removed, because browsers ignore them there (`java\tscript:`).
 */
export function safeHref(raw: string): string | null {
  const decoded = decodeEntities(raw)
    .replace(/[\u0000-\u001f\u007f]/g, "")
    .trim();
  if (decoded === "") return null;
  const compact = decoded.replace(/[\s\u0000-\u0020\u00a0\u1680\u2000-\u200f\u2028\u2029\u202f\u205f\u3000\ufeff]/g, "").toLowerCase();
  const scheme = /^([a-z][a-z0-9+.-]*):/.exec(compact);
  if (scheme) return ["http", "https", "mailto"].includes(scheme[1]!) ? decoded : null;
  // No scheme: relative. A colon before any / ? # would be read as a scheme by some parsers.
  const firstDelimiter = compact.search(/[/?#]/);
  const colon = compact.indexOf(":");
  if (colon !== -1 && (firstDelimiter === -1 || colon < firstDelimiter)) return null;
  return decoded;
}

type Token =
  | { kind: "text"; text: string }
  | { kind: "start"; name: string; attrs: Map<string, string>; selfClosing: boolean }
  | { kind: "end"; name: string };

const TAG_NAME = /^[a-zA-Z][a-zA-Z0-9:-]*/;

/**
 * Splits HTML into text, start and end tags. Comments, doctypes and processing instructions are
 * dropped; the content of DROP_WITH_CONTENT elements is skipped up to their closing tag (or to the
 * end). A `<` that does not start a tag is text (and will be escaped); so is all that follows a
 * tag that never closes (no `>`, or an unclosed quote), which a browser reads as that one tag.
 */
export function tokenize(html: string): Token[] {
  const tokens: Token[] = [];
  let text = "";
  let i = 0;
  const flushText = () => {
    if (text) tokens.push({ kind: "text", text: decodeEntities(text) });
    text = "";
  };
  while (i < html.length) {
    const lt = html.indexOf("<", i);
    if (lt === -1) {
      text += html.slice(i);
      break;
    }
    text += html.slice(i, lt);
    i = lt;
    if (html.startsWith("<!--", i)) {
      const end = html.indexOf("-->", i + 4);
      i = end === -1 ? html.length : end + 3;
      continue;
    }
    if (html[i + 1] === "!" || html[i + 1] === "?") {
      const end = html.indexOf(">", i);
      i = end === -1 ? html.length : end + 1;
      continue;
    }
    const isEnd = html[i + 1] === "/";
    const nameMatch = TAG_NAME.exec(html.slice(i + (isEnd ? 2 : 1), i + (isEnd ? 2 : 1) + 64));
    if (!nameMatch) {
      text += "<";
      i += 1;
      continue;
    }
    const parsed = parseTag(html, i + (isEnd ? 2 : 1) + nameMatch[0].length);
    if (!parsed) {
      // The tag never closes: browsers read the rest of the input as this unfinished tag, and
      // scanning it again from each later `<` would cost time quadratic in the input's length.
      text += html.slice(i);
      break;
    }
    flushText();
    const name = nameMatch[0].toLowerCase();
    i = parsed.end;
    if (isEnd) {
      tokens.push({ kind: "end", name });
      continue;
    }
    if (DROP_WITH_CONTENT.has(name)) {
      if (parsed.selfClosing) continue;
      // Case-insensitive search without lower-casing the input (that can change its length).
      const closer = new RegExp(`</${name}`, "gi");
      closer.lastIndex = i;
      const close = closer.exec(html)?.index ?? -1;
      if (close === -1) break;
      const closeEnd = html.indexOf(">", close);
      i = closeEnd === -1 ? html.length : closeEnd + 1;
      continue;
    }
    tokens.push({ kind: "start", name, attrs: parsed.attrs, selfClosing: parsed.selfClosing });
  }
  flushText();
  return tokens;
}

/** Reads attributes from just after the tag name to the closing `>`; null when there is none. */
function parseTag(html: string, from: number): { attrs: Map<string, string>; selfClosing: boolean; end: number } | null {
  const attrs = new Map<string, string>();
  let i = from;
  let selfClosing = false;
  while (i < html.length) {
    const ch = html[i]!;
    if (ch === ">") return { attrs, selfClosing, end: i + 1 };
    if (/[\s/]/.test(ch)) {
      selfClosing = ch === "/" && html[i + 1] === ">";
      i++;
      continue;
    }
    let name = "";
    while (i < html.length && !/[\s/>=]/.test(html[i]!)) name += html[i++];
    while (i < html.length && /\s/.test(html[i]!)) i++;
    let value = "";
    if (html[i] === "=") {
      i++;
      while (i < html.length && /\s/.test(html[i]!)) i++;
      const quote = html[i];
      if (quote === '"' || quote === "'") {
        const close = html.indexOf(quote, i + 1);
        if (close === -1) return null;
        value = html.slice(i + 1, close);
        i = close + 1;
      } else {
        while (i < html.length && !/[\s>]/.test(html[i]!)) value += html[i++];
      }
    }
    const key = name.toLowerCase();
    if (key && !attrs.has(key)) attrs.set(key, value);
    selfClosing = false;
  }
  return null;
}

/**
 * Every fixed piece of markup `sanitisePostBody` emits (a link's URL aside), so SQL can strip the
 * tags from stored bodies with `replace()` — text never holds a raw `<`, so none of these occur in it.
 */
export const EMITTED_MARKUP: readonly string[] = [
  ...[...ALLOWED].filter((t) => t !== "a").flatMap((t) => (VOID.has(t) ? [`<${t}>`] : [`<${t}>`, `</${t}>`])),
  "<a>",
  '<a href="',
  `" rel="${LINK_REL}">`,
  "</a>",
];

/** Sanitises a post body into safe HTML (see the module comment for the rules). */
export function sanitisePostBody(input: string): string {
  const tokens = tokenize(input.replace(/\r\n?/g, "\n"));
  const out: string[] = [];
  const stack: string[] = [];
  const isBlockBoundary = (t: Token | undefined) => t === undefined || (t.kind !== "text" && BLOCK.has(t.name));
  tokens.forEach((token, index) => {
    if (token.kind === "text") {
      const inPre = stack.includes("pre");
      // Layout whitespace between block elements is not content.
      if (!inPre && /^\s*$/.test(token.text) && (isBlockBoundary(tokens[index - 1]) || isBlockBoundary(tokens[index + 1]))) return;
      const escaped = escapeHtml(token.text);
      out.push(inPre ? escaped : escaped.replace(/\n/g, "<br>"));
      return;
    }
    if (!ALLOWED.has(token.name)) return;
    if (token.kind === "start") {
      if (VOID.has(token.name)) {
        out.push(`<${token.name}>`);
        return;
      }
      if (stack.length >= MAX_DEPTH || (token.name === "a" && stack.includes("a"))) return;
      if (token.name === "a") {
        const href = safeHref(token.attrs.get("href") ?? "");
        out.push(href === null ? "<a>" : `<a href="${escapeHtml(href)}" rel="${LINK_REL}">`);
      } else {
        out.push(`<${token.name}>`);
      }
      stack.push(token.name);
      return;
    }
    const at = stack.lastIndexOf(token.name);
    if (at === -1) return;
    while (stack.length > at) out.push(`</${stack.pop()}>`);
  });
  while (stack.length > 0) out.push(`</${stack.pop()}>`);
  return out.join("");
}

/** The visible text of sanitised HTML (for "is there anything left?" checks and excerpts). */
export function visibleText(html: string): string {
  return decodeEntities(html.replace(/<[^>]*>/g, " "))
    .replace(/\s+/g, " ")
    .trim();
}

/** Plain text cut to at most `max` characters (code points), at a word boundary when one is near, with "…". */
export function truncateText(text: string, max: number): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  const cut = chars.slice(0, max - 1).join("");
  const space = cut.lastIndexOf(" ");
  return `${(space >= max * 0.6 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** A short plain-text excerpt of sanitised HTML (notifications, search snippets): no markup survives. */
export function excerpt(html: string, max: number): string {
  return truncateText(visibleText(html), max);
}
