-- "Where you're signed in" (GET/DELETE auth/sessions/): a session (a refresh-token family) is
-- shown to its owner with what they recognise it by. Set at sign-in and copied to each rotated
-- token, so the family's live token always carries them: `client`, a short label derived from the
-- User-Agent ("Firefox on Windows"; the raw header is not kept), and `country`, the ISO code
-- Cloudflare located the sign-in in (never the address). When it was last used is the live
-- token's created_at (its last refresh), so no write is added. Sessions begun before this
-- migration have neither: they are listed as an unknown client in an unknown country.
ALTER TABLE `refresh_tokens` ADD `client` text;--> statement-breakpoint
ALTER TABLE `refresh_tokens` ADD `country` text;
