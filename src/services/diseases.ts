/**
 * Disease requests (API.md §4): a diagnosis of a plant's health from photos, stored in D1
 * (`disease_requests`, `disease_results`) with the photos in R2 exactly as identification
 * requests keep theirs. Completion is one `db.batch` whose every statement is guarded by the
 * request still being `processing`, with results upserted per (request, lower(name)), so a
 * re-delivered job never writes twice. The disease database is read from confirmed results.
 */
import type { Bindings } from "../env";
import { isoIn, JOB_LEASE_MS } from "../jobs/job-policy";
import { uuidv7 } from "../lib/ids";
import type { DiseaseSuggestion, HealthAssessment, TreatmentPlan } from "../providers/types";
import { encodeImages, type RequestStatus, type StoredImage } from "./requests";

export const PLANT_CONDITIONS = ["mild", "moderate", "severe", "dying"] as const;
export type PlantCondition = (typeof PLANT_CONDITIONS)[number];

export const DISEASE_TYPES = ["fungal", "bacterial", "viral", "oomycete", "pest", "abiotic", "other"] as const;
export type DiseaseType = (typeof DISEASE_TYPES)[number];

/** A diagnosis is "made" (`identified`) when the best suggestion is at least this likely. */
export const DIAGNOSED_THRESHOLD = 0.5;
/** Plant.id returns a handful of suggestions; more than this is noise for the owner. */
const MAX_RESULTS = 10;

