-- Which session (refresh-token family) set up each standing channel to the account. Signing out
-- of a session drops the push devices it subscribed (a signed-out browser must not keep getting
-- the account's notification text); a session ended because its refresh token was replayed (a
-- thief's) also loses the calendar URL it issued. Rows from before this column have none, and
-- go only when every session ends, as before.
ALTER TABLE `push_subscriptions` ADD `session_id` text;
--> statement-breakpoint
ALTER TABLE `calendar_feeds` ADD `session_id` text;
