// Security review finding, fixed — this test keeps it fixed. The finding: a WebSocket upgrade
// checks its credential, then asks the user's hub to accept the socket. A sign-out landing in
// between ends the session in D1 and closes the hub's sockets of that session — before this one
// has joined — so the socket joined afterwards and kept receiving the account's private events
// until it chose to leave. The test lands the sign-out at exactly that moment.
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../src/config";
import worker from "../../src/index";
import { endEverySession, endSession } from "../../src/services/sessions";
import { verifyToken } from "../../src/services/tokens";
import { BASE } from "../helpers/http";
import { useEmulators } from "../helpers/outbound";
import { bearerUser, tokenLogin } from "../helpers/users";
import { eventually } from "../helpers/wait";

useEmulators();

/** `env`, except that the user's hub runs `meanwhile` just before it accepts a socket. */
function racingEnv(meanwhile: () => Promise<unknown>): Env {
  const hubs = env.USER_HUB;
  const wrapped = {
    idFromName: (name: string) => hubs.idFromName(name),
    get: (id: DurableObjectId) => {
      const ref = hubs.get(id);
      return {
        fetch: async (request: Request) => {
          await meanwhile();
          return ref.fetch(request);
        },
        closeSessions: (...args: Parameters<typeof ref.closeSessions>) => ref.closeSessions(...args),
      };
    },
  };
  return { ...env, USER_HUB: wrapped } as unknown as Env;
}

/** Opens /ws/ through the Worker with `racing` and tells what the socket did first: "init" or "close:<code>". */
async function firstEvent(racing: Env, access: string): Promise<string> {
  const ctx = createExecutionContext();
  const res = await worker.fetch!(
    new Request(`${BASE}/ws/`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${access}` } }) as never,
    racing,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const first = new Promise<string>((resolve) => {
    ws.addEventListener("message", (e) => resolve((JSON.parse(e.data as string) as { type: string }).type));
    ws.addEventListener("close", (e) => resolve(`close:${e.code}`));
  });
  ws.accept();
  const outcome = await Promise.race([first, new Promise<string>((r) => setTimeout(() => r("timeout"), 10_000))]);
  return outcome;
}

/**
 * The sockets the user's hub holds, given up to 10 s to reach `expected` (a closing socket lingers
 * briefly; a fixed second was not always enough on a loaded machine). Met at once, it costs nothing.
 */
async function hubSockets(userId: string, expected: number): Promise<number> {
  const hub = env.USER_HUB.get(env.USER_HUB.idFromName(userId));
  let n = await hub.connectionCount();
  await eventually(async () => (n = await hub.connectionCount()) === expected).catch(() => {});
  return n;
}

describe("a socket joining as its session ends", () => {
  it("sign-out everywhere landing between the credential check and the hub: the socket is closed, not joined", async () => {
    const u = await bearerUser();
    let fired = false;
    const racing = racingEnv(async () => {
      if (fired) return;
      fired = true;
      await endEverySession(env, u.userId);
    });
    const outcome = await firstEvent(racing, u.access);
    expect(fired).toBe(true);
    expect(outcome).toBe("close:4401");
    expect(await hubSockets(u.userId, 0)).toBe(0);
  });

  it("the session's own sign-out landing there: closed too; another session of the account still joins", async () => {
    const u = await bearerUser();
    const other = await tokenLogin(u.username);
    const sid = (await verifyToken(getConfig(env), u.access, "access")).sid!;
    let fired = false;
    const racing = racingEnv(async () => {
      if (fired) return;
      fired = true;
      await endSession(env, getConfig(env), u.userId, sid);
    });
    expect(await firstEvent(racing, u.access)).toBe("close:4401");
    expect(await hubSockets(u.userId, 0)).toBe(0);
    expect(await firstEvent(racing, other.access)).toBe("init");
    expect(await hubSockets(u.userId, 1)).toBe(1);
  });

  it("a password change landing there ends a session whose refresh token has lapsed too (tokens_valid_after)", async () => {
    const u = await bearerUser();
    // A session with no live refresh row is not listed in revoked_sessions by "end every session".
    await env.DB.prepare("DELETE FROM refresh_tokens WHERE user_id = ?").bind(u.userId).run();
    let fired = false;
    const racing = racingEnv(async () => {
      if (fired) return;
      fired = true;
      await endEverySession(env, u.userId);
    });
    expect(await firstEvent(racing, u.access)).toBe("close:4401");
    expect(await hubSockets(u.userId, 0)).toBe(0);
  });

  it("the database not answering the second check: the socket is closed (1013, try again), not left joined", async () => {
    const u = await bearerUser();
    // The primary binding fails from the moment the hub is asked; the request's own reads came before.
    let broken = false;
    const db = new Proxy(env.DB, {
      get(target, prop) {
        if (broken && (prop === "prepare" || prop === "batch" || prop === "exec")) {
          return () => {
            throw new Error("D1_ERROR: Network connection lost.");
          };
        }
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const racing = { ...racingEnv(async () => (broken = true)), DB: db } as Env;
    expect(await firstEvent(racing, u.access)).toBe("close:1013");
    expect(broken).toBe(true);
    expect(await hubSockets(u.userId, 0)).toBe(0);
  });

  it("control: with nothing landing in between, the socket joins", async () => {
    const u = await bearerUser();
    expect(
      await firstEvent(
        racingEnv(async () => {}),
        u.access,
      ),
    ).toBe("init");
  });
});
