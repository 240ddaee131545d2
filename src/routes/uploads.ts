/**
 * Multipart photo uploads shared by identification and disease requests: every `image_N` part
 * validated by lib/images (API.md §2.4) before anything is written, field errors collected so
 * the client sees all that is wrong at once, and one error for the lot.
 */
import type { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { AppError, type FieldErrors, fieldErrorsFrom } from "../lib/errors";
import { NO_IMAGE_MESSAGE, UPLOAD_RULES, validateImageUpload, type ValidatedImage } from "../lib/images";

export const MAX_IMAGES = 5;

/** The form of a multipart request; 400 for another content type or a body that does not parse. */
export async function readMultipartForm(c: Context<AppEnv>): Promise<FormData> {
  if (!(c.req.header("Content-Type") ?? "").toLowerCase().startsWith("multipart/form-data")) {
    throw new AppError("VALIDATION_ERROR", 400, "Upload the photo as multipart/form-data.", { image_1: ["This field is required."] });
  }
  try {
    return await c.req.formData();
  } catch {
    throw new AppError("MALFORMED_REQUEST", 400, "Malformed multipart body.");
  }
}

/** Validates `image_1` (required unless `required` is false) … `image_N`; problems go into `fieldErrors`. */
export async function readImageParts(
  form: FormData,
  fieldErrors: FieldErrors,
  max = MAX_IMAGES,
  required = true,
): Promise<ValidatedImage[]> {
  const images: ValidatedImage[] = [];
  for (let i = 1; i <= max; i++) {
    const file = form.get(`image_${i}`);
    if (file === null) continue;
    if (!(file instanceof File)) {
      fieldErrors[`image_${i}`] = ["Expected a file."];
      continue;
    }
    const result = await validateImageUpload(
      { bytes: new Uint8Array(await file.arrayBuffer()), declaredType: file.type, filename: file.name },
      UPLOAD_RULES,
    );
    if (result.ok) images.push(result.image);
    else fieldErrors[`image_${i}`] = [result.message];
  }
  // A file under any other name (`image`, as identify/ and plants/ take it, or `image_6` past the
  // limit) would be dropped without a word, and the answer would say no photo was sent.
  const names = new Set(Array.from({ length: max }, (_, i) => `image_${i + 1}`));
  for (const [name, value] of form.entries()) {
    if (value instanceof File && !names.has(name) && !fieldErrors[name]) {
      fieldErrors[name] = [`Photos go in the fields image_1 … image_${max}; "${name}" is not one.`];
    }
  }
  if (required && !form.get("image_1") && !fieldErrors.image_1) fieldErrors.image_1 = [NO_IMAGE_MESSAGE];
  return images;
}

/** The text parts of the form (everything but the images), for a zod schema. */
export function textFields(form: FormData): Record<string, string> {
  return Object.fromEntries(
    [...form.entries()].filter((e): e is [string, string] => !e[0].startsWith("image_") && typeof e[1] === "string"),
  );
}

/** 413 FILE_TOO_LARGE when any image was too big, else 400 VALIDATION_ERROR; the first message leads. */
export function throwIfFieldErrors(fieldErrors: FieldErrors): void {
  if (Object.keys(fieldErrors).length === 0) return;
  const first = Object.values(fieldErrors)[0]![0]!;
  const tooLarge = Object.values(fieldErrors)
    .flat()
    .some((m) => m.startsWith("File too large"));
  throw new AppError(tooLarge ? "FILE_TOO_LARGE" : "VALIDATION_ERROR", tooLarge ? 413 : 400, first, fieldErrors);
}

/** `input` checked by `schema`: its data, or undefined with the problems added to `fieldErrors`. */
export function parseFields<T extends z.ZodType>(schema: T, input: unknown, fieldErrors: FieldErrors): z.infer<T> | undefined {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  for (const [field, messages] of Object.entries(fieldErrorsFrom(parsed.error, input))) (fieldErrors[field] ??= []).push(...messages);
  return undefined;
}

/** A JSON body checked by `schema`: 400 MALFORMED_REQUEST when it does not parse, 400 VALIDATION_ERROR when it does not fit. */
export async function readJsonFields<T extends z.ZodType>(c: Context<AppEnv>, schema: T, malformed: string): Promise<z.infer<T>> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new AppError("MALFORMED_REQUEST", 400, malformed);
  }
  const fieldErrors: FieldErrors = {};
  const fields = parseFields(schema, raw, fieldErrors);
  if (fields === undefined) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", fieldErrors);
  return fields;
}

/** A multipart request's photos and text fields, every problem collected into `fieldErrors` (nothing thrown yet). */
export async function readPhotoForm<T extends z.ZodType>(c: Context<AppEnv>, schema: T, fieldErrors: FieldErrors, max = MAX_IMAGES) {
  const form = await readMultipartForm(c);
  const images = await readImageParts(form, fieldErrors, max);
  return { images, fields: parseFields(schema, textFields(form), fieldErrors) };
}
