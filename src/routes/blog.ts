/** The blog's editorial API (/api/v1/blog/): posts, workflow, revisions, images, categories, tags, series (issue 9). */
import { createRouter } from "./router";

export function blogRoutes() {
  const app = createRouter();
  return app;
}
