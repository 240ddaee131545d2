-- When a notification was withdrawn (the forum post it quoted was deleted; src/services/forum.ts),
-- said outright. Before, a withdrawn row was known only by its empty title. The row stays, blank,
-- so that the mention cap still counts it; nothing lists, marks, pushes or emails it.
ALTER TABLE `notifications` ADD `withdrawn_at` text;
--> statement-breakpoint
-- Rows withdrawn before this column: blanked, with an empty title (no live notification has one).
UPDATE `notifications` SET `withdrawn_at` = coalesce(`read_at`, `created_at`) WHERE `title` = '';
