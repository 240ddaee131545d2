/**
 * Community identification, attacked (security review of 2026-12-06): a vote checks that the
 * request is shared (or the caller's) and the result open, then writes in one batch. Each test
 * lands the owner's act between the two, and failed on the code as reviewed.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { propose, setShared } from "../../src/services/community";
import { voteOnResult } from "../../src/services/identification-requests";
import { useEmulators } from "../helpers/outbound";
import { envRacingFirstBatch } from "../helpers/racing-env";
import { identifiedResult } from "../helpers/requests";
import { bearerUser } from "../helpers/users";

useEmulators();

async function sharedResult() {
  const owner = await bearerUser();
  const voter = await bearerUser();
  await env.DB.prepare("UPDATE users SET trust_level = 'basic' WHERE id = ?").bind(voter.userId).run();
  const { requestId, resultId } = await identifiedResult(owner.userId);
  await setShared(env, owner.userId, requestId, true);
  return { owner, voter, requestId, resultId };
}

const votesOn = async (resultId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM votes WHERE result_id = ?").bind(resultId).first<{ n: number }>())!.n;

describe("a vote lands only where it may", () => {
  it("a request its owner takes out of the community while a stranger's vote is on its way takes no vote (404)", async () => {
    const { owner, voter, requestId, resultId } = await sharedResult();
    const racing = envRacingFirstBatch(() => setShared(env, owner.userId, requestId, false));
    await expect(voteOnResult(racing.env, voter.userId, resultId, "upvote")).rejects.toMatchObject({ status: 404, code: "NOT_FOUND" });
    expect(racing.fired()).toBe(true);
    expect(await votesOn(resultId)).toBe(0);
    const tally = await env.DB.prepare("SELECT upvotes FROM identification_results WHERE id = ?")
      .bind(resultId)
      .first<{ upvotes: number }>();
    expect(tally!.upvotes).toBe(0);
  });

  it("a result the owner accepts while a vote is on its way takes no vote (400, as before it)", async () => {
    const { voter, resultId } = await sharedResult();
    const racing = envRacingFirstBatch(() =>
      env.DB.prepare("UPDATE identification_results SET is_accepted = 1, is_primary = 1 WHERE id = ?").bind(resultId).run(),
    );
    await expect(voteOnResult(racing.env, voter.userId, resultId, "downvote")).rejects.toMatchObject({ status: 400 });
    expect(await votesOn(resultId)).toBe(0);
  });

  it("a request deleted while a vote is on its way answers 404, not a server error", async () => {
    const { voter, requestId, resultId } = await sharedResult();
    const racing = envRacingFirstBatch(() => env.DB.prepare("DELETE FROM identification_requests WHERE id = ?").bind(requestId).run());
    await expect(voteOnResult(racing.env, voter.userId, resultId, "upvote")).rejects.toMatchObject({ status: 404, code: "NOT_FOUND" });
    expect(await votesOn(resultId)).toBe(0);
  });
});

describe("a proposal lands only on a shared request", () => {
  const newSpecies = async () => {
    const id = crypto.randomUUID();
    await env.DB.prepare("INSERT INTO species (id, scientific_name, family, genus) VALUES (?, ?, 'Araceae', 'Alocasia')")
      .bind(id, `Alocasia zebrina ${id.slice(0, 6)}`)
      .run();
    return id;
  };
  const proposals = async (requestId: string) =>
    (await env.DB.prepare("SELECT count(*) AS n FROM identification_results WHERE request_id = ? AND identification_source = 'community'")
      .bind(requestId)
      .first<{ n: number }>())!.n;
  const asUser = (u: { userId: string; username: string }) => ({ id: u.userId, username: u.username, role: "user" as const });

  it("a request its owner takes out of the community while a proposal is on its way takes none (404), and its owner hears of none", async () => {
    const { owner, voter: proposer, requestId } = await sharedResult();
    const speciesId = await newSpecies();
    const racing = envRacingFirstBatch(() => setShared(env, owner.userId, requestId, false));
    await expect(propose(racing.env, asUser(proposer), requestId, { species_id: speciesId })).rejects.toMatchObject({
      status: 404,
      code: "NOT_FOUND",
    });
    expect(racing.fired()).toBe(true);
    expect(await proposals(requestId)).toBe(0);
    const told = await env.DB.prepare("SELECT count(*) AS n FROM notifications WHERE user_id = ? AND type = 'community_proposal'")
      .bind(owner.userId)
      .first<{ n: number }>();
    expect(told!.n).toBe(0);
  });

  it("a request deleted while a proposal is on its way answers 404, not a server error", async () => {
    const { voter: proposer, requestId } = await sharedResult();
    const speciesId = await newSpecies();
    const racing = envRacingFirstBatch(() => env.DB.prepare("DELETE FROM identification_requests WHERE id = ?").bind(requestId).run());
    await expect(propose(racing.env, asUser(proposer), requestId, { species_id: speciesId })).rejects.toMatchObject({
      status: 404,
      code: "NOT_FOUND",
    });
    expect(await proposals(requestId)).toBe(0);
  });
});
