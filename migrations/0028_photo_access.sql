-- Who may fetch a stored photo is decided on every GET of /media/ (src/services/photos.ts
-- photoAccess): each column that can show a photo to everyone is looked up by the photo's
-- reference, so each gets an index (forum_attachments.image has one since 0010).
CREATE INDEX `users_avatar_key_idx` ON `users` (`avatar_key`) WHERE `avatar_key` IS NOT NULL;
--> statement-breakpoint
CREATE INDEX `user_plants_image_key_idx` ON `user_plants` (`image_key`) WHERE `image_key` IS NOT NULL;
--> statement-breakpoint
CREATE INDEX `blog_posts_featured_image_idx` ON `blog_posts` (`featured_image`) WHERE `featured_image` IS NOT NULL;
--> statement-breakpoint
CREATE INDEX `blog_series_cover_image_idx` ON `blog_series` (`cover_image`) WHERE `cover_image` IS NOT NULL;
