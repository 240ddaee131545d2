-- Idempotency-Key (issue 13 item 1, API.md §5d): one row per user and key. A request claims the
-- row while it runs (`state` = 'running', held until `locked_until` so a crashed isolate cannot
-- block a retry forever); its answer is stored when it finishes (`state` = 'done') and replayed
-- to a retry with the same `fingerprint` (method, path and payload) until `expires_at` (24 h).
-- `claim` tells apart the request that holds the row from one that took it over after the lock
-- ran out: only the holder may store an answer or release the row.
CREATE TABLE `idempotency_keys` (
	`user_id` text NOT NULL REFERENCES `users`(`id`) ON DELETE CASCADE,
	`key` text NOT NULL,
	`fingerprint` text NOT NULL,
	`claim` text NOT NULL,
	`state` text NOT NULL CHECK (`state` IN ('running', 'done')),
	`locked_until` text NOT NULL,
	`status` integer,
	`headers` text,
	`body` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`expires_at` text NOT NULL,
	PRIMARY KEY (`user_id`, `key`)
);
CREATE INDEX `idempotency_keys_expires` ON `idempotency_keys` (`expires_at`);