export interface DiseaseRequestRow {
  id: string;
  user_id: string;
  status: RequestStatus;
  image_hashes: string;
  symptoms_description: string;
  plant_condition: PlantCondition | null;
  location: string;
  is_plant: number | null;
  is_healthy: number | null;
  is_healthy_probability: number | null;
  attempts: number;
  lease_expires_at: string | null;
  requeue_count: number;
  error_message: string | null;
  processed_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface DiseaseResultRow {
  id: string;
  request_id: string;
  entity_id: string | null;
  name: string;
  common_names: string;
  probability: number;
  description: string;
  treatment: string;
  classification: string;
  disease_type: DiseaseType;
  cause: string | null;
  url: string | null;
  similar_images: string;
  rank: number;
  is_confirmed: number;
  confirmed_at: string | null;
  created_at: string;
}

const NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

export async function insertDiseaseRequest(
  env: Bindings,
  input: { userId: string; images: StoredImage[]; symptoms: string; plantCondition: PlantCondition | null; location: string },
): Promise<DiseaseRequestRow> {
  const row = await env.DB.prepare(
    `INSERT INTO disease_requests (id, user_id, status, image_hashes, symptoms_description, plant_condition, location)
     VALUES (?, ?, 'pending', ?, ?, ?, ?)
     RETURNING *`,
  )
    .bind(uuidv7(), input.userId, encodeImages(input.images), input.symptoms, input.plantCondition, input.location)
    .first<DiseaseRequestRow>();
  if (!row) throw new Error("insert returned no row");
  return row;
}

export function getDiseaseRequest(env: Bindings, id: string): Promise<DiseaseRequestRow | null> {
  return env.DB.prepare("SELECT * FROM disease_requests WHERE id = ?").bind(id).first<DiseaseRequestRow>();
}

/**
 * pending → processing with a lease (one more attempt); a `processing` request only once its
 * lease ran out. Null when another delivery holds a live lease, or the request is final or
 * deleted: the caller acks without work. Same rules as identification's claimForProcessing.
 */
export function claimDiseaseRequest(env: Bindings, id: string, now = Date.now()): Promise<DiseaseRequestRow | null> {
  return env.DB.prepare(
    `UPDATE disease_requests SET status = 'processing', attempts = attempts + 1, lease_expires_at = ?, updated_at = ${NOW}
      WHERE id = ? AND (status = 'pending' OR (status = 'processing' AND (lease_expires_at IS NULL OR lease_expires_at <= ?)))
      RETURNING *`,
  )
    .bind(isoIn(JOB_LEASE_MS, now), id, isoIn(0, now))
    .first<DiseaseRequestRow>();
}

/**
 * Between attempts a request waits in `pending`, never `processing`, with the moment its retry
 * message becomes deliverable as its deadline (so the sweep does not take it for lost).
 */
export async function releaseDiseaseRequest(env: Bindings, id: string, delayS: number, message: string | null = null): Promise<void> {
  await env.DB.prepare(
    `UPDATE disease_requests SET status = 'pending', error_message = coalesce(?, error_message), lease_expires_at = ?, updated_at = ${NOW}
      WHERE id = ? AND status = 'processing'`,
  )
    .bind(message, isoIn(delayS * 1000), id)
    .run();
}

/** Ends a request as failed. No-op (false) once it is final. */
export async function failDiseaseRequest(env: Bindings, id: string, message: string): Promise<boolean> {
  const result = await env.DB.prepare(
    `UPDATE disease_requests SET status = 'failed', error_message = ?, processed_at = ${NOW}, updated_at = ${NOW}
      WHERE id = ? AND status IN ('pending', 'processing')`,
  )
    .bind(message.slice(0, 500), id)
    .run();
  return (result.meta.changes ?? 0) > 0;
}

/** Plant.id classifies from general to specific ("Fungi", "Ascomycota", …); the kingdom decides. */
export function diseaseTypeOf(classification: string[]): DiseaseType {
  const levels = classification.map((c) => c.trim().toLowerCase());
  const has = (...names: string[]) => levels.some((l) => names.includes(l));
  if (has("oomycota", "oomycetes", "chromista")) return "oomycete";
  if (has("fungi")) return "fungal";
  if (has("bacteria")) return "bacterial";
  if (has("virus", "viruses", "viroids", "riboviria")) return "viral";
  if (has("animalia", "insecta", "arachnida", "arthropoda", "nematoda")) return "pest";
  if (has("abiotic")) return "abiotic";
  return "other";
}

/**
 * `identified` when a diagnosis was made: the plant looks healthy, or the best suggestion is at
 * least DIAGNOSED_THRESHOLD likely; otherwise (including "not a plant") `needs_help`.
 */
export function diagnosisStatus(health: HealthAssessment, isPlant: boolean): "identified" | "needs_help" {
  if (!isPlant) return "needs_help";
  if (health.isHealthy) return "identified";
  return (health.diseases[0]?.probability ?? 0) >= DIAGNOSED_THRESHOLD ? "identified" : "needs_help";
}

/** Best first, one per name (case-insensitive), at most MAX_RESULTS. */
function rankedDiseases(diseases: DiseaseSuggestion[]): DiseaseSuggestion[] {
  const seen = new Set<string>();
  return [...diseases]
    .sort((a, b) => b.probability - a.probability)
    .filter((d) => {
      const key = d.name.trim().toLowerCase();
      if (!key || seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .slice(0, MAX_RESULTS);
}

function planOf(d: DiseaseSuggestion): TreatmentPlan {
  return d.treatmentPlan ?? { biological: [], chemical: [], prevention: [] };
}

/**
 * Stores Plant.id's assessment and finishes the request in one atomic batch. Not a plant → no
 * results. Every statement is guarded by the request still being `processing` and the status
 * change comes last, so a second delivery of the same job finds nothing to do.
 */
export async function completeDiseaseRequest(
  env: Bindings,
  requestId: string,
  health: HealthAssessment,
  isPlant: boolean,
): Promise<{ status: "identified" | "needs_help"; written: boolean }> {
  const db = env.DB;
  const status = diagnosisStatus(health, isPlant);
  const diseases = isPlant ? rankedDiseases(health.diseases) : [];
  const guard = "EXISTS (SELECT 1 FROM disease_requests WHERE id = ? AND status = 'processing')";
  const statements: D1PreparedStatement[] = [
    // A re-run that sees different suggestions drops the ones no longer suggested (never a confirmed one).
    db
      .prepare(
        `DELETE FROM disease_results WHERE request_id = ? AND is_confirmed = 0
           AND lower(name) NOT IN (SELECT value FROM json_each(?)) AND ${guard}`,
      )
      .bind(requestId, JSON.stringify(diseases.map((d) => d.name.trim().toLowerCase())), requestId),
  ];
  diseases.forEach((d, i) => {
    statements.push(
      db
        .prepare(
          `INSERT INTO disease_results
             (id, request_id, entity_id, name, common_names, probability, description, treatment, classification,
              disease_type, cause, url, similar_images, rank)
           SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE ${guard}
           ON CONFLICT (request_id, lower(name)) DO UPDATE SET
             entity_id = excluded.entity_id, common_names = excluded.common_names, probability = excluded.probability,
             description = excluded.description, treatment = excluded.treatment, classification = excluded.classification,
             disease_type = excluded.disease_type, cause = excluded.cause, url = excluded.url,
             similar_images = excluded.similar_images, rank = excluded.rank`,
        )
        .bind(
          uuidv7(),
          requestId,
          d.entityId ?? null,
          d.name.trim(),
          JSON.stringify(d.commonNames),
          d.probability,
          d.description.slice(0, 4000),
          JSON.stringify(planOf(d)),
          JSON.stringify(d.classification),
          diseaseTypeOf(d.classification),
          d.cause ?? null,
          d.url ?? null,
          JSON.stringify(d.similarImages ?? []),
          i + 1,
          requestId,
        ),
    );
  });
  statements.push(
    db
      .prepare(
        `UPDATE disease_requests
            SET status = ?, is_plant = ?, is_healthy = ?, is_healthy_probability = ?, error_message = NULL,
                processed_at = ${NOW}, updated_at = ${NOW}
          WHERE id = ? AND status = 'processing'`,
      )
      .bind(status, isPlant ? 1 : 0, health.isHealthy ? 1 : 0, health.isHealthyProbability, requestId),
  );
  const results = await db.batch(statements);
  return { status, written: (results.at(-1)?.meta.changes ?? 0) > 0 };
}

export async function countDiseaseResults(env: Bindings, requestId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM disease_results WHERE request_id = ?").bind(requestId).first<{ n: number }>();
  return row?.n ?? 0;
}

/** Most likely first (rank breaks ties). */
export async function listDiseaseResults(env: Bindings, requestId: string): Promise<DiseaseResultRow[]> {
  const { results } = await env.DB.prepare("SELECT * FROM disease_results WHERE request_id = ? ORDER BY probability DESC, rank ASC")
    .bind(requestId)
    .all<DiseaseResultRow>();
  return results;
}

/**
 * The owner confirms one result as the diagnosis: it becomes the only confirmed result of the
 * request (a later confirmation switches) and the request is `identified`. Null when the result
 * is not one of this request's.
 */
export async function confirmDiseaseResult(env: Bindings, requestId: string, resultId: string): Promise<DiseaseResultRow | null> {
  const db = env.DB;
  const owned = await db.prepare("SELECT id FROM disease_results WHERE id = ? AND request_id = ?").bind(resultId, requestId).first();
  if (!owned) return null;
  // Unconfirm first: the partial unique index allows one confirmed result per request at any time.
  await db.batch([
    db
      .prepare("UPDATE disease_results SET is_confirmed = 0, confirmed_at = NULL WHERE request_id = ? AND id <> ? AND is_confirmed = 1")
      .bind(requestId, resultId),
    db.prepare(`UPDATE disease_results SET is_confirmed = 1, confirmed_at = coalesce(confirmed_at, ${NOW}) WHERE id = ?`).bind(resultId),
    db
      .prepare(
        `UPDATE disease_requests SET status = 'identified', updated_at = ${NOW} WHERE id = ? AND status IN ('identified', 'needs_help')`,
      )
      .bind(requestId),
  ]);
  return db.prepare("SELECT * FROM disease_results WHERE id = ?").bind(resultId).first<DiseaseResultRow>();
}

export interface DiseaseEntryRow extends DiseaseResultRow {
  confirmations: number;
}

/**
 * The disease database as a page query (for routes/pagination's queryPage): diseases with at
 * least one confirmed diagnosis, one entry per name (case-insensitive) with the details of its
 * most recent confirmation and how many confirmations it has; most confirmed first.
 */
export function confirmedDiseasesQuery(q: { search?: string; type?: DiseaseType }): {
  select: string;
  from: string;
  order: string;
  binds: unknown[];
} {
  const conditions = ["is_confirmed = 1"];
  const binds: unknown[] = [];
  if (q.search) {
    // A literal substring (instr, not LIKE: D1 refuses LIKE patterns over 50 bytes).
    const needle = q.search.toLowerCase();
    conditions.push("(instr(lower(name), ?) > 0 OR instr(lower(common_names), ?) > 0 OR instr(lower(description), ?) > 0)");
    binds.push(needle, needle, needle);
  }
  if (q.type) {
    conditions.push("disease_type = ?");
    binds.push(q.type);
  }
  return {
    select: "*",
    from: `FROM (
             SELECT *, row_number() OVER (PARTITION BY lower(name) ORDER BY confirmed_at DESC, id DESC) AS latest,
                    count(*) OVER (PARTITION BY lower(name)) AS confirmations
               FROM disease_results WHERE ${conditions.join(" AND ")}
           ) WHERE latest = 1`,
    order: "confirmations DESC, lower(name) ASC",
    binds,
  };
}
