-- The photo bytes charged to each user (USER_STORAGE_BYTES): one row per photo a user's rows
-- refer to (requests, disease requests, plants, forum attachments, avatar), with its stored size.
-- A photo is content-addressed and may be shared: each user who keeps it is charged it once.
-- A row is written, under the allowance, before the photo is stored (services/photos.ts
-- `chargeStorage`, one statement, so concurrent uploads cannot pass it together), and goes when
-- the user's rows no longer refer to the photo (`pending_since` is set while the upload's rows are
-- being written, so that one keeps its charge; null once they are) or with the account. Photos
-- stored before this table are not charged.
CREATE TABLE `user_photo_bytes` (
	`user_id` text NOT NULL,
	`ref` text NOT NULL,
	`bytes` integer NOT NULL,
	`pending_since` integer,
	PRIMARY KEY(`user_id`, `ref`),
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
-- A deleted account is charged nothing more (as migrations/0042 for every row an account owns).
CREATE TRIGGER `user_photo_bytes_account_deleted` BEFORE INSERT ON `user_photo_bytes`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED user_photo_bytes'); END;
