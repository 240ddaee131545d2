CREATE TABLE `calendar_events` (
	`id` text PRIMARY KEY NOT NULL,
	`organizer_id` text NOT NULL,
	`title` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`starts_at` text NOT NULL,
	`ends_at` text NOT NULL,
	`location` text DEFAULT '' NOT NULL,
	`privacy` text DEFAULT 'public' NOT NULL,
	`capacity` integer,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`organizer_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `calendar_events_starts_idx` ON `calendar_events` (`starts_at`);--> statement-breakpoint
CREATE INDEX `calendar_events_organizer_starts_idx` ON `calendar_events` (`organizer_id`,`starts_at`);--> statement-breakpoint
CREATE TABLE `calendar_rsvps` (
	`event_id` text NOT NULL,
	`user_id` text NOT NULL,
	`status` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`event_id`) REFERENCES `calendar_events`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `calendar_rsvps_event_user_unique` ON `calendar_rsvps` (`event_id`,`user_id`);--> statement-breakpoint
CREATE INDEX `calendar_rsvps_event_status_idx` ON `calendar_rsvps` (`event_id`,`status`);--> statement-breakpoint
CREATE INDEX `calendar_rsvps_user_idx` ON `calendar_rsvps` (`user_id`);--> statement-breakpoint
CREATE TABLE `seasonal_task_templates` (
	`id` text PRIMARY KEY NOT NULL,
	`month` integer NOT NULL,
	`hemisphere` text NOT NULL,
	`title` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`task_type` text NOT NULL,
	`position` integer DEFAULT 0 NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `seasonal_task_templates_hemisphere_month_idx` ON `seasonal_task_templates` (`hemisphere`,`month`,`position`);--> statement-breakpoint
-- Seasonal task templates (fixed ids so every environment agrees). Southern-hemisphere tasks are
-- the same temperate-climate jobs six months on.
INSERT INTO `seasonal_task_templates` (`id`, `month`, `hemisphere`, `title`, `description`, `task_type`, `position`) VALUES
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0001', 1, 'north', 'Plan the year and order seeds', 'Check last year''s notes and the viability of stored seed, plan crop rotation, and order seeds, seed potatoes and onion sets before favourite varieties sell out.', 'maintenance', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0002', 1, 'north', 'Winter-prune apple and pear trees', 'While trees are dormant, remove dead, diseased and crossing branches and thin crowded spurs to open the centre to light and air. Do not prune plums or cherries now (silver leaf risk).', 'prune', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0003', 2, 'north', 'Sow chillies, peppers and aubergines indoors', 'These need a long season: sow on a warm windowsill or in a heated propagator at 20–25 °C and prick out once the first true leaves appear.', 'sow', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0004', 3, 'north', 'Plant first early potatoes', 'Plant chitted first earlies about 12 cm deep and 30 cm apart once the soil is workable; draw soil over emerging shoots if frost threatens.', 'plant', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0005', 3, 'north', 'Feed and mulch borders as growth starts', 'Scatter a balanced fertiliser around shrubs, roses and perennials, then mulch 5–7 cm deep with compost on moist soil to hold water and suppress weeds.', 'fertilize', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0006', 4, 'north', 'Sow hardy vegetables outdoors', 'Sow carrots, beetroot, lettuce, spinach and peas directly into prepared beds; sow little and often for a continuous harvest.', 'sow', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0007', 5, 'north', 'Harden off and plant out tender plants', 'After the last frost date, acclimatise tomatoes, courgettes, beans and bedding over 7–10 days before planting them out.', 'plant', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0008', 6, 'north', 'Water deeply and early in dry spells', 'Water at the base in the morning, soaking the root zone less often rather than sprinkling daily; prioritise new plantings, containers and fruiting crops.', 'water', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0009', 7, 'north', 'Feed containers and deadhead flowers', 'Give pots and hanging baskets a high-potash liquid feed weekly and remove faded blooms to keep annuals and repeat-flowering perennials going.', 'fertilize', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0010', 7, 'north', 'Summer-prune wisteria', 'Cut this year''s long whippy side shoots back to about five leaves from the main framework to encourage flower buds for next year.', 'prune', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0011', 8, 'north', 'Harvest and preserve the glut', 'Pick beans, courgettes and tomatoes frequently while young to keep plants cropping; freeze, dry or bottle the surplus.', 'harvest', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0012', 9, 'north', 'Plant spring-flowering bulbs', 'Plant daffodils, crocuses and alliums at two to three times the bulb''s height deep; leave tulips until the soil cools later in autumn.', 'plant', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0013', 9, 'north', 'Collect and store seed', 'Gather ripe seed heads on a dry day, dry them indoors in paper bags and store the cleaned seed in labelled envelopes somewhere cool and dry.', 'harvest', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0014', 10, 'north', 'Plant garlic cloves', 'Garlic needs a cold spell to form bulbs: plant cloves pointed end up, 2–3 cm below the surface and 15 cm apart, in well-drained soil.', 'plant', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0015', 10, 'north', 'Bring tender plants under cover', 'Move citrus, pelargoniums and other frost-tender plants to a greenhouse or bright porch before the first frost; lift and store dahlia tubers once frost blackens the foliage.', 'protect', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0016', 11, 'north', 'Make leaf mould from fallen leaves', 'Rake leaves off lawns and paths and pack them damp into sacks or a wire bin; in a year or two they become a fine soil conditioner.', 'maintenance', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0017', 11, 'north', 'Plant bare-root trees, shrubs and roses', 'Plant while dormant and the soil is not frozen: soak roots for an hour, plant at the original soil mark, firm in and water well.', 'plant', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0018', 12, 'north', 'Protect pots and plants from frost', 'Raise containers on pot feet so they drain, wrap vulnerable pots in hessian or bubble wrap, and cover tender crowns with fleece on freezing nights.', 'protect', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0019', 7, 'south', 'Plan the year and order seeds', 'Check last year''s notes and the viability of stored seed, plan crop rotation, and order seeds, seed potatoes and onion sets before favourite varieties sell out.', 'maintenance', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0020', 7, 'south', 'Winter-prune apple and pear trees', 'While trees are dormant, remove dead, diseased and crossing branches and thin crowded spurs to open the centre to light and air. Do not prune plums or cherries now (silver leaf risk).', 'prune', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0021', 8, 'south', 'Sow chillies, peppers and aubergines indoors', 'These need a long season: sow on a warm windowsill or in a heated propagator at 20–25 °C and prick out once the first true leaves appear.', 'sow', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0022', 9, 'south', 'Plant first early potatoes', 'Plant chitted first earlies about 12 cm deep and 30 cm apart once the soil is workable; draw soil over emerging shoots if frost threatens.', 'plant', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0023', 9, 'south', 'Feed and mulch borders as growth starts', 'Scatter a balanced fertiliser around shrubs, roses and perennials, then mulch 5–7 cm deep with compost on moist soil to hold water and suppress weeds.', 'fertilize', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0024', 10, 'south', 'Sow hardy vegetables outdoors', 'Sow carrots, beetroot, lettuce, spinach and peas directly into prepared beds; sow little and often for a continuous harvest.', 'sow', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0025', 11, 'south', 'Harden off and plant out tender plants', 'After the last frost date, acclimatise tomatoes, courgettes, beans and bedding over 7–10 days before planting them out.', 'plant', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0026', 12, 'south', 'Water deeply and early in dry spells', 'Water at the base in the morning, soaking the root zone less often rather than sprinkling daily; prioritise new plantings, containers and fruiting crops.', 'water', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0027', 1, 'south', 'Feed containers and deadhead flowers', 'Give pots and hanging baskets a high-potash liquid feed weekly and remove faded blooms to keep annuals and repeat-flowering perennials going.', 'fertilize', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0028', 1, 'south', 'Summer-prune wisteria', 'Cut this year''s long whippy side shoots back to about five leaves from the main framework to encourage flower buds for next year.', 'prune', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0029', 2, 'south', 'Harvest and preserve the glut', 'Pick beans, courgettes and tomatoes frequently while young to keep plants cropping; freeze, dry or bottle the surplus.', 'harvest', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0030', 3, 'south', 'Plant spring-flowering bulbs', 'Plant daffodils, crocuses and alliums at two to three times the bulb''s height deep; leave tulips until the soil cools later in autumn.', 'plant', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0031', 3, 'south', 'Collect and store seed', 'Gather ripe seed heads on a dry day, dry them indoors in paper bags and store the cleaned seed in labelled envelopes somewhere cool and dry.', 'harvest', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0032', 4, 'south', 'Plant garlic cloves', 'Garlic needs a cold spell to form bulbs: plant cloves pointed end up, 2–3 cm below the surface and 15 cm apart, in well-drained soil.', 'plant', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0033', 4, 'south', 'Bring tender plants under cover', 'Move citrus, pelargoniums and other frost-tender plants to a greenhouse or bright porch before the first frost; lift and store dahlia tubers once frost blackens the foliage.', 'protect', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0034', 5, 'south', 'Make leaf mould from fallen leaves', 'Rake leaves off lawns and paths and pack them damp into sacks or a wire bin; in a year or two they become a fine soil conditioner.', 'maintenance', 1),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0035', 5, 'south', 'Plant bare-root trees, shrubs and roses', 'Plant while dormant and the soil is not frozen: soak roots for an hour, plant at the original soil mark, firm in and water well.', 'plant', 2),
	('2c7e9a41-8b3d-4f6a-9c15-5d0e7b3a0036', 6, 'south', 'Protect pots and plants from frost', 'Raise containers on pot feet so they drain, wrap vulnerable pots in hessian or bubble wrap, and cover tender crowns with fleece on freezing nights.', 'protect', 1);
