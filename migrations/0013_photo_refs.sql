-- One reference form for every photo (src/services/photos.ts): `<sha256>.<ext>`, the R2 object
-- being `images/<ref>`. Requests and forum attachments already stored that form; plants stored
-- the R2 key (`images/<ref>`) and avatars `avatars/<ref>`. Hand-written: data only, no schema
-- change. Avatar objects stored before this migration stay under `avatars/` in R2, where the
-- photo store still finds (and releases) them.
UPDATE `user_plants` SET `image_key` = substr(`image_key`, 8) WHERE `image_key` LIKE 'images/%';--> statement-breakpoint
UPDATE `users` SET `avatar_key` = substr(`avatar_key`, 9) WHERE `avatar_key` LIKE 'avatars/%';
