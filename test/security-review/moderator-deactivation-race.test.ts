/**
 * A moderator deactivated while their action is on its way (helper-107, after helper-103's
 * deactivation-race.test.ts for authors): the staff check passed, then an administrator's
 * deactivation committed, then the action ran. Deleting someone else's topic, post or comment,
 * locking or pinning a topic, resolving a report, approving or rejecting a comment, and hiding a
 * proposal each hold the moderator's account being active inside their own statements, so they
 * land nothing (no delete, no withdrawn notification, no resolved report) and answer 401
 * TOKEN_INVALID, as the token now is. Each of those tests failed on the code before (the action
 * landed and answered as usual).
 *
 * A user's delete of their own topic, post or comment is left as it was: removing what one wrote
 * is harmless after a deactivation (the last test holds that it still lands).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AuthenticatedUser } from "../../src/env";
import { addComment, deleteComment, moderateComment } from "../../src/services/blog-comments";
import { moderateProposal, propose, reportProposal, setShared } from "../../src/services/community";
import {
  categoryBySlug,
  createReply,
  createTopic,
  deletePost,
  deleteTopic,
  moderateTopic,
  reportPost,
  resolveReport,
  toggleReaction,
} from "../../src/services/forum";
import { blogPost } from "../helpers/blog";
import { useEmulators } from "../helpers/outbound";
import { deactivatedBefore, deactivatedBeforeBatch, refusedDeactivated } from "../helpers/deactivation";
import { envRacingFirstBatch } from "../helpers/racing-env";
import { identifiedResult } from "../helpers/requests";
import { registerWeb } from "../helpers/users";

useEmulators();

async function person(role: "user" | "moderator" = "user"): Promise<AuthenticatedUser> {
  const { userId, username } = await registerWeb();
  await env.DB.prepare("UPDATE users SET trust_level = 'basic', role = ? WHERE id = ?").bind(role, userId).run();
  return { id: userId, username, role };
}

const count = async (query: string, ...params: unknown[]) =>
  (await env.DB.prepare(query)
    .bind(...params)
    .first<{ n: number }>())!.n;

const refused = refusedDeactivated;

/** A topic by `author` with a reply by `replier`, which notified the author. */
async function topicWithReply(author: AuthenticatedUser, replier: AuthenticatedUser) {
  const category = await categoryBySlug(env, "houseplants");
  const { topic } = await createTopic(env, author, category, `Yellow leaves ${crypto.randomUUID().slice(0, 8)}`, "Why?");
  const { post: reply } = await createReply(env, replier, topic.id, "Too much water.");
  return { topic, reply };
}

const liveNotices = (userId: string) => count("SELECT count(*) AS n FROM notifications WHERE user_id = ? AND withdrawn_at IS NULL", userId);

describe("a forum moderation by a moderator deactivated on its way lands nothing", () => {
  it("deleting someone else's topic: the topic, its posts and the notices they raised stay", async () => {
    const [author, replier, mod] = [await person(), await person(), await person("moderator")];
    const { topic } = await topicWithReply(author, replier);
    expect(await liveNotices(author.id)).toBe(1);
    const racing = deactivatedBeforeBatch(mod);
    await expect(deleteTopic(racing.env, mod, topic.id)).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM forum_posts WHERE topic_id = ?", topic.id)).toBe(2);
    expect(await count("SELECT post_count AS n FROM users WHERE id = ?", replier.id)).toBe(1);
    expect(await liveNotices(author.id)).toBe(1);
  });

  it("deleting someone else's post: it stays live, with its reactions, its notice and its topic's counts", async () => {
    const [author, replier, mod] = [await person(), await person(), await person("moderator")];
    const { topic, reply } = await topicWithReply(author, replier);
    await toggleReaction(env, author.id, reply.id, "like");
    const racing = deactivatedBeforeBatch(mod);
    await expect(deletePost(racing.env, mod, reply.id)).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT is_deleted AS n FROM forum_posts WHERE id = ?", reply.id)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM forum_reactions WHERE post_id = ?", reply.id)).toBe(1);
    expect(await count("SELECT reply_count AS n FROM forum_topics WHERE id = ?", topic.id)).toBe(1);
    expect(await count("SELECT post_count AS n FROM users WHERE id = ?", replier.id)).toBe(1);
    expect(await liveNotices(author.id)).toBe(1);
  });

  it("a lock or a pin is not set", async () => {
    const [author, replier, mod] = [await person(), await person(), await person("moderator")];
    const { topic } = await topicWithReply(author, replier);
    const racing = deactivatedBefore(/^update "forum_topics"/i, mod);
    await expect(moderateTopic(racing.env, mod, topic.id, { is_locked: true, is_pinned: true })).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT is_locked + is_pinned AS n FROM forum_topics WHERE id = ?", topic.id)).toBe(0);
  });

  it("a report stays open", async () => {
    const [author, replier, mod] = [await person(), await person(), await person("moderator")];
    const { reply } = await topicWithReply(author, replier);
    const report = await reportPost(env, author.id, reply.id, "rude");
    const racing = deactivatedBefore(/^update "forum_reports"/i, mod);
    await expect(resolveReport(racing.env, mod.id, report.id, "resolved")).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    const row = await env.DB.prepare("SELECT status, resolved_by FROM forum_reports WHERE id = ?").bind(report.id).first();
    expect(row).toEqual({ status: "open", resolved_by: null });
  });
});

