/**
 * Comments on blog posts and their moderation (issue 9 item 4), under /api/v1/blog/:
 * `posts/{id}/comments/` (GET public, POST signed in), `comments/{id}/` (DELETE: its author or a
 * moderator), `comments/{id}/report/`, and for editors and moderators `comments/moderation/`,
 * `comments/{id}/approve/`, `comments/{id}/reject/`. Rules: src/services/blog-comments.ts.
 */
import { z } from "@hono/zod-openapi";
import { getConfig } from "../config";
import { userIdOf } from "../middleware/auth";
import {
  addComment,
  COMMENT_MAX_CHARS,
  COMMENT_MODERATOR_ROLES,
  deleteComment,
  listComments,
  moderateComment,
  moderationQueue,
  reportComment,
} from "../services/blog-comments";
import { enforceRateLimit } from "../services/rate-limits";
import { pageOf, PaginationQuery } from "./pagination";
import { createRouter, routeSet } from "./router";
import { errorResponse, errorResponses, IdParam, jsonBody, noContent, PostParam, pageSchema, requestJson } from "./schemas";

const tags = ["Blog comments"];

const Comment = z
  .object({
    id: z.string(),
    post_id: z.string(),
    parent_id: z.string().nullable(),
    body: z.string().openapi({ description: "Sanitised HTML." }),
    status: z
      .enum(["pending", "approved", "rejected"])
      .openapi({ description: "Readers see approved comments; you also see your own pending ones." }),
    created_at: z.string(),
    author: z.object({ id: z.string(), username: z.string(), display_name: z.string(), avatar_url: z.string().nullable() }),
  })
  .openapi("BlogComment");
const QueuedComment = Comment.extend({ open_reports: z.number().int() }).openapi("BlogCommentForModeration");

export function blogCommentRoutes() {
  const app = createRouter();
  const open = routeSet({ tags, errors: errorResponses(400, 404) });
  const mine = routeSet({ tags, errors: errorResponses(400, 401, 404) }).signedIn();
  const moderators = routeSet({ tags, errors: errorResponses(400, 401, 404) }).forRoles(...COMMENT_MODERATOR_ROLES);

  const getComments = open
    .get("/posts/{id}/comments", "Comments on a published post (by id or slug), oldest first")
    .io({ params: PostParam, query: PaginationQuery }, { 200: jsonBody(pageSchema(Comment, "BlogCommentPage"), "A page of comments") });
  app.openapi(getComments, async (c) => {
    const { page, page_size } = c.req.valid("query");
    const { count, rows } = await listComments(c.env, c.get("user"), c.req.valid("param").id, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows), 200);
  });

  const postComment = mine
    .post("/posts/{id}/comments", "Comment on a published post, by id or slug (held for moderation when your trust level is new)")
    .io(
      {
        params: PostParam,
        body: requestJson(
          z.strictObject({
            body: z.string().min(1).max(COMMENT_MAX_CHARS).openapi({ description: "Text or a small HTML subset (sanitised)." }),
            parent_id: z.uuid().nullable().optional().openapi({ description: "An approved comment of the same post to answer." }),
          }),
        ),
      },
      {
        201: jsonBody(Comment, "The comment (status pending or approved)"),
        429: errorResponse(429, "Too many comments; see Retry-After", "RATE_LIMITED"),
      },
    );
  app.openapi(postComment, async (c) => {
    await enforceRateLimit(c.env, `blog-comment:user:${userIdOf(c)}`, getConfig(c.env).BLOG_COMMENT_RATE_LIMIT);
    return c.json(await addComment(c.env, c.get("user")!, c.req.valid("param").id, c.req.valid("json")), 201);
  });

  // Fixed paths before `comments/{id}`.
  const queue = moderators.get("/comments/moderation", "Comments waiting for moderation, or with open reports").io(
    { query: PaginationQuery.extend({ status: z.enum(["pending", "reported"]).default("pending") }) },
    {
      200: jsonBody(pageSchema(QueuedComment, "BlogCommentModerationPage"), "The queue"),
      403: errorResponse(403, "Not an editor or moderator", "FORBIDDEN"),
    },
  );
  app.openapi(queue, async (c) => {
    const { page, page_size, status } = c.req.valid("query");
    const { count, rows } = await moderationQueue(c.env, c.get("user")!, status, { page, pageSize: page_size });
    return c.json(pageOf(c.req.url, page, page_size, count, rows), 200);
  });

  const del = mine.delete("/comments/{id}", "Delete your comment (moderators: any comment)").io({ params: IdParam }, noContent("Deleted"));
  app.openapi(del, async (c) => {
    await deleteComment(c.env, c.get("user")!, c.req.valid("param").id);
    return c.body(null, 204);
  });

  const report = mine.post("/comments/{id}/report", "Report a comment to the moderators (once per comment)").io(
    { params: IdParam, body: requestJson(z.strictObject({ reason: z.string().trim().min(1).max(500) })) },
    {
      201: jsonBody(z.object({ reported: z.literal(true) }), "Reported"),
      409: errorResponse(409, "Already reported by you", "ALREADY_REPORTED"),
    },
  );
  app.openapi(report, async (c) =>
    c.json(await reportComment(c.env, c.get("user")!, c.req.valid("param").id, c.req.valid("json").reason), 201),
  );

  for (const [action, status] of [
    ["approve", "approved"],
    ["reject", "rejected"],
  ] as const) {
    const route = moderators
      .post(`/comments/{id}/${action}`, `${action === "approve" ? "Approve" : "Reject"} a comment (resolves its open reports)`)
      .io(
        { params: IdParam },
        { 200: jsonBody(Comment, "The comment"), 403: errorResponse(403, "Not an editor or moderator", "FORBIDDEN") },
      );
    app.openapi(route, async (c) => c.json(await moderateComment(c.env, c.get("user")!, c.req.valid("param").id, status), 200));
  }

  return app;
}
