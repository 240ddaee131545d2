// Private data across the features, attacked (review helper-84): each test is an attack that
// worked on the code as reviewed, and keeps it fixed.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, jsonWithStatus as json } from "../helpers/http";
import { identifiedResult } from "../helpers/requests";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";
import { action, createPost, getPost, patchPost, withRole } from "../routes/blog-editorial-setup";

useEmulators();

const EXPORT = "/api/v1/auth/user/export/";
type Row = Record<string, unknown>;
const ID = "/api/v1/plant-identification";

/** `owner`'s identified request, shared with the community, and `proposer`'s proposal on it of a species new to the catalogue. */
async function sharedWithProposal(owner: { userId: string; access: string }, proposer: { access: string }, comment?: string) {
  const { requestId } = await identifiedResult(owner.userId);
  await json(await call(`${ID}/requests/${requestId}/share/`, { method: "POST", bearer: owner.access }), 200);
  const speciesId = crypto.randomUUID();
  await env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, 'Araceae', 'Alocasia')")
    .bind(speciesId, `Alocasia zebrina ${speciesId.slice(0, 6)}`)
    .run();
  const { result_id } = await json<{ result_id: string }>(
    await call(`${ID}/requests/${requestId}/propose/`, { bearer: proposer.access, json: { species_id: speciesId, comment } }),
    201,
  );
  return { requestId, result_id };
}

describe("a writer taken off the blog keeps no window on its drafts", () => {
  it("the export of an author demoted to user holds the published posts they wrote, not the drafts editors go on working on", async () => {
    const [author, editor, admin] = await Promise.all([withRole("author"), withRole("editor"), withRole("admin")]);
    const draft = await createPost(author.access, { title: "Autumn planting plan" });
    const live = await createPost(author.access, { title: "Repotting a fern" });
    await json(await action(author.access, live.id, "submit"), 200);
    await json(await action(editor.access, live.id, "publish"), 200);

    // The author leaves the team; the editors go on with the draft.
    await json(
      await call(`/api/v1/admin/users/${author.userId}/role/`, { method: "PATCH", bearer: admin.access, json: { role: "user" } }),
      200,
    );
    const secret = "EMBARGOED: the spring seed giveaway opens on 1 March";
    expect((await patchPost(editor.access, draft.id, { introduction: `<p>${secret}</p>` })).status).toBe(200);

    // The API refuses the draft to its former author (404, as for anyone who is not a writer)...
    expect((await getPost(draft.id, author.access)).status).toBe(404);
    // ...and the export must not hand it over instead.
    const body = await json<{ blog: { posts: Row[] } }>(await call(EXPORT, { bearer: author.access }), 200);
    expect(JSON.stringify(body)).not.toContain("EMBARGOED");
    expect(body.blog.posts.map((p) => p.id)).toEqual([live.id]);
    expect(body.blog.posts[0]).toEqual(await json(await getPost(live.id, author.access), 200));
  });
});

describe("a request taken out of the community is its owner's alone again, in the proposer's export too", () => {
  it("what the owner did with a proposal after unsharing (their votes, their accepting it) is not in the proposer's export", async () => {
    const [owner, proposer] = await Promise.all([bearerUser(), bearerUser()]);
    const { requestId, result_id } = await sharedWithProposal(owner, proposer, "A rubber plant");

    // The owner takes the request back, then decides in private: a downvote, then accepting it after all.
    await json(await call(`${ID}/requests/${requestId}/share/`, { method: "DELETE", bearer: owner.access }), 200);
    await json(await call(`${ID}/results/${result_id}/vote/`, { bearer: owner.access, json: { vote_type: "downvote" } }), 200);
    await json(await call(`${ID}/results/${result_id}/accept/`, { method: "POST", bearer: owner.access }), 200);
    // The proposer can no longer see the request at all.
    expect((await call(`${ID}/community/${requestId}/`, { bearer: proposer.access })).status).toBe(404);

    const body = await json<{ community: { proposals: Row[] } }>(await call(EXPORT, { bearer: proposer.access }), 200);
    const [proposal] = body.community.proposals;
    // What the proposer wrote stays theirs...
    expect(proposal).toMatchObject({ id: result_id, request_id: requestId, comment: "A rubber plant", proposed_by: proposer.userId });
    // ...what the owner did with it since is not told.
    expect(proposal).not.toHaveProperty("is_accepted");
    expect(proposal).not.toHaveProperty("is_primary");
    expect(proposal).not.toHaveProperty("downvotes");
    expect(proposal).not.toHaveProperty("upvotes");
    expect(JSON.stringify(body)).not.toContain('"is_accepted":true');
  });
});

