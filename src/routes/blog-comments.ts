/** Comments on blog posts and their moderation (/api/v1/blog/…) (issue 9). */
import { createRouter } from "./router";

export function blogCommentRoutes() {
  const app = createRouter();
  return app;
}
