-- Self-service account deletion (src/services/account-deletion.ts). A deleted account keeps its
-- row, anonymised (a generated username, an address at `.invalid`, no password, no profile), so
-- the forum posts, blog comments and community identifications others answered or built on stay
-- where they are, shown under that name; everything private to the account is deleted with it.
-- `deleted_at` tells a deleted account from a deactivated one: only the latter can come back.
ALTER TABLE `users` ADD COLUMN `deleted_at` text;
