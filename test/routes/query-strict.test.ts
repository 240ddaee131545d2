/**
 * A GET under /api/v1 refuses a query parameter it does not take (`?serach=x` would otherwise
 * list everything), as a JSON body refuses an unknown field; `_`, the cache-buster, is always
 * allowed. The routes whose URLs something else builds ignore unknown parameters: TOLERANT says
 * which, and why (each has the same comment where it is declared).
 */
import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";

const SOME_ID = "0190a0b4-0000-7000-8000-000000000000";

const TOLERANT: Record<string, string> = {
  "/api/v1/auth/oauth/{provider}/callback": "a provider's redirect",
  "/api/auth/oauth/{provider}/callback": "a provider's redirect (the web client's unversioned path)",
  "/api/v1/notifications/unsubscribe": "a link in a mail",
  "/api/v1/auth/2fa/reset/start": "a link in a mail",
  "/api/v1/reminders/calendar-feed/{token}/plant-community.ics": "a calendar app's subscription",
  "/api/v1/reminders/calendar.ics": "a calendar app's download",
  "/api/v2/blog-posts/{id}": "outside /api/v1: Wagtail's detail view does not check its query (its listings do)",
  "/blog/feed.rss": "outside /api/v1: feed readers",
  "/blog/feed.atom": "outside /api/v1: feed readers",
  "/sitemap.xml": "outside /api/v1: crawlers",
  "/media/images/{file}": "outside /api/v1: images behind CDNs",
};

interface Envelope {
  code?: string;
  errors?: Record<string, string[]>;
}

async function answer(url: string): Promise<{ status: number; text: string }> {
  const res = await call(url);
  return { status: res.status, text: await res.text() };
}

describe("unknown query parameters", () => {
  it("are refused by every GET in the OpenAPI document but the tolerant ones", async () => {
    const doc = (await (await call("/api/openapi.json")).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> } | undefined>>;
    };
    const wrong: string[] = [];
    let refused = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!item.get) continue;
      const url = path.replace(/\{(\w+)\}/g, (_, name: string) => (name === "slug" ? "houseplants" : SOME_ID));
      const withZzz = await answer(`${url}?zzz=1`);
      if (path in TOLERANT) {
        // Ignored: the answer is whatever it is without the parameter.
        const without = await answer(url);
        if (withZzz.status !== without.status || withZzz.text.includes("zzz"))
          wrong.push(`GET ${path}: tolerant, but ?zzz=1 → ${withZzz.status} where without → ${without.status}`);
        continue;
      }
      refused++;
      if (!item.get.responses["400"]) wrong.push(`GET ${path}: refuses ?zzz=1, but the document declares no 400`);
      if (withZzz.status !== 400 || !withZzz.text.includes("zzz"))
        wrong.push(`GET ${path}: ?zzz=1 → ${withZzz.status}, not a 400 naming zzz`);
      else if (path.startsWith("/api/v1/")) {
        const body = JSON.parse(withZzz.text) as Envelope;
        if (body.code !== "VALIDATION_ERROR" || !body.errors?.non_field_errors?.[0]?.startsWith('Unrecognized query parameter: "zzz".'))
          wrong.push(`GET ${path}: ?zzz=1 → ${withZzz.text}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(refused).toBeGreaterThan(40);
  });

  it("are named with the parameters the route takes, before authentication", async () => {
    const res = await call("/api/v1/calendar/events?page_sise=5&serach=x");
    expect(res.status).toBe(400);
    const body = (await res.json()) as Envelope;
    expect(body.code).toBe("VALIDATION_ERROR");
    const [message] = body.errors!.non_field_errors!;
    expect(message).toMatch(/^Unrecognized query parameters: "page_sise", "serach"\. Accepted parameters: .*\bpage_size\b.*\.$/);

    const signedIn = await call("/api/v1/plant-identification/plants?serach=x");
    expect(signedIn.status).toBe(400);
    expect(((await signedIn.json()) as Envelope).errors!.non_field_errors![0]).toContain('"serach"');

    const none = await call("/api/v1/health?zzz=1");
    expect(((await none.json()) as Envelope).errors!.non_field_errors).toEqual([
      'Unrecognized query parameter: "zzz". No query parameters are accepted here.',
    ]);
  });

  it("accept `_`, the cache-buster, everywhere", async () => {
    expect((await call("/api/v1/calendar/events?_=1733500000000")).status).toBe(200);
    expect((await call("/api/v1/calendar/events?page_size=5&_=1")).status).toBe(200);
    expect((await call("/api/v1/health?_=1")).status).not.toBe(400);
    expect((await call("/api/v1/plant-identification/plants?_=1")).status).toBe(401);
  });
});
