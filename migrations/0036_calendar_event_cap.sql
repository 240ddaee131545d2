-- How many events not yet ended one organiser may hold (src/lib/errors.ts PER_USER_CAPS names the
-- same number in its 409), enforced as migration 0035's caps are: inside the write, so concurrent
-- creates cannot overshoot. An event already over when written does not count, and neither do the
-- organiser's past events. Moving an ended event back into the future makes one more not yet
-- ended, so an UPDATE of ends_at that does so meets the same cap; moving an event that has not
-- ended is no new one. "Now" is SQLite's clock in the format the API stores (ISO-8601 UTC with
-- milliseconds), so the comparison is a string comparison, as everywhere else.
CREATE TRIGGER `calendar_events_per_user_cap` BEFORE INSERT ON `calendar_events`
WHEN NEW.`ends_at` > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
  AND (SELECT count(*) FROM `calendar_events`
       WHERE `organizer_id` = NEW.`organizer_id` AND `ends_at` > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) >= 50
BEGIN SELECT RAISE(ABORT, 'PER_USER_CAP calendar_events'); END;
--> statement-breakpoint
CREATE TRIGGER `calendar_events_per_user_cap_revive` BEFORE UPDATE OF `ends_at` ON `calendar_events`
WHEN OLD.`ends_at` <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
  AND NEW.`ends_at` > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
  AND (SELECT count(*) FROM `calendar_events`
       WHERE `organizer_id` = NEW.`organizer_id` AND `ends_at` > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) >= 50
BEGIN SELECT RAISE(ABORT, 'PER_USER_CAP calendar_events'); END;
