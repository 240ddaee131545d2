-- The email webhook's processed delivery ids are kept a day (services/email-events.ts
-- WEBHOOK_ID_RETENTION_MS), then dropped by the five-minute cron: this index finds the old ones
-- without reading the whole table.
CREATE INDEX `email_webhook_events_received_idx` ON `email_webhook_events` (`received_at`);
