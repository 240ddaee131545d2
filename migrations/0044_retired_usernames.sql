-- A deleted account's username is retired for good (src/services/account-deletion.ts): its old
-- posts and blog comments still say "@alice", and clients link the name to a profile, so whoever
-- registered "alice" next would be shown as the author of every old mention, link and quote.
-- Registration, OAuth and Firebase sign-ups refuse or skip a retired name. Each is stored as the
-- SHA-256 (hex) of the lower-cased name, so the old name is not kept readable; with no account id
-- and no time, a row cannot be joined back to the anonymised account. The email address is not
-- retired: it is free again at once.
CREATE TABLE `retired_usernames` (
	`username_sha256` text PRIMARY KEY NOT NULL
);
