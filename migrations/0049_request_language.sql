-- The language (ISO 639-1) a request asks the engines in: its job, and a retry of it, asks in
-- the same one, and its results keep the names it gave. Rows from before are English, as every
-- identification was then; a queued message carries no language (the job reads the row).
ALTER TABLE `identification_requests` ADD `language` text DEFAULT 'en' NOT NULL;
--> statement-breakpoint
ALTER TABLE `disease_requests` ADD `language` text DEFAULT 'en' NOT NULL;
