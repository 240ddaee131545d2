/**
 * The account export (docs/api.md "Exporting your data"): everything the service holds about one
 * user, as one JSON document they download (`GET auth/user/export/`). Each part is shown with the
 * body its own route answers, so its field names are the API's, and photos are the URLs the API
 * gives for them (the owner may fetch them). Notifications are the exception: every one the
 * service made for the user — not only the in-app list's — each with the channels it went by.
 *
 * Two things are never in it:
 * - secrets: the password hash, refresh and access tokens and their jtis, session ids, reset,
 *   email-change and WebSocket tickets, the calendar feed's signed URL and the feed id it signs,
 *   push endpoints (only their host: which push service) and their keys, Idempotency-Keys and their stored answers, OAuth state, the
 *   email provider's message ids and the notifications' and deliveries' dedupe keys. Every
 *   read below names its columns (or reads a table with none of these), so a secret column added
 *   later stays out.
 * - anyone else's private data: another user's plants, notes and unshared requests, and other
 *   people's votes (only counts, as the API shows them), other people's reports and which
 *   moderator handled the user's own, and who caused a notification (its `author_id`). Every
 *   read is scoped to the user: their rows, or rows joined to their own (results of their
 *   requests, reactions on their posts).
 *
 * All reads but the notifications are one `db.batch`: one round trip, and one consistent snapshot
 * of the account. The notifications, which grow without a cap, follow in pages (notificationPages).
 */
