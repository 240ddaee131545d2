/**
 * A blog post's content blocks (API.md §5, §5a): what an editor may send, how each type is
 * validated and sanitised before it is stored, and how a stored block is shown to readers.
 *
 * - Input is a JSON array of `{type, value, id?}`; each type has its own strict zod schema, so an
 *   unknown type or a value of the wrong shape is a 400 naming the block (`content_blocks.3.value`).
 * - HTML (paragraph, quote text, spotlight description, call-to-action description, care tip text)
 *   goes through the forum's allow-list sanitiser (src/lib/sanitise.ts) and is stored sanitised.
 * - Links (call_to_action.button_url) must be http(s), mailto or a /path on our origin.
 * - Images are photo references (`<sha256>.<ext>`, uploaded first through the editorial API) with
 *   required alt text; the stored block keeps the photo's width and height, read from R2 on save.
 * - plant_spotlight names a catalogue species by id; its names and image are copied from the
 *   catalogue when the post is saved.
 * Stored blocks are exactly the reader's shape except images (stored as references, shown as
 * `{id, url, alt, width, height}` with `url` under `/media/…`).
 */
import { z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { database } from "../db/client";
import { species, type StoredBlock } from "../db/schema";
import type { Bindings } from "../env";
import { AppError, type FieldErrors, fieldErrorsFrom } from "../lib/errors";
import { uuidv7, isUuid } from "../lib/ids";
import { readImageDimensions } from "../lib/images";
import { safeHref, sanitisePostBody } from "../lib/sanitise";
import { READING } from "../lib/blog-text";
export { postExcerpt, postSearchText, readingTime, shorterExcerpt } from "../lib/blog-text";
import { blogLibraryRefs, imageKey, parsePhotoRef } from "./photos";

export const BLOCK_TYPES = ["heading", "paragraph", "quote", "code", "image", "plant_spotlight", "call_to_action", "care_tip"] as const;
export type BlockType = (typeof BLOCK_TYPES)[number];

/** Limits on a post's content (a post over them is a 400, nothing written). */
export const BLOG_LIMITS = {
  maxBlocks: 200,
  maxBlockHtml: 20_000,
  maxCode: 20_000,
  /** Serialised content_blocks, in bytes. */
  maxContentBytes: 200_000,
  ...READING,
} as const;

const html = (max: number = BLOG_LIMITS.maxBlockHtml) => z.string().max(max);
const line = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), "Must not contain control characters.");
const photoRefField = z
  .string()
  .refine((s) => parsePhotoRef(s) !== null, "Must be an uploaded image's id (as returned by POST /api/v1/blog/images/).");
const safeUrl = z
  .string()
  .trim()
  .min(1)
  .max(2000)
  .refine((u) => {
    const href = safeHref(u);
    // A path, not `//host` or `/\host`, which browsers read as another site (backslash as slash).
    return href !== null && (/^(https?:|mailto:)/i.test(href) || /^\/(?![/\\])/.test(href));
  }, "Must be an http(s) or mailto URL, or a /path on this site.");

