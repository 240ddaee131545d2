/**
 * Identification requests in D1 and their images in R2: creation, idempotent completion,
 * failure, and the read shapes of API.md §2.2. Every multi-row change is one `db.batch`
 * (atomic on D1), and completion is guarded by the request still being `processing`, so a
 * re-delivered queue message can never count or insert anything twice.
 */
import type { Bindings } from "../env";
import { isoIn, JOB_LEASE_MS, STUCK_CONDITION, stuckCutoff } from "../jobs/job-policy";
import { uuidv7 } from "../lib/ids";
import { IMAGE_EXTENSION, IMAGE_MIME, type ImageMime, type ImageType } from "../lib/images";
import type { HealthAssessment } from "../providers/types";
import type { MergedSuggestion } from "./merge";

export type RequestStatus = "pending" | "processing" | "identified" | "needs_help" | "failed";
export const FINAL_STATUSES: readonly RequestStatus[] = ["identified", "needs_help", "failed"];
/** API.md §2.2: `identified` when the best result is at least this confident. */
export const IDENTIFIED_THRESHOLD = 0.5;

export interface StoredImage {
  sha256: string;
  type: ImageType;
}

export function imageKey(image: StoredImage): string {
  return `images/${image.sha256}.${IMAGE_EXTENSION[image.type]}`;
}

export function imageUrl(image: StoredImage): string {
  return `/api/v1/media/${imageKey(image)}`;
}

/** Content-addressed: the same photo uploaded twice is stored once. */
export async function storeImages(env: Bindings, images: { sha256: string; type: ImageType; mime: ImageMime; bytes: Uint8Array }[]) {
  await Promise.all(
    images.map(async (image) => {
      const key = imageKey(image);
      if (await env.IMAGES.head(key)) return;
      await env.IMAGES.put(key, image.bytes, { httpMetadata: { contentType: image.mime }, sha256: image.sha256 });
    }),
  );
}

