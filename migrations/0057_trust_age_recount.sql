-- A vote counts in a community consensus only from an account above `new`, and the `basic` level
-- is earned partly by age (7 days): a vote cast at day 6 starts counting at day 7 with nothing
-- to recount it. The five-minute housekeeping now recounts the identifications of the accounts
-- whose age crossed the threshold (services/community.ts recountAgedAccounts); these indexes let
-- it find them, and their votes and proposals, without reading every account, vote or result.
CREATE INDEX IF NOT EXISTS `users_new_by_age_idx` ON `users` (`date_joined`) WHERE `trust_level` = 'new' AND `post_count` >= 5;
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS `votes_user_idx` ON `votes` (`user_id`);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS `results_proposed_by_idx` ON `identification_results` (`proposed_by`) WHERE `proposed_by` IS NOT NULL;
