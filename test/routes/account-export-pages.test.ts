// The account export's parts that grow without a cap are read in keyset pages as the document is
// written (services/account-export.ts): every row once, in order, whatever the page size, and a
// write between two pages neither repeats nor skips a row that stays (docs/api.md "Exporting your data").
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { exportAccountStream } from "../../src/services/account-export";
import { envAroundBatches } from "../helpers/racing-env";
import { bearerUser } from "../helpers/users";

/** More rows than a page in each paged part. */
const ROWS = 5;
const PAGE = 2;
const NOW = new Date("2026-12-06T12:00:00.000Z");
const at = (i: number) => `2026-01-0${i}T00:00:00.000Z`;
const image = (i: number) => `${String(i).repeat(64)}.jpg`;
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/**
 * `ROWS` rows of each paged part for `u` (made at `at(i)`, ids ending in `-i`), on `other`'s
 * request, events and blog post. `u`'s own events start, and their blog posts were last changed,
 * in the reverse order. `u`'s plants: 1–3 in their default collection, 4–5 in a second (their
 * only two collections: no more rows than a page).
 */
async function seed(u: string, other: string) {
  const s = (sql: string, ...args: unknown[]) => env.DB.prepare(sql).bind(...args);
  const each = (make: (i: number) => D1PreparedStatement) => range(ROWS).map(make);
  await env.DB.batch([
    s(
      `INSERT INTO identification_requests (id, user_id, image_hashes, is_shared_with_community, created_at) VALUES (?1, ?2, '[]', 1, ?3)`,
      `oreq-${u}`,
      other,
      at(1),
    ),
    s(`INSERT INTO forum_categories (id, slug, name) VALUES (?1, ?1, 'Pages')`, `cat-${u}`),
    s(`INSERT INTO blog_posts (id, slug, title, author_id) VALUES (?1, ?1, 'A post', ?2)`, `bp-${u}`, other),
    ...each((i) =>
      s(`INSERT INTO identification_requests (id, user_id, image_hashes, created_at) VALUES (?1, ?2, '[]', ?3)`, `req-${u}-${i}`, u, at(i)),
    ),
    ...each((i) =>
      s(
        `INSERT INTO identification_results (id, request_id, scientific_name, confidence_score, identification_source, rank, created_at) VALUES (?1, ?2, 'Ficus', 0.5, 'plantnet', 1, ?3)`,
        `res-${u}-${i}`,
        `req-${u}-${i}`,
        at(i),
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO votes (id, result_id, user_id, vote_type, created_at) VALUES (?1, ?2, ?3, 'upvote', ?4)`,
        `myvote-${u}-${i}`,
        `res-${u}-${i}`,
        u,
        at(i),
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO identification_results (id, request_id, scientific_name, confidence_score, identification_source, rank, created_at) VALUES (?1, ?2, 'Ficus ' || ?3, 0.5, 'plantnet', ?3, ?4)`,
        `ores-${u}-${i}`,
        `oreq-${u}`,
        i,
        at(i),
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO identification_results (id, request_id, scientific_name, confidence_score, identification_source, rank, proposed_by, created_at) VALUES (?1, ?2, 'Ficus ' || (10 + ?3), 0, 'community', 10 + ?3, ?4, ?5)`,
        `prop-${u}-${i}`,
        `oreq-${u}`,
        i,
        u,
        at(i),
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO votes (id, result_id, user_id, vote_type, created_at) VALUES (?1, ?2, ?3, 'downvote', ?4)`,
        `cvote-${u}-${i}`,
        `ores-${u}-${i}`,
        u,
        at(i),
      ),
    ),
    ...each((i) =>
      s(`INSERT INTO proposal_reports (result_id, user_id, reason, created_at) VALUES (?1, ?2, 'spam', ?3)`, `ores-${u}-${i}`, u, at(i)),
    ),
    ...each((i) =>
      s(
        `INSERT INTO disease_requests (id, user_id, image_hashes, symptoms_description, created_at) VALUES (?1, ?2, '[]', 'spots', ?3)`,
        `dreq-${u}-${i}`,
        u,
        at(i),
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO disease_results (id, request_id, name, probability, rank) VALUES (?1, ?2, 'Rust', 0.5, 1)`,
        `dres-${u}-${i}`,
        `dreq-${u}-${i}`,
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO calendar_events (id, organizer_id, title, starts_at, ends_at) VALUES (?1, ?2, 'Swap', '2026-01-01T10:00:00.000Z', '2026-01-01T12:00:00.000Z')`,
        `ev-${u}-${i}`,
        other,
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO calendar_events (id, organizer_id, title, starts_at, ends_at, created_at) VALUES (?1, ?2, 'Mine', ?3, ?3, ?4)`,
        `oev-${u}-${i}`,
        u,
        at(ROWS + 1 - i),
        at(i),
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO blog_posts (id, slug, title, author_id, status, created_at, updated_at) VALUES (?1, ?1, 'Mine', ?2, 'published', ?3, ?4)`,
        `obp-${u}-${i}`,
        u,
        at(i),
        at(ROWS + 1 - i),
      ),
    ),
    s(`DELETE FROM collections WHERE user_id = ?1`, u),
    ...["a", "b"].map((c, n) =>
      s(
        `INSERT INTO collections (id, user_id, name, is_default, created_at) VALUES (?1, ?2, ?1, ?3, ?4)`,
        `col-${u}-${c}`,
        u,
        n === 0 ? 1 : 0,
        at(n + 1),
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO user_plants (id, user_id, collection_id, created_at) VALUES (?1, ?2, ?3, ?4)`,
        `plant-${u}-${i}`,
        u,
        `col-${u}-${i <= 3 ? "a" : "b"}`,
        at(i),
      ),
    ),
    ...each((i) =>
      s(`INSERT INTO calendar_rsvps (event_id, user_id, status, created_at) VALUES (?1, ?2, 'going', ?3)`, `ev-${u}-${i}`, u, at(i)),
    ),
    ...each((i) =>
      s(
        `INSERT INTO forum_topics (id, category_id, author_id, title, created_at) VALUES (?1, ?2, ?3, 'Topic', ?4)`,
        `top-${u}-${i}`,
        `cat-${u}`,
        u,
        at(i),
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO forum_posts (id, topic_id, author_id, body, is_first, created_at) VALUES (?1, ?2, ?3, 'Hello', 1, ?4)`,
        `post-${u}-${i}`,
        `top-${u}-${i}`,
        u,
        at(i),
      ),
    ),
    ...each((i) =>
      s(`INSERT INTO forum_reactions (post_id, user_id, type, created_at) VALUES (?1, ?2, 'like', ?3)`, `post-${u}-${i}`, u, at(i)),
    ),
    ...each((i) =>
      s(`INSERT INTO forum_attachments (post_id, position, image, width, height) VALUES (?1, 0, ?2, 10, 10)`, `post-${u}-${i}`, image(i)),
    ),
    ...each((i) => s(`UPDATE forum_topics SET solution_post_id = ?1 WHERE id = ?2`, `post-${u}-${i}`, `top-${u}-${i}`)),
    ...each((i) => s(`INSERT INTO forum_subscriptions (topic_id, user_id, created_at) VALUES (?1, ?2, ?3)`, `top-${u}-${i}`, u, at(i))),
    ...each((i) =>
      s(
        `INSERT INTO forum_reports (id, post_id, reporter_id, reason, created_at) VALUES (?1, ?2, ?3, 'spam', ?4)`,
        `frep-${u}-${i}`,
        `post-${u}-${i}`,
        u,
        at(i),
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO blog_revisions (id, post_id, number, author_id, snapshot, created_at) VALUES (?1, ?2, ?3, ?4, '{}', ?5)`,
        `rev-${u}-${i}`,
        `bp-${u}`,
        i,
        u,
        at(i),
      ),
    ),
    ...each((i) => s(`INSERT INTO blog_images (ref, uploaded_by, created_at) VALUES (?1, ?2, ?3)`, `img-${u}-${i}`, u, at(i))),
    ...each((i) =>
      s(
        `INSERT INTO blog_comments (id, post_id, user_id, body, status, created_at) VALUES (?1, ?2, ?3, 'Nice', 'approved', ?4)`,
        `com-${u}-${i}`,
        `bp-${u}`,
        u,
        at(i),
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO blog_comment_reports (id, comment_id, reporter_id, reason, created_at) VALUES (?1, ?2, ?3, 'spam', ?4)`,
        `crep-${u}-${i}`,
        `com-${u}-${i}`,
        u,
        at(i),
      ),
    ),
    ...each((i) =>
      s(
        `INSERT INTO notifications (id, user_id, type, title, data, created_at) VALUES (?1, ?2, 'care_reminder', 'Water', '{}', ?3)`,
        `note-${u}-${i}`,
        u,
        at(i),
      ),
    ),
  ]);
}

