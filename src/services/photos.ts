/**
 * The photo store. Every photo — of an identification or diagnosis request, a plant, a forum
 * post, an avatar — is kept once in R2, content-addressed, and referred to by one form: its
 * reference `<sha256>.<ext>` (`PhotoRef`), the R2 key being `images/<ref>`. Photos are shared
 * (the same picture may belong to rows of any user), so one is deleted only when no row refers
 * to it any more; which rows can refer to a photo is the declared list PHOTO_REFERENCES below.
 */
import { type SQL, sql } from "drizzle-orm";
import { changes, database, inList, runBatch } from "../db/client";
import { getConfig } from "../config";
import {
  blogImages,
  blogPosts,
  blogRevisions,
  blogSeries,
  diseaseRequests,
  forumAttachments,
  identificationRequests,
  userPlants,
  userPhotoBytes,
  users,
} from "../db/schema";
import type { Bindings } from "../env";
import { METADATA_STRIP_VERSION, MetadataStripError, withoutLocationMetadata } from "../lib/image-metadata";
import { IMAGE_EXTENSION, IMAGE_MIME, type ImageMime, type ImageType } from "../lib/images";
import { AppError } from "../lib/errors";
import { describeError, type Logger } from "../lib/logger";

/** A stored photo: its content hash and image type. */
export interface StoredImage {
  sha256: string;
  type: ImageType;
}

/** A photo with its bytes, as an upload or a load gives it. */
export interface PhotoBytes extends StoredImage {
  mime: ImageMime;
  bytes: Uint8Array;
}

const REF_RE = /^([0-9a-f]{64})\.(jpg|png|webp)$/;
const EXT_TYPE: Record<string, ImageType> = { jpg: "jpeg", png: "png", webp: "webp" };

/** The stored reference form of a photo: `<sha256>.<ext>`. */
export function photoRef(image: StoredImage): string {
  return `${image.sha256}.${IMAGE_EXTENSION[image.type]}`;
}

/** The photo a stored reference names, or null for anything that is not one. */
export function parsePhotoRef(ref: string): StoredImage | null {
  const match = REF_RE.exec(ref);
  return match ? { sha256: match[1]!, type: EXT_TYPE[match[2]!]! } : null;
}

/** The photos of a list of references (entries that are not references are skipped). */
export function photosOf(refs: readonly string[]): StoredImage[] {
  return refs.map(parsePhotoRef).filter((p): p is StoredImage => p !== null);
}

/** The R2 key of a photo. */
export function imageKey(image: StoredImage): string {
  return `images/${photoRef(image)}`;
}

/** Where clients fetch a photo (routes/media.ts serves it). */
export function imageUrl(image: StoredImage): string {
  return `/api/v1/media/${imageKey(image)}`;
}

/**
 * The R2 custom metadata key that records which version of the metadata stripping
 * (lib/image-metadata.ts `METADATA_STRIP_VERSION`) cleaned an object. An object without the
 * current one — stored before the stripping existed, or before it learnt to remove something —
 * is cleaned when served (`servablePhoto`).
 */
const STRIPPED_BY = "metadata-stripped";
const CLEAN_MARK = { [STRIPPED_BY]: String(METADATA_STRIP_VERSION) };

const isClean = (object: R2Object) => object.customMetadata?.[STRIPPED_BY] === CLEAN_MARK[STRIPPED_BY];

/**
 * Content-addressed: the same photo uploaded twice is stored once. Uploads arrive stripped
 * (lib/images.ts), so each object is stored with the mark of the stripping that cleaned it; an
 * object already there without it holds these same bytes (its key is their hash) and is written
 * again with the mark.
 */
export async function storeImages(env: Bindings, images: readonly (StoredImage & { mime: ImageMime; bytes: Uint8Array })[]) {
  await Promise.all(
    images.map(async (image) => {
      const key = imageKey(image);
      const existing = await env.IMAGES.head(key);
      if (existing && isClean(existing)) return;
      await env.IMAGES.put(key, image.bytes, {
        httpMetadata: { contentType: image.mime },
        customMetadata: CLEAN_MARK,
        sha256: image.sha256,
      });
    }),
  );
}

/**
 * Adds a photo to the blog's media library (stored, then its `blog_images` row; an upload whose
 * row cannot be written is released again). The same picture uploaded twice is one entry. The
 * row goes when the photo is released (`releasePhotos`).
 */
