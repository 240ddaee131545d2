/**
 * Identification requests (API.md §2.2): what is particular to them — their results (written
 * by the job, or by the synchronous identify endpoint), votes, acceptance, the history page and
 * turning a result into a plant. The lifecycle they share with diagnoses (submit, claim,
 * release, fail, retry, delete) is services/queued-requests.ts.
 *
 * Completion is one atomic batch whose every statement is guarded by the request still being
 * `processing`, with the status change last (then only the count of results the owner is told),
 * so a re-delivered job never counts or writes twice.
 */
import { and, asc, count, desc, eq, type SQL, sql } from "drizzle-orm";
import { changes, database, runBatch, type Statement, sqlNow } from "../db/client";
import { type Page, type PageRequest, selectPage } from "../db/pagination";
import { identificationRequests, identificationResults, species, users, votes } from "../db/schema";
import type { Bindings } from "../env";
import { AppError } from "../lib/errors";
import { apiFields } from "../lib/fields";
import { untimedId, uuidv7 } from "../lib/ids";
import { TtlCache } from "../lib/ttl-cache";
import type { Logger } from "../lib/logger";
import type { HealthAssessment, ProviderAnswer } from "../providers/types";
import { type CatalogueCareFields, ruleBasedCare } from "./care";
import { findSpeciesForCare, storedCareGuide } from "./care-guides";
import { addIdentifiedPlant } from "./collections";
import { CATALOGUE_LANGUAGE, DEFAULT_LANGUAGE } from "./identification";
import { consensusChange, consensusStatements, requestRemovalStatements, tellAgreement, tellConsensus } from "./community";
import type { MergedSuggestion } from "./merge";
import { purgeStatement } from "./public-cache";
import { catalogueCommonNames } from "./species";
import { imageUrl, photoRef, photosOf, type storeImages, withStoredPhotos } from "./photos";
import type { Notification } from "./notifications";
import {
  deleteOwnRequest,
  ENDED,
  IdentificationRequests,
  type IdentificationRequestRow,
  ownRequest,
  queuedRequestBody,
  runCompletion,
} from "./queued-requests";
import { refuseIfDeactivated } from "./sessions";
import { accountActive } from "./users";

/** API.md §2.2: `identified` when the best result is at least this confident. */
export const IDENTIFIED_THRESHOLD = 0.5;

export type IdentificationResultRow = typeof identificationResults.$inferSelect;

