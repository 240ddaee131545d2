-- Rotating JWT_SECRET (README "Rotating JWT_SECRET"): which secret signed a calendar feed's URL,
-- by its key id (src/lib/derived-keys.ts keyId). Set when the URL is issued and each time a
-- calendar app fetches it, so housekeeping can count the subscriptions still polled with a URL
-- signed under a secret of JWT_SECRET_PREVIOUS (they answer 404 once it is removed). Null: issued
-- before this migration and not fetched since.
ALTER TABLE `calendar_feeds` ADD `key_id` text;
