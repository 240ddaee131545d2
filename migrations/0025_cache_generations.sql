-- Edge-cache generations of public reads (issue 13 item 3; services/public-cache.ts): one row per
-- area (species, diseases, forum). Cached answers are stored under their area's version; a write
-- that changes what anonymous readers see bumps it, which makes every cached variant unreachable
-- at once in every data centre. A missing row is version 1.
CREATE TABLE `cache_generations` (
	`area` text PRIMARY KEY NOT NULL,
	`version` integer DEFAULT 1 NOT NULL
);