export interface RequestRow {
  id: string;
  user_id: string | null;
  status: RequestStatus;
  image_hashes: string;
  organs: string;
  latitude: number | null;
  longitude: number | null;
  location: string;
  description: string;
  plant_size: string;
  habitat: string;
  is_shared_with_community: number;
  attempts: number;
  lease_expires_at: string | null;
  requeue_count: number;
  error_message: string | null;
  health: string | null;
  processed_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface NewRequest {
  userId: string;
  images: StoredImage[];
  organs: string[];
  latitude?: number | null;
  longitude?: number | null;
  location?: string;
  description?: string;
  plantSize?: string;
  habitat?: string;
  status: "pending" | "processing";
}

/** Image hashes are stored as "<sha256>.<ext>" so the R2 key and type survive with them. */
export function encodeImages(images: StoredImage[]): string {
  return JSON.stringify(images.map((i) => `${i.sha256}.${IMAGE_EXTENSION[i.type]}`));
}

const EXT_TYPE: Record<string, ImageType> = { jpg: "jpeg", png: "png", webp: "webp" };

export function decodeImages(row: Pick<RequestRow, "image_hashes">): StoredImage[] {
  return (JSON.parse(row.image_hashes) as string[]).map((entry) => {
    const [sha256, ext] = entry.split(".");
    return { sha256: sha256!, type: EXT_TYPE[ext ?? "jpg"] ?? "jpeg" };
  });
}

/** A request's photos from R2, in upload order; null when any of them is gone. */
export async function loadStoredImages(
  env: Bindings,
  row: Pick<RequestRow, "image_hashes">,
): Promise<{ bytes: Uint8Array; mime: ImageMime; sha256: string }[] | null> {
  const stored = decodeImages(row);
  const objects = await Promise.all(stored.map((img) => env.IMAGES.get(imageKey(img))));
  if (objects.some((o) => o === null)) return null;
  return Promise.all(
    objects.map(async (o, i) => ({
      bytes: new Uint8Array(await o!.arrayBuffer()),
      mime: IMAGE_MIME[stored[i]!.type],
      sha256: stored[i]!.sha256,
    })),
  );
}

export async function insertRequest(env: Bindings, input: NewRequest): Promise<RequestRow> {
  const id = uuidv7();
  const row = await env.DB.prepare(
    `INSERT INTO identification_requests
       (id, user_id, status, image_hashes, organs, latitude, longitude, location, description, plant_size, habitat)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     RETURNING *`,
  )
    .bind(
      id,
      input.userId,
      input.status,
      encodeImages(input.images),
      JSON.stringify(input.organs),
      input.latitude ?? null,
      input.longitude ?? null,
      input.location ?? "",
      input.description ?? "",
      input.plantSize ?? "",
      input.habitat ?? "",
    )
    .first<RequestRow>();
  if (!row) throw new Error("insert returned no row");
  return row;
}

export async function getRequest(env: Bindings, id: string): Promise<RequestRow | null> {
  return env.DB.prepare("SELECT * FROM identification_requests WHERE id = ?").bind(id).first<RequestRow>();
}

/**
 * Claims a request for one job run: `pending` → `processing` with a lease of JOB_LEASE_MS (and
 * one more attempt). A request already `processing` is claimed only when its lease has run out
 * (the delivery holding it died); while the lease is live, or once the request is final or
 * deleted, this returns null and the caller acks without work. D1 runs the UPDATE atomically,
 * so of several deliveries of one job (a duplicate, an old message turning up after the sweep
 * re-queued it) exactly one runs it.
 */
export async function claimForProcessing(env: Bindings, id: string, now = Date.now()): Promise<RequestRow | null> {
  return env.DB.prepare(
    `UPDATE identification_requests
        SET status = 'processing', attempts = attempts + 1, lease_expires_at = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
      WHERE id = ? AND (status = 'pending' OR (status = 'processing' AND (lease_expires_at IS NULL OR lease_expires_at <= ?)))
      RETURNING *`,
  )
    .bind(isoIn(JOB_LEASE_MS, now), id, isoIn(0, now))
    .first<RequestRow>();
}

/**
 * Between attempts a request waits in `pending`, never `processing`; its deadline becomes the
 * moment its retry message is deliverable, so the sweep does not take it for lost meanwhile.
 */
export async function releaseRequest(env: Bindings, id: string, delayS: number, message: string | null = null): Promise<void> {
  await env.DB.prepare(
    `UPDATE identification_requests
        SET status = 'pending', error_message = coalesce(?, error_message), lease_expires_at = ?,
            updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
      WHERE id = ? AND status = 'processing'`,
  )
    .bind(message, isoIn(delayS * 1000), id)
    .run();
}

/**
 * The owner's retry/ (API.md §2.2, widened): a `failed` or `needs_help` request, or one whose
 * job was lost — `pending`/`processing` with its deadline passed by the sweep's margin
 * (STUCK_CONDITION), i.e. exactly what the cron sweep would re-queue. A request with a live
 * message or lease is refused (null), so a retry never races a running job. The sweep's
 * re-queue count starts again: this is the owner's explicit (rate-limited) request.
 */
export async function requeueForRetry(env: Bindings, id: string, now = Date.now()): Promise<RequestRow | null> {
  return env.DB.prepare(
    `UPDATE identification_requests
        SET status = 'pending', error_message = NULL, lease_expires_at = ?, requeue_count = 0,
            updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
      WHERE id = ? AND (status IN ('failed', 'needs_help') OR (${STUCK_CONDITION}))
      RETURNING *`,
  )
    .bind(isoIn(0, now), id, stuckCutoff(now))
    .first<RequestRow>();
}

function resultSource(s: MergedSuggestion): "ai_combined" | "ai_plant_id" | "ai_plantnet" {
  if (s.sources.length > 1) return "ai_combined";
  return s.sources[0] === "plantnet" ? "ai_plantnet" : "ai_plant_id";
}

export function finalStatusFor(suggestions: MergedSuggestion[]): "identified" | "needs_help" {
  return (suggestions[0]?.probability ?? 0) >= IDENTIFIED_THRESHOLD ? "identified" : "needs_help";
}

/**
 * Writes the merged suggestions and finishes the request in one atomic batch. Each statement
 * is guarded by the request still being `processing`; the status change comes last, so a
 * second run of the same job finds nothing to do.
 */
export async function completeRequest(
  env: Bindings,
  requestId: string,
  userId: string | null,
  suggestions: MergedSuggestion[],
  health: HealthAssessment | null = null,
): Promise<{ status: "identified" | "needs_help"; written: boolean }> {
  const status = finalStatusFor(suggestions);
  const guard = "EXISTS (SELECT 1 FROM identification_requests WHERE id = ? AND status = 'processing')";
  const db = env.DB;
  const statements: D1PreparedStatement[] = [];

  for (const s of suggestions) {
    // New names join the catalogue unverified; the catalogue's own data is never overwritten.
    statements.push(
      db
        .prepare(
          `INSERT INTO species (id, scientific_name, common_names, family, genus, gbif_id, description, source, is_verified)
           SELECT ?, ?, ?, ?, ?, ?, ?, ?, 0 WHERE ${guard}
           ON CONFLICT DO NOTHING`,
        )
        .bind(
          uuidv7(),
          s.scientific_name,
          JSON.stringify(s.common_names),
          s.family,
          s.genus,
          s.gbif_id ?? null,
          s.description.slice(0, 2000),
          s.sources.join("+"),
          requestId,
        ),
    );
  }
  const top = suggestions[0];
  if (top) {
    statements.push(
      db
        .prepare(`UPDATE species SET identification_count = identification_count + 1 WHERE lower(scientific_name) = lower(?) AND ${guard}`)
        .bind(top.scientific_name, requestId),
    );
  }
  const names = suggestions.map((s) => s.scientific_name.toLowerCase());
  statements.push(
    db
      .prepare(
        `DELETE FROM identification_results
          WHERE request_id = ? AND is_accepted = 0 AND identification_source LIKE 'ai_%'
            AND lower(scientific_name) NOT IN (SELECT value FROM json_each(?)) AND ${guard}`,
      )
      .bind(requestId, JSON.stringify(names), requestId),
  );
  for (const s of suggestions) {
    const details = {
      common_names: s.common_names,
      description: s.description,
      similar_images: s.similar_images,
      sources: s.sources,
      plant_id_probability: s.plant_id_probability ?? null,
      plantnet_score: s.plantnet_score ?? null,
      url: s.url ?? null,
      watering: s.watering ?? null,
      propagation_methods: s.propagation_methods ?? [],
    };
    statements.push(
      db
        .prepare(
          `INSERT INTO identification_results
             (id, request_id, species_id, scientific_name, plant_name, common_names, family, genus, gbif_id,
              confidence_score, identification_source, rank, is_primary, details)
           SELECT ?, ?, (SELECT id FROM species WHERE lower(scientific_name) = lower(?)), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
            WHERE ${guard}
           ON CONFLICT (request_id, lower(scientific_name)) DO UPDATE SET
             confidence_score = excluded.confidence_score, rank = excluded.rank, is_primary = excluded.is_primary,
             identification_source = excluded.identification_source, details = excluded.details`,
        )
        .bind(
          uuidv7(),
          requestId,
          s.scientific_name,
          s.scientific_name,
          s.plant_name,
          JSON.stringify(s.common_names),
          s.family,
          s.genus,
          s.gbif_id ?? null,
          s.probability,
          resultSource(s),
          s.rank,
          s.rank === 1 ? 1 : 0,
          JSON.stringify(details),
          requestId,
        ),
    );
  }
  if (userId && status === "identified") {
    statements.push(
      db.prepare(`UPDATE users SET plants_identified = plants_identified + 1 WHERE id = ? AND ${guard}`).bind(userId, requestId),
    );
  }
  statements.push(
    db
      .prepare(
        `UPDATE identification_requests
            SET status = ?, health = ?, error_message = NULL, processed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
          WHERE id = ? AND status = 'processing'`,
      )
      .bind(status, health ? JSON.stringify(health) : null, requestId),
  );
  const results = await db.batch(statements);
  const written = (results.at(-1)?.meta.changes ?? 0) > 0;
  return { status, written };
}

/** Ends a request as failed (job gave up, or dead-lettered). No-op once it is final. */
export async function failRequest(env: Bindings, requestId: string, message: string): Promise<boolean> {
  const result = await env.DB.prepare(
    `UPDATE identification_requests
        SET status = 'failed', error_message = ?, processed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
            updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
      WHERE id = ? AND status IN ('pending', 'processing')`,
  )
    .bind(message.slice(0, 500), requestId)
    .run();
  return (result.meta.changes ?? 0) > 0;
}

export async function countResults(env: Bindings, requestId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM identification_results WHERE request_id = ?")
    .bind(requestId)
    .first<{ n: number }>();
  return row?.n ?? 0;
}