describe("a blog comment's moderation by a moderator deactivated on its way lands nothing", () => {
  /** A reply (pending moderation, and reported) to a comment, whose author it notified. */
  async function reply() {
    const [writer, replier, reporter, mod] = [await person(), await person(), await person(), await person("moderator")];
    const post = await blogPost();
    const parent = await addComment(env, writer, post.id, { body: "Water weekly." });
    const comment = await addComment(env, replier, post.id, { body: "No, daily.", parent_id: parent.id });
    await env.DB.prepare("UPDATE blog_comments SET status = 'pending' WHERE id = ?").bind(comment.id).run();
    await env.DB.prepare("INSERT INTO blog_comment_reports (id, comment_id, reporter_id, reason, created_at) VALUES (?, ?, ?, 'wrong', ?)")
      .bind(crypto.randomUUID(), comment.id, reporter.id, new Date().toISOString())
      .run();
    expect(await liveNotices(writer.id)).toBe(1);
    return { writer, mod, comment };
  }
  const status = (id: string) => env.DB.prepare("SELECT status FROM blog_comments WHERE id = ?").bind(id).first<{ status: string }>();
  const openReports = (id: string) => count("SELECT count(*) AS n FROM blog_comment_reports WHERE comment_id = ? AND status = 'open'", id);

  for (const decision of ["approved", "rejected"] as const) {
    it(`a comment is not ${decision}, its report stays open and its notice stays`, async () => {
      const { writer, mod, comment } = await reply();
      const racing = deactivatedBeforeBatch(mod);
      await expect(moderateComment(racing.env, mod, comment.id, decision)).rejects.toMatchObject(refused);
      expect(racing.fired()).toBe(true);
      expect(await status(comment.id)).toEqual({ status: "pending" });
      expect(await openReports(comment.id)).toBe(1);
      expect(await liveNotices(writer.id)).toBe(1);
    });
  }

  it("a comment deleted while its moderation was on its way answers 404, not a crash", async () => {
    const { mod, comment } = await reply();
    const racing = envRacingFirstBatch(() => env.DB.prepare("DELETE FROM blog_comments WHERE id = ?").bind(comment.id).run());
    await expect(moderateComment(racing.env, mod, comment.id, "approved")).rejects.toMatchObject({ status: 404, code: "NOT_FOUND" });
    expect(racing.fired()).toBe(true);
  });

  it("someone else's comment is not deleted, and its notice stays", async () => {
    const { writer, mod, comment } = await reply();
    const racing = deactivatedBeforeBatch(mod);
    await expect(deleteComment(racing.env, mod, comment.id)).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await status(comment.id)).toEqual({ status: "pending" });
    expect(await liveNotices(writer.id)).toBe(1);
  });
});

describe("a proposal's moderation by a moderator deactivated on its way lands nothing", () => {
  it("the proposal is not hidden, its report stays open, and the notice it raised stays", async () => {
    const [owner, proposer, reporter, mod] = [await person(), await person(), await person(), await person("moderator")];
    const { requestId } = await identifiedResult(owner.id);
    await setShared(env, owner.id, requestId, true);
    const speciesId = crypto.randomUUID();
    await env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, 'Araceae', 'Alocasia')")
      .bind(speciesId, `Alocasia cuprea ${speciesId.slice(0, 6)}`)
      .run();
    const proposal = await propose(env, proposer, requestId, { species_id: speciesId });
    await reportProposal(env, reporter.id, proposal.id, "wrong");
    const notices = await liveNotices(owner.id);
    expect(notices).toBeGreaterThan(0);
    const racing = deactivatedBeforeBatch(mod);
    await expect(moderateProposal(racing.env, mod.id, proposal.id, true)).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT is_hidden AS n FROM identification_results WHERE id = ?", proposal.id)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM proposal_reports WHERE result_id = ? AND resolved_at IS NULL", proposal.id)).toBe(1);
    expect(await liveNotices(owner.id)).toBe(notices);
  });
});

describe("one's own content", () => {
  it("is still deleted by its author deactivated on the way: a post, a topic, a comment", async () => {
    const [author, replier] = [await person(), await person()];
    const { topic, reply } = await topicWithReply(author, replier);
    const deletingPost = deactivatedBeforeBatch(replier);
    await deletePost(deletingPost.env, replier, reply.id);
    expect(deletingPost.fired()).toBe(true);
    expect(await count("SELECT is_deleted AS n FROM forum_posts WHERE id = ?", reply.id)).toBe(1);

    const deletingTopic = deactivatedBeforeBatch(author);
    await deleteTopic(deletingTopic.env, author, topic.id);
    expect(deletingTopic.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM forum_topics WHERE id = ?", topic.id)).toBe(0);

    const writer = await person();
    const comment = await addComment(env, writer, (await blogPost()).id, { body: "Water weekly." });
    const deletingComment = deactivatedBeforeBatch(writer);
    await deleteComment(deletingComment.env, writer, comment.id);
    expect(deletingComment.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM blog_comments WHERE id = ?", comment.id)).toBe(0);
  });
});
