-- The blog's own photos (its media library). A post's images and a series cover may only be
-- photos uploaded through POST /api/v1/blog/images/: before, any stored photo whose reference a
-- writer knew could be placed in a draft (shown to every writer) and, once an editor published
-- it, made public again — a user's once-shared identification photo, say. Blog writers may fetch
-- these photos (src/services/photos.ts photoAccess). A row leaves with its photo, once no post,
-- revision or series refers to it (releasePhotos).
CREATE TABLE `blog_images` (
	`ref` text PRIMARY KEY NOT NULL,
	`uploaded_by` text REFERENCES `users`(`id`) ON DELETE SET NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
-- What the blog already shows or keeps: featured images, image blocks of posts and of their
-- revisions, and series covers (those were checked to be stored photos when they were saved).
INSERT OR IGNORE INTO `blog_images` (`ref`)
SELECT `featured_image` FROM `blog_posts` WHERE `featured_image` IS NOT NULL
UNION SELECT `cover_image` FROM `blog_series` WHERE `cover_image` IS NOT NULL;
--> statement-breakpoint
INSERT OR IGNORE INTO `blog_images` (`ref`)
SELECT j.value FROM `blog_posts` b, json_tree(b.`content_blocks`) j
WHERE j.key = 'image' AND j.type = 'text' AND (j.value GLOB '*.jpg' OR j.value GLOB '*.png' OR j.value GLOB '*.webp')
  AND substr(j.value, 65, 1) = '.' AND NOT substr(j.value, 1, 64) GLOB '*[^0-9a-f]*';
--> statement-breakpoint
INSERT OR IGNORE INTO `blog_images` (`ref`)
SELECT j.value FROM `blog_revisions` r, json_tree(r.`snapshot`) j
WHERE j.type = 'text' AND (j.key = 'image' OR j.key = 'featured_image') AND (j.value GLOB '*.jpg' OR j.value GLOB '*.png' OR j.value GLOB '*.webp')
  AND substr(j.value, 65, 1) = '.' AND NOT substr(j.value, 1, 64) GLOB '*[^0-9a-f]*';
