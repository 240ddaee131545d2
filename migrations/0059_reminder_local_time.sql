-- The local time of day (ms after midnight on the owner's clock) a care reminder's schedule was
-- set to repeat at. A due time a skipped hour moved on (02:30 → 03:30 on the day clocks go
-- forward) no longer tells it, so a skip went on at 03:30 while the preview and the calendar feed
-- went back to 02:30. Rows from before have none: their due time's own time of day, as before.
ALTER TABLE `care_reminders` ADD `local_time_ms` integer;
