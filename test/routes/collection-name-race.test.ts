import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectError, jsonWithStatus, type Page } from "../helpers/http";
import { textKey } from "../../src/lib/text";
import { bearerUser } from "../helpers/users";
import { createCollection, updateCollection } from "../../src/services/collections";
import { AppError } from "../../src/lib/errors";

const API = "/api/v1/plant-identification";

type Named = { id: string; name: string };

async function names(bearer: string): Promise<string[]> {
  const page = await jsonWithStatus<Page<Named>>(await call(`${API}/collections/?page_size=100`, { bearer }), 200);
  return page.results.map((c) => c.name).sort();
}

describe("collection names: the database refuses what the check cannot see in time", () => {
  it("two creates at once with one name in two spellings: exactly one is stored, the other is 409", async () => {
    for (const [first, second] of [
      ["Küche", "KÜCHE"],
      ["Ku\u0308che2", "Küche2"],
      ["κήπος", "ΚΉΠΟΣ"],
    ] as const) {
      const u = await bearerUser();
      const answers = await Promise.allSettled([first, second].map((name) => createCollection(env, u.userId, { name })));
      expect(answers.map((a) => a.status).sort(), `${first} / ${second}`).toEqual(["fulfilled", "rejected"]);
      const lost = answers.find((a) => a.status === "rejected")!.reason;
      expect(lost).toBeInstanceOf(AppError);
      expect([lost.status, lost.code]).toEqual([409, "DUPLICATE_COLLECTION"]);
      expect((await names(u.access)).length, `${first} / ${second}`).toBe(2); // My Plants and the winner
    }
  });

  it("a rename and a create at once, to one name in two spellings: one wins, the other is 409", async () => {
    const u = await bearerUser();
    const balcony = await jsonWithStatus<Named>(await call(`${API}/collections/`, { bearer: u.access, json: { name: "Balkon" } }), 201);
    const answers = await Promise.allSettled([
      updateCollection(env, u.userId, balcony.id, { name: "GARTENHÄUSCHEN" }),
      createCollection(env, u.userId, { name: "Gartenhäuschen" }),
    ]);
    expect(answers.map((a) => a.status).sort()).toEqual(["fulfilled", "rejected"]);
    const lost = answers.find((a) => a.status === "rejected")!.reason;
    expect([lost.status, lost.code]).toEqual([409, "DUPLICATE_COLLECTION"]);
    const stored = await names(u.access);
    expect(stored.filter((n) => n.toLowerCase() === "gartenhäuschen")).toHaveLength(1);
  });

  it("a row written past the check with a key the user holds is refused by the index; other users and keyless rows are not", async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    await jsonWithStatus<Named>(await call(`${API}/collections/`, { bearer: u.access, json: { name: "Küche" } }), 201);
    const insert = (userId: string, name: string, key: string | null) =>
      env.DB.prepare("INSERT INTO collections (id, user_id, name, name_key) VALUES (?, ?, ?, ?)")
        .bind(crypto.randomUUID(), userId, name, key)
        .run();
    await expect(insert(u.userId, "KÜCHE", "küche")).rejects.toThrow(/UNIQUE/);
    await insert(other.userId, "KÜCHE", "küche");
    await insert(u.userId, "KÜCHE", null); // a name made before the rule: no key, no clash in the index
  });

  it("every path that writes a name writes its key: sign-up's default collection, create, rename", async () => {
    const u = await bearerUser();
    const made = await jsonWithStatus<Named>(await call(`${API}/collections/`, { bearer: u.access, json: { name: "ＧＡＲＴＥＮ" } }), 201);
    const keys = async () =>
      (
        await env.DB.prepare("SELECT name, name_key FROM collections WHERE user_id = ? ORDER BY created_at").bind(u.userId).all<{
          name: string;
          name_key: string | null;
        }>()
      ).results;
    expect(await keys()).toEqual([
      { name: "My Plants", name_key: "my plants" },
      { name: "ＧＡＲＴＥＮ", name_key: "garten" },
    ]);
    await jsonWithStatus(await call(`${API}/collections/${made.id}/`, { method: "PATCH", bearer: u.access, json: { name: "Κήπος" } }), 200);
    expect((await keys())[1]).toEqual({ name: "Κήπος", name_key: textKey("κήποσ") });
  });
});