import { twoFactorStatus } from "./two-factor";
import { and, asc, count, desc, eq, getTableColumns, inArray, isNull, ne, or, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import { getConfig } from "../config";
import { database } from "../db/client";
import {
  blogCommentReports,
  blogComments,
  blogImages,
  blogPosts,
  blogRevisions,
  calendarEvents,
  calendarFeeds,
  calendarRsvps,
  careReminders,
  collections,
  DELIVERY_STATUSES,
  diseaseRequests,
  diseaseResults,
  emailSuppressions,
  forumAttachments,
  forumPosts,
  forumReactions,
  forumReports,
  forumSubscriptions,
  forumTopics,
  identificationRequests,
  identificationResults,
  notificationDeliveries,
  notificationPreferences,
  notifications,
  oauthAccounts,
  proposalReports,
  pushSubscriptions,
  savedCareInstructions,
  userPlants,
  users,
  votes,
} from "../db/schema";
import type { AuthenticatedUser, Bindings } from "../env";
import { AppError } from "../lib/errors";
import { apiFields } from "../lib/fields";
import { mediaUrl } from "./blog-blocks";
import { commentBody, selectComments } from "./blog-comments";
import { detailBody, groupTaxonomy, isWriter, revisionBody, selectPostDetails, selectTaxonomy } from "./blog-posts";
import { eventBody, selectEvents } from "./calendar";
import { collectionBody, plantBody, selectCollections, selectPlants } from "./collections";
import { diseaseRequestBody, diseaseResultBody } from "./diseases";
import {
  type Attachment,
  attachmentBody,
  postBody,
  type ReactionCounts,
  type ReactionType,
  reportReceipt,
  selectPosts,
  selectTopics,
  topicBody,
} from "./forum";
import { identificationRequestBody, identificationResultBody, shownToOwner } from "./identification-requests";
import { notWithdrawn } from "./notification-delivery";
import { olderThan } from "./notifications";
import { preferencesOf } from "./notification-preferences";
import { enforceRateLimit } from "./rate-limits";
import { reminderBody, selectReminders } from "./reminders";
import { savedCareBody } from "./saved-care";
import { liveSessionsQuery, sessionSummaries } from "./sessions";
import { accountActive, userProfile } from "./users";

/**
 * Every table that holds data about or by a user, by its SQL name, and where the export shows it
 * or why it does not. test/routes/account-export-inventory.test.ts fails when a table linked to
 * `users` (by a foreign key, or through a table that is) is in neither list: a new one must be
 * exported or excluded here, with its reason.
 */
export const EXPORTED_TABLES = {
  users: "`account`: the profile as auth/user/ shows it (never the password hash)",
  oauth_accounts: "`sign_in_methods`: provider, its email and when linked",
  two_factor: "`two_factor`: on or off and since when (never the secret or the recovery codes)",
  notification_preferences: "`notification_preferences`",
  email_suppressions: "`email_suppressions`: the account's addresses no email goes to, and why (no user column: by address)",
  collections: "`collections`",
  user_plants: "`collections[].plants`",
  identification_requests: "`identification_requests`",
  identification_results: "`identification_requests[].results`; `community.proposals` (the user's own proposals)",
  votes: "`identification_requests[].my_votes`, `community.votes` (the user's own votes only)",
  disease_requests: "`disease_requests`",
  disease_results: "`disease_requests[].results`",
  saved_care_instructions: "`saved_care_instructions`",
  care_reminders: "`reminders`",
  calendar_events: "`calendar.events` the user organises",
  calendar_rsvps: "`calendar.rsvps`",
  calendar_feeds: "`calendar.feed`: its dates (never the URL or the id it signs)",
  forum_topics: "`forum.topics`",
  forum_posts: "`forum.posts`",
  forum_reactions: "`forum.reactions` (the user's); counts on the user's posts",
  forum_attachments: "`forum.posts[].attachments`",
  forum_subscriptions: "`forum.subscriptions`",
  forum_reports: "`reports.forum_posts` (never who handled them)",
  blog_posts: "`blog.posts` the user wrote",
  blog_post_categories: "`blog.posts[].categories`",
  blog_post_tags: "`blog.posts[].tags`",
  blog_revisions: "`blog.revisions` the user saved",
  blog_images: "`blog.images` the user uploaded",
  blog_comments: "`blog_comments`",
  blog_comment_reports: "`reports.blog_comments`",
  proposal_reports: "`reports.proposals`",
  push_subscriptions: "`push_devices`: the push service's host, dates and user agent (never the endpoint or keys)",
  refresh_tokens: "`sessions`: as auth/sessions/ lists them (never the token hashes or session ids)",
  notifications: "`notifications`",
  notification_deliveries: "`notifications[].channels`",
} as const;

export const NOT_EXPORTED_TABLES = {
  password_reset_tokens: "secret: an emailed reset link's hash, valid for an hour",
  email_change_tokens: "secret: an emailed confirmation link's hash; the address it would change to is `account.pending_email`",
  ws_tickets: "secret: a one-use WebSocket ticket, valid for seconds",
  oauth_states: "secret: an OAuth sign-in's state, valid for minutes; no user column",
  revoked_tokens: "secret: ids of ended access tokens, kept until they expire; no user column",
  revoked_sessions: "secret: ids of ended sessions, kept until their access tokens expire; no user column",
  idempotency_keys:
    "the client's retry keys and stored copies of answers already given (kept 24 h); what they hold is in the export where the service still holds it",
  push_sends: "which device ids a push delivery reached, for its retries: the push channel's `sent_at` is in `notifications[].channels`",
  blog_post_views: "readers' daily view counts of a post: about its readers, not its writer, and counted for the editors",
  retired_usernames: "a hash of a deleted account's name, kept so nobody takes it; by design it names no account",
} as const;

export const EXPORT_FORMAT: "plant-community-export" = "plant-community-export";
export const EXPORT_VERSION: 1 = 1;

/** The ways a notification reaches its user: the in-app list, email, Web Push. */
export const NOTIFICATION_CHANNELS = ["in_app", "email", "push"] as const;
/** A channel's state in the export: a delivery's status (migrations/0020); the in-app list's is `sent`. */
export { DELIVERY_STATUSES };

type Channel = (typeof NOTIFICATION_CHANNELS)[number];
type ChannelState = { channel: Channel; status: (typeof DELIVERY_STATUSES)[number]; sent_at: string | null };

/**
 * A notification's `data` without other people's ids: the notices one user's act caused another
 * (a mention, a comment reply, a community proposal) carry that user's id as `author_id`, for the
 * per-sender caps (services/notifications.ts `underHourlyCap`). The rest are links to what the
 * notification is about.
 */
const OTHER_PEOPLE_KEYS = new Set(["author_id"]);
function ownData(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).filter(([key]) => !OTHER_PEOPLE_KEYS.has(key)));
}

