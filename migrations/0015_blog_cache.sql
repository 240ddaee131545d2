CREATE TABLE `blog_cache_state` (
	`id` integer PRIMARY KEY NOT NULL,
	`version` integer DEFAULT 1 NOT NULL
);
--> statement-breakpoint
INSERT INTO `blog_cache_state` (`id`, `version`) VALUES (1, 1);
