CREATE TABLE `saved_care_instructions` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`scientific_name` text NOT NULL,
	`common_name` text DEFAULT '' NOT NULL,
	`care_instructions` text DEFAULT '{}' NOT NULL,
	`is_favorite` integer DEFAULT false NOT NULL,
	`personal_notes` text DEFAULT '' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `saved_care_user_name_unique` ON `saved_care_instructions` (`user_id`,lower("scientific_name"));--> statement-breakpoint
CREATE INDEX `saved_care_user_created_idx` ON `saved_care_instructions` (`user_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `user_plants_collection_created_idx` ON `user_plants` (`collection_id`,`created_at`);