/** What a result keeps of the providers' answer for display (the `details` column). */
export interface ResultDetails {
  common_names?: string[];
  description?: string;
  similar_images?: { url: string; url_small?: string }[];
  sources?: string[];
  plant_id_probability?: number | null;
  plantnet_score?: number | null;
  /** Which calibration maps produced the confidence (services/merge.ts). */
  calibration_version?: string;
  url?: string | null;
  watering?: { min: number; max: number } | null;
  propagation_methods?: string[];
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
 *
 * `language`: the one the suggestions were asked in. The request's results keep its names as
 * they are; the shared catalogue is English (and scientific) for everyone, so a species first
 * met in another language joins it with its scientific name, family and genus only — no common
 * names, no description — and the first English identification of it fills those in.
 */
export async function completeIdentificationRequest(
  env: Bindings,
  requestId: string,
  userId: string | null,
  suggestions: MergedSuggestion[],
  health: HealthAssessment | null = null,
  /** The owner to tell it is ready (the queue job's), in the same batch; null: nobody (the synchronous endpoint answers itself). */
  notify: string | null = null,
  language: string = DEFAULT_LANGUAGE,
): Promise<{ status: "identified" | "needs_help"; written: boolean; results: number; notices: Notification[]; deliveryIds: string[] }> {
  const status = finalStatusFor(suggestions);
  const db = database(env);
  // The guard every write of the batch carries: SQL's EXISTS, evaluated inside the transaction.
  const guard = sql`EXISTS (SELECT 1 FROM identification_requests WHERE id = ${requestId} AND status = 'processing')`;
  const statements: (Statement | SQL)[] = [];

  // Public catalogue rows: ids that do not carry the moment a private request met the name.
  const newIds = suggestions.map(() => untimedId());
  const english = language === CATALOGUE_LANGUAGE;
  suggestions.forEach((s, i) => {
    const names = english ? catalogueCommonNames(s.common_names) : [];
    const description = english ? s.description.slice(0, 2000) : "";
    // Guarded INSERT … SELECT: new names join the catalogue unverified. Its own data is never
    // overwritten; only an unverified entry without common names (first met in another
    // language) takes an English answer's names, and its description when it has none.
    statements.push(sql`INSERT INTO species (id, scientific_name, common_names, family, genus, gbif_id, description, source, is_verified)
      SELECT ${newIds[i]}, ${s.scientific_name}, ${JSON.stringify(names)}, ${s.family}, ${s.genus}, ${s.gbif_id ?? null},
             ${description}, ${s.sources.join("+")}, 0 WHERE ${guard}
      ON CONFLICT (lower(scientific_name)) DO UPDATE SET
        common_names = excluded.common_names,
        description = CASE WHEN species.description = '' THEN excluded.description ELSE species.description END,
        updated_at = ${sqlNow}
      WHERE species.common_names = '[]' AND excluded.common_names <> '[]' AND species.is_verified = 0`);
    // A name new to the catalogue, or one an English answer just named, shows in its cached lists
    // and searches at once: a purge when the upsert above wrote a row (`changes()`: the rows the
    // batch's previous statement inserted or updated), none when the name was known as it is.
    statements.push(purgeStatement(db, "species", sql`changes() > 0`));
  });
  const top = suggestions[0];
  if (top) {
    statements.push(
      db
        .update(species)
        .set({ identificationCount: sql`${species.identificationCount} + 1` })
        .where(and(sql`lower(${species.scientificName}) = lower(${top.scientific_name})`, guard)),
    );
  }
  const names = JSON.stringify(suggestions.map((s) => s.scientific_name.toLowerCase()));
  // json_each: a re-run that sees other suggestions drops the AI results no longer suggested —
  // not one anybody voted on: a shared request's retry must not take the community's votes, and
  // the consensus and counters they carry, with it.
  statements.push(sql`DELETE FROM identification_results
     WHERE request_id = ${requestId} AND is_accepted = 0 AND identification_source LIKE 'ai_%'
       AND lower(scientific_name) NOT IN (SELECT value FROM json_each(${names}))
       AND NOT EXISTS (SELECT 1 FROM votes WHERE votes.result_id = identification_results.id) AND ${guard}`);
  // What stays of an earlier run and this one does not suggest (voted on, or the community's) is
  // no longer its best: this run's rank 1 is the one primary (the owner's view and care follow it).
  statements.push(sql`UPDATE identification_results SET is_primary = 0
     WHERE request_id = ${requestId} AND is_primary = 1 AND is_accepted = 0
       AND lower(scientific_name) NOT IN (SELECT value FROM json_each(${names})) AND ${guard}`);
  for (const s of suggestions) {
    const details: ResultDetails = {
      common_names: s.common_names,
      description: s.description,
      similar_images: s.similar_images,
      sources: s.sources,
      plant_id_probability: s.plant_id_probability ?? null,
      plantnet_score: s.plantnet_score ?? null,
      calibration_version: s.calibration_version,
      url: s.url ?? null,
      watering: s.watering ?? null,
      propagation_methods: s.propagation_methods ?? [],
    };
    // Guarded upsert by (request, lower(name)), linking the catalogue's species by name. A community
    // proposal the engines now suggest too stays the community's (an engine result a later re-run
    // no longer suggests is deleted; a proposal must not be).
    statements.push(sql`INSERT INTO identification_results
        (id, request_id, species_id, scientific_name, plant_name, common_names, family, genus, gbif_id,
         confidence_score, identification_source, rank, is_primary, details)
      SELECT ${uuidv7()}, ${requestId}, (SELECT id FROM species WHERE lower(scientific_name) = lower(${s.scientific_name})),
             ${s.scientific_name}, ${s.plant_name}, ${JSON.stringify(s.common_names)}, ${s.family}, ${s.genus}, ${s.gbif_id ?? null},
             ${s.probability}, ${resultSource(s)}, ${s.rank}, ${s.rank === 1 ? 1 : 0}, ${JSON.stringify(details)}
       WHERE ${guard}
      ON CONFLICT (request_id, lower(scientific_name)) DO UPDATE SET
        confidence_score = excluded.confidence_score, rank = excluded.rank, is_primary = excluded.is_primary,
        identification_source = CASE WHEN identification_results.identification_source = 'community' THEN 'community'
                                     ELSE excluded.identification_source END,
        details = excluded.details`);
  }

  if (userId && status === "identified") {
    statements.push(
      db
        .update(users)
        .set({ plantsIdentified: sql`${users.plantsIdentified} + 1` })
        .where(and(eq(users.id, userId), guard)),
    );
  }
  const t = identificationRequests;
  const statusChange = db
    .update(t)
    .set({ status, health: health as Record<string, unknown> | null, errorMessage: null, ...ENDED })
    .where(and(eq(t.id, requestId), eq(t.status, "processing")));
  return { status, ...(await runCompletion(db, IdentificationRequests, requestId, statements, statusChange, notify)) };
}

/**
 * The synchronous identify endpoint's record for a signed-in user: the photo stored and a
 * request written straight to its final state with the results (no job: they are known).
 */
export async function recordIdentification(
  env: Bindings,
  userId: string,
  image: Parameters<typeof storeImages>[1][number],
  suggestions: MergedSuggestion[],
  health: HealthAssessment | null,
  language: string = DEFAULT_LANGUAGE,
): Promise<string> {
  const t = identificationRequests;
  // Store-or-undo: if the row cannot be written, the photo does not stay behind.
  const row = await withStoredPhotos(env, userId, [image], () =>
    database(env)
      .insert(t)
      .values({ id: uuidv7(), userId, status: "processing", imageHashes: [photoRef(image)], organs: ["auto"], language })
      .returning({ id: t.id })
      .get(),
  );
  await completeIdentificationRequest(env, row.id, userId, suggestions, health, null, language);
  return row.id;
}

/** The catalogue's rule-based care for a name, in `language` (ruleBasedCare), when the catalogue knows it. */
export async function catalogueCare(env: Bindings, scientificName: string, language: string) {
  // On the synchronous identify path: a catalogue lookup per answer costs a database round trip
  // (the largest stage of a cache hit); the rule-based guide follows the species row, which
  // changes rarely, so each isolate keeps the row's care fields for a minute, for every language.
  // A species not (yet) in the catalogue is looked up again next time.
  const key = scientificName.toLowerCase();
  let found = catalogueCareCache.get(key);
  if (!found) {
    found = (await findSpeciesForCare(env, { scientificName })) ?? undefined;
    if (!found) return null;
    catalogueCareCache.set(key, found);
  }
  return ruleBasedCare(found, language);
}

const catalogueCareCache = new TtlCache<CatalogueCareFields>(60_000, 1000);

/**
 * Catalogue care looked up ahead: `onAnswer` starts the lookup for a provider's top suggestion
 * as soon as that provider answers (while the other is still being asked, and before the
 * merge), and `careFor` gives the merged top suggestion's care — usually one of those lookups,
 * already done or under way; any other name is looked up then. Each name is looked up once.
 */
export function catalogueCareAhead(env: Bindings, language: string) {
  const lookups = new Map<string, ReturnType<typeof catalogueCare>>();
  const careFor = (scientificName: string) => {
    const key = scientificName.toLowerCase();
    let lookup = lookups.get(key);
    if (!lookup) {
      lookup = catalogueCare(env, scientificName, language);
      // A lookup nobody asks for again must not fail unobserved; whoever awaits it sees its error.
      lookup.catch(() => {});
      lookups.set(key, lookup);
    }
    return lookup;
  };
  return {
    onAnswer: (answer: ProviderAnswer) => {
      const top = answer.suggestions[0];
      if (top) void careFor(top.scientificName);
    },
    careFor,
  };
}

/**
 * The results of the caller's own request, most confident first, and care instructions for the
 * primary one (accepted, else primary, else first): the stored AI guide in the request's
 * language, else the rule-based one.
 */
/** A result its request's owner sees: a proposal a moderator hid (spam, abuse) is hidden from them too; engine results never are. */
export const shownToOwner = eq(identificationResults.isHidden, false);

export async function identificationResultsOf(env: Bindings, userId: string, requestId: string) {
  const request = await ownRequest(env, IdentificationRequests, userId, requestId);
  const r = identificationResults;
  const results = await database(env)
    .select()
    .from(r)
    .where(and(eq(r.requestId, request.id), shownToOwner))
    .orderBy(desc(r.confidenceScore), asc(r.rank));
  const primary = results.find((x) => x.isAccepted) ?? results.find((x) => x.isPrimary) ?? results[0];
  const found = primary?.speciesId ? await findSpeciesForCare(env, { id: primary.speciesId }) : null;
  // The guide in the request's language (the one its job wrote), else the rule-based advice.
  const care = found ? ((await storedCareGuide(env, found.id, request.language)) ?? ruleBasedCare(found, request.language)) : null;
  return { request, results, care };
}

/**
 * A result with its request's owner and whether others may see it — shared with the community by
 * an owner whose account is active (a deactivated account's requests are withdrawn) — 404 when
 * there is none.
 */
async function loadResult(env: Bindings, resultId: string) {
  const r = identificationResults;
  const q = identificationRequests;
  const row = await database(env)
    .select({
      result: r,
      ownerId: q.userId,
      shared: sql<boolean>`(${q.isSharedWithCommunity} = 1 AND ${accountActive(q.userId)})`.mapWith(Boolean),
    })
    .from(r)
    .innerJoin(q, eq(q.id, r.requestId))
    .where(eq(r.id, resultId))
    .get();
  if (!row) throw resultNotFound();
  return row;
}

function resultNotFound(): AppError {
  return new AppError("NOT_FOUND", 404, "Result not found.");
}

/** A request as the API shows it to its owner. */
export function identificationRequestBody(row: IdentificationRequestRow) {
  const health = row.health as {
    isHealthy: boolean;
    diseases: { name: string; probability: number; description: string; treatment: string }[];
  } | null;
  const top = health && !health.isHealthy ? health.diseases[0] : undefined;
  return {
    ...queuedRequestBody(row),
    ...apiFields(row, "organs latitude longitude location description plantSize habitat language isSharedWithCommunity communityResultId"),
    disease_detection: health
      ? {
          is_healthy: health.isHealthy,
          disease_name: top?.name ?? null,
          probability: top?.probability ?? null,
          description: top?.description ?? null,
          treatment: top?.treatment ?? null,
          suggestions: health.diseases.map((d) => ({ name: d.name, probability: d.probability, description: d.description })),
        }
      : null,
  };
}

/** A result as the API shows it (the owner's results, a proposal, an accepted result). */
export function identificationResultBody(row: IdentificationResultRow) {
  const details = row.details as ResultDetails;
  return {
    ...apiFields(row, "id requestId speciesId scientificName plantName commonNames family genus gbifId"),
    ...apiFields(
      row,
      "confidenceScore identificationSource rank isPrimary isAccepted upvotes downvotes proposedBy withdrawnAt comment createdAt",
    ),
    description: details.description ?? "",
    similar_images: details.similar_images ?? [],
    sources: details.sources ?? [],
    plant_id_probability: details.plant_id_probability ?? null,
    plantnet_score: details.plantnet_score ?? null,
    calibration_version: details.calibration_version ?? null,
  };
}

export type VoteType = (typeof votes.$inferSelect)["voteType"];

/**
 * Votes on a result of the caller's own or a shared request: the same vote again removes it,
 * the opposite one switches. Accepted results take no votes.
 *
 * One batch, which D1 runs as one transaction: concurrent votes behave as votes one after the
 * other, and the answer is the state this vote left (reading the old vote first let two
 * identical votes both "add"). (1) The same vote again is removed; (2) otherwise — changes() = 0,
 * (1) deleted nothing — it is inserted or switches the other one; (3) the tallies are recomputed
 * from the votes, so they can never drift; (4) the answer is read.
 */
export async function voteOnResult(env: Bindings, userId: string, resultId: string, voteType: VoteType, logger?: Logger) {
  const result = await votableResult(env, userId, resultId);
  const db = database(env);
  const v = votes;
  const r = identificationResults;
  const tally = (type: VoteType) => sql<number>`(SELECT count(*) FROM votes WHERE result_id = ${resultId} AND vote_type = ${type})`;
  // The checks above, again inside the writes: the owner taking the request out of the community,
  // accepting the result or deleting the request between them and the batch leaves no vote, nor
  // does the voter's own deactivation (or deletion) committed meanwhile.
  const stillOpen = sql`EXISTS (SELECT 1 FROM identification_results vr JOIN identification_requests vq ON vq.id = vr.request_id
      WHERE vr.id = ${resultId} AND vr.is_hidden = 0 AND vr.is_accepted = 0
        AND (vq.user_id = ${userId} OR (vq.is_shared_with_community = 1 AND ${accountActive(sql`vq.user_id`)})))
    AND ${accountActive(sql`${userId}`)}`;
  const results = await runBatch(db, [
    db.delete(v).where(and(eq(v.resultId, resultId), eq(v.userId, userId), eq(v.voteType, voteType), stillOpen)),
    // changes() is the point: insert only when (1) removed nothing, in the same transaction.
    sql`INSERT INTO votes (id, result_id, user_id, vote_type) SELECT ${uuidv7()}, ${resultId}, ${userId}, ${voteType}
        WHERE changes() = 0 AND ${stillOpen}
        ON CONFLICT (result_id, user_id) DO UPDATE SET vote_type = excluded.vote_type`,
    // Counters recomputed from the votes in one statement.
    db
      .update(r)
      .set({ upvotes: tally("upvote"), downvotes: tally("downvote") })
      .where(eq(r.id, resultId)),
    // Read inside the same transaction (a raw batch answers rows by these aliases).
    sql`SELECT v.vote_type AS vote, r.upvotes, r.downvotes FROM identification_results r
          LEFT JOIN votes v ON v.result_id = r.id AND v.user_id = ${userId} WHERE r.id = ${resultId}`,
    // The community consensus (§5c) and its counters, recomputed in the same transaction.
    ...consensusStatements(result.requestId),
  ]);
  // A vote always removes, adds or switches one: neither means the request or result changed
  // since the checks, which say how (the batch's recounts found nothing new to count).
  if (changes(results[0]) === 0 && changes(results[1]) === 0) return refuseVote(env, userId, resultId);
  const row = (results[3] as { results: { vote: VoteType | null; upvotes: number; downvotes: number }[] }).results[0];
  if (!row) throw resultNotFound();
  const change = consensusChange(results);
  // One vote, one notice for its proposer: the consensus it brought about, else the agreement.
  const told = await tellConsensus(env, result.requestId, change, logger);
  if (row.vote === "upvote") await tellAgreement(env, userId, resultId, logger, told);
  return {
    result_id: resultId,
    vote: row.vote,
    upvotes: row.upvotes,
    downvotes: row.downvotes,
    community_result_id: change.after,
  };
}

/** The result `userId` may vote on: 404 unless it is shown to them, 400 once accepted. */
async function votableResult(env: Bindings, userId: string, resultId: string): Promise<IdentificationResultRow> {
  const { result, ownerId, shared } = await loadResult(env, resultId);
  if (result.isHidden || (ownerId !== userId && !shared)) throw resultNotFound();
  if (result.isAccepted) {
    throw new AppError("VALIDATION_ERROR", 400, "Accepted results cannot be voted on.", {
      vote_type: ["This result is already accepted."],
    });
  }
  return result;
}

/** A vote its batch refused: the reason, as the checks now give it (404 when the request is gone). */
async function refuseVote(env: Bindings, userId: string, resultId: string): Promise<never> {
  await refuseIfDeactivated(env, userId);
  await votableResult(env, userId, resultId);
  throw new AppError("CONFLICT", 409, "The result changed at the same moment; try again.");
}

/**
 * The owner deletes an identification request (queued-requests.ts `deleteOwnRequest`); in the same
 * batch its community consensus goes and the counters it fed are recounted without it.
 */
export function deleteIdentificationRequest(env: Bindings, userId: string, id: string, waitUntil: (p: Promise<unknown>) => void) {
  return deleteOwnRequest(env, IdentificationRequests, userId, id, waitUntil, requestRemovalStatements(id));
}

/** The owner accepts one result as the identification: it alone is accepted and primary, and the request is `identified`. */
export async function acceptResult(env: Bindings, userId: string, resultId: string): Promise<IdentificationResultRow> {
  const { result, ownerId } = await loadResult(env, resultId);
  if (ownerId !== userId || result.isHidden) throw resultNotFound();
  const db = database(env);
  const r = identificationResults;
  const q = identificationRequests;
  const [, , accepted] = await runBatch(db, [
    db
      .update(r)
      .set({ isAccepted: sql`(${r.id} = ${resultId})`, isPrimary: sql`(${r.id} = ${resultId})` })
      .where(eq(r.requestId, result.requestId)),
    db
      .update(q)
      .set({ status: "identified", updatedAt: sqlNow })
      .where(and(eq(q.id, result.requestId), sql`${q.status} IN ('identified', 'needs_help')`)),
    db.select().from(r).where(eq(r.id, resultId)),
  ]);
  // Deleted with its request (by the owner, in another tab) since it was loaded: the batch found nothing.
  const row = (accepted as IdentificationResultRow[])[0];
  if (!row) throw resultNotFound();
  return row;
}

/** The compact history page: each request with its best result (the accepted one, else the most confident). */
export async function identificationHistory(env: Bindings, userId: string, page: PageRequest) {
  const db = database(env);
  const q = identificationRequests;
  const r = identificationResults;
  // A correlated subquery picks each request's best result: the accepted one, else the most confident.
  const bestOf = sql`(SELECT best.id FROM identification_results best WHERE best.request_id = ${q.id} AND best.is_hidden = 0
                       ORDER BY best.is_accepted DESC, best.confidence_score DESC LIMIT 1)`;
  const rows: Page<{
    id: string;
    status: IdentificationRequestRow["status"];
    createdAt: string;
    imageHashes: string[];
    plantName: string | null;
    scientificName: string | null;
    confidenceScore: number | null;
  }> = await selectPage(
    db,
    {
      rows: db
        .select({
          id: q.id,
          status: q.status,
          createdAt: q.createdAt,
          imageHashes: q.imageHashes,
          plantName: r.plantName,
          scientificName: r.scientificName,
          confidenceScore: r.confidenceScore,
        })
        .from(q)
        .leftJoin(r, and(eq(r.requestId, q.id), eq(r.id, bestOf)))
        .where(eq(q.userId, userId))
        .orderBy(desc(q.createdAt), desc(q.id))
        .$dynamic(),
      count: db.select({ n: count() }).from(q).where(eq(q.userId, userId)).$dynamic(),
    },
    page,
  );
  return {
    count: rows.count,
    rows: rows.rows.map((row) => {
      const first = photosOf(row.imageHashes)[0];
      return {
        id: row.id,
        plant_name: row.plantName,
        scientific_name: row.scientificName,
        confidence: row.confidenceScore,
        image_url: first ? imageUrl(first) : null,
        created_at: row.createdAt,
        status: row.status,
      };
    }),
  };
}

/** The owner adds the plant a result names to a collection (services/collections.ts). */
export async function addResultToCollection(
  env: Bindings,
  userId: string,
  resultId: string,
  body: { collection_id?: string | undefined; nickname?: string | undefined; notes?: string | undefined },
) {
  const { result, ownerId } = await loadResult(env, resultId);
  if (ownerId !== userId) throw resultNotFound();
  return addIdentifiedPlant(env, userId, {
    collectionId: body.collection_id,
    resultId,
    speciesId: result.speciesId,
    nickname: body.nickname ?? result.plantName,
    notes: body.notes ?? "",
  });
}
