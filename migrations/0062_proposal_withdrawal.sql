-- A proposer may withdraw a community proposal (services/community.ts withdrawProposal): the result
-- stays a candidate, with the votes others gave it, but its proposer's support no longer counts
-- toward a consensus. Proposing the same species again restores it. Rows from before have none.
ALTER TABLE `identification_results` ADD `withdrawn_at` text;
