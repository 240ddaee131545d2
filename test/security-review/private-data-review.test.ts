// Private data across the features, attacked (review helper-84): each test is an attack that
// worked on the code as reviewed, and keeps it fixed.
import { describe, expect, it } from "vitest";
import { call, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { action, createPost, getPost, patchPost, withRole } from "../routes/blog-editorial-setup";

useEmulators();

const EXPORT = "/api/v1/auth/user/export/";
type Row = Record<string, unknown>;

describe("a writer taken off the blog keeps no window on its drafts", () => {
  it("the export of an author demoted to user holds the published posts they wrote, not the drafts editors go on working on", async () => {
    const [author, editor, admin] = await Promise.all([withRole("author"), withRole("editor"), withRole("admin")]);
    const draft = await createPost(author.access, { title: "Autumn planting plan" });
    const live = await createPost(author.access, { title: "Repotting a fern" });
    await json(await action(author.access, live.id, "submit"), 200);
    await json(await action(editor.access, live.id, "publish"), 200);

    // The author leaves the team; the editors go on with the draft.
    await json(
      await call(`/api/v1/admin/users/${author.userId}/role/`, { method: "PATCH", bearer: admin.access, json: { role: "user" } }),
      200,
    );
    const secret = "EMBARGOED: the spring seed giveaway opens on 1 March";
    expect((await patchPost(editor.access, draft.id, { introduction: `<p>${secret}</p>` })).status).toBe(200);

    // The API refuses the draft to its former author (404, as for anyone who is not a writer)...
    expect((await getPost(draft.id, author.access)).status).toBe(404);
    // ...and the export must not hand it over instead.
    const body = await json<{ blog: { posts: Row[] } }>(await call(EXPORT, { bearer: author.access }), 200);
    expect(JSON.stringify(body)).not.toContain("EMBARGOED");
    expect(body.blog.posts.map((p) => p.id)).toEqual([live.id]);
    expect(body.blog.posts[0]).toEqual(await json(await getPost(live.id, author.access), 200));
  });
});
