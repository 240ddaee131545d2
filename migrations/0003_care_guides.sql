CREATE TABLE `care_guides` (
	`id` text PRIMARY KEY NOT NULL,
	`species_id` text NOT NULL,
	`language` text NOT NULL,
	`content` text NOT NULL,
	`model` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`species_id`) REFERENCES `species`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `care_guides_species_language_unique` ON `care_guides` (`species_id`,`language`);