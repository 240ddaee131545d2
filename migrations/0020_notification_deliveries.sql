-- Notifications that leave the app (issue 10 items 3 and 6): email and Web Push deliveries.
--
-- Every notification row is now written whatever the in-app preference says: `in_app` = 0 keeps
-- it out of the list (and it is written read), but it still carries the event to the other
-- channels. A trigger turns each new notification into its email and push deliveries in the same
-- statement, so no event can be written without them and no caller can forget them. The rules
-- the trigger needs (the per-type defaults) are rows of notification_type_defaults, which a test
-- keeps equal to NOTIFICATION_DEFAULTS in src/services/notification-preferences.ts.
ALTER TABLE `notifications` ADD `in_app` integer DEFAULT 1 NOT NULL;
--> statement-breakpoint
CREATE TABLE `notification_type_defaults` (
	`type` text PRIMARY KEY NOT NULL,
	`in_app` integer NOT NULL,
	`email` integer NOT NULL,
	`push` integer NOT NULL,
	-- Emailed at once even for digest readers (a digest of "starts in an hour" is useless).
	`urgent` integer NOT NULL
);
--> statement-breakpoint
INSERT INTO `notification_type_defaults` (`type`, `in_app`, `email`, `push`, `urgent`) VALUES
	('forum_reply', 1, 0, 1, 0),
	('forum_mention', 1, 1, 1, 0),
	('care_reminder', 1, 0, 1, 0),
	('identification_completed', 1, 0, 1, 0),
	('identification_failed', 1, 1, 1, 0),
	('community_proposal', 1, 0, 1, 0),
	('community_agreement', 1, 0, 0, 0),
	('community_consensus', 1, 1, 1, 0),
	('blog_comment_approved', 1, 0, 0, 0),
	('blog_comment_reply', 1, 1, 0, 0),
	('calendar_event_changed', 1, 1, 0, 0),
	('calendar_event_starting', 1, 0, 1, 1),
	('security', 1, 1, 0, 1);
--> statement-breakpoint
-- One row per message to send (channel email or push), or per digest. status:
--   held     waits for the user's digest (email only)
--   queued   a job is (or will be, by the sweep) on the notification queue
--   sending  claimed by a consumer (claimed_at); reclaimable after a while — the provider's
--            idempotency key (the row id) makes a second send of the same email a no-op
--   sent | skipped (nothing to send any more: suppressed, unverified, turned off, no device)
--   digested (gathered into digest_id) | failed (the dead-letter queue gave up)
CREATE TABLE `notification_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`notification_id` text,
	`channel` text NOT NULL CHECK (`channel` IN ('email', 'push')),
	`type` text NOT NULL,
	`dedupe_key` text NOT NULL,
	`status` text NOT NULL CHECK (`status` IN ('held', 'queued', 'sending', 'sent', 'skipped', 'digested', 'failed')),
	`digest_id` text,
	`period` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`claimed_at` text,
	`sent_at` text,
	`provider_id` text,
	`detail` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`notification_id`) REFERENCES `notifications`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `notification_deliveries_dedupe_unique` ON `notification_deliveries` (`dedupe_key`);
--> statement-breakpoint
CREATE INDEX `notification_deliveries_notification_idx` ON `notification_deliveries` (`notification_id`);
--> statement-breakpoint
CREATE INDEX `notification_deliveries_user_status_idx` ON `notification_deliveries` (`user_id`, `status`);
--> statement-breakpoint
CREATE INDEX `notification_deliveries_digest_idx` ON `notification_deliveries` (`digest_id`) WHERE `digest_id` IS NOT NULL;
--> statement-breakpoint
CREATE INDEX `notification_deliveries_open_idx` ON `notification_deliveries` (`status`, `created_at`) WHERE `status` IN ('held', 'queued', 'sending');
--> statement-breakpoint
-- A browser's (or app's) Web Push subscription. An endpoint belongs to one user: the browser
-- that subscribes again for another account moves to that account.
CREATE TABLE `push_subscriptions` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`endpoint` text NOT NULL,
	`p256dh` text NOT NULL,
	`auth` text NOT NULL,
	`user_agent` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`last_success_at` text,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `push_subscriptions_endpoint_unique` ON `push_subscriptions` (`endpoint`);
--> statement-breakpoint
CREATE INDEX `push_subscriptions_user_idx` ON `push_subscriptions` (`user_id`);
--> statement-breakpoint
-- Which subscriptions a push delivery reached: a retried job sends only to the others.
CREATE TABLE `push_sends` (
	`delivery_id` text NOT NULL,
	`subscription_id` text NOT NULL,
	`sent_at` text NOT NULL,
	PRIMARY KEY (`delivery_id`, `subscription_id`),
	FOREIGN KEY (`delivery_id`) REFERENCES `notification_deliveries`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`subscription_id`) REFERENCES `push_subscriptions`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
-- Email: wanted for this type (the user's choice, else the default), digest not off, and a
-- verified address — except security mail, which always goes, at once. Urgent types and
-- `immediate` readers are queued; the rest wait for the digest.
CREATE TRIGGER `notifications_email_delivery` AFTER INSERT ON `notifications` BEGIN
	INSERT INTO `notification_deliveries` (`id`, `user_id`, `notification_id`, `channel`, `type`, `dedupe_key`, `status`, `created_at`)
	SELECT lower(hex(randomblob(16))), new.user_id, new.id, 'email', new.type, 'email:' || new.id,
		CASE WHEN d.urgent = 1 OR COALESCE(p.digest, 'daily') = 'immediate' THEN 'queued' ELSE 'held' END,
		new.created_at
	FROM `users` u
	JOIN `notification_type_defaults` d ON d.type = new.type
	LEFT JOIN `notification_preferences` p ON p.user_id = u.id
	WHERE u.id = new.user_id AND u.is_active = 1
		AND (new.type = 'security' OR (
			u.email_verified = 1
			AND COALESCE(p.digest, 'daily') <> 'off'
			AND COALESCE(json_extract(p.types, '$.' || new.type || '.email'), d.email) = 1));
END;
--> statement-breakpoint
-- Push: wanted for this type and at least one subscribed device.
CREATE TRIGGER `notifications_push_delivery` AFTER INSERT ON `notifications` BEGIN
	INSERT INTO `notification_deliveries` (`id`, `user_id`, `notification_id`, `channel`, `type`, `dedupe_key`, `status`, `created_at`)
	SELECT lower(hex(randomblob(16))), new.user_id, new.id, 'push', new.type, 'push:' || new.id, 'queued', new.created_at
	FROM `notification_type_defaults` d
	LEFT JOIN `notification_preferences` p ON p.user_id = new.user_id
	WHERE d.type = new.type
		AND COALESCE(json_extract(p.types, '$.' || new.type || '.push'), d.push) = 1
		AND EXISTS (SELECT 1 FROM `push_subscriptions` s WHERE s.user_id = new.user_id);
END;
