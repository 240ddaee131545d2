/**
 * Community identification (API.md §5c): sharing a request, the community feed and a shared
 * request's page, proposals, reports and moderation. Votes stay at `results/{id}/vote/`
 * (routes/requests.ts), which now also recomputes the consensus.
 */
import { z } from "@hono/zod-openapi";
import { userIdOf } from "../middleware/auth";
import {
  COMMUNITY_MODERATOR_ROLES,
  communityFeed,
  communityRequest,
  MAX_COMMENT,
  moderateProposal,
  propose,
  reportedProposals,
  reportProposal,
  setShared,
  withdrawProposal,
} from "../services/community";
import { enforceRateLimit } from "../services/rate-limits";
import { pageOf, PaginationQuery } from "./pagination";
import { createRouter, routeSet } from "./router";
import { errorResponses, IdParam, jsonBody, pageSchema, requestJson, ResultIdParam, ScientificNameInput } from "./schemas";
import { HOUR_MS } from "../lib/durations";

const tags = ["Community identification"];
const errors = errorResponses(400, 401, 404);

/** Proposals a user may make in an hour, and reports. */
export const PROPOSAL_RATE = { limit: 30, windowMs: HOUR_MS };
export const REPORT_RATE = { limit: 20, windowMs: HOUR_MS };

const Candidate = z
  .object({
    id: z.uuid().openapi({
      description: "The result's id: the `id` of this result in `requests/{id}/results/`, and the `{id}` of `results/{id}/vote/`.",
    }),
    result_id: z.uuid().openapi({ description: "The same as `id` (the name this answer had first; both stay)." }),
    scientific_name: z.string(),
    plant_name: z.string(),
    family: z.string(),
    identification_source: z.string(),
    confidence_score: z.number(),
    upvotes: z.number().int(),
    downvotes: z.number().int(),
    proposed_by: z.string().nullable(),
    withdrawn_at: z
      .string()
      .nullable()
      .openapi({ description: "When its proposer withdrew it: still a candidate, their support no longer counted. Null otherwise." }),
    community_confirmed: z.boolean(),
  })
  .openapi("CommunityCandidate");

const FeedItem = z
  .object({
    request_id: z.uuid(),
    owner: z.object({ username: z.string() }).nullable(),
    shared_at: z.string().nullable(),
    status: z.enum(["needs_id", "confirmed"]),
    images: z.array(z.object({ url: z.string() })),
    location: z.string(),
    language: z.string().openapi({
      description:
        "The language (ISO 639-1) its owner identified in: the engines' candidates' `plant_name` is in it; `scientific_name` is everyone's. " +
        "Community proposals are named from the (English) catalogue.",
    }),
    latitude: z.number().nullable().openapi({ description: "Rounded to 0.1° (about 11 km)." }),
    longitude: z.number().nullable().openapi({ description: "Rounded to 0.1° (about 11 km)." }),
    community_result_id: z.uuid().nullable().openapi({ description: "The community-confirmed result, or null." }),
    accepted_result_id: z.uuid().nullable().openapi({ description: "The owner's accepted answer, shown beside the consensus." }),
    candidates: z.array(Candidate),
  })
  .openapi("CommunityRequest");

const Near = z
  .string()
  .max(60)
  .transform((v, ctx) => {
    const parts = v.split(",").map((p) => Number(p.trim()));
    const [lat, lon, km] = parts as [number, number, number];
    if (
      parts.length !== 3 ||
      parts.some((p) => !Number.isFinite(p)) ||
      Math.abs(lat) > 90 ||
      Math.abs(lon) > 180 ||
      !(km > 0 && km <= 500)
    ) {
      ctx.addIssue({ code: "custom", message: "Use lat,lon,km with |lat| ≤ 90, |lon| ≤ 180 and 0 < km ≤ 500." });
      return z.NEVER;
    }
    return { lat, lon, km };
  });