describe("a request taken out of the community tells the proposers nothing more", () => {
  it("the owner's upvote of a proposal after unsharing raises no 'agrees' notice to the proposer", async () => {
    const [owner, proposer] = await Promise.all([bearerUser(), bearerUser()]);
    const { requestId, result_id } = await sharedWithProposal(owner, proposer);
    await json(await call(`${ID}/requests/${requestId}/share/`, { method: "DELETE", bearer: owner.access }), 200);

    // In private now: the owner's vote is theirs alone (it counts toward nothing, and nobody else may vote).
    await json(await call(`${ID}/results/${result_id}/vote/`, { bearer: owner.access, json: { vote_type: "upvote" } }), 200);
    const notices = await json<{ results: { title: string; data: Row }[] }>(
      await call("/api/v1/notifications/?type=community_agreement", { bearer: proposer.access }),
      200,
    );
    expect(notices.results).toEqual([]);
  });
});

describe("a consensus reached after unsharing is its owner's news alone", () => {
  /** A shared request with a proposal and a second supporter whose vote does not count yet: no consensus. */
  async function sharedWithUncountedSupport() {
    const [owner, proposer, voter, moderator] = await Promise.all([bearerUser(), bearerUser(), bearerUser(), withRole("moderator")]);
    await env.DB.prepare("UPDATE users SET trust_level = 'basic' WHERE id = ?").bind(proposer.userId).run();
    const { requestId, result_id } = await sharedWithProposal(owner, proposer);
    await json(
      await call(`/api/v1/plant-identification/results/${result_id}/vote/`, { bearer: voter.access, json: { vote_type: "upvote" } }),
      200,
    );
    return { owner, proposer, voter, moderator, requestId, result_id };
  }

  /** The voter's vote comes to count, and a recount (a moderator's hide and unhide) confirms the proposal. */
  async function recountConfirms(voter: { userId: string }, moderator: { access: string }, resultId: string) {
    await env.DB.prepare("UPDATE users SET trust_level = 'basic' WHERE id = ?").bind(voter.userId).run();
    await json(await call(`/api/v1/plant-identification/results/${resultId}/hide/`, { method: "POST", bearer: moderator.access }), 200);
    const unhidden = await json<{ community_result_id: string | null }>(
      await call(`/api/v1/plant-identification/results/${resultId}/unhide/`, { method: "POST", bearer: moderator.access }),
      200,
    );
    expect(unhidden.community_result_id).toBe(resultId);
  }

  const consensusNotices = async (u: { access: string }) =>
    (await json<{ results: Row[] }>(await call("/api/v1/notifications/?type=community_consensus", { bearer: u.access }), 200)).results;

  it("supporters hear nothing of a request whose owner's account was deactivated (it is withdrawn from everyone)", async () => {
    const { owner, proposer, voter, moderator, result_id } = await sharedWithUncountedSupport();
    const admin = await withRole("admin");
    await json(
      await call(`/api/v1/admin/users/${owner.userId}/active/`, { method: "PATCH", bearer: admin.access, json: { is_active: false } }),
      200,
    );
    await recountConfirms(voter, moderator, result_id);
    expect(await consensusNotices(proposer)).toEqual([]);
    expect(await consensusNotices(voter)).toEqual([]);
  });

  it("supporters hear nothing of a request taken out of the community; its owner does", async () => {
    const { owner, proposer, voter, moderator, requestId, result_id } = await sharedWithUncountedSupport();
    await json(await call(`/api/v1/plant-identification/requests/${requestId}/share/`, { method: "DELETE", bearer: owner.access }), 200);
    await recountConfirms(voter, moderator, result_id);
    expect(await consensusNotices(owner)).toHaveLength(1);
    expect(await consensusNotices(proposer)).toEqual([]);
    expect(await consensusNotices(voter)).toEqual([]);
  });
});

describe("a comment approved on a post taken off the blog tells nothing of the draft it became", () => {
  it("approving a held comment after its post was unpublished and retitled sends its author no notice quoting the draft", async () => {
    const [author, editor, moderator, reader] = await Promise.all([
      withRole("author"),
      withRole("editor"),
      withRole("moderator"),
      bearerUser(),
    ]);
    const post = await createPost(author.access, { title: "Growing tomatoes" });
    await json(await action(author.access, post.id, "submit"), 200);
    await json(await action(editor.access, post.id, "publish"), 200);
    // A new account's comment waits for a moderator.
    const held = await json<{ id: string; status: string }>(
      await call(`/api/v1/blog/posts/${post.id}/comments/`, { bearer: reader.access, json: { body: "<p>Which variety?</p>" } }),
      201,
    );
    expect(held.status).toBe("pending");

    // The editors take the post back and rework it as an embargoed draft.
    await json(await action(editor.access, post.id, "unpublish"), 200);
    expect((await patchPost(editor.access, post.id, { title: "EMBARGOED: seed giveaway on 1 March" })).status).toBe(200);
    expect((await getPost(post.id, reader.access)).status).toBe(404);

    await json(await call(`/api/v1/blog/comments/${held.id}/approve/`, { method: "POST", bearer: moderator.access }), 200);
    const notices = await json<{ results: { title: string; body: string }[] }>(
      await call("/api/v1/notifications/", { bearer: reader.access }),
      200,
    );
    expect(JSON.stringify(notices)).not.toContain("EMBARGOED");
  });
});
