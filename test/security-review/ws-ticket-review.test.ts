// Security review: WebSocket tickets, attacked where no test attacked them yet. A ticket is a
// 60-second, single-use credential that travels in a URL (`/ws/?ticket=`), so it is the one most
// likely to be seen by someone else. Tried: one past its expiry; one whose account was
// deactivated (by an administrator, and with only the account's flag down, so the check at
// consumption is what refuses it); one of another user's aimed at a request that is not theirs.
// Each opens nothing. The attacks held; these tests keep them held.
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { database } from "../../src/db/client";
import { users, wsTickets } from "../../src/db/schema";
import { sha256Hex } from "../../src/lib/hash";
import { setAccountActive } from "../../src/services/accounts";
import { call, jsonWithStatus as json } from "../helpers/http";
import { makePng } from "../helpers/images";
import { useEmulators } from "../helpers/outbound";
import { pendingRequest } from "../helpers/requests";
import { bearerUser } from "../helpers/users";
import { openReadySocket, openSocket } from "../helpers/ws";

useEmulators();
const db = database(env);
const ticketOf = async (access: string) =>
  (await json<{ ticket: string }>(await call("/api/v1/auth/ws-ticket/", { method: "POST", bearer: access }), 200)).ticket;
const rowOf = async (ticket: string) =>
  db
    .select()
    .from(wsTickets)
    .where(eq(wsTickets.ticketHash, await sha256Hex(ticket)))
    .get();

describe("WebSocket tickets", () => {
  it("a ticket past its 60 seconds opens nothing, and is not spent by trying", async () => {
    const u = await bearerUser();
    const ticket = await ticketOf(u.access);
    await db
      .update(wsTickets)
      .set({ expiresAt: Math.floor(Date.now() / 1000) - 1 })
      .where(eq(wsTickets.ticketHash, await sha256Hex(ticket)));
    expect(await (await openSocket(`/ws/?ticket=${ticket}`)).closed).toEqual({ code: 4401, reason: "authentication required" });
    expect((await rowOf(ticket))?.usedAt).toBeNull();
  });

  it("an unspent ticket dies with its account's deactivation by an administrator", async () => {
    const u = await bearerUser();
    const ticket = await ticketOf(u.access);
    await setAccountActive(env, u.userId, false);
    expect(await (await openSocket(`/ws/?ticket=${ticket}`)).closed).toEqual({ code: 4401, reason: "authentication required" });
  });

  it("with only the account's flag down, the check at consumption refuses it; back up, the ticket (never spent) opens", async () => {
    const u = await bearerUser();
    const ticket = await ticketOf(u.access);
    await db.update(users).set({ isActive: false }).where(eq(users.id, u.userId));
    expect(await (await openSocket(`/ws/?ticket=${ticket}`)).closed).toEqual({ code: 4401, reason: "authentication required" });
    await db.update(users).set({ isActive: true }).where(eq(users.id, u.userId));
    const socket = await openReadySocket(`/ws/?ticket=${ticket}`, {});
    socket.ws.close(1000);
  });

  it("a ticket is its user's: aimed at another user's request it learns nothing (the unknown request's close), and is spent", async () => {
    const [owner, stranger] = [await bearerUser(), await bearerUser()];
    const requestId = await pendingRequest("identify", owner.userId, await makePng(8, 8));
    const ticket = await ticketOf(stranger.access);
    expect(await (await openSocket(`/ws/plant-identification/requests/${requestId}/?ticket=${ticket}`)).closed).toEqual({
      code: 4404,
      reason: "unknown request",
    });
    expect(await (await openSocket(`/ws/?ticket=${ticket}`)).closed).toEqual({ code: 4401, reason: "authentication required" });
  });
});
