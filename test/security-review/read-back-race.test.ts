// A write that reads back what it wrote, and a delete by someone else (an editor, a moderator, the
// owner in another tab) that lands in between: the read-back finds nothing, and the answer is the
// 404 of a missing object, never a server error. Each race is staged with an `env` whose D1
// binding runs the delete just after the service's write (test/helpers/racing-env.ts).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AuthenticatedUser } from "../../src/env";
import { postDetail as publishedPostDetail } from "../../src/services/blog-public";
import { createPost, publishPost, restoreRevision, submitPost, updatePost } from "../../src/services/blog-posts";
import { createEvent, updateEvent } from "../../src/services/calendar";
import { addIdentifiedPlant, addPlant, createCollection } from "../../src/services/collections";
import { acceptResult } from "../../src/services/identification-requests";
import { call, jsonWithStatus as json } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { envAfterStatement, envRacingFirstBatch } from "../helpers/racing-env";
import { identifiedResult } from "../helpers/requests";
import { bearerUser } from "../helpers/users";
import { API, createPost as createPostByApi, withRole } from "../routes/blog-editorial-setup";

useEmulators();

type User = Awaited<ReturnType<typeof withRole>>;
const asAuthenticated = (u: User, role: AuthenticatedUser["role"]): AuthenticatedUser => ({ id: u.userId, username: u.username, role });
/** The 404 of a missing `what`, as the services answer it. */
const missing = (what: string) => ({ status: 404, code: "NOT_FOUND", message: `${what} not found.` });

describe("a blog post deleted by an editor between a write and its read-back answers 404", () => {
  const editorDeletes = (editor: User, id: string) => async () =>
    expect((await call(`${API}/posts/${id}/`, { method: "DELETE", bearer: editor.access })).status).toBe(204);

  it("creating a draft", async () => {
    const [author, editor] = [await withRole("author"), await withRole("editor")];
    const racing = envAfterStatement(/insert into "blog_posts"/i, async () => {
      const created = await env.DB.prepare("SELECT id FROM blog_posts WHERE author_id = ?").bind(author.userId).first<{ id: string }>();
      await editorDeletes(editor, created!.id)();
    });
    await expect(createPost(racing.env, asAuthenticated(author, "author"), { title: "Gone at once" })).rejects.toMatchObject(
      missing("Post"),
    );
    expect(racing.fired()).toBe(true);
  });

  const writes: Record<string, (racing: typeof env, user: AuthenticatedUser, id: string) => Promise<unknown>> = {
    "editing it": (racing, user, id) => updatePost(racing, user, id, { title: "Edited meanwhile" }),
    "restoring a revision": (racing, user, id) => restoreRevision(racing, user, id, 1),
    "submitting it": (racing, user, id) => submitPost(racing, user, id),
  };
  for (const [what, write] of Object.entries(writes)) {
    it(what, async () => {
      const [author, editor] = [await withRole("author"), await withRole("editor")];
      const post = await createPostByApi(author.access, { content_blocks: [{ type: "paragraph", value: "<p>Soon gone</p>" }] });
      const racing = envAfterStatement(/update "blog_posts"/i, editorDeletes(editor, post.id));
      await expect(write(racing.env, asAuthenticated(author, "author"), post.id)).rejects.toMatchObject(missing("Post"));
      expect(racing.fired()).toBe(true);
    });
  }

  it("publishing it", async () => {
    const [editor, other] = [await withRole("editor"), await withRole("editor")];
    const post = await createPostByApi(editor.access, {});
    const racing = envAfterStatement(/update "blog_posts"/i, editorDeletes(other, post.id));
    await expect(publishPost(racing.env, asAuthenticated(editor, "editor"), post.id)).rejects.toMatchObject(missing("Post"));
    expect(racing.fired()).toBe(true);
  });
});

describe("a published post deleted between the reads of its public detail", () => {
  it("is answered as read, not a server error: the detail is read in one batch", async () => {
    const [editor, other] = [await withRole("editor"), await withRole("editor")];
    const post = await createPostByApi(editor.access, { content_blocks: [{ type: "paragraph", value: "<p>Read whole</p>" }] });
    expect((await call(`${API}/posts/${post.id}/publish/`, { method: "POST", bearer: editor.access })).status).toBe(200);
    const racing = envAfterStatement(/from "blog_posts"/i, async () =>
      expect((await call(`${API}/posts/${post.id}/`, { method: "DELETE", bearer: other.access })).status).toBe(204),
    );
    const detail = await publishedPostDetail(racing.env, post.id);
    expect(racing.fired()).toBe(true);
    expect(detail).toMatchObject({ id: post.id, title: post.title });
    expect(JSON.stringify(detail.content_blocks)).toContain("Read whole");
  });
});

