// GET /api/v1/auth/user/export/ for an account with thousands of rows: the answer is whole and
// valid JSON (docs/api.md "Exporting your data", its limits).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, jsonWithStatus as json } from "../helpers/http";
import { bearerUser } from "../helpers/users";

const EXPORT = "/api/v1/auth/user/export/";
const MANY = 5000;
/** The longest note a plant may have (routes/collections.ts). */
const NOTE = 2000;

describe("GET auth/user/export/ with many rows", () => {
  it(`holds all ${MANY} plants (each with a ${NOTE}-character note) and ${MANY} notifications, as one valid JSON document`, async () => {
    const u = await bearerUser();
    const shelf = await json<{ id: string }>(
      await call("/api/v1/plant-identification/collections/", { bearer: u.access, json: { name: "Greenhouse", is_public: false } }),
      201,
    );
    // Seeded in SQL, a few statements: the API would take 10 000 requests.
    await env.DB.batch([
      env.DB.prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
         INSERT INTO user_plants (id, user_id, collection_id, nickname, notes, created_at, updated_at)
         SELECT printf('bulk-plant-%05d-', i) || ?1, ?1, ?2, printf('Plant %d', i), printf('%d:', i) || substr(replace(hex(zeroblob(?4)), '0', 'x'), 1, ?4 - length(printf('%d:', i))),
                strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', i)), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
         FROM n`,
      ).bind(u.userId, shelf.id, MANY, NOTE),
      env.DB.prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO notifications (id, user_id, type, title, body, data, created_at)
         SELECT printf('bulk-note-%05d-', i) || ?1, ?1, 'care_reminder', printf('Water plant %d', i), 'Time to water it: the soil should be dry to a finger''s depth.',
                json_object('plant_id', printf('bulk-plant-%05d-', i) || ?1), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', i))
         FROM n`,
      ).bind(u.userId, MANY),
    ]);

    const started = Date.now();
    const res = await call(EXPORT, { bearer: u.access });
    const text = await res.text();
    const took = Date.now() - started;
    expect(res.status, text.slice(0, 500)).toBe(200);
    console.log(`export of ${MANY} plants and ${MANY} notifications: ${text.length} bytes in ${took} ms`);
    const body = JSON.parse(text) as {
      collections: { id: string; plants: { id: string; notes: string }[] }[];
      notifications: { id: string; title: string }[];
    };
    const plants = body.collections.find((c) => c.id === shelf.id)!.plants;
    expect(plants).toHaveLength(MANY);
    expect(new Set(plants.map((p) => p.id)).size).toBe(MANY);
    expect(plants.every((p) => p.notes.length === NOTE)).toBe(true);
    expect(body.notifications).toHaveLength(MANY);
    expect(new Set(body.notifications.map((n) => n.id)).size).toBe(MANY);
  }, 120_000);
});
