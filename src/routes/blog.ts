/**
 * The blog's editorial API (/api/v1/blog/; issue 9 items 1–3, API.md §5 Blog): images, posts
 * and their workflow (submit, publish, unpublish, schedule), revisions (list, diff, restore),
 * categories, tags and series. Reads of published posts are public; writing needs the author,
 * editor or admin role, and the workflow's rules live in src/services/blog-posts.ts.
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import type { FieldErrors } from "../lib/errors";
import { UPLOAD_RULES, validateImageUpload } from "../lib/images";
import { requireRole } from "../middleware/auth";
import { BLOCK_TYPES, BlockInputSchema, BLOG_LIMITS, mediaUrl } from "../services/blog-blocks";
import {
  createPost,
  deletePost,
  diffRevisions,
  EDITOR_ROLES,
  getPostFor,
  INTRODUCTION_MAX,
  LIST_STATUSES,
  listPosts,
  listRevisions,
  POST_STATUSES,
  postDetail,
  postSummaries,
  publishPost,
  restoreRevision,
  schedulePost,
  submitPost,
  unpublishPost,
  updatePost,
  WRITER_ROLES,
} from "../services/blog-posts";
import {
  categoryBody,
  createCategory,
  createSeries,
  deleteCategory,
  deleteSeries,
  listCategories,
  listSeries,
  listTags,
  SLUG_MAX,
  seriesBody,
  updateCategory,
  updateSeries,
} from "../services/blog-taxonomy";
import { storeBlogImage } from "../services/photos";
import { pageOf, PaginationQuery } from "./pagination";
import { createRouter, documentOnly, noContentAfter, routeSet } from "./router";
import { errorResponse, errorResponses, filePart, IdParam, jsonBody, noContent, PostParam, pageSchema, requestJson } from "./schemas";
import { parseFields, readMultipartForm, throwIfFieldErrors } from "./uploads";

const tags = ["Blog"];

// ---------------------------------------------------------------------------------------------
// Schemas

const text = (max: number) =>
  z
    .string()
    .trim()
    .max(max, `Ensure this field has no more than ${max} characters.`)
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), "Must not contain control characters.");
const slug = z.string().max(SLUG_MAX).openapi({ description: "Lower-case letters, digits and hyphens.", example: "watering-succulents" });
const photoId = z.string().max(80).openapi({ description: "An image's id from POST /api/v1/blog/images/.", example: "9f86…a08.jpg" });

const AuthorSchema = z.object({ id: z.uuid(), username: z.string(), display_name: z.string() }).openapi("BlogAuthor");
const CategorySchema = z.object({ id: z.uuid(), slug: z.string(), name: z.string(), description: z.string() }).openapi("BlogCategory");
const ImageRefSchema = z.object({ id: z.string(), url: z.string(), alt: z.string() }).openapi("BlogImageRef");
const BlockSchema = z
  .object({ id: z.string(), type: z.string().openapi({ enum: [...BLOCK_TYPES] }), value: z.unknown() })
  .openapi("BlogBlock", { description: "A stored block in the shape PATCH takes back (BlogBlockInput)." });

export const PostSummarySchema = z
  .object({
    id: z.uuid(),
    slug: z.string(),
    title: z.string(),
    status: z.enum(POST_STATUSES),
    author: AuthorSchema.nullable(),
    excerpt: z.string().openapi({ description: "Plain text, ≤ 30 words (computed)." }),
    reading_time: z.number().int().openapi({ description: "Minutes (computed)." }),
    categories: z.array(CategorySchema.omit({ description: true })),
    tags: z.array(z.string()),
    series: z.object({ id: z.uuid(), slug: z.string(), title: z.string() }).nullable(),
    series_order: z.number().int().nullable(),
    featured_image: ImageRefSchema.nullable(),
    is_featured: z.boolean(),
    publish_date: z.string().nullable().openapi({ description: "YYYY-MM-DD of the first publication; null before." }),
    scheduled_at: z.string().nullable().openapi({ description: "When the cron job will publish it; null when not scheduled." }),
    first_published_at: z.string().nullable(),
    last_published_at: z.string().nullable(),
    revision: z.number().int().openapi({ description: "The current revision's number." }),
    view_count: z.number().int(),
    comment_count: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("BlogPostSummary");

export const PostDetailSchema = PostSummarySchema.extend({
  introduction: z.string().openapi({ description: "Sanitised HTML." }),
  content_blocks: z.array(BlockSchema).openapi({ description: "Editable: send them back to PATCH as they are." }),
  rendered_blocks: z
    .array(z.object({ id: z.string(), type: z.string(), value: z.unknown() }))
    .openapi({ description: "As readers get them (docs/api.md § Blog — public reads): images with url, width and height." }),
}).openapi("BlogPostDetail");

const postFields = {
  title: text(200).min(1, "This field may not be blank."),
  slug: slug.optional(),
  introduction: z
    .string()
    .max(INTRODUCTION_MAX, `Ensure this field has no more than ${INTRODUCTION_MAX} characters.`)
    .optional()
    .openapi({ description: "HTML; sanitised with the forum's allow-list." }),
  content_blocks: z
    .array(z.unknown())
    .max(BLOG_LIMITS.maxBlocks, `At most ${BLOG_LIMITS.maxBlocks} blocks.`)
    .optional()
    .openapi({ type: "array", items: { $ref: "#/components/schemas/BlogBlockInput" } }),
  categories: z.array(slug).max(20).optional().openapi({ description: "Category slugs." }),
  tags: z.array(z.string().max(60)).max(50).optional(),
  series: slug.nullable().optional().openapi({ description: "A series' slug, or null for none." }),
  series_order: z.number().int().min(0).max(10_000).nullable().optional(),
  featured_image: photoId.nullable().optional(),
  featured_image_alt: text(300).optional().openapi({ description: "Required with a featured image." }),
  is_featured: z.boolean().optional().openapi({ description: "Editors and admins only." }),
};
const PostCreate = z.strictObject(postFields).openapi("BlogPostCreate");
const PostUpdate = z.strictObject({ ...postFields, title: postFields.title.optional() }).openapi("BlogPostUpdate");
const reviewedRevision = z.int().min(1).optional().openapi({
  description:
    "The revision you reviewed (the post's `revision`). If the post has been saved since, nothing happens and the answer is 409 CONFLICT: review it again.",
});
const ScheduleBody = z
  .strictObject({
    publish_at: z.iso.datetime({ offset: true, message: "An ISO-8601 time with a zone, e.g. 2026-12-01T08:00:00Z." }).nullable(),
    revision: reviewedRevision,
  })
  .openapi("BlogSchedule");
const PublishBody = z.strictObject({ revision: reviewedRevision }).openapi("BlogPublish");

const RevisionParam = IdParam.extend({ number: z.coerce.number().int().min(1).max(1_000_000) });
const DiffQuery = z.object({
  from: z.coerce.number().int().min(1).max(1_000_000),
  to: z.coerce.number().int().min(1).max(1_000_000),
});
const ListQuery = PaginationQuery.extend({
  status: z.enum(LIST_STATUSES).optional().openapi({
    description:
      "Default published. Other statuses need the author (own posts only), editor or admin role; scheduled: a publish time is set.",
  }),
  category: slug.optional(),
  tag: z.string().max(60).optional(),
  series: slug.optional(),
  author: z.string().max(150).optional().openapi({ description: "A username." }),
});

const RevisionSchema = z
  .object({
    number: z.number().int(),
    created_at: z.string(),
    author: z.object({ id: z.uuid(), username: z.string() }).nullable(),
    is_current: z.boolean(),
  })
  .openapi("BlogRevision");
const DiffBlock = BlockSchema.extend({ index: z.number().int() });
const DiffSchema = z
  .object({
    from: z.number().int(),
    to: z.number().int(),
    fields: z.array(z.object({ field: z.string(), from: z.unknown(), to: z.unknown() })),
    blocks: z.object({
      added: z.array(DiffBlock),
      removed: z.array(DiffBlock),
      changed: z.array(z.object({ id: z.string(), before: BlockSchema, after: BlockSchema })),
      moved: z.array(z.object({ id: z.string(), from_index: z.number().int(), to_index: z.number().int() })),
    }),
  })
  .openapi("BlogRevisionDiff");

const CategoryCreate = z
  .strictObject({ name: text(100).min(1, "This field may not be blank."), slug: slug.optional(), description: text(1000).optional() })
  .openapi("BlogCategoryCreate");
const CategoryUpdate = CategoryCreate.partial().openapi("BlogCategoryUpdate");
const TagSchema = z.object({ tag: z.string(), count: z.number().int() }).openapi("BlogTag");
const SeriesSchema = z
  .object({
    id: z.uuid(),
    slug: z.string(),
    title: z.string(),
    description: z.string(),
    cover_image: ImageRefSchema.nullable(),
    is_completed: z.boolean(),
    post_count: z.number().int().openapi({ description: "Published posts in the series." }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("BlogSeries");
const SeriesCreate = z
  .strictObject({
    title: text(200).min(1, "This field may not be blank."),
    slug: slug.optional(),
    description: text(2000).optional(),
    cover_image: photoId.nullable().optional(),
    cover_image_alt: text(300).optional().openapi({ description: "Required with a cover image." }),
    is_completed: z.boolean().optional(),
  })
  .openapi("BlogSeriesCreate");
const SeriesUpdate = SeriesCreate.partial().openapi("BlogSeriesUpdate");
const UploadForm = z
  .strictObject({ image: filePart("JPEG, PNG or WebP (the photo rules of docs/api.md § Limits)") })
  .openapi("BlogImageUpload");
const UploadedImage = z
  .object({ id: z.string(), url: z.string(), width: z.number().int(), height: z.number().int() })
  .openapi("BlogImage", { description: "Use `id` in image blocks, featured_image and cover_image." });

// ---------------------------------------------------------------------------------------------

/** The one `image` part of an upload, validated like every photo (API.md §2.4). */
async function readImage(c: Context<AppEnv>) {
  const form = await readMultipartForm(c);
  const fieldErrors: FieldErrors = {};
  const files = form.getAll("image");
  const file = files[0];
  if (files.length > 1) fieldErrors.image = ["Send one file."];
  else if (!(file instanceof File)) fieldErrors.image = [file === undefined ? "No file was submitted." : "Expected a file."];
  // Any other part (alt text, a caption) would be dropped without a word: named, with the one field taken.
  const others = Object.fromEntries([...form.entries()].filter(([name]) => name !== "image"));
  parseFields(UploadForm.partial(), others, fieldErrors);
  throwIfFieldErrors(fieldErrors);
  const result = await validateImageUpload(
    { bytes: new Uint8Array(await (file as File).arrayBuffer()), declaredType: (file as File).type, filename: (file as File).name },
    UPLOAD_RULES,
  );
  if (!result.ok) throwIfFieldErrors({ image: [result.message] });
  return (result as Extract<typeof result, { ok: true }>).image;
}

