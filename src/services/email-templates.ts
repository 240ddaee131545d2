/**
 * Notification email, rendered from the templates below (issue 10 item 3): every message has an
 * HTML part — inline-styled (mail clients drop <style>), a single-column table layout, real
 * headings, alt-free (no images), a visible link text, `lang` and a plain-language preheader —
 * and a plain-text part with the same content. Dates are written in the recipient's time zone.
 * Everything that comes from users (names, titles, excerpts) is escaped; nothing is trusted HTML.
 *
 * One template per notification type (what happened, one action), plus the digest (many
 * notifications in one mail) and the footer every notification email shares (why you got it, the
 * preferences link and the one-click unsubscribe link of List-Unsubscribe).
 */
import { escapeHtml } from "../lib/sanitise";
import { localWall, shownTwice } from "../lib/wall-clock";
import { oneLine } from "../providers/email";
import type { PreferenceType } from "./notification-preferences";

export interface EmailNotification {
  type: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  createdAt: string;
}

export interface Recipient {
  username: string;
  timeZone: string;
}

export interface EmailLinks {
  /** The web app's origin (FRONTEND_URL). */
  frontend: string;
  /** The RFC 8058 unsubscribe URL of this mail (the same as in List-Unsubscribe). */
  unsubscribe: string;
  /** A link only this mail carries, made when it is sent and never stored with the notification. */
  action?: EmailAction;
}

/** A link an email shows before its notice's own, with its token spelled out too (for a client that asks for it). */
export interface EmailAction {
  label: string;
  url: string;
  token: { label: string; value: string };
}

export interface RenderedEmail {
  subject: string;
  html: string;
  text: string;
}

const COLORS = { ink: "#1d2a22", soft: "#4d5d53", green: "#1d5236", line: "#d9e5dc", bg: "#f3faf4", button: "#256b45" };

/** Formatters by zone: a digest formats many times in one zone. */
const clocks = new Map<string, Intl.DateTimeFormat>();

/** The date and clock in `zone` at `at`, as named parts (day, month, year, hour, minute, timeZoneName "GMT+2"). */
function clockParts(at: number, zone: string): Record<string, string> {
  let clock = clocks.get(zone);
  if (clock === undefined) {
    clock = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      day: "numeric",
      month: "long",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZoneName: "shortOffset",
    });
    if (clocks.size >= 1000) clocks.clear();
    clocks.set(zone, clock);
  }
  return Object.fromEntries(clock.formatToParts(at).map((p) => [p.type, p.value]));
}

/**
 * "3 December 2026, 09:00 (Europe/Berlin)" in the recipient's zone; UTC when the zone is unknown.
 * A time the clock shows twice adds its offset: "25 October 2026, 02:30 GMT+2 (Europe/Berlin)" and
 * "… 02:30 GMT+1 …" an hour later.
 */
export function formatWhen(iso: string, timeZone: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  // Assembled from parts: ICU's own joining ("… at 08:00") differs between runtimes.
  const format = (zone: string) => {
    const parts = clockParts(date.getTime(), zone);
    // The clock shows this minute twice (clocks went back): its offset tells the two apart.
    const minute = Math.floor(date.getTime() / 60_000) * 60_000;
    const offset = shownTwice(localWall(minute, zone), zone) ? ` ${parts.timeZoneName}` : "";
    return `${parts.day} ${parts.month} ${parts.year}, ${parts.hour}:${parts.minute}${offset}`;
  };
  try {
    return `${format(timeZone)} (${timeZone})`;
  } catch {
    return `${format("UTC")} (UTC)`;
  }
}

const str = (v: unknown) => (typeof v === "string" ? v : "");

/**
 * An event's start in the reader's zone ("Event starts 5 December 2026, 19:00 (Europe/Berlin)"),
 * for notices that carry one; the notice's own text gives it in UTC. Empty for the rest.
 */
function eventStart(n: EmailNotification, timeZone: string): string {
  const startsAt = str(n.data.starts_at);
  if (!startsAt || Number.isNaN(Date.parse(startsAt))) return "";
  // A cancelled event no longer starts: say when it was to.
  return `${n.data.change === "cancelled" ? "The event was to start" : "Event starts"} ${formatWhen(startsAt, timeZone)}`;
}

/** What each type says and where its one action leads (a path on the web app). */
const TYPES: Record<
  string,
  { subject: (n: EmailNotification) => string; action: string; path: (n: EmailNotification) => string; why: string }
