-- How many collections, plants and saved care cards one account may hold (src/lib/errors.ts
-- PER_USER_CAPS names the same numbers in their 409s). Each insert that would pass the cap is
-- refused inside the write itself, so concurrent inserts cannot overshoot it; the count reads the
-- user_id index. Generous for a gardener; they bound what one account can make D1 hold (a care
-- card is up to 16 KiB of JSON). A trigger runs before SQLite looks for a conflict, so an insert
-- that duplicates a row the account already has is let through to its own conflict: the
-- idempotent add-to-collection still answers its plant, a duplicate name its own 409.
CREATE TRIGGER `collections_per_user_cap` BEFORE INSERT ON `collections`
WHEN (SELECT count(*) FROM `collections` WHERE `user_id` = NEW.`user_id`) >= 200
  AND NOT EXISTS (SELECT 1 FROM `collections` WHERE `user_id` = NEW.`user_id` AND lower(`name`) = lower(NEW.`name`))
BEGIN SELECT RAISE(ABORT, 'PER_USER_CAP collections'); END;
--> statement-breakpoint
CREATE TRIGGER `user_plants_per_user_cap` BEFORE INSERT ON `user_plants`
WHEN (SELECT count(*) FROM `user_plants` WHERE `user_id` = NEW.`user_id`) >= 5000
  AND NOT EXISTS (SELECT 1 FROM `user_plants` WHERE `collection_id` = NEW.`collection_id` AND `result_id` = NEW.`result_id`)
BEGIN SELECT RAISE(ABORT, 'PER_USER_CAP user_plants'); END;
--> statement-breakpoint
CREATE TRIGGER `saved_care_per_user_cap` BEFORE INSERT ON `saved_care_instructions`
WHEN (SELECT count(*) FROM `saved_care_instructions` WHERE `user_id` = NEW.`user_id`) >= 1000
  AND NOT EXISTS (SELECT 1 FROM `saved_care_instructions` WHERE `user_id` = NEW.`user_id` AND lower(`scientific_name`) = lower(NEW.`scientific_name`))
BEGIN SELECT RAISE(ABORT, 'PER_USER_CAP saved_care_instructions'); END;