export async function storeBlogImage(env: Bindings, image: PhotoBytes, uploadedBy: string): Promise<string> {
  const ref = photoRef(image);
  await withStoredPhotos(env, null, [image], () =>
    database(env).insert(blogImages).values({ ref, uploadedBy }).onConflictDoNothing({ target: blogImages.ref }),
  );
  return ref;
}

/** Those of `refs` that are in the blog's media library. */
export async function blogLibraryRefs(env: Bindings, refs: readonly string[]): Promise<Set<string>> {
  if (refs.length === 0) return new Set();
  const rows = await database(env)
    .select({ ref: blogImages.ref })
    .from(blogImages)
    .where(inList(blogImages.ref, [...new Set(refs)]));
  return new Set(rows.map((r) => r.ref));
}

/**
 * Photos from R2, in the given order, for the identification services; null when any of them is
 * gone. One stored before the current metadata stripping is stripped on the way (not written
 * back: serving does that); should its bytes not parse, they go as stored — the services accepted
 * them at upload, and these bytes never reach another user.
 */
export async function loadPhotos(
  env: Bindings,
  images: readonly StoredImage[],
): Promise<{ bytes: Uint8Array; mime: ImageMime; sha256: string }[] | null> {
  const objects = await Promise.all(images.map((img) => env.IMAGES.get(imageKey(img))));
  if (objects.some((o) => o === null)) return null;
  return Promise.all(
    objects.map(async (o, i) => {
      const bytes = new Uint8Array(await o!.arrayBuffer());
      const image = images[i]!;
      return {
        bytes: isClean(o!) ? bytes : (stripped(bytes, image.type) ?? bytes),
        mime: IMAGE_MIME[image.type],
        sha256: image.sha256,
      };
    }),
  );
}

/** `bytes` without location metadata (lib/image-metadata.ts), or null when they do not parse as `type`. */
function stripped(bytes: Uint8Array, type: ImageType): Uint8Array | null {
  try {
    return withoutLocationMetadata(bytes, type);
  } catch (err) {
    if (err instanceof MetadataStripError) return null;
    throw err;
  }
}

/**
 * Every column that can refer to a photo, and how: `ref` holds one reference, `refs` a JSON
 * array of them, `json` a JSON document any of whose string leaves may be one (a post's blocks;
 * a revision's snapshot, so a restored revision still finds its images). A new feature that keeps photos adds its column here, and the store keeps its
 * photos while its rows refer to them. `owner` is whose storage allowance its photos count
 * toward (`userPhotoRefs`); the blog's are nobody's (null).
 */
export const PHOTO_REFERENCES = [
  { table: identificationRequests, column: identificationRequests.imageHashes, form: "refs", owner: identificationRequests.userId },
  { table: diseaseRequests, column: diseaseRequests.imageHashes, form: "refs", owner: diseaseRequests.userId },
  { table: userPlants, column: userPlants.imageKey, form: "ref", owner: userPlants.userId },
  {
    table: forumAttachments,
    column: forumAttachments.image,
    form: "ref",
    owner: sql`(SELECT fp.author_id FROM forum_posts fp WHERE fp.id = ${forumAttachments.postId})`,
  },
  { table: users, column: users.avatarKey, form: "ref", owner: users.id },
  { table: blogPosts, column: blogPosts.featuredImage, form: "ref", owner: null },
  { table: blogPosts, column: blogPosts.contentBlocks, form: "json", owner: null },
  { table: blogRevisions, column: blogRevisions.snapshot, form: "json", owner: null },
  { table: blogSeries, column: blogSeries.coverImage, form: "ref", owner: null },
] as const;

/** SELECTs per compound query (D1 refused nine). */
const COMPOUND_TERMS = 5;

/**
 * JSON keys under which a post's blocks or a revision's snapshot hold a photo (an image block's
 * `image`, a snapshot's `featured_image`): text elsewhere that happens to spell a reference — a
 * code block, a heading — neither keeps a photo nor shows it.
 */
const PHOTO_KEYS = sql`('image', 'featured_image')`;

/**
 * Those of `images` that some row in PHOTO_REFERENCES still refers to — or, unless
 * `libraryIsReference` is false, that the blog's media library holds.
 */