/** Each block type's value as an editor sends it. */
export const BLOCK_VALUE_SCHEMAS = {
  heading: line(200).min(1),
  paragraph: html(),
  quote: z.strictObject({ quote_text: html(5000), attribution: line(200).default("") }),
  code: z.strictObject({
    code: z.string().max(BLOG_LIMITS.maxCode),
    language: z
      .string()
      .regex(/^[a-z0-9+#.-]{0,30}$/i, "A short language name such as python or ts.")
      .default(""),
  }),
  image: z.strictObject({ image: photoRefField, alt: line(300).min(1, "Alt text is required."), caption: line(300).default("") }),
  plant_spotlight: z.strictObject({
    species_id: z.uuid(),
    description: html(5000).default(""),
    care_difficulty: z.enum(["easy", "moderate", "difficult"]).default("moderate"),
  }),
  call_to_action: z.strictObject({
    cta_title: line(200).min(1),
    cta_description: html(2000).default(""),
    button_text: line(60).min(1),
    button_url: safeUrl,
    button_style: z.enum(["primary", "secondary", "outline"]).default("primary"),
  }),
  care_tip: z.strictObject({ title: line(200).min(1), text: html(5000) }),
} as const satisfies Record<BlockType, z.ZodType>;

/** One block as sent: `id` is kept when it is a UUID (so edits keep block identity), else assigned. */
export const BlockInputSchema = z
  .discriminatedUnion(
    "type",
    BLOCK_TYPES.map((type) =>
      z.strictObject({ type: z.literal(type), value: BLOCK_VALUE_SCHEMAS[type], id: z.string().max(64).optional() }),
    ) as unknown as [z.ZodObject, ...z.ZodObject[]],
  )
  .openapi("BlogBlockInput", {
    description: `A content block: \`{type, value, id?}\` with type one of ${BLOCK_TYPES.join(", ")}.`,
  });
export const BlocksInputSchema = z.array(z.unknown()).max(BLOG_LIMITS.maxBlocks);
export type BlockInput = { type: BlockType; value: unknown; id?: string };

/** The stored value of an image block. */
export interface StoredImageValue {
  image: string;
  alt: string;
  caption: string;
  width: number;
  height: number;
}

/** Where readers fetch a blog image: under `/media/…` on our own origin (routes serve it from R2). */
export function mediaUrl(ref: string): string {
  return `/media/images/${ref}`;
}

/** Width and height of a stored photo, read from the first bytes of its R2 object; null when it is not stored. */
export async function storedImageSize(env: Bindings, ref: string): Promise<{ width: number; height: number } | null> {
  const image = parsePhotoRef(ref);
  if (!image) return null;
  const object = await env.IMAGES.get(imageKey(image), { range: { offset: 0, length: 256 * 1024 } });
  if (!object) return null;
  return readImageDimensions(new Uint8Array(await object.arrayBuffer()), image.type);
}

/**
 * Width and height of a photo in the blog's media library (uploaded with POST /blog/images/);
 * null when it is not one, or no longer stored. Any other stored photo — a user's identification
 * photo whose reference a writer knows — is refused: placing it would show it to every writer,
 * and publishing would show it to everyone.
 */
export async function blogImageSize(env: Bindings, ref: string): Promise<{ width: number; height: number } | null> {
  if (!parsePhotoRef(ref)) return null;
  const [library, size] = await Promise.all([blogLibraryRefs(env, [ref]), storedImageSize(env, ref)]);
  return library.has(ref) ? size : null;
}

/**
 * Validates, sanitises and completes a post's blocks for storage. Problems are collected per
 * block (`content_blocks.<i>…`) and thrown together as one 400; nothing is written.
 */
export async function prepareBlocks(env: Bindings, raw: unknown[]): Promise<StoredBlock[]> {
  const errors: FieldErrors = {};
  const parsed: BlockInput[] = [];
  raw.forEach((item, i) => {
    const type = (item as { type?: unknown } | null)?.type;
    if (typeof type !== "string" || !(BLOCK_TYPES as readonly string[]).includes(type)) {
      errors[`content_blocks.${i}.type`] = [`Unknown block type. Use one of: ${BLOCK_TYPES.join(", ")}.`];
      return;
    }
    const result = BlockInputSchema.safeParse(item);
    if (!result.success) {
      for (const [field, messages] of Object.entries(fieldErrorsFrom(result.error, item, ["content_blocks", i])))
        (errors[field] ??= []).push(...messages);
      return;
    }
    parsed.push(result.data as BlockInput);
  });
  if (Object.keys(errors).length > 0) throw new AppError("VALIDATION_ERROR", 400, "Some content blocks are not valid.", errors);

  const db = database(env);
  const seen = new Set<string>();
  const blocks = await Promise.all(
    parsed.map(async (block, i): Promise<StoredBlock> => {
      const id = block.id && isUuid(block.id) && !seen.has(block.id) ? block.id : uuidv7();
      seen.add(id);
      const v = block.value as Record<string, unknown>;
      switch (block.type) {
        case "heading":
          return { id, type: "heading", value: block.value };
        case "paragraph":
          return { id, type: "paragraph", value: sanitisePostBody(block.value as string) };
        case "quote":
          return { id, type: "quote", value: { quote_text: sanitisePostBody(v.quote_text as string), attribution: v.attribution } };
        case "code":
          return { id, type: "code", value: { code: v.code, language: (v.language as string).toLowerCase() } };
        case "image": {
          const size = await blogImageSize(env, v.image as string);
          if (!size) {
            errors[`content_blocks.${i}.value.image`] = ["No such uploaded image (upload it with POST /api/v1/blog/images/ first)."];
            return { id, type: "image", value: null };
          }
          const value: StoredImageValue = { image: v.image as string, alt: v.alt as string, caption: v.caption as string, ...size };
          return { id, type: "image", value };
        }
        case "plant_spotlight": {
          const row = await db
            .select({
              id: species.id,
              scientificName: species.scientificName,
              commonNames: species.commonNames,
              imageUrl: species.imageUrl,
            })
            .from(species)
            .where(eq(species.id, v.species_id as string))
            .get();
          if (!row) {
            errors[`content_blocks.${i}.value.species_id`] = ["No such species in the catalogue."];
            return { id, type: "plant_spotlight", value: null };
          }
          return {
            id,
            type: "plant_spotlight",
            value: {
              species_id: row.id,
              plant_name: row.commonNames[0] ?? row.scientificName,
              scientific_name: row.scientificName,
              description: sanitisePostBody(v.description as string),
              care_difficulty: v.care_difficulty,
              image:
                row.imageUrl && /^https:\/\//.test(row.imageUrl)
                  ? { url: row.imageUrl, alt: row.commonNames[0] ?? row.scientificName }
                  : null,
            },
          };
        }
        case "call_to_action":
          return {
            id,
            type: "call_to_action",
            value: { ...v, cta_description: sanitisePostBody(v.cta_description as string), button_url: safeHref(v.button_url as string) },
          };
        case "care_tip":
          return { id, type: "care_tip", value: { title: v.title, text: sanitisePostBody(v.text as string) } };
      }
    }),
  );
  if (Object.keys(errors).length > 0) throw new AppError("VALIDATION_ERROR", 400, "Some content blocks are not valid.", errors);
  if (new TextEncoder().encode(JSON.stringify(blocks)).length > BLOG_LIMITS.maxContentBytes) {
    throw new AppError("VALIDATION_ERROR", 400, `The post's content is over ${BLOG_LIMITS.maxContentBytes / 1000} kB.`, {
      content_blocks: [`At most ${BLOG_LIMITS.maxContentBytes / 1000} kB of content.`],
    });
  }
  return blocks;
}

/** A stored block as readers see it (§5a): images become `{id, url, alt, width, height}`. */
export function renderBlock(block: StoredBlock): { type: string; value: unknown; id: string } {
  if (block.type === "image") {
    const v = block.value as StoredImageValue;
    return {
      type: "image",
      id: block.id,
      value: { id: v.image, url: mediaUrl(v.image), alt: v.alt, width: v.width, height: v.height, caption: v.caption },
    };
  }
  if (block.type === "plant_spotlight") {
    const v = block.value as { image: { url: string; alt: string } | null } & Record<string, unknown>;
    return {
      type: block.type,
      id: block.id,
      value: { ...v, image: v.image ? { id: String(v.species_id), url: v.image.url, alt: v.image.alt, width: null, height: null } : null },
    };
  }
  return { type: block.type, id: block.id, value: block.value };
}
