// Review helper-51: plants stored photos with no per-user budget, and two races with a delete
// answered 500. Each test fails on the code before the fix.
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { addPlant, changePlant, findPlant } from "../../src/services/collections";
import { setShared } from "../../src/services/community";
import { freshIp } from "../helpers/http";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { envRacingStatement } from "../helpers/racing-env";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";
import { validateImageUpload, UPLOAD_RULES } from "../../src/lib/images";

useEmulators();

const API = "/api/v1/plant-identification";
const photo = (seed: string) => makePng(320, 240, { seed: `plant-photos-${seed}-${Math.random()}` });

async function validated(seed: string) {
  const result = await validateImageUpload({ bytes: await photo(seed), declaredType: "image/png", filename: "p.png" }, UPLOAD_RULES);
  if (!result.ok) throw new Error(result.message);
  return result.image;
}

async function newCollection(userId: string) {
  const id = crypto.randomUUID();
  await env.DB.prepare("INSERT INTO collections (id, user_id, name) VALUES (?, ?, ?)").bind(id, userId, `Shelf ${id}`).run();
  return id;
}

describe("plant photos have a budget", () => {
  // A plant's photo is kept as long as the plant: with no budget one account could store a new
  // 10 MiB photo per request, at the edge limit's 600 a minute, never shown to anyone.
  it("refuses a plant photo over the account's budget with 429, while plants without a photo and other accounts go on", async () => {
    const u = await bearerUser();
    const other = await bearerUser();
    const limited = { ...env, PLANT_PHOTO_RATE_LIMIT: "3/3600" };
    const send = async (method: string, path: string, bearer: string, body: FormData | string) => {
      const ctx = createExecutionContext();
      const headers: Record<string, string> = { Authorization: `Bearer ${bearer}`, "CF-Connecting-IP": freshIp() };
      if (typeof body === "string") headers["Content-Type"] = "application/json";
      const res = await createApp().request(path, { method, body, headers }, limited, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    };
    const withPhoto = async (name: string) => {
      const form = new FormData();
      form.append("nickname", name);
      form.append("image", new File([await photo(name)], "p.png", { type: "image/png" }));
      return form;
    };
    // A write refused for its references (a collection that is not theirs) spends nothing.
    const astray = await withPhoto("astray");
    astray.append("collection", crypto.randomUUID());
    expect((await send("POST", `${API}/plants/`, u.access, astray)).status).toBe(404);
    const statuses: number[] = [];
    let first = "";
    for (let i = 0; i < 2; i++) {
      const res = await send("POST", `${API}/plants/`, u.access, await withPhoto(`new ${i}`));
      statuses.push(res.status);
      if (i === 0) first = ((await res.json()) as { id: string }).id;
    }
    // Replacing a photo stores one too.
    statuses.push((await send("PATCH", `${API}/plants/${first}/`, u.access, await withPhoto("replaced"))).status);
    const refused = await send("POST", `${API}/plants/`, u.access, await withPhoto("over"));
    expect(statuses).toEqual([201, 201, 200]);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { code: string }).code).toBe("RATE_LIMITED");
    expect(refused.headers.get("Retry-After")).toMatch(/^\d+$/);
    const stored = await env.DB.prepare("SELECT count(*) AS n FROM user_plants WHERE user_id = ?").bind(u.userId).first<{ n: number }>();
    expect(stored!.n).toBe(2);
    // A plant without a photo stores nothing in R2 and spends nothing.
    expect((await send("POST", `${API}/plants/`, u.access, JSON.stringify({ nickname: "no photo" }))).status).toBe(201);
    expect((await send("POST", `${API}/plants/`, other.access, await withPhoto("other"))).status).toBe(201);
  });
});

describe("a plant write racing its collection's deletion", () => {
  it("answers 404 for a new plant whose collection went between the check and the insert, and stores nothing", async () => {
    const u = await bearerUser();
    const collection = await newCollection(u.userId);
    const racing = envRacingStatement(/^insert into "user_plants"/i, () =>
      env.DB.prepare("DELETE FROM collections WHERE id = ?").bind(collection).run(),
    );
    const image = await validated("gone");
    await expect(addPlant(racing.env, u.userId, { collection, nickname: "late" }, image)).rejects.toMatchObject({
      status: 404,
      code: "NOT_FOUND",
    });
    expect(racing.fired()).toBe(true);
    // The photo stored for it was released again.
    expect(await env.IMAGES.head(`images/${image.sha256}.${image.extension}`)).toBeNull();
  });

  it("answers 404 for a move into a collection deleted between the check and the update, and the plant stays", async () => {
    const u = await bearerUser();
    const [from, to] = [await newCollection(u.userId), await newCollection(u.userId)];
    const plant = await addPlant(env, u.userId, { collection: from, nickname: "mover" }, null);
    const racing = envRacingStatement(/^update "user_plants"/i, () =>
      env.DB.prepare("DELETE FROM collections WHERE id = ?").bind(to).run(),
    );
    await expect(changePlant(racing.env, u.userId, plant, { collection: to }, null, false)).rejects.toMatchObject({
      status: 404,
      code: "NOT_FOUND",
    });
    expect(racing.fired()).toBe(true);
    expect((await findPlant(env, u.userId, plant.id))?.collectionId).toBe(from);
  });
});

describe("sharing a request racing its deletion", () => {
  it("answers 404, not 500, when the request is deleted between the read and the update", async () => {
    const u = await bearerUser();
    const requestId = await pendingRequest("identify", u.userId, await photo("shared"));
    await env.DB.prepare("UPDATE identification_requests SET status = 'identified' WHERE id = ?").bind(requestId).run();
    const racing = envRacingStatement(/^update "identification_requests"/i, () =>
      env.DB.prepare("DELETE FROM identification_requests WHERE id = ?").bind(requestId).run(),
    );
    await expect(setShared(racing.env, u.userId, requestId, true)).rejects.toMatchObject({ status: 404, code: "NOT_FOUND" });
    expect(racing.fired()).toBe(true);
  });
});
