/**
 * The forum edit window (src/services/forum.ts, API.md §5), tested through the service with a
 * fixed clock: authors edit within 24 h (new) or 7 days (basic), trusted and veteran without
 * limit; the window is inclusive (`now − created_at > window` closes it). Forum moderators
 * (moderator, admin) are not bound; editors (blog staff) are.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AuthenticatedUser } from "../../src/env";
import {
  categoryBySlug,
  createTopic,
  EDIT_WINDOW_MS,
  editPost,
  firstPost,
  getPost,
  getTopic,
  postBody,
  topicBody,
  updateTopicTitle,
} from "../../src/services/forum";
import { createUser, type TrustLevel } from "../../src/services/users";
import { recordingLogger } from "../helpers/logger";
import { envAroundBatches, envRacingFirstBatch } from "../helpers/racing-env";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const CREATED = Date.parse("2026-03-01T10:00:00.000Z");

async function member(role: AuthenticatedUser["role"] = "user", trustLevel: TrustLevel = "new"): Promise<AuthenticatedUser> {
  const name = `edit${crypto.randomUUID().slice(0, 8)}`;
  const user = await createUser(env, { username: name, email: `${name}@example.com`, passwordHash: null });
  // Joined long before the post; the trust level is the stored one (a few posts earn nothing more).
  await env.DB.prepare("UPDATE users SET role = ?, trust_level = ?, date_joined = ? WHERE id = ?")
    .bind(role, trustLevel, new Date(CREATED - 365 * DAY_MS).toISOString(), user.id)
    .run();
  return { id: user.id, username: name, role };
}

/** A topic by `author` whose opening post was written at CREATED; returns that post's id. */
async function postBy(author: AuthenticatedUser): Promise<string> {
  const category = await categoryBySlug(env, "houseplants");
  const { topic } = await createTopic(env, author, category, "Drooping calathea", "Leaves curl at night.");
  const post = (await firstPost(env, topic.id))!;
  await env.DB.prepare("UPDATE forum_posts SET created_at = ? WHERE id = ?").bind(new Date(CREATED).toISOString(), post.id).run();
  return post.id;
}

describe("EDIT_WINDOW_MS", () => {
  it("is 24 hours for new, 7 days for basic, unlimited for trusted and veteran", () => {
    expect(EDIT_WINDOW_MS).toEqual({ new: 24 * HOUR_MS, basic: 7 * DAY_MS, trusted: null, veteran: null });
  });
});

describe("editPost: the author's window by trust level", () => {
  it.each([
    // [trust level, ms after the post was written, allowed]
    ["new", 0, true],
    ["new", 24 * HOUR_MS - 1, true],
    ["new", 24 * HOUR_MS, true],
    ["new", 24 * HOUR_MS + 1, false],
    ["new", 7 * DAY_MS, false],
    ["basic", 24 * HOUR_MS + 1, true],
    ["basic", 7 * DAY_MS - 1, true],
    ["basic", 7 * DAY_MS, true],
    ["basic", 7 * DAY_MS + 1, false],
    ["trusted", 7 * DAY_MS + 1, true],
    ["trusted", 3650 * DAY_MS, true],
    ["veteran", 7 * DAY_MS + 1, true],
    ["veteran", 3650 * DAY_MS, true],
  ] as const)("%s author, %i ms after writing → allowed: %s", async (level, afterMs, allowed) => {
    const author = await member("user", level);
    const id = await postBy(author);
    const at = CREATED + afterMs;
    if (allowed) {
      const { post } = await editPost(env, author, id, "Edited text.", at);
      expect(post.body).toBe("Edited text.");
      expect(post.edited_at).toBe(new Date(at).toISOString());
    } else {
      const hours = EDIT_WINDOW_MS[level]! / HOUR_MS;
      await expect(editPost(env, author, id, "Too late.", at)).rejects.toMatchObject({
        code: "EDIT_WINDOW_CLOSED",
        status: 403,
        message: `Posts can be edited for ${hours} hours at your trust level.`,
      });
      const post = await getPost(env, id);
      expect(post.body).toBe("Leaves curl at night.");
      expect(post.edited_at).toBeNull();
    }
  });

  it("trust earned since (5 posts, 7 days) widens a new author's window to basic's 7 days", async () => {
    const author = await member("user", "new");
    const id = await postBy(author);
    await env.DB.prepare("UPDATE users SET post_count = 5 WHERE id = ?").bind(author.id).run();
    const { post } = await editPost(env, author, id, "Still mine to fix.", CREATED + 24 * HOUR_MS + 1);
    expect(post.body).toBe("Still mine to fix.");
    await expect(editPost(env, author, id, "Too late.", CREATED + 7 * DAY_MS + 1)).rejects.toMatchObject({ code: "EDIT_WINDOW_CLOSED" });
  });
});