async function referencedPhotos(env: Bindings, images: readonly StoredImage[], libraryIsReference: boolean): Promise<Set<string>> {
  const wanted = JSON.stringify(images.map(photoRef));
  // json_each is the point: one UNION over the declared columns, each matched against the wanted list.
  const parts = PHOTO_REFERENCES.map(({ table, column, form }) =>
    form === "refs"
      ? sql`SELECT j.value AS ref FROM ${table}, json_each(${column}) j WHERE j.value IN (SELECT value FROM json_each(${wanted}))`
      : form === "json"
        ? sql`SELECT j.value AS ref FROM ${table}, json_tree(${column}) j
              WHERE j.type = 'text' AND j.key IN ${PHOTO_KEYS} AND j.value IN (SELECT value FROM json_each(${wanted}))`
        : sql`SELECT ${column} AS ref FROM ${table} WHERE ${column} IN (SELECT value FROM json_each(${wanted}))`,
  );
  if (libraryIsReference) parts.push(sql`SELECT ref FROM blog_images WHERE ref IN (SELECT value FROM json_each(${wanted}))`);
  // D1 allows few terms in one compound SELECT, so the UNIONs go in groups, all in one round trip.
  const groups: SQL[] = [];
  for (let i = 0; i < parts.length; i += COMPOUND_TERMS) groups.push(sql.join(parts.slice(i, i + COMPOUND_TERMS), sql` UNION `));
  const results = (await runBatch(database(env), groups)) as { results: { ref: string }[] }[];
  return new Set(results.flatMap((r) => r.results.map((row) => row.ref)));
}

/**
 * Deletes those of `images` that nothing refers to any more (photos are shared: only the last
 * reference frees one). The blog's media library counts as a reference except for the blog's own
 * releases (`fromBlog`: a post, revision or series letting a photo go), so a photo leaves the
 * library with the last post, revision or series that showed it, and an upload not yet placed
 * stays when someone else drops the same picture (an avatar, say).
 */
export async function releasePhotos(
  env: Bindings,
  images: readonly (StoredImage | null)[],
  opts: { fromBlog?: boolean } = {},
): Promise<void> {
  const candidates = images.filter((img): img is StoredImage => img !== null);
  if (candidates.length === 0) return;
  const used = await referencedPhotos(env, candidates, !opts.fromBlog);
  const unused = candidates.filter((img) => !used.has(photoRef(img)));
  if (unused.length === 0) return;
  const refs = [...new Set(unused.map(photoRef))];
  if (opts.fromBlog) await database(env).delete(blogImages).where(inList(blogImages.ref, refs));
  const keys = [...new Set(unused.flatMap((img) => [imageKey(img), LEGACY_AVATAR_PREFIX + photoRef(img)]))];
  for (let i = 0; i < keys.length; i += R2_DELETE_MAX_KEYS) await env.IMAGES.delete(keys.slice(i, i + R2_DELETE_MAX_KEYS));
}

/**
 * The most keys R2 deletes in one call (R2's Workers API; S3's DeleteObjects has the same bound).
 * The local bucket takes more, so only a deployed one would refuse a post that let go of over 500
 * photos, two keys each.
 */
export const R2_DELETE_MAX_KEYS = 1000;

/** `releasePhotos` for stored references (null and non-references are skipped). */
export function releasePhotoRefs(env: Bindings, refs: readonly (string | null)[], opts: { fromBlog?: boolean } = {}): Promise<void> {
  return releasePhotos(env, photosOf(refs.filter((r): r is string => r !== null)), opts);
}

/**
 * Charges `owner`'s storage allowance for `images` (when given), stores them, then runs `write`
 * (the rows that refer to them); if the write fails, the upload is undone — the photos are
 * released again and their charge dropped, so a failed request leaves nothing behind. `owner`
 * null: not charged to a user (the blog's media library, uploaded by its writers).
 */
export async function withStoredPhotos<T>(
  env: Bindings,
  owner: string | null,
  images: readonly (StoredImage & { mime: ImageMime; bytes: Uint8Array })[],
  write: () => Promise<T>,
): Promise<T> {
  if (owner) await chargeStorage(env, owner, images);
  await storeImages(env, images);
  try {
    const written = await write();
    if (owner) await settleCharges(env, owner, images.map(photoRef));
    return written;
  } catch (err) {
    await releasePhotos(env, images).catch(() => {});
    if (owner) await pruneCharges(env, owner, 0, images.map(photoRef)).catch(() => {});
    throw err;
  }
}

