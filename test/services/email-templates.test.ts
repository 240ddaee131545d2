/** Notification email templates: every type renders both parts, escapes what users wrote, uses the recipient's time zone. */
import { describe, expect, it } from "vitest";
import { formatWhen, renderDigestEmail, renderNotificationEmail } from "../../src/services/email-templates";
import { PREFERENCE_TYPES } from "../../src/services/notification-preferences";

const links = { frontend: "https://app.example", unsubscribe: "https://api.example/api/v1/notifications/unsubscribe/?token=abc.def" };
const to = { username: "fern_lover", timeZone: "America/New_York" };
const note = (type: string, extra: Partial<{ title: string; body: string }> = {}) => ({
  type,
  title: extra.title ?? `A ${type} happened`,
  body: extra.body ?? "Details of what happened.",
  data: { topic_id: "t1", request_id: "r1", event_id: "e1", post_slug: "basil" },
  createdAt: "2026-12-03T08:00:00.000Z",
});

describe("notification email templates", () => {
  it("render every type with HTML and text, one action link, and the date in the recipient's zone", () => {
    for (const type of PREFERENCE_TYPES) {
      const mail = renderNotificationEmail(note(type), to, links);
      expect(mail.subject, type).toBe(`A ${type} happened`);
      expect(mail.html).toMatch(/^<!doctype html>\n<html lang="en">/);
      expect(mail.html).not.toMatch(/<style|<script|class=/i);
      expect(mail.html).toContain('role="presentation"');
      expect(mail.html).toContain("3 December 2026, 03:00 (America/New_York)");
      expect(mail.text).toContain("3 December 2026, 03:00 (America/New_York)");
      expect(mail.text).toContain("Hello fern_lover,");
      const action = /(https:\/\/app\.example\/[^\s]*)/.exec(mail.text)![1]!;
      expect(mail.html).toContain(`href="${action}"`);
    }
  });

  it("offer the unsubscribe link on every notification mail except security notices", () => {
    const reply = renderNotificationEmail(note("forum_reply"), to, links);
    expect(reply.html).toContain(`href="${links.unsubscribe}"`);
    expect(reply.text).toContain(`Unsubscribe from these emails: ${links.unsubscribe}`);
    const security = renderNotificationEmail(note("security", { title: "Your password was changed" }), to, links);
    expect(security.html).not.toContain(links.unsubscribe);
    expect(security.text).not.toContain("Unsubscribe");
    expect(security.text).toContain("always sent");
  });

  it("show a link only this mail carries (a two-factor reset's cancel) before the notice's own, with its token, in both parts", () => {
    const action = {
      label: "Cancel the reset (one click, once)",
      url: "https://app.example/two-factor-reset/cancel?token=a-b_c&x=<1>",
      token: { label: "Cancel token", value: "a-b_c" },
    };
    const mail = renderNotificationEmail(note("security"), to, { ...links, action });
    expect(mail.text).toContain(`${action.label}: ${action.url}\n\nCancel token: a-b_c\n`);
    expect(mail.text.indexOf(action.url)).toBeLessThan(mail.text.indexOf("Review your account: https://app.example/settings/security"));
    expect(mail.html).toContain('href="https://app.example/two-factor-reset/cancel?token=a-b_c&amp;x=&lt;1&gt;"');
    expect(mail.html).toContain("Cancel token: a-b_c");
    expect(renderNotificationEmail(note("security"), to, links).text).not.toContain("Cancel");
  });

  it("escape everything users wrote", () => {
    const mail = renderNotificationEmail(
      note("forum_reply", { title: '<img src=x onerror=alert(1)> "hi"', body: "<script>alert(1)</script>\nline two" }),
      { ...to, username: "<b>x</b>" },
      links,
    );
    expect(mail.html).not.toMatch(/<img|<script|<b>/);
    expect(mail.html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;<br>line two");
    expect(mail.html).toContain("Hello &lt;b&gt;x&lt;/b&gt;,");
  });

  it("keep a title's line breaks from forging lines of the text part (a fake action link)", () => {
    const forged = "Help\r\n\r\nRead the reply: https://evil.example/login\n\n--\nUnsubscribe from these emails: https://evil.example/u";
    const single = renderNotificationEmail(note("forum_reply", { title: forged }), to, links);
    const lines = single.text.split("\n");
    expect(lines.filter((l) => l.startsWith("Read the reply:"))).toEqual(["Read the reply: https://app.example/forum/topics/t1"]);
    expect(lines.filter((l) => l.startsWith("Unsubscribe from these emails:"))).toEqual([
      `Unsubscribe from these emails: ${links.unsubscribe}`,
    ]);
    expect(single.text).not.toMatch(/\r/);
    const digest = renderDigestEmail(
      [note("forum_reply", { title: forged, body: "ok\n\n* Your password was changed\n  Review: https://evil.example" })],
      to,
      links,
      "daily",
    );
    const items = digest.text.split("\n").filter((l) => l.startsWith("* "));
    expect(items).toHaveLength(1);
    expect(digest.text.split("\n").filter((l) => l.includes("https://evil.example"))).toHaveLength(2); // the title's line and the body's, each whole
  });

  it("quote each line of a body (user text) in the text part, so none forges the mail's own lines", () => {
    // A proposal's comment, or an event's location, as the attacker writes it.
    const forged =
      "Looks like a fern.\r\n\r\nRead the reply: https://evil.example/login\u2028--\nUnsubscribe from these emails: https://evil.example/u";
    const mail = renderNotificationEmail(note("forum_reply", { body: forged }), to, links);
    const lines = mail.text.split("\n");
    expect(lines.filter((l) => l.startsWith("Read the reply:"))).toEqual(["Read the reply: https://app.example/forum/topics/t1"]);
    expect(lines.filter((l) => l.startsWith("Unsubscribe from these emails:"))).toEqual([
      `Unsubscribe from these emails: ${links.unsubscribe}`,
    ]);
    expect(lines.filter((l) => l === "--")).toHaveLength(1);
    const quotedAt = lines.indexOf("> Looks like a fern.");
    expect(lines.slice(quotedAt, quotedAt + 5)).toEqual([
      "> Looks like a fern.",
      ">",
      "> Read the reply: https://evil.example/login",
      "> --",
      "> Unsubscribe from these emails: https://evil.example/u",
    ]);
    expect(mail.text).not.toMatch(/[\r\u2028]/);
    // The HTML part keeps the body's line breaks, inside its own paragraph.
    expect(mail.html).toContain("<br>Read the reply: https://evil.example/login");
  });

  it("fall back to UTC for a zone the runtime does not know", () => {
    expect(formatWhen("2026-12-03T08:00:00.000Z", "Not/AZone")).toBe("3 December 2026, 08:00 (UTC)");
    expect(formatWhen("2026-07-01T23:30:00.000Z", "Asia/Tokyo")).toBe("2 July 2026, 08:30 (Asia/Tokyo)");
  });

  it("tell the two readings of a time the clock shows twice apart by their offset, and only those", () => {
    const berlin = (iso: string) => formatWhen(iso, "Europe/Berlin");
    // Clocks go back at 01:00 UTC on 25 October 2026: 02:00–02:59 happens twice.
    expect(berlin("2026-10-25T00:30:00.000Z")).toBe("25 October 2026, 02:30 GMT+2 (Europe/Berlin)");
    expect(berlin("2026-10-25T01:30:00.000Z")).toBe("25 October 2026, 02:30 GMT+1 (Europe/Berlin)");
    expect(berlin("2026-10-25T00:00:00.000Z")).toBe("25 October 2026, 02:00 GMT+2 (Europe/Berlin)");
    expect(berlin("2026-10-25T01:59:59.000Z")).toBe("25 October 2026, 02:59 GMT+1 (Europe/Berlin)");
    // Just outside it, and the hour skipped in spring, read as before.
    expect(berlin("2026-10-24T23:59:00.000Z")).toBe("25 October 2026, 01:59 (Europe/Berlin)");
    expect(berlin("2026-10-25T02:00:00.000Z")).toBe("25 October 2026, 03:00 (Europe/Berlin)");
    expect(berlin("2026-03-29T01:00:00.000Z")).toBe("29 March 2026, 03:00 (Europe/Berlin)");
    expect(berlin("2026-03-29T00:59:00.000Z")).toBe("29 March 2026, 01:59 (Europe/Berlin)");
    // Other zones and changes of other sizes: New York's hour, Lord Howe Island's half hour.
    expect(formatWhen("2026-11-01T05:30:00.000Z", "America/New_York")).toBe("1 November 2026, 01:30 GMT-4 (America/New_York)");
    expect(formatWhen("2026-11-01T06:30:00.000Z", "America/New_York")).toBe("1 November 2026, 01:30 GMT-5 (America/New_York)");
    expect(formatWhen("2026-04-04T14:45:00.000Z", "Australia/Lord_Howe")).toBe("5 April 2026, 01:45 GMT+11 (Australia/Lord_Howe)");
    expect(formatWhen("2026-04-04T15:15:00.000Z", "Australia/Lord_Howe")).toBe("5 April 2026, 01:45 GMT+10:30 (Australia/Lord_Howe)");
    expect(formatWhen("2026-04-04T14:15:00.000Z", "Australia/Lord_Howe")).toBe("5 April 2026, 01:15 (Australia/Lord_Howe)");

    // Both parts of a mail, and a digest's items, say it the same way.
    const at = { ...note("forum_reply"), createdAt: "2026-10-25T01:30:00.000Z" };
    const inBerlin = { ...to, timeZone: "Europe/Berlin" };
    for (const mail of [renderNotificationEmail(at, inBerlin, links), renderDigestEmail([at], inBerlin, links, "daily")]) {
      expect(mail.html).toContain("25 October 2026, 02:30 GMT+1 (Europe/Berlin)");
      expect(mail.text).toContain("25 October 2026, 02:30 GMT+1 (Europe/Berlin)");
    }
  });

  it("give an event's start in the reader's zone, as well as the notice's UTC, in both parts and in a digest", () => {
    const changed = {
      ...note("calendar_event_changed", { title: "Changed: Seed swap", body: "Now: 2026-12-05 18:00 UTC · Park." }),
      data: { event_id: "e1", change: "updated", starts_at: "2026-12-05T18:00:00.000Z" },
    };
    const inBerlin = { ...to, timeZone: "Europe/Berlin" };
    for (const mail of [renderNotificationEmail(changed, inBerlin, links), renderDigestEmail([changed], inBerlin, links, "daily")]) {
      expect(mail.html).toContain("Event starts 5 December 2026, 19:00 (Europe/Berlin)");
      expect(mail.text).toContain("Event starts 5 December 2026, 19:00 (Europe/Berlin)");
    }
    // A cancelled event's notice says when it was to start, not that it starts.
    const cancelled = { ...changed, title: "Cancelled: Seed swap", data: { ...changed.data, change: "cancelled" } };
    for (const mail of [renderNotificationEmail(cancelled, inBerlin, links), renderDigestEmail([cancelled], inBerlin, links, "daily")]) {
      expect(mail.text).toContain("The event was to start 5 December 2026, 19:00 (Europe/Berlin)");
      expect(mail.text).not.toContain("Event starts");
    }
    // Notices without a start (or with a broken one) say nothing of it.
    expect(renderNotificationEmail(note("forum_reply"), inBerlin, links).text).not.toContain("Event starts");
    expect(renderNotificationEmail({ ...changed, data: { starts_at: "soon" } }, inBerlin, links).text).not.toContain("Event starts");
  });

  it("gather a digest newest first with a count, each item with its own link", () => {
    const items = [
      { ...note("forum_reply", { title: "Older" }), createdAt: "2026-12-01T10:00:00.000Z" },
      { ...note("care_reminder", { title: "Newer" }), createdAt: "2026-12-02T10:00:00.000Z" },
    ];
    const mail = renderDigestEmail(items, to, links, "daily");
    expect(mail.subject).toBe("Your daily Plant Community digest: 2 updates");
    expect(mail.text.indexOf("Newer")).toBeLessThan(mail.text.indexOf("Older"));
    expect(mail.html.indexOf("Newer")).toBeLessThan(mail.html.indexOf("Older"));
    expect(mail.text).toContain("https://app.example/reminders");
    expect(mail.text).toContain("https://app.example/forum/topics/t1");
    expect(mail.html).toContain(links.unsubscribe);
  });

  it("carry in the text part every heading, sentence, link text and link of the HTML part", () => {
    const action = {
      label: "Cancel the reset (one click, once)",
      url: "https://app.example/two-factor-reset/cancel?token=a-b_c",
      token: { label: "Cancel token", value: "a-b_c" },
    };
    const mails = [
      ...PREFERENCE_TYPES.map((type) => renderNotificationEmail(note(type), to, links)),
      renderNotificationEmail(note("security"), to, { ...links, action }),
      renderNotificationEmail(note("unknown_type", { body: "" }), to, links),
      renderDigestEmail([note("forum_reply"), note("care_reminder", { title: "Water the fern" })], to, links, "weekly"),
    ];
    const decode = (s: string) =>
      s
        .replace(/&lt;/g, "<")
        .replace(/&gt;/g, ">")
        .replace(/&quot;/g, '"')
        .replace(/&#39;/g, "'")
        .replace(/&amp;/g, "&");
    for (const mail of mails) {
      // What a reader of the HTML part sees (the hidden preheader repeats the content), piece by piece.
      const body = mail.html.replace(/<head>[\s\S]*?<\/head>/, "").replace(/<div style="display:none[^>]*>[\s\S]*?<\/div>/, "");
      const pieces = decode(body.replace(/<[^>]+>/g, "\n"))
        .split(/\n| · /)
        .map((piece) => piece.trim())
        .filter(Boolean);
      expect(pieces.length, mail.subject).toBeGreaterThan(4);
      for (const piece of pieces) expect(mail.text, `${mail.subject}: "${piece}"`).toContain(piece);
      const hrefs = [...mail.html.matchAll(/href="([^"]+)"/g)].map((m) => decode(m[1] ?? ""));
      for (const href of hrefs) expect(mail.text, mail.subject).toContain(href);
    }
  });

  it("write every text in COLORS that are readable on the white card (WCAG AA 4.5:1), the button's label on the button too", () => {
    const luminance = (hex: string) => {
      const [r, g, b] = [1, 3, 5].map((i) => {
        const s = Number.parseInt(hex.slice(i, i + 2), 16) / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * (r ?? 0) + 0.7152 * (g ?? 0) + 0.0722 * (b ?? 0);
    };
    const ratio = (a: string, b: string) => {
      const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
      return ((hi ?? 0) + 0.05) / ((lo ?? 0) + 0.05);
    };
    const html = [
      renderNotificationEmail(note("forum_reply"), to, links).html,
      renderDigestEmail([note("forum_reply")], to, links, "daily").html,
    ].join("\n");
    const styles = [...html.matchAll(/<(?:td|p|h1|h2|a)\b[^>]*style="([^"]*)"/g)].map((m) => m[1] ?? "");
    const colored = styles.filter((s) => /(?:^|;)color:#/.test(s));
    expect(colored.length).toBeGreaterThan(3);
    for (const style of colored) {
      const color = /(?:^|;)color:(#[0-9a-f]{6})/i.exec(style)?.[1] ?? "";
      const background = /background:(#[0-9a-f]{6})/i.exec(style)?.[1] ?? "#ffffff";
      expect(ratio(color, background), style).toBeGreaterThanOrEqual(4.5);
    }
  });
});