describe("editPost: staff", () => {
  it.each(["moderator", "admin"] as const)("a %s edits anyone's post, and their own, long after any window", async (role) => {
    const staff = await member(role, "new");
    const author = await member("user", "new");
    const theirs = await postBy(author);
    const own = await postBy(staff);
    const at = CREATED + 3650 * DAY_MS;
    expect((await editPost(env, staff, theirs, "Moderated.", at)).post.body).toBe("Moderated.");
    expect((await editPost(env, staff, own, "Own, years later.", at)).post.body).toBe("Own, years later.");
  });

  it("an editor (blog staff, not a forum moderator) is bound by the window and cannot edit others' posts", async () => {
    const editor = await member("editor", "new");
    const author = await member("user", "new");
    const own = await postBy(editor);
    const theirs = await postBy(author);
    await expect(editPost(env, editor, own, "Late.", CREATED + 24 * HOUR_MS + 1)).rejects.toMatchObject({
      code: "EDIT_WINDOW_CLOSED",
      status: 403,
    });
    await expect(editPost(env, editor, theirs, "Not mine.", CREATED)).rejects.toMatchObject({ code: "FORBIDDEN", status: 403 });
    expect((await editPost(env, editor, own, "In time.", CREATED + 24 * HOUR_MS)).post.body).toBe("In time.");
  });

  it("another user may not edit the post even inside the window", async () => {
    const author = await member("user", "veteran");
    const other = await member("user", "veteran");
    const id = await postBy(author);
    await expect(editPost(env, other, id, "Vandalised.", CREATED)).rejects.toMatchObject({ code: "FORBIDDEN", status: 403 });
  });
});

describe("a post that earns its author the basic level", () => {
  it("still lands when the recount of the author's community votes fails, and the failure is logged", async () => {
    const author = await member();
    await env.DB.prepare("UPDATE users SET post_count = 4 WHERE id = ?").bind(author.id).run();
    // The post's own batch goes through; the recount's (the next one) finds D1 failing.
    const failing = envAroundBatches(async (n) => {
      if (n > 1) throw new Error("D1 is down");
    });
    const { logger, warnings } = recordingLogger();
    const category = await categoryBySlug(env, "houseplants");
    const { topic } = await createTopic(failing.env, author, category, "Fifth post", "Earns the basic level.", [], logger);
    expect(failing.batches()).toBe(2);
    expect((await firstPost(env, topic.id))?.body).toContain("Earns the basic level.");
    expect(warnings).toEqual([{ msg: "community recount failed", fields: { users: [author.id], error: "Error: D1 is down" } }]);
  });
});

