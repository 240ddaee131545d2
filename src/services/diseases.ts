/**
 * Disease requests (API.md §4): a diagnosis of a plant's health from photos, stored in D1
 * (`disease_requests`, `disease_results`) with the photos in R2 exactly as identification
 * requests keep theirs. Completion is one `db.batch` whose every statement is guarded by the
 * request still being `processing`, with results upserted per (request, lower(name)), so a
 * re-delivered job never writes twice. The disease database is read from confirmed results.
 */
import { and, asc, count, desc, eq, getTableColumns, ne, type SQL, sql } from "drizzle-orm";
import { type Database, database, runBatch, type Statement, sqlNow } from "../db/client";
import { type Page, type PageRequest, selectPage } from "../db/pagination";
import { diseaseRequests, diseaseResults } from "../db/schema";
import type { Bindings } from "../env";
import { apiFields } from "../lib/fields";
import { uuidv7 } from "../lib/ids";
import type { DiseaseSuggestion, HealthAssessment, TreatmentPlan } from "../providers/types";
import { CATALOGUE_LANGUAGE } from "./identification";
import { purgeStatement } from "./public-cache";
import type { Notification } from "./notifications";
import { DiseaseRequests, type DiseaseRequestRow, ENDED, queuedRequestBody, runCompletion } from "./queued-requests";

export const PLANT_CONDITIONS = ["mild", "moderate", "severe", "dying"] as const;
export type PlantCondition = (typeof PLANT_CONDITIONS)[number];

export const DISEASE_TYPES = ["fungal", "bacterial", "viral", "oomycete", "pest", "abiotic", "other"] as const;
export type DiseaseType = (typeof DISEASE_TYPES)[number];

/** A diagnosis is "made" (`identified`) when the best suggestion is at least this likely. */
export const DIAGNOSED_THRESHOLD = 0.5;
/** Plant.id returns a handful of suggestions; more than this is noise for the owner. */
const MAX_RESULTS = 10;

export type DiseaseResultRow = typeof diseaseResults.$inferSelect;

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
  /** The owner to tell it is ready, in the same batch (services/queued-requests.ts `runCompletion`). */
  notify: string | null = null,
): Promise<{ status: "identified" | "needs_help"; written: boolean; results: number; notices: Notification[]; deliveryIds: string[] }> {
  const db = database(env);
  const status = diagnosisStatus(health, isPlant);
  const diseases = isPlant ? rankedDiseases(health.diseases) : [];
  // The guard every write of the batch carries: SQL's EXISTS, evaluated inside the transaction.
  const guard = sql`EXISTS (SELECT 1 FROM disease_requests WHERE id = ${requestId} AND status = 'processing')`;
  const names = JSON.stringify(diseases.map((d) => d.name.trim().toLowerCase()));
  const statements: (Statement | SQL)[] = [
    // json_each: a re-run that sees other suggestions drops the ones no longer suggested (never a confirmed one).
    sql`DELETE FROM disease_results WHERE request_id = ${requestId} AND is_confirmed = 0
          AND lower(name) NOT IN (SELECT value FROM json_each(${names})) AND ${guard}`,
  ];
  diseases.forEach((d, i) => {
    // Guarded upsert by (request, lower(name)).
    statements.push(sql`INSERT INTO disease_results
        (id, request_id, entity_id, name, common_names, probability, description, treatment, classification,
         disease_type, cause, url, similar_images, rank)
      SELECT ${uuidv7()}, ${requestId}, ${d.entityId ?? null}, ${d.name.trim()}, ${JSON.stringify(d.commonNames)}, ${d.probability},
             ${d.description.slice(0, 4000)}, ${JSON.stringify(planOf(d))}, ${JSON.stringify(d.classification)},
             ${diseaseTypeOf(d.classification)}, ${d.cause ?? null}, ${d.url ?? null}, ${JSON.stringify(d.similarImages ?? [])}, ${i + 1}
       WHERE ${guard}
      ON CONFLICT (request_id, lower(name)) DO UPDATE SET
        entity_id = excluded.entity_id, common_names = excluded.common_names, probability = excluded.probability,
        description = excluded.description, treatment = excluded.treatment, classification = excluded.classification,
        disease_type = excluded.disease_type, cause = excluded.cause, url = excluded.url,
        similar_images = excluded.similar_images, rank = excluded.rank`);
  });
  const q = diseaseRequests;
  const statusChange = db
    .update(q)
    .set({
      status,
      isPlant,
      isHealthy: health.isHealthy,
      isHealthyProbability: health.isHealthyProbability,
      errorMessage: null,
      ...ENDED,
    })
    .where(and(eq(q.id, requestId), eq(q.status, "processing")));
  return { status, ...(await runCompletion(db, DiseaseRequests, requestId, statements, statusChange, notify)) };
}

/** A diagnosis request as the API shows it to its owner. */
export function diseaseRequestBody(row: DiseaseRequestRow) {
  return {
    ...queuedRequestBody(row),
    ...apiFields(row, "symptomsDescription plantCondition location language isPlant isHealthy isHealthyProbability"),
  };
}

/** A treatment plan with all three lists, empty where Plant.id gave none. */
export function treatmentOf(t: Partial<Record<"biological" | "chemical" | "prevention", string[]>>) {
  return { biological: t.biological ?? [], chemical: t.chemical ?? [], prevention: t.prevention ?? [] };
}

