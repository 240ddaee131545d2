-- A push device whose push service keeps failing (5xx, or unreachable) is removed once it has
-- failed every attempt for 7 days and at least 10 times (services/notification-delivery.ts):
-- `failing_since` is its first failure since it last took a push (null while it is healthy),
-- `failed_attempts` how many attempts failed since then. A 429 is the service asking to slow
-- down, not a dead device: it counts for neither.
ALTER TABLE `push_subscriptions` ADD `failing_since` text;
--> statement-breakpoint
ALTER TABLE `push_subscriptions` ADD `failed_attempts` integer DEFAULT 0 NOT NULL;