describe("a calendar event deleted between a write and its read-back answers 404", () => {
  const CALENDAR = "/api/v1/calendar";
  const DAY = 86_400_000;
  const fields = () => {
    const start = Date.now() + 10 * DAY;
    return {
      title: "Seed swap in the park",
      description: "Bring seeds, take seeds.",
      start: new Date(start).toISOString(),
      end: new Date(start + 2 * 3_600_000).toISOString(),
      location: "Community garden shed",
      privacy: "public" as const,
      capacity: null,
    };
  };
  const deletes = (organizer: User, id: string) => async () =>
    expect((await call(`${CALENDAR}/events/${id}/`, { method: "DELETE", bearer: organizer.access })).status).toBe(204);

  it("creating it (the organiser deletes it from another tab)", async () => {
    const organizer = await bearerUser();
    const racing = envAfterStatement(/insert into "calendar_events"/i, async () => {
      const created = await env.DB.prepare("SELECT id FROM calendar_events WHERE organizer_id = ?")
        .bind(organizer.userId)
        .first<{ id: string }>();
      await deletes(organizer, created!.id)();
    });
    await expect(createEvent(racing.env, asAuthenticated(organizer, "user"), fields())).rejects.toMatchObject(missing("Event"));
    expect(racing.fired()).toBe(true);
  });

  // A new title is written alone; a new place in a batch with the notice to those going.
  for (const patch of [{ title: "Seed swap, moved on" }, { location: "The library" }]) {
    it(`changing its ${Object.keys(patch)[0]}`, async () => {
      const organizer = await bearerUser();
      const event = await json<{ id: string }>(await call(`${CALENDAR}/events/`, { bearer: organizer.access, json: fields() }), 201);
      const racing = envAfterStatement(/update "calendar_events"/i, deletes(organizer, event.id));
      await expect(updateEvent(racing.env, asAuthenticated(organizer, "user"), event.id, patch)).rejects.toMatchObject(missing("Event"));
      expect(racing.fired()).toBe(true);
    });
  }
});

describe("a collection or plant deleted (from another tab) between its insert and its read-back answers 404", () => {
  const PLANTS = "/api/v1/plant-identification";
  const newCollection = async (u: User) =>
    (
      await json<{ id: string }>(
        await call(`${PLANTS}/collections/`, { bearer: u.access, json: { name: `Shelf ${crypto.randomUUID()}` } }),
        201,
      )
    ).id;
  const deletesWithPlants = (u: User, id: string) => async () =>
    expect((await call(`${PLANTS}/collections/${id}/?delete_plants=true`, { method: "DELETE", bearer: u.access })).status).toBe(204);

  it("creating a collection", async () => {
    const u = await bearerUser();
    const racing = envAfterStatement(/insert into "collections"/i, async () => {
      const created = await env.DB.prepare("SELECT id FROM collections WHERE user_id = ? AND name = 'Racing shelf'")
        .bind(u.userId)
        .first<{ id: string }>();
      await deletesWithPlants(u, created!.id)();
    });
    await expect(createCollection(racing.env, u.userId, { name: "Racing shelf" })).rejects.toMatchObject(missing("Collection"));
    expect(racing.fired()).toBe(true);
  });

  it("adding a plant", async () => {
    const u = await bearerUser();
    const shelf = await newCollection(u);
    const racing = envAfterStatement(/insert into "user_plants"/i, deletesWithPlants(u, shelf));
    await expect(addPlant(racing.env, u.userId, { collection: shelf, nickname: "Fern" }, null)).rejects.toMatchObject(missing("Plant"));
    expect(racing.fired()).toBe(true);
  });

  it("adding an identified plant", async () => {
    const u = await bearerUser();
    const shelf = await newCollection(u);
    const { resultId } = await identifiedResult(u.userId);
    const racing = envAfterStatement(/insert into "user_plants"/i, deletesWithPlants(u, shelf));
    const adding = addIdentifiedPlant(racing.env, u.userId, {
      collectionId: shelf,
      resultId,
      speciesId: null,
      nickname: "Monstera",
      notes: "",
    });
    await expect(adding).rejects.toMatchObject(missing("Plant"));
    expect(racing.fired()).toBe(true);
  });
});

describe("an identification result deleted with its request while its acceptance is on its way", () => {
  it("answers 404, not a server error", async () => {
    const u = await bearerUser();
    const { requestId, resultId } = await identifiedResult(u.userId);
    // The owner deletes the request (another tab) between the acceptance's check and its batch.
    const racing = envRacingFirstBatch(async () =>
      expect((await call(`/api/v1/plant-identification/requests/${requestId}/`, { method: "DELETE", bearer: u.access })).status).toBe(204),
    );
    await expect(acceptResult(racing.env, u.userId, resultId)).rejects.toMatchObject(missing("Result"));
    expect(racing.fired()).toBe(true);
  });
});
