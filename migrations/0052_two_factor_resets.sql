-- Two-factor recovery for an owner who lost both the authenticator and the recovery codes
-- (src/services/two-factor-reset.ts). A row is made when "lost my device" at the second sign-in
-- step mails a link to the account's confirmed address: `link_hash` is the link's SHA-256 (the
-- token itself is never stored), valid until `link_expires_at` (unix seconds, an hour), once.
-- Following it starts the wait: `started_at`, and `completes_after` 72 hours later, with
-- `cancel_hash` the SHA-256 of the one-click cancel link mailed to the owner. A cancel (that link,
-- or any signed-in session) sets `cancelled_at`; the first password sign-in past `completes_after`
-- sets `completed_at` and turns two-factor sign-in off in the same batch, only while neither is
-- set. At most one started reset is open per account.
CREATE TABLE `two_factor_resets` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`link_hash` text NOT NULL,
	`link_expires_at` integer NOT NULL,
	`started_at` text,
	`completes_after` text,
	`cancel_hash` text,
	`cancelled_at` text,
	`completed_at` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `two_factor_resets_link_hash_unique` ON `two_factor_resets` (`link_hash`);
--> statement-breakpoint
CREATE UNIQUE INDEX `two_factor_resets_cancel_hash_unique` ON `two_factor_resets` (`cancel_hash`);
--> statement-breakpoint
CREATE UNIQUE INDEX `two_factor_resets_one_open` ON `two_factor_resets` (`user_id`) WHERE `started_at` IS NOT NULL AND `cancelled_at` IS NULL AND `completed_at` IS NULL;
--> statement-breakpoint
CREATE INDEX `two_factor_resets_user_idx` ON `two_factor_resets` (`user_id`);
--> statement-breakpoint
-- A deleted account starts nothing more (as migrations/0042 for every row an account owns).
CREATE TRIGGER `two_factor_resets_account_deleted` BEFORE INSERT ON `two_factor_resets`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED two_factor_resets'); END;