type Row = Record<string, unknown>;
interface Paged {
  identification_requests: (Row & { results: Row[]; my_votes: Row[] })[];
  disease_requests: (Row & { results: Row[] })[];
  collections: (Row & { plants: Row[] })[];
  calendar: { events: Row[]; rsvps: Row[] };
  forum: { topics: Row[]; posts: Row[]; reactions: Row[]; subscriptions: Row[] };
  blog: { posts: Row[]; revisions: Row[]; images: Row[] };
  blog_comments: Row[];
  reports: { forum_posts: Row[]; blog_comments: Row[]; proposals: Row[] };
  community: { proposals: Row[]; votes: Row[] };
  notifications: Row[];
}

/** Each paged list of an export, by one key of its rows. */
function pagedLists(doc: Paged) {
  return {
    plants: doc.collections.map((c) => [c.id, c.plants.map((x) => x.id)]),
    identification_requests: doc.identification_requests.map((x) => x.request_id),
    disease_requests: doc.disease_requests.map((x) => x.request_id),
    events: doc.calendar.events.map((x) => x.id),
    rsvps: doc.calendar.rsvps.map((x) => x.event_id),
    topics: doc.forum.topics.map((x) => x.id),
    posts: doc.forum.posts.map((x) => x.id),
    reactions: doc.forum.reactions.map((x) => x.post_id),
    subscriptions: doc.forum.subscriptions.map((x) => x.topic_id),
    blog_posts: doc.blog.posts.map((x) => x.id),
    revisions: doc.blog.revisions.map((x) => x.number),
    images: doc.blog.images.map((x) => x.id),
    blog_comments: doc.blog_comments.map((x) => x.id),
    forum_reports: doc.reports.forum_posts.map((x) => x.id),
    comment_reports: doc.reports.blog_comments.map((x) => x.id),
    proposal_reports: doc.reports.proposals.map((x) => x.result_id),
    proposals: doc.community.proposals.map((x) => x.id),
    votes: doc.community.votes.map((x) => x.result_id),
    notifications: doc.notifications.map((x) => x.id),
  };
}

