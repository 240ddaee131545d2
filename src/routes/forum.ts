/**
 * Forum (API.md §5) under /api/v1/forum/: categories, topics, posts, reactions, solutions,
 * subscriptions, reports and moderation. Reads are public; writes need a user (cookie writes
 * carry CSRF, checked by middleware) and are rate limited per user (FORUM_POST_RATE_LIMIT).
 * Post bodies are sanitised HTML (src/lib/sanitise.ts). Rules the spec leaves open are listed
 * in src/services/forum.ts.
 *
 * Starting a topic and replying take JSON, or multipart with the same text fields plus photos
 * `image_1` … `image_6` (API.md §2.4 rules, trust level basic and up). Those two routes are
 * registered for the document and routed by hand, because one handler reads both body kinds;
 * every part is validated before anything is written.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getConfig } from "../config";
import type { AppEnv } from "../env";
import { createRouter, routeSet, documentOnly } from "./router";
import { AppError, fieldErrorsFrom, type FieldErrors } from "../lib/errors";
import { settleAfterAnswer } from "../lib/settle";
import type { ValidatedImage } from "../lib/images";
import { requireAuth, userIdOf } from "../middleware/auth";
import {
  assertMayAttachImages,
  attachmentsFor,
  categoryBody,
  categoryBySlug,
  createReply,
  createTopic,
  deletePost,
  deleteTopic,
  editPost,
  FORUM_MODERATOR_ROLES,
  getTopic,
  listCategories,
  MAX_ATTACHMENTS,
  moderateTopic,
  postBodies,
  postBody,
  listPosts,
  REACTION_TYPES,
  REPORT_STATUSES,
  reportBody,
  reportReceipt,
  listReports,
  reportPost,
  resolveReport,
  setSolution,
  setSubscription,
  toggleReaction,
  topicBody,
  topicDetail,
  listTopics,
  updateTopicTitle,
} from "../services/forum";
import { announceNotifications, announceUpdates, announceWithdrawals } from "../services/notifications";
import { enforceRateLimit } from "../services/rate-limits";
import { presentedCredentials } from "../lib/http-caching";
import { cacheKey, cachedJson, canonicalReadUrl, notModified } from "./cached-reads";
import { purgePublicReads } from "../services/public-cache";
import { pageOf, PaginationQuery } from "./pagination";
import { jsonBody, pageSchema, errorResponse, noContent, IdParam } from "./schemas";
import { readImageParts, readMultipartForm, textFields, throwIfFieldErrors, parseFields, readJsonFields } from "./uploads";

const tags = ["Forum"];
const Slug = z.object({ slug: z.string().min(1).max(100).openapi({ example: "houseplants" }) });
const readErrors = { 400: errorResponse(400, "Invalid input"), 404: errorResponse(404, "Not found") };
const writeErrors = {
  ...readErrors,
  401: errorResponse(401, "Not signed in"),
  403: errorResponse(403, "Not allowed (not yours, not staff, topic locked, edit window closed) or CSRF failed"),
  429: errorResponse(429, "Too many forum writes"),
};
const json = <T extends z.ZodType>(schema: T) => ({ body: { content: { "application/json": { schema } }, required: true } });

// ---------------------------------------------------------------------------------------------
// Schemas

export const AuthorSchema = z
  .object({ id: z.uuid(), username: z.string(), display_name: z.string(), avatar_url: z.string().nullable() })
  .openapi("ForumAuthor");

export const CategorySchema = z
  .object({
    id: z.uuid(),
    slug: z.string(),
    name: z.string(),
    description: z.string(),
    position: z.number().int(),
    topic_count: z.number().int(),
  })
  .openapi("ForumCategory");

export const TopicSchema = z
  .object({
    id: z.uuid(),
    category: z.string().openapi({ description: "The category's slug." }),
    title: z.string(),
    author: AuthorSchema.nullable(),
    is_locked: z.boolean(),
    is_pinned: z.boolean(),
    reply_count: z.number().int().openapi({ description: "Replies (not counting the opening post), deleted ones excluded." }),
    last_activity_at: z.string().openapi({ format: "date-time" }),
    solution_post_id: z.uuid().nullable(),
    title_edited_by_moderator: z.boolean().openapi({
      description:
        "A moderator has changed the title of this topic (not their own): its author can no longer change it (403 EDIT_WINDOW_CLOSED).",
    }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("ForumTopic");

export const AttachmentSchema = z
  .object({
    url: z.string().openapi({
      description: "Served by GET /api/v1/media/images/{file}.",
      example: "/api/v1/media/images/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.jpg",
    }),
    width: z.number().int(),
    height: z.number().int(),
    content_type: z.enum(["image/jpeg", "image/png", "image/webp"]),
  })
  .openapi("ForumAttachment");

const ReactionCountsSchema = z
  .object({ like: z.number().int(), love: z.number().int(), helpful: z.number().int(), thanks: z.number().int() })
  .openapi("ForumReactionCounts");

export const PostSchema = z
  .object({
    id: z.uuid(),
    topic_id: z.uuid(),
    author: AuthorSchema.nullable().openapi({ description: "null for deleted posts." }),
    body: z.string().openapi({ description: 'Sanitised HTML, safe to render as-is; "[deleted]" for deleted posts.' }),
    is_first_post: z.boolean().openapi({ description: "The topic's opening post." }),
    is_deleted: z.boolean(),
    is_solution: z.boolean(),
    reactions: ReactionCountsSchema,
    my_reactions: z.array(z.enum(REACTION_TYPES)).openapi({ description: "The caller's reactions (empty when anonymous)." }),
    attachments: z.array(AttachmentSchema).openapi({ description: "Attached photos in upload order (empty for deleted posts)." }),
    edited_at: z.string().nullable(),
    edited_by_moderator: z.boolean().openapi({
      description: "A moderator has edited this post (not their own): its author can no longer edit it (403 EDIT_WINDOW_CLOSED).",
    }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("ForumPost");

export const TopicDetailSchema = TopicSchema.extend({
  first_post: PostSchema.nullable().openapi({ description: "The opening post." }),
  is_subscribed: z.boolean().openapi({ description: "Whether the caller follows the topic (false when anonymous)." }),
}).openapi("ForumTopicDetail");

const title = z
  .string()
  .trim()
  .min(5, "Ensure this field has at least 5 characters.")
  .max(200, "Ensure this field has no more than 200 characters.");
const body = z
  .string()
  .trim()
  .min(1, "This field may not be blank.")
  .max(20000, "Ensure this field has no more than 20000 characters.")
  .openapi({
    description:
      "Plain text (newlines kept) or a small HTML subset: p, br, hr, b/strong, i/em, u, s/del, code, pre, blockquote, ul/ol/li, h2–h4, a[href] (http, https, mailto, relative). Everything else is removed.",
  });

const TopicCreate = z.object({ title, body }).strict().openapi("ForumTopicCreate");
const TopicPatch = z.object({ title }).strict().openapi("ForumTopicUpdate");
const PostCreate = z.object({ body }).strict().openapi("ForumPostCreate");
const binary = (n: number) =>
  z
    .any()
    .optional()
    .openapi({
      type: "string",
      format: "binary",
      description:
        n === 1
          ? `Photo (JPEG, PNG or WebP; the photo rules of docs/api.md § Limits). Up to ${MAX_ATTACHMENTS}: image_1 … image_${MAX_ATTACHMENTS}, kept in that order; trust level basic and up.`
          : `Photo ${n}.`,
    });
const imageFields = Object.fromEntries(Array.from({ length: MAX_ATTACHMENTS }, (_, i) => [`image_${i + 1}`, binary(i + 1)]));
const TopicUpload = z.strictObject({ title, body, ...imageFields }).openapi("ForumTopicUpload");
const PostUpload = z.strictObject({ body, ...imageFields }).openapi("ForumPostUpload");
const withImages = <J extends z.ZodType, M extends z.ZodType>(jsonSchema: J, multipartSchema: M) => ({
  body: { content: { "application/json": { schema: jsonSchema }, "multipart/form-data": { schema: multipartSchema } }, required: true },
});
const ReactionBody = z
  .object({ type: z.enum(REACTION_TYPES) })
  .strict()
  .openapi("ForumReactionToggle");
const ReactionResult = z
  .object({
    post_id: z.uuid(),
    type: z.enum(REACTION_TYPES),
    reacted: z.boolean().openapi({ description: "true: added; false: removed." }),
    reactions: ReactionCountsSchema,
    my_reactions: z.array(z.enum(REACTION_TYPES)),
  })
  .openapi("ForumReactionResult");
const SolutionBody = z.object({ post_id: z.uuid() }).strict().openapi("ForumSolution");
const ModerateBody = z
  .object({ is_locked: z.boolean().optional(), is_pinned: z.boolean().optional() })
  .strict()
  .refine((b) => b.is_locked !== undefined || b.is_pinned !== undefined, { message: "Send is_locked and/or is_pinned." })
  .openapi("ForumTopicModerate");
const SubscriptionSchema = z.object({ topic_id: z.uuid(), subscribed: z.boolean() }).openapi("ForumSubscription");
const ReportCreate = z
  .object({
    reason: z.string().trim().min(1, "This field may not be blank.").max(500, "Ensure this field has no more than 500 characters."),
  })
  .strict()
  .openapi("ForumReportCreate");
const ReportSchema = z
  .object({
    id: z.uuid(),
    post_id: z.uuid(),
    topic_id: z.uuid(),
    reporter: z.object({ id: z.uuid(), username: z.string() }),
    reason: z.string(),
    status: z.enum(REPORT_STATUSES),
    post_body: z.string().openapi({ description: "The reported post's sanitised body (kept for moderators even when deleted)." }),
    post_is_deleted: z.boolean(),
    resolved_by: z.uuid().nullable(),
    resolved_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi("ForumReport");
const ReportPatch = z
  .object({ status: z.enum(REPORT_STATUSES) })
  .strict()
  .openapi("ForumReportUpdate");

// ---------------------------------------------------------------------------------------------

const IMAGE_PART = /^image_(\d+)$/;

/**
 * A new topic's or reply's body: JSON, or multipart with the same text fields and photos
 * `image_1` … `image_6`. Sending photos needs trust level basic (403 TRUST_LEVEL_TOO_LOW, checked
 * before the photos are read); every part is validated before anything is written (400 with
 * every problem, 413 when a photo is too large).
 */
