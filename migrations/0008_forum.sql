CREATE TABLE `forum_categories` (
	`id` text PRIMARY KEY NOT NULL,
	`slug` text NOT NULL,
	`name` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`position` integer DEFAULT 0 NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `forum_categories_slug_unique` ON `forum_categories` (`slug`);--> statement-breakpoint
CREATE TABLE `forum_posts` (
	`id` text PRIMARY KEY NOT NULL,
	`topic_id` text NOT NULL,
	`author_id` text NOT NULL,
	`body` text NOT NULL,
	`is_first` integer DEFAULT false NOT NULL,
	`is_deleted` integer DEFAULT false NOT NULL,
	`deleted_at` text,
	`edited_at` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`topic_id`) REFERENCES `forum_topics`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `forum_posts_topic_created_idx` ON `forum_posts` (`topic_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `forum_posts_author_idx` ON `forum_posts` (`author_id`);--> statement-breakpoint
CREATE TABLE `forum_reactions` (
	`post_id` text NOT NULL,
	`user_id` text NOT NULL,
	`type` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`post_id`) REFERENCES `forum_posts`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `forum_reactions_post_user_type_unique` ON `forum_reactions` (`post_id`,`user_id`,`type`);--> statement-breakpoint
CREATE TABLE `forum_reports` (
	`id` text PRIMARY KEY NOT NULL,
	`post_id` text NOT NULL,
	`reporter_id` text NOT NULL,
	`reason` text NOT NULL,
	`status` text DEFAULT 'open' NOT NULL,
	`resolved_by` text,
	`resolved_at` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`post_id`) REFERENCES `forum_posts`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`reporter_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`resolved_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `forum_reports_post_reporter_unique` ON `forum_reports` (`post_id`,`reporter_id`);--> statement-breakpoint
CREATE INDEX `forum_reports_status_created_idx` ON `forum_reports` (`status`,`created_at`);--> statement-breakpoint
CREATE TABLE `forum_subscriptions` (
	`topic_id` text NOT NULL,
	`user_id` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`topic_id`) REFERENCES `forum_topics`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `forum_subscriptions_topic_user_unique` ON `forum_subscriptions` (`topic_id`,`user_id`);--> statement-breakpoint
CREATE INDEX `forum_subscriptions_user_idx` ON `forum_subscriptions` (`user_id`);--> statement-breakpoint
CREATE TABLE `forum_topics` (
	`id` text PRIMARY KEY NOT NULL,
	`category_id` text NOT NULL,
	`author_id` text NOT NULL,
	`title` text NOT NULL,
	`is_locked` integer DEFAULT false NOT NULL,
	`is_pinned` integer DEFAULT false NOT NULL,
	`reply_count` integer DEFAULT 0 NOT NULL,
	`last_activity_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`solution_post_id` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`category_id`) REFERENCES `forum_categories`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `forum_topics_category_order_idx` ON `forum_topics` (`category_id`,`is_pinned`,`last_activity_at`);--> statement-breakpoint
-- Seed categories (fixed ids so every environment agrees).
INSERT INTO `forum_categories` (`id`, `slug`, `name`, `description`, `position`) VALUES
	('6f1c1a52-3d4e-4b8a-9a51-0c2f7e1d0001', 'plant-identification', 'Plant Identification', 'Help naming a plant: post photos and what you know about it.', 1),
	('6f1c1a52-3d4e-4b8a-9a51-0c2f7e1d0002', 'houseplants', 'Houseplants', 'Light, watering, potting and care of indoor plants.', 2),
	('6f1c1a52-3d4e-4b8a-9a51-0c2f7e1d0003', 'pests-and-diseases', 'Pests & Diseases', 'Spots, bugs, rot and wilting: diagnosis and treatment.', 3),
	('6f1c1a52-3d4e-4b8a-9a51-0c2f7e1d0004', 'vegetable-gardening', 'Vegetable Gardening', 'Growing food: beds, sowing, harvests and crop rotation.', 4),
	('6f1c1a52-3d4e-4b8a-9a51-0c2f7e1d0005', 'propagation', 'Propagation', 'Cuttings, seeds, division and layering.', 5),
	('6f1c1a52-3d4e-4b8a-9a51-0c2f7e1d0006', 'soil-and-composting', 'Soil & Composting', 'Soil mixes, fertilisers, compost and mulch.', 6),
	('6f1c1a52-3d4e-4b8a-9a51-0c2f7e1d0007', 'garden-design', 'Garden Design', 'Planning beds, borders, containers and wildlife-friendly gardens.', 7),
	('6f1c1a52-3d4e-4b8a-9a51-0c2f7e1d0008', 'general-discussion', 'General Discussion', 'Everything else about plants and gardening.', 8);