describe("a moderator's rewrite: its author can no longer undo it", () => {
  const lockedPost = {
    code: "EDIT_WINDOW_CLOSED",
    status: 403,
    message: "A moderator has edited this post; only a moderator can change it now.",
  };
  const lockedTitle = {
    code: "EDIT_WINDOW_CLOSED",
    status: 403,
    message: "A moderator has edited this title; only a moderator can change it now.",
  };
  const topicOf = async (postId: string) => (await getPost(env, postId)).topic_id;

  it.each(["new", "veteran"] as const)("a %s author's post edit after a moderator's is a 403 and changes nothing", async (level) => {
    const author = await member("user", level);
    const moderator = await member("moderator", "new");
    const id = await postBy(author);
    const { post } = await editPost(env, moderator, id, "Removed by a moderator.", CREATED + HOUR_MS);
    expect(postBody(post, null).edited_by_moderator).toBe(true);
    await expect(editPost(env, author, id, "The abuse, written back.", CREATED + 2 * HOUR_MS)).rejects.toMatchObject(lockedPost);
    expect((await getPost(env, id)).body).toBe("Removed by a moderator.");
    // Moderators still may, another one too.
    const other = await member("admin", "new");
    expect((await editPost(env, other, id, "Reworded.", CREATED + 3 * HOUR_MS)).post.body).toBe("Reworded.");
  });

  it("an author's title change after a moderator's is a 403 and changes nothing; their posts stay theirs", async () => {
    const author = await member("user", "veteran");
    const moderator = await member("moderator", "new");
    const id = await postBy(author);
    const topicId = await topicOf(id);
    const { topic } = await updateTopicTitle(env, moderator, topicId, "A calm title", CREATED + HOUR_MS);
    expect(topicBody(topic).title_edited_by_moderator).toBe(true);
    await expect(updateTopicTitle(env, author, topicId, "The abuse again", CREATED + 2 * HOUR_MS)).rejects.toMatchObject(lockedTitle);
    expect((await getTopic(env, topicId)).title).toBe("A calm title");
    // The title's rewrite does not lock the opening post, which the moderator left alone.
    expect((await editPost(env, author, id, "Still mine.", CREATED + 2 * HOUR_MS)).post.body).toBe("Still mine.");
    expect((await updateTopicTitle(env, moderator, topicId, "Calmer", CREATED + 3 * HOUR_MS)).topic.title).toBe("Calmer");
  });

  it("an author's post edit checked before a moderator's and written after it is refused", async () => {
    const author = await member("user", "veteran");
    const moderator = await member("moderator", "new");
    const id = await postBy(author);
    const racing = envRacingFirstBatch(() => editPost(env, moderator, id, "Removed by a moderator.", CREATED + HOUR_MS));
    await expect(editPost(racing.env, author, id, "The abuse, written back.", CREATED + 2 * HOUR_MS)).rejects.toMatchObject(lockedPost);
    expect(racing.fired()).toBe(true);
    expect((await getPost(env, id)).body).toBe("Removed by a moderator.");
  });

  it("an author's title change checked before a moderator's and written after it is refused", async () => {
    const author = await member("user", "veteran");
    const moderator = await member("moderator", "new");
    const topicId = await topicOf(await postBy(author));
    const racing = envRacingFirstBatch(() => updateTopicTitle(env, moderator, topicId, "A calm title", CREATED + HOUR_MS));
    await expect(updateTopicTitle(racing.env, author, topicId, "The abuse again", CREATED + 2 * HOUR_MS)).rejects.toMatchObject(
      lockedTitle,
    );
    expect(racing.fired()).toBe(true);
    expect((await getTopic(env, topicId)).title).toBe("A calm title");
  });

  it("a moderator editing their own post or title locks nothing", async () => {
    const moderator = await member("moderator", "new");
    const id = await postBy(moderator);
    const topicId = await topicOf(id);
    const { post } = await editPost(env, moderator, id, "Own words, fixed.", CREATED + HOUR_MS);
    const { topic } = await updateTopicTitle(env, moderator, topicId, "Own title, fixed", CREATED + HOUR_MS);
    expect(postBody(post, null).edited_by_moderator).toBe(false);
    expect(topicBody(topic).title_edited_by_moderator).toBe(false);
    // Their role taken away, they edit them as any author within their window.
    const demoted = { ...moderator, role: "user" as const };
    expect((await editPost(env, demoted, id, "Still mine.", CREATED + 2 * HOUR_MS)).post.body).toBe("Still mine.");
    expect((await updateTopicTitle(env, demoted, topicId, "Still my title", CREATED + 2 * HOUR_MS)).topic.title).toBe("Still my title");
  });
});