async function readPostInput<T extends typeof TopicCreate | typeof PostCreate>(
  c: Context<AppEnv>,
  schema: T,
): Promise<{ fields: z.infer<T>; images: ValidatedImage[] }> {
  const contentType = (c.req.header("Content-Type") ?? "").toLowerCase();
  if (contentType.startsWith("multipart/form-data")) {
    const form = await readMultipartForm(c);
    const fieldErrors: FieldErrors = {};
    let sendsImages = false;
    for (const [name, value] of form.entries()) {
      const n = IMAGE_PART.exec(name);
      if (n) {
        sendsImages = true;
        const i = Number(n[1]);
        if (i < 1 || i > MAX_ATTACHMENTS)
          fieldErrors[name] = [`At most ${MAX_ATTACHMENTS} images per post (image_1 … image_${MAX_ATTACHMENTS}).`];
        else if (form.getAll(name).length > 1) fieldErrors[name] = ["Send one file per field."];
      } else if (typeof value !== "string") {
        fieldErrors[name] = ["Expected text, not a file."];
      }
    }
    if (sendsImages) await assertMayAttachImages(c.env, userIdOf(c));
    const images = await readImageParts(form, fieldErrors, MAX_ATTACHMENTS, false);
    const fields = parseFields(schema, textFields(form), fieldErrors);
    throwIfFieldErrors(fieldErrors);
    return { fields: fields as z.infer<T>, images };
  }
  if (/^application\/([a-z.-]+\+)?json/.test(contentType)) {
    return { fields: (await readJsonFields(c, schema, "Malformed JSON in request body")) as z.infer<T>, images: [] };
  }
  throw new AppError("UNSUPPORTED_MEDIA_TYPE", 415, "Send the post as application/json, or as multipart/form-data with images.");
}

