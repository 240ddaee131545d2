-- A request's run: 0 for its first, one more each time its owner retries it (retry/). The "ready"
-- and "failed" notifications are once per run (their dedupe keys name it), so a request retried
-- and failing again tells its owner again, while a redelivery of the same run still cannot.
ALTER TABLE `identification_requests` ADD `run` integer DEFAULT 0 NOT NULL;
--> statement-breakpoint
ALTER TABLE `disease_requests` ADD `run` integer DEFAULT 0 NOT NULL;
--> statement-breakpoint
-- The token of the queue delivery whose claim holds the request (jobs/queue.ts): only that
-- delivery may put it back to pending, even when D1 committed its claim but the answer was lost.
ALTER TABLE `identification_requests` ADD `claim_token` text;
--> statement-breakpoint
ALTER TABLE `disease_requests` ADD `claim_token` text;
