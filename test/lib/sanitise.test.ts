import { describe, expect, it } from "vitest";
import { decodeEntities, safeHref, sanitisePostBody as clean, visibleText } from "../../src/lib/sanitise";

/** Nothing that can run code or load anything may survive, whatever the input. */
function expectInert(html: string) {
  expect(html).not.toMatch(/<\s*(script|style|svg|math|iframe|img|object|embed|form|input|base|meta|link)\b/i);
  expect(html).not.toMatch(/\son[a-z]+\s*=/i);
  expect(html).not.toMatch(/\sstyle\s*=/i);
  expect(html).not.toMatch(/href="\s*(javascript|data|vbscript):/i);
  // Every attribute left is an allowed one.
  for (const m of html.matchAll(/<[a-z0-9]+(\s[^>]*)?>/gi)) {
    const attrs = [...(m[1] ?? "").matchAll(/\s([a-z-]+)=/gi)].map((a) => a[1]);
    for (const a of attrs) expect(["href", "rel"]).toContain(a);
  }
}

describe("sanitisePostBody", () => {
  it("keeps plain text, escaping markup characters and turning newlines into <br>", () => {
    expect(clean("Water when the top 2cm are dry.\nNot before!")).toBe("Water when the top 2cm are dry.<br>Not before!");
    expect(clean("5 < 6 && 7 > 3")).toBe("5 &lt; 6 &amp;&amp; 7 &gt; 3");
    expect(clean("\"quotes\" and 'apostrophes'")).toBe("&quot;quotes&quot; and &#39;apostrophes&#39;");
    expect(clean("a\r\nb")).toBe("a<br>b");
  });

  it("keeps the allowed subset in canonical form and drops every attribute", () => {
    expect(clean('<P CLASS="x" style="color:red">Hi <B>there</B> <em id=y>you</em></P>')).toBe("<p>Hi <b>there</b> <em>you</em></p>");
    expect(clean("<ul>\n  <li>one</li>\n  <li>two</li>\n</ul>")).toBe("<ul><li>one</li><li>two</li></ul>");
    expect(clean("<pre><code>line 1\nline 2</code></pre>")).toBe("<pre><code>line 1\nline 2</code></pre>");
    expect(clean("a<br/>b<hr>c")).toBe("a<br>b<hr>c");
  });

  it("removes <script> with its content, in any case and even unclosed", () => {
    expect(clean("before<script>alert(1)</script>after")).toBe("beforeafter");
    expect(clean("x<ScRiPt type=text/javascript>alert(1)</SCRIPT >y")).toBe("xy");
    expect(clean("x<script>alert(1)")).toBe("x");
    expect(clean("<scr<script>ipt>alert(1)</script>")).not.toMatch(/<script/i);
    expectInert(clean("<scr<script>ipt>alert(1)</scr</script>ipt>"));
  });

  it("removes event handlers: <img onerror>, <svg onload>, <body onload>, <a onclick>", () => {
    expect(clean('<img src=x onerror="alert(1)">text')).toBe("text");
    expect(clean('<svg onload="alert(1)"><circle r="1"/></svg>ok')).toBe("ok");
    expect(clean("<svg><script>alert(1)</script></svg>ok")).toBe("ok");
    expect(clean("<body onload=alert(1)>hi</body>")).toBe("hi");
    expect(clean('<a href="https://example.com" onclick="alert(1)">x</a>')).toBe(
      '<a href="https://example.com" rel="nofollow ugc noopener noreferrer">x</a>',
    );
    expectInert(clean('<p onmouseover="alert(1)" style="background:url(javascript:alert(1))">x</p>'));
  });

  it("refuses javascript:, data: and vbscript: links however they are written", () => {
    const vectors = [
      "javascript:alert(1)",
      "JaVaScRiPt:alert(1)",
      "  javascript:alert(1)",
      "java\tscript:alert(1)",
      "java&#x09;script:alert(1)",
      "&#106;avascript:alert(1)",
      "&#106avascript:alert(1)",
      "&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)",
      "javascript&colon;alert(1)",
      "&#0000106&#0000097vascript:alert(1)",
      "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
      "vbscript:msgbox(1)",
      "\u0001javascript:alert(1)",
    ];
    for (const href of vectors) {
      const out = clean(`<a href="${href}">click</a>`);
      expect(out, href).toBe("<a>click</a>");
      expectInert(out);
    }
    expect(clean("<a href=javascript:alert(1)>x</a>")).toBe("<a>x</a>");
    expect(clean("<a href='javascript:alert(1)'>x</a>")).toBe("<a>x</a>");
  });

  it("keeps safe links, escaping what needs escaping", () => {
    expect(clean('<a href="https://example.com/a?b=1&amp;c=2">x</a>')).toBe(
      '<a href="https://example.com/a?b=1&amp;c=2" rel="nofollow ugc noopener noreferrer">x</a>',
    );
    expect(clean('<a href="/api/v1/forum/categories/">cats</a>')).toContain('href="/api/v1/forum/categories/"');
    expect(clean('<a href="mailto:me@example.com">mail</a>')).toContain('href="mailto:me@example.com"');
    expect(clean('<a href="#top">up</a>')).toContain('href="#top"');
    expect(clean('<a href="https://x.test/&quot;onmouseover=&quot;alert(1)">x</a>')).toBe(
      '<a href="https://x.test/&quot;onmouseover=&quot;alert(1)" rel="nofollow ugc noopener noreferrer">x</a>',
    );
  });

  it("balances nested and unclosed tags and ignores stray closers", () => {
    expect(clean("<b><i>x</b>y")).toBe("<b><i>x</i></b>y");
    expect(clean("<p>unclosed <strong>bold")).toBe("<p>unclosed <strong>bold</strong></p>");
    expect(clean("</p></div>text</b>")).toBe("text");
    expect(clean("<a href='/a'>1<a href='/b'>2</a></a>")).toBe('<a href="/a" rel="nofollow ugc noopener noreferrer">12</a>');
    const deep = `${"<b>".repeat(100)}x`;
    const out = clean(deep);
    expect(out.match(/<b>/g)!.length).toBe(20);
    expect(out.match(/<\/b>/g)!.length).toBe(20);
  });

  it("drops comments, doctypes and CDATA, and escapes half-open tags", () => {
    expect(clean("a<!-- <script>alert(1)</script> -->b")).toBe("ab");
    expect(clean("a<!-- never closed <script>alert(1)</script>")).toBe("a");
    expect(clean("<!DOCTYPE html><![CDATA[x]]>ok")).toBe("ok");
    expect(clean('<img src="x" onerror="alert(1)"')).toBe("&lt;img src=&quot;x&quot; onerror=&quot;alert(1)&quot;");
    expect(clean("if x<y then")).toBe("if x&lt;y then");
    expect(clean("a < b")).toBe("a &lt; b");
  });

  it("keeps entity-encoded markup as text, never decoding it into tags", () => {
    expect(clean("&lt;script&gt;alert(1)&lt;/script&gt;")).toBe("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(clean("&#60;img src=x onerror=alert(1)&#62;")).toBe("&lt;img src=x onerror=alert(1)&gt;");
    expect(clean("caf&eacute; &copy; 2026")).toBe("caf&amp;eacute; © 2026");
  });

  it("drops other dangerous elements with their content", () => {
    for (const html of [
      '<iframe src="javascript:alert(1)"></iframe>',
      '<object data="x.swf"></object>',
      '<embed src="x.swf">',
      "<style>body{background:red}</style>",
      "<math><mtext><script>alert(1)</script></mtext></math>",
      '<form action="javascript:alert(1)"><input type=submit></form>',
      '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
      '<base href="javascript:alert(1)//">',
      "<template><script>alert(1)</script></template>",
      '<details open ontoggle="alert(1)">',
      '<video><source onerror="alert(1)"></video>',
    ]) {
      expectInert(clean(`${html}ok`));
    }
  });

  it("is idempotent, so a stored body can be sent back unchanged", () => {
    const samples = [
      "plain\ntext & more <3",
      '<p>Hi <a href="https://example.com/?a=1&b=2">link</a></p>\n<ul><li>x</li></ul>',
      "<pre>  indented\n  code &lt;tag&gt;</pre>",
      '<b><i>unbalanced</b> <a href="javascript:alert(1)">x</a> caf&eacute; &amp;amp;',
      "<p>a</p>\n\n<p>b</p>",
    ];
    for (const s of samples) {
      const once = clean(s);
      expect(clean(once), s).toBe(once);
      expectInert(once);
    }
  });
});

describe("helpers", () => {
  it("decodeEntities handles numeric, hex and named references", () => {
    expect(decodeEntities("&#65;&#x42;&#X43;&lt;&amp;&unknown;&#0;")).toBe("ABC<&&unknown;\ufffd");
  });

  it("safeHref accepts http(s), mailto and relative URLs only", () => {
    expect(safeHref("https://example.com")).toBe("https://example.com");
    expect(safeHref("HTTP://example.com")).toBe("HTTP://example.com");
    expect(safeHref("page?x=1")).toBe("page?x=1");
    expect(safeHref("ftp://example.com")).toBeNull();
    expect(safeHref("javascript:alert(1)")).toBeNull();
    expect(safeHref("")).toBeNull();
  });

  it("visibleText strips tags", () => {
    expect(visibleText("<p>a <b>b</b></p><br>c &amp; d")).toBe("a b c & d");
    expect(visibleText("<hr><br>")).toBe("");
  });
});