> = {
  forum_reply: {
    subject: (n) => n.title,
    action: "Read the reply",
    path: (n) => `/forum/topics/${str(n.data.topic_id)}`,
    why: "someone replied in a topic you follow",
  },
  forum_mention: {
    subject: (n) => n.title,
    action: "See the mention",
    path: (n) => `/forum/topics/${str(n.data.topic_id)}`,
    why: "someone mentioned you in the forum",
  },
  care_reminder: {
    subject: (n) => n.title,
    action: "Open your reminders",
    path: () => "/reminders",
    why: "a care reminder you set is due",
  },
  identification_completed: {
    subject: (n) => n.title,
    action: "See the results",
    path: (n) => `/identify/requests/${str(n.data.request_id)}`,
    why: "an identification you asked for finished",
  },
  identification_failed: {
    subject: (n) => n.title,
    action: "Try again",
    path: (n) => `/identify/requests/${str(n.data.request_id)}`,
    why: "an identification you asked for failed",
  },
  community_proposal: {
    subject: (n) => n.title,
    action: "Review the proposal",
    path: (n) => `/community/requests/${str(n.data.request_id)}`,
    why: "someone proposed a species for your photo",
  },
  community_agreement: {
    subject: (n) => n.title,
    action: "See the identification",
    path: (n) => `/community/requests/${str(n.data.request_id)}`,
    why: "someone agreed with an identification",
  },
  community_consensus: {
    subject: (n) => n.title,
    action: "See the confirmed species",
    path: (n) => `/community/requests/${str(n.data.request_id)}`,
    why: "the community confirmed an identification",
  },
  blog_comment_approved: {
    subject: (n) => n.title,
    action: "See your comment",
    path: (n) => `/blog/${str(n.data.post_slug)}`,
    why: "your comment on a blog post was approved",
  },
  blog_comment_reply: {
    subject: (n) => n.title,
    action: "Read the reply",
    path: (n) => `/blog/${str(n.data.post_slug)}`,
    why: "someone answered your comment",
  },
  calendar_event_changed: {
    subject: (n) => n.title,
    action: "See the event",
    path: (n) => `/calendar/events/${str(n.data.event_id)}`,
    why: "an event you are going to changed",
  },
  calendar_event_starting: {
    subject: (n) => n.title,
    action: "See the event",
    path: (n) => `/calendar/events/${str(n.data.event_id)}`,
    why: "an event you are going to starts soon",
  },
  security: {
    subject: (n) => n.title,
    action: "Review your account",
    path: () => "/settings/security",
    why: "this is a security notice about your account (these are always sent)",
  },
};

function templateOf(type: string) {
  return (
    TYPES[type] ?? {
      subject: (n: EmailNotification) => n.title,
      action: "Open Plant Community",
      path: () => "/",
      why: "of your notification settings",
    }
  );
}

