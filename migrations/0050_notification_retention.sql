-- Notifications are kept 90 days once read and a year unread (services/notifications.ts
-- purgeOldNotifications, from the cron's housekeeping): the sweep ranges over created_at.
CREATE INDEX `notifications_created_idx` ON `notifications` (`created_at`);
