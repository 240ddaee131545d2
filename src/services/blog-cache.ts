/**
 * The edge cache of the blog's public reads (issue 9 item 6). `purgeBlogReads` is called by every
 * change that readers can see — publish (also by the scheduler), an edit of a published post,
 * unpublish, delete, and category/series/comment-count changes — after the change is committed.
 */
import type { Bindings } from "../env";

export interface BlogChange {
  /** Posts whose public shape changed (may be empty for category or series edits). */
  postIds: string[];
  /** Their slugs, before and after the change (a renamed slug purges both). */
  slugs: string[];
}

export async function purgeBlogReads(_env: Bindings, _change: BlogChange): Promise<void> {}