/** The shared HTML frame: preheader, heading, content rows, footer. */
function layout(opts: { preheader: string; heading: string; rows: string; footer: string }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light"><title>${escapeHtml(opts.heading)}</title></head>
<body style="margin:0;padding:0;background:${COLORS.bg};color:${COLORS.ink};font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5">
<div style="display:none;max-height:0;overflow:hidden">${escapeHtml(opts.preheader)}</div>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:${COLORS.bg}"><tr><td align="center" style="padding:24px 12px">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:600px;background:#ffffff;border:1px solid ${COLORS.line};border-radius:12px">
<tr><td style="padding:24px 28px 8px"><p style="margin:0;color:${COLORS.green};font-weight:bold">Plant Community</p>
<h1 style="margin:12px 0 0;font-size:22px;line-height:1.3;color:${COLORS.ink}">${escapeHtml(opts.heading)}</h1></td></tr>
${opts.rows}
<tr><td style="padding:16px 28px 24px;border-top:1px solid ${COLORS.line};color:${COLORS.soft};font-size:13px">${opts.footer}</td></tr>
</table></td></tr></table></body></html>`;
}

function button(href: string, label: string): string {
  return `<tr><td style="padding:8px 28px 20px"><a href="${escapeHtml(href)}" style="display:inline-block;background:${COLORS.button};color:#ffffff;text-decoration:none;font-weight:bold;padding:12px 20px;border-radius:8px">${escapeHtml(label)}</a></td></tr>`;
}

function paragraph(text: string, style = ""): string {
  return `<tr><td style="padding:8px 28px;${style}"><p style="margin:0">${escapeHtml(text).replace(/\n/g, "<br>")}</p></td></tr>`;
}

function footer(why: string, links: EmailLinks, security: boolean): { html: string; text: string } {
  const prefs = `${links.frontend}/settings/notifications`;
  const html = security
    ? `You are receiving this because ${escapeHtml(why)}.<br><a href="${escapeHtml(prefs)}" style="color:${COLORS.green}">Notification settings</a>`
    : `You are receiving this because ${escapeHtml(why)}.<br><a href="${escapeHtml(prefs)}" style="color:${COLORS.green}">Notification settings</a> · <a href="${escapeHtml(links.unsubscribe)}" style="color:${COLORS.green}">Unsubscribe from these emails</a>`;
  const text = security
    ? `You are receiving this because ${why}.\nNotification settings: ${prefs}`
    : `You are receiving this because ${why}.\nNotification settings: ${prefs}\nUnsubscribe from these emails: ${links.unsubscribe}`;
  return { html, text };
}

/**
 * A notification's body in the text part: it can be what a user wrote (a proposal's comment, an
 * event's location), so each of its lines is quoted ("> ") as mail clients quote: none can pass
 * for the mail's own (a fake "Read the reply: <link>" or unsubscribe line). The HTML part keeps
 * the body's line breaks as they are, inside its own paragraph.
 */
function quoted(body: string): string {
  return body
    .split(/\r\n|[\n\r\v\f\u0085\u2028\u2029]/)
    .map((line) => `> ${oneLine(line)}`.trimEnd())
    .join("\n");
}

/** One notification as one email. */
export function renderNotificationEmail(n: EmailNotification, to: Recipient, links: EmailLinks): RenderedEmail {
  const t = templateOf(n.type);
  const url = `${links.frontend}${t.path(n)}`;
  const when = formatWhen(n.createdAt, to.timeZone);
  const starts = eventStart(n, to.timeZone);
  const security = n.type === ("security" satisfies PreferenceType);
  const foot = footer(t.why, links, security);
  const html = layout({
    preheader: n.body || n.title,
    heading: n.title,
    rows: [
      paragraph(`Hello ${to.username},`),
      n.body ? paragraph(n.body) : "",
      starts ? paragraph(starts) : "",
      paragraph(when, `color:${COLORS.soft};font-size:14px`),
      links.action ? button(links.action.url, links.action.label) : "",
      links.action ? paragraph(`${links.action.token.label}: ${links.action.token.value}`, `color:${COLORS.soft};font-size:14px`) : "",
      button(url, t.action),
    ].join("\n"),
    footer: foot.html,
  });
  // The text part says what the HTML part says, in its order: the masthead and heading first. A
  // title is one line wherever it shows (the subject, the heading): in the text part too, so a line
  // break in a topic or event title cannot start lines that pass for the mail's own (a fake
  // "Read the reply: <link>").
  const text = [
    "Plant Community",
    "",
    oneLine(n.title),
    "",
    `Hello ${to.username},`,
    n.body ? `\n${quoted(n.body)}` : "",
    starts ? `\n${starts}` : "",
    "",
    when,
    "",
    links.action ? `${links.action.label}: ${links.action.url}\n\n${links.action.token.label}: ${links.action.token.value}\n` : "",
    `${t.action}: ${url}`,
    "",
    "--",
    foot.text,
  ].join("\n");
  return { subject: t.subject(n), html, text: text.replace(/\n{3,}/g, "\n\n") };
}

/** Many notifications gathered into one digest email (daily or weekly), newest first. */
export function renderDigestEmail(items: EmailNotification[], to: Recipient, links: EmailLinks, period: "daily" | "weekly"): RenderedEmail {
  const sorted = [...items].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const heading = `Your ${period} Plant Community digest`;
  const count = `${sorted.length} ${sorted.length === 1 ? "update" : "updates"}`;
  const rows = sorted.map((n) => {
    const t = templateOf(n.type);
    const url = `${links.frontend}${t.path(n)}`;
    const starts = eventStart(n, to.timeZone);
    return `<tr><td style="padding:12px 28px;border-top:1px solid ${COLORS.line}"><h2 style="margin:0 0 4px;font-size:17px;color:${COLORS.ink}">${escapeHtml(n.title)}</h2>${
      n.body ? `<p style="margin:0 0 4px">${escapeHtml(n.body)}</p>` : ""
    }${starts ? `<p style="margin:0 0 4px">${escapeHtml(starts)}</p>` : ""}<p style="margin:0;color:${COLORS.soft};font-size:14px">${escapeHtml(formatWhen(n.createdAt, to.timeZone))} · <a href="${escapeHtml(url)}" style="color:${COLORS.green}">${escapeHtml(t.action)}</a></p></td></tr>`;
  });
  const foot = footer(`you chose a ${period} digest of your notifications`, links, false);
  const html = layout({
    preheader: count,
    heading,
    rows: [paragraph(`Hello ${to.username}, here is what happened: ${count}.`), ...rows].join("\n"),
    footer: foot.html,
  });
  const text = [
    "Plant Community",
    "",
    heading,
    "",
    `Hello ${to.username}, here is what happened: ${count}.`,
    "",
    ...sorted.flatMap((n) => {
      const t = templateOf(n.type);
      const starts = eventStart(n, to.timeZone);
      return [
        // One line each, as in the HTML part: user text cannot leave its item and pose as another.
        `* ${oneLine(n.title)}`,
        ...(n.body ? [`  ${oneLine(n.body)}`] : []),
        ...(starts ? [`  ${starts}`] : []),
        `  ${formatWhen(n.createdAt, to.timeZone)} — ${t.action}: ${links.frontend}${t.path(n)}`,
        "",
      ];
    }),
    "--",
    foot.text,
  ].join("\n");
  return { subject: `${heading}: ${count}`, html, text };
}