/** A path parameter checked like the validated routes do (400 VALIDATION_ERROR). */
function param<S extends typeof IdParam | typeof Slug>(c: Context<AppEnv>, schema: S): z.infer<S> {
  const input = c.req.param();
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new AppError("VALIDATION_ERROR", 400, "Invalid input.", fieldErrorsFrom(parsed.error, input));
  return parsed.data as z.infer<S>;
}

async function limitWrites(c: Context<AppEnv>, bucket: "post" | "react") {
  await enforceRateLimit(c.env, `forum-${bucket}:user:${userIdOf(c)}`, getConfig(c.env).FORUM_POST_RATE_LIMIT);
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** Writes that change nothing anonymous readers see (a subscription, a report). */
const PRIVATE_WRITES = /\/(subscribe|report)\/?$/;

/**
 * A forum read: from the edge cache for anonymous readers (the same answer for all of them, so
 * `Vary` names the credentials), built fresh for a signed-in one (it carries their own reactions
 * and subscriptions, and is private).
 */
function anonymousCached(c: Context<AppEnv>, key: string, build: () => Promise<unknown>): Promise<Response> {
  if (presentedCredentials(c)) return build().then((body) => c.json(body as object, 200));
  return cachedJson(c, "forum", key, build, { vary: "Authorization, Cookie" });
}

export function forumRoutes() {
  const app = createRouter();
  // What anonymous readers see is cached at the edge (anonymousCached): every successful write
  // through this API that may change it moves the forum's cache generation. Following a topic
  // and reporting a post change only the caller's and the moderators' views, so they do not:
  // otherwise any account could empty the forum's cache at will.
  app.use("*", async (c, next) => {
    await next();
    if (SAFE_METHODS.has(c.req.method) || c.res.status >= 400 || PRIVATE_WRITES.test(c.req.path)) return;
    // The write is committed, so its answer stands whatever the purge does (settleAfterAnswer).
    // A purge that never lands leaves anonymous readers the old answer for at most the forum's
    // edge TTL (AREA_TTL_S, a minute).
    await settleAfterAnswer(() => purgePublicReads(c.env, "forum"), {
      logger: c.get("logger"),
      message: "could not purge the forum's cached reads after a write",
    });
  });
  const plain = routeSet({ tags, errors: {} });
  const read = routeSet({ tags, errors: readErrors });
  const write = routeSet({ tags, errors: writeErrors });
  const moderators = write.forRoles(...FORUM_MODERATOR_ROLES);
  const signedIn = write.signedIn();

  // Categories and topics -----------------------------------------------------------------------

  const getCategories = plain
    .get(`/categories`, "Forum categories with their topic counts")
    .io(
      {},
      { 200: jsonBody(z.object({ results: z.array(CategorySchema) }).openapi("ForumCategoryList"), "All categories"), ...notModified },
    );
  app.openapi(getCategories, async (c) =>
    anonymousCached(c, cacheKey("/forum/categories", {}), async () => ({ results: (await listCategories(c.env)).map(categoryBody) })),
  );

  const getCategoriesBySlugTopics = read
    .get(`/categories/{slug}/topics`, "Topics in a category: pinned first, then by latest activity")
    .io(
      { params: Slug, query: PaginationQuery },
      { 200: jsonBody(pageSchema(TopicSchema, "ForumTopicPage"), "Page of topics"), ...notModified },
    );
  app.openapi(getCategoriesBySlugTopics, async (c) => {
    const { page, page_size } = c.req.valid("query");
    const { slug } = c.req.valid("param");
    return anonymousCached(c, cacheKey(`/forum/categories/${slug}/topics`, { page, page_size }), async () => {
      const category = await categoryBySlug(c.env, slug);
      const { count, rows } = await listTopics(c.env, category.id, { page, pageSize: page_size });
      return pageOf(canonicalReadUrl(c, { page, page_size }), page, page_size, count, rows.map(topicBody));
    });
  });

  const photoPostErrors = {
    413: errorResponse(
      413,
      "A photo is too large (`FILE_TOO_LARGE`), or would take the account past its storage allowance (`STORAGE_FULL`)",
      "FILE_TOO_LARGE",
    ),
    415: errorResponse(415, "Neither JSON nor multipart"),
  };
  const createTopicRoute = signedIn
    .post(
      `/categories/{slug}/topics`,
      "Start a topic (its body becomes the opening post; you are subscribed to it); JSON, or multipart with photos image_1 … image_6",
    )
    .io(
      { params: Slug, ...withImages(TopicCreate, TopicUpload) },
      {
        201: jsonBody(TopicDetailSchema, "Created"),
        403: errorResponse(403, "CSRF failed, or photos sent below trust level basic (TRUST_LEVEL_TOO_LOW)"),
        ...photoPostErrors,
      },
    );
  // Registered for the document, routed by hand: one handler reads JSON and multipart bodies.
  app.openAPIRegistry.registerPath(documentOnly(createTopicRoute));
  app.post(`/categories/:slug/topics`, requireAuth, async (c) => {
    const { slug } = param(c, Slug);
    const { fields, images } = await readPostInput(c, TopicCreate);
    const category = await categoryBySlug(c.env, slug);
    await limitWrites(c, "post");
    const { topic, notifications } = await createTopic(c.env, c.get("user")!, category, fields.title, fields.body, images, c.get("logger"));
    // Stored with the topic already; the live push to the mentioned must not delay the answer.
    if (notifications.length > 0) c.executionCtx.waitUntil(announceNotifications(c.env, notifications, c.get("logger")));
    return c.json(await topicDetail(c.env, topic, c.get("user")?.id), 201);
  });

  const getTopicsById = read
    .get(`/topics/{id}`, "A topic with its opening post")
    .io({ params: IdParam }, { 200: jsonBody(TopicDetailSchema, "The topic"), ...notModified });
  app.openapi(getTopicsById, async (c) => {
    const { id } = c.req.valid("param");
    return anonymousCached(c, cacheKey(`/forum/topics/${id}`, {}), async () =>
      topicDetail(c.env, await getTopic(c.env, id), c.get("user")?.id),
    );
  });

  const patchTopicsById = signedIn
    .patch(
      `/topics/{id}`,
      "Change a topic's title (its author within the edit window of their trust level and until a moderator has changed it, or a moderator)",
    )
    .io({ params: IdParam, ...json(TopicPatch) }, { 200: jsonBody(TopicDetailSchema, "Updated") });
  app.openapi(patchTopicsById, async (c) => {
    await limitWrites(c, "post");
    const { topic, updated } = await updateTopicTitle(c.env, c.get("user")!, c.req.valid("param").id, c.req.valid("json").title);
    if (updated.length > 0) c.executionCtx.waitUntil(announceUpdates(c.env, updated, c.get("logger")));
    return c.json(await topicDetail(c.env, topic, c.get("user")?.id), 200);
  });

  const deleteTopicsById = signedIn
    .delete(`/topics/{id}`, "Delete a topic (its author while nobody else has replied, or a moderator)")
    .io({ params: IdParam }, { ...noContent("Deleted"), 409: errorResponse(409, "Others have replied (TOPIC_HAS_REPLIES)") });
  app.openapi(deleteTopicsById, async (c) => {
    const withdrawn = await deleteTopic(c.env, c.get("user")!, c.req.valid("param").id, c.get("logger"));
    if (withdrawn.length > 0) c.executionCtx.waitUntil(announceWithdrawals(c.env, withdrawn, c.get("logger")));
    return c.body(null, 204);
  });

  // Posts ---------------------------------------------------------------------------------------

  const getTopicsByIdPosts = read
    .get(`/topics/{id}/posts`, "A topic's posts, oldest first (the opening post first); deleted ones as placeholders")
    .io(
      { params: IdParam, query: PaginationQuery },
      { 200: jsonBody(pageSchema(PostSchema, "ForumPostPage"), "Page of posts"), ...notModified },
    );
  app.openapi(getTopicsByIdPosts, async (c) => {
    const { page, page_size } = c.req.valid("query");
    const { id } = c.req.valid("param");
    return anonymousCached(c, cacheKey(`/forum/topics/${id}/posts`, { page, page_size }), async () => {
      const topic = await getTopic(c.env, id);
      const { count, rows } = await listPosts(c.env, topic.id, { page, pageSize: page_size });
      return pageOf(
        canonicalReadUrl(c, { page, page_size }),
        page,
        page_size,
        count,
        await postBodies(c.env, rows, topic.solution_post_id, c.get("user")?.id),
      );
    });
  });

  const createReplyRoute = signedIn
    .post(
      `/topics/{id}/posts`,
      "Reply to a topic (locked topics: moderators only); its subscribers, except you, get a forum_reply notification; JSON, or multipart with photos image_1 … image_6",
    )
    .io(
      { params: IdParam, ...withImages(PostCreate, PostUpload) },
      {
        201: jsonBody(PostSchema, "Created"),
        403: errorResponse(403, "Not allowed (topic locked), CSRF failed, or photos sent below trust level basic (TRUST_LEVEL_TOO_LOW)"),
        ...photoPostErrors,
      },
    );
  // Registered for the document, routed by hand: one handler reads JSON and multipart bodies.
  app.openAPIRegistry.registerPath(documentOnly(createReplyRoute));
  app.post(`/topics/:id/posts`, requireAuth, async (c) => {
    const topicId = param(c, IdParam).id;
    const { fields, images } = await readPostInput(c, PostCreate);
    await getTopic(c.env, topicId);
    await limitWrites(c, "post");
    const { post, notifications } = await createReply(c.env, c.get("user")!, topicId, fields.body, images, c.get("logger"));
    // Stored with the reply already; the live push to subscribers' sockets must not delay the answer.
    if (notifications.length > 0) c.executionCtx.waitUntil(announceNotifications(c.env, notifications, c.get("logger")));
    const attachments = await attachmentsFor(c.env, [post.id]);
    return c.json(postBody(post, null, undefined, undefined, attachments.get(post.id)), 201);
  });

  const patchPostsById = signedIn
    .patch(
      `/posts/{id}`,
      "Edit a post (its author within the edit window of their trust level and until a moderator has edited it, or a moderator); sets edited_at",
    )
    .io(
      { params: IdParam, ...json(PostCreate.openapi("ForumPostUpdate")) },
      { 200: jsonBody(PostSchema, "Updated"), 409: errorResponse(409, "The post is deleted") },
    );
  app.openapi(patchPostsById, async (c) => {
    await limitWrites(c, "post");
    const { post, topic, updated } = await editPost(c.env, c.get("user")!, c.req.valid("param").id, c.req.valid("json").body);
    // Rewritten in D1 already; telling the owners' open sockets must not delay the answer.
    if (updated.length > 0) c.executionCtx.waitUntil(announceUpdates(c.env, updated, c.get("logger")));
    const [out] = await postBodies(c.env, [post], topic.solution_post_id, c.get("user")?.id);
    return c.json(out!, 200);
  });

  const deletePostsById = signedIn
    .delete(`/posts/{id}`, 'Delete a post (its author or a moderator); the thread keeps a "[deleted]" placeholder')
    .io({ params: IdParam }, { ...noContent("Deleted"), 409: errorResponse(409, "Already deleted") });
  app.openapi(deletePostsById, async (c) => {
    const withdrawn = await deletePost(c.env, c.get("user")!, c.req.valid("param").id, c.get("logger"));
    // Gone from D1 already; telling the owners' open sockets must not delay the answer.
    if (withdrawn.length > 0) c.executionCtx.waitUntil(announceWithdrawals(c.env, withdrawn, c.get("logger")));
    return c.body(null, 204);
  });

  const postPostsByIdReactions = signedIn
    .post(`/posts/{id}/reactions`, "Toggle a reaction (like, love, helpful, thanks): the same request again removes it")
    .io(
      { params: IdParam, ...json(ReactionBody) },
      { 200: jsonBody(ReactionResult, "The reaction state and the post's counts"), 409: errorResponse(409, "The post is deleted") },
    );
  app.openapi(postPostsByIdReactions, async (c) => {
    await limitWrites(c, "react");
    return c.json(await toggleReaction(c.env, userIdOf(c), c.req.valid("param").id, c.req.valid("json").type), 200);
  });

  const postPostsByIdReport = signedIn.post(`/posts/{id}/report`, "Report a post to the moderators (once per post)").io(
    { params: IdParam, ...json(ReportCreate) },
    {
      201: jsonBody(
        z
          .object({ id: z.uuid(), post_id: z.uuid(), status: z.enum(REPORT_STATUSES), created_at: z.string() })
          .openapi("ForumReportReceipt"),
        "Reported",
      ),
      409: errorResponse(409, "Already reported"),
    },
  );
  app.openapi(postPostsByIdReport, async (c) => {
    await limitWrites(c, "post");
    const report = await reportPost(c.env, userIdOf(c), c.req.valid("param").id, c.req.valid("json").reason);
    return c.json(reportReceipt(report), 201);
  });

  // Solution, subscriptions, moderation ------------------------------------------------------------

  const postTopicsByIdSolution = signedIn
    .post(`/topics/{id}/solution`, "Mark a reply as the topic's solution (its author or a moderator); marking another moves it")
    .io({ params: IdParam, ...json(SolutionBody) }, { 200: jsonBody(TopicSchema, "The topic") });
  app.openapi(postTopicsByIdSolution, async (c) => {
    await limitWrites(c, "post");
    return c.json(topicBody(await setSolution(c.env, c.get("user")!, c.req.valid("param").id, c.req.valid("json").post_id)), 200);
  });

  const deleteTopicsByIdSolution = signedIn
    .delete(`/topics/{id}/solution`, "Unmark the topic's solution")
    .io({ params: IdParam }, { 200: jsonBody(TopicSchema, "The topic") });
  app.openapi(deleteTopicsByIdSolution, async (c) => {
    await limitWrites(c, "post");
    return c.json(topicBody(await setSolution(c.env, c.get("user")!, c.req.valid("param").id, null)), 200);
  });

  for (const method of ["post", "delete"] as const) {
    const summary = method === "post" ? "Follow a topic (idempotent)" : "Stop following a topic (idempotent)";
    const subscription = signedIn[method](`/topics/{id}/subscribe`, summary).io(
      { params: IdParam },
      { 200: jsonBody(SubscriptionSchema, "Subscription state") },
    );
    app.openapi(subscription, async (c) => {
      await limitWrites(c, "react");
      const topicId = c.req.valid("param").id;
      await setSubscription(c.env, userIdOf(c), topicId, method === "post");
      return c.json({ topic_id: topicId, subscribed: method === "post" }, 200);
    });
  }

  const patchTopicsByIdModerate = moderators
    .patch(`/topics/{id}/moderate`, "Lock or pin a topic (moderators)")
    .io({ params: IdParam, ...json(ModerateBody) }, { 200: jsonBody(TopicSchema, "The topic") });
  app.openapi(patchTopicsByIdModerate, async (c) =>
    c.json(topicBody(await moderateTopic(c.env, c.get("user")!, c.req.valid("param").id, c.req.valid("json"))), 200),
  );

  const getReports = moderators
    .get(`/reports`, "Reports for moderation, oldest first (moderators)")
    .io(
      { query: PaginationQuery.extend({ status: z.enum(REPORT_STATUSES).default("open") }) },
      { 200: jsonBody(pageSchema(ReportSchema, "ForumReportPage"), "Page of reports") },
    );
  app.openapi(getReports, async (c) => {
    const { page, page_size, status } = c.req.valid("query");
    const { count, rows } = await listReports(c.env, status, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows.map(reportBody)), 200);
  });

  const patchReportsById = moderators
    .patch(`/reports/{id}`, "Resolve or dismiss a report (or reopen it) (moderators)")
    .io({ params: IdParam, ...json(ReportPatch) }, { 200: jsonBody(ReportSchema, "The report") });
  app.openapi(patchReportsById, async (c) =>
    c.json(reportBody(await resolveReport(c.env, userIdOf(c), c.req.valid("param").id, c.req.valid("json").status)), 200),
  );

  return app;
}
