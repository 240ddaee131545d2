// Browser pages and server-rendered markup, attacked (review helper-57): the one gap it found.
//
// The blog's public feeds are XML 1.0 built by string templates (src/routes/blog-public.ts,
// xmlText). xmlText escapes markup and drops C0 controls, but XML 1.0's Char production also
// excludes U+FFFE and U+FFFF, which nothing refuses: a post title may hold them (the title's
// schema in src/routes/blog.ts refuses only C0/DEL), and an introduction's `&#xFFFF;` is decoded
// by the sanitiser into the excerpt. One published post so written makes /blog/feed.rss and
// /blog/feed.atom ill-formed, so every feed reader drops the whole feed (the Atom/RSS parsers
// of feed readers are strict XML parsers).
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { blogCacheState } from "../../src/db/schema";
import { call } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { action, createPost, withRole } from "../routes/blog-editorial-setup";

useEmulators();

// Test files share the Cache API; a fresh generation keeps other tests' cached feeds out.
beforeEach(async () => {
  const version = Math.floor(Math.random() * 1e9);
  await database(env).insert(blogCacheState).values({ id: 1, version }).onConflictDoUpdate({ target: blogCacheState.id, set: { version } });
});

/** Every character an XML 1.0 document may hold (https://www.w3.org/TR/xml/#NT-Char). */
const XML_CHARS = /^[\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]*$/u;

describe("blog feeds stay well-formed XML whatever a writer types", () => {
  it("a title with U+FFFF and an introduction with &#xFFFE; do not make the RSS and Atom feeds ill-formed", async () => {
    const [author, editor] = [await withRole("author"), await withRole("editor")];
    const post = await createPost(author.access, {
      title: `Ferns\uffff ${crypto.randomUUID().slice(0, 8)}`,
      introduction: "<p>Ferns&#xFFFE; like shade</p>",
      content_blocks: [{ type: "paragraph", value: "<p>Water weekly.</p>" }],
    });
    expect((await action(author.access, post.id, "submit")).status).toBe(200);
    expect((await action(editor.access, post.id, "publish")).status).toBe(200);

    for (const path of ["/blog/feed.rss", "/blog/feed.atom"]) {
      const res = await call(path);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toContain(post.id);
      const bad = [...text].filter((ch) => !XML_CHARS.test(ch)).map((ch) => `U+${ch.codePointAt(0)!.toString(16).toUpperCase()}`);
      expect(bad, `${path} holds characters XML 1.0 forbids`).toEqual([]);
    }
  });
});
