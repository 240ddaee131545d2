-- An outdated password hash is upgraded at sign-in, while the password is at hand
-- (src/services/accounts.ts). On an account with two-factor sign-in the password step starts no
-- session and the code step no longer has the password, so the password step makes the new hash
-- and keeps it here, server-side (never in the `two_factor_token` the client holds): `rehash` is
-- that hash in today's parameters, `rehash_of` the fingerprint of the stored hash the password was
-- checked against. `2fa/verify/` writes it only once the second factor is proven, and only while
-- the stored hash is still that one (src/services/two-factor.ts).
ALTER TABLE `two_factor` ADD COLUMN `rehash` text;
--> statement-breakpoint
ALTER TABLE `two_factor` ADD COLUMN `rehash_of` text;
