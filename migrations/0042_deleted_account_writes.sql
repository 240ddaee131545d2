-- A deleted account (src/services/account-deletion.ts) writes nothing more. Its access tokens are
-- refused from the moment the deletion lands, but a write authenticated just before it (a plant, a
-- request with its photos, a profile edit, a refresh) may land just after it: it would leave private
-- rows (or a new bio, avatar, password) on an anonymised account nobody can sign in to, delete or
-- see any more. Each insert of a row owned by an account, and each update that would give a deleted
-- account back a profile, a password, an address or its activity, is refused inside the write
-- itself; src/app.ts answers the refusal 401 TOKEN_INVALID, as the token is now. The check is one
-- primary-key read of `users` per inserted row.
CREATE TRIGGER `identification_requests_account_deleted` BEFORE INSERT ON `identification_requests`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED identification_requests'); END;
--> statement-breakpoint
CREATE TRIGGER `disease_requests_account_deleted` BEFORE INSERT ON `disease_requests`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED disease_requests'); END;
--> statement-breakpoint
CREATE TRIGGER `collections_account_deleted` BEFORE INSERT ON `collections`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED collections'); END;
--> statement-breakpoint
CREATE TRIGGER `user_plants_account_deleted` BEFORE INSERT ON `user_plants`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED user_plants'); END;
--> statement-breakpoint
CREATE TRIGGER `saved_care_instructions_account_deleted` BEFORE INSERT ON `saved_care_instructions`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED saved_care_instructions'); END;
--> statement-breakpoint
CREATE TRIGGER `care_reminders_account_deleted` BEFORE INSERT ON `care_reminders`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED care_reminders'); END;
--> statement-breakpoint
CREATE TRIGGER `notification_preferences_account_deleted` BEFORE INSERT ON `notification_preferences`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED notification_preferences'); END;
--> statement-breakpoint
CREATE TRIGGER `calendar_events_account_deleted` BEFORE INSERT ON `calendar_events`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`organizer_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED calendar_events'); END;
--> statement-breakpoint
CREATE TRIGGER `calendar_rsvps_account_deleted` BEFORE INSERT ON `calendar_rsvps`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED calendar_rsvps'); END;
--> statement-breakpoint
CREATE TRIGGER `calendar_feeds_account_deleted` BEFORE INSERT ON `calendar_feeds`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED calendar_feeds'); END;
--> statement-breakpoint
CREATE TRIGGER `forum_topics_account_deleted` BEFORE INSERT ON `forum_topics`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`author_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED forum_topics'); END;
--> statement-breakpoint
CREATE TRIGGER `forum_posts_account_deleted` BEFORE INSERT ON `forum_posts`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`author_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED forum_posts'); END;
--> statement-breakpoint
CREATE TRIGGER `forum_reactions_account_deleted` BEFORE INSERT ON `forum_reactions`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED forum_reactions'); END;
--> statement-breakpoint
CREATE TRIGGER `forum_subscriptions_account_deleted` BEFORE INSERT ON `forum_subscriptions`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED forum_subscriptions'); END;
--> statement-breakpoint
CREATE TRIGGER `forum_reports_account_deleted` BEFORE INSERT ON `forum_reports`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`reporter_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED forum_reports'); END;
--> statement-breakpoint
CREATE TRIGGER `blog_comments_account_deleted` BEFORE INSERT ON `blog_comments`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED blog_comments'); END;
--> statement-breakpoint
CREATE TRIGGER `blog_comment_reports_account_deleted` BEFORE INSERT ON `blog_comment_reports`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`reporter_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED blog_comment_reports'); END;
--> statement-breakpoint
CREATE TRIGGER `votes_account_deleted` BEFORE INSERT ON `votes`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED votes'); END;
--> statement-breakpoint
CREATE TRIGGER `identification_results_account_deleted` BEFORE INSERT ON `identification_results`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`proposed_by`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED identification_results'); END;
--> statement-breakpoint
CREATE TRIGGER `proposal_reports_account_deleted` BEFORE INSERT ON `proposal_reports`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED proposal_reports'); END;
--> statement-breakpoint
CREATE TRIGGER `idempotency_keys_account_deleted` BEFORE INSERT ON `idempotency_keys`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED idempotency_keys'); END;
--> statement-breakpoint
CREATE TRIGGER `oauth_accounts_account_deleted` BEFORE INSERT ON `oauth_accounts`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED oauth_accounts'); END;
--> statement-breakpoint
CREATE TRIGGER `refresh_tokens_account_deleted` BEFORE INSERT ON `refresh_tokens`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED refresh_tokens'); END;
--> statement-breakpoint
CREATE TRIGGER `password_reset_tokens_account_deleted` BEFORE INSERT ON `password_reset_tokens`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED password_reset_tokens'); END;
--> statement-breakpoint
CREATE TRIGGER `email_change_tokens_account_deleted` BEFORE INSERT ON `email_change_tokens`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED email_change_tokens'); END;
--> statement-breakpoint
CREATE TRIGGER `ws_tickets_account_deleted` BEFORE INSERT ON `ws_tickets`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED ws_tickets'); END;
--> statement-breakpoint
CREATE TRIGGER `push_subscriptions_account_deleted` BEFORE INSERT ON `push_subscriptions`
WHEN (SELECT `deleted_at` FROM `users` WHERE `id` = NEW.`user_id`) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED push_subscriptions'); END;
--> statement-breakpoint
-- The deletion itself sets these once (deleted_at from NULL); afterwards they stay as it left them.
CREATE TRIGGER `users_account_deleted` BEFORE UPDATE ON `users`
WHEN OLD.`deleted_at` IS NOT NULL AND (
	NEW.`deleted_at` IS NOT OLD.`deleted_at` OR NEW.`username` IS NOT OLD.`username` OR NEW.`email` IS NOT OLD.`email`
	OR NEW.`password_hash` IS NOT NULL OR NEW.`is_active` <> 0 OR NEW.`pending_email` IS NOT NULL OR NEW.`avatar_key` IS NOT NULL
	OR NEW.`first_name` <> '' OR NEW.`last_name` <> '' OR NEW.`bio` <> '' OR NEW.`location` <> '' OR NEW.`website` <> ''
	OR NEW.`profile_visibility` <> 'private' OR NEW.`gardening_experience` <> 'beginner'
	OR (NEW.`last_login` IS NOT NULL AND NEW.`last_login` IS NOT OLD.`last_login`))
BEGIN SELECT RAISE(ABORT, 'ACCOUNT_DELETED users'); END;