/**
 * How long a pending charge stays without a row referring to its photo (seconds): an upload is
 * charged before its row is written, so a charge pending for less than this is an upload still
 * on its way (one whose worker died keeps its charge this long). Once written, it is settled.
 */
const CHARGE_GRACE_S = 15 * 60;

const nowS = () => Math.floor(Date.now() / 1000);

/**
 * The photos `userId`'s rows refer to, as one compound SELECT of `ref`s: the columns of
 * PHOTO_REFERENCES that have an owner (the blog's are not charged), so a new column declared there
 * with its owner is counted too.
 */
function userPhotoRefs(userId: string): SQL {
  const parts = PHOTO_REFERENCES.flatMap(({ table, column, form, owner }) => {
    // Owned columns hold `ref` or `refs` (an owned `json` one would need json_tree, as referencedPhotos).
    if (owner === null) return [];
    if (form === "refs") return [sql`SELECT j.value FROM ${table}, json_each(${column}) j WHERE ${owner} = ${userId}`];
    return [sql`SELECT ${column} FROM ${table} WHERE ${owner} = ${userId} AND ${column} IS NOT NULL`];
  });
  return sql.join(parts, sql` UNION `);
}

const refsIn = (refs: readonly string[]) => sql`ref IN (SELECT value FROM json_each(${JSON.stringify(refs)}))`;

/**
 * Drops `userId`'s charges for photos their rows no longer refer to: settled ones, and pending
 * ones older than `graceS` seconds (only those of `refs` when given). A deleted request, plant,
 * post or replaced avatar frees its photos' bytes here, when the allowance is next counted.
 */
function pruneCharges(env: Bindings, userId: string, graceS: number, refs?: readonly string[]) {
  return database(env).run(
    sql`DELETE FROM ${userPhotoBytes} WHERE user_id = ${userId}
        AND (pending_since IS NULL OR pending_since <= ${nowS() - graceS})${refs ? sql` AND ${refsIn(refs)}` : sql``}
        AND ref NOT IN (${userPhotoRefs(userId)})`,
  );
}

/** Marks `userId`'s charges for `refs` settled: their rows are written. */
function settleCharges(env: Bindings, userId: string, refs: readonly string[]) {
  return database(env).run(sql`UPDATE ${userPhotoBytes} SET pending_since = NULL WHERE user_id = ${userId} AND ${refsIn(refs)}`);
}

/**
 * The photo bytes `userId` keeps (their charges, after dropping those of photos no longer
 * referred to) and their allowance (USER_STORAGE_BYTES).
 */
export async function storageUsage(env: Bindings, userId: string): Promise<{ usedBytes: number; limitBytes: number }> {
  await pruneCharges(env, userId, CHARGE_GRACE_S);
  const row = await database(env).get<{ used: number }>(
    sql`SELECT coalesce(sum(bytes), 0) AS used FROM ${userPhotoBytes} WHERE user_id = ${userId}`,
  );
  return { usedBytes: row?.used ?? 0, limitBytes: getConfig(env).USER_STORAGE_BYTES };
}

