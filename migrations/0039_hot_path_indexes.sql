-- gatherDigests (services/notification-delivery.ts heldReadersPage) pages through every reader
-- holding mail on each five-minute run, grouped by reader. Through the (user_id, status) index
-- that walked every delivery ever written (sent, skipped and digested rows are kept); this index
-- holds the held mail alone, with what the page reads (reader, oldest created_at).
CREATE INDEX `notification_deliveries_held_idx` ON `notification_deliveries` (`status`, `user_id`, `created_at`) WHERE `status` = 'held';
