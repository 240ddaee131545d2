import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { call, expectError } from "../helpers/http";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { identifiedResult } from "../helpers/requests";
import { bearerUser, GOOD_PASSWORD, uniqueName } from "../helpers/users";
import { withRole } from "./blog-editorial-setup";

useEmulators();

/** Every documented operation, with path parameters filled in with plausible or junk values. */
function operations(): { method: string; path: string }[] {
  const doc = createApp().getOpenAPI31Document({ openapi: "3.1.0", info: { title: "t", version: "t" } });
  const fill: Record<string, string> = { provider: "google", kind: "images", file: "nope.png" };
  return Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    Object.keys(item as object).map((method) => ({
      method: method.toUpperCase(),
      path: path.replace(/\{(\w+)\}/g, (_, name: string) => fill[name] ?? crypto.randomUUID()),
    })),
  );
}

const JUNK: { name: string; body?: string; type?: string; query?: string }[] = [
  { name: "malformed JSON", body: '{"a": ', type: "application/json" },
  { name: "JSON array", body: "[1, 2, 3]", type: "application/json" },
  { name: "JSON null", body: "null", type: "application/json" },
  {
    name: "wrong types",
    body: JSON.stringify({ username: 5, password: [], email: {}, vote_type: 7, refresh: 1, page: "x" }),
    type: "application/json",
  },
  { name: "plain text", body: "hello", type: "text/plain" },
  {
    name: "broken multipart",
    body: '--xyz\r\nContent-Disposition: form-data; name="image"\r\n\r\nnot closed',
    type: "multipart/form-data; boundary=xyz",
  },
  { name: "junk query", query: "?page=-1&page_size=100000&search=%00%ff&language=zzz&regenerate=maybe" },
];

describe("bad input never gets a 500", () => {
  it("every route, every kind of junk, signed in and not", async () => {
    const u = await bearerUser();
    const failures: string[] = [];
    for (const op of operations()) {
      for (const junk of JUNK) {
        if (op.method === "GET" && junk.body !== undefined) continue;
        for (const bearer of [u.access, undefined]) {
          const res = await call(op.path + (junk.query ?? ""), {
            method: op.method,
            body: junk.body,
            headers: junk.type ? { "Content-Type": junk.type } : {},
            bearer,
          });
          if (res.status >= 500 && res.status !== 503)
            failures.push(
              `${op.method} ${op.path} (${junk.name}, ${bearer ? "signed in" : "anonymous"}): ${res.status} ${await res.text()}`,
            );
          else await res.body?.cancel();
        }
      }
    }
    expect(failures).toEqual([]);
  }, 90_000); // hundreds of sequential requests: a few seconds here, far more on a loaded CI box
});

describe("a field left out", () => {
  const REQUIRED = ["This field is required."];
  const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

  it("says it is required, whatever the field's type or format, JSON or multipart, at any depth", async () => {
    const u = await bearerUser();
    const name = uniqueName();
    const missing = async (path: string, init: Parameters<typeof call>[1]) =>
      (await expectError(await call(path, { bearer: u.access, ...init }), 400, "VALIDATION_ERROR")).errors ?? {};

    expect(
      (await missing("/api/v1/auth/register/", { json: { username: name, email: `${name}@example.com` }, bearer: undefined })).password,
    ).toEqual(REQUIRED);
    expect((await missing("/api/v1/plant-identification/collections/", { json: {} })).name).toEqual(REQUIRED);
    const topic = crypto.randomUUID();
    expect((await missing(`/api/v1/forum/topics/${topic}/posts/`, { json: {} })).body).toEqual(REQUIRED);
    expect((await missing(`/api/v1/forum/topics/${topic}/posts/`, { body: new FormData() })).body).toEqual(REQUIRED);
    const reminder = await missing("/api/v1/reminders/", { json: { reminder_type: "water", frequency: "weekly" } });
    expect(reminder.plant_id).toEqual(REQUIRED);
    const event = await missing("/api/v1/calendar/events/", { json: { title: "Seed swap", start: inAnHour() } });
    expect(event.end).toEqual(REQUIRED);
    const feed = await missing("/api/v1/calendar/feed/", {});
    expect([feed.from, feed.to]).toEqual([REQUIRED, REQUIRED]);

    const author = await withRole("author");
    const post = await call("/api/v1/blog/posts/", {
      bearer: author.access,
      json: { title: "Alt text", content_blocks: [{ type: "image", value: { image: "nope.png" } }] },
    });
    expect((await expectError(post, 400, "VALIDATION_ERROR")).errors?.["content_blocks.0.value.alt"]).toEqual(REQUIRED);
  });

  it("keeps the schema's own message for a value that is there but wrong, and a rule's message for when a field is needed", async () => {
    const u = await bearerUser();
    const event = await call("/api/v1/calendar/events/", {
      bearer: u.access,
      json: { title: "Seed swap", start: inAnHour(), end: "tomorrow" },
    });
    expect((await expectError(event, 400, "VALIDATION_ERROR")).errors?.end?.[0]).toMatch(/^Enter an ISO-8601 date-time/);
    const reminder = await call("/api/v1/reminders/", {
      bearer: u.access,
      json: { plant_id: crypto.randomUUID(), reminder_type: "water", frequency: "custom" },
    });
    expect((await expectError(reminder, 400, "VALIDATION_ERROR")).errors?.custom_interval_days).toEqual([
      "Required when frequency is custom (1..365).",
    ]);
  });
});

