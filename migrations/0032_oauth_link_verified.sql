-- Whether the provider had verified the email address when the link was made. A link made with an
-- unverified address that the provider later presents verified may have changed hands (Firebase
-- keeps the uid when the address's owner signs in with Google after someone else registered an
-- unverified password login on it): services/oauth.ts then hands the account to the address.
ALTER TABLE `oauth_accounts` ADD `email_verified` integer DEFAULT 1 NOT NULL;
--> statement-breakpoint
-- Links to accounts whose address is still unproven were made unverified; so, as far as can be
-- told, were Firebase links whose account has since moved to another address (a squatter may
-- have moved it to their own inbox before this column existed).
UPDATE `oauth_accounts` SET `email_verified` = 0
WHERE `user_id` IN (SELECT `id` FROM `users` WHERE `email_verified` = 0)
   OR (`provider` = 'firebase' AND lower(`email`) <> (SELECT lower(u.`email`) FROM `users` u WHERE u.`id` = `oauth_accounts`.`user_id`));
