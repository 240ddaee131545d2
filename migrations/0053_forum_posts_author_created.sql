-- The account export (services/account-export.ts) reads the user's forum posts a page at a time,
-- oldest first: author_id = ? AND after the last post read, ORDER BY created_at, id. Through
-- (author_id) each page sorted every post the user ever wrote; this index holds them in that
-- order, so a page reads its rows alone. It serves every read (author_id) served, so that one goes.
CREATE INDEX `forum_posts_author_created_idx` ON `forum_posts` (`author_id`, `created_at`, `id`);
--> statement-breakpoint
DROP INDEX `forum_posts_author_idx`;
