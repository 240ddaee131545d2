// A phone on a flaky network refreshes, the server rotates the token, and the answer is lost. The
// app retries with the same token once it is back online, often after 30 s offline. The reuse
// window (20 s) was shorter than that, so the retry was taken for theft and signed the user out.
// The window is now 60 s (REFRESH_REUSE_WINDOW_S); a token rotated away and then used by a second
// party still ends the session (RFC 9700 §4.14.2), which these tests attack as well.
import { env } from "cloudflare:workers";
import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import { REFRESH_REUSE_WINDOW_S } from "../../src/services/tokens";
import { call, expectError } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser } from "../helpers/users";

useEmulators();

type Pair = { access: string; refresh: string };

const refresh = (token: string) => call("/api/v1/auth/token/refresh/", { json: { refresh: token } });

async function pairOf(res: Response): Promise<Pair> {
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Pair;
}

/**
 * Pretends the user's refresh rotations happened `seconds` earlier than they did. A replayed pair is
 * signed at its rotation's time, so after this it carries the same jtis but an earlier `iat`:
 * compare pairs with `jtis`, not byte for byte.
 */
async function ageRotations(userId: string, seconds: number) {
  await env.DB.prepare("UPDATE refresh_tokens SET revoked_at = revoked_at - ? WHERE user_id = ? AND revoked_at IS NOT NULL")
    .bind(seconds, userId)
    .run();
}

const jtis = (pair: Pair) => ({ access: decodeJwt(pair.access).jti, refresh: decodeJwt(pair.refresh).jti });

const signedIn = async (access: string) => (await call("/api/v1/auth/user/", { bearer: access })).status;

describe("a refresh whose answer was lost", () => {
  it("retried 45 s later gets the pair it missed, and the session carries on", async () => {
    const phone = await bearerUser();
    const missed = await pairOf(await refresh(phone.refresh));
    await ageRotations(phone.userId, 45);

    const retried = await pairOf(await refresh(phone.refresh));
    expect(jtis(retried)).toEqual(jtis(missed));
    expect(await signedIn(retried.access)).toBe(200);
    const next = await pairOf(await refresh(retried.refresh));
    expect(await signedIn(next.access)).toBe(200);
  });

  it("retried after the window is taken for theft: the session ends", async () => {
    const phone = await bearerUser();
    const missed = await pairOf(await refresh(phone.refresh));
    await ageRotations(phone.userId, REFRESH_REUSE_WINDOW_S + 1);

    await expectError(await refresh(phone.refresh), 401, "TOKEN_REUSED");
    await expectError(await call("/api/v1/auth/user/", { bearer: missed.access }), 401, "TOKEN_INVALID");
  });

  it("a stolen token replayed inside the window after the owner's new token was used ends the session", async () => {
    const owner = await bearerUser();
    const second = await pairOf(await refresh(owner.refresh));
    const third = await pairOf(await refresh(second.refresh));

    // The thief replays the first token seconds later: its replacement was used, so this is no retry.
    await expectError(await refresh(owner.refresh), 401, "TOKEN_REUSED");
    await expectError(await call("/api/v1/auth/user/", { bearer: third.access }), 401, "TOKEN_INVALID");
    await expectError(await refresh(third.refresh), 401, "TOKEN_REUSED");
  });

  it("a token used by two parties still ends the session once they part: the window shares a pair, never a session for good", async () => {
    const owner = await bearerUser();
    // The thief uses the stolen token first; the owner's refresh seconds later gets the same pair.
    const thief = await pairOf(await refresh(owner.refresh));
    await ageRotations(owner.userId, 30);
    const owners = await pairOf(await refresh(owner.refresh));
    expect(jtis(owners)).toEqual(jtis(thief));

    // The owner rotates on; the thief's copy of the shared token comes back later: theft.
    const ownersNext = await pairOf(await refresh(owners.refresh));
    await ageRotations(owner.userId, REFRESH_REUSE_WINDOW_S + 1);
    await expectError(await refresh(thief.refresh), 401, "TOKEN_REUSED");
    await expectError(await call("/api/v1/auth/user/", { bearer: ownersNext.access }), 401, "TOKEN_INVALID");
    await expectError(await call("/api/v1/auth/user/", { bearer: thief.access }), 401, "TOKEN_INVALID");
  });
});
