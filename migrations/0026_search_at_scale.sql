-- Search at scale (issue 13 item 6): completions and short-query searches read indexes instead of
-- scanning whole tables. Measured with `npm run bench -- scale` (BENCHMARKS.md).
--
-- Each common name of a species as a row of its own, lower-cased (SQLite's lower(), ASCII only,
-- as every other text comparison of the API), so "starts with" is an index range. Kept in step
-- with species.common_names by triggers, like species_fts; a malformed list counts as empty.
CREATE TABLE `species_common_names` (
	`species_id` text NOT NULL,
	`position` integer NOT NULL,
	`name` text NOT NULL,
	`name_lower` text NOT NULL,
	PRIMARY KEY (`species_id`, `position`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE INDEX `species_common_names_prefix_idx` ON `species_common_names` (`name_lower`);
--> statement-breakpoint
CREATE TRIGGER `species_common_names_insert` AFTER INSERT ON `species` BEGIN
	INSERT INTO `species_common_names` (species_id, position, name, name_lower)
	SELECT new.id, j.key, j.value, lower(j.value)
	  FROM json_each(CASE WHEN json_valid(new.common_names) THEN new.common_names ELSE '[]' END) j
	 WHERE j.type = 'text';
END;
--> statement-breakpoint
CREATE TRIGGER `species_common_names_update` AFTER UPDATE OF common_names ON `species` BEGIN
	DELETE FROM `species_common_names` WHERE species_id = old.id;
	INSERT INTO `species_common_names` (species_id, position, name, name_lower)
	SELECT new.id, j.key, j.value, lower(j.value)
	  FROM json_each(CASE WHEN json_valid(new.common_names) THEN new.common_names ELSE '[]' END) j
	 WHERE j.type = 'text';
END;
--> statement-breakpoint
CREATE TRIGGER `species_common_names_delete` AFTER DELETE ON `species` BEGIN
	DELETE FROM `species_common_names` WHERE species_id = old.id;
END;
--> statement-breakpoint
INSERT INTO `species_common_names` (species_id, position, name, name_lower)
SELECT s.id, j.key, j.value, lower(j.value)
  FROM `species` s, json_each(CASE WHEN json_valid(s.common_names) THEN s.common_names ELSE '[]' END) j
 WHERE j.type = 'text';
--> statement-breakpoint
-- Prefix ranges over lower-cased names and titles: a short species query's family prefix, and the
-- completions of forum topic and published blog post titles.
CREATE INDEX `species_family_lower_idx` ON `species` (lower("family"));
--> statement-breakpoint
CREATE INDEX `forum_topics_title_lower_idx` ON `forum_topics` (lower("title"));
--> statement-breakpoint
CREATE INDEX `blog_posts_title_lower_idx` ON `blog_posts` (lower("title"));
