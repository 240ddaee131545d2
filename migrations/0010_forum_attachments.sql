CREATE TABLE `forum_attachments` (
	`post_id` text NOT NULL,
	`position` integer NOT NULL,
	`image` text NOT NULL,
	`width` integer NOT NULL,
	`height` integer NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`post_id`) REFERENCES `forum_posts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `forum_attachments_post_position_unique` ON `forum_attachments` (`post_id`,`position`);--> statement-breakpoint
CREATE INDEX `forum_attachments_image_idx` ON `forum_attachments` (`image`);