/** An `env` whose D1 batches are counted, with the most rows any one statement of them answered. */
function envCountingRows() {
  let largest = 0;
  const counted = envAroundBatches(async () => {});
  const DB = new Proxy(counted.env.DB, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "batch") return typeof value === "function" ? value.bind(target) : value;
      return async (statements: D1PreparedStatement[]) => {
        const results = await value.call(target, statements);
        for (const result of results as D1Result[]) largest = Math.max(largest, result.results?.length ?? 0);
        return results;
      };
    },
  });
  return { env: { ...counted.env, DB } as typeof env, batches: counted.batches, largest: () => largest };
}

async function exportText(e: typeof env, u: { userId: string; username: string }, pageSize?: number) {
  const { body } = await exportAccountStream(e, { id: u.userId, username: u.username, role: "user" }, NOW, pageSize);
  return new Response(body).text();
}

describe("the account export's paged parts", () => {
  it(`reads each part that grows without a cap ${PAGE} rows at a time: every row once, in order, the same document as one page`, async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    await seed(u.userId, other.userId);
    const ids = (prefix: string, order: number[]) => order.map((i) => `${prefix}-${u.userId}-${i}`);
    const oldestFirst = range(ROWS);
    const newestFirst = [...oldestFirst].reverse();

    const counting = envCountingRows();
    const text = await exportText(counting.env, u, PAGE);
    const doc = JSON.parse(text) as Paged;
    expect(pagedLists(doc)).toEqual({
      plants: [
        [`col-${u.userId}-a`, ids("plant", [3, 2, 1])],
        [`col-${u.userId}-b`, ids("plant", [5, 4])],
      ],
      identification_requests: ids("req", newestFirst),
      disease_requests: ids("dreq", newestFirst),
      events: ids("oev", oldestFirst),
      rsvps: ids("ev", oldestFirst),
      topics: ids("top", oldestFirst),
      posts: ids("post", oldestFirst),
      reactions: ids("post", oldestFirst),
      subscriptions: ids("top", oldestFirst),
      blog_posts: ids("obp", oldestFirst),
      revisions: oldestFirst,
      images: ids("img", oldestFirst),
      blog_comments: ids("com", oldestFirst),
      forum_reports: ids("frep", oldestFirst),
      comment_reports: ids("crep", oldestFirst),
      proposal_reports: ids("ores", oldestFirst),
      proposals: ids("prop", oldestFirst),
      votes: ids("ores", oldestFirst),
      notifications: ids("note", newestFirst),
    });
    // What each row's page read for it is its own: results and votes of requests, a post's reactions, photo and solution.
    for (const [n, request] of doc.identification_requests.entries()) {
      const i = newestFirst[n];
      expect(request.results.map((x) => x.id)).toEqual([`res-${u.userId}-${i}`]);
      expect(request.my_votes.map((x) => x.result_id)).toEqual([`res-${u.userId}-${i}`]);
    }
    for (const [n, diagnosis] of doc.disease_requests.entries()) {
      expect(diagnosis.results.map((x) => x.id)).toEqual([`dres-${u.userId}-${newestFirst[n]}`]);
    }
    for (const [n, post] of doc.forum.posts.entries()) {
      expect(post).toMatchObject({ is_solution: true, reactions: { like: 1 }, my_reactions: ["like"] });
      expect((post.attachments as { url: string }[]).map((a) => a.url)).toEqual([expect.stringContaining(image(n + 1))]);
    }
    // No read answered more than a page, and the parts took several reads.
    expect(counting.largest()).toBeLessThanOrEqual(PAGE);
    expect(counting.batches()).toBeGreaterThan(16);

    // The same bytes as an export whose page holds every row.
    expect(await exportText(env, u, 1000)).toBe(text);
  });

  it("neither repeats nor skips a row that stays when rows are made and deleted between two pages", async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    await seed(u.userId, other.userId);
    const request = (id: string, createdAt: string) =>
      env.DB.prepare(`INSERT INTO identification_requests (id, user_id, image_hashes, created_at) VALUES (?1, ?2, '[]', ?3)`).bind(
        id,
        u.userId,
        createdAt,
      );
    // Newest first, two a page: the first page is requests 5 and 4. Before the second page is read,
    // a request newer than all (before the position: not in this export), one older than all and
    // one made in the same millisecond as request 4 with a smaller id (after it: in the export)
    // are made, and request 3 (not yet read) is deleted. Meanwhile the first event and blog post
    // (read on the first page) are edited: the event starts last and the post is the latest changed.
    const racing = envAroundBatches(async (n) => {
      if (n !== 2) return;
      await env.DB.batch([
        request(`req-${u.userId}-9`, at(9)),
        request(`req-${u.userId}-0`, "2025-12-31T00:00:00.000Z"),
        request(`req-${u.userId}-3x`, at(4)),
        env.DB.prepare(`DELETE FROM identification_requests WHERE id = ?1`).bind(`req-${u.userId}-3`),
        env.DB.prepare(`UPDATE calendar_events SET starts_at = ?1, ends_at = ?1 WHERE id = ?2`).bind(at(9), `oev-${u.userId}-1`),
        env.DB.prepare(`UPDATE blog_posts SET updated_at = ?1 WHERE id = ?2`).bind(at(9), `obp-${u.userId}-1`),
      ]);
    });
    const doc = JSON.parse(await exportText(racing.env, u, PAGE)) as Paged;
    const each = (prefix: string) => range(ROWS).map((i) => `${prefix}-${u.userId}-${i}`);
    expect(doc.calendar.events.map((x) => x.id)).toEqual(each("oev"));
    expect(doc.blog.posts.map((x) => x.id)).toEqual(each("obp"));
    expect(doc.identification_requests.map((x) => x.request_id)).toEqual([
      `req-${u.userId}-5`,
      `req-${u.userId}-4`,
      `req-${u.userId}-3x`,
      `req-${u.userId}-2`,
      `req-${u.userId}-1`,
      `req-${u.userId}-0`,
    ]);
  });
});
