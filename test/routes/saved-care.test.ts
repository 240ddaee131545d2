import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectError, jsonWithStatus, type Page } from "../helpers/http";
import { bearerUser, registerWeb } from "../helpers/users";
import type { z } from "zod";
import type { SavedCareSchema } from "../../src/routes/saved-care";

const BASE = "/api/v1/plant-identification/saved-care-instructions";

type Card = z.infer<typeof SavedCareSchema>;
const json = jsonWithStatus;

const save = async (bearer: string, body: Record<string, unknown>) => json<Card>(await call(`${BASE}/`, { bearer, json: body }), 201);
const list = async (bearer: string, query = "") => json<Page<Card>>(await call(`${BASE}/${query}`, { bearer }), 200);
/** Cards saved within one millisecond would tie on created_at: pin the order the test asserts. */
const pinCreatedAt = (id: string, day: number) =>
  env.DB.prepare("UPDATE saved_care_instructions SET created_at = ? WHERE id = ?")
    .bind(`2026-02-${String(day).padStart(2, "0")}T00:00:00.000Z`, id)
    .run();

const badCards: [unknown, string][] = [
  [{}, "scientific_name"],
  [{ scientific_name: "" }, "scientific_name"],
  [{ scientific_name: "   " }, "scientific_name"],
  [{ scientific_name: "x".repeat(201) }, "scientific_name"],
  [{ scientific_name: "Ok", common_name: "c".repeat(201) }, "common_name"],
  [{ scientific_name: "Ok", personal_notes: "n".repeat(2001) }, "personal_notes"],
  [{ scientific_name: "Ok", is_favorite: "yes" }, "is_favorite"],
  [{ scientific_name: "Ok", care_instructions: ["water"] }, "care_instructions"],
  [{ scientific_name: "Ok", care_instructions: "water weekly" }, "care_instructions"],
  [{ scientific_name: "Ok", care_instructions: null }, "care_instructions"],
  [{ scientific_name: "Ok", care_instructions: { text: "x".repeat(16 * 1024) } }, "care_instructions"],
];

