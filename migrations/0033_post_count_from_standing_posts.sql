-- A user's post_count counts the forum posts that stand. Deleting a post or a topic now takes its
-- posts off the count (services/forum.ts); posts deleted before that still counted, so five posts
-- written and deleted could have earned trust. Lower each count to the author's live
-- posts; never raise one (the stored trust level stays a floor, as computeTrustLevel reads it).
UPDATE `users` SET `post_count` =
  (SELECT count(*) FROM `forum_posts` p WHERE p.`author_id` = `users`.`id` AND p.`is_deleted` = 0)
WHERE `post_count` > (SELECT count(*) FROM `forum_posts` p WHERE p.`author_id` = `users`.`id` AND p.`is_deleted` = 0);