export function blogRoutes() {
  const app = createRouter();
  const open = routeSet({ tags, errors: errorResponses(400, 404) });
  const maybe = routeSet({ tags, errors: errorResponses(400, 401, 403, 404) });
  const writers = routeSet({ tags, errors: errorResponses(400, 401, 403, 404, 409) }).forRoles(...WRITER_ROLES);
  const editors = routeSet({ tags, errors: errorResponses(400, 401, 403, 404, 409) }).forRoles(...EDITOR_ROLES);

  // Images ------------------------------------------------------------------------------------

  const upload = writers.post(`/images`, "Upload an image for posts and series (authors, editors, admins)").io(
    { body: { content: { "multipart/form-data": { schema: UploadForm } }, required: true } },
    { 201: jsonBody(UploadedImage, "Stored"), 413: errorResponse(413, "Too large", "FILE_TOO_LARGE") },
    {
      description:
        "Content-addressed: the same picture uploaded twice has the same id. Image blocks, featured_image and cover_image accept only photos uploaded here.",
    },
  );
  app.openAPIRegistry.registerPath(documentOnly(upload));
  app.post(upload.path, requireRole(...WRITER_ROLES), async (c) => {
    const image = await readImage(c);
    const ref = await storeBlogImage(c.env, image, c.get("user")!.id);
    return c.json({ id: ref, url: mediaUrl(ref), width: image.width, height: image.height }, 201);
  });

  // Posts -------------------------------------------------------------------------------------

  const list = maybe.get(`/posts`, "Posts: published ones for everyone; other statuses for writers (authors see their own)").io(
    { query: ListQuery },
    { 200: jsonBody(pageSchema(PostSummarySchema, "BlogPostPage"), "A page of posts") },
    {
      description:
        "Published posts newest first; other statuses by last change, scheduled ones by publish time. Anonymous callers asking for another status get 401, signed-in non-writers 403.",
    },
  );
  app.openapi(list, async (c) => {
    const { page, page_size, ...filters } = c.req.valid("query");
    const { count, rows } = await listPosts(c.env, c.get("user"), filters, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, await postSummaries(c.env, rows)), 200);
  });

  const detail = open
    .get(`/posts/{id}`, "A post by id or slug: published for everyone; otherwise its author and editors only (404 for anyone else)")
    .io({ params: PostParam }, { 200: jsonBody(PostDetailSchema, "The post") });
  app.openapi(detail, async (c) => c.json(await postDetail(c.env, await getPostFor(c.env, c.get("user"), c.req.valid("param").id)), 200));

  const create = writers.post(`/posts`, "Write a new draft (authors, editors, admins); revision 1").io(
    { body: requestJson(PostCreate) },
    { 201: jsonBody(PostDetailSchema, "Created"), 409: errorResponse(409, "The slug is taken (CONFLICT)") },
    {
      description: `Blocks are validated per type (${BLOCK_TYPES.join(", ")}); HTML is sanitised; the serialised blocks may hold at most ${BLOG_LIMITS.maxContentBytes / 1000} kB. Only editors may set is_featured.`,
    },
  );
  app.openapi(create, async (c) => c.json(await postDetail(c.env, await createPost(c.env, c.get("user")!, c.req.valid("json"))), 201));

  const patch = writers
    .patch(`/posts/{id}`, "Edit a post (authors: own posts while not published; editors: any, live when published); the next revision")
    .io(
      { params: IdParam, body: requestJson(PostUpdate) },
      { 200: jsonBody(PostDetailSchema, "Saved"), 409: errorResponse(409, "The slug is taken, or another save came first (CONFLICT)") },
    );
  app.openapi(patch, async (c) =>
    c.json(await postDetail(c.env, await updatePost(c.env, c.get("user")!, c.req.valid("param").id, c.req.valid("json"))), 200),
  );

  const del = writers
    .delete(`/posts/{id}`, "Delete a post (authors: own posts while not published; editors: any)")
    .io({ params: IdParam }, noContent("Deleted"));
  app.openapi(del, (c) => noContentAfter(c, deletePost(c.env, c.get("user")!, c.req.valid("param").id)));

  // Workflow ----------------------------------------------------------------------------------

  const stateError = errorResponse(409, "The post is not in a state that allows this", "INVALID_STATE");
  const submit = writers
    .post(`/posts/{id}/submit`, "Submit a draft or unpublished post for review (its author, or an editor)")
    .io({ params: IdParam }, { 200: jsonBody(PostDetailSchema, "In review"), 409: stateError });
  app.openapi(submit, async (c) => c.json(await postDetail(c.env, await submitPost(c.env, c.get("user")!, c.req.valid("param").id)), 200));

  const publish = editors.post(`/posts/{id}/publish`, "Publish a post now (editors, admins)").io(
    { params: IdParam, body: requestJson(PublishBody, false) },
    {
      200: jsonBody(PostDetailSchema, "Published"),
      409: errorResponse(409, "Not in a state that allows this (INVALID_STATE), or saved since the revision you reviewed (CONFLICT)"),
    },
  );
  app.openapi(publish, async (c) =>
    c.json(await postDetail(c.env, await publishPost(c.env, c.get("user")!, c.req.valid("param").id, c.req.valid("json")?.revision)), 200),
  );

  const unpublish = editors
    .post(`/posts/{id}/unpublish`, "Take a published post down (editors, admins)")
    .io({ params: IdParam }, { 200: jsonBody(PostDetailSchema, "Unpublished"), 409: stateError });
  app.openapi(unpublish, async (c) =>
    c.json(await postDetail(c.env, await unpublishPost(c.env, c.get("user")!, c.req.valid("param").id)), 200),
  );

  const schedule = editors
    .post(`/posts/{id}/schedule`, "Schedule a post to be published at a future time, or cancel with null (editors, admins)")
    .io(
      { params: IdParam, body: requestJson(ScheduleBody) },
      { 200: jsonBody(PostDetailSchema, "Scheduled (status unchanged)"), 409: stateError },
      { description: "The cron trigger (every 5 minutes) publishes posts whose time has come, each exactly once." },
    );
  app.openapi(schedule, async (c) =>
    c.json(
      await postDetail(
        c.env,
        await schedulePost(c.env, c.get("user")!, c.req.valid("param").id, c.req.valid("json").publish_at, c.req.valid("json").revision),
      ),
      200,
    ),
  );

  // Revisions ---------------------------------------------------------------------------------

  const revisions = writers
    .get(`/posts/{id}/revisions`, "A post's revisions, newest first (its author and editors; another writer gets 403)")
    .io(
      { params: IdParam, query: PaginationQuery },
      { 200: jsonBody(pageSchema(RevisionSchema, "BlogRevisionPage"), "A page of revisions") },
    );
  app.openapi(revisions, async (c) => {
    const { page, page_size } = c.req.valid("query");
    const { count, rows } = await listRevisions(c.env, c.get("user")!, c.req.valid("param").id, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows), 200);
  });

  const diff = writers
    .get(
      `/posts/{id}/revisions/diff`,
      "Compare two revisions: changed fields, and blocks added, removed, changed and moved (its author and editors)",
    )
    .io({ params: IdParam, query: DiffQuery }, { 200: jsonBody(DiffSchema, "The differences from `from` to `to`") });
  app.openapi(diff, async (c) => {
    const { from, to } = c.req.valid("query");
    return c.json(await diffRevisions(c.env, c.get("user")!, c.req.valid("param").id, from, to), 200);
  });

  const restore = writers
    .post(`/posts/{id}/revisions/{number}/restore`, "Restore a revision: its content becomes a new revision (the same rights as an edit)")
    .io(
      { params: RevisionParam },
      { 200: jsonBody(PostDetailSchema, "Restored"), 409: errorResponse(409, "Its slug is taken now, or another save came first") },
    );
  app.openapi(restore, async (c) => {
    const { id, number } = c.req.valid("param");
    return c.json(await postDetail(c.env, await restoreRevision(c.env, c.get("user")!, id, number)), 200);
  });

  // Categories, tags, series ------------------------------------------------------------------

  const getCategories = open
    .get(`/categories`, "All blog categories")
    .io({}, { 200: jsonBody(z.object({ results: z.array(CategorySchema) }).openapi("BlogCategoryList"), "Categories by name") });
  app.openapi(getCategories, async (c) => c.json({ results: (await listCategories(c.env)).map(categoryBody) }, 200));

  const postCategory = editors
    .post(`/categories`, "Add a category (editors, admins)")
    .io({ body: requestJson(CategoryCreate) }, { 201: jsonBody(CategorySchema, "Created") });
  app.openapi(postCategory, async (c) => c.json(categoryBody(await createCategory(c.env, c.req.valid("json"))), 201));

  const patchCategory = editors
    .patch(`/categories/{id}`, "Change a category (editors, admins)")
    .io({ params: IdParam, body: requestJson(CategoryUpdate) }, { 200: jsonBody(CategorySchema, "Updated") });
  app.openapi(patchCategory, async (c) =>
    c.json(categoryBody(await updateCategory(c.env, c.req.valid("param").id, c.req.valid("json"))), 200),
  );

  const deleteCategoryRoute = editors
    .delete(`/categories/{id}`, "Delete a category; its posts stay (editors, admins)")
    .io({ params: IdParam }, noContent("Deleted"));
  app.openapi(deleteCategoryRoute, (c) => noContentAfter(c, deleteCategory(c.env, c.req.valid("param").id)));

  const getTags = open
    .get(`/tags`, "Tags of published posts, with how many published posts carry each (most used first)")
    .io({}, { 200: jsonBody(z.object({ results: z.array(TagSchema) }).openapi("BlogTagList"), "Tags") });
  app.openapi(getTags, async (c) => c.json({ results: await listTags(c.env) }, 200));

  const getSeries = open
    .get(`/series`, "All series")
    .io({}, { 200: jsonBody(z.object({ results: z.array(SeriesSchema) }).openapi("BlogSeriesList"), "Series by title") });
  app.openapi(getSeries, async (c) => c.json({ results: (await listSeries(c.env)).map(seriesBody) }, 200));

  const postSeries = editors
    .post(`/series`, "Add a series (editors, admins)")
    .io({ body: requestJson(SeriesCreate) }, { 201: jsonBody(SeriesSchema, "Created") });
  app.openapi(postSeries, async (c) => c.json(seriesBody(await createSeries(c.env, c.req.valid("json"))), 201));

  const patchSeries = editors
    .patch(`/series/{id}`, "Change a series (editors, admins)")
    .io({ params: IdParam, body: requestJson(SeriesUpdate) }, { 200: jsonBody(SeriesSchema, "Updated") });
  app.openapi(patchSeries, async (c) => c.json(seriesBody(await updateSeries(c.env, c.req.valid("param").id, c.req.valid("json"))), 200));

  const deleteSeriesRoute = editors
    .delete(`/series/{id}`, "Delete a series; its posts stay, out of any series (editors, admins)")
    .io({ params: IdParam }, noContent("Deleted"));
  app.openapi(deleteSeriesRoute, (c) => noContentAfter(c, deleteSeries(c.env, c.req.valid("param").id)));

  // BlockInputSchema is registered for the document (PostCreate's content_blocks refers to it).
  app.openAPIRegistry.register("BlogBlockInput", BlockInputSchema);
  return app;
}