/**
 * A proposal on a request no longer on show (taken out of the community, or its owner's account
 * deactivated), as its proposer wrote it. Its votes, rank and whether it was accepted are what the
 * request's owner (and nobody else, since) did with it on a request that is theirs alone again:
 * the proposer, who can no longer see the request, is not told them.
 */
function proposalAsWritten(row: typeof identificationResults.$inferSelect) {
  return apiFields(
    row,
    "id requestId speciesId scientificName plantName commonNames family genus identificationSource proposedBy comment createdAt",
  );
}

/** A push endpoint's host (`fcm.googleapis.com`): which service reaches the device, and nothing that reaches it. */
function pushService(endpoint: string): string | null {
  return URL.canParse(endpoint) ? new URL(endpoint).host : null;
}

/** Groups rows by a key, keeping their order. */
function groupBy<T>(rows: readonly T[], key: (row: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const group = out.get(key(row));
    if (group) group.push(row);
    else out.set(key(row), [row]);
  }
  return out;
}

/**
 * Everything `viewer`'s account holds, as the export document. Spends the user's
 * ACCOUNT_EXPORT_RATE_LIMIT first (429 past it): the export is the heaviest read there is.
 */
export async function exportAccount(env: Bindings, viewer: AuthenticatedUser, now = new Date()) {
  const userId = viewer.id;
  await enforceRateLimit(env, `account-export:user:${userId}`, getConfig(env).ACCOUNT_EXPORT_RATE_LIMIT);
  const db = database(env);
  // Whether it is on and since when: never the secret or the recovery codes.
  const twoFactor = await twoFactorStatus(env, userId);
  const q = identificationRequests;
  const r = identificationResults;
  const dq = diseaseRequests;
  const dr = diseaseResults;
  const fp = forumPosts;
  const fr = forumReactions;
  // The user's live forum posts: their reactions and photos are shown, as the forum shows them.
  const ownLivePost = and(eq(fp.authorId, userId), eq(fp.isDeleted, false));
  // The blog posts the user wrote, as blog/posts/{id}/ shows them to the user: drafts only while
  // they still write for the blog. A writer taken off it keeps their published posts, not a view of
  // the drafts the editors go on working on (the API answers those 404 to them).
  const ownPost = and(eq(blogPosts.authorId, userId), isWriter(viewer) ? undefined : eq(blogPosts.status, "published"));

  const [
    [user],
    links,
    [preferences],
    suppressionRows,
    collectionRows,
    plantRows,
    requestRows,
    resultRows,
    voteRows,
    diseaseRequestRows,
    diseaseResultRows,
    careCards,
    reminderRows,
    eventRows,
    rsvpRows,
    [feed],
    topicRows,
    postRows,
    reactionTallies,
    attachmentRows,
    solutionRows,
    reactionRows,
    subscriptionRows,
    commentRows,
    blogPostRows,
    blogCategoryRows,
    blogTagRows,
    revisionRows,
    blogImageRows,
    forumReportRows,
    commentReportRows,
    proposalReportRows,
    proposalRows,
    deviceRows,
    sessionRows,
  ] = await db.batch([
    db.select().from(users).where(eq(users.id, userId)),
    // The provider's account id and email, never its tokens (none are stored) or OAuth state.
    db
      .select({
        provider: oauthAccounts.provider,
        email: oauthAccounts.email,
        emailVerified: oauthAccounts.emailVerified,
        linkedAt: oauthAccounts.createdAt,
      })
      .from(oauthAccounts)
      .where(eq(oauthAccounts.userId, userId))
      .orderBy(asc(oauthAccounts.createdAt)),
    db.select().from(notificationPreferences).where(eq(notificationPreferences.userId, userId)),
    // The user's addresses (the account's, and one it is changing to) that no email goes to, as
    // the webhook stored them (services/email-events.ts bareAddress). Never the provider's event id.
    db
      .select({ address: emailSuppressions.address, reason: emailSuppressions.reason, createdAt: emailSuppressions.createdAt })
      .from(emailSuppressions)
      .innerJoin(
        users,
        or(
          eq(emailSuppressions.address, sql`lower(trim(${users.email}))`),
          eq(emailSuppressions.address, sql`lower(trim(${users.pendingEmail}))`),
        ),
      )
      .where(eq(users.id, userId))
      .orderBy(asc(emailSuppressions.createdAt), asc(emailSuppressions.address)),
    selectCollections(db, eq(collections.userId, userId)).orderBy(
      desc(collections.isDefault),
      asc(collections.createdAt),
      asc(collections.id),
    ),
    selectPlants(db, eq(userPlants.userId, userId)).orderBy(desc(userPlants.createdAt), desc(userPlants.id)),
    db.select().from(q).where(eq(q.userId, userId)).orderBy(desc(q.createdAt), desc(q.id)),
    // Every result of the user's requests (community proposals on them included), as their owner sees them.
    db
      .select(getTableColumns(r))
      .from(r)
      .innerJoin(q, eq(q.id, r.requestId))
      .where(and(eq(q.userId, userId), shownToOwner))
      .orderBy(desc(r.confidenceScore), asc(r.rank)),
    // The user's own votes only: other people's are in the results' counts.
    db
      .select({
        resultId: votes.resultId,
        requestId: r.requestId,
        voteType: votes.voteType,
        createdAt: votes.createdAt,
        requestOwner: q.userId,
      })
      .from(votes)
      .innerJoin(r, eq(r.id, votes.resultId))
      .innerJoin(q, eq(q.id, r.requestId))
      .where(eq(votes.userId, userId))
      .orderBy(asc(votes.createdAt)),
    db.select().from(dq).where(eq(dq.userId, userId)).orderBy(desc(dq.createdAt), desc(dq.id)),
    db
      .select(getTableColumns(dr))
      .from(dr)
      .innerJoin(dq, eq(dq.id, dr.requestId))
      .where(eq(dq.userId, userId))
      .orderBy(desc(dr.probability), asc(dr.rank)),
    db
      .select()
      .from(savedCareInstructions)
      .where(eq(savedCareInstructions.userId, userId))
      .orderBy(desc(savedCareInstructions.createdAt), desc(savedCareInstructions.id)),
    selectReminders(db, eq(careReminders.userId, userId)).orderBy(asc(careReminders.nextDueAt), asc(careReminders.id)),
    selectEvents(db, viewer, eq(calendarEvents.organizerId, userId)).orderBy(asc(calendarEvents.startsAt), asc(calendarEvents.id)),
    db
      .select({
        eventId: calendarRsvps.eventId,
        status: calendarRsvps.status,
        createdAt: calendarRsvps.createdAt,
        updatedAt: calendarRsvps.updatedAt,
      })
      .from(calendarRsvps)
      .where(eq(calendarRsvps.userId, userId))
      .orderBy(asc(calendarRsvps.createdAt)),
    // Whether the user has a calendar feed URL, and its dates: never its id, which the URL is signed over.
    db
      .select({ createdAt: calendarFeeds.createdAt, lastFetchedAt: calendarFeeds.lastFetchedAt })
      .from(calendarFeeds)
      .where(eq(calendarFeeds.userId, userId)),
    selectTopics(env).where(eq(forumTopics.authorId, userId)).orderBy(asc(forumTopics.createdAt), asc(forumTopics.id)),
    selectPosts(env).where(eq(fp.authorId, userId)).orderBy(asc(fp.createdAt), asc(fp.id)),
    // Reactions on the user's posts, counted per type as the forum shows them (whose they are stays out).
    db
      .select({ postId: fr.postId, type: fr.type, n: count(), mine: sql<number>`max(${fr.userId} = ${userId})` })
      .from(fr)
      .innerJoin(fp, eq(fp.id, fr.postId))
      .where(ownLivePost)
      .groupBy(fr.postId, fr.type),
    db
      .select({
        postId: forumAttachments.postId,
        image: forumAttachments.image,
        width: forumAttachments.width,
        height: forumAttachments.height,
      })
      .from(forumAttachments)
      .innerJoin(fp, eq(fp.id, forumAttachments.postId))
      .where(ownLivePost)
      .orderBy(asc(forumAttachments.postId), asc(forumAttachments.position)),
    // Which of the user's posts are their topic's marked solution.
    db
      .select({ postId: forumTopics.solutionPostId })
      .from(forumTopics)
      .innerJoin(fp, eq(fp.id, forumTopics.solutionPostId))
      .where(eq(fp.authorId, userId)),
    db
      .select({ postId: fr.postId, type: fr.type, createdAt: fr.createdAt })
      .from(fr)
      .where(eq(fr.userId, userId))
      .orderBy(asc(fr.createdAt)),
    db
      .select({ topicId: forumSubscriptions.topicId, createdAt: forumSubscriptions.createdAt })
      .from(forumSubscriptions)
      .where(eq(forumSubscriptions.userId, userId))
      .orderBy(asc(forumSubscriptions.createdAt)),
    selectComments(env).where(eq(blogComments.userId, userId)).orderBy(asc(blogComments.createdAt), asc(blogComments.id)),
    // Blog posts the user wrote (drafts included while a writer), as the editor shows them, with their categories and tags.
    selectPostDetails(env).where(ownPost).orderBy(desc(blogPosts.updatedAt), desc(blogPosts.id)),
    ...selectTaxonomy(db, (postId) => inArray(postId, db.select({ id: blogPosts.id }).from(blogPosts).where(ownPost))),
    // The revisions the user saved, on any post: which, its number and when (the post's own text is above).
    db
      .select({
        postId: blogRevisions.postId,
        number: blogRevisions.number,
        createdAt: blogRevisions.createdAt,
        authorId: blogRevisions.authorId,
        username: users.username,
        current: blogPosts.revision,
      })
      .from(blogRevisions)
      .innerJoin(blogPosts, eq(blogPosts.id, blogRevisions.postId))
      .innerJoin(users, eq(users.id, blogRevisions.authorId))
      .where(eq(blogRevisions.authorId, userId))
      .orderBy(asc(blogRevisions.createdAt), asc(blogRevisions.postId), asc(blogRevisions.number)),
    db
      .select({ ref: blogImages.ref, createdAt: blogImages.createdAt })
      .from(blogImages)
      .where(eq(blogImages.uploadedBy, userId))
      .orderBy(asc(blogImages.createdAt), asc(blogImages.ref)),
    // Reports the user filed: what, why, and where it stands. Never who dealt with it, nor anyone else's reports.
    db
      .select({
        id: forumReports.id,
        post_id: forumReports.postId,
        reason: forumReports.reason,
        status: forumReports.status,
        created_at: forumReports.createdAt,
        resolved_at: forumReports.resolvedAt,
      })
      .from(forumReports)
      .where(eq(forumReports.reporterId, userId))
      .orderBy(asc(forumReports.createdAt), asc(forumReports.id)),
    db
      .select({
        id: blogCommentReports.id,
        commentId: blogCommentReports.commentId,
        reason: blogCommentReports.reason,
        status: blogCommentReports.status,
        createdAt: blogCommentReports.createdAt,
      })
      .from(blogCommentReports)
      .where(eq(blogCommentReports.reporterId, userId))
      .orderBy(asc(blogCommentReports.createdAt), asc(blogCommentReports.id)),
    db
      .select({
        resultId: proposalReports.resultId,
        reason: proposalReports.reason,
        createdAt: proposalReports.createdAt,
        resolvedAt: proposalReports.resolvedAt,
      })
      .from(proposalReports)
      .where(eq(proposalReports.userId, userId))
      .orderBy(asc(proposalReports.createdAt), asc(proposalReports.resultId)),
    // Species the user proposed on other people's requests: their own words, and the request's id only.
    // Whether the request is on show now: once it is not, what became of the proposal is its owner's.
    db
      .select({ ...getTableColumns(r), onShow: sql<number>`(${q.isSharedWithCommunity} = 1 AND ${accountActive(q.userId)})` })
      .from(r)
      .innerJoin(q, eq(q.id, r.requestId))
      .where(and(eq(r.proposedBy, userId), or(isNull(q.userId), ne(q.userId, userId))))
      .orderBy(asc(r.createdAt)),
    // When each device subscribed and what it called itself, and its push service (the endpoint's
    // host, below): never the endpoint itself, a capability to push to the device, or its keys.
    db
      .select({
        endpoint: pushSubscriptions.endpoint,
        createdAt: pushSubscriptions.createdAt,
        lastSuccessAt: pushSubscriptions.lastSuccessAt,
        failingSince: pushSubscriptions.failingSince,
        userAgent: pushSubscriptions.userAgent,
      })
      .from(pushSubscriptions)
      .where(eq(pushSubscriptions.userId, userId))
      .orderBy(asc(pushSubscriptions.createdAt)),
    // Where the user is signed in, as auth/sessions/ lists it, without the sessions' ids.
    liveSessionsQuery(env, userId),
  ]);
  if (!user) throw new AppError("AUTHENTICATION_REQUIRED", 401, "User no longer exists.");

  const plantsByCollection = groupBy(plantRows, (p) => p.collectionId);
  const resultsByRequest = groupBy(resultRows, (x) => x.requestId);
  const ownVotes = voteRows.filter((v) => v.requestOwner === userId);
  const votesByRequest = groupBy(ownVotes, (v) => v.requestId);
  const voteBody = (v: (typeof voteRows)[number]) => apiFields(v, "resultId requestId voteType createdAt");
  const diseaseResultsByRequest = groupBy(diseaseResultRows, (x) => x.requestId);

  const tallies = new Map<string, ReactionCounts>();
  const mine = new Map<string, ReactionType[]>();
  for (const t of reactionTallies) {
    const counts = tallies.get(t.postId) ?? { like: 0, love: 0, helpful: 0, thanks: 0 };
    counts[t.type] = t.n;
    tallies.set(t.postId, counts);
    if (t.mine) mine.set(t.postId, [...(mine.get(t.postId) ?? []), t.type]);
  }
  const attachments = new Map<string, Attachment[]>();
  for (const a of attachmentRows) {
    const body = attachmentBody(a);
    if (body) attachments.set(a.postId, [...(attachments.get(a.postId) ?? []), body]);
  }
  const solutions = new Set(solutionRows.map((s) => s.postId));
  const taxonomy = groupTaxonomy(blogCategoryRows, blogTagRows);

  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exported_at: now.toISOString(),
    account: userProfile(user),
    sign_in_methods: links.map((l) => apiFields(l, "provider email emailVerified linkedAt")),
    two_factor: { enabled: twoFactor.enabled, enabled_at: twoFactor.enabledAt },
    notification_preferences: preferencesOf(preferences),
    email_suppressions: suppressionRows.map((x) => apiFields(x, "address reason createdAt")),
    collections: collectionRows.map((c) => ({ ...collectionBody(c), plants: (plantsByCollection.get(c.id) ?? []).map(plantBody) })),
    identification_requests: requestRows.map((row) => ({
      ...identificationRequestBody(row),
      results: (resultsByRequest.get(row.id) ?? []).map(identificationResultBody),
      my_votes: (votesByRequest.get(row.id) ?? []).map(voteBody),
    })),
    disease_requests: diseaseRequestRows.map((row) => ({
      ...diseaseRequestBody(row),
      results: (diseaseResultsByRequest.get(row.id) ?? []).map(diseaseResultBody),
    })),
    saved_care_instructions: careCards.map(savedCareBody),
    reminders: reminderRows.map(reminderBody),
    calendar: {
      events: eventRows.map(eventBody),
      rsvps: rsvpRows.map((x) => apiFields(x, "eventId status createdAt updatedAt")),
      feed: feed ? apiFields(feed, "createdAt lastFetchedAt") : null,
    },
    forum: {
      topics: topicRows.map(topicBody),
      posts: postRows.map((p) => postBody(p, solutions.has(p.id) ? p.id : null, tallies.get(p.id), mine.get(p.id), attachments.get(p.id))),
      reactions: reactionRows.map((x) => apiFields(x, "postId type createdAt")),
      subscriptions: subscriptionRows.map((x) => apiFields(x, "topicId createdAt")),
    },
    blog: {
      posts: blogPostRows.map((row) => detailBody(row, taxonomy)),
      revisions: revisionRows.map((r) => ({ post_id: r.postId, ...revisionBody(r, r.current) })),
      images: blogImageRows.map((i) => ({ id: i.ref, url: mediaUrl(i.ref), created_at: i.createdAt })),
    },
    blog_comments: commentRows.map(commentBody),
    reports: {
      forum_posts: forumReportRows.map((x) => ({ ...reportReceipt(x), reason: x.reason, resolved_at: x.resolved_at })),
      blog_comments: commentReportRows.map((x) => apiFields(x, "id commentId reason status createdAt")),
      // A proposal's reports are closed together when a moderator hides or shows it again.
      proposals: proposalReportRows.map((x) => ({
        result_id: x.resultId,
        reason: x.reason,
        status: x.resolvedAt === null ? ("open" as const) : ("resolved" as const),
        created_at: x.createdAt,
        resolved_at: x.resolvedAt,
      })),
    },
    community: {
      proposals: proposalRows.map(({ onShow, ...row }) => (onShow ? identificationResultBody(row) : proposalAsWritten(row))),
      votes: voteRows.filter((v) => v.requestOwner !== userId).map(voteBody),
    },
    push_devices: deviceRows.map((x) => ({
      push_service: pushService(x.endpoint),
      ...apiFields(x, "createdAt lastSuccessAt failingSince userAgent"),
    })),
    // No ids: an export is a file that travels (mail, cloud drives), and an id would only let
    // whoever holds the file name the owner's sessions; the owner ends them from the live list.
    sessions: sessionSummaries(sessionRows).map(({ id: _id, ...session }) => session),
  };
}

