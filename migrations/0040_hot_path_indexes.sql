-- gatherDigests (services/notification-delivery.ts heldReadersPage) pages through every reader
-- holding mail on each five-minute run, grouped by reader. Through the (user_id, status) index
-- that walked every delivery ever written (sent, skipped and digested rows are kept); this index
-- holds the held mail alone, with what the page reads (reader, oldest created_at).
CREATE INDEX `notification_deliveries_held_idx` ON `notification_deliveries` (`status`, `user_id`, `created_at`) WHERE `status` = 'held';
--> statement-breakpoint
-- Every Idempotency-Key claim runs migration 0037's cap, which counts the account's live keys
-- (user_id, expires_at > now). Through the primary key that read each key's row, stored answer
-- (up to 512 KiB) and all, on every claim; this index answers the count by itself.
CREATE INDEX `idempotency_keys_user_expires` ON `idempotency_keys` (`user_id`, `expires_at`);
--> statement-breakpoint
-- Migration 0036's triggers count an organiser's events not yet ended on every event created
-- (and on an ended one moved back into the future). Through (organizer_id, starts_at) that read
-- every event the organiser ever held, past ones included, row by row; this index counts the
-- upcoming ones alone (at most 50) without reading a row.
CREATE INDEX `calendar_events_organizer_ends_idx` ON `calendar_events` (`organizer_id`, `ends_at`);
