/**
 * The plain text of a blog post's stored blocks — for the search index, reading time and
 * excerpts. Pure (no bindings), so the seed script computes the same values as the service.
 */
import type { StoredBlock } from "../db/schema";
import { visibleText } from "./sanitise";

/** Words per minute for reading time; list and related-post excerpt lengths (API.md §5a). */
export const READING = { wordsPerMinute: 200, listExcerptWords: 30, relatedExcerptWords: 20 } as const;

/** The readable text of one stored block (for search, reading time and excerpts). */
function blockText(block: StoredBlock): string {
  const v = block.value as Record<string, string> & { value?: unknown };
  switch (block.type) {
    case "heading":
      return String(block.value);
    case "paragraph":
      return visibleText(String(block.value));
    case "quote":
      return `${visibleText(v.quote_text ?? "")} ${v.attribution ?? ""}`;
    case "code":
      return v.code ?? "";
    case "image":
      return v.caption ?? "";
    case "plant_spotlight":
      return `${v.plant_name ?? ""} ${v.scientific_name ?? ""} ${visibleText(v.description ?? "")}`;
    case "call_to_action":
      return `${v.cta_title ?? ""} ${visibleText(v.cta_description ?? "")}`;
    case "care_tip":
      return `${v.title ?? ""} ${visibleText(v.text ?? "")}`;
    default:
      return "";
  }
}

const words = (text: string) => text.split(/\s+/).filter(Boolean);

/** Plain text of a post for the search index: introduction then every block. */
export function postSearchText(introductionHtml: string, blocks: readonly StoredBlock[]): string {
  return [visibleText(introductionHtml), ...blocks.map(blockText)]
    .join("\n")
    .replace(/[ \t]+/g, " ")
    .trim();
}

/** Minutes to read (at least 1), at READING.wordsPerMinute. */
export function readingTime(searchText: string): number {
  return Math.max(1, Math.ceil(words(searchText).length / READING.wordsPerMinute));
}

/** A plain-text excerpt of at most `maxWords` words: the introduction, else the first paragraphs. */
export function postExcerpt(introductionHtml: string, blocks: readonly StoredBlock[], maxWords: number = READING.listExcerptWords): string {
  const intro = visibleText(introductionHtml);
  const source =
    intro ||
    blocks
      .filter((b) => b.type === "paragraph")
      .map(blockText)
      .join(" ");
  const all = words(source);
  return all.length <= maxWords ? all.join(" ") : `${all.slice(0, maxWords).join(" ")}…`;
}

/** Shortens a stored excerpt further (related posts show ≤ 20 words). */
export function shorterExcerpt(excerpt: string, maxWords: number): string {
  const all = words(excerpt.replace(/…$/, ""));
  return all.length <= maxWords ? excerpt : `${all.slice(0, maxWords).join(" ")}…`;
}
