-- How many devices one account may have subscribed to Web Push (src/services/push-subscriptions.ts
-- MAX_DEVICES names the same number in its 400). The cap sat in a count read before the insert,
-- so subscribes sent at the same moment could each see 19 and all land. A trigger runs before
-- SQLite looks for a conflict, so the endpoint's upsert passes it when the account already holds
-- that endpoint (a re-subscribe, which adds no device); an endpoint moving from another account
-- (another person signed in on that browser) is a new device for this one and meets the cap.
CREATE TRIGGER `push_subscriptions_per_user_cap` BEFORE INSERT ON `push_subscriptions`
WHEN (SELECT count(*) FROM `push_subscriptions` WHERE `user_id` = NEW.`user_id`) >= 20
  AND NOT EXISTS (SELECT 1 FROM `push_subscriptions` WHERE `user_id` = NEW.`user_id` AND `endpoint` = NEW.`endpoint`)
BEGIN SELECT RAISE(ABORT, 'PER_USER_CAP push_subscriptions'); END;
