-- An email-change link names the session that asked for it, and it confirms only while that
-- session has not ended (services/accounts.ts confirmEmailChange). The session is recorded beside
-- the link too, so that the session's end can find the change it asked for and cancel it — the
-- link deleted, `pending_email` cleared — instead of the profile showing a change that can no
-- longer land. Links from before this column (and verification links) have none: they behave as
-- before. The user's index (email_change_user_idx) finds the rows; a user has one change at most.
ALTER TABLE `email_change_tokens` ADD `session_id` text;
