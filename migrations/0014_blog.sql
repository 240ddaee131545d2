CREATE TABLE `blog_categories` (
	`id` text PRIMARY KEY NOT NULL,
	`slug` text NOT NULL,
	`name` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `blog_categories_slug_unique` ON `blog_categories` (`slug`);--> statement-breakpoint
CREATE TABLE `blog_comment_reports` (
	`id` text PRIMARY KEY NOT NULL,
	`comment_id` text NOT NULL,
	`reporter_id` text NOT NULL,
	`reason` text NOT NULL,
	`status` text DEFAULT 'open' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`comment_id`) REFERENCES `blog_comments`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`reporter_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `blog_comment_reports_comment_reporter_unique` ON `blog_comment_reports` (`comment_id`,`reporter_id`);--> statement-breakpoint
CREATE INDEX `blog_comment_reports_status_created_idx` ON `blog_comment_reports` (`status`,`created_at`);--> statement-breakpoint
CREATE TABLE `blog_comments` (
	`id` text PRIMARY KEY NOT NULL,
	`post_id` text NOT NULL,
	`user_id` text NOT NULL,
	`parent_id` text,
	`body` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`moderated_by` text,
	`moderated_at` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`post_id`) REFERENCES `blog_posts`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`moderated_by`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `blog_comments_post_status_created_idx` ON `blog_comments` (`post_id`,`status`,`created_at`);--> statement-breakpoint
CREATE INDEX `blog_comments_status_created_idx` ON `blog_comments` (`status`,`created_at`);--> statement-breakpoint
CREATE INDEX `blog_comments_user_created_idx` ON `blog_comments` (`user_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `blog_post_categories` (
	`post_id` text NOT NULL,
	`category_id` text NOT NULL,
	FOREIGN KEY (`post_id`) REFERENCES `blog_posts`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`category_id`) REFERENCES `blog_categories`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `blog_post_categories_unique` ON `blog_post_categories` (`post_id`,`category_id`);--> statement-breakpoint
CREATE INDEX `blog_post_categories_category_idx` ON `blog_post_categories` (`category_id`,`post_id`);--> statement-breakpoint
CREATE TABLE `blog_post_tags` (
	`post_id` text NOT NULL,
	`tag` text NOT NULL,
	FOREIGN KEY (`post_id`) REFERENCES `blog_posts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `blog_post_tags_unique` ON `blog_post_tags` (`post_id`,`tag`);--> statement-breakpoint
CREATE INDEX `blog_post_tags_tag_idx` ON `blog_post_tags` (`tag`,`post_id`);--> statement-breakpoint
CREATE TABLE `blog_post_views` (
	`post_id` text NOT NULL,
	`day` text NOT NULL,
	`views` integer DEFAULT 0 NOT NULL,
	FOREIGN KEY (`post_id`) REFERENCES `blog_posts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `blog_post_views_post_day_unique` ON `blog_post_views` (`post_id`,`day`);--> statement-breakpoint
CREATE INDEX `blog_post_views_day_idx` ON `blog_post_views` (`day`,`post_id`);--> statement-breakpoint
CREATE TABLE `blog_posts` (
	`id` text PRIMARY KEY NOT NULL,
	`slug` text NOT NULL,
	`title` text NOT NULL,
	`introduction` text DEFAULT '' NOT NULL,
	`content_blocks` text DEFAULT '[]' NOT NULL,
	`status` text DEFAULT 'draft' NOT NULL,
	`author_id` text,
	`featured_image` text,
	`featured_image_alt` text DEFAULT '' NOT NULL,
	`series_id` text,
	`series_order` integer,
	`is_featured` integer DEFAULT false NOT NULL,
	`reading_time` integer DEFAULT 1 NOT NULL,
	`excerpt` text DEFAULT '' NOT NULL,
	`search_text` text DEFAULT '' NOT NULL,
	`scheduled_at` text,
	`first_published_at` text,
	`last_published_at` text,
	`view_count` integer DEFAULT 0 NOT NULL,
	`comment_count` integer DEFAULT 0 NOT NULL,
	`revision` integer DEFAULT 0 NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`series_id`) REFERENCES `blog_series`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `blog_posts_slug_unique` ON `blog_posts` (`slug`);--> statement-breakpoint
CREATE INDEX `blog_posts_status_published_idx` ON `blog_posts` (`status`,`first_published_at`);--> statement-breakpoint
CREATE INDEX `blog_posts_status_views_idx` ON `blog_posts` (`status`,`view_count`);--> statement-breakpoint
CREATE INDEX `blog_posts_author_idx` ON `blog_posts` (`author_id`,`updated_at`);--> statement-breakpoint
CREATE INDEX `blog_posts_series_idx` ON `blog_posts` (`series_id`,`series_order`);--> statement-breakpoint
CREATE INDEX `blog_posts_scheduled_idx` ON `blog_posts` (`scheduled_at`) WHERE "blog_posts"."scheduled_at" IS NOT NULL;--> statement-breakpoint
CREATE TABLE `blog_revisions` (
	`id` text PRIMARY KEY NOT NULL,
	`post_id` text NOT NULL,
	`number` integer NOT NULL,
	`author_id` text,
	`snapshot` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`post_id`) REFERENCES `blog_posts`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `blog_revisions_post_number_unique` ON `blog_revisions` (`post_id`,`number`);--> statement-breakpoint
CREATE TABLE `blog_series` (
	`id` text PRIMARY KEY NOT NULL,
	`slug` text NOT NULL,
	`title` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`cover_image` text,
	`cover_image_alt` text DEFAULT '' NOT NULL,
	`is_completed` integer DEFAULT false NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `blog_series_slug_unique` ON `blog_series` (`slug`);--> statement-breakpoint
-- Blog search (hand-written: drizzle-kit does not model FTS5). Only published posts are indexed, and
-- triggers keep the index in step with every publish, edit, unpublish and delete in the same
-- statement — so no code path can leave a draft searchable. Trigram tokens, as species_fts.
CREATE VIRTUAL TABLE `blog_fts` USING fts5(title, body, tokenize = 'trigram');
--> statement-breakpoint
CREATE TRIGGER `blog_fts_insert` AFTER INSERT ON `blog_posts` WHEN new.status = 'published' BEGIN
	INSERT INTO `blog_fts` (rowid, title, body) VALUES (new.rowid, new.title, new.search_text);
END;
--> statement-breakpoint
CREATE TRIGGER `blog_fts_delete` AFTER DELETE ON `blog_posts` BEGIN
	DELETE FROM `blog_fts` WHERE rowid = old.rowid;
END;
--> statement-breakpoint
CREATE TRIGGER `blog_fts_update` AFTER UPDATE OF status, title, search_text ON `blog_posts` BEGIN
	DELETE FROM `blog_fts` WHERE rowid = old.rowid;
	INSERT INTO `blog_fts` (rowid, title, body) SELECT new.rowid, new.title, new.search_text WHERE new.status = 'published';
END;
