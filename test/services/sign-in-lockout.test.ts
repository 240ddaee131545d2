// A sign-in reserves its attempt on the account's lockout bucket and on the name typed (username
// or email), which decides only what a refusal says (services/accounts.ts reserveSignIn). Both
// counts live in the account's RateLimiter, so one call reserves both and one call clears both.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getConfig } from "../../src/config";
import { signInWithPassword } from "../../src/services/accounts";
import { useEmulators } from "../helpers/outbound";
import { GOOD_PASSWORD, registerWeb } from "../helpers/users";

useEmulators();

/** `env.RATE_LIMITER`, recording each call to a bucket as `<bucket name> <method>`. */
function recordingLimiter(calls: string[]): typeof env.RATE_LIMITER {
  const ns = env.RATE_LIMITER;
  const names = new Map<string, string>();
  return new Proxy(ns, {
    get(target, key) {
      if (key === "idFromName")
        return (name: string) => {
          const id = target.idFromName(name);
          names.set(id.toString(), name);
          return id;
        };
      if (key !== "get") return Reflect.get(target, key, target);
      return (id: DurableObjectId) => {
        const ref = target.get(id) as unknown as Record<string, (...args: unknown[]) => unknown>;
        return new Proxy(ref, {
          get(s, method) {
            if (typeof method !== "string" || method === "then") return Reflect.get(s, method, s);
            return (...args: unknown[]) => {
              calls.push(`${names.get(id.toString())} ${method}`);
              return s[method]!(...args);
            };
          },
        });
      };
    },
  });
}

describe("sign-in lockout calls", () => {
  it("a sign-in by email reserves and then clears its attempt with one lockout call each, the name counted in the account's bucket", async () => {
    const owner = await registerWeb();
    const calls: string[] = [];
    const { user } = await signInWithPassword(
      { ...env, RATE_LIMITER: recordingLimiter(calls) },
      getConfig(env),
      { identifier: owner.email.toUpperCase(), password: GOOD_PASSWORD, clientKey: "198.51.100.31" },
      () => {},
    );
    expect(user.id).toBe(owner.userId);
    expect(calls.filter((c) => c.startsWith("lockout:"))).toEqual([
      `lockout:user:${owner.userId} beginAttempt`,
      `lockout:user:${owner.userId} attemptSucceeded`,
    ]);
  });
});
