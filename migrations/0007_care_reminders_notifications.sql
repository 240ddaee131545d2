CREATE TABLE `care_reminders` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`plant_id` text NOT NULL,
	`reminder_type` text NOT NULL,
	`frequency` text NOT NULL,
	`custom_interval_days` integer,
	`title` text NOT NULL,
	`next_due_at` text NOT NULL,
	`anchor_day` integer NOT NULL,
	`is_active` integer DEFAULT true NOT NULL,
	`streak` integer DEFAULT 0 NOT NULL,
	`last_completed_at` text,
	`notified_due_at` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`plant_id`) REFERENCES `user_plants`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `care_reminders_user_due_idx` ON `care_reminders` (`user_id`,`next_due_at`);--> statement-breakpoint
CREATE INDEX `care_reminders_plant_idx` ON `care_reminders` (`plant_id`);--> statement-breakpoint
CREATE INDEX `care_reminders_pending_idx` ON `care_reminders` (`next_due_at`) WHERE "care_reminders"."is_active" = 1 AND "care_reminders"."notified_due_at" IS NOT "care_reminders"."next_due_at";--> statement-breakpoint
CREATE TABLE `notifications` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`type` text NOT NULL,
	`title` text NOT NULL,
	`body` text DEFAULT '' NOT NULL,
	`data` text DEFAULT '{}' NOT NULL,
	`dedupe_key` text,
	`is_read` integer DEFAULT false NOT NULL,
	`read_at` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `notifications_dedupe_key_unique` ON `notifications` (`dedupe_key`);--> statement-breakpoint
CREATE INDEX `notifications_user_created_idx` ON `notifications` (`user_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `notifications_user_unread_idx` ON `notifications` (`user_id`) WHERE "notifications"."is_read" = 0;