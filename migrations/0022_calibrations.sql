-- Fitted calibration maps (issue 11 item 6): per provider, versions in fitting order; the newest
-- version of each provider is the one the merge uses. `points` is the isotonic map as JSON
-- [[raw, calibrated], …]; `method` says how it was fitted.
CREATE TABLE `calibrations` (
	`provider` text NOT NULL,
	`version` integer NOT NULL,
	`method` text NOT NULL,
	`samples` integer NOT NULL,
	`positives` integer NOT NULL,
	`points` text NOT NULL,
	`fitted_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY (`provider`, `version`)
);
