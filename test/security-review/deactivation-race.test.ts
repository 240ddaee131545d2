/**
 * An account deactivated while its write is on its way (helper-103): the session check passed,
 * then an administrator's deactivation committed, then the write ran. The forum, community
 * identification, blog comments and RSVPs show what a deactivated account wrote before, so
 * anything it writes after must not land: each write holds the account's being active inside its
 * own statement and answers 401 TOKEN_INVALID, as the token now is. Each test failed on the code
 * before (the write landed and answered as usual).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { addComment, reportComment } from "../../src/services/blog-comments";
import { createEvent, upsertRsvp } from "../../src/services/calendar";
import { propose, reportProposal, setShared } from "../../src/services/community";
import {
  categoryBySlug,
  createReply,
  createTopic,
  editPost,
  reportPost,
  setSolution,
  setSubscription,
  toggleReaction,
  updateTopicTitle,
} from "../../src/services/forum";
import { voteOnResult } from "../../src/services/identification-requests";
import { setAccountActive, updateAvatar, updateProfile } from "../../src/services/accounts";
import { sha256Hex } from "../../src/lib/hash";
import { blogPost } from "../helpers/blog";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { deactivatedBefore, deactivatedBeforeBatch, refusedDeactivated } from "../helpers/deactivation";
import { identifiedResult } from "../helpers/requests";
import { registerWeb } from "../helpers/users";

useEmulators();

type Person = { id: string; username: string; role: "user" };

async function person(trust: "new" | "basic" = "basic"): Promise<Person> {
  const { userId, username } = await registerWeb();
  await env.DB.prepare("UPDATE users SET trust_level = ? WHERE id = ?").bind(trust, userId).run();
  return { id: userId, username, role: "user" };
}

const count = async (query: string, ...params: unknown[]) =>
  (await env.DB.prepare(query)
    .bind(...params)
    .first<{ n: number }>())!.n;

const refused = refusedDeactivated;

async function topicBy(author: Person) {
  const category = await categoryBySlug(env, "houseplants");
  const { topic } = await createTopic(env, author, category, `Yellow leaves ${crypto.randomUUID().slice(0, 8)}`, "Why?");
  const first = await env.DB.prepare("SELECT id FROM forum_posts WHERE topic_id = ? AND is_first = 1")
    .bind(topic.id)
    .first<{ id: string }>();
  return { topic, firstPostId: first!.id };
}

describe("a forum write by an account deactivated on its way lands nothing", () => {
  it("a topic: no topic, post, subscription or post count, and nobody it mentions hears of it", async () => {
    const [author, mentioned] = [await person(), await person()];
    const category = await categoryBySlug(env, "houseplants");
    const racing = deactivatedBeforeBatch(author);
    await expect(createTopic(racing.env, author, category, "Buy cheap pills", `@${mentioned.username} look`)).rejects.toMatchObject(
      refused,
    );
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM forum_topics WHERE author_id = ?", author.id)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM forum_posts WHERE author_id = ?", author.id)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM forum_subscriptions WHERE user_id = ?", author.id)).toBe(0);
    expect(await count("SELECT post_count AS n FROM users WHERE id = ?", author.id)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM notifications WHERE user_id = ?", mentioned.id)).toBe(0);
  });

  it("a reply: no post, and neither the topic's subscribers nor those it mentions hear of it", async () => {
    const [author, replier, mentioned] = [await person(), await person(), await person()];
    const { topic } = await topicBy(author);
    const racing = deactivatedBeforeBatch(replier);
    await expect(createReply(racing.env, replier, topic.id, `@${mentioned.username} spam`)).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM forum_posts WHERE author_id = ?", replier.id)).toBe(0);
    expect(await count("SELECT reply_count AS n FROM forum_topics WHERE id = ?", topic.id)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM notifications WHERE user_id IN (?, ?)", author.id, mentioned.id)).toBe(0);
  });

  it("an edit of a post, and of a topic's title, leave them as they were", async () => {
    const author = await person();
    const { topic, firstPostId } = await topicBy(author);
    const editing = deactivatedBeforeBatch(author);
    await expect(editPost(editing.env, author, firstPostId, "Now an advert")).rejects.toMatchObject(refused);
    expect(editing.fired()).toBe(true);
    const post = await env.DB.prepare("SELECT body, edited_at FROM forum_posts WHERE id = ?").bind(firstPostId).first();
    expect(post).toMatchObject({ body: "Why?", edited_at: null });

    await setAccountActive(env, author.id, true);
    const renaming = deactivatedBeforeBatch(author);
    await expect(updateTopicTitle(renaming.env, author, topic.id, "Now an advert")).rejects.toMatchObject(refused);
    expect(renaming.fired()).toBe(true);
    const stored = await env.DB.prepare("SELECT title FROM forum_topics WHERE id = ?").bind(topic.id).first<{ title: string }>();
    expect(stored!.title).toBe(topic.title);
  });

  it("a reaction, a report, a subscription and a solution mark are not recorded", async () => {
    const [author, other] = [await person(), await person()];
    const { topic, firstPostId } = await topicBy(author);
    const { post: answer } = await createReply(env, other, topic.id, "Too much water.");

    const reacting = deactivatedBeforeBatch(other);
    await expect(toggleReaction(reacting.env, other.id, firstPostId, "like")).rejects.toMatchObject(refused);
    expect(reacting.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM forum_reactions WHERE user_id = ?", other.id)).toBe(0);

    await setAccountActive(env, other.id, true);
    const reporting = deactivatedBefore(/insert into "forum_reports"/i, other);
    await expect(reportPost(reporting.env, other.id, firstPostId, "spam")).rejects.toMatchObject(refused);
    expect(reporting.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM forum_reports WHERE reporter_id = ?", other.id)).toBe(0);

    const follower = await person();
    const subscribing = deactivatedBefore(/insert into "forum_subscriptions"/i, follower);
    await expect(setSubscription(subscribing.env, follower.id, topic.id, true)).rejects.toMatchObject(refused);
    expect(subscribing.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM forum_subscriptions WHERE user_id = ?", follower.id)).toBe(0);

    const marking = deactivatedBefore(/^update "forum_topics"/i, author);
    await expect(setSolution(marking.env, author, topic.id, answer.id)).rejects.toMatchObject(refused);
    expect(marking.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM forum_topics WHERE id = ? AND solution_post_id IS NOT NULL", topic.id)).toBe(0);
  });
});

describe("a community write by an account deactivated on its way lands nothing", () => {
  async function sharedResult() {
    const [owner, voter] = [await person(), await person()];
    const { requestId, resultId } = await identifiedResult(owner.id);
    await setShared(env, owner.id, requestId, true);
    return { owner, voter, requestId, resultId };
  }

  it("a vote: none stored, none tallied, and the result's tally unchanged", async () => {
    const { voter, resultId } = await sharedResult();
    const racing = deactivatedBeforeBatch(voter);
    await expect(voteOnResult(racing.env, voter.id, resultId, "downvote")).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM votes WHERE user_id = ?", voter.id)).toBe(0);
    expect(await count("SELECT downvotes AS n FROM identification_results WHERE id = ?", resultId)).toBe(0);
  });

  it("a proposal: none shown, and the request's owner is not told of it", async () => {
    const { owner, voter: proposer, requestId } = await sharedResult();
    const speciesId = crypto.randomUUID();
    await env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, 'Araceae', 'Alocasia')")
      .bind(speciesId, `Alocasia zebrina ${speciesId.slice(0, 6)}`)
      .run();
    const racing = deactivatedBeforeBatch(proposer);
    await expect(propose(racing.env, proposer, requestId, { species_id: speciesId, comment: "visit my shop" })).rejects.toMatchObject(
      refused,
    );
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM identification_results WHERE proposed_by = ?", proposer.id)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM notifications WHERE user_id = ?", owner.id)).toBe(0);
  });

  it("a report of a proposal is not recorded", async () => {
    const { requestId } = await sharedResult();
    const [proposer, reporter] = [await person(), await person()];
    const speciesId = crypto.randomUUID();
    await env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, 'Araceae', 'Alocasia')")
      .bind(speciesId, `Alocasia sanderiana ${speciesId.slice(0, 6)}`)
      .run();
    const proposal = await propose(env, proposer, requestId, { species_id: speciesId });
    const racing = deactivatedBefore(/insert into "proposal_reports"/i, reporter);
    await expect(reportProposal(racing.env, reporter.id, proposal.id, "rude")).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM proposal_reports WHERE user_id = ?", reporter.id)).toBe(0);
  });
});

describe("a blog comment or an RSVP by an account deactivated on its way lands nothing", () => {
  it("a comment is not posted, nor counted on its post", async () => {
    const commenter = await person();
    const post = await blogPost();
    const racing = deactivatedBeforeBatch(commenter);
    await expect(addComment(racing.env, commenter, post.id, { body: "Buy cheap pills" })).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM blog_comments WHERE user_id = ?", commenter.id)).toBe(0);
    expect(await count("SELECT comment_count AS n FROM blog_posts WHERE id = ?", post.id)).toBe(0);
  });

  it("a report of a comment is not recorded", async () => {
    const [writer, reporter] = [await person(), await person()];
    const post = await blogPost();
    const comment = await addComment(env, writer, post.id, { body: "Water weekly." });
    const racing = deactivatedBefore(/insert into "blog_comment_reports"/i, reporter);
    await expect(reportComment(racing.env, reporter, comment.id, "spam")).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM blog_comment_reports WHERE reporter_id = ?", reporter.id)).toBe(0);
  });

  it("an RSVP takes no place at the event", async () => {
    const [organiser, guest] = [await person(), await person()];
    const start = new Date(Date.now() + 86_400_000);
    const event = await createEvent(env, organiser, {
      title: "Seed swap",
      description: "Bring seeds.",
      start: start.toISOString(),
      end: new Date(start.getTime() + 3_600_000).toISOString(),
      location: "Library",
      privacy: "public",
      capacity: 1,
    });
    const racing = deactivatedBeforeBatch(guest);
    await expect(upsertRsvp(racing.env, guest, event.id, "going")).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM calendar_rsvps WHERE event_id = ?", event.id)).toBe(0);
  });
});

describe("a profile change by an account deactivated on its way lands nothing (its byline stays beside its posts)", () => {
  it("a new name or visibility is not written", async () => {
    const user = await person();
    const racing = deactivatedBeforeBatch(user);
    await expect(
      updateProfile(racing.env, user.id, { first_name: "Cheap", last_name: "Pills", profile_visibility: "public" }),
    ).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    const row = await env.DB.prepare("SELECT first_name, last_name FROM users WHERE id = ?").bind(user.id).first();
    expect(row).toEqual({ first_name: "", last_name: "" });
  });

  it("a new avatar is not set, and its photo is released again", async () => {
    const user = await person();
    const bytes = await makePng(256, 256, { seed: `avatar-${crypto.randomUUID()}` });
    const racing = deactivatedBeforeBatch(user);
    await expect(updateAvatar(racing.env, user.id, new File([bytes], "me.png", { type: "image/png" }))).rejects.toMatchObject(refused);
    expect(racing.fired()).toBe(true);
    expect(await count("SELECT count(*) AS n FROM users WHERE id = ? AND avatar_key IS NOT NULL", user.id)).toBe(0);
    expect(await env.IMAGES.head(`images/${await sha256Hex(bytes)}.png`)).toBeNull();
  });
});
