/** The blog's public reads: Wagtail API v2 shapes under /api/v2/, feeds, sitemap and /media/ (issue 9, API.md §5a). */
import { createRouter } from "./router";

export function blogPublicRoutes() {
  const app = createRouter();
  return app;
}