export function communityRoutes() {
  const app = createRouter();
  const open = routeSet({ tags, errors });
  const mine = open.signedIn();
  const moderators = open.forRoles(...COMMUNITY_MODERATOR_ROLES);

  const share = (shared: boolean) =>
    mine[shared ? "post" : "delete"](
      "/requests/{id}/share",
      shared ? "Share your request with the community (it appears in the feed)" : "Take your request out of the community feed",
    ).io(
      { params: IdParam },
      {
        200: jsonBody(
          z.object({ request_id: z.uuid(), shared: z.boolean(), shared_at: z.string().nullable() }).openapi("ShareState"),
          "Sharing state",
        ),
        ...(shared ? { 409: errorResponses(409)[409] } : {}),
      },
      { description: shared ? "Owner only; a request still pending or failed: 409. Sharing again changes nothing." : "Owner only." },
    );
  const postShare = share(true);
  app.openapi(postShare, async (c) => c.json(await setShared(c.env, userIdOf(c), c.req.valid("param").id, true), 200));
  const deleteShare = share(false);
  app.openapi(deleteShare, async (c) => c.json(await setShared(c.env, userIdOf(c), c.req.valid("param").id, false), 200));

  const getFeed = open.get("/community", "The community feed: shared requests, newest shared first").io(
    {
      query: PaginationQuery.extend({
        status: z.enum(["needs_id", "confirmed"]).optional(),
        family: z.string().max(100).optional().openapi({ description: "Only requests with a candidate of this family (e.g. Araceae)." }),
        near: Near.optional().openapi({ type: "string", description: "lat,lon,km: within km of the point (rounded coordinates)." }),
      }),
    },
    { 200: jsonBody(pageSchema(FeedItem, "CommunityFeedPage"), "Shared requests with their leading candidates (at most 3)") },
    { description: "Public. Private requests never appear; coordinates are rounded to 0.1°." },
  );
  app.openapi(getFeed, async (c) => {
    const { page, page_size, status, family, near } = c.req.valid("query");
    const { count, rows } = await communityFeed(c.env, { status, family, near }, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows), 200);
  });

  const ProposalBody = z
    .strictObject({
      species_id: z.string().max(64).optional(),
      scientific_name: ScientificNameInput.optional(),
      comment: z.string().trim().max(MAX_COMMENT).optional(),
    })
    .refine((b) => (b.species_id === undefined) !== (b.scientific_name === undefined), {
      message: "Give exactly one of species_id or scientific_name.",
      path: ["species_id"],
    })
    .openapi("Proposal");
  const postPropose = mine.post("/requests/{id}/propose", "Propose a species for someone else's shared request").io(
    { params: IdParam, body: requestJson(ProposalBody) },
    {
      201: jsonBody(
        z.object({ result_id: z.uuid(), scientific_name: z.string(), identification_source: z.literal("community") }).openapi("Proposed"),
        "A community result, counted as your support",
      ),
      403: errorResponses(403)[403],
      409: errorResponses(409)[409],
      429: errorResponses(429)[429],
    },
    {
      description:
        "A species from the catalogue (`species_id`) or by name (looked up like species/lookup/). Not on your own request (403); a species already a candidate: 409 naming its result (vote on it), unless it is your own withdrawn proposal, which this takes back (201, the same result). 30 proposals an hour.",
    },
  );
  app.openapi(postPropose, async (c) => {
    const user = c.get("user")!;
    await enforceRateLimit(c.env, `propose:${user.id}`, PROPOSAL_RATE);
    const created = await propose(c.env, user, c.req.valid("param").id, c.req.valid("json"), c.get("logger"));
    return c.json({ result_id: created.id, scientific_name: created.scientificName, identification_source: "community" as const }, 201);
  });

  const postWithdraw = mine.post("/results/{id}/withdraw", "Withdraw your community proposal: your support stops counting").io(
    { params: ResultIdParam },
    {
      200: jsonBody(
        z
          .object({
            result_id: z.uuid(),
            withdrawn_at: z.string().nullable().openapi({ description: "When it was withdrawn (the first time, when sent again)." }),
            community_result_id: z.uuid().nullable(),
          })
          .openapi("ProposalWithdrawn"),
        "Withdrawn; consensus recomputed",
      ),
      403: errorResponses(403)[403],
    },
    {
      description:
        "Only its proposer (403 for anyone else's). It stays a candidate with the votes others gave it, shown with `withdrawn_at`; your support no longer counts toward a consensus. Sending it again changes nothing; proposing the species again (`requests/{id}/propose/`) takes the withdrawal back.",
    },
  );
  app.openapi(postWithdraw, async (c) => c.json(await withdrawProposal(c.env, userIdOf(c), c.req.valid("param").id, c.get("logger")), 200));

  const postReport = mine.post("/results/{id}/report", "Report a community proposal to the moderators").io(
    { params: ResultIdParam, body: requestJson(z.strictObject({ reason: z.string().trim().min(1).max(500) }).openapi("ProposalReport")) },
    {
      201: jsonBody(z.object({ result_id: z.uuid(), reported: z.literal(true) }), "Reported"),
      409: errorResponses(409)[409],
      429: errorResponses(429)[429],
    },
    { description: "Once per proposal; not your own. 20 reports an hour." },
  );
  app.openapi(postReport, async (c) => {
    const userId = userIdOf(c);
    await enforceRateLimit(c.env, `proposal-report:${userId}`, REPORT_RATE);
    return c.json(await reportProposal(c.env, userId, c.req.valid("param").id, c.req.valid("json").reason), 201);
  });

  const getReports = moderators.get("/community/reports", "Moderators: reported proposals, oldest report first").io(
    { query: PaginationQuery },
    {
      200: jsonBody(
        pageSchema(
          z
            .object({
              result_id: z.uuid(),
              request_id: z.uuid(),
              scientific_name: z.string(),
              comment: z.string(),
              proposed_by: z.string().nullable(),
              is_hidden: z.boolean(),
              reports: z.number().int(),
              reasons: z.array(z.string()),
              first_reported_at: z.string(),
            })
            .openapi("ReportedProposal"),
          "ReportedProposalPage",
        ),
        "Open reports",
      ),
      403: errorResponses(403)[403],
    },
  );
  app.openapi(getReports, async (c) => {
    const { page, page_size } = c.req.valid("query");
    const { count, rows } = await reportedProposals(c.env, { page, pageSize: page_size });
    const items = rows.map((row) => ({ ...row, is_hidden: Boolean(row.is_hidden), reasons: JSON.parse(row.reasons) as string[] }));
    return c.json(pageOf(c.req.url, page, page_size, count, items), 200);
  });

  const moderate = (hidden: boolean) =>
    moderators
      .post(
        `/results/{id}/${hidden ? "hide" : "unhide"}`,
        hidden ? "Moderators: hide a proposal (it stops counting)" : "Moderators: show a hidden proposal again",
      )
      .io(
        { params: ResultIdParam },
        {
          200: jsonBody(
            z.object({ result_id: z.uuid(), is_hidden: z.boolean(), community_result_id: z.uuid().nullable() }).openapi("Moderated"),
            "Done; its open reports are resolved and consensus recomputed",
          ),
          403: errorResponses(403)[403],
        },
      );
  const postHide = moderate(true);
  app.openapi(postHide, async (c) =>
    c.json(await moderateProposal(c.env, userIdOf(c), c.req.valid("param").id, true, c.get("logger")), 200),
  );
  const postUnhide = moderate(false);
  app.openapi(postUnhide, async (c) =>
    c.json(await moderateProposal(c.env, userIdOf(c), c.req.valid("param").id, false, c.get("logger")), 200),
  );

  // After community/reports: `{id}` would otherwise claim that path.
  const getOne = open
    .get("/community/{id}", "A shared request as the community sees it, with every visible candidate and its comment")
    .io(
      { params: IdParam },
      { 200: jsonBody(FeedItem.extend({ candidates: z.array(Candidate.extend({ comment: z.string() })) }), "Request") },
    );
  app.openapi(getOne, async (c) => c.json(await communityRequest(c.env, c.req.valid("param").id), 200));

  return app;
}
