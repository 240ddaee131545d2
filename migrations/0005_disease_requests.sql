CREATE TABLE `disease_requests` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`image_hashes` text NOT NULL,
	`symptoms_description` text NOT NULL,
	`plant_condition` text,
	`location` text DEFAULT '' NOT NULL,
	`is_plant` integer,
	`is_healthy` integer,
	`is_healthy_probability` real,
	`attempts` integer DEFAULT 0 NOT NULL,
	`error_message` text,
	`processed_at` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `disease_requests_user_created_idx` ON `disease_requests` (`user_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `disease_requests_status_idx` ON `disease_requests` (`status`);--> statement-breakpoint
CREATE TABLE `disease_results` (
	`id` text PRIMARY KEY NOT NULL,
	`request_id` text NOT NULL,
	`entity_id` text,
	`name` text NOT NULL,
	`common_names` text DEFAULT '[]' NOT NULL,
	`probability` real NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`treatment` text DEFAULT '{}' NOT NULL,
	`classification` text DEFAULT '[]' NOT NULL,
	`disease_type` text DEFAULT 'other' NOT NULL,
	`cause` text,
	`url` text,
	`similar_images` text DEFAULT '[]' NOT NULL,
	`rank` integer NOT NULL,
	`is_confirmed` integer DEFAULT false NOT NULL,
	`confirmed_at` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`request_id`) REFERENCES `disease_requests`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `disease_results_request_name_unique` ON `disease_results` (`request_id`,lower("name"));--> statement-breakpoint
CREATE UNIQUE INDEX `disease_results_one_confirmed_per_request` ON `disease_results` (`request_id`) WHERE "disease_results"."is_confirmed" = 1;--> statement-breakpoint
CREATE INDEX `disease_results_confirmed_idx` ON `disease_results` (`is_confirmed`,`disease_type`);