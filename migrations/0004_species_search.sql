-- Typo-tolerant catalogue search (API.md §4): an FTS5 index with the trigram tokenizer over
-- scientific name, common names and family. External-content table over `species`, kept in
-- step by triggers; `rowid` is species' implicit rowid. Written by hand: drizzle-kit does not
-- model virtual tables.
CREATE VIRTUAL TABLE `species_fts` USING fts5(
	`scientific_name`, `common_names`, `family`,
	content='species', content_rowid='rowid', tokenize='trigram'
);
--> statement-breakpoint
CREATE TRIGGER `species_fts_insert` AFTER INSERT ON `species` BEGIN
	INSERT INTO `species_fts` (rowid, scientific_name, common_names, family)
	VALUES (new.rowid, new.scientific_name, new.common_names, new.family);
END;
--> statement-breakpoint
CREATE TRIGGER `species_fts_delete` AFTER DELETE ON `species` BEGIN
	INSERT INTO `species_fts` (`species_fts`, rowid, scientific_name, common_names, family)
	VALUES ('delete', old.rowid, old.scientific_name, old.common_names, old.family);
END;
--> statement-breakpoint
CREATE TRIGGER `species_fts_update` AFTER UPDATE OF scientific_name, common_names, family ON `species` BEGIN
	INSERT INTO `species_fts` (`species_fts`, rowid, scientific_name, common_names, family)
	VALUES ('delete', old.rowid, old.scientific_name, old.common_names, old.family);
	INSERT INTO `species_fts` (rowid, scientific_name, common_names, family)
	VALUES (new.rowid, new.scientific_name, new.common_names, new.family);
END;
--> statement-breakpoint
-- Index what is already there (a database migrated after the seed was loaded).
INSERT INTO `species_fts` (`species_fts`) VALUES ('rebuild');
