// Review helper-51: collections, plants and saved care cards had no per-user cap, so one account
// could make D1 hold as much as the edge limit let it write (a care card is up to 16 KiB). The
// caps are enforced inside the insert (migration 0035's triggers): concurrent creates at the cap
// cannot overshoot it. Events not yet ended per organiser joined them (migration 0036).
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PER_USER_CAPS } from "../../src/lib/errors";
import { capOwner, fillTo } from "../helpers/caps";
import { call, expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

useEmulators();

const API = "/api/v1/plant-identification";

const count = async (table: keyof typeof PER_USER_CAPS, userId: string) =>
  (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${capOwner[table]} = ?`).bind(userId).first<{ n: number }>())!.n;

const tomorrow = (hours: number) => new Date(Date.now() + 86_400_000 + hours * 3_600_000).toISOString();

const creates = {
  collections: (access: string, i: number) => call(`${API}/collections/`, { bearer: access, json: { name: `Over ${i}` } }),
  user_plants: (access: string, i: number) => call(`${API}/plants/`, { bearer: access, json: { nickname: `Over ${i}` } }),
  saved_care_instructions: (access: string, i: number) =>
    call(`${API}/saved-care-instructions/`, { bearer: access, json: { scientific_name: `Monstera over${i}` } }),
  calendar_events: (access: string, i: number) =>
    call("/api/v1/calendar/events/", { bearer: access, json: { title: `Over ${i}`, start: tomorrow(2), end: tomorrow(3) } }),
};

describe("per-user caps", () => {
  for (const table of Object.keys(PER_USER_CAPS) as (keyof typeof PER_USER_CAPS)[]) {
    const cap = PER_USER_CAPS[table];
    it(`${cap.noun}: at most ${cap.max}, 409 ${cap.code} past it even for concurrent creates; another account is unaffected`, async () => {
      const u = await bearerUser();
      await fillTo(table, u.userId, cap.max - 1);
      // Five at once for the last place: exactly one gets it.
      const statuses = (await Promise.all([0, 1, 2, 3, 4].map((i) => creates[table](u.access, i)))).map((r) => r.status);
      expect(statuses.sort()).toEqual([201, 409, 409, 409, 409]);
      expect(await count(table, u.userId)).toBe(cap.max);
      const refused = await creates[table](u.access, 9);
      await expectError(refused.clone(), 409, cap.code);
      expect(((await refused.json()) as { message: string }).message).toBe(
        `${cap.holder} can have at most ${cap.max} ${cap.noun}. Delete some first.`,
      );
      expect(await count(table, u.userId)).toBe(cap.max);
      const other = await bearerUser();
      expect((await creates[table](other.access, 0)).status).toBe(201);
    });
  }
});