/**
 * How many notifications one read takes. Notifications are the one part of an account that grows
 * without a cap (a reminder a day is 365 a year), so the export reads them in pages, newest first,
 * and writes each page out before reading the next: the Worker never holds them all.
 */
export const NOTIFICATION_PAGE = 500;

/**
 * The user's notifications as the export shows them, a page at a time, newest first (by
 * `created_at`, then `id`, so rows made in the same millisecond are neither repeated nor skipped
 * across pages). Each page is one batch: the notifications and how each went by email and push.
 */
export async function* notificationPages(env: Bindings, userId: string, pageSize = NOTIFICATION_PAGE) {
  const db = database(env);
  // The digest email a held email was gathered into.
  const digests = alias(notificationDeliveries, "digest");
  let after: { createdAt: string; id: string } | null = null;
  for (;;) {
    const page = and(eq(notifications.userId, userId), notWithdrawn(), after ? olderThan(after) : undefined);
    const newestFirst = [desc(notifications.createdAt), desc(notifications.id)] as const;
    const [notificationRows, deliveryRows] = await db.batch([
      // Every notification the service made for the user, in-app or not (one whose type they turned
      // off in-app still went by email or push). A withdrawn one is blank and shown nowhere: out.
      // Never its dedupe key.
      db
        .select({
          id: notifications.id,
          type: notifications.type,
          title: notifications.title,
          body: notifications.body,
          data: notifications.data,
          inApp: notifications.inApp,
          isRead: notifications.isRead,
          readAt: notifications.readAt,
          createdAt: notifications.createdAt,
        })
        .from(notifications)
        .where(page)
        .orderBy(...newestFirst)
        .limit(pageSize),
      // How each went by email and push: the channel, the status and when it was sent (an email
      // gathered into a digest: when the digest was). Never the provider's message id, the dedupe
      // key or the delivery's error detail.
      db
        .select({
          notificationId: sql<string>`${notificationDeliveries.notificationId}`,
          channel: notificationDeliveries.channel,
          status: notificationDeliveries.status,
          sentAt: sql<string | null>`coalesce(${notificationDeliveries.sentAt}, ${digests.sentAt})`,
        })
        .from(notificationDeliveries)
        .leftJoin(digests, eq(digests.id, notificationDeliveries.digestId))
        .where(
          and(
            eq(notificationDeliveries.userId, userId),
            inArray(
              notificationDeliveries.notificationId,
              db
                .select({ id: notifications.id })
                .from(notifications)
                .where(page)
                .orderBy(...newestFirst)
                .limit(pageSize),
            ),
          ),
        )
        .orderBy(asc(notificationDeliveries.channel), asc(notificationDeliveries.createdAt)),
    ]);
    const deliveriesByNotification = groupBy(deliveryRows, (d) => d.notificationId);
    const notificationBody = (n: (typeof notificationRows)[number]) => ({
      ...apiFields(n, "id type title body"),
      data: ownData(n.data),
      ...apiFields(n, "isRead readAt createdAt"),
      channels: [
        ...(n.inApp ? [{ channel: "in_app", status: "sent", sent_at: n.createdAt } satisfies ChannelState] : []),
        ...(deliveriesByNotification.get(n.id) ?? []).map(
          (d) => ({ channel: d.channel, status: d.status, sent_at: d.sentAt }) satisfies ChannelState,
        ),
      ],
    });
    if (notificationRows.length > 0) yield notificationRows.map(notificationBody);
    const last = notificationRows.at(-1);
    if (!last || notificationRows.length < pageSize) return;
    after = { createdAt: last.createdAt, id: last.id };
  }
}

/**
 * The export as the bytes of one JSON document, streamed: everything but `notifications` (read
 * in one batch, by exportAccount, before the first byte, so a refusal is still an error answer),
 * then the notifications a page at a time. A read failing mid-way ends the stream with an error,
 * which the client sees as a download cut short (and not valid JSON).
 */
export async function exportAccountStream(env: Bindings, viewer: AuthenticatedUser, now = new Date()) {
  const document = await exportAccount(env, viewer, now);
  const pages = notificationPages(env, viewer.id);
  const encoder = new TextEncoder();
  // `notifications` is the last key: the document up to its closing brace, then the list.
  const head = JSON.stringify(document);
  let first = true;
  let started = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(encoder.encode(`${head.slice(0, -1)},"notifications":[`));
        return;
      }
      const next = await pages.next();
      if (next.done) {
        controller.enqueue(encoder.encode("]}"));
        controller.close();
        return;
      }
      const items = next.value.map((n) => JSON.stringify(n)).join(",");
      controller.enqueue(encoder.encode(first ? items : `,${items}`));
      first = false;
    },
    async cancel() {
      await pages.return(undefined);
    },
  });
  return { document, body };
}
