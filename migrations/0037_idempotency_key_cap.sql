-- How many live Idempotency-Keys one account may hold (src/services/idempotency.ts
-- MAX_LIVE_KEYS_PER_USER names the same number in its 429). Every key a successful POST used keeps
-- its answer (up to 512 KiB) for 24 h, so without a cap one account could make D1 hold an
-- unbounded number of rows by sending each cheap POST with a fresh key. Enforced inside the claim
-- (a trigger runs before SQLite looks for a conflict), so concurrent claims cannot overshoot; a
-- retry of a key the account already holds is let through to its own conflict (its replay, 409 or
-- 422), and keys whose 24 h have passed do not count even before housekeeping drops them. "Now"
-- is the claim's own `created_at`.
CREATE TRIGGER `idempotency_keys_per_user_cap` BEFORE INSERT ON `idempotency_keys`
WHEN (SELECT count(*) FROM `idempotency_keys` WHERE `user_id` = NEW.`user_id` AND `expires_at` > NEW.`created_at`) >= 1000
  AND NOT EXISTS (SELECT 1 FROM `idempotency_keys` WHERE `user_id` = NEW.`user_id` AND `key` = NEW.`key`)
BEGIN SELECT RAISE(ABORT, 'PER_USER_CAP idempotency_keys'); END;
