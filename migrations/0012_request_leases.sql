-- Jobs never stick (src/jobs/stuck-requests.ts). Hand-written: ALTER TABLE … ADD COLUMN only.
--
-- lease_expires_at: the deadline by which whoever holds a queued request must have moved it on.
--   `pending`: when its queue message becomes deliverable (sent at, plus any retry delay);
--   `processing`: when the consumer's claim (lease) runs out. NULL on rows written before this
--   migration and on new uploads, which count from `updated_at` instead.
-- requeue_count: how many times the cron sweep re-queued the request because its message was
--   lost; bounded, so a request that keeps losing its message ends failed instead of looping.
ALTER TABLE `identification_requests` ADD `lease_expires_at` text;--> statement-breakpoint
ALTER TABLE `identification_requests` ADD `requeue_count` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `disease_requests` ADD `lease_expires_at` text;--> statement-breakpoint
ALTER TABLE `disease_requests` ADD `requeue_count` integer DEFAULT 0 NOT NULL;