describe("saved care cards", () => {
  it("refuse a care_instructions key named __proto__ instead of dropping it without a word (helper-47)", async () => {
    const u = await bearerUser();
    const res = await call(`${BASE}/`, {
      bearer: u.access,
      body: '{"scientific_name":"Proto plant","care_instructions":{"__proto__":{"watering":"weekly"},"light":"bright"}}',
      headers: { "Content-Type": "application/json" },
    });
    expect(Object.keys((await expectError(res, 400, "VALIDATION_ERROR")).errors ?? {})).toEqual(["care_instructions.__proto__"]);
    expect((await list(u.access)).count).toBe(0);
    // Deeper down the key is plain data, kept as sent.
    const nested = await call(`${BASE}/`, {
      bearer: u.access,
      body: '{"scientific_name":"Proto plant","care_instructions":{"tips":{"__proto__":"is just a word here"}}}',
      headers: { "Content-Type": "application/json" },
    });
    expect(JSON.stringify((await json<Card>(nested, 201)).care_instructions)).toBe('{"tips":{"__proto__":"is just a word here"}}');
  });

  it("saves, reads, updates and deletes a card", async () => {
    const u = await bearerUser();
    const care = { watering: { frequency: "weekly" }, light: "bright indirect", tips: ["wipe leaves"] };
    const card = await save(u.access, {
      scientific_name: " Monstera deliciosa ",
      common_name: "Swiss cheese plant",
      care_instructions: care,
    });
    expect(card).toMatchObject({
      scientific_name: "Monstera deliciosa",
      common_name: "Swiss cheese plant",
      care_instructions: care,
      is_favorite: false,
      personal_notes: "",
    });
    expect(card.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(await json<Card>(await call(`${BASE}/${card.id}/`, { bearer: u.access }), 200)).toEqual(card);

    const updated = await json<Card>(
      await call(`${BASE}/${card.id}`, {
        method: "PATCH",
        bearer: u.access,
        json: { is_favorite: true, personal_notes: "Repot in spring" },
      }),
      200,
    );
    expect(updated).toMatchObject({
      id: card.id,
      is_favorite: true,
      personal_notes: "Repot in spring",
      care_instructions: care,
      scientific_name: "Monstera deliciosa",
    });

    // Only the scientific name is required.
    expect(await save(u.access, { scientific_name: "Ficus lyrata" })).toMatchObject({
      common_name: "",
      care_instructions: {},
      is_favorite: false,
    });
    expect((await list(u.access)).count).toBe(2);

    expect((await call(`${BASE}/${card.id}/`, { method: "DELETE", bearer: u.access })).status).toBe(204);
    await expectError(await call(`${BASE}/${card.id}/`, { bearer: u.access }), 404, "NOT_FOUND");
    await expectError(await call(`${BASE}/${card.id}/`, { method: "DELETE", bearer: u.access }), 404, "NOT_FOUND");
    expect((await list(u.access)).results.map((c) => c.scientific_name)).toEqual(["Ficus lyrata"]);
  });

  it("one card per scientific name per user (case-insensitive): 409, also when renaming; other users are independent", async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    await save(u.access, { scientific_name: "Pilea peperomioides" });
    const dup = await expectError(
      await call(`${BASE}/`, { bearer: u.access, json: { scientific_name: "PILEA PEPEROMIOIDES" } }),
      409,
      "DUPLICATE_CARE_CARD",
    );
    expect(dup.errors?.scientific_name).toBeDefined();
    const second = await save(u.access, { scientific_name: "Calathea orbifolia" });
    await expectError(
      await call(`${BASE}/${second.id}/`, { method: "PATCH", bearer: u.access, json: { scientific_name: "pilea peperomioides" } }),
      409,
      "DUPLICATE_CARE_CARD",
    );
    // Re-saving one's own name (a no-op rename) is fine.
    expect(
      (await call(`${BASE}/${second.id}/`, { method: "PATCH", bearer: u.access, json: { scientific_name: "Calathea Orbifolia" } })).status,
    ).toBe(200);
    await save(other.access, { scientific_name: "Pilea peperomioides" });
    expect((await list(u.access)).count).toBe(2);
    expect((await list(other.access)).count).toBe(1);
  });

  it("filters favourites and paginates newest first", async () => {
    const u = await bearerUser();
    const names = ["Aloe vera", "Begonia rex", "Crassula ovata", "Dracaena marginata", "Echeveria elegans"];
    for (const [i, name] of names.entries()) {
      const card = await save(u.access, { scientific_name: name, is_favorite: i % 2 === 0 });
      await pinCreatedAt(card.id, i + 1);
    }
    const favourites = await list(u.access, "?is_favorite=true");
    expect(favourites.results.map((c) => c.scientific_name)).toEqual(["Echeveria elegans", "Crassula ovata", "Aloe vera"]);
    const others = await list(u.access, "?is_favorite=false");
    expect(others.results.map((c) => c.scientific_name)).toEqual(["Dracaena marginata", "Begonia rex"]);

    const first = await list(u.access, "?page_size=2");
    expect(first.count).toBe(5);
    expect(first.results.map((c) => c.scientific_name)).toEqual(["Echeveria elegans", "Dracaena marginata"]);
    expect(first.previous).toBeNull();
    const last = await list(u.access, "?page=3&page_size=2");
    expect(last.results.map((c) => c.scientific_name)).toEqual(["Aloe vera"]);
    expect(last.next).toBeNull();
    expect(new URL(last.previous!).searchParams.get("page")).toBe("2");
    const favPage = await list(u.access, "?is_favorite=true&page_size=2");
    expect(favPage.count).toBe(3);
    expect(new URL(favPage.next!).searchParams.get("is_favorite")).toBe("true");

    await expectError(await call(`${BASE}/?is_favorite=maybe`, { bearer: u.access }), 400, "VALIDATION_ERROR");
    await expectError(await call(`${BASE}/?page_size=101`, { bearer: u.access }), 400, "VALIDATION_ERROR");
  });

  it.each(badCards.map(([body, field]) => ({ body, field, label: JSON.stringify(body).slice(0, 60) })))(
    "rejects $label with 400 on $field and writes nothing",
    async ({ body, field }) => {
      const u = await bearerUser();
      const err = await expectError(await call(`${BASE}/`, { bearer: u.access, json: body }), 400, "VALIDATION_ERROR");
      expect(Object.keys(err.errors ?? {}), JSON.stringify(body).slice(0, 80)).toContain(field);
      expect((await list(u.access)).count).toBe(0);
    },
  );

  it("rejects bad input with 400 and writes nothing", async () => {
    const u = await bearerUser();
    // The caller's own user id is still not a field of the card.
    const own = await expectError(
      await call(`${BASE}/`, { bearer: u.access, json: { scientific_name: "Ok", user_id: u.userId } }),
      400,
      "VALIDATION_ERROR",
    );
    expect(Object.keys(own.errors ?? {})).toContain("non_field_errors");
    await expectError(
      await call(`${BASE}/`, { bearer: u.access, body: "[1,", headers: { "Content-Type": "application/json" } }),
      400,
      "MALFORMED_REQUEST",
    );
    await expectError(await call(`${BASE}/not-a-uuid/`, { bearer: u.access }), 400, "VALIDATION_ERROR");
    const card = await save(u.access, { scientific_name: "Hoya carnosa", care_instructions: { text: "x".repeat(16 * 1024 - 20) } });
    await expectError(
      await call(`${BASE}/${card.id}/`, { method: "PATCH", bearer: u.access, json: { id: crypto.randomUUID() } }),
      400,
      "VALIDATION_ERROR",
    );
    await expectError(
      await call(`${BASE}/${card.id}/`, { method: "PATCH", bearer: u.access, json: { scientific_name: "" } }),
      400,
      "VALIDATION_ERROR",
    );
    expect((await list(u.access)).results.map((c) => c.scientific_name)).toEqual(["Hoya carnosa"]);
  });

  it("another user's card is 404 for read, update and delete", async () => {
    const owner = await bearerUser();
    const intruder = await bearerUser();
    const card = await save(owner.access, { scientific_name: "Ficus elastica", personal_notes: "private" });
    const path = `${BASE}/${card.id}/`;
    await expectError(await call(path, { bearer: intruder.access }), 404, "NOT_FOUND");
    await expectError(await call(path, { method: "PATCH", bearer: intruder.access, json: { personal_notes: "mine" } }), 404, "NOT_FOUND");
    await expectError(await call(path, { method: "DELETE", bearer: intruder.access }), 404, "NOT_FOUND");
    expect((await list(intruder.access)).count).toBe(0);
    expect(await json<Card>(await call(path, { bearer: owner.access }), 200)).toMatchObject({ personal_notes: "private" });
  });

  it("anonymous callers get 401; cookie writes need the CSRF header", async () => {
    for (const [method, path] of [
      ["GET", `${BASE}/`],
      ["POST", `${BASE}/`],
      ["GET", `${BASE}/${crypto.randomUUID()}/`],
      ["PATCH", `${BASE}/${crypto.randomUUID()}/`],
      ["DELETE", `${BASE}/${crypto.randomUUID()}/`],
    ] as const) {
      const res = await call(path, { method, ...(method === "POST" || method === "PATCH" ? { json: { scientific_name: "X" } } : {}) });
      await expectError(res, 401, "AUTHENTICATION_REQUIRED");
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    }
    const web = await registerWeb();
    await expectError(await call(`${BASE}/`, { cookies: web.cookies, json: { scientific_name: "Aloe vera" } }), 403, "CSRF_FAILED");
    expect((await json<Page<Card>>(await call(`${BASE}/`, { cookies: web.cookies }), 200)).count).toBe(0);
    const card = await json<Card>(
      await call(`${BASE}/`, { cookies: web.cookies, headers: { "X-CSRFToken": web.csrf }, json: { scientific_name: "Aloe vera" } }),
      201,
    );
    await expectError(await call(`${BASE}/${card.id}/`, { method: "DELETE", cookies: web.cookies }), 403, "CSRF_FAILED");
    expect((await json<Page<Card>>(await call(`${BASE}/`, { cookies: web.cookies }), 200)).count).toBe(1);
  });
});