describe("collection names from before migrations/0060", () => {
  const legacy = (userId: string, name: string, createdAt: string) =>
    env.DB.prepare("INSERT INTO collections (id, user_id, name, name_key, created_at) VALUES (?, ?, ?, NULL, ?)").bind(
      crypto.randomUUID(),
      userId,
      name,
      createdAt,
    );
  const keyOf = async (userId: string) =>
    new Map(
      (
        await env.DB.prepare("SELECT name, name_key FROM collections WHERE user_id = ?")
          .bind(userId)
          .all<{ name: string; name_key: string | null }>()
      ).results.map((r) => [r.name, r.name_key]),
    );

  it("the migration keys ASCII names in SQL as textKey does, and leaves every other name to TypeScript", async () => {
    const migration = (env.TEST_MIGRATIONS as { name: string; queries: string[] }[]).find((m) => m.name.startsWith("0060_"))!;
    expect(migration).toBeDefined();
    const u = await bearerUser();
    await env.DB.batch([
      legacy(u.userId, "Herbs & Spices", "2020-01-01T00:00:00.000Z"),
      legacy(u.userId, "BALCONY 2", "2020-01-02T00:00:00.000Z"),
      legacy(u.userId, "Küche", "2020-01-03T00:00:00.000Z"),
      legacy(u.userId, "ＨＥＲＢＳ", "2020-01-04T00:00:00.000Z"),
      legacy(u.userId, "Straße", "2020-01-05T00:00:00.000Z"),
      env.DB.prepare("UPDATE collections SET name_key = NULL WHERE user_id = ?").bind(u.userId),
    ]);
    // The column and the index exist (the test database is migrated); the rest runs again on these rows.
    for (const query of migration.queries.filter((q) => !/ALTER TABLE/i.test(q))) await env.DB.prepare(query).run();
    const keys = await keyOf(u.userId);
    for (const name of ["My Plants", "Herbs & Spices", "BALCONY 2"]) expect(keys.get(name), name).toBe(textKey(name));
    for (const name of ["Küche", "ＨＥＲＢＳ", "Straße"]) expect(keys.get(name), name).toBeNull();
  });

  it("the owner's next create keys the rest, oldest first; a pre-rule twin keeps no key, stays editable, and is keyed when renamed", async () => {
    const u = await bearerUser();
    await env.DB.batch([
      legacy(u.userId, "KÜCHE", "2020-02-01T00:00:00.000Z"),
      legacy(u.userId, "Küche", "2020-01-01T00:00:00.000Z"),
      legacy(u.userId, "Сад", "2020-01-02T00:00:00.000Z"),
    ]);
    const ids = new Map(
      (
        await env.DB.prepare("SELECT id, name FROM collections WHERE user_id = ?").bind(u.userId).all<{ id: string; name: string }>()
      ).results.map((r) => [r.name, r.id]),
    );
    // The check sees unkeyed names as it always did.
    await expectError(await call(`${API}/collections/`, { bearer: u.access, json: { name: "сад" } }), 409, "DUPLICATE_COLLECTION");
    await expectError(await call(`${API}/collections/`, { bearer: u.access, json: { name: "küche" } }), 409, "DUPLICATE_COLLECTION");
    await jsonWithStatus(await call(`${API}/collections/`, { bearer: u.access, json: { name: "Balkon" } }), 201);
    let keys = await keyOf(u.userId);
    expect(keys.get("Küche")).toBe("küche"); // the older of the twins
    expect(keys.get("KÜCHE")).toBeNull();
    expect(keys.get("Сад")).toBe("сад");
    // Both twins stay editable, their own name resent with the edit.
    for (const name of ["KÜCHE", "Küche"]) {
      const edited = await jsonWithStatus<Named & { description: string }>(
        await call(`${API}/collections/${ids.get(name)}/`, {
          method: "PATCH",
          bearer: u.access,
          json: { name, description: name },
        }),
        200,
      );
      expect(edited.description).toBe(name);
    }
    keys = await keyOf(u.userId);
    expect([keys.get("Küche"), keys.get("KÜCHE")]).toEqual(["küche", null]);
    // A rename to a name of its own gives the twin its key.
    await jsonWithStatus(
      await call(`${API}/collections/${ids.get("KÜCHE")}/`, { method: "PATCH", bearer: u.access, json: { name: "Vorratskammer" } }),
      200,
    );
    expect((await keyOf(u.userId)).get("Vorratskammer")).toBe("vorratskammer");
    expect((await names(u.access)).sort()).toEqual(["Balkon", "Küche", "My Plants", "Vorratskammer", "Сад"].sort());
  });
});
