-- Collection names are unique per user under Unicode folding (src/lib/text.ts textKey: NFKC and
-- full case folding, so "Küche" and "KÜCHE" are one name). The service checks it before writing,
-- but two writes at the same moment both passed that check, and the UNIQUE index on lower(name)
-- folds A–Z only. `name_key` holds textKey(name), written with every name (src/db/collection-names.ts),
-- and this index refuses the second of two racing writes.
--
-- SQLite cannot compute NFKC or full case folding, so the key comes from TypeScript. Here only the
-- names of ASCII characters alone are keyed (for them textKey is lower(); the one-byte-per-character
-- test is exact: UTF-8 uses more bytes for anything else). The others are keyed when the owner next
-- creates or renames a collection (the service reads all their names then). Two names made before
-- the rule that clash under it ("Küche" and "KÜCHE"): the older is keyed, the other keeps no key
-- until renamed — still seen by the service's check, and still editable.
ALTER TABLE `collections` ADD `name_key` text;
--> statement-breakpoint
UPDATE `collections` SET `name_key` = lower(`name`)
WHERE `name_key` IS NULL AND length(CAST(`name` AS BLOB)) = length(`name`);
--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS `collections_user_name_key_unique` ON `collections` (`user_id`, `name_key`) WHERE `name_key` IS NOT NULL;
