-- Community identification (issue 11, API.md §5c): proposals are results with a proposer, a
-- comment and a moderation flag; a request remembers when it was shared and which result the
-- community confirmed; species count their confirmed identifications. Counters are always
-- recounted from the rows in the same batch as the change, never incremented.
ALTER TABLE `identification_requests` ADD `shared_at` text;
--> statement-breakpoint
ALTER TABLE `identification_requests` ADD `community_result_id` text;
--> statement-breakpoint
ALTER TABLE `identification_requests` ADD `community_confirmed_at` text;
--> statement-breakpoint
CREATE INDEX `requests_shared_idx` ON `identification_requests` (`shared_at`) WHERE `is_shared_with_community` = 1;
--> statement-breakpoint
CREATE INDEX `requests_community_result_idx` ON `identification_requests` (`community_result_id`) WHERE `community_result_id` IS NOT NULL;
--> statement-breakpoint
ALTER TABLE `identification_results` ADD `proposed_by` text REFERENCES `users`(`id`) ON DELETE SET NULL;
--> statement-breakpoint
ALTER TABLE `identification_results` ADD `comment` text DEFAULT '' NOT NULL;
--> statement-breakpoint
ALTER TABLE `identification_results` ADD `is_hidden` integer DEFAULT 0 NOT NULL;
--> statement-breakpoint
CREATE INDEX `results_proposed_by_idx` ON `identification_results` (`proposed_by`) WHERE `proposed_by` IS NOT NULL;
--> statement-breakpoint
CREATE INDEX `votes_user_idx` ON `votes` (`user_id`);
--> statement-breakpoint
ALTER TABLE `species` ADD `confirmed_count` integer DEFAULT 0 NOT NULL;
--> statement-breakpoint
-- One report per user per proposal; moderators resolve them by hiding the proposal or dismissing.
CREATE TABLE `proposal_reports` (
	`result_id` text NOT NULL,
	`user_id` text NOT NULL,
	`reason` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`resolved_at` text,
	PRIMARY KEY (`result_id`, `user_id`),
	FOREIGN KEY (`result_id`) REFERENCES `identification_results`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `proposal_reports_open_idx` ON `proposal_reports` (`created_at`) WHERE `resolved_at` IS NULL;
