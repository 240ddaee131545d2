-- Unified search over a large forum (issue 13 item 6): a topic is found by one of its posts'
-- text, and testing every post body with instr() made the forum part of the search grow with the
-- forum (about 40 ms more at p50 with 10 000 more topics and posts; BENCHMARKS.md). A trigram
-- index over the stored bodies now narrows the posts to those holding the query's longest word;
-- the exact test of the visible text (tags stripped, src/services/search.ts) still decides.
-- External content over `forum_posts`, kept in step by triggers like species_fts. Hand-written:
-- drizzle-kit does not model FTS5.
CREATE VIRTUAL TABLE `forum_posts_fts` USING fts5(
	`body`,
	content='forum_posts', content_rowid='rowid', tokenize='trigram'
);
--> statement-breakpoint
CREATE TRIGGER `forum_posts_fts_insert` AFTER INSERT ON `forum_posts` BEGIN
	INSERT INTO `forum_posts_fts` (rowid, body) VALUES (new.rowid, new.body);
END;
--> statement-breakpoint
CREATE TRIGGER `forum_posts_fts_delete` AFTER DELETE ON `forum_posts` BEGIN
	INSERT INTO `forum_posts_fts` (`forum_posts_fts`, rowid, body) VALUES ('delete', old.rowid, old.body);
END;
--> statement-breakpoint
CREATE TRIGGER `forum_posts_fts_update` AFTER UPDATE OF body ON `forum_posts` BEGIN
	INSERT INTO `forum_posts_fts` (`forum_posts_fts`, rowid, body) VALUES ('delete', old.rowid, old.body);
	INSERT INTO `forum_posts_fts` (rowid, body) VALUES (new.rowid, new.body);
END;
--> statement-breakpoint
INSERT INTO `forum_posts_fts` (`forum_posts_fts`) VALUES ('rebuild');
