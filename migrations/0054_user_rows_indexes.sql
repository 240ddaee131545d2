-- Deleting a user makes SQLite find the rows of every table whose foreign key points at users
-- (to cascade, or to set null). Ten such columns led no index, so each deletion walked those
-- tables whole, and D1 reads and bills every row walked (test/db/user-foreign-keys.test.ts now
-- holds every such column to lead an index). Seven of them are also parts of the account export
-- (services/account-export.ts), which sorted the whole table for each page of them: their indexes
-- hold a user's rows in the export's order (created_at, then the part's unique key). The two a
-- moderator's decisions fill are null for most rows, so their indexes hold only the decided ones.
CREATE INDEX `forum_topics_author_created_idx` ON `forum_topics` (`author_id`, `created_at`, `id`);
--> statement-breakpoint
CREATE INDEX `forum_reactions_user_created_idx` ON `forum_reactions` (`user_id`, `created_at`, `post_id`, `type`);
--> statement-breakpoint
CREATE INDEX `forum_reports_reporter_created_idx` ON `forum_reports` (`reporter_id`, `created_at`, `id`);
--> statement-breakpoint
CREATE INDEX `blog_images_uploader_created_idx` ON `blog_images` (`uploaded_by`, `created_at`, `ref`);
--> statement-breakpoint
CREATE INDEX `blog_revisions_author_created_idx` ON `blog_revisions` (`author_id`, `created_at`, `post_id`, `number`);
--> statement-breakpoint
CREATE INDEX `blog_comment_reports_reporter_created_idx` ON `blog_comment_reports` (`reporter_id`, `created_at`, `id`);
--> statement-breakpoint
CREATE INDEX `proposal_reports_user_created_idx` ON `proposal_reports` (`user_id`, `created_at`, `result_id`);
--> statement-breakpoint
CREATE INDEX `ws_tickets_user_idx` ON `ws_tickets` (`user_id`);
--> statement-breakpoint
CREATE INDEX `blog_comments_moderated_by_idx` ON `blog_comments` (`moderated_by`) WHERE "blog_comments"."moderated_by" IS NOT NULL;
--> statement-breakpoint
CREATE INDEX `forum_reports_resolved_by_idx` ON `forum_reports` (`resolved_by`) WHERE "forum_reports"."resolved_by" IS NOT NULL;
