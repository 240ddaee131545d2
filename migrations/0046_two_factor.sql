-- Optional two-factor sign-in with an authenticator app (src/services/two-factor.ts). One row per
-- account that set it up: `secret` is the TOTP secret encrypted with AES-GCM under a key derived
-- from JWT_SECRET (never stored in the clear), `enabled_at` is null while the setup waits for its
-- first code, `last_step` is the last time step whose code was accepted (a code is accepted once),
-- and `recovery_codes` is a JSON array of the unused recovery codes' HMACs (each spent once).
CREATE TABLE `two_factor` (
	`user_id` text PRIMARY KEY NOT NULL,
	`secret` text NOT NULL,
	`enabled_at` text,
	`last_step` integer,
	`recovery_codes` text DEFAULT '[]' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
-- A deleted account sets up nothing more (as migrations/0042 for every row an account owns).
CREATE TRIGGER `two_factor_account_deleted` BEFORE INSERT ON `two_factor`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED two_factor'); END;