/** A diagnosis result as the API shows it to the request's owner. */
export function diseaseResultBody(row: DiseaseResultRow) {
  return {
    ...apiFields(row, "id requestId name commonNames probability rank description"),
    treatment: treatmentOf(row.treatment),
    ...apiFields(row, "classification diseaseType cause url"),
    similar_images: row.similarImages as { url: string; url_small?: string }[],
    ...apiFields(row, "isConfirmed confirmedAt createdAt"),
  };
}

/** Most likely first (rank breaks ties). */
export async function listDiseaseResults(env: Bindings, requestId: string): Promise<DiseaseResultRow[]> {
  const r = diseaseResults;
  return database(env).select().from(r).where(eq(r.requestId, requestId)).orderBy(desc(r.probability), asc(r.rank));
}

/**
 * The owner confirms one result as the diagnosis: it becomes the only confirmed result of the
 * request (a later confirmation switches) and the request is `identified`. Undefined when the
 * result is not one of this request's.
 */
export async function confirmDiseaseResult(env: Bindings, requestId: string, resultId: string): Promise<DiseaseResultRow | undefined> {
  const db = database(env);
  const r = diseaseResults;
  const q = diseaseRequests;
  const owned = await db
    .select({ id: r.id })
    .from(r)
    .where(and(eq(r.id, resultId), eq(r.requestId, requestId)))
    .get();
  if (!owned) return undefined;
  // Unconfirm first: the partial unique index allows one confirmed result per request at any time.
  const [, , , confirmed] = await runBatch(db, [
    db
      .update(r)
      .set({ isConfirmed: false, confirmedAt: null })
      .where(and(eq(r.requestId, requestId), ne(r.id, resultId), eq(r.isConfirmed, true))),
    db
      .update(r)
      .set({ isConfirmed: true, confirmedAt: sql`coalesce(${r.confirmedAt}, ${sqlNow})` })
      .where(eq(r.id, resultId)),
    db
      .update(q)
      .set({ status: "identified", updatedAt: sqlNow })
      .where(and(eq(q.id, requestId), sql`${q.status} IN ('identified', 'needs_help')`)),
    db.select().from(r).where(eq(r.id, resultId)),
    // The public disease database is read from confirmations: its cached pages go with this one.
    purgeStatement(db, "diseases"),
  ]);
  return (confirmed as DiseaseResultRow[])[0];
}

export type DiseaseEntryRow = DiseaseResultRow & { confirmations: number };

/**
 * The disease database: diseases with at least one confirmed diagnosis asked in English, one entry per name
 * (case-insensitive) with the details of its most recent confirmation and how many
 * confirmations it has; most confirmed first.
 */
/**
 * The disease database as a subquery: one row per disease name (case-insensitive) with the
 * details of its most recent confirmation (`latest` = 1) and how many confirmations it has.
 * Window functions are the point here. `search` is a literal substring of name, common names
 * or description (instr, not LIKE: D1 refuses LIKE patterns over 50 bytes).
 */
export function confirmedDiseaseEntries(db: Database, filter: { search?: string | undefined; type?: DiseaseType | undefined }) {
  const r = diseaseResults;
  // The database is one shared, English list, one entry per name: a diagnosis asked in another
  // language carries Plant.id's localised names, and would be the same disease a second time.
  const conditions: SQL[] = [
    eq(r.isConfirmed, true),
    sql`EXISTS (SELECT 1 FROM disease_requests dq WHERE dq.id = ${r.requestId} AND dq.language = ${CATALOGUE_LANGUAGE})`,
  ];
  if (filter.search) {
    const needle = filter.search.toLowerCase();
    conditions.push(
      sql`(instr(lower(${r.name}), ${needle}) > 0 OR instr(lower(${r.commonNames}), ${needle}) > 0 OR instr(lower(${r.description}), ${needle}) > 0)`,
    );
  }
  if (filter.type) conditions.push(eq(r.diseaseType, filter.type));
  return db
    .select({
      ...getTableColumns(r),
      latest: sql<number>`row_number() OVER (PARTITION BY lower(${r.name}) ORDER BY ${r.confirmedAt} DESC, ${r.id} DESC)`.as("latest"),
      confirmations: sql<number>`count(*) OVER (PARTITION BY lower(${r.name}))`.as("confirmations"),
    })
    .from(r)
    .where(and(...conditions))
    .as("ranked");
}

/** The disease database's page: most confirmed first, then by name. */
export async function confirmedDiseases(
  env: Bindings,
  filter: { search?: string | undefined; type?: DiseaseType | undefined },
  page: PageRequest,
): Promise<Page<DiseaseEntryRow>> {
  const db = database(env);
  const ranked = confirmedDiseaseEntries(db, filter);
  const result = await selectPage(
    db,
    {
      rows: db
        .select()
        .from(ranked)
        .where(eq(ranked.latest, 1))
        .orderBy(desc(ranked.confirmations), asc(sql`lower(${ranked.name})`))
        .$dynamic(),
      count: db.select({ n: count() }).from(ranked).where(eq(ranked.latest, 1)).$dynamic(),
    },
    page,
  );
  const found = result as unknown as Page<DiseaseEntryRow>;
  return { ...found, rows: found.rows.map((row) => ({ ...row, confirmedAt: confirmationDay(row.confirmedAt) })) };
}

/**
 * The public list says on which day (UTC) a disease was last confirmed, not at what moment:
 * confirmations come from users' private diagnoses, and a to-the-millisecond time next to a
 * count would let anyone who watches the list tie an entry to a user's activity.
 */
function confirmationDay(confirmedAt: string | null): string | null {
  return confirmedAt ? `${confirmedAt.slice(0, 10)}T00:00:00.000Z` : null;
}