describe("a field the route does not take", () => {
  it("is refused under non_field_errors, naming it, on the vote, add-to-collection, diagnosis and report bodies too", async () => {
    const u = await bearerUser();
    const { resultId } = await identifiedResult(u.userId);
    const refused = async (path: string, json: unknown) =>
      (await expectError(await call(path, { bearer: u.access, json }), 400, "VALIDATION_ERROR")).errors?.non_field_errors?.join(" ") ?? "";
    // `vote` is the answer's name for the vote; the request's is `vote_type`.
    expect(await refused(`/api/v1/plant-identification/results/${resultId}/vote/`, { vote_type: "upvote", vote: "upvote" })).toContain(
      '"vote"',
    );
    expect(await refused(`/api/v1/plant-identification/results/${resultId}/add_to_collection/`, { nick_name: "Fern" })).toContain(
      '"nick_name"',
    );
    const diagnosis = `/api/v1/plant-identification/disease-requests/${crypto.randomUUID()}/confirm/`;
    expect(await refused(diagnosis, { result_id: crypto.randomUUID(), diagnosis: "rust" })).toContain('"diagnosis"');
    expect(await refused(`/api/v1/blog/comments/${crypto.randomUUID()}/report/`, { reason: "spam", why: "spam" })).toContain('"why"');
  });

  it("says which fields the body does take, so a misnamed field can be put right", async () => {
    const u = await bearerUser();
    const { resultId } = await identifiedResult(u.userId);
    const refused = async (path: string, json: unknown) =>
      (await expectError(await call(path, { bearer: u.access, json }), 400, "VALIDATION_ERROR")).errors?.non_field_errors ?? [];
    // The account's own password is `current_password` here, as on password/change/.
    expect(await refused("/api/v1/auth/user/delete/", { password: GOOD_PASSWORD })).toEqual([
      'Unrecognized key: "password". Accepted fields: current_password, code, recovery_code.',
    ]);
    expect(await refused(`/api/v1/plant-identification/results/${resultId}/add_to_collection/`, { nick_name: "Fern", note: "" })).toEqual([
      'Unrecognized keys: "nick_name", "note". Accepted fields: collection_id, nickname, notes.',
    ]);
    // Nothing was deleted.
    expect((await call("/api/v1/auth/user/", { bearer: u.access })).status).toBe(200);
  });

  it("on the avatar upload too: a profile field sent beside the photo is refused, not dropped, and nothing changes", async () => {
    const u = await bearerUser();
    const form = new FormData();
    form.append("avatar", new File([await makePng(64, 64, { seed: u.username })], "me.png", { type: "image/png" }));
    form.append("bio", "Fern person");
    const res = await call("/api/v1/auth/user/", { method: "PATCH", bearer: u.access, body: form });
    expect((await expectError(res, 400, "VALIDATION_ERROR")).errors?.non_field_errors).toEqual([
      'Unrecognized key: "bio". Accepted fields: avatar.',
    ]);
    const profile = (await (await call("/api/v1/auth/user/", { bearer: u.access })).json()) as { bio: string; avatar_url: string | null };
    expect(profile).toMatchObject({ bio: "", avatar_url: null });
  });
});
