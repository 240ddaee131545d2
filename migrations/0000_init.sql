CREATE TABLE `collections` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`name` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`is_public` integer DEFAULT false NOT NULL,
	`is_default` integer DEFAULT false NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `collections_user_name_unique` ON `collections` (`user_id`,lower("name"));--> statement-breakpoint
CREATE TABLE `identification_requests` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text,
	`status` text DEFAULT 'pending' NOT NULL,
	`image_hashes` text NOT NULL,
	`organs` text DEFAULT '[]' NOT NULL,
	`latitude` real,
	`longitude` real,
	`location` text DEFAULT '' NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`plant_size` text DEFAULT '' NOT NULL,
	`habitat` text DEFAULT '' NOT NULL,
	`is_shared_with_community` integer DEFAULT false NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`error_message` text,
	`processed_at` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `requests_user_created_idx` ON `identification_requests` (`user_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `requests_status_idx` ON `identification_requests` (`status`);--> statement-breakpoint
CREATE TABLE `identification_results` (
	`id` text PRIMARY KEY NOT NULL,
	`request_id` text NOT NULL,
	`species_id` text,
	`scientific_name` text NOT NULL,
	`plant_name` text DEFAULT '' NOT NULL,
	`common_names` text DEFAULT '[]' NOT NULL,
	`family` text DEFAULT '' NOT NULL,
	`genus` text DEFAULT '' NOT NULL,
	`gbif_id` integer,
	`confidence_score` real NOT NULL,
	`identification_source` text NOT NULL,
	`rank` integer NOT NULL,
	`is_primary` integer DEFAULT false NOT NULL,
	`is_accepted` integer DEFAULT false NOT NULL,
	`upvotes` integer DEFAULT 0 NOT NULL,
	`downvotes` integer DEFAULT 0 NOT NULL,
	`details` text DEFAULT '{}' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`request_id`) REFERENCES `identification_requests`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`species_id`) REFERENCES `species`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `results_confidence_idx` ON `identification_results` (`confidence_score`);--> statement-breakpoint
CREATE UNIQUE INDEX `results_request_species_unique` ON `identification_results` (`request_id`,lower("scientific_name"));--> statement-breakpoint
CREATE INDEX `results_request_rank_idx` ON `identification_results` (`request_id`,`rank`);--> statement-breakpoint
CREATE TABLE `species` (
	`id` text PRIMARY KEY NOT NULL,
	`scientific_name` text NOT NULL,
	`common_names` text DEFAULT '[]' NOT NULL,
	`family` text DEFAULT '' NOT NULL,
	`genus` text DEFAULT '' NOT NULL,
	`gbif_id` integer,
	`trefle_id` integer,
	`plant_type` text,
	`light_requirements` text,
	`water_requirements` text,
	`hardiness_zone_min` integer,
	`hardiness_zone_max` integer,
	`soil_ph_min` real,
	`soil_ph_max` real,
	`mature_height_min_cm` integer,
	`mature_height_max_cm` integer,
	`bloom_time` text,
	`flower_color` text,
	`description` text DEFAULT '' NOT NULL,
	`image_url` text,
	`identification_count` integer DEFAULT 0 NOT NULL,
	`is_verified` integer DEFAULT false NOT NULL,
	`source` text DEFAULT 'seed' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `species_scientific_name_unique` ON `species` (lower("scientific_name"));--> statement-breakpoint
CREATE INDEX `species_popularity_idx` ON `species` (`identification_count`,`scientific_name`);--> statement-breakpoint
CREATE INDEX `species_family_idx` ON `species` (`family`);--> statement-breakpoint
CREATE TABLE `user_plants` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`collection_id` text NOT NULL,
	`species_id` text,
	`result_id` text,
	`nickname` text DEFAULT '' NOT NULL,
	`acquisition_date` text,
	`location_in_home` text DEFAULT '' NOT NULL,
	`notes` text DEFAULT '' NOT NULL,
	`is_alive` integer DEFAULT true NOT NULL,
	`image_key` text,
	`care_instructions_json` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`collection_id`) REFERENCES `collections`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`species_id`) REFERENCES `species`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`result_id`) REFERENCES `identification_results`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `user_plants_user_idx` ON `user_plants` (`user_id`,`created_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `user_plants_collection_result_unique` ON `user_plants` (`collection_id`,`result_id`);--> statement-breakpoint
CREATE TABLE `users` (
	`id` text PRIMARY KEY NOT NULL,
	`username` text NOT NULL,
	`email` text NOT NULL,
	`password_hash` text,
	`first_name` text DEFAULT '' NOT NULL,
	`last_name` text DEFAULT '' NOT NULL,
	`bio` text DEFAULT '' NOT NULL,
	`location` text DEFAULT '' NOT NULL,
	`website` text DEFAULT '' NOT NULL,
	`gardening_experience` text DEFAULT 'beginner' NOT NULL,
	`profile_visibility` text DEFAULT 'public' NOT NULL,
	`avatar_key` text,
	`role` text DEFAULT 'user' NOT NULL,
	`trust_level` text DEFAULT 'new' NOT NULL,
	`is_active` integer DEFAULT true NOT NULL,
	`email_verified` integer DEFAULT false NOT NULL,
	`plants_identified` integer DEFAULT 0 NOT NULL,
	`identifications_helped` integer DEFAULT 0 NOT NULL,
	`post_count` integer DEFAULT 0 NOT NULL,
	`date_joined` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`last_login` text,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_username_lower_unique` ON `users` (lower("username"));--> statement-breakpoint
CREATE UNIQUE INDEX `users_email_lower_unique` ON `users` (lower("email"));--> statement-breakpoint
CREATE TABLE `votes` (
	`id` text PRIMARY KEY NOT NULL,
	`result_id` text NOT NULL,
	`user_id` text NOT NULL,
	`vote_type` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`result_id`) REFERENCES `identification_results`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `votes_result_user_unique` ON `votes` (`result_id`,`user_id`);