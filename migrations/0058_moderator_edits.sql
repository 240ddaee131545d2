-- A moderator's rewrite of someone else's forum post, or of someone else's topic title, is recorded
-- in the row; from then on its author may no longer edit it (services/forum.ts editPost,
-- updateTopicTitle), checked inside the author's write, so an abusive text the moderator replaced
-- cannot be written back. Rows from before have none: their authors edit them as before.
ALTER TABLE `forum_posts` ADD `moderator_edited_at` text;
--> statement-breakpoint
ALTER TABLE `forum_topics` ADD `title_moderator_edited_at` text;