/** Bytes as a person reads them (1024-based, as the file-size messages count them). */
function readableBytes(bytes: number): string {
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

/**
 * Charges `userId` for those of `images` not already charged to them, or refuses (413
 * STORAGE_FULL) when that would take them over USER_STORAGE_BYTES. One statement: the check and
 * the charge cannot be split by a concurrent upload. A photo the user already keeps costs nothing
 * more (its charge is pending again, so a row about to refer to it keeps it).
 */
async function chargeStorage(env: Bindings, userId: string, images: readonly (StoredImage & { bytes: Uint8Array })[]) {
  if (images.length === 0) return;
  const sizes = new Map(images.map((img) => [photoRef(img), img.bytes.byteLength]));
  const wanted = JSON.stringify([...sizes]);
  const limit = getConfig(env).USER_STORAGE_BYTES;
  const charge = () =>
    database(env).run(
      sql`INSERT INTO ${userPhotoBytes} (user_id, ref, bytes, pending_since)
          SELECT ${userId}, j.value ->> 0, j.value ->> 1, ${nowS()} FROM json_each(${wanted}) j
          WHERE (SELECT coalesce(sum(bytes), 0) FROM ${userPhotoBytes} WHERE user_id = ${userId})
              + (SELECT coalesce(sum(n.value ->> 1), 0) FROM json_each(${wanted}) n
                 WHERE NOT EXISTS (SELECT 1 FROM ${userPhotoBytes} e WHERE e.user_id = ${userId} AND e.ref = n.value ->> 0))
              <= ${limit}
          ON CONFLICT (user_id, ref) DO UPDATE SET pending_since = excluded.pending_since`,
    );
  if (changes(await charge()) > 0) return;
  // Refused: perhaps only for charges whose rows are gone; drop those and ask once more.
  await pruneCharges(env, userId, CHARGE_GRACE_S);
  if (changes(await charge()) > 0) return;
  const { usedBytes } = await storageUsage(env, userId);
  throw new AppError(
    "STORAGE_FULL",
    413,
    `Your photos take ${readableBytes(usedBytes)} of the ${readableBytes(limit)} your account may keep; this upload would go over. Delete some photos first.`,
  );
}

/**
 * Avatars stored before migration 0013 live under this R2 prefix (their rows now hold plain
 * references); they are served and released there too.
 */
const LEGACY_AVATAR_PREFIX = "avatars/";

/**
 * Who may fetch a photo: anyone (it is on show somewhere), anyone but kept by no shared cache
 * (`profile`: on show only as the avatar of a public profile, which its owner may make private at
 * any moment), this viewer only, or nobody (404).
 */
export type PhotoAccess = "public" | "profile" | "private" | null;

/** Who is asking, as photo access needs it (the roles' meaning stays with their services). */
export interface PhotoViewer {
  id: string;
  /** May write for the blog (services/blog-posts.ts `isWriter`). */
  blogWriter: boolean;
  /** Staff (services/users.ts `STAFF_ROLES`): may see any photo. */
  staff: boolean;
}

/**
 * Whether `ref` may be served to `viewer`. A photo's URL names its content hash, which anyone
 * who once saw it keeps; what decides is where the photo is on show *now*:
 * - **public** while a row shows it to everyone: a shared identification request or a plant in
 *   a public collection (of an active account with a public profile), a live forum post's attachment,
 *   a published blog post (featured, or an image block's photo from the blog's library — never text that
 *   merely spells a reference), a series cover;
 * - **profile** while it is only the avatar of a public profile (as users.ts `byline` shows it:
 *   a profile that is not public shows no avatar anywhere);
 * - **private** to whoever owns a row that holds it (their requests, disease requests, plants,
 *   forum attachments, their avatar), to staff, and to blog writers for the blog's own photos (its media
 *   library, `blog_images`: a draft's, a revision's, one uploaded and not yet placed);
 * - otherwise nobody: unsharing a request, making a collection or profile private or deleting
 *   a post stops its photos being served to others from the next request on.
 * One D1 round trip.
 */
export async function photoAccess(env: Bindings, ref: string, viewer?: PhotoViewer): Promise<PhotoAccess> {
  const image = parsePhotoRef(ref);
  if (!image) return null;
  const r = photoRef(image);
  const writer = viewer?.blogWriter === true;
  // Each column by its index (migration 0028); JSON lists are searched as text first, so only a
  // row that holds the reference is parsed. An anonymous request asks only the first question.
  // `key`: only a string under that member name counts (an image block's `image`, not any text).
  const inJson = (column: SQL, key?: string) =>
    sql`instr(${column}, ${r}) > 0 AND EXISTS (SELECT 1 FROM json_tree(${column}) j
          WHERE j.type = 'text' AND j.value = ${r}${key ? sql` AND j.key = ${key}` : sql``})`;
  const avatar = sql`EXISTS (SELECT 1 FROM users u WHERE u.avatar_key = ${r} AND u.profile_visibility = 'public')`;
  const shown = sql`(
       EXISTS (SELECT 1 FROM forum_attachments a JOIN forum_posts fp ON fp.id = a.post_id WHERE a.image = ${r} AND fp.is_deleted = 0)
    OR EXISTS (SELECT 1 FROM user_plants p JOIN collections c ON c.id = p.collection_id JOIN users u ON u.id = p.user_id
               WHERE p.image_key = ${r} AND c.is_public = 1 AND u.is_active = 1 AND u.profile_visibility = 'public')
    OR EXISTS (SELECT 1 FROM blog_series s WHERE s.cover_image = ${r})
    OR EXISTS (SELECT 1 FROM blog_posts b WHERE b.status = 'published' AND b.featured_image = ${r})
    OR EXISTS (SELECT 1 FROM identification_requests q JOIN users u ON u.id = q.user_id
               WHERE q.is_shared_with_community = 1 AND u.is_active = 1 AND ${inJson(sql`q.image_hashes`)})
    OR (EXISTS (SELECT 1 FROM blog_images bi WHERE bi.ref = ${r})
        AND EXISTS (SELECT 1 FROM blog_posts b WHERE b.status = 'published' AND ${inJson(sql`b.content_blocks`, "image")})))`;
  const mine = viewer
    ? sql`(
       EXISTS (SELECT 1 FROM identification_requests q WHERE q.user_id = ${viewer.id} AND ${inJson(sql`q.image_hashes`)})
    OR EXISTS (SELECT 1 FROM disease_requests d WHERE d.user_id = ${viewer.id} AND ${inJson(sql`d.image_hashes`)})
    OR EXISTS (SELECT 1 FROM user_plants p WHERE p.user_id = ${viewer.id} AND p.image_key = ${r})
    OR EXISTS (SELECT 1 FROM forum_attachments a JOIN forum_posts fp ON fp.id = a.post_id WHERE a.image = ${r} AND fp.author_id = ${viewer.id})
    OR EXISTS (SELECT 1 FROM users u WHERE u.id = ${viewer.id} AND u.avatar_key = ${r}))`
    : sql`0`;
  // Every photo a post, a revision or a series can hold is in the blog's media library.
  const blog = writer ? sql`EXISTS (SELECT 1 FROM blog_images bi WHERE bi.ref = ${r})` : sql`0`;
  const [row] = await database(env).all<{ public: number; avatar: number; mine: number; blog: number }>(
    sql`SELECT ${shown} AS public, ${avatar} AS avatar, ${mine} AS mine, ${blog} AS blog`,
  );
  if (row?.public) return "public";
  if (row?.avatar) return "profile";
  if (!viewer) return null;
  return row?.mine || row?.blog || viewer.staff ? "private" : null;
}

/** A stored photo's object as found: its key (`images/…` or the legacy avatars prefix) and type. */
export interface FoundPhoto {
  key: string;
  type: ImageType;
  object: R2ObjectBody;
}

/** A stored photo's object, for serving it; null when it is not a photo reference or is gone. */
export async function photoObject(env: Bindings, ref: string): Promise<FoundPhoto | null> {
  const image = parsePhotoRef(ref);
  if (!image) return null;
  for (const key of [imageKey(image), LEGACY_AVATAR_PREFIX + photoRef(image)]) {
    const object = await env.IMAGES.get(key);
    if (object) return { key, type: image.type, object };
  }
  return null;
}

/**
 * A found photo's bytes as they may leave: as stored when the current stripping cleaned them;
 * otherwise (stored before it, with EXIF GPS, XMP, C2PA…) stripped now, and written back under
 * the same key with the mark so it happens once. Keys stay as they are: references in rows and
 * JSON name them, and a key no longer being its bytes' hash harms nothing (keys are names, the
 * bytes are never checked against them). The write-back is conditional on the object being the
 * one read (a photo released meanwhile is not brought back; concurrent serves write the same
 * bytes, the first wins); when it fails the answer is still the stripped bytes, without an ETag,
 * and the next serve tries again. `httpEtag` is the cleaned object's, never the old one's: a
 * browser holding the unstripped copy revalidates with the old ETag and gets the clean bytes.
 * Null when the stored bytes cannot be read as their type (so cannot be cleaned): not served.
 */
export async function servablePhoto(
  env: Bindings,
  found: FoundPhoto,
  logger?: Logger,
): Promise<{ body: ReadableStream | Uint8Array; httpEtag: string | null } | null> {
  const { object } = found;
  if (isClean(object)) return { body: object.body, httpEtag: object.httpEtag };
  const clean = stripped(new Uint8Array(await object.arrayBuffer()), found.type);
  if (!clean) {
    logger?.error("stored photo does not parse as its type, so cannot be cleaned of its metadata; not served", { key: found.key });
    return null;
  }
  const written = await env.IMAGES.put(found.key, clean, {
    httpMetadata: object.httpMetadata,
    customMetadata: { ...object.customMetadata, ...CLEAN_MARK },
    onlyIf: { etagMatches: object.etag },
  }).catch((err: unknown) => {
    logger?.warn("cleaned photo not written back; served clean", { key: found.key, ...describeError(err) });
    return null;
  });
  return { body: clean, httpEtag: written?.httpEtag ?? null };
}
