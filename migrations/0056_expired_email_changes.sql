-- A pending email change whose link expired unconfirmed went on showing as `pending_email`
-- forever: the housekeeping purge deleted the link but left the column. The purge now clears the
-- column with the link (services/tokens.ts purgeExpiredTokens); this clears the changes whose
-- links were purged before that — a `pending_email` no unused, unexpired link names any more.
UPDATE `users` SET `pending_email` = NULL
WHERE `pending_email` IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM `email_change_tokens` t
    WHERE t.`user_id` = `users`.`id`
      AND t.`new_email` = `users`.`pending_email`
      AND t.`used_at` IS NULL
      AND t.`expires_at` >= unixepoch()
  );
